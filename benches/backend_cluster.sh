#!/usr/bin/env bash
# The arithmetic backends side by side on real node processes (issue 19): five tcrypto-node processes built on the
# pure-Rust backend (`--no-default-features`), then five built with OpenSSL's libcrypto (the default), in the same
# run, each signing COUNT signatures per algorithm (RSA-2048 PSS from a ceremony key dealt from committed test safe
# primes, ECDSA P-256 and Ed25519 made by DKG), 3-of-5, through examples/cluster.rs --connect (every signature
# verified). Prints, per backend and algorithm, the example's rate line and the CPU the five node processes used per
# signature (utime + stime from /proc before and after), then the ratios. A third, mixed cluster runs the OpenSSL build
# with node1-3 configured `arithmetic = "pure-rust"` (chosen at run time) and node4-5 on OpenSSL: every signature's
# quorum then holds both backends or pure Rust only. Release build; run on a quiet machine.
# Usage: benches/backend_cluster.sh [count [in-flight [workdir]]]      (defaults 3000, 32, a fresh temp dir)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
count=${1:-3000}
in_flight=${2:-32}
work=${3:-$(mktemp -d /tmp/backend-cluster.XXXXXX)}
mkdir -p "$work"
tick=$(getconf CLK_TCK)

# The pure-Rust node binary is copied aside before the default build replaces it.
cargo build --release -q -p tcrypto-net --no-default-features --features dealer --bins --manifest-path "$here/Cargo.toml"
cp "$here/target/release/tcrypto-node" "$work/tcrypto-node-pure"
cargo build --release -q -p tcrypto-net --features dealer --bins --manifest-path "$here/Cargo.toml"
cp "$here/target/release/tcrypto-node" "$work/tcrypto-node-openssl"
cargo build --release -q --example cluster --manifest-path "$here/Cargo.toml"
ctl="$here/target/release/tcrypto-ctl"

node_ticks() { # sum of utime + stime of the processes in pids file $1
  local total=0
  for pid in $(cat "$1"); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
  done
  echo "$total"
}

declare -A cpu rate
for backend in pure openssl mixed; do
  dir="$work/$backend"
  bin="$work/tcrypto-node-$backend"
  arithmetic=""
  if [ "$backend" = mixed ]; then
    bin="$work/tcrypto-node-openssl"
    arithmetic="pure-rust pure-rust pure-rust openssl openssl"
  fi
  TCRYPTO_NODE="$bin" LOCAL_CLUSTER_ARITHMETIC="$arithmetic" \
    "$here/tcrypto-net/scripts/local-cluster.sh" "$dir" 5 7900 > /dev/null
  if [ "$backend" = mixed ]; then
    grep -h -o "(arithmetic: [a-z-]*)" "$dir"/node?.log | sort | uniq -c | sed 's/^/mixed cluster:/'
  fi
  trap 'kill $(cat "$work"/*/pids 2>/dev/null) 2>/dev/null || true' EXIT
  nodes=()
  for i in 1 2 3 4 5; do nodes+=(--node "$dir/node$i/node.pub"); done
  "$bin" ceremony --threshold 3 --primes "$here/tcrypto/tests/data/safe_primes_1024.txt" \
    "${nodes[@]}" --out "$dir/rsa" > /dev/null
  "$ctl" -c "$dir/coordinator.toml" import "$dir/rsa" > /dev/null
  rsa_key=$(cat "$dir/rsa/key-id")
  for algorithm in rsa ecdsa ed25519; do
    args=(--algorithms "$algorithm")
    [ "$algorithm" = rsa ] && args=(--key "$rsa_key")
    before=$(node_ticks "$dir/pids")
    line=$("$here/target/release/examples/cluster" --connect "$dir/coordinator.toml" "${args[@]}" \
      --count "$count" --in-flight "$in_flight" | grep 'signatures/min')
    after=$(node_ticks "$dir/pids")
    cpu[$backend,$algorithm]=$(awk -v t=$((after - before)) -v hz="$tick" -v n="$count" \
      'BEGIN { printf "%.3f", 1000 * t / hz / n }')
    rate[$backend,$algorithm]=$(echo "$line" | grep -o '[0-9]* signatures/min' | cut -d' ' -f1)
    echo "$backend $algorithm: $line"
    echo "$backend $algorithm: node processes' CPU ${cpu[$backend,$algorithm]} ms per signature"
  done
  kill $(cat "$dir/pids") 2> /dev/null || true
  sleep 1
done
echo
printf '%-8s %22s %22s %22s %10s %14s\n' algorithm "pure rate (CPU ms)" "openssl rate (CPU ms)" \
  "mixed 3+2 (CPU ms)" "rate x" "node CPU x"
for algorithm in rsa ecdsa ed25519; do
  p=${rate[pure,$algorithm]} o=${rate[openssl,$algorithm]} m=${rate[mixed,$algorithm]}
  pc=${cpu[pure,$algorithm]} oc=${cpu[openssl,$algorithm]} mc=${cpu[mixed,$algorithm]}
  awk -v a="$algorithm" -v p="$p" -v o="$o" -v m="$m" -v pc="$pc" -v oc="$oc" -v mc="$mc" \
    'BEGIN { printf "%-8s %13s (%6s) %13s (%6s) %13s (%6s) %9.2fx %13.2fx\n", a, p, pc, o, oc, m, mc, o / p, pc / oc }'
done
