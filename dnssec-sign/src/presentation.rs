//! Presentation format of record data (RFC 1035 §5, RFC 3597 §5 and each type's RFC): type
//! mnemonics and the reading and writing of RDATA, octet-exact in both directions.
//!
//! Why this is ours and not a crate's (measured on hickory-proto 0.26 and NLnet Labs' `domain`
//! 0.12, the two maintained Rust DNS libraries): neither knows AFSDB, APL, DHCID, EUI48, EUI64,
//! KX, L32, L64, LOC, LP, NID, SPF or URI; hickory refuses quoted SvcParam values, `@` in
//! record data, `\#` data, and its private mnemonics (`ANAME` for 65305, `ZERO` for 0) are not
//! IANA's; `domain`'s zone file reader takes UTF-8 only and no TTL units. Each type here is a
//! short list of fields (`Field`) read and printed by one engine, so reading what we write
//! gives back the same octets (the fuzz target `dnssec_zone_file` checks that); the few types
//! with a grammar of their own (LOC, APL, IPSECKEY, SVCB/HTTPS) have a function each.
//!
//! Writing follows one rule: a type is written by mnemonic and in its own presentation form only
//! when that form is listed here (all of which BIND, Knot, ldns, PowerDNS and dnspython read);
//! any other type, and IANA types without a form here, as `TYPEnnn \# len hex` (RFC 3597).
//!
//! The rare types are read in their own form (module `rare` and `schema()`) and in RFC 3597
//! form, and written in RFC 3597 form, which all five read, because each lacks a reader of
//! its own form (measured with BIND 9.20 named-checkzone, Knot 3.2 kzonecheck, ldns 1.8.3
//! ldns-read-zone, dnspython 2.3; "-" = refused):
//!
//! | type | BIND | Knot | ldns | dnspython |
//! |---|---|---|---|---|
//! | MB MG MR | yes | - | yes | - |
//! | MINFO, KEY | yes | yes | yes | - |
//! | WKS | yes | - | yes | yes |
//! | NSAP, HIP | yes | - | yes | yes |
//! | A6, NXT, DOA, TA | yes | - | - (ldns writes NXT bitmaps as `\#`) | - |
//! | EID, NIMLOC | yes | - | yes | - |
//! | ATMA | yes | - | hex only (and writes the format octet into it) | - |
//! | SINK | three numbers (an older draft's "meaning" octet first; read too) | - | - | - |
//! | AMTRELAY | yes | - | - | yes |
//! | DLV | yes | - | yes | yes |
//! | UINFO UID GID CLA IPN | - | - | - | - |
//!
//! NULL and UNSPEC have no text form (RFC 1035 §3.3.10 gives NULL none; BIND's UNSPEC form is
//! its own btoa encoding): they are read and written only as `\# len hex`, as BIND and Knot
//! write them. MD and MF are read, but the zone rules refuse them (BIND refuses to load them
//! in any form). UINFO is read as one character-string, UID and GID as 32-bit numbers, CLA as
//! character-strings and IPN as a 64-bit number (draft-johnson-dns-ipn-cla; no RFC, and no
//! reader here knows them).

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE32_DNSSEC, BASE64, HEXLOWER_PERMISSIVE, HEXUPPER};

use crate::name::Name;
use crate::rdata::{decode_bitmap, encode_bitmap, format_time, parse_time};

mod rare;

/// One token of a zone file entry: its octets as written (escapes not yet decoded), whether it
/// was quoted, and whether it followed the previous token with no blank in between (so
/// `alpn="h2,h3"` arrives as `alpn=` and a glued quoted `h2,h3`).
#[derive(Debug, Clone)]
pub struct Token {
    /// The octets between the delimiters, escapes kept.
    pub text: Vec<u8>,
    /// Whether it was a quoted string.
    pub quoted: bool,
    /// Whether no blank separated it from the previous token.
    pub glued: bool,
}

impl Token {
    /// An unquoted token (for tests and callers building entries).
    pub fn plain(text: &str) -> Self {
        Self {
            text: text.as_bytes().to_vec(),
            quoted: false,
            glued: false,
        }
    }

    fn is(&self, s: &str) -> bool {
        !self.quoted && self.text.eq_ignore_ascii_case(s.as_bytes())
    }

    fn lossy(&self) -> String {
        abbreviate(&self.text)
    }
}

/// At most 64 octets of `b`, lossily as text, for error messages (a 10 MB token is not echoed).
pub fn abbreviate(b: &[u8]) -> String {
    if b.len() > 64 {
        format!("{}... ({} octets)", String::from_utf8_lossy(&b[..64]), b.len())
    } else {
        String::from_utf8_lossy(b).into_owned()
    }
}

/// IANA registered types (RFC 6895 registry): number, mnemonic, and whether we write the type
/// by mnemonic in its own presentation form (see the module doc).
const TYPES: &[(u16, &str, bool)] = &[
    (1, "A", true),
    (2, "NS", true),
    (3, "MD", false),
    (4, "MF", false),
    (5, "CNAME", true),
    (6, "SOA", true),
    (7, "MB", false),
    (8, "MG", false),
    (9, "MR", false),
    (10, "NULL", false),
    (11, "WKS", false),
    (12, "PTR", true),
    (13, "HINFO", true),
    (14, "MINFO", false),
    (15, "MX", true),
    (16, "TXT", true),
    (17, "RP", true),
    (18, "AFSDB", true),
    (19, "X25", false),
    (20, "ISDN", false),
    (21, "RT", true),
    (22, "NSAP", false),
    (23, "NSAP-PTR", false),
    (24, "SIG", false),
    (25, "KEY", false),
    (26, "PX", true),
    (27, "GPOS", false),
    (28, "AAAA", true),
    (29, "LOC", true),
    (30, "NXT", false),
    (31, "EID", false),
    (32, "NIMLOC", false),
    (33, "SRV", true),
    (34, "ATMA", false),
    (35, "NAPTR", true),
    (36, "KX", true),
    (37, "CERT", false),
    (38, "A6", false),
    (39, "DNAME", true),
    (40, "SINK", false),
    (41, "OPT", false),
    (42, "APL", true),
    (43, "DS", true),
    (44, "SSHFP", true),
    (45, "IPSECKEY", true),
    (46, "RRSIG", true),
    (47, "NSEC", true),
    (48, "DNSKEY", true),
    (49, "DHCID", true),
    (50, "NSEC3", true),
    (51, "NSEC3PARAM", true),
    (52, "TLSA", true),
    (53, "SMIMEA", true),
    (55, "HIP", false),
    (56, "NINFO", false),
    (57, "RKEY", false),
    (58, "TALINK", false),
    (59, "CDS", true),
    (60, "CDNSKEY", true),
    (61, "OPENPGPKEY", true),
    (62, "CSYNC", true),
    (63, "ZONEMD", true),
    (64, "SVCB", true),
    (65, "HTTPS", true),
    (66, "DSYNC", false),
    (99, "SPF", true),
    (100, "UINFO", false),
    (101, "UID", false),
    (102, "GID", false),
    (103, "UNSPEC", false),
    (104, "NID", true),
    (105, "L32", true),
    (106, "L64", true),
    (107, "LP", true),
    (108, "EUI48", true),
    (109, "EUI64", true),
    (249, "TKEY", false),
    (250, "TSIG", false),
    (251, "IXFR", false),
    (252, "AXFR", false),
    (253, "MAILB", false),
    (254, "MAILA", false),
    (255, "ANY", false),
    (256, "URI", true),
    (257, "CAA", true),
    (258, "AVC", false),
    (259, "DOA", false),
    (260, "AMTRELAY", false),
    (261, "RESINFO", false),
    (262, "WALLET", false),
    (263, "CLA", false),
    (264, "IPN", false),
    (32768, "TA", false),
    (32769, "DLV", false),
];

/// The IANA mnemonic of a type, if it has one.
pub fn mnemonic(t: u16) -> Option<&'static str> {
    TYPES.iter().find(|e| e.0 == t).map(|e| e.1)
}

/// The name a type is written under: its mnemonic when we write its presentation form, else
/// `TYPEnnn` (RFC 3597 §5), which every reader accepts.
pub fn type_name(t: u16) -> String {
    match TYPES.iter().find(|e| e.0 == t) {
        Some((_, m, true)) => (*m).to_string(),
        _ => format!("TYPE{t}"),
    }
}

/// Parses an IANA mnemonic or `TYPEnnn` (case-insensitive).
pub fn parse_type(s: &str) -> Option<u16> {
    parse_type_bytes(s.as_bytes())
}

fn parse_type_bytes(s: &[u8]) -> Option<u16> {
    if s.len() > 4 && s[..4].eq_ignore_ascii_case(b"TYPE") && s[4..].iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(&s[4..]).ok()?.parse().ok();
    }
    TYPES
        .iter()
        .find(|e| e.1.as_bytes().eq_ignore_ascii_case(s))
        .map(|e| e.0)
}

/// Largest RDATA: RDLENGTH is 16 bits (RFC 1035 §3.2.1).
pub const MAX_RDATA: usize = 65535;

/// One field of a type's RDATA, read from tokens and printed from wire octets.
#[derive(Debug, Clone, Copy)]
enum Field {
    U8,
    U16,
    U32,
    /// A 64-bit number (IPN node number).
    U64,
    /// A 32-bit period that may be written with BIND's units (`1h30m`), printed as a number.
    Period,
    /// A type mnemonic (RRSIG type covered).
    Type,
    /// RRSIG time: `YYYYMMDDHHmmSS` or seconds.
    Time,
    Name,
    /// One `<character-string>`: length octet and up to 255 octets.
    CharStr,
    /// One or more character-strings up to the end.
    CharStrs,
    /// The rest of the RDATA as one quoted string without a length octet (URI target, CAA value).
    StrRest {
        nonempty: bool,
    },
    /// CAA tag: length octet and 1 to 15 letters or digits (RFC 8659 §4.1).
    CaaTag,
    Ipv4,
    Ipv6,
    /// Base64 of the rest, one or more tokens joined.
    Base64Rest,
    /// Hex of the rest, one or more tokens joined.
    HexRest,
    /// Hex of the rest, which may be empty (EID, NIMLOC).
    HexAny,
    /// NSEC3 salt: length octet and hex, `-` when empty.
    Salt,
    /// NSEC3 next hashed owner: length octet and base32hex.
    Base32Next,
    /// Type bitmap (RFC 4034 §4.1.2) up to the end.
    Bitmap,
    /// ILNP 64-bit locator/node id: four groups of up to four hex digits (RFC 6742).
    Ilnp64,
    /// EUI-48 / EUI-64: two hex digits per octet, `-` between (RFC 7043).
    Eui(usize),
    /// DNSSEC algorithm: number or mnemonic (RFC 4034 appendix A.1), printed as a number.
    Alg,
    /// CERT type: number or mnemonic (RFC 4398 §2.1), printed as a number.
    CertType,
    /// A character-string that may be absent at the end (ISDN subaddress).
    OptCharStr,
}

/// DNSSEC algorithm mnemonics (IANA "DNS Security Algorithm Numbers").
const ALGORITHMS: &[(u8, &str)] = &[
    (1, "RSAMD5"),
    (2, "DH"),
    (3, "DSA"),
    (5, "RSASHA1"),
    (6, "DSA-NSEC3-SHA1"),
    (7, "RSASHA1-NSEC3-SHA1"),
    (8, "RSASHA256"),
    (10, "RSASHA512"),
    (12, "ECC-GOST"),
    (13, "ECDSAP256SHA256"),
    (14, "ECDSAP384SHA384"),
    (15, "ED25519"),
    (16, "ED448"),
    (252, "INDIRECT"),
    (253, "PRIVATEDNS"),
    (254, "PRIVATEOID"),
];

/// CERT type mnemonics (RFC 4398 §2.1).
const CERT_TYPES: &[(u16, &str)] = &[
    (1, "PKIX"),
    (2, "SPKI"),
    (3, "PGP"),
    (4, "IPKIX"),
    (5, "ISPKI"),
    (6, "IPGP"),
    (7, "ACPKIX"),
    (8, "IACPKIX"),
    (253, "URI"),
    (254, "OID"),
];

fn schema(t: u16) -> Option<&'static [Field]> {
    use Field::*;
    Some(match t {
        1 => &[Ipv4],
        105 => &[U16, Ipv4],
        28 => &[Ipv6],
        2..=5 | 7..=9 | 12 | 39 => &[Name],
        101 | 102 => &[U32],
        264 => &[U64],
        31 | 32 => &[HexAny],
        100 => &[CharStr],
        263 => &[CharStrs],
        32768 | 32769 => &[U16, Alg, U8, HexRest],
        6 => &[Name, Name, U32, Period, Period, Period, Period],
        14 | 17 => &[Name, Name],
        15 | 18 | 21 | 36 | 107 => &[U16, Name],
        13 => &[CharStr, CharStr],
        16 | 99 => &[CharStrs],
        26 => &[U16, Name, Name],
        33 => &[U16, U16, U16, Name],
        35 => &[U16, U16, CharStr, CharStr, CharStr, Name],
        104 | 106 => &[U16, Ilnp64],
        108 => &[Eui(6)],
        109 => &[Eui(8)],
        256 => &[U16, U16, StrRest { nonempty: true }],
        257 => &[U8, CaaTag, StrRest { nonempty: false }],
        44 => &[U8, U8, HexRest],
        52 | 53 => &[U8, U8, U8, HexRest],
        61 | 49 => &[Base64Rest],
        43 | 59 => &[U16, Alg, U8, HexRest],
        25 | 48 | 57 | 60 => &[U16, U8, Alg, Base64Rest],
        19 => &[CharStr],
        20 => &[CharStr, OptCharStr],
        27 => &[CharStr, CharStr, CharStr],
        56 | 258 | 261 | 262 => &[CharStrs],
        23 => &[Name],
        58 => &[Name, Name],
        37 => &[CertType, U16, Alg, Base64Rest],
        66 => &[Type, U8, U16, Name],
        24 => &[Type, Alg, U8, U32, Time, Time, U16, Name, Base64Rest],
        63 => &[U32, U8, U8, HexRest],
        62 => &[U32, U16, Bitmap],
        47 => &[Name, Bitmap],
        51 => &[U8, U8, U16, Salt],
        50 => &[U8, U8, U16, Salt, Base32Next, Bitmap],
        46 => &[Type, Alg, U8, U32, Time, Time, U16, Name, Base64Rest],
        _ => return None,
    })
}

/// Whether we read and write type `t` in a presentation form of its own.
fn has_form(t: u16) -> bool {
    schema(t).is_some()
        || matches!(
            t,
            11 | 22 | 29 | 30 | 34 | 38 | 40 | 42 | 45 | 55 | 64 | 65 | 259 | 260
        )
}

/// Parses the RDATA tokens of one record of type `rt` into wire form (names lowercased, as
/// the signer keeps them). `origin` completes relative names and `@`; `None` makes them an
/// error. RFC 3597 `\#` data is accepted for every type; for a type with a form of its own it
/// must be valid data of that type.
pub fn parse_rdata(rt: u16, toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let v = if toks.first().is_some_and(|t| t.is("\\#")) {
        let len: usize = std::str::from_utf8(&toks.get(1).ok_or("missing \\# data length")?.text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("bad \\# data length")?;
        let hex: Vec<u8> = toks[2.min(toks.len())..]
            .iter()
            .flat_map(|t| t.text.iter().copied())
            .collect();
        let data = HEXLOWER_PERMISSIVE
            .decode(&hex)
            .map_err(|e| format!("bad hex in \\# data: {e}"))?;
        if data.len() != len {
            return Err(format!("\\# length {len} but {} octets given", data.len()));
        }
        if has_form(rt) {
            // through the type's own form, which validates it and gives the canonical octets
            match present_known(rt, &data) {
                Some(text) => parse_rdata(rt, &split_simple(&text), Some(&Name::root()))?,
                None if rare::valid_without_form(rt, &data) => data,
                None => {
                    return Err(format!(
                        "\\# data is not valid {} data",
                        mnemonic(rt).unwrap_or("?")
                    ));
                }
            }
        } else {
            data
        }
    } else if let Some(fields) = schema(rt) {
        parse_fields(fields, toks, origin)?
    } else {
        match rt {
            11 => rare::parse_wks(toks)?,
            22 => rare::parse_nsap(toks)?,
            29 => parse_loc(toks)?,
            30 => rare::parse_nxt(toks, origin)?,
            34 => rare::parse_atma(toks)?,
            38 => rare::parse_a6(toks, origin)?,
            40 => rare::parse_sink(toks)?,
            42 => parse_apl(toks)?,
            55 => rare::parse_hip(toks, origin)?,
            259 => rare::parse_doa(toks)?,
            260 => rare::parse_amtrelay(toks, origin)?,
            45 => parse_ipseckey(toks, origin)?,
            64 | 65 => parse_svcb(toks, origin)?,
            _ => {
                return Err(match mnemonic(rt) {
                    Some(m) => format!("{m} is only read in RFC 3597 form (\\# length hex)"),
                    None => "unknown type: give its data in RFC 3597 form (\\# length hex)".into(),
                });
            }
        }
    };
    if v.len() > MAX_RDATA {
        return Err(format!(
            "RDATA of {} octets; at most {MAX_RDATA} fit in a record (RFC 1035 §3.2.1)",
            v.len()
        ));
    }
    Ok(v)
}

/// Splits our own presentation output back into tokens (quoted strings kept whole).
fn split_simple(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut glued = false;
    while i < b.len() {
        if b[i] == b' ' {
            i += 1;
            glued = false;
            continue;
        }
        let mut t = Vec::new();
        let quoted = b[i] == b'"';
        if quoted {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    t.push(b[i]);
                    i += 1;
                }
                t.push(b[i]);
                i += 1;
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    t.push(b[i]);
                    i += 1;
                }
                t.push(b[i]);
                i += 1;
            }
        }
        out.push(Token {
            text: t,
            quoted,
            glued,
        });
        glued = true;
    }
    out
}

/// Decodes the escapes of a character-string or label (RFC 1035 §5.1): `\X` and `\DDD`.
pub fn unescape(b: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b.get(i + 1..i + 4) {
                Some(d) if d.iter().all(u8::is_ascii_digit) => {
                    let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
                    out.push(u8::try_from(v).map_err(|_| "escape above \\255".to_string())?);
                    i += 4;
                }
                _ => {
                    out.push(*b.get(i + 1).ok_or("dangling backslash")?);
                    i += 2;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn ascii(t: &Token) -> Result<&str, String> {
    std::str::from_utf8(&t.text).map_err(|_| format!("bad value {:?}", t.lossy()))
}

fn number<T: std::str::FromStr>(t: Option<&Token>, what: &str) -> Result<T, String> {
    let t = t.ok_or_else(|| format!("missing {what}"))?;
    if t.text.first() == Some(&b'+') {
        return Err(format!("bad {what} {:?}", t.lossy()));
    }
    ascii(t)?
        .parse()
        .map_err(|_| format!("bad {what} {:?}", t.lossy()))
}

/// A TTL or period: seconds, or BIND's units (`1w2d3h4m5s`, case-insensitive).
pub fn parse_period(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    if s.iter().all(u8::is_ascii_digit) {
        return std::str::from_utf8(s)
            .ok()?
            .parse::<u64>()
            .ok()
            .filter(|v| *v <= u32::MAX as u64);
    }
    let mut total: u64 = 0;
    let mut cur: Option<u64> = None;
    for &c in s {
        if c.is_ascii_digit() {
            cur = Some(cur.unwrap_or(0).checked_mul(10)?.checked_add((c - b'0') as u64)?);
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            b'w' => 604_800,
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        total = total.checked_add(cur.take()?.checked_mul(mult)?)?;
    }
    if let Some(c) = cur {
        total = total.checked_add(c)?;
    }
    (total <= u32::MAX as u64).then_some(total)
}

fn parse_name(t: Option<&Token>, origin: Option<&Name>) -> Result<Name, String> {
    let t = t.ok_or("missing domain name")?;
    if t.text == b"@" && !t.quoted {
        return origin
            .cloned()
            .ok_or_else(|| "'@' used but no origin known".to_string());
    }
    Name::parse_bytes(&t.text, origin).map_err(|e| e.to_string())
}

fn char_str(t: &Token) -> Result<Vec<u8>, String> {
    let s = unescape(&t.text)?;
    if s.len() > 255 {
        return Err(format!("character-string of {} octets; at most 255", s.len()));
    }
    Ok(s)
}

fn joined(toks: &[Token]) -> Vec<u8> {
    toks.iter().flat_map(|t| t.text.iter().copied()).collect()
}

fn parse_types(toks: &[Token]) -> Result<Vec<u16>, String> {
    let mut v: Vec<u16> = toks
        .iter()
        .map(|t| parse_type_bytes(&t.text).ok_or_else(|| format!("unknown type {:?} in bitmap", t.lossy())))
        .collect::<Result<_, _>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn parse_fields(fields: &[Field], toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    let mut i = 0usize;
    for f in fields {
        let t = toks.get(i);
        i += 1;
        match *f {
            Field::U8 => v.push(number::<u8>(t, "number (0-255)")?),
            Field::Alg => {
                let t = t.ok_or("missing algorithm")?;
                match ALGORITHMS.iter().find(|a| t.is(a.1)) {
                    Some(a) => v.push(a.0),
                    None => v.push(number::<u8>(Some(t), "algorithm")?),
                }
            }
            Field::CertType => {
                let t = t.ok_or("missing certificate type")?;
                match CERT_TYPES.iter().find(|a| t.is(a.1)) {
                    Some(a) => v.extend(a.0.to_be_bytes()),
                    None => v.extend(number::<u16>(Some(t), "certificate type")?.to_be_bytes()),
                }
            }
            Field::OptCharStr => {
                if let Some(t) = t {
                    let s = char_str(t)?;
                    v.push(s.len() as u8);
                    v.extend(s);
                } else {
                    i -= 1;
                }
            }
            Field::U16 => v.extend(number::<u16>(t, "number (0-65535)")?.to_be_bytes()),
            Field::U32 => v.extend(number::<u32>(t, "number")?.to_be_bytes()),
            Field::U64 => v.extend(number::<u64>(t, "number")?.to_be_bytes()),
            Field::HexAny => {
                let rest = joined(&toks[(i - 1).min(toks.len())..]);
                v.extend(
                    HEXLOWER_PERMISSIVE
                        .decode(&rest)
                        .map_err(|e| format!("bad hex: {e}"))?,
                );
                i = toks.len();
            }
            Field::Period => {
                let t = t.ok_or("missing period")?;
                let p = parse_period(&t.text).ok_or_else(|| format!("bad period {:?}", t.lossy()))?;
                v.extend((p as u32).to_be_bytes());
            }
            Field::Type => {
                let t = t.ok_or("missing type")?;
                let ty = parse_type_bytes(&t.text).ok_or_else(|| format!("unknown type {:?}", t.lossy()))?;
                v.extend(ty.to_be_bytes());
            }
            Field::Time => {
                let t = t.ok_or("missing time")?;
                let s = ascii(t)?;
                v.extend(
                    parse_time(s)
                        .ok_or_else(|| format!("bad time {s:?}"))?
                        .to_be_bytes(),
                );
            }
            Field::Name => v.extend_from_slice(parse_name(t, origin)?.wire()),
            Field::CharStr => {
                let s = char_str(t.ok_or("missing character-string")?)?;
                v.push(s.len() as u8);
                v.extend(s);
            }
            Field::CharStrs => {
                let rest = &toks[(i - 1).min(toks.len())..];
                if rest.is_empty() {
                    return Err("at least one character-string needed".into());
                }
                for t in rest {
                    let s = char_str(t)?;
                    v.push(s.len() as u8);
                    v.extend(s);
                }
                i = toks.len();
            }
            Field::StrRest { nonempty } => {
                let t = t.ok_or("missing string")?;
                let s = unescape(&t.text)?;
                if nonempty && s.is_empty() {
                    return Err("empty string".into());
                }
                v.extend(s);
            }
            Field::CaaTag => {
                let t = t.ok_or("missing CAA tag")?;
                if t.quoted
                    || t.text.is_empty()
                    || t.text.len() > 15
                    || !t.text.iter().all(u8::is_ascii_alphanumeric)
                {
                    return Err(format!("bad CAA tag {:?} (1 to 15 letters or digits)", t.lossy()));
                }
                v.push(t.text.len() as u8);
                v.extend_from_slice(&t.text);
            }
            Field::Ipv4 => v.extend(number::<Ipv4Addr>(t, "IPv4 address")?.octets()),
            Field::Ipv6 => v.extend(number::<Ipv6Addr>(t, "IPv6 address")?.octets()),
            Field::Base64Rest | Field::HexRest => {
                let rest = joined(&toks[(i - 1).min(toks.len())..]);
                if rest.is_empty() {
                    return Err("missing data".into());
                }
                let d = if matches!(f, Field::Base64Rest) {
                    BASE64.decode(&rest).map_err(|e| format!("bad base64: {e}"))?
                } else {
                    HEXLOWER_PERMISSIVE
                        .decode(&rest)
                        .map_err(|e| format!("bad hex: {e}"))?
                };
                if d.is_empty() {
                    return Err("missing data".into());
                }
                v.extend(d);
                i = toks.len();
            }
            Field::Salt => {
                let t = t.ok_or("missing salt")?;
                let s = if t.text == b"-" {
                    Vec::new()
                } else {
                    HEXLOWER_PERMISSIVE
                        .decode(&t.text)
                        .map_err(|e| format!("bad salt: {e}"))?
                };
                if s.len() > 255 {
                    return Err(format!(
                        "NSEC3 salt of {} octets; at most 255 (RFC 5155 §3.1.5)",
                        s.len()
                    ));
                }
                v.push(s.len() as u8);
                v.extend(s);
            }
            Field::Base32Next => {
                let t = t.ok_or("missing next hashed owner")?;
                let d = BASE32_DNSSEC
                    .decode(&t.text.to_ascii_lowercase())
                    .map_err(|e| format!("bad base32hex: {e}"))?;
                if d.is_empty() || d.len() > 255 {
                    return Err("bad next hashed owner length".into());
                }
                v.push(d.len() as u8);
                v.extend(d);
            }
            Field::Bitmap => {
                v.extend(encode_bitmap(&parse_types(&toks[(i - 1).min(toks.len())..])?));
                i = toks.len();
            }
            Field::Ilnp64 => {
                let t = t.ok_or("missing 64-bit locator")?;
                let s = ascii(t)?;
                let groups: Vec<&str> = s.split(':').collect();
                if groups.len() != 4 {
                    return Err(format!("bad 64-bit locator {s:?} (four groups of hex digits)"));
                }
                for g in groups {
                    if g.is_empty() || g.len() > 4 {
                        return Err(format!("bad 64-bit locator {s:?}"));
                    }
                    let n = u16::from_str_radix(g, 16).map_err(|_| format!("bad 64-bit locator {s:?}"))?;
                    v.extend(n.to_be_bytes());
                }
            }
            Field::Eui(n) => {
                let t = t.ok_or("missing EUI address")?;
                let s = ascii(t)?;
                let groups: Vec<&str> = s.split('-').collect();
                if groups.len() != n || groups.iter().any(|g| g.len() != 2) {
                    return Err(format!("bad EUI address {s:?} (xx-xx-...)"));
                }
                for g in groups {
                    v.push(u8::from_str_radix(g, 16).map_err(|_| format!("bad EUI address {s:?}"))?);
                }
            }
        }
    }
    if i < toks.len() {
        return Err(format!("trailing data {:?}", toks[i].lossy()));
    }
    Ok(v)
}

/// Presentation format of RDATA of type `t`: the type's own form where we write one and the
/// data is valid for it, else RFC 3597 `\# len hex` (always lossless).
pub fn present(t: u16, rdata: &[u8]) -> String {
    present_record(t, rdata).1
}

/// The type and RDATA fields of a record line: mnemonic and the type's own form where we write
/// one (see the module doc), else `TYPEnnn` and `\# len hex`, which every reader takes.
pub fn present_record(t: u16, rdata: &[u8]) -> (String, String) {
    let written = TYPES.iter().any(|e| e.0 == t && e.2);
    match present_known(t, rdata) {
        Some(s) if written && !s.is_empty() => (type_name(t), s),
        _ => (format!("TYPE{t}"), generic(rdata)),
    }
}

fn generic(rdata: &[u8]) -> String {
    if rdata.is_empty() {
        "\\# 0".into()
    } else {
        format!("\\# {} {}", rdata.len(), HEXUPPER.encode(rdata))
    }
}

/// Writes a character-string quoted, with `"` and `\` escaped and every octet outside
/// printable ASCII as `\DDD`.
pub fn quoted(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
}

fn present_known(t: u16, b: &[u8]) -> Option<String> {
    if let Some(fields) = schema(t) {
        return present_fields(fields, b);
    }
    match t {
        11 => rare::present_wks(b),
        22 => rare::present_nsap(b),
        29 => present_loc(b),
        30 => rare::present_nxt(b),
        34 => rare::present_atma(b),
        38 => rare::present_a6(b),
        40 => rare::present_sink(b),
        42 => present_apl(b),
        55 => rare::present_hip(b),
        259 => rare::present_doa(b),
        260 => rare::present_amtrelay(b),
        45 => present_ipseckey(b),
        64 | 65 => present_svcb(b),
        _ => None,
    }
}

fn present_fields(fields: &[Field], b: &[u8]) -> Option<String> {
    let mut out = String::new();
    let mut p = 0usize;
    for f in fields {
        if !out.is_empty() {
            out.push(' ');
        }
        match *f {
            Field::U8 | Field::Alg => {
                let _ = write!(out, "{}", b.get(p)?);
                p += 1;
            }
            Field::OptCharStr => {
                if p < b.len() {
                    let l = b[p] as usize;
                    quoted(&mut out, b.get(p + 1..p + 1 + l)?);
                    p += 1 + l;
                }
            }
            Field::U16 | Field::CertType => {
                let _ = write!(out, "{}", u16::from_be_bytes(b.get(p..p + 2)?.try_into().ok()?));
                p += 2;
            }
            Field::U32 | Field::Period | Field::Time => {
                let v = u32::from_be_bytes(b.get(p..p + 4)?.try_into().ok()?);
                if matches!(f, Field::Time) {
                    out.push_str(&format_time(v));
                } else {
                    let _ = write!(out, "{v}");
                }
                p += 4;
            }
            Field::U64 => {
                let _ = write!(out, "{}", u64::from_be_bytes(b.get(p..p + 8)?.try_into().ok()?));
                p += 8;
            }
            Field::HexAny => {
                out.push_str(&HEXUPPER.encode(b.get(p..)?));
                p = b.len();
            }
            Field::Type => {
                out.push_str(&type_name(u16::from_be_bytes(b.get(p..p + 2)?.try_into().ok()?)));
                p += 2;
            }
            Field::Name => {
                let (n, used) = Name::read_wire(b.get(p..)?).ok()?;
                let _ = write!(out, "{n}");
                p += used;
            }
            Field::CharStr => {
                let l = *b.get(p)? as usize;
                quoted(&mut out, b.get(p + 1..p + 1 + l)?);
                p += 1 + l;
            }
            Field::CharStrs => {
                if p >= b.len() {
                    return None;
                }
                let mut first = true;
                while p < b.len() {
                    let l = b[p] as usize;
                    if !first {
                        out.push(' ');
                    }
                    first = false;
                    quoted(&mut out, b.get(p + 1..p + 1 + l)?);
                    p += 1 + l;
                }
            }
            Field::StrRest { nonempty } => {
                if nonempty && p >= b.len() {
                    return None;
                }
                quoted(&mut out, b.get(p..)?);
                p = b.len();
            }
            Field::CaaTag => {
                let l = *b.get(p)? as usize;
                let tag = b.get(p + 1..p + 1 + l)?;
                if tag.is_empty() || tag.len() > 15 || !tag.iter().all(u8::is_ascii_alphanumeric) {
                    return None;
                }
                out.push_str(std::str::from_utf8(tag).ok()?);
                p += 1 + l;
            }
            Field::Ipv4 => {
                let a: [u8; 4] = b.get(p..p + 4)?.try_into().ok()?;
                let _ = write!(out, "{}", Ipv4Addr::from(a));
                p += 4;
            }
            Field::Ipv6 => {
                let a: [u8; 16] = b.get(p..p + 16)?.try_into().ok()?;
                let _ = write!(out, "{}", Ipv6Addr::from(a));
                p += 16;
            }
            Field::Base64Rest | Field::HexRest => {
                let rest = b.get(p..)?;
                if rest.is_empty() {
                    return None;
                }
                if matches!(f, Field::Base64Rest) {
                    out.push_str(&BASE64.encode(rest));
                } else {
                    out.push_str(&HEXUPPER.encode(rest));
                }
                p = b.len();
            }
            Field::Salt => {
                let l = *b.get(p)? as usize;
                let s = b.get(p + 1..p + 1 + l)?;
                if s.is_empty() {
                    out.push('-');
                } else {
                    out.push_str(&HEXUPPER.encode(s));
                }
                p += 1 + l;
            }
            Field::Base32Next => {
                let l = *b.get(p)? as usize;
                let s = b.get(p + 1..p + 1 + l)?;
                if s.is_empty() {
                    return None;
                }
                out.push_str(&BASE32_DNSSEC.encode(s));
                p += 1 + l;
            }
            Field::Bitmap => {
                let types = decode_bitmap(b.get(p..)?).ok()?;
                let names: Vec<String> = types.into_iter().map(type_name).collect();
                out.push_str(&names.join(" "));
                if out.ends_with(' ') {
                    out.pop();
                }
                p = b.len();
            }
            Field::Ilnp64 => {
                let g = b.get(p..p + 8)?;
                let _ = write!(
                    out,
                    "{:02x}{:02x}:{:02x}{:02x}:{:02x}{:02x}:{:02x}{:02x}",
                    g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7]
                );
                p += 8;
            }
            Field::Eui(n) => {
                let g = b.get(p..p + n)?;
                let parts: Vec<String> = g.iter().map(|x| format!("{x:02x}")).collect();
                out.push_str(&parts.join("-"));
                p += n;
            }
        }
    }
    (p == b.len()).then_some(out.trim_end().to_string())
}

// ---- LOC (RFC 1876 §3) ----

/// Parses a decimal with up to `frac` fraction digits, scaled by 10^frac.
fn decimal(s: &str, frac: u32) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, fr) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && fr.is_empty()
        || fr.len() > frac as usize
        || !int.bytes().all(|c| c.is_ascii_digit())
        || !fr.bytes().all(|c| c.is_ascii_digit())
        || int.len() > 12
    {
        return None;
    }
    let mut v: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    v = v.checked_mul(10i64.pow(frac))?;
    if !fr.is_empty() {
        let f: i64 = fr.parse().ok()?;
        v += f * 10i64.pow(frac - fr.len() as u32);
    }
    Some(if neg { -v } else { v })
}

fn meters(t: &Token) -> Result<i64, String> {
    let s = ascii(t)?;
    let s = s.strip_suffix(['m', 'M']).unwrap_or(s);
    decimal(s, 2).ok_or_else(|| format!("bad LOC distance {s:?}"))
}

fn loc_size(cm: i64) -> Result<u8, String> {
    if cm < 0 {
        return Err("negative LOC size".into());
    }
    let mut e = 0u32;
    while e < 9 && cm >= 10 * 10i64.pow(e) {
        e += 1;
    }
    let m = cm / 10i64.pow(e);
    if m > 9 || m * 10i64.pow(e) != cm {
        return Err(format!("LOC size {cm} cm is not a digit times a power of ten"));
    }
    Ok(((m as u8) << 4) | e as u8)
}

fn parse_loc(toks: &[Token]) -> Result<Vec<u8>, String> {
    let mut i = 0usize;
    let mut coord = |hemis: [&str; 2], max_deg: i64| -> Result<u32, String> {
        let deg: u8 = number(toks.get(i), "LOC degrees")?;
        i += 1;
        let deg = i64::from(deg);
        if deg > max_deg {
            return Err("LOC coordinate out of range".into());
        }
        let mut ms = deg * 3_600_000;
        let mut parts = 0;
        while parts < 2 {
            let t = toks.get(i).ok_or("LOC coordinate truncated")?;
            if hemis.iter().any(|h| t.is(h)) {
                break;
            }
            let s = ascii(t)?;
            if parts == 0 {
                let m: i64 = s.parse().map_err(|_| format!("bad LOC minutes {s:?}"))?;
                if !(0..60).contains(&m) {
                    return Err("LOC minutes out of range".into());
                }
                ms += m * 60_000;
            } else {
                let sec = decimal(s, 3)
                    .filter(|v| (0..60_000).contains(v))
                    .ok_or_else(|| format!("bad LOC seconds {s:?}"))?;
                ms += sec;
            }
            parts += 1;
            i += 1;
        }
        let h = toks.get(i).ok_or("missing LOC hemisphere")?;
        i += 1;
        let sign = if h.is(hemis[0]) {
            1
        } else if h.is(hemis[1]) {
            -1
        } else {
            return Err(format!("bad LOC hemisphere {:?}", h.lossy()));
        };
        if ms > max_deg * 3_600_000 {
            return Err("LOC coordinate out of range".into());
        }
        Ok(((1i64 << 31) + sign * ms) as u32)
    };
    let lat = coord(["N", "S"], 90)?;
    let lon = coord(["E", "W"], 180)?;
    let alt = meters(toks.get(i).ok_or("missing LOC altitude")?)?;
    i += 1;
    if !(-10_000_000..=4_284_967_295).contains(&alt) {
        return Err("LOC altitude out of range".into());
    }
    let mut sizes = [100i64, 1_000_000, 1_000];
    for s in &mut sizes {
        if let Some(t) = toks.get(i) {
            *s = meters(t)?;
            i += 1;
        }
    }
    if i < toks.len() {
        return Err("trailing data".into());
    }
    let mut v = vec![0, loc_size(sizes[0])?, loc_size(sizes[1])?, loc_size(sizes[2])?];
    v.extend(lat.to_be_bytes());
    v.extend(lon.to_be_bytes());
    v.extend(((alt + 10_000_000) as u32).to_be_bytes());
    Ok(v)
}

fn present_loc(b: &[u8]) -> Option<String> {
    if b.len() != 16 || b[0] != 0 {
        return None;
    }
    let size = |x: u8| -> Option<String> {
        let (m, e) = ((x >> 4) as i64, (x & 15) as u32);
        if m > 9 || e > 9 {
            return None;
        }
        let cm = m * 10i64.pow(e);
        Some(format!("{}.{:02}m", cm / 100, cm % 100))
    };
    let coord = |v: u32, h: [char; 2], max: i64| -> Option<String> {
        let d = v as i64 - (1i64 << 31);
        let (h, ms) = if d < 0 { (h[1], -d) } else { (h[0], d) };
        if ms > max * 3_600_000 {
            return None;
        }
        Some(format!(
            "{} {} {}.{:03} {h}",
            ms / 3_600_000,
            (ms / 60_000) % 60,
            (ms / 1000) % 60,
            ms % 1000
        ))
    };
    let u = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let alt = u(12) as i64 - 10_000_000;
    let sign = if alt < 0 { "-" } else { "" };
    Some(format!(
        "{} {} {sign}{}.{:02}m {} {} {}",
        coord(u(4), ['N', 'S'], 90)?,
        coord(u(8), ['E', 'W'], 180)?,
        alt.abs() / 100,
        alt.abs() % 100,
        size(b[1])?,
        size(b[2])?,
        size(b[3])?
    ))
}

// ---- APL (RFC 3123 §4) ----

fn parse_apl(toks: &[Token]) -> Result<Vec<u8>, String> {
    let mut v = Vec::new();
    for t in toks {
        let s = ascii(t)?;
        let bad = || format!("bad APL item {s:?} ([!]1:a.b.c.d/len or [!]2:ipv6/len)");
        let (neg, rest) = match s.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let (afi, rest) = rest.split_once(':').ok_or_else(bad)?;
        let (addr, prefix) = rest.rsplit_once('/').ok_or_else(bad)?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        let (afi, mut bytes) = match afi {
            "1" if prefix <= 32 => (
                1u16,
                addr.parse::<Ipv4Addr>().map_err(|_| bad())?.octets().to_vec(),
            ),
            "2" if prefix <= 128 => (
                2u16,
                addr.parse::<Ipv6Addr>().map_err(|_| bad())?.octets().to_vec(),
            ),
            _ => return Err(bad()),
        };
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        v.extend(afi.to_be_bytes());
        v.push(prefix);
        v.push(((neg as u8) << 7) | bytes.len() as u8);
        v.extend(bytes);
    }
    Ok(v)
}

fn present_apl(b: &[u8]) -> Option<String> {
    let mut items = Vec::new();
    let mut p = 0;
    while p < b.len() {
        let afi = u16::from_be_bytes(b.get(p..p + 2)?.try_into().ok()?);
        let prefix = *b.get(p + 2)?;
        let nl = *b.get(p + 3)?;
        let len = (nl & 0x7f) as usize;
        let afd = b.get(p + 4..p + 4 + len)?;
        if afd.last() == Some(&0) {
            return None; // trailing zero octets must be removed (RFC 3123 §4)
        }
        let neg = if nl & 0x80 != 0 { "!" } else { "" };
        let addr = match afi {
            1 if len <= 4 && prefix <= 32 => {
                let mut a = [0u8; 4];
                a[..len].copy_from_slice(afd);
                Ipv4Addr::from(a).to_string()
            }
            2 if len <= 16 && prefix <= 128 => {
                let mut a = [0u8; 16];
                a[..len].copy_from_slice(afd);
                Ipv6Addr::from(a).to_string()
            }
            _ => return None,
        };
        items.push(format!("{neg}{afi}:{addr}/{prefix}"));
        p += 4 + len;
    }
    Some(items.join(" "))
}

// ---- IPSECKEY (RFC 4025 §3) ----

fn parse_ipseckey(toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let prec: u8 = number(toks.first(), "precedence")?;
    let gtype: u8 = number(toks.get(1), "gateway type")?;
    let alg: u8 = number(toks.get(2), "algorithm")?;
    let mut v = vec![prec, gtype, alg];
    let g = toks.get(3).ok_or("missing gateway")?;
    match gtype {
        0 if g.text == b"." => {}
        1 => v.extend(number::<Ipv4Addr>(Some(g), "IPv4 gateway")?.octets()),
        2 => v.extend(number::<Ipv6Addr>(Some(g), "IPv6 gateway")?.octets()),
        3 => v.extend_from_slice(parse_name(Some(g), origin)?.wire()),
        _ => return Err("bad gateway type or gateway".into()),
    }
    let key = joined(&toks[4.min(toks.len())..]);
    v.extend(BASE64.decode(&key).map_err(|e| format!("bad base64 key: {e}"))?);
    Ok(v)
}

fn present_ipseckey(b: &[u8]) -> Option<String> {
    let (prec, gtype, alg) = (*b.first()?, *b.get(1)?, *b.get(2)?);
    let (gw, used) = match gtype {
        0 => (".".to_string(), 0),
        1 => (
            Ipv4Addr::from(<[u8; 4]>::try_from(b.get(3..7)?).ok()?).to_string(),
            4,
        ),
        2 => (
            Ipv6Addr::from(<[u8; 16]>::try_from(b.get(3..19)?).ok()?).to_string(),
            16,
        ),
        3 => {
            let (n, used) = Name::read_wire(b.get(3..)?).ok()?;
            (n.to_string(), used)
        }
        _ => return None,
    };
    let key = &b[3 + used..];
    let mut s = format!("{prec} {gtype} {alg} {gw}");
    if !key.is_empty() {
        s.push(' ');
        s.push_str(&BASE64.encode(key));
    }
    Some(s)
}

// ---- SVCB / HTTPS (RFC 9460 §2.1, appendix A) ----

const SVC_KEYS: &[&str] = &[
    "mandatory",
    "alpn",
    "no-default-alpn",
    "port",
    "ipv4hint",
    "ech",
    "ipv6hint",
    "dohpath",
    "ohttp",
];

fn svc_key(s: &str) -> Option<u16> {
    if let Some(i) = SVC_KEYS.iter().position(|k| k.eq_ignore_ascii_case(s)) {
        return Some(i as u16);
    }
    let n = s.strip_prefix("key")?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    n.parse().ok().filter(|k| *k != 65535)
}

/// Keys 0 to 6 (RFC 9460) by name; later ones (`dohpath`, `ohttp`) as `keyNNNNN`, since Knot
/// 3.2 does not know their names.
fn svc_key_name(k: u16) -> String {
    SVC_KEYS[..7]
        .get(k as usize)
        .map_or_else(|| format!("key{k}"), |s| (*s).to_string())
}

/// Splits a value-list (RFC 9460 appendix A.1) on unescaped commas.
fn value_list(v: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![Vec::new()];
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'\\' if i + 1 < v.len() => {
                if let Some(last) = out.last_mut() {
                    last.push(v[i + 1]);
                }
                i += 2;
            }
            b',' => {
                out.push(Vec::new());
                i += 1;
            }
            c => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
                i += 1;
            }
        }
    }
    out
}

fn parse_svcb(toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let prio: u16 = number(toks.first(), "SvcPriority")?;
    let target = parse_name(toks.get(1), origin)?;
    let mut params: std::collections::BTreeMap<u16, Vec<u8>> = Default::default();
    let mut i = 2;
    while i < toks.len() {
        let t = &toks[i];
        i += 1;
        let (key, raw_value): (&[u8], Option<Vec<u8>>) = match t.text.iter().position(|c| *c == b'=') {
            Some(eq) if !t.quoted => {
                let key = &t.text[..eq];
                let after = &t.text[eq + 1..];
                if after.is_empty() && toks.get(i).is_some_and(|n| n.quoted && n.glued) {
                    i += 1;
                    (key, Some(unescape(&toks[i - 1].text)?))
                } else {
                    (key, Some(unescape(after)?))
                }
            }
            _ if t.quoted => return Err("SvcParam key expected, got a quoted string".into()),
            _ => (&t.text[..], None),
        };
        let key_s = std::str::from_utf8(key).map_err(|_| "bad SvcParamKey")?;
        let k = svc_key(key_s).ok_or_else(|| format!("bad SvcParamKey {key_s:?}"))?;
        let value = raw_value.unwrap_or_default();
        let wire: Vec<u8> = match k {
            0 => {
                let mut keys = Vec::new();
                for item in value_list(&value) {
                    let s = std::str::from_utf8(&item).map_err(|_| "bad mandatory key")?;
                    keys.push(svc_key(s).ok_or_else(|| format!("bad mandatory key {s:?}"))?);
                }
                keys.sort_unstable();
                if keys.is_empty() || keys.windows(2).any(|w| w[0] == w[1]) || keys.contains(&0) {
                    return Err("bad mandatory list".into());
                }
                keys.iter().flat_map(|k| k.to_be_bytes()).collect()
            }
            1 => {
                let mut w = Vec::new();
                for id in value_list(&value) {
                    if id.is_empty() || id.len() > 255 {
                        return Err("bad alpn id".into());
                    }
                    w.push(id.len() as u8);
                    w.extend(id);
                }
                w
            }
            2 | 8 => {
                if !value.is_empty() {
                    return Err(format!("{key_s} takes no value"));
                }
                Vec::new()
            }
            3 => {
                let s = std::str::from_utf8(&value).map_err(|_| "bad port")?;
                s.parse::<u16>()
                    .map_err(|_| format!("bad port {s:?}"))?
                    .to_be_bytes()
                    .to_vec()
            }
            4 | 6 => {
                let mut w = Vec::new();
                for a in value_list(&value) {
                    let s = std::str::from_utf8(&a).map_err(|_| "bad address hint")?;
                    if k == 4 {
                        w.extend(
                            s.parse::<Ipv4Addr>()
                                .map_err(|_| format!("bad ipv4hint {s:?}"))?
                                .octets(),
                        );
                    } else {
                        w.extend(
                            s.parse::<Ipv6Addr>()
                                .map_err(|_| format!("bad ipv6hint {s:?}"))?
                                .octets(),
                        );
                    }
                }
                w
            }
            5 => BASE64
                .decode(&value)
                .map_err(|e| format!("bad ech base64: {e}"))?,
            _ => value,
        };
        if wire.len() > 65535 || params.insert(k, wire).is_some() {
            return Err(format!("SvcParamKey {key_s} given twice or too long"));
        }
    }
    // RFC 9460 §8: the keys named mandatory must be present; no-default-alpn needs alpn (§7.1.1)
    if let Some(m) = params.get(&0) {
        for k in m.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])) {
            if !params.contains_key(&k) {
                return Err(format!("mandatory key {} is missing", svc_key_name(k)));
            }
        }
    }
    if params.contains_key(&2) && !params.contains_key(&1) {
        return Err("no-default-alpn without alpn".into());
    }
    let mut v = prio.to_be_bytes().to_vec();
    v.extend_from_slice(target.wire());
    for (k, w) in params {
        v.extend(k.to_be_bytes());
        v.extend((w.len() as u16).to_be_bytes());
        v.extend(w);
    }
    Ok(v)
}

fn present_svcb(b: &[u8]) -> Option<String> {
    let prio = u16::from_be_bytes(b.get(0..2)?.try_into().ok()?);
    let (target, used) = Name::read_wire(b.get(2..)?).ok()?;
    let mut out = format!("{prio} {target}");
    let mut p = 2 + used;
    let mut last: Option<u16> = None;
    while p < b.len() {
        let k = u16::from_be_bytes(b.get(p..p + 2)?.try_into().ok()?);
        let l = u16::from_be_bytes(b.get(p + 2..p + 4)?.try_into().ok()?) as usize;
        let v = b.get(p + 4..p + 4 + l)?;
        if last.is_some_and(|x| x >= k) || k == 65535 {
            return None; // keys in strictly increasing order (RFC 9460 §2.2)
        }
        last = Some(k);
        p += 4 + l;
        out.push(' ');
        out.push_str(&svc_key_name(k));
        let list = |chunks: Vec<Vec<u8>>| -> Vec<u8> {
            let mut s = Vec::new();
            for (i, c) in chunks.iter().enumerate() {
                if i > 0 {
                    s.push(b',');
                }
                for &x in c {
                    if x == b',' || x == b'\\' {
                        s.push(b'\\');
                    }
                    s.push(x);
                }
            }
            s
        };
        let text: Vec<u8> = match k {
            0 => {
                if l == 0 || !l.is_multiple_of(2) {
                    return None;
                }
                let keys: Vec<u16> = v.chunks(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
                if keys.windows(2).any(|w| w[0] >= w[1]) || keys.contains(&0) {
                    return None;
                }
                keys.iter()
                    .map(|k| svc_key_name(*k))
                    .collect::<Vec<_>>()
                    .join(",")
                    .into_bytes()
            }
            1 => {
                let mut ids = Vec::new();
                let mut q = 0;
                while q < v.len() {
                    let n = v[q] as usize;
                    let id = v.get(q + 1..q + 1 + n)?;
                    if id.is_empty() {
                        return None;
                    }
                    ids.push(id.to_vec());
                    q += 1 + n;
                }
                if ids.is_empty() {
                    return None;
                }
                list(ids)
            }
            2 | 8 => {
                if l != 0 {
                    return None;
                }
                continue;
            }
            3 => {
                if l != 2 {
                    return None;
                }
                u16::from_be_bytes([v[0], v[1]]).to_string().into_bytes()
            }
            4 | 6 => {
                let n = if k == 4 { 4 } else { 16 };
                if l == 0 || !l.is_multiple_of(n) {
                    return None;
                }
                let addrs: Vec<String> = v
                    .chunks(n)
                    .map(|c| match <[u8; 4]>::try_from(c) {
                        Ok(a) => Ipv4Addr::from(a).to_string(),
                        Err(_) => Ipv6Addr::from(<[u8; 16]>::try_from(c).unwrap_or([0; 16])).to_string(),
                    })
                    .collect();
                addrs.join(",").into_bytes()
            }
            5 => {
                if v.is_empty() {
                    return None;
                }
                BASE64.encode(v).into_bytes()
            }
            _ => v.to_vec(),
        };
        out.push('=');
        // PowerDNS 4.7 reads port, hints and ech only unquoted; they never need quotes
        if matches!(k, 3..=6) {
            out.push_str(std::str::from_utf8(&text).ok()?);
        } else {
            quoted(&mut out, &text);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Token> {
        split_simple(s)
    }

    fn round_trip(t: u16, text: &str) -> String {
        let origin = Name::parse("example.", None).unwrap();
        let w = parse_rdata(t, &toks(text), Some(&origin)).unwrap_or_else(|e| panic!("{text}: {e}"));
        let p = present(t, &w);
        let w2 = parse_rdata(t, &toks(&p), Some(&origin)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(w, w2, "{text} -> {p}");
        p
    }

    /// Like `round_trip`, through the type's own form even where the writer uses `\#`.
    fn own_form(t: u16, text: &str) -> String {
        let origin = Name::parse("example.", None).unwrap();
        let w = parse_rdata(t, &toks(text), Some(&origin)).unwrap_or_else(|e| panic!("{text}: {e}"));
        let p = present_known(t, &w).unwrap();
        assert_eq!(
            parse_rdata(t, &toks(&p), Some(&origin)).unwrap(),
            w,
            "{text} -> {p}"
        );
        assert_eq!(parse_rdata(t, &toks(&present(t, &w)), Some(&origin)).unwrap(), w);
        p
    }

    #[test]
    fn no_private_mnemonic_is_written() {
        assert_eq!(type_name(65305), "TYPE65305");
        assert_eq!(type_name(0), "TYPE0");
        assert_eq!(type_name(99), "SPF");
        assert_eq!(parse_type("aname"), None);
        assert_eq!(parse_type("Eui48"), Some(108));
    }

    #[test]
    fn rfc_examples_round_trip() {
        assert_eq!(
            round_trip(29, "42 21 54 N 71 06 18 W -24m 30m"),
            "42 21 54.000 N 71 6 18.000 W -24.00m 30.00m 10000.00m 10.00m"
        );
        assert_eq!(
            round_trip(42, "1:192.168.32.0/21 !1:192.168.38.0/28"),
            "1:192.168.32.0/21 !1:192.168.38.0/28"
        );
        assert_eq!(round_trip(108, "00-00-5e-00-53-2a"), "00-00-5e-00-53-2a");
        assert_eq!(
            round_trip(106, "10 2001:0DB8:1140:1000"),
            "10 2001:0db8:1140:1000"
        );
        assert_eq!(
            round_trip(256, "10 1 \"ftp://ftp1.example.com/public\""),
            "10 1 \"ftp://ftp1.example.com/public\""
        );
        assert_eq!(
            round_trip(64, "1 . alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2"),
            "1 . alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2"
        );
        assert_eq!(
            round_trip(
                45,
                "10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="
            ),
            "10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ=="
        );
        assert_eq!(round_trip(18, "1 @"), "1 example.");
        assert_eq!(
            round_trip(257, "0 issue \"ca.example.net; x=\\\"y\\\"\""),
            "0 issue \"ca.example.net; x=\\\"y\\\"\""
        );
    }

    #[test]
    fn older_types_and_mnemonic_algorithms_are_read() {
        assert_eq!(
            own_form(20, "\"150862028003217\" \"004\""),
            "\"150862028003217\" \"004\""
        );
        assert_eq!(own_form(20, "\"150862028003217\""), "\"150862028003217\"");
        assert_eq!(own_form(37, "PGP 0 0 AAAA"), "3 0 0 AAAA");
        assert_eq!(own_form(48, "257 3 ECDSAP256SHA256 AAAA"), "257 3 13 AAAA");
        assert_eq!(
            own_form(66, "CDS 1 5359 dsync.example."),
            "CDS 1 5359 dsync.example."
        );
        assert_eq!(
            own_form(27, "-32.6882 116.8652 10.0"),
            "\"-32.6882\" \"116.8652\" \"10.0\""
        );
        // read by mnemonic, written as TYPEnnn (not every reader knows them)
        assert_eq!(present_record(20, &[1, b'1']).0, "TYPE20");
    }

    #[test]
    fn rare_types_are_read_in_their_own_form_and_written_in_rfc3597_form() {
        // the forms BIND 9.20 writes for them (named-checkzone -D), and the octets
        let cases: &[(u16, &str, &str)] = &[
            (11, "192.0.2.2 TCP smtp domain http", "192.0.2.2 6 25 53 80"),
            (22, "0x47.0005.80.005a00", "0x4700058000 5a00"),
            (
                38,
                "0 2345:00C1:CA11:0001:1234:5678:9ABC:DEF0",
                "0 2345:c1:ca11:1:1234:5678:9abc:def0",
            ),
            (38, "48 0::0:1:0:0:0 IP6.example.", "48 ::1:0:0:0 ip6.example."),
            (38, "128 @", "128 example."),
            (
                30,
                "next.example. A MX SIG NXT",
                "next.example. A MX TYPE24 TYPE30",
            ),
            (31, "89ABCDEF 01", "89ABCDEF01"),
            (
                34,
                "39.246f.00e7c9c031200010010000.1234567800",
                "39246f00e7c9c0312000100100001234567800",
            ),
            (34, "+358.400.123456", "+358400123456"),
            (40, "1 0 AQID", "1 0 AQID"),
            (40, "1 0 1 AgM=", "1 0 AQID"),
            (55, "2 2001 AwEAAQ== rvs.example.", "2 2001 AwEAAQ== rvs.example."),
            (100, "\"some info\"", "\"some info\""),
            (101, "4294967295", "4294967295"),
            (
                259,
                "0 1 2 \"image/png\" aHR0cHM=",
                "0 1 2 \"image/png\" aHR0cHM=",
            ),
            (259, "0 1 2 \"\" -", "0 1 2 \"\" -"),
            (260, "10 1 3 amtrelays.example.", "10 1 3 amtrelays.example."),
            (260, "128 0 0 .", "128 0 0 ."),
            (260, "10 0 2 2001:db8::15", "10 0 2 2001:db8::15"),
            (263, "\"tcp-v4\"", "\"tcp-v4\""),
            (264, "18446744073709551615", "18446744073709551615"),
            (32768, "12345 ECDSAP256SHA256 2 49FD46E6", "12345 13 2 49FD46E6"),
            (32769, "12345 13 2 49FD46E6", "12345 13 2 49FD46E6"),
            (7, "@", "example."),
            (14, "rm @", "rm.example. example."),
            (25, "256 3 13 AQID", "256 3 13 AQID"),
        ];
        for (t, text, want) in cases {
            let got = own_form(*t, text);
            assert_eq!(got.replace(' ', ""), want.replace(' ', ""), "type {t}: {text}");
            assert_eq!(present_record(*t, &[]).0, format!("TYPE{t}"));
            let w = parse_rdata(*t, &toks(text), Some(&Name::parse("example.", None).unwrap())).unwrap();
            let (tn, generic) = present_record(*t, &w);
            assert_eq!(tn, format!("TYPE{t}"), "{text}");
            assert!(generic.starts_with("\\# "), "{generic}");
        }
    }

    #[test]
    fn rare_types_without_a_text_form_for_their_data_are_kept_in_rfc3597_form() {
        // valid data that no presentation form keeps: WKS bitmap ending in a zero octet,
        // AMTRELAY relay type 4, an ATMA address of format 2, an empty NSAP
        for (t, text) in [
            (11, "\\# 6 C000020106 00"),
            (260, "\\# 3 0A04FF"),
            (34, "\\# 2 0201"),
            (22, "\\# 0"),
            (10, "\\# 3 010203"),
            (103, "\\# 0"),
        ] {
            let w = parse_rdata(t, &toks(text), None).unwrap_or_else(|e| panic!("{t} {text}: {e}"));
            let p = present(t, &w);
            assert_eq!(parse_rdata(t, &toks(&p), None).unwrap(), w, "{text} -> {p}");
        }
        // a WKS bitmap reaching past port 65535
        let mut wks = vec![192, 0, 2, 1, 6];
        wks.extend(std::iter::repeat_n(0u8, 8192));
        wks.push(1);
        let text = format!("\\# {} {}", wks.len(), HEXUPPER.encode(&wks));
        assert_eq!(parse_rdata(11, &toks(&text), None).unwrap(), wks);
        assert_eq!(parse_rdata(11, &toks(&present(11, &wks)), None).unwrap(), wks);
        // no form: NULL and UNSPEC only in RFC 3597 form
        assert!(
            parse_rdata(10, &toks("010203"), None)
                .unwrap_err()
                .contains("RFC 3597")
        );
        // data that is not valid for the type
        for (t, text) in [
            (11, "\\# 4 C0000201"),
            (38, "\\# 1 81"),
            (55, "\\# 4 00020000"),
            (30, "\\# 3 00 8001"),
            (260, "\\# 3 0A01FF"),
        ] {
            assert!(parse_rdata(t, &toks(text), None).is_err(), "{t} {text}");
        }
        assert!(parse_rdata(30, &toks("n. TYPE300"), None).is_err());
        assert!(parse_rdata(38, &toks("64 2001:db8::1 p."), None).is_err());
        assert!(parse_rdata(22, &toks("4700"), None).is_err());
    }

    #[test]
    fn svcb_mandatory_keys_must_be_present() {
        let e = parse_rdata(64, &toks("1 . mandatory=port alpn=h2"), None).unwrap_err();
        assert!(e.contains("mandatory key port is missing"), "{e}");
        assert!(parse_rdata(65, &toks("1 . no-default-alpn"), None).is_err());
        assert!(parse_rdata(29, &toks("999999999999999999 N 0 E 0m"), None).is_err());
        assert!(parse_rdata(29, &toks("91 N 0 E 0m"), None).is_err());
    }

    #[test]
    fn generic_data_of_a_known_type_must_be_valid() {
        let e = parse_rdata(1, &toks("\\# 3 010203"), None).unwrap_err();
        assert!(e.contains("not valid A"), "{e}");
        let w = parse_rdata(15, &toks("\\# 6 000A 01 41 00 00"), None);
        assert!(w.is_err());
        assert_eq!(
            parse_rdata(2, &toks("\\# 3 01 41 00"), None).unwrap(),
            vec![1, b'a', 0]
        );
    }
}
