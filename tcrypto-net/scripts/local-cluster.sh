#!/usr/bin/env bash
# Starts N tcrypto-node daemons on 127.0.0.2.. (one process each, mutual TLS) and writes a coordinator
# configuration for them. Usage: local-cluster.sh DIR [N] ; stop with: kill $(cat DIR/pids)
set -euo pipefail
dir=${1:?usage: local-cluster.sh DIR [N]}
n=${2:-5}
bin=${TCRYPTO_NODE:-target/release/tcrypto-node}
export TCRYPTO_NODE_PASSPHRASE=${TCRYPTO_NODE_PASSPHRASE:-local-cluster-test}
mkdir -p "$dir"
fp=$("$bin" coordinator-init --out "$dir/coordinator.identity" | sed -n 's/^spki_sha256 = "\(.*\)"/\1/p')
printf 'identity = "%s"\n' "$dir/coordinator.identity" > "$dir/coordinator.toml"
: > "$dir/pids"
for i in $(seq 1 "$n"); do
  cat > "$dir/node$i.toml" <<TOML
name = "node$i"
listen = "127.0.0.$((i + 1)):7400"
data_dir = "$dir/node$i"

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
  RUST_LOG=warn "$bin" serve --config "$dir/node$i.toml" > "$dir/node$i.log" 2>&1 &
  echo $! >> "$dir/pids"
done
sleep 2
echo "coordinator configuration: $dir/coordinator.toml"
