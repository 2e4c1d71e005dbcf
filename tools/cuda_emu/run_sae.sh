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
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tools/cuda_emu"
bdir=$(cd "${1:-$root/build-semu}" && pwd)
which=${2:-all}
read -r -a ops_args <<<"${SAE_OPS_ARGS-}"
read -r -a train_args <<<"${SAE_TRAIN_ARGS---quick}"
fma=${EMU_FMA:-0}
out="$bdir/cuda_emu_sae"
[ "$fma" = 1 ] && out="${out}_fma"
mkdir -p "$out/gen"
# (a tree mid-edit may not configure: then the library already built is used, with a note)
if ! cmake --build "$bdir" -j2 --target musae_lib >"$out/lib_build.log" 2>&1; then
  [ -f "$bdir/libmusae_lib.a" ] || { cat "$out/lib_build.log"; exit 1; }
  echo "note: musae_lib did not rebuild (see $out/lib_build.log); using the existing $bdir/libmusae_lib.a"
fi
libs=$(grep -A6 "build tests/test_sae_feed:" "$bdir/build.ninja" | grep LINK_LIBRARIES | sed "s/.*LINK_LIBRARIES = //; s#libmusae_lib.a#$bdir/libmusae_lib.a#")
[ -n "$libs" ] || { echo "no test_sae_feed link line in $bdir/build.ninja (configure a CPU-only Ninja build first)"; exit 1; }
flags=(-std=c++20 -O1 -g "-fsanitize=address,undefined" -fno-sanitize-recover=undefined -fno-omit-frame-pointer
       -Wno-unknown-pragmas -I"$here/include" -I"$root" -I"$root/tests" -D_GNU_SOURCE -DMUSAE_FIXTURES="\"$root/tests/fixtures\"" -DMUSAE_BIN="\"$bdir/musae\"")
t0=$(date +%s)
# the newest file a source may include (or this script: the flags): an object older than it is rebuilt
newest=$(ls -t "$0" "$here"/include/emu.h "$here"/include/cub/cub.cuh "$here/transform.py" "$root"/kernels/*.h \
         "$root"/kernels/cuda/*.cuh "$root"/kernels/cuda/*.h "$root"/host/core/*.h "$root"/sae/*.h | head -1)
kflags=()
[ "$fma" = 1 ] && kflags=(-O2 -mfma -ffp-contract=fast)
compile() { # .cu source [extra flags] -> object path on stdout
  local f=$1 n o
  shift
  n=$(basename "$f" .cu)
  o="$out/gen/$n.o"
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$newest" -nt "$o" ]; then
    python3 "$here/transform.py" "$f" "$out/gen/$n.cpp"
    g++ "${flags[@]}" "$@" -c "$out/gen/$n.cpp" -o "$o" >&2
  fi
  echo "$o"
}
kobjs=()
for f in "$root"/kernels/cuda/sae_*.cu; do kobjs+=("$(compile "$f" "${kflags[@]}")"); done
g++ "${flags[@]}" -c "$here/emu_rt.cpp" -o "$out/emu_rt.o"
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=1
status=0
if [ "$which" = all ] || [ "$which" = ops ]; then
  o=$(compile "$root/tests/test_sae_gpu.cu")
  # shellcheck disable=SC2086
  g++ -fsanitize=address,undefined -o "$out/test_sae_gpu_emu" "$o" "${kobjs[@]}" "$out/emu_rt.o" $libs -pthread
  t1=$(date +%s)
  timeout 3600 "$out/test_sae_gpu_emu" "${ops_args[@]}" || status=$?
  echo "ran test_sae_gpu ${ops_args[*]} on the emulated CUDA runtime in $(( $(date +%s) - t1 )) s (exit $status)"
fi
if [ "$which" = all ] || [ "$which" = train ]; then
  o=$(compile "$root/tests/test_sae_gpu_train.cu")
  g=$(compile "$root/sae/sae_gpu.cu" "${kflags[@]}")
  # shellcheck disable=SC2086
  g++ -fsanitize=address,undefined -o "$out/test_sae_gpu_train_emu" "$o" "$g" "${kobjs[@]}" "$out/emu_rt.o" $libs -pthread
  t1=$(date +%s)
  s2=0
  timeout 3600 "$out/test_sae_gpu_train_emu" "${train_args[@]}" || s2=$?
  echo "ran test_sae_gpu_train ${train_args[*]} on the emulated CUDA runtime in $(( $(date +%s) - t1 )) s (exit $s2)"
  [ $s2 = 0 ] || status=$s2
fi
echo "run_sae.sh: $(( $(date +%s) - t0 )) s in all (exit $status)"
exit $status
