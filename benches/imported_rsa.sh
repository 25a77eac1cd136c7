#!/usr/bin/env bash
# Signature rate of an IMPORTED ordinary RSA-2048 key (`openssl genrsa`, shares without proofs,
# tcrypto::rsa::ordinary) next to a DEALT Shoup RSA-2048 key (committed test safe primes), both 3-of-5 on
# the same five tcrypto-node processes (127.0.0.2-6, local-cluster.sh), in the same run, through
# examples/cluster.rs (every signature verified by the `rsa` crate). Release build (PROFILE=dev for a quick
# check of the script itself, not for figures).
# Usage: benches/imported_rsa.sh [count [in-flight [workdir]]]      (defaults 1000, 32, a fresh temp dir)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
count=${1:-1000}
in_flight=${2:-32}
work=${3:-$(mktemp -d /tmp/imported-rsa.XXXXXX)}
command -v openssl >/dev/null || { echo "missing openssl" >&2; exit 1; }

profile=${PROFILE:-release}
out_dir=$profile
[ "$profile" = dev ] && out_dir=debug
cargo build --profile "$profile" -q -p tcrypto-net --features dealer --bins --manifest-path "$here/Cargo.toml"
cargo build --profile "$profile" -q --example cluster --manifest-path "$here/Cargo.toml"
export TCRYPTO_NODE="$here/target/$out_dir/tcrypto-node"
ctl="$here/target/$out_dir/tcrypto-ctl"
"$here/tcrypto-net/scripts/local-cluster.sh" "$work/cluster" 5 7800 > /dev/null
trap 'kill $(cat "$work/cluster/pids") 2>/dev/null || true' EXIT
nodes=()
for i in 1 2 3 4 5; do nodes+=(--node "$work/cluster/node$i/node.pub"); done

# The dealt Shoup key, from committed safe primes (test key only).
"$TCRYPTO_NODE" ceremony --threshold 3 --primes "$here/tcrypto/tests/data/safe_primes_1024.txt" "${nodes[@]}" \
  --out "$work/shoup" > /dev/null
# The imported ordinary key.
openssl genrsa -out "$work/imported.pem" 2048 2> /dev/null
"$TCRYPTO_NODE" ceremony --threshold 3 --key-file "$work/imported.pem" "${nodes[@]}" --out "$work/imported" \
  > /dev/null
for key in shoup imported; do
  "$ctl" -c "$work/cluster/coordinator.toml" import "$work/$key" > /dev/null
done
shoup=$(cat "$work/shoup/key-id")
imported=$(cat "$work/imported/key-id")
echo "dealt Shoup RSA-2048:        $shoup"
echo "imported ordinary RSA-2048:  $imported"
"$here/target/$out_dir/examples/cluster" --connect "$work/cluster/coordinator.toml" \
  --key "$shoup" --key "$imported" --count "$count" --in-flight "$in_flight"
