#!/usr/bin/env bash
# Starts N tcrypto-node daemons on loopback (node i on 127.0.0.(i+1), port PORT+i-1; one process each, mutual TLS),
# waits until every one listens, and writes a coordinator configuration for them (sealed coordinator identity, its
# passphrase file, a data_dir for pending DKG deliveries).
#
# Usage: local-cluster.sh DIR [N [PORT]]     (N defaults to 5, PORT to 7400)
# Stop with: kill $(cat DIR/pids)
# Environment: TCRYPTO_NODE (the binary; default target/release/tcrypto-node), TCRYPTO_NODE_PASSPHRASE (the nodes'
# store passphrase; default local-cluster-test), TCRYPTO_COORDINATOR_PASSPHRASE (default local-cluster-test),
# LOCAL_CLUSTER_WAIT (seconds to wait for each node; default 30), LOCAL_CLUSTER_ARITHMETIC (the nodes' arithmetic
# backends in order, space-separated, e.g. "pure-rust pure-rust pure-rust openssl openssl": written as `arithmetic` in
# node i's configuration; nodes past the list get the binary's default).
# Exits non-zero, naming the node and showing the end of its log, when a node does not come up.
set -euo pipefail
usage="usage: local-cluster.sh DIR [N [PORT]]"
dir=${1:?$usage}
n=${2:-5}
port=${3:-7400}
case "$n$port" in *[!0-9]*) echo "$usage" >&2; exit 2 ;; esac
if [ "$n" -lt 1 ] || [ "$n" -gt 250 ] || [ "$port" -lt 1 ] || [ $((port + n - 1)) -gt 65535 ]; then
  echo "local-cluster.sh: N must be 1..250 and PORT..PORT+N-1 valid ports" >&2
  exit 2
fi
bin=${TCRYPTO_NODE:-target/release/tcrypto-node}
wait_s=${LOCAL_CLUSTER_WAIT:-30}
export TCRYPTO_NODE_PASSPHRASE=${TCRYPTO_NODE_PASSPHRASE:-local-cluster-test}
export TCRYPTO_COORDINATOR_PASSPHRASE=${TCRYPTO_COORDINATOR_PASSPHRASE:-local-cluster-test}
if [ ! -x "$bin" ]; then
  echo "local-cluster.sh: $bin is not an executable (build it: cargo build --release -p tcrypto-net)" >&2
  exit 1
fi
if [ -e "$dir/coordinator.toml" ]; then
  echo "local-cluster.sh: $dir already holds a cluster ($dir/coordinator.toml); choose an empty directory" >&2
  exit 1
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
umask 077
printf '%s\n' "$TCRYPTO_COORDINATOR_PASSPHRASE" > "$dir/coordinator.pass"
fp=$("$bin" coordinator-init --out "$dir/coordinator.identity" --passphrase-file "$dir/coordinator.pass" \
  | sed -n 's/^spki_sha256 = "\(.*\)"/\1/p')
cat > "$dir/coordinator.toml" <<TOML
identity = "coordinator.identity"
passphrase_file = "coordinator.pass"
data_dir = "coordinator-state"
TOML
: > "$dir/pids"
read -r -a arithmetic <<< "${LOCAL_CLUSTER_ARITHMETIC:-}"
for i in $(seq 1 "$n"); do
  cat > "$dir/node$i.toml" <<TOML
name = "node$i"
listen = "127.0.0.$((i + 1)):$((port + i - 1))"
data_dir = "$dir/node$i"
${arithmetic[$((i - 1))]:+arithmetic = \"${arithmetic[$((i - 1))]}\"}

[[coordinators]]
name = "local"
spki_sha256 = "$fp"
TOML
  "$bin" init --config "$dir/node$i.toml" | sed -n '/^\[\[nodes\]\]/,$p' >> "$dir/coordinator.toml"
done
# Every node pins the others (relayed DKG and presigning messages are signed and sealed node to node).
for i in $(seq 1 "$n"); do
  for j in $(seq 1 "$n"); do
    [ "$i" = "$j" ] && continue
    printf '\n[[peers]]\nname = "node%s"\npublic = "%s"\n' "$j" "$(cat "$dir/node$j/node.pub")" >> "$dir/node$i.toml"
  done
  RUST_LOG=${RUST_LOG:-warn} "$bin" serve --config "$dir/node$i.toml" > "$dir/node$i.log" 2>&1 &
  echo $! >> "$dir/pids"
done

# Each daemon prints "listening on" once its socket is bound; a daemon that exits or stays silent fails the start.
failed=0
i=0
while read -r pid; do
  i=$((i + 1))
  deadline=$((SECONDS + wait_s))
  until grep -q "listening on" "$dir/node$i.log" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "local-cluster.sh: node$i (pid $pid, 127.0.0.$((i + 1)):$((port + i - 1))) exited; end of $dir/node$i.log:" >&2
      tail -n 20 "$dir/node$i.log" >&2
      failed=1
      break
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "local-cluster.sh: node$i (pid $pid) not listening on 127.0.0.$((i + 1)):$((port + i - 1)) after ${wait_s}s; end of $dir/node$i.log:" >&2
      tail -n 20 "$dir/node$i.log" >&2
      failed=1
      break
    fi
    sleep 0.1
  done
done < "$dir/pids"
if [ "$failed" != 0 ]; then
  kill $(cat "$dir/pids") 2>/dev/null || true
  echo "local-cluster.sh: cluster not started; every node of $dir stopped" >&2
  exit 1
fi
echo "$n nodes listening; coordinator configuration: $dir/coordinator.toml"
