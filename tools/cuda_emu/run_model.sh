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
# shellcheck source=tools/cuda_emu/common.sh
. "$(dirname "$0")/common.sh"
t0=$(date +%s)
emu_init "${1:-$(dirname "$0")/../../build-dev-emu}" cuda_emu_model test_model_gpu
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--audio-samples 6400)
objs=()
while read -r f; do objs+=("$(emu_compile "$f")"); done < <(emu_op_kernels)
gcc -std=c11 -O1 -g -fsanitize=address,undefined -D_GNU_SOURCE -I"$root" -I"$root/tests" \
    -DMUSAE_FIXTURES="\"$root/tests/fixtures\"" -c "$root/tests/test_model_gpu.c" -o "$out/test_model_gpu.o"
emu_link "$out/test_model_gpu_emu" "$out/test_model_gpu.o" "${objs[@]}"
t1=$(date +%s)
echo "built the emulated model test in $((t1 - t0)) s"
emu_env
status=0
timeout 3600 "$out/test_model_gpu_emu" "${args[@]}" || status=$?
echo "ran test_model_gpu on the emulated CUDA table in $(( $(date +%s) - t1 )) s (exit $status)"
exit $status
