//! P-256 helpers shared by every round: strict scalar and point encodings, Shamir polynomials, Lagrange
//! coefficients, Feldman commitment evaluation, domain-separated hashing and variable-time multi-scalar
//! multiplication (for public data only).

use p256::elliptic_curve::Field as _;
use p256::elliptic_curve::PrimeField as _;
use p256::elliptic_curve::ff::FromUniformBytes as _;
use p256::elliptic_curve::group::Group as _;
use p256::elliptic_curve::group::GroupEncoding as _;
use p256::elliptic_curve::ops::Reduce as _;
use p256::elliptic_curve::point::AffineCoordinates as _;
use p256::elliptic_curve::point::BatchNormalize as _;
use p256::{ProjectivePoint, Scalar};
use rand_core::CryptoRng;
use sha2::Digest as _;
use zeroize::Zeroize;

use crate::backend::{Active, Arithmetic as _};
use crate::codec::{DecodeError, Reader, Writer};
use crate::id::SignerId;

/// Length of a compressed SEC1 point.
pub(crate) const POINT_LEN: usize = 33;
/// Length of a scalar.
pub(crate) const SCALAR_LEN: usize = 32;

/// Appends a scalar as 32 big-endian bytes.
pub(crate) fn put_scalar(w: &mut Writer, s: &Scalar) {
    w.raw(&s.to_bytes());
}

/// Reads a scalar; values `>= n` (non-canonical) are refused.
pub(crate) fn get_scalar(r: &mut Reader<'_>) -> Result<Scalar, DecodeError> {
    let bytes = r.array::<SCALAR_LEN>()?;
    Option::from(Scalar::from_repr(bytes.into())).ok_or(DecodeError::Invalid("non-canonical scalar"))
}

/// Reads a scalar that must not be zero.
pub(crate) fn get_nonzero_scalar(r: &mut Reader<'_>) -> Result<Scalar, DecodeError> {
    let s = get_scalar(r)?;
    if bool::from(s.is_zero()) {
        return Err(DecodeError::Invalid("zero scalar"));
    }
    Ok(s)
}

/// Appends a point in compressed SEC1 form (33 bytes). The identity is never written by this crate.
pub(crate) fn put_point(w: &mut Writer, p: &ProjectivePoint) {
    w.raw(&p.to_bytes());
}

/// Reads a compressed point: it must be on the curve, canonically encoded and not the identity.
///
/// Canonical without re-encoding the point (a field inversion): the prefix must be `02` or `03` (SEC1's
/// compact `05` form and every other tag are refused), and `x` must be below `p` (`p256`'s field decoder
/// refuses the rest); `y` is then fixed by the prefix's parity.
pub(crate) fn get_point(r: &mut Reader<'_>) -> Result<ProjectivePoint, DecodeError> {
    let bytes = r.array::<POINT_LEN>()?;
    if bytes[0] != 2 && bytes[0] != 3 {
        return Err(DecodeError::Invalid("non-canonical point encoding"));
    }
    let p: ProjectivePoint = Option::from(ProjectivePoint::from_bytes(&bytes.into()))
        .ok_or(DecodeError::Invalid("not a curve point"))?;
    if p == ProjectivePoint::IDENTITY {
        return Err(DecodeError::Invalid("identity point"));
    }
    Ok(p)
}

/// Length of a point in the uncompressed form of bulk point lists: `x || y`, 32 big-endian bytes each.
pub(crate) const WIDE_POINT_LEN: usize = 64;

/// Appends a list of points in uncompressed form (u32 count, then `x || y` each), all converted to affine
/// with one field inversion. Used for the presigning broadcasts, which carry several points per presignature:
/// decoding `x || y` is an on-curve check (a few multiplications) where a compressed point needs a square
/// root (a field exponentiation) per point. The identity is written as 64 zero bytes, which no decoder accepts.
pub(crate) fn put_points_wide(w: &mut Writer, v: &[ProjectivePoint]) {
    w.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
    for a in ProjectivePoint::batch_normalize(v) {
        if a == p256::AffinePoint::IDENTITY {
            w.raw(&[0u8; WIDE_POINT_LEN]);
        } else {
            w.raw(&a.x()).raw(&a.y());
        }
    }
}

/// Reads one point of the uncompressed form: `x` and `y` below `p` and `(x, y)` on the curve (so never the
/// identity, which has no affine coordinates).
pub(crate) fn get_point_wide(r: &mut Reader<'_>) -> Result<ProjectivePoint, DecodeError> {
    let x = r.array::<SCALAR_LEN>()?;
    let y = r.array::<SCALAR_LEN>()?;
    let a: p256::AffinePoint = Option::from(p256::AffinePoint::from_coordinates(&x.into(), &y.into()))
        .ok_or(DecodeError::Invalid(
            "not a curve point, or a coordinate not below p",
        ))?;
    Ok(ProjectivePoint::from(a))
}

/// Reads a list of points in the uncompressed form.
pub(crate) fn get_points_wide(r: &mut Reader<'_>) -> Result<Vec<ProjectivePoint>, DecodeError> {
    let n = r.count(WIDE_POINT_LEN)?;
    (0..n).map(|_| get_point_wide(r)).collect()
}

/// Appends a list of scalars (u32 count, then 32 bytes each).
pub(crate) fn put_scalars(w: &mut Writer, v: &[Scalar]) {
    w.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
    for s in v {
        put_scalar(w, s);
    }
}

/// Reads a list of scalars.
pub(crate) fn get_scalars(r: &mut Reader<'_>) -> Result<Vec<Scalar>, DecodeError> {
    let n = r.count(SCALAR_LEN)?;
    (0..n).map(|_| get_scalar(r)).collect()
}

/// Compressed encodings of many points with one field inversion (batch conversion to affine).
pub(crate) fn points_to_bytes(ps: &[ProjectivePoint]) -> Vec<[u8; POINT_LEN]> {
    let affine: Vec<p256::AffinePoint> = ProjectivePoint::batch_normalize(ps);
    affine
        .iter()
        .map(|a| {
            let mut out = [0u8; POINT_LEN];
            out.copy_from_slice(&a.to_bytes());
            out
        })
        .collect()
}

/// Appends a list of points.
pub(crate) fn put_points(w: &mut Writer, v: &[ProjectivePoint]) {
    w.u32(u32::try_from(v.len()).unwrap_or(u32::MAX));
    for p in points_to_bytes(v) {
        w.raw(&p);
    }
}

/// Reads a set of signer ids in strictly increasing order (so each set has one encoding).
pub(crate) fn get_ids(r: &mut Reader<'_>) -> Result<Vec<SignerId>, DecodeError> {
    Ok(SignerId::decode_set(r)?.into_iter().collect())
}

/// Appends a set of signer ids (already sorted, as from a `BTreeSet`/`BTreeMap`).
pub(crate) fn put_ids<'a>(w: &mut Writer, ids: impl ExactSizeIterator<Item = &'a SignerId>) {
    w.u32(u32::try_from(ids.len()).unwrap_or(u32::MAX));
    for id in ids {
        id.encode(w);
    }
}

/// `x` as a scalar.
pub(crate) fn scalar_of(id: SignerId) -> Scalar {
    Scalar::from(u64::from(id.get()))
}

/// A uniformly random scalar.
pub(crate) fn random_scalar(rng: &mut impl CryptoRng) -> Scalar {
    Scalar::random(rng)
}

/// A random non-zero scalar.
pub(crate) fn random_nonzero_scalar(rng: &mut impl CryptoRng) -> Scalar {
    loop {
        let s = Scalar::random(rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

/// A random 128-bit scalar for batch verification weights (public, soundness error 2^-128).
pub(crate) fn random_weight(rng: &mut impl CryptoRng) -> Scalar {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    Scalar::from(u128::from_be_bytes(b) | 1)
}

/// `g * s` (constant time, precomputed base point tables).
pub(crate) fn mul_g(s: &Scalar) -> ProjectivePoint {
    Active::p256_mul_g(s)
}

/// Precomputed multiples of a fixed point `P` (`d·16^{2i}·P` for `|d| <= 8`, the layout of `p256`'s own
/// base-point table), so that `k·P` costs 64 additions and 4 doublings instead of 256 doublings: built once per
/// key for the public key `X` (about the cost of one scalar multiplication), then used for every presignature
/// (`a_i·X`, constant time) and every verification (`u_2·X`, variable time).
pub(crate) struct FixedBaseTable {
    tables: Vec<primeorder::LookupTable<ProjectivePoint>>,
}

/// Number of radix-16 digit pairs of a scalar, plus one for the top digit.
const TABLE_WINDOWS: usize = SCALAR_LEN + 1;

impl FixedBaseTable {
    /// The table of `p`.
    pub(crate) fn new(p: &ProjectivePoint) -> Self {
        let mut base = *p;
        let mut tables = Vec::with_capacity(TABLE_WINDOWS);
        for _ in 0..TABLE_WINDOWS {
            tables.push(primeorder::LookupTable::new(base));
            for _ in 0..8 {
                base = base.double();
            }
        }
        Self { tables }
    }

    /// `k·P` in constant time (for secret `k`).
    pub(crate) fn mul(&self, k: &Scalar) -> ProjectivePoint {
        self.mul_with(k, |t, d| t.select(d))
    }

    /// `k·P` in variable time (public `k` only).
    pub(crate) fn mul_vartime(&self, k: &Scalar) -> ProjectivePoint {
        self.mul_with(k, |t, d| t.select_vartime(d))
    }

    fn mul_with(
        &self,
        k: &Scalar,
        select: impl Fn(&primeorder::LookupTable<ProjectivePoint>, i8) -> ProjectivePoint,
    ) -> ProjectivePoint {
        let digits = primeorder::Radix16Decomposition::<primeorder::Radix16Digits<p256::NistP256>>::new(k);
        let len = SCALAR_LEN;
        let mut even = select(&self.tables[len], digits[len * 2]);
        let mut odd = ProjectivePoint::IDENTITY;
        for i in (0..len).rev() {
            odd += select(&self.tables[i], digits[i * 2 + 1]);
            even += select(&self.tables[i], digits[i * 2]);
        }
        for _ in 0..4 {
            odd = odd.double();
        }
        even + odd
    }
}

/// `g * s` for a public scalar (variable time, precomputed base point tables).
pub(crate) fn mul_g_vartime(s: &Scalar) -> ProjectivePoint {
    use p256::elliptic_curve::ops::MulByGeneratorVartime as _;
    ProjectivePoint::mul_by_generator_vartime(s)
}

/// `s_i · P_i` for each pair: secret scalars, public points (constant time in the scalars).
pub(crate) fn mul_each(terms: &[(ProjectivePoint, Scalar)]) -> Vec<ProjectivePoint> {
    Active::p256_mul_each(terms)
}

/// `Σ s_i · P_i` for public points and scalars (variable time, wNAF multi-scalar multiplication).
pub(crate) fn lincomb_vartime(terms: &[(ProjectivePoint, Scalar)]) -> ProjectivePoint {
    Active::p256_lincomb_vartime(terms)
}

/// `P · k` for a small public integer `k` (double-and-add from the top set bit, variable time).
pub(crate) fn mul_small_vartime(p: &ProjectivePoint, k: u16) -> ProjectivePoint {
    if k == 0 {
        return ProjectivePoint::IDENTITY;
    }
    let mut acc = *p;
    for bit in (0..15 - k.leading_zeros()).rev() {
        acc = acc.double();
        if (k >> bit) & 1 == 1 {
            acc += p;
        }
    }
    acc
}

/// Evaluates a Feldman commitment `C_0 + j·C_1 + … + j^t·C_t` at the id `j` (Horner, public data).
pub(crate) fn eval_commitment(c: &[ProjectivePoint], j: SignerId) -> ProjectivePoint {
    let mut acc = ProjectivePoint::IDENTITY;
    for coeff in c.iter().rev() {
        acc = mul_small_vartime(&acc, j.get()) + coeff;
    }
    acc
}

/// A secret polynomial `f(X) = c_0 + c_1 X + … + c_t X^t` over the scalar field; zeroized on drop.
pub(crate) struct Polynomial {
    coeffs: Vec<Scalar>,
}

impl Polynomial {
    /// Random polynomial of degree `t` with `f(0) = constant`.
    pub(crate) fn random(constant: Scalar, t: u16, rng: &mut impl CryptoRng) -> Self {
        let mut coeffs = Vec::with_capacity(usize::from(t) + 1);
        coeffs.push(constant);
        for _ in 0..t {
            coeffs.push(random_scalar(rng));
        }
        Self { coeffs }
    }

    /// `f(0)`.
    pub(crate) fn constant(&self) -> &Scalar {
        &self.coeffs[0]
    }

    /// The coefficients `c_0..c_t`.
    pub(crate) fn coefficients(&self) -> &[Scalar] {
        &self.coeffs
    }

    /// `f(j)`.
    pub(crate) fn eval(&self, j: SignerId) -> Scalar {
        let x = scalar_of(j);
        let mut acc = Scalar::ZERO;
        for c in self.coeffs.iter().rev() {
            acc = acc * x + c;
        }
        acc
    }

    /// The Feldman commitment `(c_0·G, …, c_t·G)`.
    pub(crate) fn commit(&self) -> Vec<ProjectivePoint> {
        self.coeffs.iter().map(mul_g).collect()
    }
}

impl Drop for Polynomial {
    fn drop(&mut self) {
        self.coeffs.zeroize();
    }
}

/// Lagrange coefficient of `i` for interpolating at `x` over the evaluation points `set` (which contains `i`).
pub(crate) fn lagrange_at(set: &[SignerId], i: SignerId, x: &Scalar) -> Scalar {
    let xi = scalar_of(i);
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    for &j in set {
        if j == i {
            continue;
        }
        let xj = scalar_of(j);
        num *= *x - xj;
        den *= xi - xj;
    }
    // Distinct ids make `den` non-zero; an empty product is one.
    num * Option::<Scalar>::from(den.invert()).unwrap_or(Scalar::ZERO)
}

/// Inverts every non-zero element with one field inversion (Montgomery's trick); zeros stay zero.
pub(crate) fn batch_invert(v: &mut [Scalar]) {
    let mut prefix = Vec::with_capacity(v.len());
    let mut acc = Scalar::ONE;
    for x in v.iter() {
        prefix.push(acc);
        if !bool::from(x.is_zero()) {
            acc *= x;
        }
    }
    let mut inv = Option::<Scalar>::from(acc.invert()).unwrap_or(Scalar::ZERO);
    for (x, pre) in v.iter_mut().zip(prefix).rev() {
        if bool::from(x.is_zero()) {
            continue;
        }
        let xi = inv * pre;
        inv *= *x;
        *x = xi;
    }
}

/// `1 / Π_{m≠i}(α_i − α_m)` for every evaluation point `α_i` (the barycentric weights of the points).
pub(crate) fn barycentric_weights(alphas: &[Scalar]) -> Vec<Scalar> {
    let mut dens: Vec<Scalar> = alphas
        .iter()
        .enumerate()
        .map(|(i, ai)| {
            alphas
                .iter()
                .enumerate()
                .filter(|(m, _)| *m != i)
                .fold(Scalar::ONE, |acc, (_, am)| acc * (*ai - am))
        })
        .collect();
    batch_invert(&mut dens);
    dens
}

/// Lagrange coefficients at 0 for every member of `set` (one inversion):
/// `λ_i = Π_{m≠i} x_m / (x_m − x_i)`.
pub(crate) fn lagrange_at_zero(set: &[SignerId]) -> Vec<Scalar> {
    let xs: Vec<Scalar> = set.iter().map(|j| scalar_of(*j)).collect();
    let mut dens: Vec<Scalar> = xs
        .iter()
        .enumerate()
        .map(|(i, xi)| {
            xs.iter()
                .enumerate()
                .filter(|(m, _)| *m != i)
                .fold(Scalar::ONE, |acc, (_, xm)| acc * (*xm - xi))
        })
        .collect();
    batch_invert(&mut dens);
    dens.iter()
        .enumerate()
        .map(|(i, d)| {
            xs.iter()
                .enumerate()
                .filter(|(m, _)| *m != i)
                .fold(Scalar::ONE, |acc, (_, xm)| acc * xm)
                * d
        })
        .collect()
}

/// A random vector `μ` orthogonal to the evaluation vector `(f(α_0), …, f(α_{N-1}))` of every polynomial `f`
/// of degree `<= t` (the dual of the Reed–Solomon code): `μ_i = q(α_i)·b_i` for a random `q` of degree
/// `<= N − t − 2`, where `b_i` are the barycentric weights.
pub(crate) fn random_dual_codeword(
    alphas: &[Scalar],
    weights: &[Scalar],
    t: u16,
    rng: &mut impl CryptoRng,
) -> Vec<Scalar> {
    let deg = alphas.len().saturating_sub(usize::from(t) + 2);
    let q: Vec<Scalar> = (0..=deg).map(|_| random_scalar(rng)).collect();
    alphas
        .iter()
        .zip(weights)
        .map(|(a, b)| q.iter().rev().fold(Scalar::ZERO, |acc, c| acc * a + c) * b)
        .collect()
}

/// Whether the values `y_i` at the points `α_i` lie on one polynomial of degree `<= t`: `Σ_i α_i^e b_i y_i = 0`
/// for every `e <= N − t − 2` (a basis of the dual code).
pub(crate) fn on_low_degree_polynomial(alphas: &[Scalar], weights: &[Scalar], ys: &[Scalar], t: u16) -> bool {
    let extra = alphas.len().saturating_sub(usize::from(t) + 1);
    let mut powers: Vec<Scalar> = weights.to_vec();
    for _ in 0..extra {
        let sum: Scalar = powers.iter().zip(ys).map(|(p, y)| *p * y).sum();
        if !bool::from(sum.is_zero()) {
            return false;
        }
        for (p, a) in powers.iter_mut().zip(alphas) {
            *p *= a;
        }
    }
    true
}

/// A domain-separated transcript hash: SHA-256 over a label and length-prefixed fields.
pub(crate) struct Transcript {
    w: Writer,
}

impl Transcript {
    /// Starts a transcript with a protocol label.
    pub(crate) fn new(label: &'static str) -> Self {
        let mut w = Writer::bare();
        w.bytes(b"tcrypto/ecdsa-p256/v1");
        w.bytes(label.as_bytes());
        Self { w }
    }

    /// Appends length-prefixed bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.w.bytes(b);
        self
    }

    /// Appends an integer.
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.w.u32(v);
        self
    }

    /// Appends a signer id.
    pub(crate) fn id(&mut self, id: SignerId) -> &mut Self {
        id.encode(&mut self.w);
        self
    }

    /// Appends points.
    pub(crate) fn points(&mut self, ps: &[ProjectivePoint]) -> &mut Self {
        put_points(&mut self.w, ps);
        self
    }

    /// SHA-256 of the transcript.
    pub(crate) fn digest(&self) -> [u8; 32] {
        sha2::Sha256::digest(self.w.as_slice()).into()
    }

    /// A scalar derived from the transcript (SHA-512, reduced: bias 2^-256).
    pub(crate) fn challenge(&self) -> Scalar {
        let wide: [u8; 64] = sha2::Sha512::digest(self.w.as_slice()).into();
        Scalar::from_uniform_bytes(&wide)
    }
}

/// `x(P) mod n`, the ECDSA conversion function.
pub(crate) fn x_coordinate_scalar(p: &ProjectivePoint) -> Scalar {
    let x = p.to_affine().x();
    Scalar::reduce(&x)
}

/// The ECDSA message representative `m = bits2int(digest) mod n` (SEC 1 §4.1.3 step 5, FIPS 186-5 §6.4.1):
/// the leftmost 256 bits of the digest, as an integer.
pub(crate) fn message_scalar(digest: &[u8]) -> Scalar {
    let mut field = [0u8; 32];
    if digest.len() >= 32 {
        field.copy_from_slice(&digest[..32]);
    } else {
        field[32 - digest.len()..].copy_from_slice(digest);
    }
    Scalar::reduce(&p256::FieldBytes::from(field))
}
