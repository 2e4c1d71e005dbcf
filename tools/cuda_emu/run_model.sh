#!/usr/bin/env bash
# Runs tests/test_model_gpu on a machine without a GPU: the whole model (MusicGen LM fp32 and bf16, greedy
# generation, T5, EnCodec) on the CUDA op table whose kernels are the real kernels/cuda sources compiled as
# host C++ against the emulated runtime (include/emu.h, as run.sh does for the op tests), against the CPU
# table. The model library is the CPU build's libmusae_lib.a; musae_ops_cuda(), musae_step_ops_cuda() and the
# device count come from the emulation (objects before the archive, so its no-CUDA stubs are not linked).
#
# What this adds to run.sh: the ops composed as the model calls them (strided K/V cache writes, decode
# attention over a growing cache, bf16 weights through linear_bf16w's GEMV and bf16-GEMM paths, T5's biased
# attention, EnCodec's convolutions and LSTM), greedy generation through the CUDA step table (captured graph),
# every intermediate buffer under AddressSanitizer and UBSan.
#
# Usage: tools/cuda_emu/run_model.sh [CPU build dir, default build-dev-emu] [test_model_gpu args]
# The build dir is a configured CPU-only Ninja build (-DMUSAE_CUDA=OFF); musae_lib is built here if needed.
# Default test args: --audio-samples 6400 (0.2 s of EnCodec input keeps the emulated EnCodec to seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tools/cuda_emu"
bdir=$(cd "${1:-$root/build-dev-emu}" && pwd)
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--audio-samples 6400)
out="$bdir/cuda_emu_model"
mkdir -p "$out/gen"
cmake --build "$bdir" -j2 --target musae_lib >/dev/null
libs=$(grep -A6 "build tests/test_model_gpu:" "$bdir/build.ninja" | grep LINK_LIBRARIES | sed "s/.*LINK_LIBRARIES = //; s#libmusae_lib.a#$bdir/libmusae_lib.a#")
[ -n "$libs" ] || { echo "no test_model_gpu link line in $bdir/build.ninja (configure a CPU-only Ninja build first)"; exit 1; }
flags=(-std=c++20 -O1 -g "-fsanitize=address,undefined" -fno-sanitize-recover=undefined -fno-omit-frame-pointer
       -Wno-unknown-pragmas -I"$here/include" -I"$root" -I"$root/tests" -D_GNU_SOURCE)
objs=()
t0=$(date +%s)
for f in "$root"/kernels/cuda/*.cu; do
  case $(basename "$f") in sae_*|cuda_device.cu|philox_fill.cu) continue ;; esac
  n=$(basename "$f" .cu)
  o="$out/gen/$n.o"
  # rebuilt when the source, the emulation or this script is newer than the object
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$here/include/emu.h" -nt "$o" ] || [ "$here/transform.py" -nt "$o" ] ||
     [ "$0" -nt "$o" ] || [ -n "$(find "$root/kernels" -name '*.cuh' -newer "$o" -print -quit)" ]; then
    rm -f "$o"
    python3 "$here/transform.py" "$f" "$out/gen/$n.cpp"
    g++ "${flags[@]}" -c "$out/gen/$n.cpp" -o "$o"
  fi
  objs+=("$o")
done
g++ "${flags[@]}" -c "$here/emu_rt.cpp" -o "$out/emu_rt.o"
gcc -std=c11 -O1 -g -fsanitize=address,undefined -D_GNU_SOURCE -I"$root" -I"$root/tests" \
    -DMUSAE_FIXTURES="\"$root/tests/fixtures\"" -c "$root/tests/test_model_gpu.c" -o "$out/test_model_gpu.o"
# shellcheck disable=SC2086
g++ -fsanitize=address,undefined -o "$out/test_model_gpu_emu" "$out/test_model_gpu.o" "${objs[@]}" "$out/emu_rt.o" $libs -pthread
t1=$(date +%s)
echo "built the emulated model test in $((t1 - t0)) s"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=1
status=0
timeout 3600 "$out/test_model_gpu_emu" "${args[@]}" || status=$?
echo "ran test_model_gpu on the emulated CUDA table in $(( $(date +%s) - t1 )) s (exit $status)"
exit $status
