#!/usr/bin/env bash
# Optional: the reference implementations (llama.cpp, LiteLLM) the benchmarks compare against, in their own
# virtualenv (.venv-bench) so the test environment stays small. llama-cpp-python builds
# llama.cpp from source (several minutes on 2 cores); re-running is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
# Built like conductor's own llama.cpp (native CPU flags, no AMX: some VMs advertise AMX but
# fault on it; see .cargo/config.toml), so the comparison is like for like. The marker file
# records that this build is the AMX-free one.
if [ ! -f .venv-bench/.llama-no-amx ] || ! .venv-bench/bin/python -c 'import llama_cpp' 2>/dev/null; then
  CFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" CXXFLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" \
    CMAKE_ARGS="-DGGML_NATIVE=ON" .venv-bench/bin/pip install --quiet --disable-pip-version-check \
    --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
  touch .venv-bench/.llama-no-amx
fi
# The LiteLLM proxy, for `conductor bench gateway --litellm .venv-bench/bin/litellm`.
if [ ! -x .venv-bench/bin/litellm ]; then
  .venv-bench/bin/pip install --quiet --disable-pip-version-check "litellm[proxy]==${LITELLM_VERSION:-1.108.7}"
fi
echo "bench environment ready: .venv-bench"
