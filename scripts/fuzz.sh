#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz and runs each for a bounded time on a copy
# of its seed corpus (tests/corpus/...). Exits non-zero on any crash, leak, UB report or timeout; the input
# that triggered it is left in build-fuzz/fuzz/<target>/artifacts/.
# Usage: scripts/fuzz.sh [SECONDS]   (default: MUSAE_FUZZ_SECONDS or 60 per target)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${MUSAE_FUZZ_SECONDS:-60}}
dir=${MUSAE_FUZZ_BUILD:-build-fuzz}
# clang is in scripts/install-deps.sh: without it this configuration fails rather than passing untested
command -v clang >/dev/null || { echo "fuzz.sh: error: clang not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
mkdir -p "$dir"
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
      -DMUSAE_CUDA=OFF -DMUSAE_FUZZ=ON -DMUSAE_FUZZ_SECONDS="$secs" >"$dir/configure.log" 2>&1 \
  || { cat "$dir/configure.log"; exit 1; }
grep -E "^-- musae: fuzzing" "$dir/configure.log" || true
cmake --build "$dir" --target fuzz_safetensors fuzz_config fuzz_torch_zip
ctest --test-dir "$dir" -L fuzz --output-on-failure
