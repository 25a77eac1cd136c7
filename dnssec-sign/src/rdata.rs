//! Record data in wire form: the DNSSEC types the signer creates (RFC 4034, RFC 5155,
//! RFC 7344, RFC 8976), type bitmaps (RFC 4034 §4.1.2) and presentation format.
//!
//! Record data is kept as canonical wire bytes; [`crate::presentation`] reads and prints it.

#[cfg(test)]
use data_encoding::HEXUPPER;

use crate::error::ZoneError;
use crate::name::Name;

/// Record type numbers used by the signer.
pub mod rtype {
    /// A
    pub const A: u16 = 1;
    /// NS
    pub const NS: u16 = 2;
    /// MD (obsolete, RFC 973)
    pub const MD: u16 = 3;
    /// MF (obsolete, RFC 973)
    pub const MF: u16 = 4;
    /// CNAME
    pub const CNAME: u16 = 5;
    /// SOA
    pub const SOA: u16 = 6;
    /// PTR
    pub const PTR: u16 = 12;
    /// MX
    pub const MX: u16 = 15;
    /// TXT
    pub const TXT: u16 = 16;
    /// AAAA
    pub const AAAA: u16 = 28;
    /// SRV
    pub const SRV: u16 = 33;
    /// DNAME
    pub const DNAME: u16 = 39;
    /// DS
    pub const DS: u16 = 43;
    /// RRSIG
    pub const RRSIG: u16 = 46;
    /// NSEC
    pub const NSEC: u16 = 47;
    /// DNSKEY
    pub const DNSKEY: u16 = 48;
    /// NSEC3
    pub const NSEC3: u16 = 50;
    /// NSEC3PARAM
    pub const NSEC3PARAM: u16 = 51;
    /// CDS
    pub const CDS: u16 = 59;
    /// CDNSKEY
    pub const CDNSKEY: u16 = 60;
    /// ZONEMD (RFC 8976), unknown to hickory-proto 0.26
    pub const ZONEMD: u16 = 63;
}

pub use crate::presentation::{abbreviate, mnemonic, parse_type, present, type_name};

/// Encodes a type bitmap (RFC 4034 §4.1.2) from a sorted, deduplicated list of types.
pub fn encode_bitmap(types: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < types.len() {
        let window = (types[i] >> 8) as u8;
        let mut bits = [0u8; 32];
        let mut max = 0usize;
        while i < types.len() && (types[i] >> 8) as u8 == window {
            let low = (types[i] & 0xff) as usize;
            bits[low / 8] |= 0x80 >> (low % 8);
            max = max.max(low / 8 + 1);
            i += 1;
        }
        out.push(window);
        out.push(max as u8);
        out.extend_from_slice(&bits[..max]);
    }
    out
}

/// Decodes a type bitmap; rejects malformed windows.
pub fn decode_bitmap(mut b: &[u8]) -> Result<Vec<u16>, ZoneError> {
    let mut types = Vec::new();
    let mut last_window: Option<u8> = None;
    while !b.is_empty() {
        if b.len() < 2 {
            return Err(ZoneError::BadRdata("truncated type bitmap".into()));
        }
        let (window, len) = (b[0], b[1] as usize);
        if len == 0 || len > 32 || b.len() < 2 + len || last_window.is_some_and(|w| w >= window) {
            return Err(ZoneError::BadRdata("malformed type bitmap window".into()));
        }
        for (byte_i, byte) in b[2..2 + len].iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    types.push(((window as u16) << 8) | (byte_i * 8 + bit) as u16);
                }
            }
        }
        last_window = Some(window);
        b = &b[2 + len..];
    }
    Ok(types)
}

/// DNSKEY / CDNSKEY record data (RFC 4034 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dnskey {
    /// Flags: 256 zone key, 257 zone key + SEP.
    pub flags: u16,
    /// Always 3.
    pub protocol: u8,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// Public key in the algorithm's DNSKEY encoding.
    pub public_key: Vec<u8>,
}

impl Dnskey {
    /// Wire form.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + self.public_key.len());
        v.extend_from_slice(&self.flags.to_be_bytes());
        v.push(self.protocol);
        v.push(self.algorithm);
        v.extend_from_slice(&self.public_key);
        v
    }

    /// Parses the wire form.
    pub fn from_wire(b: &[u8]) -> Result<Self, ZoneError> {
        if b.len() < 4 {
            return Err(ZoneError::BadRdata("DNSKEY too short".into()));
        }
        Ok(Self {
            flags: u16::from_be_bytes([b[0], b[1]]),
            protocol: b[2],
            algorithm: b[3],
            public_key: b[4..].to_vec(),
        })
    }

    /// Key tag (RFC 4034 appendix B).
    pub fn key_tag(&self) -> u16 {
        key_tag(&self.to_wire())
    }

    /// Whether the SEP flag is set (a key-signing key).
    pub fn is_sep(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// Key tag of DNSKEY wire rdata (RFC 4034 appendix B).
pub fn key_tag(rdata: &[u8]) -> u16 {
    tcrypto_net::node::policy::key_tag_of_rdata(rdata)
}

/// RRSIG record data (RFC 4034 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rrsig {
    /// Type covered.
    pub type_covered: u16,
    /// Algorithm.
    pub algorithm: u8,
    /// Labels of the owner, without root and leading `*`.
    pub labels: u8,
    /// TTL of the covered RRset as signed.
    pub original_ttl: u32,
    /// Expiration (serial number arithmetic on seconds since the epoch).
    pub expiration: u32,
    /// Inception.
    pub inception: u32,
    /// Key tag of the signing key.
    pub key_tag: u16,
    /// Zone apex.
    pub signer: Name,
    /// Signature bytes.
    pub signature: Vec<u8>,
}

impl Rrsig {
    /// The RDATA without the signature field: the start of the data to sign (RFC 4034 §3.1.8.1).
    pub fn prefix_wire(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(18 + self.signer.wire().len() + self.signature.len());
        v.extend_from_slice(&self.type_covered.to_be_bytes());
        v.push(self.algorithm);
        v.push(self.labels);
        v.extend_from_slice(&self.original_ttl.to_be_bytes());
        v.extend_from_slice(&self.expiration.to_be_bytes());
        v.extend_from_slice(&self.inception.to_be_bytes());
        v.extend_from_slice(&self.key_tag.to_be_bytes());
        v.extend_from_slice(self.signer.wire());
        v
    }

    /// Wire form.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = self.prefix_wire();
        v.extend_from_slice(&self.signature);
        v
    }

    /// Parses the wire form (signer name lowercased).
    pub fn from_wire(b: &[u8]) -> Result<Self, ZoneError> {
        if b.len() < 19 {
            return Err(ZoneError::BadRdata("RRSIG too short".into()));
        }
        let (signer, used) = Name::read_wire(&b[18..])?;
        Ok(Self {
            type_covered: u16::from_be_bytes([b[0], b[1]]),
            algorithm: b[2],
            labels: b[3],
            original_ttl: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            expiration: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
            inception: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            key_tag: u16::from_be_bytes([b[16], b[17]]),
            signer,
            signature: b[18 + used..].to_vec(),
        })
    }
}

/// The type covered by RRSIG wire rdata (first two octets), if long enough.
pub fn rrsig_type_covered(rdata: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]))
}

/// NSEC3 / NSEC3PARAM parameters (RFC 5155 §3, §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3Param {
    /// Hash algorithm: 1 = SHA-1.
    pub hash_algorithm: u8,
    /// Flags (bit 0 = opt-out in NSEC3; zero in NSEC3PARAM).
    pub flags: u8,
    /// Additional iterations.
    pub iterations: u16,
    /// Salt.
    pub salt: Vec<u8>,
}

impl Nsec3Param {
    /// Wire form of NSEC3PARAM.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = vec![self.hash_algorithm, self.flags];
        v.extend_from_slice(&self.iterations.to_be_bytes());
        v.push(self.salt.len() as u8);
        v.extend_from_slice(&self.salt);
        v
    }

    /// Parses the common prefix of NSEC3 and NSEC3PARAM; returns it and its length.
    pub fn from_wire_prefix(b: &[u8]) -> Result<(Self, usize), ZoneError> {
        if b.len() < 5 {
            return Err(ZoneError::BadRdata("NSEC3 parameters too short".into()));
        }
        let salt_len = b[4] as usize;
        let salt = b
            .get(5..5 + salt_len)
            .ok_or_else(|| ZoneError::BadRdata("NSEC3 salt truncated".into()))?;
        Ok((
            Self {
                hash_algorithm: b[0],
                flags: b[1],
                iterations: u16::from_be_bytes([b[2], b[3]]),
                salt: salt.to_vec(),
            },
            5 + salt_len,
        ))
    }
}

/// NSEC3 record data (RFC 5155 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nsec3 {
    /// Hash parameters and flags.
    pub params: Nsec3Param,
    /// Hash of the next owner name in hash order.
    pub next_hashed: Vec<u8>,
    /// Types present at the original owner name.
    pub types: Vec<u16>,
}

impl Nsec3 {
    /// Wire form.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = self.params.to_wire();
        v.push(self.next_hashed.len() as u8);
        v.extend_from_slice(&self.next_hashed);
        v.extend_from_slice(&encode_bitmap(&self.types));
        v
    }

    /// Parses the wire form.
    pub fn from_wire(b: &[u8]) -> Result<Self, ZoneError> {
        let (params, used) = Nsec3Param::from_wire_prefix(b)?;
        let hlen = *b
            .get(used)
            .ok_or_else(|| ZoneError::BadRdata("NSEC3 truncated".into()))? as usize;
        let next = b
            .get(used + 1..used + 1 + hlen)
            .ok_or_else(|| ZoneError::BadRdata("NSEC3 next hash truncated".into()))?;
        let types = decode_bitmap(&b[used + 1 + hlen..])?;
        Ok(Self {
            params,
            next_hashed: next.to_vec(),
            types,
        })
    }
}

/// ZONEMD record data (RFC 8976 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zonemd {
    /// SOA serial of the digested zone.
    pub serial: u32,
    /// Scheme: 1 = SIMPLE.
    pub scheme: u8,
    /// Hash algorithm: 1 = SHA-384, 2 = SHA-512.
    pub hash_algorithm: u8,
    /// Digest.
    pub digest: Vec<u8>,
}

impl Zonemd {
    /// Wire form.
    pub fn to_wire(&self) -> Vec<u8> {
        let mut v = self.serial.to_be_bytes().to_vec();
        v.push(self.scheme);
        v.push(self.hash_algorithm);
        v.extend_from_slice(&self.digest);
        v
    }

    /// Parses the wire form.
    pub fn from_wire(b: &[u8]) -> Result<Self, ZoneError> {
        if b.len() < 6 {
            return Err(ZoneError::BadRdata("ZONEMD too short".into()));
        }
        Ok(Self {
            serial: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            scheme: b[4],
            hash_algorithm: b[5],
            digest: b[6..].to_vec(),
        })
    }
}

/// Formats seconds since the epoch (mod 2^32) as `YYYYMMDDHHmmSS` (RFC 4034 §3.2).
pub fn format_time(t: u32) -> String {
    let secs = t as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Parses `YYYYMMDDHHmmSS` or a plain number of seconds.
pub fn parse_time(s: &str) -> Option<u32> {
    if s.len() == 14 && s.bytes().all(|c| c.is_ascii_digit()) {
        let n = |a: usize, b: usize| s[a..b].parse::<i64>().ok();
        let (y, mo, d, h, mi, se) = (n(0, 4)?, n(4, 6)?, n(6, 8)?, n(8, 10)?, n(10, 12)?, n(12, 14)?);
        if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        let t = days * 86400 + h * 3600 + mi * 60 + se;
        return Some((t.rem_euclid(1 << 32)) as u32);
    }
    s.parse::<u32>().ok()
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_round_trips_across_windows() {
        let types = vec![1, 2, 6, 46, 47, 48, 63, 256, 1234];
        let enc = encode_bitmap(&types);
        assert_eq!(decode_bitmap(&enc).unwrap(), types);
    }

    #[test]
    fn bitmap_matches_rfc4034_section_4_3_example() {
        // A MX RRSIG NSEC TYPE1234
        let enc = encode_bitmap(&[1, 15, 46, 47, 1234]);
        let want = HEXUPPER
            .decode(b"0006400100000003041B000000000000000000000000000000000000000000000000000020")
            .unwrap();
        assert_eq!(enc, want);
    }

    #[test]
    fn time_format_round_trips() {
        let t = parse_time("20040509183619").unwrap();
        assert_eq!(format_time(t), "20040509183619");
        assert_eq!(parse_time("1700000000"), Some(1_700_000_000));
    }
}
