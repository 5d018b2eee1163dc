#!/usr/bin/env bash
# Set up (idempotent), then serve the embedded model library behind the router.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec target/release/conductor serve "$@"
