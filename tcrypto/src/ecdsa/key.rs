//! Key shares: a party's Shamir share `x_i` of the signing key `x` (degree `t = k - 1`), the public key
//! `X = x·G` and every party's public share `X_j = x_j·G` (DJNPØ: the key is a degree-`t` Shamir sharing,
//! `[x]`, with `g^x` public).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use p256::elliptic_curve::group::GroupEncoding as _;
use p256::{ProjectivePoint, Scalar};
use sha2::Digest as _;
use zeroize::Zeroize;

use super::group::{self, get_point, get_scalar, put_point, put_scalar};
use super::{Error, check_key_params, tag};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::{KeyId, SignerId};

/// A party's share of a threshold P-256 key. The secret share zeroizes on drop and is never printed.
pub struct KeyShare {
    id: SignerId,
    threshold: u16,
    parties: u16,
    secret: Scalar,
    public_key: ProjectivePoint,
    public_shares: BTreeMap<SignerId, ProjectivePoint>,
    key_id: KeyId,
    /// Multiples of the public key `X`, built on first use by presigning (`a_i·X`).
    x_table: OnceLock<Arc<group::FixedBaseTable>>,
}

impl KeyShare {
    /// Makes a key share after checking it: `1 <= threshold <= parties <= 255` (`threshold = k = t + 1`; only
    /// keys with `parties = n >= 2t + 1` can presign, which [`super::presign`] checks; any key signs with
    /// [`super::dkls`]), `public_shares` holds exactly the ids `1..=n`, `id` is one of them,
    /// `secret·G == public_shares[id]`, no public point is the identity, and the public shares lie on one
    /// polynomial of degree `k - 1` whose value at 0 is `public_key`.
    ///
    /// Used by the distributed key generation, by the trusted dealer and by `split`.
    pub fn new(
        id: SignerId,
        threshold: u16,
        parties: u16,
        secret: impl Into<Scalar>,
        public_key: ProjectivePoint,
        public_shares: BTreeMap<SignerId, ProjectivePoint>,
    ) -> Result<Self, Error> {
        let mut secret: Scalar = secret.into();
        let share = Self {
            id,
            threshold,
            parties,
            secret,
            public_key,
            public_shares,
            key_id: key_id_of(&public_key),
            x_table: OnceLock::new(),
        };
        secret.zeroize();
        share.check()?;
        Ok(share)
    }

    fn check(&self) -> Result<(), Error> {
        check_key_params(self.threshold, self.parties)?;
        let expected_ids = (1..=self.parties).filter_map(SignerId::new);
        if self.public_shares.len() != usize::from(self.parties)
            || !self.public_shares.keys().copied().eq(expected_ids)
        {
            return Err(Error::InvalidKeyShare(
                "public shares must be given for exactly the ids 1..=n",
            ));
        }
        if self.public_key == ProjectivePoint::IDENTITY
            || self
                .public_shares
                .values()
                .any(|p| *p == ProjectivePoint::IDENTITY)
        {
            return Err(Error::InvalidKeyShare(
                "identity point in the public key or shares",
            ));
        }
        let own = self
            .public_shares
            .get(&self.id)
            .ok_or(Error::InvalidKeyShare("own id is not among the parties"))?;
        if group::mul_g(&self.secret) != *own {
            return Err(Error::InvalidKeyShare(
                "secret share does not match its public share",
            ));
        }
        // The public shares lie on one polynomial of degree k - 1 through the public key: interpolate from
        // the first k shares, at 0 and at every other id.
        let k = usize::from(self.threshold);
        let ids: Vec<SignerId> = self.public_shares.keys().copied().collect();
        let base = &ids[..k];
        let at = |x: Scalar| -> ProjectivePoint {
            let terms: Vec<(ProjectivePoint, Scalar)> = base
                .iter()
                .map(|i| (self.public_shares[i], group::lagrange_at(base, *i, &x)))
                .collect();
            group::lincomb_vartime(&terms)
        };
        if at(Scalar::ZERO) != self.public_key {
            return Err(Error::InvalidKeyShare(
                "public shares do not interpolate to the public key",
            ));
        }
        for j in &ids[k..] {
            if at(group::scalar_of(*j)) != self.public_shares[j] {
                return Err(Error::InvalidKeyShare(
                    "public shares do not lie on one polynomial of degree k - 1",
                ));
            }
        }
        Ok(())
    }

    /// This party's id.
    pub fn id(&self) -> SignerId {
        self.id
    }

    /// The quorum `k = t + 1`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The number of parties `n`.
    pub fn parties(&self) -> u16 {
        self.parties
    }

    /// The group public key `X = x·G`.
    pub fn public_key(&self) -> ProjectivePoint {
        self.public_key
    }

    /// Every party's public share `X_j = x_j·G`.
    pub fn public_shares(&self) -> &BTreeMap<SignerId, ProjectivePoint> {
        &self.public_shares
    }

    /// The public key as a `p256` verifying key.
    pub fn verifying_key(&self) -> Result<p256::ecdsa::VerifyingKey, Error> {
        p256::ecdsa::VerifyingKey::from_affine(self.public_key.to_affine())
            .map_err(|_| Error::InvalidKeyShare("public key is not a valid verifying key"))
    }

    /// The key id: SHA-256 of the compressed SEC1 public key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The secret share (crate-internal).
    pub(crate) fn x_table(&self) -> Arc<group::FixedBaseTable> {
        self.x_table
            .get_or_init(|| Arc::new(group::FixedBaseTable::new(&self.public_key)))
            .clone()
    }

    pub(crate) fn secret(&self) -> &Scalar {
        &self.secret
    }

    /// Encodes the key share (tag 0x20): id, k, n, `x_i`, `X`, then `X_1..X_n`.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new(tag::KEY_SHARE);
        self.id.encode(&mut w);
        w.u16(self.threshold).u16(self.parties);
        put_scalar(&mut w, &self.secret);
        put_point(&mut w, &self.public_key);
        for p in self.public_shares.values() {
            put_point(&mut w, p);
        }
        w.finish()
    }

    /// Decodes and checks a key share (every check of [`KeyShare::new`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, tag::KEY_SHARE)?;
        let id = SignerId::decode(&mut r)?;
        let threshold = r.u16()?;
        let parties = r.u16()?;
        check_key_params(threshold, parties)?;
        let secret = get_scalar(&mut r)?;
        let public_key = get_point(&mut r)?;
        let mut public_shares = BTreeMap::new();
        for j in 1..=parties {
            let id = SignerId::new(j).ok_or(DecodeError::Invalid("signer id 0"))?;
            public_shares.insert(id, get_point(&mut r)?);
        }
        r.finish()?;
        Self::new(id, threshold, parties, secret, public_key, public_shares)
    }
}

/// The key id of a public key: SHA-256 of its compressed SEC1 encoding.
pub(crate) fn key_id_of(public_key: &ProjectivePoint) -> KeyId {
    KeyId(sha2::Sha256::digest(public_key.to_bytes()).into())
}

/// The key id of an affine public key (no field inversion).
pub(crate) fn key_id_of_affine(public_key: &p256::AffinePoint) -> KeyId {
    KeyId(sha2::Sha256::digest(public_key.to_bytes()).into())
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("secret", &"<redacted>")
            .field("key_id", &self.key_id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::elliptic_curve::Group as _;
    use rand::SeedableRng as _;

    fn shares_of(
        x: Scalar,
        k: u16,
        n: u16,
        rng: &mut impl rand_core::CryptoRng,
    ) -> (Vec<Scalar>, BTreeMap<SignerId, ProjectivePoint>) {
        let f = group::Polynomial::random(x, k - 1, rng);
        let ids: Vec<SignerId> = (1..=n).filter_map(SignerId::new).collect();
        let secrets: Vec<Scalar> = ids.iter().map(|j| f.eval(*j)).collect();
        let public = ids
            .iter()
            .zip(&secrets)
            .map(|(j, s)| (*j, group::mul_g(s)))
            .collect();
        (secrets, public)
    }

    #[test]
    fn new_accepts_a_consistent_share_and_round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let x = group::random_nonzero_scalar(&mut rng);
        let (secrets, public) = shares_of(x, 3, 5, &mut rng);
        let id = SignerId::new(2).unwrap();
        let share = KeyShare::new(id, 3, 5, secrets[1], group::mul_g(&x), public).unwrap();
        let bytes = share.encode();
        let again = KeyShare::decode(&bytes).unwrap();
        assert_eq!(again.encode(), bytes);
        assert_eq!(again.public_key(), group::mul_g(&x));
        assert!(format!("{share:?}").contains("<redacted>"));
    }

    #[test]
    fn new_accepts_a_nonzero_scalar_secret() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let x = group::random_nonzero_scalar(&mut rng);
        let (secrets, public) = shares_of(x, 2, 3, &mut rng);
        let nz = Option::<p256::NonZeroScalar>::from(p256::NonZeroScalar::new(secrets[0])).unwrap();
        KeyShare::new(SignerId::new(1).unwrap(), 2, 3, nz, group::mul_g(&x), public).unwrap();
    }

    #[test]
    fn new_rejects_wrong_secret_wrong_public_key_and_off_polynomial_share() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let x = group::random_nonzero_scalar(&mut rng);
        let (secrets, public) = shares_of(x, 2, 3, &mut rng);
        let id = SignerId::new(1).unwrap();
        let xg = group::mul_g(&x);
        assert!(matches!(
            KeyShare::new(id, 2, 3, secrets[1], xg, public.clone()),
            Err(Error::InvalidKeyShare(_))
        ));
        assert!(matches!(
            KeyShare::new(id, 2, 3, secrets[0], xg.double(), public.clone()),
            Err(Error::InvalidKeyShare(_))
        ));
        let mut bad = public.clone();
        let three = SignerId::new(3).unwrap();
        bad.insert(three, bad[&three].double());
        assert!(matches!(
            KeyShare::new(id, 2, 3, secrets[0], xg, bad),
            Err(Error::InvalidKeyShare(_))
        ));
    }

    #[test]
    fn accepts_any_quorum_up_to_n_and_refuses_the_rest() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let x = group::random_nonzero_scalar(&mut rng);
        for (k, n) in [(3, 4), (4, 5), (5, 5), (1, 3)] {
            let (secrets, public) = shares_of(x, k, n, &mut rng);
            let share = KeyShare::new(
                SignerId::new(1).unwrap(),
                k,
                n,
                secrets[0],
                group::mul_g(&x),
                public,
            )
            .unwrap_or_else(|e| panic!("({k}, {n}): {e}"));
            assert_eq!(KeyShare::decode(&share.encode()).unwrap().threshold(), k);
        }
        assert!(matches!(
            check_key_params(0, 3),
            Err(Error::UnsupportedParameters(_))
        ));
        assert!(matches!(
            check_key_params(4, 3),
            Err(Error::UnsupportedParameters(_))
        ));
        assert!(matches!(
            check_key_params(2, 256),
            Err(Error::UnsupportedParameters(_))
        ));
        // Honest-majority presigning keeps its own, stricter check.
        assert!(matches!(
            super::super::check_params(1, 3),
            Err(Error::UnsupportedParameters(_))
        ));
        assert!(super::super::check_params(2, 3).is_ok());
        assert!(super::super::check_params(3, 5).is_ok());
        assert!(matches!(
            super::super::check_params(4, 6),
            Err(Error::UnsupportedParameters(_))
        ));
    }
}
