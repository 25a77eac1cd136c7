#!/bin/bash
# Runs Google's pkcs11test (https://github.com/google/pkcs11test) against this module (embedded 3-of-5 backend,
# scratch store) and against SoftHSM2 (scratch token), with the same flags, and prints pass/fail/skip side by side.
#
#   pkcs11-provider/tests/pkcs11test.sh [PKCS11TEST_BINARY] [MODULE.so]
#
# PKCS11TEST_BINARY defaults to $PKCS11TEST or `pkcs11test` on PATH: build it with `make` in a checkout of
# google/pkcs11test (a minute; g++ only). MODULE defaults to target/debug/libpkcs11_provider.so (build it with
# `cargo build -p pkcs11-provider`). Extra pkcs11test/gtest flags go in $PKCS11TEST_FLAGS
# (e.g. PKCS11TEST_FLAGS=--gtest_filter='-Ciphers/*:Digests/*'). The work directory (default a fresh mktemp -d,
# or $PKCS11TEST_WORK) keeps both logs: ours.log, softhsm.log.
#
# Counting: gtest reports a test skipped by pkcs11test (TestSkipped: "Following tests were skipped because: ...")
# as passed, so "skip" is the set of tests listed there, "pass" the tests gtest reports OK minus those,
# "fail" the tests gtest reports FAILED (a test whose fixture failed before the test skipped counts as failed).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-${PKCS11TEST:-$(command -v pkcs11test || true)}}
module=${2:-$root/target/debug/libpkcs11_provider.so}
softhsm=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[[ -x "$bin" ]] || { echo "pkcs11test binary not found (argument 1 or \$PKCS11TEST)" >&2; exit 2; }
[[ -f "$module" ]] || { echo "module $module not found: cargo build -p pkcs11-provider" >&2; exit 2; }
[[ -f "$softhsm" ]] || { echo "SoftHSM2 module $softhsm not found (Debian: softhsm2)" >&2; exit 2; }
module=$(realpath "$module") bin=$(realpath "$bin")
work=${PKCS11TEST_WORK:-$(mktemp -d /tmp/pkcs11test.XXXXXX)}
rm -rf "$work/ours" "$work/softhsm"
mkdir -p "$work/ours" "$work/softhsm/tokens"
user_pin=123456 so_pin=12345678
# Same flags for both: user and SO PIN, the slot holding the freshly made scratch token, and -I (the token
# initialisation tests, which wipe the token: it is a scratch one) with -U, the user PIN they set again afterwards.
flags=(-u "$user_pin" -o "$so_pin" -I -U "$user_pin")
# shellcheck disable=SC2206
extra=(${PKCS11TEST_FLAGS:-})

echo "directories.tokendir = $work/softhsm/tokens" >"$work/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$work/softhsm/softhsm2.conf
softhsm2-util --init-token --free --label test --pin $user_pin --so-pin $so_pin >/dev/null
sh_slot=$(softhsm2-util --show-slots | awk '/^Slot [0-9]+/{s=$2} /Label: *test /{print s; exit}')

cat >"$work/ours/pkcs11.toml" <<C
store = "objects.sqlite"
backend = "embedded"
min_pin_len = 4
[[tokens]]
label = "test"
[embedded]
dir = "nodes"
threshold = 3
parties = 5
rsa_test_primes = "$root/pkcs11-provider/tests/fixtures/rsa-test-primes.txt"
C
export TCHSM_PKCS11_CONFIG=$work/ours/pkcs11.toml
pkcs11-tool --module "$module" --slot 0 --init-token --label test --so-pin $so_pin >/dev/null
pkcs11-tool --module "$module" --slot 0 --login --login-type so --so-pin $so_pin --init-pin --pin $user_pin >/dev/null

run() { # name dir lib slot
  (cd "$work/$1" && "$bin" -m "$(basename "$3")" -l "$(dirname "$3")" -s "$4" "${flags[@]}" "${extra[@]}" \
    >"$work/$1.log" 2>&1) || true
}
run ours ours "$module" 0
run softhsm softhsm "$softhsm" "$sh_slot"

count() { # log -> "pass fail skip total": a skipped test that failed first (in its fixture) counts as failed
  local log=$1
  grep -o '^\[       OK \] [^ ]*' "$log" | awk '{print $4}' | sort -u >"$log.ok"
  grep '^\[  FAILED  \] .* ([0-9]* ms)$' "$log" | awk '{print $4}' | sed 's/,$//' | sort -u >"$log.failed"
  awk '/^Following tests were skipped because/{s=1; next} s && /^  [A-Za-z]/{print $1} /^\[/{s=0}' "$log" |
    sort -u | comm -23 - "$log.failed" >"$log.skipped"
  local ok failed skipped
  ok=$(wc -l <"$log.ok") failed=$(wc -l <"$log.failed") skipped=$(wc -l <"$log.skipped")
  echo "$((ok - skipped)) $failed $skipped $((ok + failed))"
}
version=$(git -C "$(dirname "$bin")" rev-parse --short HEAD 2>/dev/null || echo unknown)
read -r op of os ot < <(count "$work/ours.log")
read -r sp sf ss st < <(count "$work/softhsm.log")
printf 'pkcs11test %s, flags: %s %s\n' "$version" "${flags[*]}" "${extra[*]}"
printf '%-10s %6s %6s %6s %6s\n' side pass fail skip total
printf '%-10s %6s %6s %6s %6s\n' ours "$op" "$of" "$os" "$ot" softhsm2 "$sp" "$sf" "$ss" "$st"
echo "logs: $work/ours.log $work/softhsm.log"
