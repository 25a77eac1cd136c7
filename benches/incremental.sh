#!/usr/bin/env bash
# Incremental re-signing: a synthetic NSEC3 zone (default 100,000 records) is signed in full; then 1% of its RRsets
# change (the A record of every 33rd host gets another address) and the changed zone is signed twice, in full and
# with --previous (keeping every signature whose RRset did not change), first with local P-256 keys, then with
# 3-of-5 P-256 keys on five tcrypto-node processes (loopback mutual TLS). BIND's dnssec-signzone re-signs the same
# signed input with the changes applied, side by side. Prints, per run, the signatures made, wall and CPU time;
# every output is checked by ldns-verify-zone.
#
# Usage: benches/incremental.sh [RECORDS [WORKDIR]]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100000}
work=${2:-$(mktemp -d)}
origin=bench.example.
mkdir -p "$work"
cd "$work"
cargo build --release -q --manifest-path "$here/Cargo.toml" -p dnssec-sign --bin dnssec-sign
cargo build --release -q --manifest-path "$here/Cargo.toml" -p tcrypto-net --bin tcrypto-node --bin tcrypto-ctl
ours=$here/target/release/dnssec-sign
ctl=$here/target/release/tcrypto-ctl

"$here/benches/gen_zone.sh" "$n" "$origin" > zone.db
# The change: hosts h0, h33, h66, ... get their A record rewritten (about 1% of the zone's RRsets). In a zone file
# the owner is `hN` (field 1) and the type field 3; in a signed file the owner is `hN.<origin>` and the type field 4.
change() {
  awk '
    $3 == "A" && $1 ~ /^h[0-9]+$/ && substr($1, 2) % 33 == 0 { split($4, o, "."); $4 = "172.16." o[3] "." o[4] }
    $4 == "A" && $1 ~ /^h[0-9]+\./ {
      split($1, p, ".")
      if (substr(p[1], 2) % 33 == 0) { split($5, o, "."); $5 = "172.16." o[3] "." o[4] }
    }
    { print }' "$1"
}
change zone.db > changed.db
rrsets=$(awk '$1 !~ /^\$/ { print $1, $3 }' zone.db | sort -u | wc -l)
changed=$(diff zone.db changed.db | grep -c '^>' || true)
echo "zone: $(grep -vc '^\$' zone.db) records, $rrsets RRsets; $changed A RRsets changed; work dir $work"

measure() { # label, command... : wall and CPU seconds into label.time, output into label.log
  local label=$1
  shift
  /usr/bin/time -v "$@" > "$label.log" 2> "$label.time" || {
    echo "$label failed"
    tail -5 "$label.time"
    return 1
  }
}
secs() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$1.time"; }
cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.2f", s }' "$1.time"; }
made() { grep -ho 'RRSIGs: kept [0-9]*, made [0-9]*, dropped [0-9]*' "$1.log" "$1.time" | head -1; }
verify() { ldns-verify-zone "$1" > /dev/null 2>&1 && echo "ok" || echo "REJECTED"; }
report() { # label signed-file
  printf '%-22s %8.2f s wall %8.2f s CPU   %-44s ldns-verify-zone: %s\n' "$1" "$(secs "$1")" "$(cpu "$1")" \
    "$(made "$1")" "$(verify "$2")"
}

# ---------------------------------------------------------------------------------------------- local keys
rm -rf keys && mkdir keys
ksk=$("$ours" keygen -a 13 -k -K keys "$origin" 2> /dev/null)
zsk=$("$ours" keygen -a 13 -K keys "$origin" 2> /dev/null)
echo
echo "== local P-256 keys (KSK + ZSK), NSEC3"
measure local-first "$ours" sign -n -o "$origin" -f first.signed zone.db "keys/$ksk" "keys/$zsk"
report local-first first.signed
measure local-full "$ours" sign -n -o "$origin" -f full.signed changed.db "keys/$ksk" "keys/$zsk"
report local-full full.signed
measure local-incremental "$ours" sign -n -o "$origin" --previous first.signed -f incremental.signed changed.db \
  "keys/$ksk" "keys/$zsk"
report local-incremental incremental.signed

# BIND: the first signed zone with the same change applied, re-signed by dnssec-signzone (it keeps the signatures
# that verify and do not expire within its cycle); the new signatures are those not in its input.
change first.signed > bind-input.db
measure bind-incremental dnssec-signzone -q -n 2 -3 - -H 0 -o "$origin" -f bind.signed -K keys bind-input.db \
  "$ksk" "$zsk"
bind_new=$(comm -13 <(awk '$4 == "RRSIG"' bind-input.db | sort) <(awk '$4 == "RRSIG"' bind.signed | sort) | wc -l)
printf '%-22s %8.2f s wall %8.2f s CPU   %-44s ldns-verify-zone: %s\n' bind-incremental "$(secs bind-incremental)" \
  "$(cpu bind-incremental)" "RRSIGs: made $bind_new (not in its input)" "$(verify bind.signed)"

# ---------------------------------------------------------------------------------------------- cluster keys
echo
echo "== 3-of-5 cluster P-256 keys (five tcrypto-node processes), NSEC3"
TCRYPTO_NODE="$here/target/release/tcrypto-node" "$here/tcrypto-net/scripts/local-cluster.sh" cluster 5 7480 > /dev/null
trap 'kill $(cat "$work/cluster/pids") 2> /dev/null || true' EXIT
export TCRYPTO_COORDINATOR_PASSPHRASE=local-cluster-test
cksk=$("$ctl" --config cluster/coordinator.toml --tsv create --algorithm p256 --threshold 3)
czsk=$("$ctl" --config cluster/coordinator.toml --tsv create --algorithm p256 --threshold 3)
cluster=(--cluster cluster/coordinator.toml --cluster-ksk "$cksk" --cluster-zsk "$czsk")
measure cluster-first "$ours" sign -n -o "$origin" -f cfirst.signed zone.db "${cluster[@]}"
report cluster-first cfirst.signed
measure cluster-full "$ours" sign -n -o "$origin" -f cfull.signed changed.db "${cluster[@]}"
report cluster-full cfull.signed
measure cluster-incremental "$ours" sign -n -o "$origin" --previous cfirst.signed -f cincremental.signed changed.db \
  "${cluster[@]}"
report cluster-incremental cincremental.signed
awk -v f="$(secs cluster-full)" -v i="$(secs cluster-incremental)" \
  'BEGIN { printf "cluster keys: the incremental run took %.1f%% of the full run'"'"'s wall time\n", 100 * i / f }'
