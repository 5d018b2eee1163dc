#!/usr/bin/env bash
# The whole test suite: set-up (idempotent), then every Rust test in the optimised profile.
# Integration tests start the real binary and drive it with the real openai client.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CONDUCTOR_MODELS="${CONDUCTOR_MODELS:-$PWD/models}"
cargo test --release --locked --workspace "$@"
