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
# shellcheck source=tools/cuda_emu/common.sh
. "$(dirname "$0")/common.sh"
emu_init "${1:-$(dirname "$0")/../../build-cu-cpu}" cuda_emu test_ops
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--quick)
kernels=()
while read -r f; do kernels+=("$(emu_compile "$f")"); done < <(emu_op_kernels)
for part in test_ops test_ops_cpu_same_bits test_ops_cpu_bits; do # the op-test driver and the parts it runs
    gcc -std=c11 -O1 -g -fsanitize=address,undefined -DMUSAE_CUDA=1 -D_GNU_SOURCE -I"$here/include_c" -I"$root" \
        -I"$root/tests" -c "$root/tests/$part.c" -o "$out/${part}_c.o"
done
# the emulator's own check first (selftest.cu: shuffles, ballots, __syncthreads_count, atomics, CUB, capture),
# and the GPU Philox fill (tests/test_philox_gpu) beside the op table
emu_link "$out/selftest_emu" "$(emu_compile "$here/selftest.cu")"
emu_link "$out/test_philox_gpu_emu" "$(emu_compile "$root/tests/test_philox_gpu.cu")" \
         "$(emu_compile "$root/kernels/cuda/philox_fill.cu")"
emu_link "$out/test_ops_gpu_emu" "$(emu_compile "$root/tests/test_ops_gpu.cu")" \
         "$(emu_compile "$root/tests/test_ops_gpu_perf.cu")" "${kernels[@]}"
emu_link "$out/test_ops_emu" "$out/test_ops_c.o" "$out/test_ops_cpu_same_bits_c.o" "$out/test_ops_cpu_bits_c.o" \
         "${kernels[@]}"
emu_env
status=0
timeout 600 "$out/selftest_emu" || status=1
timeout 600 "$out/test_philox_gpu_emu" || status=1
timeout 3600 "$out/test_ops_gpu_emu" "${args[@]}" || status=1
timeout 3600 "$out/test_ops_emu" || status=1
exit $status
