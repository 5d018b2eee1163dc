#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), the gates (format, lints, unused dependencies),
# then every Rust test in the optimised profile. Integration tests start the real binary and
# drive it with the real openai client. The last line counts the tests that ran.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CONDUCTOR_MODELS="${CONDUCTOR_MODELS:-$PWD/models}"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --release --locked --workspace --all-targets -- -D warnings
echo "== unused dependencies (cargo machete)"
cargo machete

echo "== tests"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# --all-targets: unit, integration and binary tests (the crates have no doc tests, whose
# empty "0 passed" line would otherwise end the output).
cargo test --release --locked --workspace --all-targets "$@" 2>&1 | tee "$log"
awk '/^test result: / {
        for (i = 1; i <= NF; i++) {
            if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i
        }
        s++
     }
     END { printf "conductor test suite: %d tests passed, %d failed, %d ignored, in %d test binaries\n", p, f, g, s }' "$log"
