#!/usr/bin/env bash
# Runs the GPU SAE tests on a machine without a GPU: tests/test_sae_gpu (the kernels of kernels/cuda/sae_*.cu
# against the CPU references, every shape) and tests/test_sae_gpu_train --quick (the trainer sae/sae_gpu.cu:
# load/store round trips, lockstep steps against the CPU trainer in f32 and bf16, per-row top-k and batch-top-k,
# free runs), with the real .cu sources compiled as host C++ against the emulated runtime (include/emu.h:
# atomics, warp collectives, cublasGemmEx; include/cub/cub.cuh: CUB's radix sort and scans) under
# AddressSanitizer and UBSan. Test (e) of test_sae_gpu_train (data parallel over NCCL) is not built: NCCL is not emulated
# (MUSAE_NCCL undefined, so the test says "built without NCCL, not checked").
# The model library is the CPU build's libmusae_lib.a; the device count comes from the emulation.
#
# Usage: tools/cuda_emu/run_sae.sh [CPU build dir, default build-semu] [ops|train|all, default all]
# The tests' arguments come from SAE_OPS_ARGS (default none: every shape; --small: the small ones) and
# SAE_TRAIN_ARGS (default --quick: without it the planted-store tests need musae synth_acts and 3M tokens).
# EMU_SMS (default 132) sets the SM count the kernels size their grids by; EMU_THREADS=1 runs every CUDA
# thread as an OS thread instead of a fiber (include/emu.h). EMU_FMA=1 compiles the kernels and the trainer
# with -O2 -mfma -ffp-contract=fast, a stand-in for nvcc's default fusing of a*b+c (objects in cuda_emu_sae_fma):
# an "exact" row that holds only because nothing is fused fails there.
# The build dir is a configured CPU-only Ninja build (-DMUSAE_CUDA=OFF); musae_lib is built here if needed.
set -euo pipefail
# shellcheck source=tools/cuda_emu/common.sh
. "$(dirname "$0")/common.sh"
which=${2:-all}
read -r -a ops_args <<<"${SAE_OPS_ARGS-}"
read -r -a train_args <<<"${SAE_TRAIN_ARGS---quick}"
fma=${EMU_FMA:-0}
name=cuda_emu_sae
[ "$fma" = 1 ] && name=cuda_emu_sae_fma
t0=$(date +%s)
emu_init "${1:-$(dirname "$0")/../../build-semu}" "$name" test_sae_feed
kflags=()
[ "$fma" = 1 ] && kflags=(-O2 -mfma -ffp-contract=fast)
kobjs=()
for f in "$root"/kernels/cuda/sae_*.cu; do kobjs+=("$(emu_compile "$f" "${kflags[@]}")"); done
emu_env
status=0
if [ "$which" = all ] || [ "$which" = ops ]; then
  emu_link "$out/test_sae_gpu_emu" "$(emu_compile "$root/tests/test_sae_gpu.cu")" \
           "$(emu_compile "$root/tests/test_sae_gpu_step.cu")" "${kobjs[@]}"
  t1=$(date +%s)
  timeout 3600 "$out/test_sae_gpu_emu" "${ops_args[@]}" || status=$?
  echo "ran test_sae_gpu ${ops_args[*]} on the emulated CUDA runtime in $(( $(date +%s) - t1 )) s (exit $status)"
fi
if [ "$which" = all ] || [ "$which" = train ]; then
  emu_link "$out/test_sae_gpu_train_emu" "$(emu_compile "$root/tests/test_sae_gpu_train.cu")" \
           "$(emu_compile "$root/sae/sae_gpu.cu" "${kflags[@]}")" "${kobjs[@]}"
  t1=$(date +%s)
  s2=0
  timeout 3600 "$out/test_sae_gpu_train_emu" "${train_args[@]}" || s2=$?
  echo "ran test_sae_gpu_train ${train_args[*]} on the emulated CUDA runtime in $(( $(date +%s) - t1 )) s (exit $s2)"
  [ $s2 = 0 ] || status=$s2
fi
echo "run_sae.sh: $(( $(date +%s) - t0 )) s in all (exit $status)"
exit $status
