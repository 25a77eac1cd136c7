#!/usr/bin/env bash
# ECDSA P-256 3-of-5 over five tcrypto-node processes on loopback, in one run: signatures per minute, CPU per node
# per signature and bytes each node sends per signature, with all five nodes up (presignature path), with two of
# them killed (DKLs23: the k = 3 remaining nodes sign), and after the two came back (the presignature path resumes).
# Every phase is a fresh coordinator process (examples/cluster --connect), which verifies every signature with p256.
#
# Usage: benches/ecdsa_quorum.sh [COUNT [IN_FLIGHT [PORT]]]     (defaults 3000, 32, 7450)
# Needs ss (iproute2): bytes are read from the nodes' TCP sockets (bytes_sent) every 0.2 s while a phase runs.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-3000}
in_flight=${2:-32}
port=${3:-7450}
cargo build --release -q -p tcrypto-net --features dealer --bins
cargo build --release -q --example cluster
dir=$(mktemp -d)
poller=
cleanup() {
  [ -n "$poller" ] && kill "$poller" 2>/dev/null
  [ -f "$dir/pids" ] && kill $(cat "$dir/pids") 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
tcrypto-net/scripts/local-cluster.sh "$dir" 5 "$port" >/dev/null
mapfile -t pids < "$dir/pids"
hz=$(getconf CLK_TCK)

# CPU ticks (user + system) of node i's process; 0 when it is not running.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# One phase: run the example with the given arguments while ss samples the nodes' sockets; print the example's
# lines, then per node the CPU per signature and the bytes sent per signature.
phase() {
  local name=$1
  shift
  local before=() i
  for i in 0 1 2 3 4; do before[i]=$(ticks "${pids[i]}"); done
  (while :; do
    ss -tinH "sport >= :$port and sport <= :$((port + 4))" 2>/dev/null
    sleep 0.2
  done) > "$dir/ss.$name" &
  poller=$!
  target/release/examples/cluster --connect "$dir/coordinator.toml" --count "$count" --in-flight "$in_flight" \
    "$@" | tee "$dir/out.$name"
  kill "$poller"
  poller=
  echo "  per node ($name, $count signatures):"
  for i in 0 1 2 3 4; do
    local after cpu sent
    after=$(ticks "${pids[i]}")
    cpu=$(awk -v a="$after" -v b="${before[i]}" -v hz="$hz" -v n="$count" \
      'BEGIN { printf "%.2f", (a - b) * 1000 / hz / n }')
    # The largest bytes_sent seen for each socket of node i (local address 127.0.0.(i+2):port+i), summed.
    sent=$(awk -v me="127.0.0.$((i + 2)):$((port + i))" -v n="$count" '
      $1 ~ /^[A-Z]/ { key = ($4 == me) ? $4 " " $5 : ""; next }
      key != "" { for (f = 1; f <= NF; f++) if ($f ~ /^bytes_sent:/) { v = substr($f, 12) + 0; if (v > max[key]) max[key] = v } }
      END { for (k in max) s += max[k]; printf "%.1f", s / n / 1000 }' "$dir/ss.$name")
    if kill -0 "${pids[i]}" 2>/dev/null; then
      echo "    node$((i + 1)): ${cpu} ms CPU and ${sent} KB sent per signature"
    else
      echo "    node$((i + 1)): down"
    fi
  done
}

echo "== all 5 nodes up: a 3-of-5 P-256 key made by DKG (tcrypto-ctl create), then signatures (presignature path)"
key=$(TCRYPTO_COORDINATOR_PASSPHRASE=local-cluster-test target/release/tcrypto-ctl --config "$dir/coordinator.toml" \
  --tsv create --algorithm p256 --threshold 3)
phase up --key "$key"

echo "== node4 and node5 killed (kill -9): the same key, 3 nodes up (DKLs23)"
kill -9 "${pids[3]}" "${pids[4]}"
phase down --key "$key"

echo "== node4 and node5 restarted: the same key (presignature path again)"
for i in 4 5; do
  TCRYPTO_NODE_PASSPHRASE=local-cluster-test target/release/tcrypto-node serve --config "$dir/node$i.toml" \
    >> "$dir/node$i.log" 2>&1 &
  pids[i - 1]=$!
  echo "${pids[i - 1]}" >> "$dir/pids"
done
sleep 1
phase back --key "$key"
