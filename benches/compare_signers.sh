#!/usr/bin/env bash
# Signs the same synthetic zone (default 100,000 records, NSEC3 with RFC 9276 parameters) with
# ldns-signzone, dnssec-signzone -n 2, kzonesign (2 signing threads) and dnssec-sign, first
# with an ECDSA P-256 KSK+ZSK, then with RSA-2048, and prints wall time, peak RSS and RRSIGs
# per second side by side (measured with /usr/bin/time -v). Every output is checked with
# ldns-verify-zone. Usage: benches/compare_signers.sh [records] [workdir]
# ZONE_FILE=path ORIGIN=name signs that zone instead (its RRSIG, NSEC, NSEC3, NSEC3PARAM, DNSKEY and ZONEMD
# records are dropped first), e.g. ZONE_FILE=root.zone ORIGIN=. for the root zone.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
n=${1:-100000}
work=${2:-$(mktemp -d /tmp/compare-signers.XXXXXX)}
origin=${ORIGIN:-bench.example.}
mkdir -p "$work"
cd "$work"

for t in ldns-signzone dnssec-signzone kzonesign keymgr ldns-verify-zone /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t (see .ci/run)" >&2; exit 1; }
done

cargo build --release -q -p dnssec-sign --manifest-path "$here/Cargo.toml"
ours="$here/target/release/dnssec-sign"
if [ -n "${ZONE_FILE:-}" ]; then
  awk '$4 !~ /^(RRSIG|NSEC|NSEC3|NSEC3PARAM|DNSKEY|ZONEMD)$/' "$ZONE_FILE" > zone.db
else
  "$here/benches/gen_zone.sh" "$n" "$origin" > zone.db
fi
echo "zone: $(grep -vc '^\$' zone.db) records in $work"

measure() { # label, command...
  local label=$1; shift
  /usr/bin/time -v "$@" > "$label.log" 2> "$label.time" || { echo "$label failed"; tail -5 "$label.time"; return 1; }
  local wall rss cpu
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$label.time")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$label.time")
  cpu=$(awk -F': ' '/User time|System time/ {s += $2} END {printf "%.2f", s}' "$label.time")
  printf '%s\t%s\t%s\t%s s CPU\n' "$label" "$wall" "$rss" "$cpu"
}

to_secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'; }

run_suite() { # algorithm-number bits label
  local alg=$1 bits=$2 tag=$3
  rm -rf "keys-$tag" && mkdir "keys-$tag"
  local ksk zsk
  ksk=$("$ours" keygen -a "$alg" -b "$bits" -k -K "keys-$tag" "$origin" 2>/dev/null)
  zsk=$("$ours" keygen -a "$alg" -b "$bits" -K "keys-$tag" "$origin" 2>/dev/null)
  # BIND wants the DNSKEYs in the zone
  { cat zone.db; cat "keys-$tag/$ksk.key" "keys-$tag/$zsk.key"; } > "zone-$tag.db"
  # Knot: its own KASP database, keys imported from the same BIND files
  rm -rf "knot-$tag" && mkdir -p "knot-$tag/out"
  local kalg
  case $alg in 13) kalg=ecdsap256sha256 ;; 8) kalg=rsasha256 ;; esac
  cat > "knot-$tag/knot.conf" <<CONF
database:
    storage: $work/knot-$tag
policy:
  - id: bench
    algorithm: $kalg
    nsec3: on
    nsec3-iterations: 0
    nsec3-salt-length: 0
    manual: on
    signing-threads: 2
zone:
  - domain: $origin
    file: $work/zone.db
    dnssec-signing: on
    dnssec-policy: bench
CONF
  keymgr -c "knot-$tag/knot.conf" "$origin" import-bind "keys-$tag/$ksk" >/dev/null
  keymgr -c "knot-$tag/knot.conf" "$origin" import-bind "keys-$tag/$zsk" >/dev/null

  echo
  echo "== $tag: tool, wall time (m:ss), peak RSS (KiB), CPU time (user + system)"
  measure "ldns-$tag" ldns-signzone -n -t 0 -f "ldns-$tag.signed" -o "$origin" zone.db "keys-$tag/$ksk" "keys-$tag/$zsk" || true
  measure "bind-$tag" dnssec-signzone -q -n 2 -3 - -H 0 -f "bind-$tag.signed" -o "$origin" -K "keys-$tag" "zone-$tag.db" "$ksk" "$zsk" || true
  measure "knot-$tag" kzonesign -c "knot-$tag/knot.conf" -o "knot-$tag/out" "$origin" || true
  measure "ours-$tag" env RUST_LOG=warn "$ours" sign -n -o "$origin" -f "ours-$tag.signed" zone.db "keys-$tag/$ksk" "keys-$tag/$zsk"
  local sigs
  sigs=$(awk '$4 == "RRSIG"' "ours-$tag.signed" | wc -l)
  echo "RRSIGs in the signed zone: $sigs"
  for f in "ldns-$tag.signed" "bind-$tag.signed" "ours-$tag.signed"; do
    ldns-verify-zone "$f" >/dev/null 2>&1 && echo "ldns-verify-zone: $f ok" || echo "ldns-verify-zone: $f REJECTED"
  done
  for l in ldns bind knot ours; do
    local w
    w=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$l-$tag.time" | to_secs)
    c=$(awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$l-$tag.time")
    awk -v l="$l" -v w="$w" -v c="$c" -v s="$sigs" 'BEGIN { printf "%-5s %7.2f s wall %8.0f RRSIGs/s, %7.2f s CPU %8.0f RRSIGs per CPU second\n", l, w, s / w, c, s / c }'
  done
}

# SUITES="ecdsa rsa" (default both)
for s in ${SUITES:-ecdsa rsa}; do
  case $s in
    ecdsa) run_suite 13 256 ecdsa-p256 ;;
    rsa) run_suite 8 2048 rsa-2048 ;;
  esac
done
