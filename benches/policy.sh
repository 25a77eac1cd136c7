#!/usr/bin/env bash
# Cost of the nodes' signing policy (issue 16): for each cluster key algorithm, the zone signer and the bare
# cluster on five in-process nodes (examples/sign_zone.rs), once without a policy (the raw rate sends digests) and
# once with every node judging each RRSIG by a CSK policy (--policy: RRSIG data parsed, checked and hashed by each
# node). Figures to compare, per algorithm: "ms process CPU per signature" of the raw rate (CPU per signature with
# and without policy checks; the goal is < 5% more) and "RRSIGs/s" of the zone (zone-signing rate).
# Process CPU includes the nodes (they run in the same process). Run on an idle machine.
#
#   benches/policy.sh [SYNTHETIC_RECORDS]      (default 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
records=${1:-3000}
cargo build --release -q --example sign_zone
for algorithm in 8 13 15; do
  for policy in "" "--policy"; do
    echo "== algorithm $algorithm ${policy:-(no policy)}"
    target/release/examples/sign_zone --algorithm "$algorithm" --synthetic "$records" $policy \
      | grep -E 'signed|raw rate|judges'
  done
done
