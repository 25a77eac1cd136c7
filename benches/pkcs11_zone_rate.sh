#!/usr/bin/env bash
# The PKCS#11 module and the zone signer next to the raw cluster rate they are built on (issue 19): five tcrypto-node
# processes on loopback mutual TLS, 3-of-5 keys (RSA-2048 from a ceremony dealt from committed test safe primes,
# ECDSA P-256 and Ed25519 made by DKG), and per algorithm, in the same run and against the same nodes:
#   raw8, raw32  examples/cluster.rs --connect with the key, 8 and 32 requests in flight (8 and 32 caller threads of
#                the thread-free coordinator; every signature verified by rsa / p256 / ed25519-dalek);
#   pkcs11       pkcs11-provider/examples/sign_rate.rs: C_Sign from 8 threads through libpkcs11_provider.so with
#                `backend = "cluster"` (the module generates its own key of the algorithm: RSA dealt from the
#                module's committed test primes, P-256 and Ed25519 by DKG; CKM_SHA256_RSA_PKCS, CKM_ECDSA,
#                CKM_EDDSA), for SECONDS;
#   zone         dnssec-sign sign --cluster with the cluster key as the zone's only key (a CSK, flags 257), on a synthetic
#                NSEC3 zone of RECORDS records (benches/gen_zone.sh): RRSIGs made per minute of the process's wall
#                time (unsealing the coordinator identity, connecting, load, NSEC3 chain, signing, writing; the
#                `stage` row is dnssec-sign's own time for the signing stage alone); the signed zone must pass
#                ldns-verify-zone and kzonecheck, or the script fails.
# Prints a table: rate per minute, ratio to the raw rate at 8 and at 32 in flight, CPU per signature of the five
# node processes together (utime + stime from /proc before and after; for pkcs11 this includes the module's key
# generation) and of the client process (cluster and sign_rate: their own figure for the signing loop; dnssec-sign:
# the whole process, zone work and the check of every signature included). Release build; on a quiet machine the
# rates are figures, on a loaded one only the ratios mean something.
# Usage: benches/pkcs11_zone_rate.sh [RECORDS [COUNT [SECONDS [WORKDIR]]]]   (defaults 6000, 3000, 30, a temp dir)
# ALGORITHMS="rsa ecdsa ed25519" (the default) picks the algorithms; PORT (default 7700) the first node's port.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
records=${1:-6000}
count=${2:-3000}
seconds=${3:-30}
work=${4:-$(mktemp -d /tmp/pkcs11-zone-rate.XXXXXX)}
algorithms=${ALGORITHMS:-rsa ecdsa ed25519}
port=${PORT:-7700}
origin=bench.example.
mkdir -p "$work"
work=$(cd "$work" && pwd)
tick=$(getconf CLK_TCK)
for t in ldns-verify-zone kzonecheck /usr/bin/time; do
  command -v "$t" > /dev/null || { echo "missing $t" >&2; exit 1; }
done

cargo build --release -q --manifest-path "$here/Cargo.toml" -p tcrypto-net --features dealer --bins
cargo build --release -q --manifest-path "$here/Cargo.toml" --example cluster
cargo build --release -q --manifest-path "$here/Cargo.toml" -p dnssec-sign --bin dnssec-sign
cargo build --release -q --manifest-path "$here/Cargo.toml" -p pkcs11-provider --lib --example sign_rate
bin="$here/target/release"

# sign_rate logs in with this user PIN, and the cluster backend opens the sealed coordinator identity with the
# user PIN: the identity is sealed with it. tcrypto-ctl, the cluster example and dnssec-sign read it from the
# coordinator's passphrase file.
pin=user-pin-5678
export TCRYPTO_COORDINATOR_PASSPHRASE=$pin
dir="$work/cluster"
TCRYPTO_NODE="$bin/tcrypto-node" "$here/tcrypto-net/scripts/local-cluster.sh" "$dir" 5 "$port" > /dev/null
trap 'kill $(cat "$dir/pids") 2> /dev/null || true' EXIT

node_ticks() { # utime + stime of the five node processes
  local total=0 pid
  for pid in $(cat "$dir/pids"); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$total"
}
per_sig() { # ticks signatures -> ms per signature
  awk -v t="$1" -v hz="$tick" -v n="$2" 'BEGIN { printf "%.2f", n ? 1000 * t / hz / n : 0 }'
}

# The keys: RSA from an offline ceremony, imported on each node; P-256 and Ed25519 by DKG.
nodes=()
for i in 1 2 3 4 5; do nodes+=(--node "$dir/node$i/node.pub"); done
"$bin/tcrypto-node" ceremony --threshold 3 --primes "$here/tcrypto/tests/data/safe_primes_1024.txt" \
  "${nodes[@]}" --out "$work/rsa" > /dev/null
"$bin/tcrypto-ctl" -c "$dir/coordinator.toml" import "$work/rsa" > /dev/null
declare -A key
key[rsa]=$(cat "$work/rsa/key-id")
key[ecdsa]=$("$bin/tcrypto-ctl" -c "$dir/coordinator.toml" --tsv create --algorithm p256 --threshold 3)
key[ed25519]=$("$bin/tcrypto-ctl" -c "$dir/coordinator.toml" --tsv create --algorithm ed25519 --threshold 3)

cat > "$work/pkcs11.toml" << TOML
store = "$work/pkcs11-objects.sqlite"
backend = "cluster"
log_file = "$work/pkcs11.log"
log_level = "warn"

[[tokens]]
label = "bench"

[cluster]
coordinator = "$dir/coordinator.toml"
threshold = 3
rsa_test_primes = "$here/pkcs11-provider/tests/fixtures/rsa-test-primes.txt"
TOML

"$here/benches/gen_zone.sh" "$records" "$origin" > "$work/zone.db"
echo "cluster: 5 tcrypto-node processes in $dir; zone: $(grep -vc '^\$' "$work/zone.db") records; work dir $work"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"

declare -A rate cpu_node cpu_client
# One measurement: label algorithm, then the command; its output goes to $work/label-algorithm.out.
measure() {
  local what=$1 alg=$2
  shift 2
  local before after out="$work/$what-$alg.out"
  before=$(node_ticks)
  /usr/bin/time -f 'time: %e s wall, %U s user, %S s system' -o "$out.time" "$@" > "$out" 2> "$out.err" || {
    echo "$what $alg failed:" >&2
    tail -20 "$out.err" >&2
    exit 1
  }
  after=$(node_ticks)
  echo $((after - before))
}

for alg in $algorithms; do
  echo
  echo "== $alg, key ${key[$alg]}"
  for n in 8 32; do
    t=$(measure "raw$n" "$alg" "$bin/examples/cluster" --connect "$dir/coordinator.toml" --key "${key[$alg]}" \
      --count "$count" --in-flight "$n")
    line=$(grep 'signatures/min' "$work/raw$n-$alg.out")
    echo "raw$n: $line"
    rate[raw$n,$alg]=$(echo "$line" | grep -o '[0-9]* signatures/min' | cut -d' ' -f1)
    cpu_node[raw$n,$alg]=$(per_sig "$t" "$count")
    cpu_client[raw$n,$alg]=$(echo "$line" | sed -n 's/.*process CPU \([0-9.]*\) ms.*/\1/p')
  done

  kind=$alg
  [ "$alg" = ecdsa ] && kind=p256
  t=$(measure pkcs11 "$alg" env TCHSM_PKCS11_CONFIG="$work/pkcs11.toml" "$bin/examples/sign_rate" \
    "$bin/libpkcs11_provider.so" 8 "$seconds" "$kind")
  line=$(grep 'signatures in' "$work/pkcs11-$alg.out")
  echo "pkcs11: ${line#*: }"
  signed=$(echo "$line" | sed -n 's/.*threads, \([0-9]*\) signatures in.*/\1/p')
  rate[pkcs11,$alg]=$(echo "$line" | sed -n 's/.*(\([0-9]*\)\/min).*/\1/p')
  cpu_node[pkcs11,$alg]=$(per_sig "$t" "$signed")
  cpu_client[pkcs11,$alg]=$(echo "$line" | sed -n 's/.*CPU time \([0-9.]*\) ms.*/\1/p')

  rsa_alg=()
  [ "$alg" = rsa ] && rsa_alg=(--cluster-rsa-algorithm 8)
  signed_zone="$work/zone-$alg.signed"
  t=$(measure zone "$alg" env RUST_LOG=info "$bin/dnssec-sign" sign -n -o "$origin" -f "$signed_zone" "$work/zone.db" \
    --cluster "$dir/coordinator.toml" --cluster-ksk "${key[$alg]}" "${rsa_alg[@]}")
  rrsigs=$(awk '$4 == "RRSIG"' "$signed_zone" | wc -l)
  read -r wall user sys < <(sed -n 's/time: \([0-9.]*\) s wall, \([0-9.]*\) s user, \([0-9.]*\) s system/\1 \2 \3/p' \
    "$work/zone-$alg.out.time")
  rate[zone,$alg]=$(awk -v n="$rrsigs" -v w="$wall" 'BEGIN { printf "%.0f", 60 * n / w }')
  # dnssec-sign's own figure for its signing stage (without unsealing the coordinator identity, connecting and
  # reading the zone), for comparison
  stage=$(grep -o 'signing_seconds=[0-9.]*' "$work/zone-$alg.out.err" | tail -1 | cut -d= -f2)
  rate[stage,$alg]=$(awk -v n="$rrsigs" -v w="$stage" 'BEGIN { printf "%.0f", w ? 60 * n / w : 0 }')
  cpu_node[stage,$alg]=-
  cpu_client[stage,$alg]=-
  cpu_node[zone,$alg]=$(per_sig "$t" "$rrsigs")
  cpu_client[zone,$alg]=$(awk -v u="$user" -v s="$sys" -v n="$rrsigs" 'BEGIN { printf "%.2f", 1000 * (u + s) / n }')
  ldns-verify-zone "$signed_zone" > "$work/zone-$alg.ldns" 2>&1 || {
    echo "ldns-verify-zone rejects $signed_zone:" >&2
    tail -5 "$work/zone-$alg.ldns" >&2
    exit 1
  }
  kzonecheck -o "$origin" -d on "$signed_zone" > "$work/zone-$alg.knot" 2>&1 || {
    echo "kzonecheck rejects $signed_zone:" >&2
    tail -5 "$work/zone-$alg.knot" >&2
    exit 1
  }
  echo "zone: $rrsigs RRSIGs in $wall s wall = ${rate[zone,$alg]}/min (signing stage $stage s = ${rate[stage,$alg]}/min);" \
    "ldns-verify-zone and kzonecheck accept it"
done
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-7s %10s %8s %8s %14s %16s\n' algorithm path "per min" "x raw8" "x raw32" "node CPU ms" "client CPU ms"
for alg in $algorithms; do
  for what in raw8 raw32 pkcs11 zone stage; do
    awk -v a="$alg" -v w="$what" -v r="${rate[$what,$alg]}" -v r8="${rate[raw8,$alg]}" -v r32="${rate[raw32,$alg]}" \
      -v cn="${cpu_node[$what,$alg]}" -v cc="${cpu_client[$what,$alg]}" \
      'BEGIN { printf "%-8s %-7s %10d %7.2fx %7.2fx %14s %16s\n", a, w, r, r / r8, r / r32, cn, cc }'
  done
done
