#!/usr/bin/env bash
# Runs the CUDA op tests on a machine without a GPU: the real kernel sources of kernels/cuda/ are compiled as
# host C++ against a small emulation of the CUDA runtime and cuBLASLt (include/emu.h: a fiber per CUDA thread,
# real block/warp barriers, shuffles, per-block shared memory filled with NaN, the > 48 KB dynamic
# shared-memory opt-in checked, a column-major cuBLASLt), under AddressSanitizer and UBSan so an out-of-bounds
# or misaligned access in a kernel stops the run. Then the emulator's self-test (selftest.cu), tests/test_philox_gpu,
# tests/test_ops_gpu and tests/test_ops run against that table.
# tools/cuda_emu/README.md: every script, what passed, what the emulator cannot show.
#
# What it checks: index math, bounds, dispatch, masking semantics, barrier placement (a barrier some threads
# never reach is reported as a deadlock), the row-major -> column-major cuBLASLt mapping. What it cannot:
# timing, coalescing, bank conflicts, register limits, and it proves no absence of races (racecheck on a GPU).
#
# Usage: tools/cuda_emu/run.sh [CPU build dir, default build-cu-cpu] [test_ops_gpu args, default --quick]
# The build dir is a configured and built CPU-only Ninja build (-DMUSAE_CUDA=OFF).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tools/cuda_emu"
bdir=$(cd "${1:-$root/build-cu-cpu}" && pwd)
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--quick)
out="$bdir/cuda_emu"
mkdir -p "$out/gen"
libs=$(grep -A6 "build tests/test_ops:" "$bdir/build.ninja" | grep LINK_LIBRARIES | sed "s/.*LINK_LIBRARIES = //; s#libmusae_lib.a#$bdir/libmusae_lib.a#")
[ -n "$libs" ] || { echo "no test_ops link line in $bdir/build.ninja (configure a CPU-only Ninja build first)"; exit 1; }
flags=(-std=c++20 -O1 -g "-fsanitize=address,undefined" -fno-sanitize-recover=undefined -fno-omit-frame-pointer
       -Wno-unknown-pragmas -I"$here/include" -I"$root" -I"$root/tests" -D_GNU_SOURCE)
objs=()
srcs=()
for f in "$root"/kernels/cuda/*.cu; do
  case $(basename "$f") in sae_*|cuda_device.cu|philox_fill.cu) continue ;; esac
  srcs+=("$f")
done
srcs+=("$root/tests/test_ops_gpu.cu")
for f in "${srcs[@]}"; do
  n=$(basename "$f" .cu)
  python3 "$here/transform.py" "$f" "$out/gen/$n.cpp"
  g++ "${flags[@]}" -c "$out/gen/$n.cpp" -o "$out/gen/$n.o"
  objs+=("$out/gen/$n.o")
done
g++ "${flags[@]}" -c "$here/emu_rt.cpp" -o "$out/emu_rt.o"
gcc -std=c11 -O1 -g -fsanitize=address,undefined -DMUSAE_CUDA=1 -D_GNU_SOURCE -I"$here/include_c" -I"$root" -I"$root/tests" \
    -c "$root/tests/test_ops.c" -o "$out/test_ops_c.o"
kernels=()
for o in "${objs[@]}"; do [ "$(basename "$o")" = test_ops_gpu.o ] || kernels+=("$o"); done
# the emulator's own check first (selftest.cu: shuffles, ballots, __syncthreads_count, atomics, CUB, capture),
# and the GPU Philox fill (tests/test_philox_gpu) beside the op table
for f in "$here/selftest.cu" "$root/kernels/cuda/philox_fill.cu" "$root/tests/test_philox_gpu.cu"; do
  n=$(basename "$f" .cu)
  python3 "$here/transform.py" "$f" "$out/gen/$n.cpp"
  g++ "${flags[@]}" -c "$out/gen/$n.cpp" -o "$out/gen/$n.o"
done
# shellcheck disable=SC2086
g++ -fsanitize=address,undefined -o "$out/selftest_emu" "$out/gen/selftest.o" "$out/emu_rt.o" $libs -pthread
# shellcheck disable=SC2086
g++ -fsanitize=address,undefined -o "$out/test_philox_gpu_emu" "$out/gen/test_philox_gpu.o" "$out/gen/philox_fill.o" \
    "$out/emu_rt.o" $libs -pthread
# shellcheck disable=SC2086
g++ -fsanitize=address,undefined -o "$out/test_ops_gpu_emu" "${objs[@]}" "$out/emu_rt.o" $libs -pthread
# shellcheck disable=SC2086
g++ -fsanitize=address,undefined -o "$out/test_ops_emu" "$out/test_ops_c.o" "${kernels[@]}" "$out/emu_rt.o" $libs -pthread
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=1
status=0
timeout 600 "$out/selftest_emu" || status=1
timeout 600 "$out/test_philox_gpu_emu" || status=1
timeout 3600 "$out/test_ops_gpu_emu" "${args[@]}" || status=1
timeout 3600 "$out/test_ops_emu" || status=1
exit $status
