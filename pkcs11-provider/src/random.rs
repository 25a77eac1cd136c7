//! `C_GenerateRandom` and `C_SeedRandom` (PKCS#11 v3.0 §5.15): the operating system's CSPRNG, with the seeds
//! callers give mixed in.
//!
//! Hosts call `C_SeedRandom` expecting the seed to be mixed into the token's generator (SoftHSM2 and OpenSC's
//! software tokens do so; Java's SunPKCS11 forwards `SecureRandom.setSeed`). Here every seed is absorbed into a
//! 32-byte pool, `pool' = SHA-256("seed" || pool || seed)`, and each `C_GenerateRandom` returns the operating
//! system's bytes XOR a stream `SHA-256("out" || pool || call || block)`. The operating system's bytes are
//! independent of the pool, so the output is at least as unpredictable as the operating system's CSPRNG whatever
//! the seeds were (a constant or hostile seed cannot weaken it), and a seed does change the bytes that come out.
//! Before the first seed, the output is the operating system's bytes as they are.

use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize as _, ZeroizeOnDrop};

/// The seed pool of one module instance (kept under the module lock).
#[derive(Default, ZeroizeOnDrop)]
pub struct SeedPool {
    /// `None` until the first `C_SeedRandom`.
    pool: Option<[u8; 32]>,
    /// `C_GenerateRandom` calls served since the first seed (each gets its own stream).
    calls: u64,
}

impl core::fmt::Debug for SeedPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SeedPool(<redacted>)")
    }
}

impl SeedPool {
    /// Absorbs a caller's seed.
    pub fn seed(&mut self, seed: &[u8]) {
        let mut h = Sha256::new_with_prefix(b"tchsm-pkcs11 seed");
        h.update(self.pool.unwrap_or_default());
        h.update(seed);
        let mut old = self.pool.replace(h.finalize().into());
        old.zeroize();
    }

    /// The stream for one `C_GenerateRandom` call (taken under the module lock; the bytes are made outside it).
    pub fn next_stream(&mut self) -> Stream {
        let call = self.calls;
        if self.pool.is_some() {
            self.calls += 1;
        }
        Stream {
            pool: self.pool,
            call,
        }
    }
}

/// What one `C_GenerateRandom` call XORs onto the operating system's bytes.
#[derive(ZeroizeOnDrop)]
pub struct Stream {
    pool: Option<[u8; 32]>,
    call: u64,
}

impl Stream {
    /// Fills `out` from `os` (the operating system's CSPRNG; injected for tests), then mixes the stream in.
    pub fn fill<E>(&self, out: &mut [u8], os: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<(), E> {
        os(out)?;
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        for (block, chunk) in (0u64..).zip(out.chunks_mut(32)) {
            let mut h = Sha256::new_with_prefix(b"tchsm-pkcs11 out");
            h.update(pool);
            h.update(self.call.to_be_bytes());
            h.update(block.to_be_bytes());
            let mut pad: [u8; 32] = h.finalize().into();
            for (o, p) in chunk.iter_mut().zip(pad.iter()) {
                *o ^= p;
            }
            pad.zeroize();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeros(out: &mut [u8]) -> Result<(), ()> {
        out.fill(0);
        Ok(())
    }

    #[test]
    fn unseeded_output_is_the_operating_systems_bytes() {
        let mut p = SeedPool::default();
        let mut out = [7u8; 40];
        p.next_stream().fill(&mut out, zeros).unwrap();
        assert_eq!(out, [0u8; 40]);
    }

    #[test]
    fn seeds_change_the_output_and_every_call_gets_its_own_stream() {
        let mut a = SeedPool::default();
        a.seed(b"seed one");
        let mut b = SeedPool::default();
        b.seed(b"seed two");
        let run = |p: &mut SeedPool| {
            let mut out = [0u8; 70];
            p.next_stream().fill(&mut out, zeros).unwrap();
            out
        };
        let (a1, a2, b1) = (run(&mut a), run(&mut a), run(&mut b));
        assert_ne!(a1, [0u8; 70]);
        assert_ne!(a1, a2, "two calls, two streams");
        assert_ne!(a1, b1, "other seed, other stream");
        assert_ne!(a1[..32], a1[32..64], "blocks differ");
        // Seeds accumulate: seeding again changes the stream from then on.
        let mut c = SeedPool::default();
        c.seed(b"seed one");
        c.seed(b"seed one");
        assert_ne!(run(&mut c), a1);
    }

    #[test]
    fn the_operating_systems_bytes_still_count_after_seeding() {
        let mut p = SeedPool::default();
        p.seed(b"constant");
        let s = p.next_stream();
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        s.fill(&mut x, zeros).unwrap();
        s.fill(&mut y, |o: &mut [u8]| -> Result<(), ()> {
            o.fill(0xff);
            Ok(())
        })
        .unwrap();
        assert!(x.iter().zip(&y).all(|(a, b)| a ^ b == 0xff));
        assert_eq!(s.fill(&mut x, |_| Err("no entropy")), Err("no entropy"));
    }
}
