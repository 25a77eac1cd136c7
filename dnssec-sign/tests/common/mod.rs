//! Shared helpers of the integration tests: fixtures, signing, external validators.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dnssec_sign::keys::{Algorithm, LocalKey, ZoneSigningKey};
use dnssec_sign::sign::{SignOptions, sign_zone};
use dnssec_sign::zone::Zone;
use dnssec_sign::{Name, parse_zone, read_zone_file};

pub fn data(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(p)
}

/// A combined signing key (KSK flags) for `example.` on a cluster key, as the zone signer's cluster tests use it.
pub fn example_cluster_csk(
    cluster: &std::sync::Arc<tcrypto_net::client::blocking::BlockingCluster>,
    key: tcrypto::KeyId,
) -> dnssec_sign::cluster::ClusterKey<tcrypto_net::client::blocking::BlockingEngine> {
    let options = dnssec_sign::cluster::ClusterKeyOptions {
        ksk: true,
        ..Default::default()
    };
    dnssec_sign::cluster::ClusterKey::new(cluster.clone(), key, &name("example."), options).unwrap()
}

/// Signed data of an RRSIG by `key` (apex `example.`) over one TXT record holding `text`: what a zone signer
/// sends the cluster, which parses it strictly before it signs.
#[allow(dead_code)]
pub fn rrsig_message(key: &impl ZoneSigningKey, text: &str) -> Vec<u8> {
    let dnskey = key.dnskey();
    let mut rdata = vec![u8::try_from(text.len()).unwrap()];
    rdata.extend_from_slice(text.as_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    tcrypto_net::node::policy::RrsigBuilder::new("example.", "example.", 16, dnskey.algorithm)
        .unwrap()
        .signed(
            tcrypto_net::node::policy::rrsig_time(now, -3600),
            tcrypto_net::node::policy::rrsig_time(now, 86_400),
            dnskey.key_tag(),
        )
        .rdata(&rdata)
        .build()
}

pub fn name(s: &str) -> Name {
    Name::parse(s, None).unwrap()
}

pub fn load(file: &str, origin: &str) -> Zone {
    read_zone_file(&data(file), Some(&name(origin))).unwrap()
}

pub fn zone_from(text: &str, origin: &str) -> Zone {
    parse_zone(text, Path::new("test.zone"), Some(&name(origin))).unwrap()
}

/// The committed fixture keys of `example.` for one algorithm: (KSK, ZSK).
pub fn fixture_keys(alg: Algorithm) -> (LocalKey, LocalKey) {
    let mut ksk = None;
    let mut zsk = None;
    for e in std::fs::read_dir(data("keys")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "key") {
            let k = LocalKey::read_files(&p).unwrap();
            if k.algorithm() == alg {
                if k.dnskey().is_sep() {
                    ksk = Some(k)
                } else {
                    zsk = Some(k)
                }
            }
        }
    }
    (ksk.expect("fixture KSK"), zsk.expect("fixture ZSK"))
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn sign(zone: Zone, keys: &[&LocalKey], opts: &SignOptions) -> Zone {
    let refs: Vec<&dyn ZoneSigningKey> = keys.iter().map(|k| *k as &dyn ZoneSigningKey).collect();
    sign_zone(zone, &refs, opts, None).unwrap().0
}

/// Path of an external tool; panics (the test fails) when it is missing, since `.ci/run`
/// installs it.
pub fn tool(name: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!("{name} is missing: .ci/run installs it (ldnsutils, bind9-utils, knot-dnssecutils, pdns-server)");
}

/// Runs a tool with a timeout; returns (success, combined output).
pub fn run(tool_name: &str, args: &[&str]) -> (bool, String) {
    let t = tool(tool_name);
    let out = Command::new("timeout")
        .arg("120")
        .arg(&t)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool_name}: {e}"));
    let text = format!(
        "{} {}\n{}{}",
        tool_name,
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn write_zone(dir: &Path, file: &str, zone: &Zone) -> PathBuf {
    let p = dir.join(file);
    dnssec_sign::write_zone_file(&p, &zone.origin, &zone.records).unwrap();
    p
}

/// Asserts that ldns-verify-zone, dnssec-verify and kzonecheck accept the zone file.
pub fn assert_validators_accept(path: &Path, origin: &str) {
    let p = path.to_str().unwrap();
    let (ok, out) = run("ldns-verify-zone", &[p]);
    assert!(ok, "ldns-verify-zone rejected:\n{out}");
    let (ok, out) = run("dnssec-verify", &["-o", origin, p]);
    assert!(ok, "dnssec-verify rejected:\n{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", origin, p]);
    assert!(ok, "kzonecheck rejected:\n{out}");
}

/// An independent ZONEMD check: `ldns-verify-zone -Z` for NSEC zones, `pdnsutil
/// zonemd-verify-file` for NSEC3 zones (ldns 1.8.3 hangs on NSEC3 zones with ZONEMD).
pub fn independent_zonemd_ok(path: &Path, origin: &str, nsec3: bool) -> (bool, String) {
    let p = path.to_str().unwrap();
    if nsec3 {
        let (ok, out) = run("pdnsutil", &["zonemd-verify-file", origin, p]);
        (ok && out.contains("succeeded"), out)
    } else {
        run("ldns-verify-zone", &["-Z", "-Z", p])
    }
}

/// Writes `signed` to `dir/file` and asserts that our verifier, `ldns-verify-zone` (not on NSEC3
/// zones with ZONEMD, where ldns 1.8.3 hangs), `dnssec-verify` and `kzonecheck -d on` accept it,
/// and, with a ZONEMD, the independent ZONEMD check.
pub fn assert_signed_zone_accepted(
    dir: &Path,
    file: &str,
    signed: &Zone,
    origin: &str,
    nsec3: bool,
    with_zonemd: bool,
) {
    use dnssec_sign::verify::{VerifyOptions, verify_zone};
    let path = write_zone(dir, file, signed);
    let p = path.to_str().unwrap();
    let problems = verify_zone(
        signed,
        &VerifyOptions {
            now: Some(now()),
            require_zonemd: with_zonemd,
        },
    )
    .unwrap();
    assert!(problems.is_empty(), "{file}: our verifier: {problems:#?}");
    if !(nsec3 && with_zonemd) {
        let (ok, out) = run("ldns-verify-zone", &[p]);
        assert!(ok, "{file}: ldns-verify-zone rejected:\n{out}");
    }
    // -z for a combined key (only SEP keys): BIND otherwise wants a key without SEP for zone data
    let csk = !signed
        .records
        .iter()
        .any(|r| r.rtype == dnssec_sign::rdata::rtype::DNSKEY && r.rdata.get(..2) == Some(&[1, 0]));
    let bind_args = if csk {
        vec!["-z", "-o", origin, p]
    } else {
        vec!["-o", origin, p]
    };
    let (ok, out) = run("dnssec-verify", &bind_args);
    assert!(ok, "{file}: dnssec-verify rejected:\n{out}");
    let (ok, out) = run("kzonecheck", &["-d", "on", "-o", origin, p]);
    assert!(ok, "{file}: kzonecheck rejected:\n{out}");
    if with_zonemd {
        let (ok, out) = independent_zonemd_ok(&path, origin, nsec3);
        assert!(ok, "{file}: independent ZONEMD check failed:\n{out}");
    }
}

/// A hostile zone no one here would write by hand: every type the issue lists by mnemonic, the
/// rare IANA types (WKS, NULL, NSAP, A6, NXT, EID, NIMLOC, ATMA, SINK, HIP, UINFO, UID, GID,
/// UNSPEC, AMTRELAY, DOA, CLA, IPN, TA, DLV, MB, MG, MR, MINFO, KEY) in their own form and in
/// RFC 3597 form (not MD and MF, which BIND refuses in any form), escapes, raw Latin-1 octets in names, TXT and comments, RFC 3597 data of known and private
/// types, quoted SvcParams, `@` in record data, deep empty non-terminals, glue, occluded data,
/// wildcards, secure and insecure delegations, DNAME. `copies` blocks of it under `h<i>.`.
/// `non_ascii_hinfo`: HINFO with octets above 127, which dnspython 2.3 misreads (it turns
/// `\200` into the UTF-8 of U+00C8), so its checks get the zone without them.
pub fn hostile_zone(copies: usize, non_ascii_hinfo: bool) -> Vec<u8> {
    let mut z: Vec<u8> = Vec::new();
    z.extend_from_slice(
        b"; hostile zone (generated) \xe9t\xe9 \xfc\n$ORIGIN example.\n$TTL 1h\n\
@ IN SOA ns1 hostmaster ( 2024010101 2h 1h 2w 300 ) ; Latin-1 in a comment: \xe0\xe9\n\
@ NS ns1\n@ NS ns2.example.net.\n@ MX 10 @\nns1 A 192.0.2.1\n",
    );
    for i in 0..copies {
        let block = format!(
            r#"$ORIGIN h{i}.example.
@ A 192.0.2.{a}
@ AAAA 2001:db8::{i:x}
c CNAME @
m MX 10 @
m MX 20 mail.example.net.
t TXT "quoted \"escaped\" \\backslash" plain \065\066 "\255\000\010" "semi;colon" ( "in
parens" )
t TXT ""
sp SPF "v=spf1 -all"
spg TYPE99 \# 12 0B763D73706631202D616C6C
hi HINFO "PDP-11" "os"
afsdb AFSDB 1 @
apl APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:2001:db8::/32 1:0.0.0.0/0
dhcid DHCID AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=
eui EUI48 00-00-5e-00-53-2a
eui EUI64 00-00-5e-ef-10-00-00-2a
ipsec IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
ipsec IPSECKEY 10 3 2 gw.example. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
ipsec IPSECKEY 10 2 2 2001:db8::1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
kx KX 10 @
ilnp L32 10 10.1.2.0
ilnp L64 10 2001:0DB8:1140:1000
ilnp LP 10 l64-subnet1.example.
ilnp NID 10 0014:4fff:ff20:ee64
loc LOC 42 21 54 N 71 06 18 W -24m 30m
loc LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m
rp RP mbox.example. @
uri URI 10 1 "ftp://ftp1.example.com/public"
caa CAA 0 issue "ca.example.net; account=230123"
caa CAA 128 tbs "Unknown \"quoted\""
sshfp SSHFP 4 2 123456789abcdef67890123456789abcdef67890123456789abcdef123456789
_443._tcp.www TLSA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
x._smimecert SMIMEA 3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6
pgp OPENPGPKEY mQINBFit2jsBEADrbl5vjVxYeAE0g0IDYCBpHirv1Sjlqxx5gjtPhb2YhvyDMXjq
csync CSYNC 66 3 A NS AAAA
naptr NAPTR 100 10 "S" "SIP+D2U" "!^.*$!sip:customer-service@example.com!" _sip._udp
_sip._udp SRV 0 5 5060 @
svc SVCB 1 . alpn="h2,h3" port=8443 ipv4hint=192.0.2.1,192.0.2.2 ipv6hint=2001:db8::1 mandatory=alpn,port
svc SVCB 2 svc.example.net. alpn=h2 dohpath="/dns-query{{?dns}}" key65000="hello\210qoo"
web HTTPS 1 . alpn=h2 no-default-alpn ech="AEj+DQBEAQAgACB/LVqIrO2GOvZt"
alias HTTPS 0 svc.example.net.
gen A \# 4 C0000201
gen2 MX \# 7 000A 03 4D5831 00
priv TYPE65305 \# 3 ABCDEF
priv TYPE65534 \# 0
a.b.c.d.e.f.g.h.i.j.deep TXT "deep"
*.w A 192.0.2.7
*.w TXT "wild"
del NS ns.del
del NS ns.example.net.
ns.del A 192.0.2.53
ns.del AAAA 2001:db8::53
below.ns.del TXT "occluded"
sec NS ns.example.net.
sec DS 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE07A5C1FA9BD0E21C45E5A43F
dn DNAME target.example.net.
esc\.dot TXT "escaped dot"
\032space A 192.0.2.9
bin\200label A 192.0.2.10
MiXeD A 192.0.2.11
ptr PTR @
minfo MINFO @ @
mb MB @
mg MG mail.example.net.
mr MR @
key KEY 256 3 ECDSAP256SHA256 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==
wks WKS 192.0.2.1 6 25 80
wks WKS 192.0.2.2 TCP smtp domain http 12345
wks-g TYPE11 \# 16 C0000201060000004000000000000080
null NULL \# 3 010203
null-g TYPE10 \# 0
nsap NSAP 0x47.0005.80.005a00.0000.0001.e133.ffffff000161.00
nsap-g TYPE22 \# 4 47000580
a6 A6 0 2345:00C1:CA11:0001:1234:5678:9ABC:DEF0
a6 A6 64 ::1234:5678:9ABC:DEF0 subnet-1.example.net.
a6 A6 128 @
a6-g A6 \# 24 300000000100000000000003697036076578616D706C6500
nxt NXT @ A MX SIG NXT
nxt-g TYPE30 \# 18 046E657874076578616D706C650040010082
eid EID 89ABCDEF 0123
nimloc NIMLOC 89ABCDEF
eid-g TYPE31 \# 2 ABCD
atma ATMA 39246f00e7c9c0312000100100001234567800
atma ATMA +358400123456
atma-g ATMA \# 13 01333538343030313233343536
sink SINK 1 0 AQID
sink-g TYPE40 \# 5 0100010203
hip HIP 2 200100107B1A74DF365639CC39F1D578 AwEAAbdxyhNuSutc5EMzxTs9LBPCIkOFH8cIvM4p9+LrV4e19WzK00+CI6zBCQTdtWsuxKbWIy87UOoJTwkUs7lBu+Upr1gsNrut79ryra+bSRGQb1slImA8YVJyuIDsj7kwzG7jnERNqnWxZ48AWkskmdHaVDP4BcelrTI3rMXdXF5D rvs1.example.com. rvs2.example.com.
hip-g TYPE55 \# 188 10020084200100107B1A74DF365639CC39F1D57803010001B771CA136E4AEB5CE44333C53B3D2C13C22243851FC708BCCE29F7E2EB5787B5F56CCAD34F8223ACC10904DDB56B2EC4A6D6232F3B50EA094F0914B3B941BBE529AF582C36BBADEFDAF2ADAF9B4911906F5B2522603C615272B880EC8FB930CC6EE39C444DAA75B1678F005A4B2499D1DA5433F805C7A5AD3237ACC5DD5C5E430472767331076578616D706C6503636F6D000472767332076578616D706C6503636F6D00
uinfo UINFO "some \"info\""
uinfo-g TYPE100 \# 10 09736F6D6520696E666F
uid UID 1000
gid GID 4294967295
uid-g UID \# 4 000003E8
unspec UNSPEC \# 3 010203
amt AMTRELAY 10 0 1 203.0.113.15
amt AMTRELAY 10 1 3 amtrelays.example.com.
amt AMTRELAY 128 0 0 .
amt AMTRELAY 10 0 2 2001:db8::15
amt-g TYPE260 \# 2 0A00
doa DOA 0 1 2 "image/png" aHR0cHM6Ly93d3cuaXNjLm9yZy8=
doa DOA 0 1 2 "" -
doa-g TYPE259 \# 10 00000000000000010300
cla CLA "tcp-v4"
cla-g TYPE263 \# 7 067463702D7634
ipn IPN 1234567890
ipn-g IPN \# 8 00000000499602D2
ta TA 12345 13 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE07A5C1FA9BD0E21C45E5A43F
dlv DLV 12345 ECDSAP256SHA256 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE07A5C1FA9BD0E21C45E5A43F
ta-g TYPE32768 \# 36 30390D0249FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE07A5C1FA9BD0E21C45E5A43F
"#,
            a = i % 250 + 1
        );
        z.extend_from_slice(block.as_bytes());
        // raw Latin-1 octets in an owner, in TXT and HINFO data, and in a comment
        z.extend_from_slice(b"caf\xe9 TXT caf\xe9 \"na\xefve\" ; comment \xff\xfe\n");
        if non_ascii_hinfo {
            z.extend_from_slice(b"hi2 HINFO \"\xc3\xa9\" \xe9\\200\n");
        }
    }
    z
}

/// Reads the zone file with dnspython (python3-dnspython, installed by `.ci/run`) and prints
/// each record as `owner-wire-hex type rdata-canonical-wire-hex`, sorted; with `zonemd`, also
/// checks the ZONEMD digest (dnspython's `verify_digest`). Returns (success, output).
pub fn dnspython_records(path: &Path, origin: &str, zonemd: bool) -> (bool, String) {
    let script = r#"
import sys, dns.zone, dns.name, dns.rdatatype
path, origin, zonemd = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
z = dns.zone.from_file(path, origin=origin, relativize=False, check_origin=True)
if zonemd:
    z.verify_digest()
out = []
for name, node in z.nodes.items():
    for rds in node.rdatasets:
        for rd in rds:
            out.append("%s %d %s" % (name.canonicalize().to_wire().hex(), rds.rdtype, rd.to_digestable(z.origin).hex()))
print("\n".join(sorted(out)))
"#;
    // Debian's python3 (python3-dnspython), not one a user may have put first on PATH
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .arg(origin)
        .arg(if zonemd { "1" } else { "0" })
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Our records in the form [`dnspython_records`] prints.
pub fn our_records(zone: &Zone) -> String {
    let mut v: Vec<String> = zone
        .records
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                hex::encode(r.owner.wire()),
                r.rtype,
                hex::encode(&r.rdata)
            )
        })
        .collect();
    v.sort();
    v.dedup();
    v.join("\n")
}

/// NSEC, NSEC3 (RFC 9276 parameters) and NSEC3 opt-out (with salt and iterations).
pub fn denial_modes() -> Vec<(&'static str, dnssec_sign::Denial)> {
    vec![
        ("nsec", dnssec_sign::Denial::Nsec),
        ("nsec3", dnssec_sign::Denial::nsec3_rfc9276()),
        (
            "nsec3-optout",
            dnssec_sign::Denial::Nsec3 {
                params: dnssec_sign::rdata::Nsec3Param {
                    hash_algorithm: 1,
                    flags: 0,
                    iterations: 5,
                    salt: vec![0xca, 0xfe],
                },
                opt_out: true,
            },
        ),
    ]
}
