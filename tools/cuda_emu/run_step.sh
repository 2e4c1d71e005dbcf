#!/usr/bin/env bash
# Runs tests/test_step_gpu on a machine without a GPU: the CUDA step table (kernels/cuda/step_*.cu) and the
# whole graph generation loop (mg_generate: warm-up step, stream capture of step 1, replay of every later step)
# with the real kernels/cuda sources compiled as host C++ against the emulated runtime (include/emu.h: capture
# records launches, copies and cuBLASLt calls, a graph launch replays them), against the CPU step table.
# The model library is the CPU build's libmusae_lib.a; musae_ops_cuda(), musae_step_ops_cuda() and the device
# count come from the emulated objects, linked before the archive so that its CPU-only versions
# (kernels/*_cuda_none.c) are not pulled in.
#
# Usage: tools/cuda_emu/run_step.sh [CPU build dir, default build-step-emu] [test_step_gpu args, default --quick]
# The build dir is a configured CPU-only Ninja build (-DMUSAE_CUDA=OFF); musae_lib is built here if needed.
set -euo pipefail
# shellcheck source=tools/cuda_emu/common.sh
. "$(dirname "$0")/common.sh"
emu_init "${1:-$(dirname "$0")/../../build-step-emu}" cuda_emu_step test_step
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--quick)
objs=()
while read -r f; do objs+=("$(emu_compile "$f")"); done < <(emu_op_kernels)
emu_link "$out/test_step_gpu_emu" "$(emu_compile "$root/tests/test_step_gpu.cu")" "${objs[@]}"
emu_env
timeout 3600 "$out/test_step_gpu_emu" "${args[@]}"
