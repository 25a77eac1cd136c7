//! Adapts our `rand_core` 0.10 CSPRNG to the `rand_core` 0.6 traits `frost-ed25519` 3 takes.

use frost_ed25519::rand_core as rand_core_06;

/// A borrowed `rand_core` 0.10 `CryptoRng` seen as a `rand_core` 0.6 `RngCore + CryptoRng`.
pub(crate) struct Rng06<'a, R: rand_core::CryptoRng + ?Sized>(pub(crate) &'a mut R);

impl<R: rand_core::CryptoRng + ?Sized> rand_core_06::RngCore for Rng06<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_06::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl<R: rand_core::CryptoRng + ?Sized> rand_core_06::CryptoRng for Rng06<'_, R> {}
