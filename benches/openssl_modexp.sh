#!/usr/bin/env bash
# Side-by-side baseline for `cargo bench --bench rsa -- share`: OpenSSL's constant-time modexp with the exponent size
# of one 2048-bit threshold-RSA share. Needs gcc and libssl-dev (apt-get install -y gcc libssl-dev).
set -euo pipefail
cd "$(dirname "$0")"
out="${TMPDIR:-/tmp}/openssl_modexp"
gcc -O2 -o "$out" openssl_modexp.c -lcrypto
for bits in 2048 3072 4096; do "$out" "$bits" $((bits + 8)); done
