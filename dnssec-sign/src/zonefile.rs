//! Zone file reading (RFC 1035 §5, RFC 3597 §5) and writing.
//!
//! Zone files are octet streams: names and character-strings may hold any octet (Latin-1 TXT
//! data, binary labels), so the reader works on bytes, never on `str`. It does the entry-level
//! work (comments, parentheses, quotes, `$ORIGIN`, `$TTL`, `$INCLUDE <file> [origin]`,
//! owner/TTL/class inheritance, `@`) with file and line in every error, and hands each record's
//! data to [`crate::presentation`], which reads and prints every type. Where each record came
//! from is kept in [`Sources`], so structural errors found later name file and line too.
//!
//! Origin: `-o` (the `origin` argument), else the first `$ORIGIN`, else the owner of the SOA,
//! which must then be absolute and be the first record; a relative name with none of these is
//! an error, never silently completed with the root.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::ZoneError;
use crate::name::Name;
use crate::presentation::{self, Token, abbreviate, parse_period};
use crate::rdata::{self, rtype};
use crate::zone::{Record, Zone};

/// Largest `$INCLUDE` nesting accepted.
const MAX_INCLUDE_DEPTH: usize = 16;

/// Largest TTL: RFC 2181 §8 (values with the top bit set are not TTLs).
pub const MAX_TTL: u32 = 0x7fff_ffff;

/// Reads a zone file. `origin` is the default origin (like `-o` of the classic signers); when
/// absent, the first `$ORIGIN` or else the owner of the SOA is the apex.
pub fn read_zone_file(path: &Path, origin: Option<&Name>) -> Result<Zone, ZoneError> {
    let text = std::fs::read(path).map_err(|source| ZoneError::Io {
        file: path.to_path_buf(),
        source,
    })?;
    parse_zone(&text, path, origin)
}

/// Parses zone file octets (`&str` or bytes); `file` names it in errors and anchors relative
/// `$INCLUDE`s.
pub fn parse_zone(text: impl AsRef<[u8]>, file: &Path, origin: Option<&Name>) -> Result<Zone, ZoneError> {
    let mut st = State {
        origin: origin.cloned(),
        default_ttl: None,
        last_ttl: None,
        last_owner: None,
        first_origin: origin.cloned(),
        records: Vec::new(),
        sources: Sources::default(),
    };
    let file_arc: Arc<Path> = Arc::from(file);
    st.sources.main = Some(file_arc.clone());
    parse_into(&mut st, text.as_ref(), &file_arc, 0)?;
    let apex = match st.first_origin {
        Some(o) => o,
        None => {
            return Err(ZoneError::Syntax {
                file: file.to_path_buf(),
                line: 1,
                message: "no origin: give -o, $ORIGIN or an SOA record with an absolute owner".into(),
            });
        }
    };
    Ok(Zone {
        origin: apex,
        records: st.records,
        sources: st.sources,
    })
}

/// Where each (owner, type) was first read: file and line, for errors found after parsing.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    map: HashMap<(Name, u16), (Arc<Path>, u32)>,
    main: Option<Arc<Path>>,
}

impl Sources {
    /// Remembers the first place (owner, type) was read.
    pub fn note(&mut self, owner: &Name, rtype: u16, file: &Arc<Path>, line: usize) {
        self.map
            .entry((owner.clone(), rtype))
            .or_insert_with(|| (file.clone(), u32::try_from(line).unwrap_or(u32::MAX)));
    }

    /// `file: ` of the zone file read (not of its `$INCLUDE`s), or an empty string.
    pub fn file(&self) -> String {
        self.main
            .as_ref()
            .map_or_else(String::new, |f| format!("{}: ", f.display()))
    }

    /// `file:line: ` of (owner, type), or an empty string when unknown (a zone built in memory).
    pub fn locate(&self, owner: &Name, rtype: u16) -> String {
        match self.map.get(&(owner.clone(), rtype)) {
            Some((f, l)) => format!("{}:{l}: ", f.display()),
            None => String::new(),
        }
    }
}

struct State {
    origin: Option<Name>,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Option<Name>,
    first_origin: Option<Name>,
    records: Vec<Record>,
    sources: Sources,
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

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\x0b' | b'\x0c')
}

/// Splits octets into entries: one per logical line (parentheses join lines), comments removed,
/// quoted strings kept as one token with their escapes untouched. Each entry goes to `each` as
/// soon as it is complete, so the tokens of only one entry are held at a time.
fn split_entries(
    text: &[u8],
    file: &Path,
    mut each: impl FnMut(Entry) -> Result<(), ZoneError>,
) -> Result<(), ZoneError> {
    let mut line = 1usize;
    let mut i = 0usize;
    let mut cur = Entry {
        line: 1,
        leading_blank: false,
        tokens: Vec::new(),
    };
    let mut at_line_start = true;
    let mut separated = true;
    let mut paren_depth = 0usize;
    let mut paren_line = 0usize;
    while i < text.len() {
        let c = text[i];
        i += 1;
        match c {
            b'\n' => {
                line += 1;
                separated = true;
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
            b';' => {
                while i < text.len() && text[i] != b'\n' {
                    i += 1;
                }
                separated = true;
            }
            b'(' => {
                if paren_depth == 0 {
                    paren_line = line;
                }
                paren_depth += 1;
                separated = true;
            }
            b')' => {
                if paren_depth == 0 {
                    return Err(syntax(file, line, "unbalanced ')'"));
                }
                paren_depth -= 1;
                separated = true;
            }
            c if is_blank(c) => {
                if at_line_start && cur.tokens.is_empty() {
                    cur.leading_blank = true;
                }
                separated = true;
            }
            b'"' => {
                let mut s = Vec::new();
                let mut closed = false;
                while i < text.len() {
                    let n = text[i];
                    i += 1;
                    match n {
                        b'\\' => {
                            s.push(b'\\');
                            if i < text.len() {
                                if text[i] == b'\n' {
                                    line += 1;
                                }
                                s.push(text[i]);
                                i += 1;
                            }
                        }
                        b'"' => {
                            closed = true;
                            break;
                        }
                        b'\n' => {
                            line += 1;
                            s.push(b'\n');
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
                    glued: !separated,
                });
                separated = false;
            }
            c => {
                let mut s = vec![c];
                if c == b'\\' && i < text.len() {
                    s.push(text[i]);
                    i += 1;
                }
                while i < text.len() {
                    let n = text[i];
                    if is_blank(n) || matches!(n, b'\n' | b';' | b'(' | b')' | b'"') {
                        break;
                    }
                    i += 1;
                    s.push(n);
                    if n == b'\\' && i < text.len() {
                        s.push(text[i]);
                        i += 1;
                    }
                }
                cur.tokens.push(Token {
                    text: s,
                    quoted: false,
                    glued: !separated,
                });
                separated = false;
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

fn parse_into(st: &mut State, text: &[u8], file: &Arc<Path>, depth: usize) -> Result<(), ZoneError> {
    split_entries(text, file, |entry| parse_entry(st, entry, file, depth))
}

/// A TTL as a zone file gives it: seconds or BIND units, up to 2^32-1. TTLs above 2^31-1 are
/// read, so that the zone rules ([`crate::rules`]) name them on their record's line and the
/// signer can refuse them or, when lenient, set them to 0 as BIND does.
fn parse_ttl(t: &Token) -> Result<u32, String> {
    let v = parse_period(&t.text).ok_or_else(|| format!("bad TTL {:?}", abbreviate(&t.text)))?;
    u32::try_from(v).map_err(|_| format!("bad TTL {:?}", abbreviate(&t.text)))
}

/// One entry: a directive or a record.
fn parse_entry(st: &mut State, entry: Entry, file: &Arc<Path>, depth: usize) -> Result<(), ZoneError> {
    let line = entry.line;
    let err = |m: String| syntax(file, line, m);
    let first = &entry.tokens[0];
    if !entry.leading_blank && !first.quoted && first.text.starts_with(b"$") {
        let arg = |i: usize| entry.tokens.get(i);
        match first.text.to_ascii_uppercase().as_slice() {
            b"$ORIGIN" => {
                let o = arg(1).ok_or_else(|| err("$ORIGIN needs a name".into()))?;
                let name = Name::parse_bytes(&o.text, st.origin.as_ref()).map_err(|e| err(e.to_string()))?;
                if st.first_origin.is_none() {
                    st.first_origin = Some(name.clone());
                }
                st.origin = Some(name);
            }
            b"$TTL" => {
                let t = arg(1).ok_or_else(|| err("$TTL needs a value".into()))?;
                st.default_ttl = Some(parse_ttl(t).map_err(|m| err(format!("$TTL: {m}")))?);
            }
            b"$INCLUDE" => {
                let f = arg(1).ok_or_else(|| err("$INCLUDE needs a file name".into()))?;
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(err("$INCLUDE nested too deeply".into()));
                }
                let f = presentation::unescape(&f.text).map_err(err)?;
                let f = String::from_utf8(f).map_err(|_| err("$INCLUDE file name is not UTF-8".into()))?;
                let path = Path::new(&f);
                let path: PathBuf = if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    file.parent().unwrap_or(Path::new(".")).join(path)
                };
                let inc_text =
                    std::fs::read(&path).map_err(|e| err(format!("$INCLUDE {}: {e}", path.display())))?;
                // RFC 1035 §5.1: the included file may get its own origin; the including
                // file's origin is restored afterwards.
                let saved_origin = st.origin.clone();
                if let Some(o) = arg(2) {
                    st.origin =
                        Some(Name::parse_bytes(&o.text, st.origin.as_ref()).map_err(|e| err(e.to_string()))?);
                }
                parse_into(st, &inc_text, &Arc::from(path.as_path()), depth + 1)?;
                st.origin = saved_origin;
            }
            other => {
                return Err(err(format!("unsupported directive {}", abbreviate(other))));
            }
        }
        return Ok(());
    }
    let mut toks = entry.tokens.iter();
    let owner = if entry.leading_blank {
        st.last_owner
            .clone()
            .ok_or_else(|| err("record without an owner name".into()))?
    } else {
        let t = toks.next().ok_or_else(|| err("empty entry".into()))?;
        if t.text == b"@" && !t.quoted {
            st.origin
                .clone()
                .ok_or_else(|| err("'@' used but no origin known (give -o or $ORIGIN)".into()))?
        } else {
            Name::parse_bytes(&t.text, st.origin.as_ref()).map_err(|e| {
                err(if st.origin.is_none() {
                    format!("{e} (no origin known: give -o or $ORIGIN)")
                } else {
                    e.to_string()
                })
            })?
        }
    };
    let mut ttl: Option<u32> = None;
    let mut class: Option<u16> = None;
    let rt = loop {
        let t = toks.next().ok_or_else(|| err("missing record type".into()))?;
        let up = t.text.to_ascii_uppercase();
        if ttl.is_none() && up.first().is_some_and(u8::is_ascii_digit) {
            ttl = Some(parse_ttl(t).map_err(err)?);
            continue;
        }
        if class.is_none() {
            match up.as_slice() {
                b"IN" => {
                    class = Some(1);
                    continue;
                }
                b"CH" | b"CS" | b"HS" | b"NONE" | b"ANY" => {
                    return Err(err(format!(
                        "class {} is not supported (only IN)",
                        abbreviate(&up)
                    )));
                }
                _ if up.starts_with(b"CLASS") && up.len() > 5 => {
                    let c: Option<u16> = std::str::from_utf8(&up[5..]).ok().and_then(|s| s.parse().ok());
                    match c {
                        Some(1) => {
                            class = Some(1);
                            continue;
                        }
                        Some(_) => {
                            return Err(err(format!(
                                "class {} is not supported (only IN)",
                                abbreviate(&up)
                            )));
                        }
                        None => return Err(err(format!("bad class {}", abbreviate(&up)))),
                    }
                }
                _ => {}
            }
        }
        let s = std::str::from_utf8(&t.text).unwrap_or("");
        break rdata::parse_type(s)
            .ok_or_else(|| err(format!("unknown record type {}", abbreviate(&t.text))))?;
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
    // without -o or $ORIGIN, the SOA owner is the origin for the data too (issue 13)
    if rt == rtype::SOA && st.first_origin.is_none() {
        st.first_origin = Some(owner.clone());
        st.origin = Some(owner.clone());
    }
    let rest = &entry.tokens[entry.tokens.len() - toks.len()..];
    let rd = presentation::parse_rdata(rt, rest, st.origin.as_ref())
        .map_err(|m| err(format!("{} {}: {m}", owner, rdata::type_name(rt))))?;
    st.sources.note(&owner, rt, file, line);
    st.last_owner = Some(owner.clone());
    st.records.push(Record {
        owner,
        rtype: rt,
        class: class.unwrap_or(1),
        ttl,
        rdata: rd.into_boxed_slice(),
    });
    Ok(())
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
    let (tn, data) = presentation::present_record(r.rtype, &r.rdata);
    writeln!(out, "{}\t{}\tIN\t{tn}\t{data}", r.owner, r.ttl)
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
