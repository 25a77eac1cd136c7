//! RSA-2048 signing (RFC 8017 RSASSA-PKCS1-v1_5, as RFC 5702 uses it) with fixed-size
//! constant-time arithmetic.
//!
//! The `rsa` crate computes on heap-allocated `BoxedUint`s, which made RSA-2048 zone signing
//! several times slower than the C signers. For the common 2048-bit two-prime key this module
//! does the same CRT computation on stack-allocated `crypto_bigint::U1024`/`U2048` Montgomery
//! forms (constant-time `pow`), checks the result with the public exponent (against fault
//! attacks), and returns exactly the bytes the `rsa` crate returns (a test pins that). Other
//! key sizes keep using the `rsa` crate.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{NonZero, Odd, U1024, U2048};
use zeroize::Zeroize;

/// DigestInfo prefixes (RFC 8017 §9.2 note 1).
const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    0x04, 0x20,
];
const SHA512_PREFIX: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
    0x04, 0x40,
];

/// Which hash the signature uses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum RsaHash {
    Sha256,
    Sha512,
}

/// A two-prime RSA-2048 private key in CRT form.
pub(crate) struct Rsa2048 {
    n_params: FixedMontyParams<32>,
    e: U2048,
    p: NonZero<U1024>,
    p_params: FixedMontyParams<16>,
    q: U1024,
    q_params: FixedMontyParams<16>,
    dp: U1024,
    dq: U1024,
    qinv: U1024,
}

impl Drop for Rsa2048 {
    fn drop(&mut self) {
        self.dp.zeroize();
        self.dq.zeroize();
        self.qinv.zeroize();
        self.q.zeroize();
    }
}

fn fixed<const L: usize>(be: &[u8]) -> Option<crypto_bigint::Uint<L>> {
    let size = L * crypto_bigint::Limb::BYTES;
    let start = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let trimmed = &be[start..];
    if trimmed.len() > size {
        return None;
    }
    let mut buf = vec![0u8; size];
    buf[size - trimmed.len()..].copy_from_slice(trimmed);
    let v = crypto_bigint::Uint::<L>::from_be_slice(&buf);
    buf.zeroize();
    Some(v)
}

impl Rsa2048 {
    /// From big-endian components; `None` unless `n` has exactly 2048 bits and `p`, `q` fit
    /// in 1024 bits each (then the caller keeps the generic path).
    pub(crate) fn new(
        n: &[u8],
        e: &[u8],
        p: &[u8],
        q: &[u8],
        dp: &[u8],
        dq: &[u8],
        qinv: &[u8],
    ) -> Option<Self> {
        let n_u: U2048 = fixed(n)?;
        if n_u.bit_width() != 2048 {
            return None;
        }
        let p_u: U1024 = fixed(p)?;
        let q_u: U1024 = fixed(q)?;
        let p_odd = Odd::new(p_u).into_option()?;
        let q_odd = Odd::new(q_u).into_option()?;
        Some(Self {
            n_params: FixedMontyParams::new_vartime(Odd::new(n_u).into_option()?),
            e: fixed(e)?,
            p: NonZero::new(p_u).into_option()?,
            p_params: FixedMontyParams::new(p_odd),
            q: q_u,
            q_params: FixedMontyParams::new(q_odd),
            dp: fixed(dp)?,
            dq: fixed(dq)?,
            qinv: fixed(qinv)?,
        })
    }

    /// The PKCS#1 v1.5 signature (256 octets) of the digest `hash`, or `None` if the fault
    /// check fails (then the caller uses the generic path).
    pub(crate) fn sign_digest(&self, alg: RsaHash, hash: &[u8]) -> Option<Vec<u8>> {
        let prefix: &[u8] = match alg {
            RsaHash::Sha256 => &SHA256_PREFIX,
            RsaHash::Sha512 => &SHA512_PREFIX,
        };
        // EM = 0x00 || 0x01 || PS (0xff...) || 0x00 || DigestInfo
        let t_len = prefix.len() + hash.len();
        let mut em = [0xffu8; 256];
        em[0] = 0;
        em[1] = 1;
        em[255 - t_len] = 0;
        em[256 - t_len..256 - hash.len()].copy_from_slice(prefix);
        em[256 - hash.len()..].copy_from_slice(hash);
        let m = U2048::from_be_slice(&em);
        // CRT: s1 = m^dp mod p, s2 = m^dq mod q, h = qinv (s1 - s2) mod p, s = s2 + h q
        let mp: U1024 = m.rem(&self.p);
        let mq: U1024 = m.rem(&NonZero::new(self.q).into_option()?);
        let mut s1 = FixedMontyForm::new(&mp, &self.p_params).pow(&self.dp).retrieve();
        let mut s2 = FixedMontyForm::new(&mq, &self.q_params).pow(&self.dq).retrieve();
        let s2p: U1024 = s2.rem(&self.p);
        let diff = s1.sub_mod(&s2p, &self.p);
        let mut h = (FixedMontyForm::new(&diff, &self.p_params)
            * FixedMontyForm::new(&self.qinv, &self.p_params))
        .retrieve();
        let hq: U2048 = h.concatenating_mul(&self.q);
        let s: U2048 = hq.wrapping_add(&s2.resize());
        s1.zeroize();
        s2.zeroize();
        h.zeroize();
        // fault check: s^e mod n must give back EM
        let back = FixedMontyForm::new(&s, &self.n_params)
            .pow_vartime(&self.e)
            .retrieve();
        if back != m {
            return None;
        }
        Some(s.to_be_bytes().as_ref().to_vec())
    }
}
