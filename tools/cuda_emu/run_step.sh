#!/usr/bin/env bash
# Runs tests/test_step_gpu on a machine without a GPU: the CUDA step table (kernels/cuda/step_*.cu) and the
# whole graph generation loop (mg_generate: warm-up step, stream capture of step 1, replay of every later step)
# with the real kernels/cuda sources compiled as host C++ against the emulated runtime (include/emu.h: capture
# records launches, copies and cuBLASLt calls, a graph launch replays them), against the CPU step table.
# The model library is the CPU build's libmusae_lib.a; musae_ops_cuda(), musae_step_ops_cuda() and the device
# count come from the emulation (objects before the archive, so its no-CUDA stubs are not linked).
#
# Usage: tools/cuda_emu/run_step.sh [CPU build dir, default build-step-emu] [test_step_gpu args, default --quick]
# The build dir is a configured CPU-only Ninja build (-DMUSAE_CUDA=OFF); musae_lib is built here if needed.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tools/cuda_emu"
bdir=$(cd "${1:-$root/build-step-emu}" && pwd)
shift || true
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(--quick)
out="$bdir/cuda_emu_step"
mkdir -p "$out/gen"
cmake --build "$bdir" -j2 --target musae_lib >/dev/null
libs=$(grep -A6 "build tests/test_step:" "$bdir/build.ninja" | grep LINK_LIBRARIES | sed "s/.*LINK_LIBRARIES = //; s#libmusae_lib.a#$bdir/libmusae_lib.a#")
[ -n "$libs" ] || { echo "no test_step link line in $bdir/build.ninja (configure a CPU-only Ninja build first)"; exit 1; }
flags=(-std=c++20 -O1 -g "-fsanitize=address,undefined" -fno-sanitize-recover=undefined -fno-omit-frame-pointer
       -Wno-unknown-pragmas -I"$here/include" -I"$root" -I"$root/tests" -D_GNU_SOURCE -DMUSAE_FIXTURES="\"$root/tests/fixtures\"")
objs=()
srcs=()
for f in "$root"/kernels/cuda/*.cu; do
  case $(basename "$f") in sae_*|cuda_device.cu|philox_fill.cu) continue ;; esac
  srcs+=("$f")
done
srcs+=("$root/tests/test_step_gpu.cu")
# the newest header a kernel may include (or this script: the flags): a kernel object older than it is rebuilt
newest=$(ls -t "$0" "$here/include/emu.h" "$here/transform.py" "$root"/kernels/*.h "$root"/kernels/cuda/*.cuh \
         "$root"/kernels/cuda/*.h \
         "$root"/host/core/*.h "$root"/model/*.h | head -1)
for f in "${srcs[@]}"; do
  n=$(basename "$f" .cu)
  o="$out/gen/$n.o"
  # recompile only what changed (the kernels take a while under ASan)
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ] || [ "$newest" -nt "$o" ]; then
    python3 "$here/transform.py" "$f" "$out/gen/$n.cpp"
    g++ "${flags[@]}" -c "$out/gen/$n.cpp" -o "$o"
  fi
  objs+=("$o")
done
g++ "${flags[@]}" -c "$here/emu_rt.cpp" -o "$out/emu_rt.o"
# shellcheck disable=SC2086
g++ -fsanitize=address,undefined -o "$out/test_step_gpu_emu" "${objs[@]}" "$out/emu_rt.o" $libs -pthread
export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} OPENBLAS_NUM_THREADS=1
timeout 3600 "$out/test_step_gpu_emu" "${args[@]}"
