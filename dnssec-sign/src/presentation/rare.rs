//! Presentation forms of the old, experimental and rarely used IANA types that have a grammar
//! of their own: WKS (RFC 1035 §3.4.2), NSAP (RFC 1706 §5), NXT (RFC 2535 §5.2), ATMA (ATM
//! Forum af-dans-0152.000), A6 (RFC 2874 §3.1), SINK (draft-eastlake-kitchen-sink), HIP
//! (RFC 8005 §5), DOA (draft-durand-doa-over-dns §3) and AMTRELAY (RFC 8777 §4.3).
//!
//! They are read in these forms and in RFC 3597 form, but written as `TYPEnnn \# …`: no type
//! here is read by mnemonic by all of BIND, Knot, ldns, PowerDNS and dnspython (the table in the
//! parent module says which reader lacks which), while all of them read the generic form.
//! Where the wire data of a type is valid but has no presentation (a WKS bitmap with trailing
//! zero octets, an AMTRELAY relay type above 3, an empty NSAP or ATMA address),
//! [`valid_without_form`] accepts it in RFC 3597 form.

use std::net::{Ipv4Addr, Ipv6Addr};

use data_encoding::{BASE64, HEXLOWER, HEXLOWER_PERMISSIVE};

use super::{Token, char_str, number, parse_name, parse_type_bytes, quoted, type_name};
use crate::name::Name;

/// Protocol mnemonics of WKS (RFC 1010 "Assigned Numbers"); numbers are read too.
const PROTOCOLS: &[(u8, &str)] = &[(1, "icmp"), (6, "tcp"), (17, "udp")];

/// Service names of WKS bitmaps: a fixed table of IANA service names (not the machine's
/// `/etc/services`, so a zone reads the same everywhere); port numbers are read too.
const SERVICES: &[(u16, &str)] = &[
    (7, "echo"),
    (9, "discard"),
    (13, "daytime"),
    (20, "ftp-data"),
    (21, "ftp"),
    (22, "ssh"),
    (23, "telnet"),
    (25, "smtp"),
    (37, "time"),
    (43, "whois"),
    (53, "domain"),
    (67, "bootps"),
    (68, "bootpc"),
    (69, "tftp"),
    (70, "gopher"),
    (79, "finger"),
    (80, "http"),
    (80, "www"),
    (88, "kerberos"),
    (110, "pop3"),
    (111, "sunrpc"),
    (113, "auth"),
    (119, "nntp"),
    (123, "ntp"),
    (143, "imap"),
    (161, "snmp"),
    (162, "snmp-trap"),
    (179, "bgp"),
    (389, "ldap"),
    (443, "https"),
    (465, "submissions"),
    (587, "submission"),
    (636, "ldaps"),
    (853, "domain-s"),
    (993, "imaps"),
    (995, "pop3s"),
];

/// Whether RFC 3597 data of type `t` that has no presentation form here is still valid data
/// of the type (and so is read, and written back in RFC 3597 form).
pub(super) fn valid_without_form(t: u16, b: &[u8]) -> bool {
    match t {
        11 => b.len() >= 5,  // WKS: trailing zero octets, or bits past port 65535
        22 => b.is_empty(),  // NSAP: an empty address
        34 => !b.is_empty(), // ATMA: other formats, an empty address
        260 => b.len() >= 2 && b[1] & 0x7f > 3, // AMTRELAY: relay types 4 to 127
        _ => false,
    }
}

// ---- WKS (RFC 1035 §3.4.2) ----

pub(super) fn parse_wks(toks: &[Token]) -> Result<Vec<u8>, String> {
    let addr: Ipv4Addr = number(toks.first(), "IPv4 address")?;
    let pt = toks.get(1).ok_or("missing WKS protocol")?;
    let proto = match PROTOCOLS.iter().find(|p| pt.is(p.1)) {
        Some(p) => p.0,
        None => number::<u8>(Some(pt), "protocol (number, tcp or udp)")?,
    };
    let mut bitmap: Vec<u8> = Vec::new();
    for t in toks.iter().skip(2) {
        let port = match SERVICES.iter().find(|s| t.is(s.1)) {
            Some(s) => s.0,
            None => number::<u16>(Some(t), "port (number or service name)")?,
        };
        let octet = usize::from(port / 8);
        if bitmap.len() <= octet {
            bitmap.resize(octet + 1, 0);
        }
        bitmap[octet] |= 0x80 >> (port % 8);
    }
    let mut v = addr.octets().to_vec();
    v.push(proto);
    v.extend(bitmap);
    Ok(v)
}

/// Address, protocol number and port numbers, as BIND and dnspython write it.
pub(super) fn present_wks(b: &[u8]) -> Option<String> {
    let addr = Ipv4Addr::from(<[u8; 4]>::try_from(b.get(..4)?).ok()?);
    let bitmap = &b[5.min(b.len())..];
    if bitmap.last() == Some(&0) || bitmap.len() > 8192 {
        return None; // trailing zero octets, or bits past port 65535: no text form keeps them
    }
    let mut out = format!("{addr} {}", b.get(4)?);
    for (i, octet) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if octet & (0x80 >> bit) != 0 {
                out.push_str(&format!(" {}", i * 8 + bit));
            }
        }
    }
    Some(out)
}

// ---- NSAP (RFC 1706 §5) ----

pub(super) fn parse_nsap(toks: &[Token]) -> Result<Vec<u8>, String> {
    let [t] = toks else {
        return Err("NSAP takes one 0x-prefixed hex string".into());
    };
    let hex = t
        .text
        .strip_prefix(b"0x")
        .or_else(|| t.text.strip_prefix(b"0X"))
        .ok_or("NSAP address must start with 0x (RFC 1706 §5)")?;
    let digits: Vec<u8> = hex.iter().copied().filter(|c| *c != b'.').collect();
    let d = HEXLOWER_PERMISSIVE
        .decode(&digits)
        .map_err(|e| format!("bad NSAP hex: {e}"))?;
    if d.is_empty() {
        return Err("empty NSAP address".into());
    }
    Ok(d)
}

pub(super) fn present_nsap(b: &[u8]) -> Option<String> {
    (!b.is_empty()).then(|| format!("0x{}", HEXLOWER.encode(b)))
}

// ---- NXT (RFC 2535 §5.2): next name and a bitmap of types 1 to 127 ----

pub(super) fn parse_nxt(toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let mut v = parse_name(toks.first(), origin)?.wire().to_vec();
    let mut bitmap: Vec<u8> = Vec::new();
    for t in toks.iter().skip(1) {
        let ty = parse_type_bytes(&t.text)
            .filter(|ty| (1..128).contains(ty))
            .ok_or_else(|| format!("NXT bitmap holds types 1 to 127 only, not {:?}", t.lossy()))?;
        let octet = usize::from(ty / 8);
        if bitmap.len() <= octet {
            bitmap.resize(octet + 1, 0);
        }
        bitmap[octet] |= 0x80 >> (ty % 8);
    }
    v.extend(bitmap);
    Ok(v)
}

pub(super) fn present_nxt(b: &[u8]) -> Option<String> {
    let (next, used) = Name::read_wire(b).ok()?;
    let bitmap = &b[used..];
    // bit 0 set means another bitmap format; trailing zero octets are not allowed (§5.2)
    if bitmap.first().is_some_and(|o| o & 0x80 != 0) || bitmap.last() == Some(&0) {
        return None;
    }
    let mut out = next.to_string();
    for (i, octet) in bitmap.iter().enumerate() {
        for bit in 0..8u16 {
            if octet & (0x80 >> bit) != 0 {
                out.push(' ');
                out.push_str(&type_name(i as u16 * 8 + bit));
            }
        }
    }
    Some(out)
}

// ---- ATMA (ATM Forum af-dans-0152.000): AESA in hex, or E.164 as +digits ----

pub(super) fn parse_atma(toks: &[Token]) -> Result<Vec<u8>, String> {
    let [t] = toks else {
        return Err("ATMA takes one address".into());
    };
    let text: Vec<u8> = t.text.iter().copied().filter(|c| *c != b'.').collect();
    match text.strip_prefix(b"+") {
        Some(digits) if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            let mut v = vec![1];
            v.extend(digits);
            Ok(v)
        }
        Some(_) => Err("bad E.164 ATMA address (+ and digits)".into()),
        None => {
            let d = HEXLOWER_PERMISSIVE
                .decode(&text)
                .map_err(|e| format!("bad ATMA AESA hex: {e}"))?;
            if d.is_empty() {
                return Err("empty ATMA address".into());
            }
            let mut v = vec![0];
            v.extend(d);
            Ok(v)
        }
    }
}

pub(super) fn present_atma(b: &[u8]) -> Option<String> {
    let addr = b.get(1..).filter(|a| !a.is_empty())?;
    match b[0] {
        0 => Some(HEXLOWER.encode(addr)),
        1 if addr.iter().all(u8::is_ascii_digit) => Some(format!("+{}", std::str::from_utf8(addr).ok()?)),
        _ => None,
    }
}

// ---- A6 (RFC 2874 §3.1): prefix length, address suffix, prefix name ----

pub(super) fn parse_a6(toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let plen: u8 = number(toks.first(), "A6 prefix length")?;
    if plen > 128 {
        return Err(format!("A6 prefix length {plen} above 128"));
    }
    let mut v = vec![plen];
    let mut i = 1;
    if plen < 128 {
        let addr: Ipv6Addr = number(toks.get(1), "A6 address suffix")?;
        let octets = addr.octets();
        let skip = usize::from(plen / 8);
        if octets[..skip].iter().any(|o| *o != 0) || octets[skip] & !(0xffu8 >> (plen % 8)) != 0 {
            return Err(format!("A6 suffix {addr} has bits inside the {plen}-bit prefix"));
        }
        v.extend(&octets[skip..]);
        i = 2;
    }
    if plen > 0 {
        v.extend_from_slice(parse_name(toks.get(i), origin)?.wire());
        i += 1;
    }
    if let Some(t) = toks.get(i) {
        return Err(format!("trailing data {:?}", t.lossy()));
    }
    Ok(v)
}

pub(super) fn present_a6(b: &[u8]) -> Option<String> {
    let plen = *b.first()?;
    if plen > 128 {
        return None;
    }
    let n = usize::from(128 - plen).div_ceil(8);
    let suffix = b.get(1..1 + n)?;
    if suffix.first().is_some_and(|o| o & !(0xffu8 >> (plen % 8)) != 0) {
        return None;
    }
    let mut out = plen.to_string();
    if plen < 128 {
        let mut a = [0u8; 16];
        a[16 - n..].copy_from_slice(suffix);
        out.push_str(&format!(" {}", Ipv6Addr::from(a)));
    }
    let rest = &b[1 + n..];
    if plen > 0 {
        let (name, used) = Name::read_wire(rest).ok()?;
        if used != rest.len() {
            return None;
        }
        out.push_str(&format!(" {name}"));
    } else if !rest.is_empty() {
        return None;
    }
    Some(out)
}

// ---- SINK (draft-eastlake-kitchen-sink): coding, subcoding, base64 data ----

/// `coding subcoding base64`; BIND's form after the older working group draft puts a third
/// number (its "meaning" octet) first, and is read too: the octets are the same either way.
pub(super) fn parse_sink(toks: &[Token]) -> Result<Vec<u8>, String> {
    let octets = |n: usize| -> Result<Vec<u8>, String> {
        let mut v = Vec::new();
        for i in 0..n {
            v.push(number::<u8>(toks.get(i), "SINK coding (0-255)")?);
        }
        let data: Vec<u8> = toks[n.min(toks.len())..]
            .iter()
            .flat_map(|t| t.text.iter().copied())
            .collect();
        v.extend(
            BASE64
                .decode(&data)
                .map_err(|e| format!("bad SINK base64: {e}"))?,
        );
        Ok(v)
    };
    octets(2).or_else(|e| octets(3).map_err(|_| e))
}

pub(super) fn present_sink(b: &[u8]) -> Option<String> {
    let (coding, subcoding) = (*b.first()?, *b.get(1)?);
    let data = &b[2..];
    Some(if data.is_empty() {
        format!("{coding} {subcoding}")
    } else {
        format!("{coding} {subcoding} {}", BASE64.encode(data))
    })
}

// ---- HIP (RFC 8005 §5) ----

pub(super) fn parse_hip(toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let alg: u8 = number(toks.first(), "HIP public key algorithm")?;
    let hit = HEXLOWER_PERMISSIVE
        .decode(&toks.get(1).ok_or("missing HIT")?.text)
        .map_err(|e| format!("bad HIT hex: {e}"))?;
    let pk = BASE64
        .decode(&toks.get(2).ok_or("missing HIP public key")?.text)
        .map_err(|e| format!("bad HIP public key base64: {e}"))?;
    if hit.is_empty() || hit.len() > 255 || pk.is_empty() || pk.len() > 65535 {
        return Err("HIT of 1 to 255 octets and a public key needed".into());
    }
    let mut v = vec![hit.len() as u8, alg];
    v.extend((pk.len() as u16).to_be_bytes());
    v.extend(hit);
    v.extend(pk);
    for t in toks.iter().skip(3) {
        v.extend_from_slice(parse_name(Some(t), origin)?.wire());
    }
    Ok(v)
}

pub(super) fn present_hip(b: &[u8]) -> Option<String> {
    let hit_len = usize::from(*b.first()?);
    let alg = *b.get(1)?;
    let pk_len = usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?));
    let hit = b.get(4..4 + hit_len)?;
    let pk = b.get(4 + hit_len..4 + hit_len + pk_len)?;
    if hit.is_empty() || pk.is_empty() {
        return None;
    }
    let mut out = format!("{alg} {} {}", HEXLOWER.encode(hit), BASE64.encode(pk));
    let mut p = 4 + hit_len + pk_len;
    while p < b.len() {
        let (n, used) = Name::read_wire(&b[p..]).ok()?;
        out.push_str(&format!(" {n}"));
        p += used;
    }
    Some(out)
}

// ---- DOA (draft-durand-doa-over-dns §3) ----

pub(super) fn parse_doa(toks: &[Token]) -> Result<Vec<u8>, String> {
    let mut v = number::<u32>(toks.first(), "DOA enterprise")?
        .to_be_bytes()
        .to_vec();
    v.extend(number::<u32>(toks.get(1), "DOA type")?.to_be_bytes());
    v.push(number::<u8>(toks.get(2), "DOA location")?);
    let media = char_str(toks.get(3).ok_or("missing DOA media type")?)?;
    v.push(media.len() as u8);
    v.extend(media);
    let data = toks.get(4).ok_or("missing DOA data (base64, or - when empty)")?;
    if toks.len() == 5 && data.text == b"-" && !data.quoted {
        return Ok(v);
    }
    let b64: Vec<u8> = toks[4..].iter().flat_map(|t| t.text.iter().copied()).collect();
    v.extend(
        BASE64
            .decode(&b64)
            .map_err(|e| format!("bad DOA data base64: {e}"))?,
    );
    Ok(v)
}

pub(super) fn present_doa(b: &[u8]) -> Option<String> {
    let enterprise = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
    let ty = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
    let location = *b.get(8)?;
    let ml = usize::from(*b.get(9)?);
    let media = b.get(10..10 + ml)?;
    let mut out = format!("{enterprise} {ty} {location} ");
    quoted(&mut out, media);
    let data = &b[10 + ml..];
    out.push(' ');
    if data.is_empty() {
        out.push('-');
    } else {
        out.push_str(&BASE64.encode(data));
    }
    Some(out)
}

// ---- AMTRELAY (RFC 8777 §4.3) ----

pub(super) fn parse_amtrelay(toks: &[Token], origin: Option<&Name>) -> Result<Vec<u8>, String> {
    let prec: u8 = number(toks.first(), "AMTRELAY precedence")?;
    let d: u8 = number(toks.get(1), "AMTRELAY discovery optional bit")?;
    let ty: u8 = number(toks.get(2), "AMTRELAY type")?;
    if d > 1 {
        return Err("AMTRELAY discovery optional bit is 0 or 1".into());
    }
    let mut v = vec![prec, (d << 7) | ty];
    let relay = toks.get(3).ok_or("missing AMTRELAY relay")?;
    match ty {
        0 if relay.text == b"." && !relay.quoted => {}
        1 => v.extend(number::<Ipv4Addr>(Some(relay), "IPv4 relay")?.octets()),
        2 => v.extend(number::<Ipv6Addr>(Some(relay), "IPv6 relay")?.octets()),
        3 => v.extend_from_slice(parse_name(Some(relay), origin)?.wire()),
        0 => return Err("AMTRELAY type 0 takes the relay '.' (RFC 8777 §4.3.1)".into()),
        _ => return Err(format!("AMTRELAY type {ty} is only read in RFC 3597 form")),
    }
    if let Some(t) = toks.get(4) {
        return Err(format!("trailing data {:?}", t.lossy()));
    }
    Ok(v)
}

pub(super) fn present_amtrelay(b: &[u8]) -> Option<String> {
    let prec = *b.first()?;
    let (d, ty) = (b.get(1)? >> 7, b[1] & 0x7f);
    let relay = &b[2..];
    let r = match ty {
        0 if relay.is_empty() => ".".to_string(),
        1 => Ipv4Addr::from(<[u8; 4]>::try_from(relay).ok()?).to_string(),
        2 => Ipv6Addr::from(<[u8; 16]>::try_from(relay).ok()?).to_string(),
        3 => Name::from_wire(relay).ok()?.to_string(),
        _ => return None,
    };
    Some(format!("{prec} {d} {ty} {r}"))
}
