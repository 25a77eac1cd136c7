//! Zone file reading (RFC 1035 §5, RFC 3597 §5) and writing.
//!
//! hickory-proto's `Parser` reads whole files but reports no line numbers, refuses the origin
//! argument of `$INCLUDE`, unknown types, `\#` data, DNSSEC types and ZONEMD, and merges
//! records into record sets. So this module does the entry-level work itself (comments,
//! parentheses, quotes, `$ORIGIN`, `$TTL`, `$INCLUDE <file> [origin]`, owner/TTL/class
//! inheritance, with file and line in every error) and hands the record data of classic types
//! to hickory-proto (`Parser` on a one-record input with the current origin, so relative names
//! work). DNSSEC types, DNAME, ZONEMD and RFC 3597 generic data are decoded here.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use data_encoding::{BASE32_DNSSEC, BASE64, HEXLOWER_PERMISSIVE};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::error::ZoneError;
use crate::name::Name;
use crate::rdata::{self, Dnskey, Nsec3, Nsec3Param, Rrsig, Zonemd, parse_type, rtype};
use crate::zone::{Record, Zone};

/// Largest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Reads a zone file. `origin` is the default origin (like `-o` of the classic signers); when
/// absent, the first `$ORIGIN` or else the owner of the first SOA is the apex.
pub fn read_zone_file(path: &Path, origin: Option<&Name>) -> Result<Zone, ZoneError> {
    let text = std::fs::read_to_string(path).map_err(|source| ZoneError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    parse_zone(&text, path, origin)
}

/// Parses zone file text; `file` names it in errors and anchors relative `$INCLUDE`s.
pub fn parse_zone(text: &str, file: &Path, origin: Option<&Name>) -> Result<Zone, ZoneError> {
    let mut st = State {
        origin: origin.cloned(),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        first_origin: origin.cloned(),
        records: Vec::new(),
    };
    parse_into(&mut st, text, file, 0)?;
    let apex = match st.first_origin {
        Some(o) => o,
        None => st
            .records
            .iter()
            .find(|r| r.rtype == rtype::SOA)
            .or(st.records.first())
            .map(|r| r.owner.clone())
            .ok_or_else(|| ZoneError::Structure("no origin given and no records".into()))?,
    };
    Ok(Zone {
        origin: apex,
        records: st.records,
    })
}

struct State {
    origin: Option<Name>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
    first_origin: Option<Name>,
    records: Vec<Record>,
}

struct Token {
    text: String,
    quoted: bool,
}

struct Entry {
    line: usize,
    leading_blank: bool,
    tokens: Vec<Token>,
}

fn syntax(file: &Path, line: usize, message: impl Into<String>) -> ZoneError {
    ZoneError::Syntax {
        file: file.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Splits text into entries: one per logical line (parentheses join lines), comments removed,
/// quoted strings kept as one token with their escapes untouched. Each entry goes to `each` as
/// soon as it is complete, so the tokens of only one entry are held at a time.
fn split_entries(
    text: &str,
    file: &Path,
    mut each: impl FnMut(Entry) -> Result<(), ZoneError>,
) -> Result<(), ZoneError> {
    let mut line = 1usize;
    let mut chars = text.chars().peekable();
    let mut cur = Entry {
        line: 1,
        leading_blank: false,
        tokens: Vec::new(),
    };
    let mut at_line_start = true;
    let mut paren_depth = 0usize;
    let mut paren_line = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                line += 1;
                if paren_depth == 0 {
                    let done = std::mem::replace(
                        &mut cur,
                        Entry {
                            line,
                            leading_blank: false,
                            tokens: Vec::new(),
                        },
                    );
                    if !done.tokens.is_empty() {
                        each(done)?;
                    }
                    at_line_start = true;
                }
                continue;
            }
            ';' => {
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            '(' => {
                if paren_depth == 0 {
                    paren_line = line;
                }
                paren_depth += 1;
            }
            ')' => {
                if paren_depth == 0 {
                    return Err(syntax(file, line, "unbalanced ')'"));
                }
                paren_depth -= 1;
            }
            c if c.is_whitespace() => {
                if at_line_start && cur.tokens.is_empty() {
                    cur.leading_blank = true;
                }
            }
            '"' => {
                let mut s = String::new();
                let mut closed = false;
                while let Some(n) = chars.next() {
                    match n {
                        '\\' => {
                            s.push('\\');
                            if let Some(e) = chars.next() {
                                if e == '\n' {
                                    line += 1;
                                }
                                s.push(e);
                            }
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\n' => {
                            line += 1;
                            s.push('\n');
                        }
                        other => s.push(other),
                    }
                }
                if !closed {
                    return Err(syntax(file, cur.line, "unterminated quoted string"));
                }
                cur.tokens.push(Token {
                    text: s,
                    quoted: true,
                });
            }
            c => {
                let mut s = String::new();
                s.push(c);
                if c == '\\'
                    && let Some(e) = chars.next()
                {
                    s.push(e);
                }
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == ';' || n == '(' || n == ')' || n == '"' {
                        break;
                    }
                    chars.next();
                    s.push(n);
                    if n == '\\'
                        && let Some(e) = chars.next()
                    {
                        s.push(e);
                    }
                }
                cur.tokens.push(Token {
                    text: s,
                    quoted: false,
                });
            }
        }
        at_line_start = false;
    }
    if paren_depth > 0 {
        return Err(syntax(
            file,
            paren_line,
            "unbalanced '(' (not closed before end of file)",
        ));
    }
    if !cur.tokens.is_empty() {
        each(cur)?;
    }
    Ok(())
}

fn parse_into(st: &mut State, text: &str, file: &Path, depth: usize) -> Result<(), ZoneError> {
    split_entries(text, file, |entry| parse_entry(st, entry, file, depth))
}

/// One entry: a directive or a record.
fn parse_entry(st: &mut State, entry: Entry, file: &Path, depth: usize) -> Result<(), ZoneError> {
    let line = entry.line;
    let err = |m: String| syntax(file, line, m);
    let first = &entry.tokens[0];
    if !entry.leading_blank && !first.quoted && first.text.starts_with('$') {
        let arg = |i: usize| entry.tokens.get(i).map(|t| t.text.as_str());
        match first.text.to_ascii_uppercase().as_str() {
            "$ORIGIN" => {
                let o = arg(1).ok_or_else(|| err("$ORIGIN needs a name".into()))?;
                let name = Name::parse(o, st.origin.as_ref()).map_err(|e| err(e.to_string()))?;
                if st.first_origin.is_none() {
                    st.first_origin = Some(name.clone());
                }
                st.origin = Some(name);
            }
            "$TTL" => {
                let t = arg(1).ok_or_else(|| err("$TTL needs a value".into()))?;
                st.default_ttl = Some(
                    hickory_proto::serialize::txt::parse_ttl(t)
                        .map_err(|e| err(format!("bad $TTL {t}: {e}")))?,
                );
            }
            "$INCLUDE" => {
                let f = arg(1).ok_or_else(|| err("$INCLUDE needs a file name".into()))?;
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(err("$INCLUDE nested too deeply".into()));
                }
                let path = Path::new(f);
                let path: PathBuf = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    file.parent().unwrap_or(Path::new(".")).join(path)
                };
                let inc_text = std::fs::read_to_string(&path)
                    .map_err(|e| err(format!("$INCLUDE {}: {e}", path.display())))?;
                // RFC 1035 §5.1: the included file may get its own origin; the including
                // file's origin is restored afterwards.
                let saved_origin = st.origin.clone();
                if let Some(o) = arg(2) {
                    st.origin = Some(Name::parse(o, st.origin.as_ref()).map_err(|e| err(e.to_string()))?);
                }
                parse_into(st, &inc_text, &path, depth + 1)?;
                st.origin = saved_origin;
            }
            other => return Err(err(format!("unsupported directive {other}"))),
        }
        return Ok(());
    }
    let mut toks = entry.tokens.iter().peekable();
    let owner = if entry.leading_blank {
        st.last_owner
            .clone()
            .ok_or_else(|| err("record without an owner name".into()))?
    } else {
        let t = toks.next().ok_or_else(|| err("empty entry".into()))?;
        if t.text == "@" {
            st.origin
                .clone()
                .ok_or_else(|| err("'@' used but no origin known".into()))?
        } else {
            let name = Name::parse(&t.text, st.origin.as_ref()).map_err(|e| err(e.to_string()))?;
            // records of one owner share its bytes (see `Name`)
            match &st.last_owner {
                Some(last) if *last == name => last.clone(),
                _ => name,
            }
        }
    };
    if st.first_origin.is_none() {
        // no -o and no $ORIGIN: relative names use the first owner's... nothing; keep None
    }
    let mut ttl: Option<u32> = None;
    let mut class: Option<u16> = None;
    let rt = loop {
        let t = toks.next().ok_or_else(|| err("missing record type".into()))?;
        let up = t.text.to_ascii_uppercase();
        if ttl.is_none() && up.starts_with(|c: char| c.is_ascii_digit()) {
            ttl = Some(
                hickory_proto::serialize::txt::parse_ttl(&t.text)
                    .map_err(|e| err(format!("bad TTL {}: {e}", t.text)))?,
            );
            continue;
        }
        if class.is_none() {
            match up.as_str() {
                "IN" => {
                    class = Some(1);
                    continue;
                }
                "CH" | "CS" | "HS" => {
                    return Err(err(format!("class {up} is not supported (only IN)")));
                }
                _ if up.starts_with("CLASS") => {
                    let c: u16 = up[5..].parse().map_err(|_| err(format!("bad class {up}")))?;
                    if c != 1 {
                        return Err(err(format!("class {up} is not supported (only IN)")));
                    }
                    class = Some(1);
                    continue;
                }
                _ => {}
            }
        }
        break parse_type(&t.text).ok_or_else(|| err(format!("unknown record type {}", t.text)))?;
    };
    let ttl = match ttl {
        Some(t) => {
            st.last_ttl = Some(t);
            t
        }
        None => st
            .default_ttl
            .or(st.last_ttl)
            .ok_or_else(|| err("no TTL given and no $TTL set".into()))?,
    };
    let rest: Vec<&Token> = toks.collect();
    let origin = st.origin.clone().unwrap_or_else(Name::root);
    let rd = parse_rdata(rt, &rest, &origin)
        .map_err(|m| err(format!("{} {}: {m}", owner, rdata::type_name(rt))))?;
    st.last_owner = Some(owner.clone());
    st.records.push(Record {
        owner,
        rtype: rt,
        class: class.unwrap_or(1),
        ttl,
        rdata: rd,
    });
    Ok(())
}

fn num<T: std::str::FromStr>(t: Option<&&Token>, what: &str) -> Result<T, String> {
    let t = t.ok_or_else(|| format!("missing {what}"))?;
    t.text.parse().map_err(|_| format!("bad {what} {:?}", t.text))
}

fn joined(toks: &[&Token]) -> String {
    toks.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().concat()
}

fn parse_types(toks: &[&Token]) -> Result<Vec<u16>, String> {
    let mut v: Vec<u16> = toks
        .iter()
        .map(|t| parse_type(&t.text).ok_or_else(|| format!("unknown type {:?} in bitmap", t.text)))
        .collect::<Result<_, _>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn parse_salt(t: Option<&&Token>) -> Result<Vec<u8>, String> {
    let t = t.ok_or("missing salt")?;
    if t.text == "-" {
        return Ok(Vec::new());
    }
    let s = HEXLOWER_PERMISSIVE
        .decode(t.text.as_bytes())
        .map_err(|e| format!("bad salt: {e}"))?;
    if s.len() > 255 {
        return Err("salt longer than 255 octets".into());
    }
    Ok(s)
}

/// Parses the record data tokens of one record into canonical wire form.
fn parse_rdata(rt: u16, toks: &[&Token], origin: &Name) -> Result<Box<[u8]>, String> {
    if toks.first().is_some_and(|t| !t.quoted && t.text == "\\#") {
        let len: usize = num(toks.get(1), "generic data length")?;
        let data = HEXLOWER_PERMISSIVE
            .decode(joined(&toks[2.min(toks.len())..]).as_bytes())
            .map_err(|e| format!("bad hex in \\# data: {e}"))?;
        if data.len() != len {
            return Err(format!("\\# length {len} but {} octets given", data.len()));
        }
        return Ok(canonicalize_generic(rt, data).into_boxed_slice());
    }
    let name = |t: Option<&&Token>| -> Result<Name, String> {
        let t = t.ok_or("missing domain name")?;
        if t.text == "@" {
            return Ok(origin.clone());
        }
        Name::parse(&t.text, Some(origin)).map_err(|e| e.to_string())
    };
    let v: Vec<u8> = match rt {
        rtype::A => {
            let a: std::net::Ipv4Addr = num(toks.first(), "IPv4 address")?;
            if toks.len() != 1 {
                return Err("trailing data".into());
            }
            a.octets().to_vec()
        }
        rtype::AAAA => {
            let a: std::net::Ipv6Addr = num(toks.first(), "IPv6 address")?;
            if toks.len() != 1 {
                return Err("trailing data".into());
            }
            a.octets().to_vec()
        }
        rtype::TXT => {
            // hickory's lexer turns `\DDD` above 127 into a UTF-8 character, changing the data
            let mut v = Vec::new();
            for t in toks {
                let s = unescape_char_string(&t.text)?;
                if s.len() > 255 {
                    return Err("character-string longer than 255 octets".into());
                }
                v.push(s.len() as u8);
                v.extend(s);
            }
            if toks.is_empty() {
                return Err("TXT needs at least one character-string".into());
            }
            v
        }
        rtype::DNAME => {
            if toks.len() != 1 {
                return Err("DNAME takes one name".into());
            }
            name(toks.first())?.wire().to_vec()
        }
        rtype::DNSKEY | rtype::CDNSKEY => Dnskey {
            flags: num(toks.first(), "flags")?,
            protocol: num(toks.get(1), "protocol")?,
            algorithm: num(toks.get(2), "algorithm")?,
            public_key: BASE64
                .decode(joined(&toks[3.min(toks.len())..]).as_bytes())
                .map_err(|e| format!("bad base64 key: {e}"))?,
        }
        .to_wire(),
        rtype::DS | rtype::CDS => {
            let mut v = num::<u16>(toks.first(), "key tag")?.to_be_bytes().to_vec();
            v.push(num(toks.get(1), "algorithm")?);
            v.push(num(toks.get(2), "digest type")?);
            let d = joined(&toks[3.min(toks.len())..]);
            if d.is_empty() {
                return Err("missing digest".into());
            }
            v.extend(
                HEXLOWER_PERMISSIVE
                    .decode(d.as_bytes())
                    .map_err(|e| format!("bad digest: {e}"))?,
            );
            v
        }
        rtype::RRSIG => {
            let tc = toks.first().ok_or("missing type covered")?;
            let time = |t: Option<&&Token>| -> Result<u32, String> {
                let t = t.ok_or("missing time")?;
                rdata::parse_time(&t.text).ok_or_else(|| format!("bad time {:?}", t.text))
            };
            Rrsig {
                type_covered: parse_type(&tc.text).ok_or("unknown type covered")?,
                algorithm: num(toks.get(1), "algorithm")?,
                labels: num(toks.get(2), "labels")?,
                original_ttl: num(toks.get(3), "original TTL")?,
                expiration: time(toks.get(4))?,
                inception: time(toks.get(5))?,
                key_tag: num(toks.get(6), "key tag")?,
                signer: name(toks.get(7))?,
                signature: BASE64
                    .decode(joined(&toks[8.min(toks.len())..]).as_bytes())
                    .map_err(|e| format!("bad base64 signature: {e}"))?,
            }
            .to_wire()
        }
        rtype::NSEC => {
            let mut v = name(toks.first())?.wire().to_vec();
            v.extend(rdata::encode_bitmap(&parse_types(&toks[1.min(toks.len())..])?));
            v
        }
        rtype::NSEC3 | rtype::NSEC3PARAM => {
            let params = Nsec3Param {
                hash_algorithm: num(toks.first(), "hash algorithm")?,
                flags: num(toks.get(1), "flags")?,
                iterations: num(toks.get(2), "iterations")?,
                salt: parse_salt(toks.get(3))?,
            };
            if rt == rtype::NSEC3PARAM {
                if toks.len() != 4 {
                    return Err("trailing data".into());
                }
                params.to_wire()
            } else {
                let next = toks.get(4).ok_or("missing next hashed owner")?;
                Nsec3 {
                    params,
                    next_hashed: BASE32_DNSSEC
                        .decode(next.text.to_ascii_lowercase().as_bytes())
                        .map_err(|e| format!("bad base32hex: {e}"))?,
                    types: parse_types(&toks[5.min(toks.len())..])?,
                }
                .to_wire()
            }
        }
        rtype::ZONEMD => {
            let digest = joined(&toks[3.min(toks.len())..]);
            let z = Zonemd {
                serial: num(toks.first(), "serial")?,
                scheme: num(toks.get(1), "scheme")?,
                hash_algorithm: num(toks.get(2), "hash algorithm")?,
                digest: HEXLOWER_PERMISSIVE
                    .decode(digest.as_bytes())
                    .map_err(|e| format!("bad digest: {e}"))?,
            };
            if z.digest.len() < 12 {
                return Err("ZONEMD digest shorter than 12 octets (RFC 8976 §2.2.4)".into());
            }
            z.to_wire()
        }
        _ => hickory_rdata(rt, toks, origin)?,
    };
    Ok(v.into_boxed_slice())
}

/// Decodes the escapes of a character-string (RFC 1035 §5.1): `\X` and `\DDD`.
fn unescape_char_string(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
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

/// RFC 3597 generic data for a known type whose names are lowercased in canonical form.
fn canonicalize_generic(rt: u16, data: Vec<u8>) -> Vec<u8> {
    match rt {
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME => {
            Name::from_wire(&data).map(|n| n.wire().to_vec()).unwrap_or(data)
        }
        _ => data,
    }
}

/// Record data of classic types through hickory-proto's zone parser, in canonical wire form.
fn hickory_rdata(rt: u16, toks: &[&Token], origin: &Name) -> Result<Vec<u8>, String> {
    if rdata::type_name(rt).starts_with("TYPE") {
        return Err("unknown type: give its data in RFC 3597 \\# form".into());
    }
    let mut text = format!("@ 0 IN {} ", rdata::type_name(rt));
    for t in toks {
        if t.quoted {
            text.push('"');
            text.push_str(&t.text);
            text.push('"');
        } else {
            text.push_str(&t.text);
        }
        text.push(' ');
    }
    text.push('\n');
    let h_origin = origin.to_hickory().map_err(|e| e.to_string())?;
    let (_, sets) = hickory_proto::serialize::txt::Parser::new(text, None, Some(h_origin))
        .parse()
        .map_err(|e| e.to_string())?;
    let set = sets.into_values().next().ok_or("no record parsed")?;
    let rec = set.records_without_rrsigs().next().ok_or("no record parsed")?;
    let mut buf = Vec::new();
    let mut enc = BinEncoder::new(&mut buf);
    enc.set_canonical_form(true);
    rec.data.emit(&mut enc).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Writes records in zone file format, one per line, apex SOA (and its RRSIGs) first.
pub fn write_records<W: std::io::Write>(
    out: &mut W,
    origin: &Name,
    records: &[Record],
) -> std::io::Result<()> {
    let is_apex_soa = |r: &Record| {
        r.owner == *origin
            && (r.rtype == rtype::SOA
                || (r.rtype == rtype::RRSIG && rdata::rrsig_type_covered(&r.rdata) == Some(rtype::SOA)))
    };
    for r in records.iter().filter(|r| is_apex_soa(r)) {
        write_record(out, r)?;
    }
    for r in records.iter().filter(|r| !is_apex_soa(r)) {
        write_record(out, r)?;
    }
    Ok(())
}

/// Writes one record line.
pub fn write_record<W: std::io::Write>(out: &mut W, r: &Record) -> std::io::Result<()> {
    writeln!(
        out,
        "{}\t{}\tIN\t{}\t{}",
        r.owner,
        r.ttl,
        rdata::type_name(r.rtype),
        rdata::present(r.rtype, &r.rdata)
    )
}

/// Writes a zone atomically: to a temporary file next to `path`, then renamed over it, so a
/// failure never leaves a half-written zone.
pub fn write_zone_file(path: &Path, origin: &Name, records: &[Record]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        write_records(&mut w, origin, records)?;
        w.flush()?;
    }
    // temp files are created 0600; a zone file is public data: keep the mode of the file being
    // replaced, or use 0644
    let mode = std::fs::metadata(path).map(|m| m.permissions());
    match mode {
        Ok(p) => tmp.as_file().set_permissions(p)?,
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))?;
            }
        }
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Zone, ZoneError> {
        parse_zone(
            text,
            Path::new("test.zone"),
            Some(&Name::parse("example.", None).unwrap()),
        )
    }

    #[test]
    fn relative_names_ttl_and_owner_inheritance() {
        let z =
            parse("$TTL 300\n@ IN SOA ns1 admin ( 1 2 3 4 5 )\n  NS ns1\nns1 60 A 192.0.2.1\n  AAAA ::1\n")
                .unwrap();
        assert_eq!(z.records.len(), 4);
        assert_eq!(z.records[1].owner.to_string(), "example.");
        assert_eq!(
            z.records[1].rdata.as_ref(),
            Name::parse("ns1.example.", None).unwrap().wire()
        );
        assert_eq!(z.records[3].owner.to_string(), "ns1.example.");
        assert_eq!(z.records[3].ttl, 300);
    }

    #[test]
    fn malformed_line_is_reported_with_its_line_number() {
        let e = parse("$TTL 300\n@ SOA ns1 admin 1 2 3 4 5\nwww A 999.1.1.1\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("test.zone:3:"), "{msg}");
    }

    #[test]
    fn unknown_type_in_rfc3597_form_is_kept() {
        let z = parse("$TTL 300\nx TYPE65280 \\# 3 abcdef\n").unwrap();
        assert_eq!(z.records[0].rtype, 65280);
        assert_eq!(z.records[0].rdata.as_ref(), &[0xab, 0xcd, 0xef]);
        assert_eq!(rdata::present(65280, &z.records[0].rdata), "\\# 3 ABCDEF");
    }

    #[test]
    fn txt_round_trips_through_presentation() {
        let z = parse("$TTL 300\nx TXT \"a \\\"q\\\" b\" \"\\255\" plain\n").unwrap();
        let text = rdata::present(rtype::TXT, &z.records[0].rdata);
        let z2 = parse(&format!("$TTL 300\nx TXT {text}\n")).unwrap();
        assert_eq!(z.records[0].rdata, z2.records[0].rdata);
    }
}
