#!/usr/bin/env bash
# Reshare 3-of-5 -> 3-of-5 (a refresh: new shares for the same five nodes, same public key) on five tcrypto-node
# processes on loopback (issue 14's figure): RSA-2048 and RSA-4096 (ceremony keys dealt from the committed test safe
# primes), ECDSA P-256 and Ed25519 (DKG). Each refresh is one `tcrypto-ctl refresh` process: the whole two-phase
# commit (five dealers, new shares stored pending, a test signature from the new sharing, commit, old shares
# retired). Prints per algorithm the wall time of each refresh, the CPU each node process used per refresh (utime +
# stime from /proc, before and after) and tcrypto-ctl's own CPU; after the refreshes, openssl verifies a signature
# by the last sharing against the public key exported before the first. Release build (PROFILE=dev for a quick
# check of the script); run on a quiet machine.
# Usage: benches/reshare_cluster.sh [refreshes [port [workdir]]]      (defaults 5, 7950, a fresh temp dir)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
refreshes=${1:-5}
port=${2:-7950}
work=${3:-$(mktemp -d /tmp/reshare-cluster.XXXXXX)}
mkdir -p "$work"
hz=$(getconf CLK_TCK)

profile=${PROFILE:-release}
out_dir=$profile
[ "$profile" = dev ] && out_dir=debug
cargo build --profile "$profile" -q -p tcrypto-net --features dealer --bins --manifest-path "$here/Cargo.toml"
node_bin="$here/target/$out_dir/tcrypto-node"
ctl="$here/target/$out_dir/tcrypto-ctl"
dir="$work/cluster"
TCRYPTO_NODE="$node_bin" "$here/tcrypto-net/scripts/local-cluster.sh" "$dir" 5 "$port" > /dev/null
trap 'kill $(cat "$dir/pids" 2>/dev/null) 2>/dev/null || true' EXIT
mapfile -t pids < "$dir/pids"
conf="$dir/coordinator.toml"
nodes=()
for i in 1 2 3 4 5; do nodes+=(--node "$dir/node$i/node.pub"); done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Keys: name -> key id; name -> tcrypto-ctl sign mechanism.
declare -A key mech
for bits in 2048 4096; do
  "$node_bin" ceremony --threshold 3 --bits "$bits" --primes "$here/tcrypto/tests/data/safe_primes_$((bits / 2)).txt" \
    "${nodes[@]}" --out "$dir/rsa$bits" > /dev/null
  "$ctl" -c "$conf" import "$dir/rsa$bits" > /dev/null
  key[rsa$bits]=$(cat "$dir/rsa$bits/key-id")
  mech[rsa$bits]=rsa-pkcs1-sha256
done
for algorithm in p256 ed25519; do
  key[$algorithm]=$("$ctl" -c "$conf" --tsv create --algorithm "$algorithm" --threshold 3 | cut -f1)
done
mech[p256]=ecdsa-sha256
mech[ed25519]=ed25519

head -c 4096 /dev/urandom > "$work/message"
printf '%-8s %8s %9s %28s %12s\n' key "refresh" "wall s" "node CPU ms (each of 5)" "ctl CPU ms"
for name in rsa2048 rsa4096 p256 ed25519; do
  id=${key[$name]}
  "$ctl" -c "$conf" export "$id" > "$work/$name-before.pem"
  for r in $(seq 1 "$refreshes"); do
    before=()
    for i in 0 1 2 3 4; do before[i]=$(ticks "${pids[i]}"); done
    /usr/bin/time -f '%e %U %S' -o "$work/time" "$ctl" -c "$conf" refresh "$id" > "$work/refresh.out"
    node_cpu=()
    for i in 0 1 2 3 4; do
      node_cpu+=("$(awk -v t=$(($(ticks "${pids[i]}") - before[i])) -v hz="$hz" 'BEGIN { printf "%d", 1000 * t / hz }')")
    done
    read -r wall user sys < "$work/time"
    printf '%-8s %8d %9.2f %28s %12.0f\n' "$name" "$r" "$wall" "${node_cpu[*]}" \
      "$(awk -v u="$user" -v s="$sys" 'BEGIN { print 1000 * (u + s) }')"
  done
  "$ctl" -c "$conf" sign "$id" --mechanism "${mech[$name]}" --in "$work/message" --out "$work/$name.sig" > /dev/null
  if [ "$name" = ed25519 ]; then
    openssl pkeyutl -verify -pubin -inkey "$work/$name-before.pem" -rawin -in "$work/message" \
      -sigfile "$work/$name.sig" > /dev/null
  else
    openssl dgst -sha256 -verify "$work/$name-before.pem" -signature "$work/$name.sig" "$work/message" > /dev/null
  fi
  echo "$name: signature by the refreshed sharing verified by openssl against the key exported before"
done
