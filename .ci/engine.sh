#!/usr/bin/env bash
# CI helper: make llama.cpp's OpenAI-compatible server importable in .venv for the `engine` tests.
# PyPI ships llama-cpp-python only as an sdist (a ~5 min build on 2 cores), so the wheel is built once into a
# cache OUTSIDE the clone and installed from there on every later run (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
# Never -march=native: on Intel Xeons with AMX that build crashes in decode. Instruction sets are chosen from
# what this CPU reports (AMX always off), and the cached wheel is keyed by them.
flags=$(grep -m1 '^flags' /proc/cpuinfo || true)
has() { [[ " $flags " == *" $1 "* ]] && echo ON || echo OFF; }
AVX512=$(has avx512f)
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
-DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) -DGGML_F16C=$(has f16c) \
-DGGML_AVX512=$AVX512 -DGGML_AVX512_VNNI=$( [[ $AVX512 == ON ]] && has avx512_vnni || echo OFF) \
-DGGML_AVX512_BF16=$( [[ $AVX512 == ON ]] && has avx512_bf16 || echo OFF)"
export CMAKE_ARGS
key=$(echo "$CMAKE_ARGS" | tr -s ' \\\n' ' ' | sha1sum | cut -c1-12)
CACHE=${SPARKLS_CI_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/sparkls-ci/wheels}/$key

if "$PY" -c 'import llama_cpp.server' 2>/dev/null; then
    echo "engine.sh: llama_cpp already importable"
    exit 0
fi

mkdir -p "$CACHE"
if ! ls "$CACHE"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
    echo "engine.sh: building llama-cpp-python $VERSION wheel into $CACHE (once; takes minutes): $CMAKE_ARGS"
    start=$(date +%s)
    CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} \
        "$PY" -m pip wheel --no-cache-dir --no-deps -w "$CACHE" "llama-cpp-python==$VERSION"
    echo "engine.sh: wheel built in $(( $(date +%s) - start )) s"
fi

"$PY" -m pip install --find-links "$CACHE" "llama-cpp-python[server]==$VERSION"
"$PY" -c 'import llama_cpp.server; print("engine.sh: llama_cpp", __import__("llama_cpp").__version__)'
