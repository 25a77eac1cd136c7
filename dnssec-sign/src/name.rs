//! Domain names in uncompressed wire form, lowercased (RFC 4034 §6.2), with the canonical
//! ordering of RFC 4034 §6.1.
//!
//! Owner names are kept lowercased throughout the pipeline: the canonical form used for
//! signing, NSEC ordering and ZONEMD digests is the only form the signer needs, and DNS names
//! compare case-insensitively anyway (RFC 4343).

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::error::ZoneError;

/// A fully qualified domain name in lowercase uncompressed wire form (labels + root).
///
/// The bytes are shared: the records of one owner and their RRSIGs hold one copy of the name,
/// so a clone costs a reference count, not an allocation.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Name(Arc<[u8]>);

impl Name {
    /// The root name `.`.
    pub fn root() -> Self {
        Self(Arc::from(&[0u8][..]))
    }

    /// Builds a name from uncompressed wire bytes, lowercasing it.
    ///
    /// Rejects compression pointers, labels over 63 octets, names over 255 octets and trailing
    /// bytes.
    pub fn from_wire(wire: &[u8]) -> Result<Self, ZoneError> {
        let (name, used) = Self::read_wire(wire)?;
        if used != wire.len() {
            return Err(ZoneError::BadName("trailing bytes after name".into()));
        }
        Ok(name)
    }

    /// Reads one uncompressed name at the start of `wire`; returns it and its length.
    pub fn read_wire(wire: &[u8]) -> Result<(Self, usize), ZoneError> {
        let mut pos = 0usize;
        loop {
            let len = *wire
                .get(pos)
                .ok_or_else(|| ZoneError::BadName("name runs past the end".into()))?
                as usize;
            if len > 63 {
                return Err(ZoneError::BadName("label too long or compressed".into()));
            }
            pos += 1 + len;
            if pos > 255 {
                return Err(ZoneError::BadName("name longer than 255 octets".into()));
            }
            if len == 0 {
                break;
            }
        }
        let bytes = wire
            .get(..pos)
            .ok_or_else(|| ZoneError::BadName("name runs past the end".into()))?;
        let mut out = bytes.to_vec();
        lowercase_wire(&mut out);
        Ok((Self(out.into()), pos))
    }

    /// Parses presentation format (escapes `\.` and `\DDD` allowed); relative names are made
    /// absolute with `origin`.
    pub fn parse(text: &str, origin: Option<&Name>) -> Result<Self, ZoneError> {
        Self::parse_bytes(text.as_bytes(), origin)
    }

    /// [`Name::parse`] on raw zone file octets (which need not be UTF-8: RFC 1035 §5.1 allows
    /// any octet in a label). Errors quote at most the first 64 octets of the text.
    pub fn parse_bytes(bytes: &[u8], origin: Option<&Name>) -> Result<Self, ZoneError> {
        // hickory's `Name::parse` applies IDNA rules and refuses binary labels such as
        // `\200`, which RFC 4034 §6.1 examples use; the escape rules of RFC 1035 §5.1 are
        // simple enough to apply here.
        let bad = |m: &str| ZoneError::BadName(format!("{}: {m}", crate::rdata::abbreviate(bytes)));
        if bytes == b"." {
            return Ok(Self::root());
        }
        if bytes.is_empty() {
            return Err(bad("empty name"));
        }
        if bytes.len() > 4 * 255 {
            return Err(bad("name longer than 255 octets"));
        }
        let mut out = Vec::with_capacity(bytes.len() + 2);
        let mut label: Vec<u8> = Vec::new();
        let mut i = 0;
        let mut absolute = false;
        let push_label = |out: &mut Vec<u8>, label: &mut Vec<u8>| -> Result<(), ZoneError> {
            if label.is_empty() || label.len() > 63 {
                return Err(bad("empty label or label longer than 63 octets"));
            }
            out.push(label.len() as u8);
            out.append(label);
            Ok(())
        };
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    let d = bytes.get(i + 1..i + 4);
                    if let Some(d) = d.filter(|d| d.iter().all(u8::is_ascii_digit)) {
                        let v = (d[0] - b'0') as u32 * 100 + (d[1] - b'0') as u32 * 10 + (d[2] - b'0') as u32;
                        label.push(u8::try_from(v).map_err(|_| bad("escape above \\255"))?);
                        i += 4;
                    } else {
                        let c = *bytes.get(i + 1).ok_or_else(|| bad("dangling backslash"))?;
                        label.push(c);
                        i += 2;
                    }
                }
                b'.' => {
                    push_label(&mut out, &mut label)?;
                    i += 1;
                    if i == bytes.len() {
                        absolute = true;
                    }
                }
                c => {
                    label.push(c);
                    i += 1;
                }
            }
        }
        if !label.is_empty() {
            push_label(&mut out, &mut label)?;
        }
        if absolute {
            out.push(0);
        } else {
            let origin = origin.ok_or_else(|| bad("relative name and no origin known"))?;
            out.extend_from_slice(origin.wire());
        }
        if out.len() > 255 {
            return Err(bad("name longer than 255 octets"));
        }
        lowercase_wire(&mut out);
        Ok(Self(out.into()))
    }

    /// Converts from a hickory name (lowercasing it).
    pub fn from_hickory(name: &hickory_proto::rr::Name) -> Result<Self, ZoneError> {
        let mut out = Vec::with_capacity(name.len() + 2);
        for label in name.iter() {
            let len = u8::try_from(label.len()).map_err(|_| ZoneError::BadName("label too long".into()))?;
            out.push(len);
            out.extend_from_slice(label);
        }
        out.push(0);
        if out.len() > 255 {
            return Err(ZoneError::BadName("name longer than 255 octets".into()));
        }
        lowercase_wire(&mut out);
        Ok(Self(out.into()))
    }

    /// Converts to a hickory name.
    pub fn to_hickory(&self) -> Result<hickory_proto::rr::Name, ZoneError> {
        let mut name = hickory_proto::rr::Name::from_labels(self.labels())
            .map_err(|e| ZoneError::BadName(e.to_string()))?;
        name.set_fqdn(true);
        Ok(name)
    }

    /// The wire bytes (lowercase, uncompressed).
    pub fn wire(&self) -> &[u8] {
        &self.0
    }

    /// Labels from left to right, without the root label.
    pub fn labels(&self) -> Labels<'_> {
        Labels {
            wire: &self.0,
            pos: 0,
        }
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.labels().count()
    }

    /// The RRSIG `Labels` field: labels without the root and without a leading `*`
    /// (RFC 4034 §3.1.3).
    pub fn rrsig_labels(&self) -> u8 {
        let n = self.label_count();
        let n = if self.is_wildcard() { n - 1 } else { n };
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// Whether the first label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.0.len() >= 2 && self.0[0] == 1 && self.0[1] == b'*'
    }

    /// Whether this is the root name.
    pub fn is_root(&self) -> bool {
        self.0.len() == 1
    }

    /// The name with its first label removed, or `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        if self.is_root() {
            return None;
        }
        let skip = 1 + self.0[0] as usize;
        Some(Self(self.0[skip..].to_vec().into()))
    }

    /// Whether `self` is `other` or below it.
    pub fn is_subdomain_of(&self, other: &Name) -> bool {
        if other.0.len() > self.0.len() {
            return false;
        }
        let suffix_start = self.0.len() - other.0.len();
        if self.0[suffix_start..] != other.0[..] {
            return false;
        }
        // the suffix must start on a label boundary
        let mut pos = 0usize;
        while pos < suffix_start {
            pos += 1 + self.0[pos] as usize;
        }
        pos == suffix_start
    }

    /// Whether `self` is strictly below `other`.
    pub fn is_strict_subdomain_of(&self, other: &Name) -> bool {
        self.0.len() > other.0.len() && self.is_subdomain_of(other)
    }

    /// Prepends one label.
    pub fn prepend(&self, label: &[u8]) -> Result<Name, ZoneError> {
        let len = u8::try_from(label.len())
            .ok()
            .filter(|l| *l > 0 && *l <= 63)
            .ok_or_else(|| ZoneError::BadName("bad label length".into()))?;
        let mut out = Vec::with_capacity(self.0.len() + label.len() + 1);
        out.push(len);
        out.extend_from_slice(label);
        out.extend_from_slice(&self.0);
        if out.len() > 255 {
            return Err(ZoneError::BadName("name longer than 255 octets".into()));
        }
        lowercase_wire(&mut out);
        Ok(Self(out.into()))
    }
}

/// Iterator over the labels of a [`Name`].
#[derive(Debug, Clone)]
pub struct Labels<'a> {
    wire: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let len = *self.wire.get(self.pos)? as usize;
        if len == 0 {
            return None;
        }
        let label = self.wire.get(self.pos + 1..self.pos + 1 + len)?;
        self.pos += 1 + len;
        Some(label)
    }
}

fn lowercase_wire(wire: &mut [u8]) {
    let mut pos = 0usize;
    while pos < wire.len() {
        let len = wire[pos] as usize;
        if len == 0 {
            break;
        }
        let end = (pos + 1 + len).min(wire.len());
        wire[pos + 1..end].make_ascii_lowercase();
        pos = end;
    }
}

/// Compares two wire names in canonical DNS order (RFC 4034 §6.1): label by label from the
/// right, each label as a lowercase octet string, absent labels first.
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let mut sa = [0u8; 128];
    let mut sb = [0u8; 128];
    let na = label_starts(a, &mut sa);
    let nb = label_starts(b, &mut sb);
    let (mut ia, mut ib) = (na, nb);
    while ia > 0 && ib > 0 {
        ia -= 1;
        ib -= 1;
        let la = label_at(a, sa[ia]);
        let lb = label_at(b, sb[ib]);
        match la.cmp(lb) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    na.cmp(&nb)
}

fn label_starts(wire: &[u8], out: &mut [u8; 128]) -> usize {
    let mut pos = 0usize;
    let mut n = 0usize;
    while let Some(&len) = wire.get(pos) {
        if len == 0 || n == out.len() {
            break;
        }
        out[n] = u8::try_from(pos).unwrap_or(u8::MAX);
        n += 1;
        pos += 1 + len as usize;
    }
    n
}

fn label_at(wire: &[u8], start: u8) -> &[u8] {
    let start = start as usize;
    let len = wire.get(start).copied().unwrap_or(0) as usize;
    wire.get(start + 1..start + 1 + len).unwrap_or(&[])
}

impl Ord for Name {
    fn cmp(&self, other: &Self) -> Ordering {
        canonical_cmp(&self.0, &other.0)
    }
}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &b in label {
                match b {
                    b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => write!(f, "\\{}", b as char)?,
                    0x21..=0x7e => write!(f, "{}", b as char)?,
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s, None).unwrap()
    }

    #[test]
    fn canonical_order_matches_rfc4034_section_6_1_example() {
        let ordered = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "Z.a.example.",
            "zABC.a.EXAMPLE.",
            "z.example.",
            "\\001.z.example.",
            "*.z.example.",
            "\\200.z.example.",
        ];
        let names: Vec<Name> = ordered.iter().map(|s| n(s)).collect();
        let mut shuffled = names.clone();
        shuffled.reverse();
        shuffled.sort();
        assert_eq!(shuffled, names);
    }

    #[test]
    fn subdomain_test_respects_label_boundaries() {
        assert!(n("a.b.example.").is_subdomain_of(&n("b.example.")));
        assert!(!n("ab.example.").is_subdomain_of(&n("b.example.")));
        assert!(n("example.").is_subdomain_of(&n("example.")));
        assert!(!n("example.").is_strict_subdomain_of(&n("example.")));
    }

    #[test]
    fn rrsig_labels_do_not_count_wildcard() {
        assert_eq!(n("*.a.example.").rrsig_labels(), 2);
        assert_eq!(n("a.example.").rrsig_labels(), 2);
        assert_eq!(Name::root().rrsig_labels(), 0);
    }
}
