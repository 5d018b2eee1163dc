#!/usr/bin/env bash
# Optional: the reference implementations (llama.cpp, LiteLLM) the benchmarks compare against, in their own
# virtualenv (.venv-bench) so the test environment stays small. llama-cpp-python builds
# llama.cpp from source (several minutes on 2 cores); re-running is a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
if ! .venv-bench/bin/python -c 'import llama_cpp' 2>/dev/null; then
  CMAKE_ARGS="-DGGML_NATIVE=ON" .venv-bench/bin/pip install --quiet --disable-pip-version-check "llama-cpp-python==${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
fi
# The LiteLLM proxy, for `conductor bench gateway --litellm .venv-bench/bin/litellm`.
if [ ! -x .venv-bench/bin/litellm ]; then
  .venv-bench/bin/pip install --quiet --disable-pip-version-check "litellm[proxy]==${LITELLM_VERSION:-1.108.7}"
fi
echo "bench environment ready: .venv-bench"
