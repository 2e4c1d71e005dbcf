#!/usr/bin/env bash
# The musae binary's CUDA backend is a module loaded on demand (host/cli/cuda_backend.c), CUDA builds only:
#   (a) `musae --help` and a --device cpu run map none of cudart, cuBLAS, cuBLASLt, NCCL or the module;
#   (b) without a driver, --device cuda is refused with the reason "no NVIDIA driver", the libraries unmapped;
#   (c) with a driver present (a stub libcuda.so.1, STUB_DIR), the module loads and its CUDA runtime answers:
#       the refusal carries cudaGetDeviceCount's reason, said once.
# Usage: test_cuda_backend.sh MUSAE_BIN STUB_DIR
set -uo pipefail
musae=$1 stub=$2
fails=0 passes=0
check() { if eval "$1"; then passes=$((passes + 1)); else fails=$((fails + 1)); echo "FAIL: $2"; fi; }
cuda_libs='lib(cudart|cublas|cublasLt|nccl|musae_cuda)\.so'
tmp=$(mktemp -d) && trap 'rm -rf "$tmp"' EXIT
model=${MUSAE_FIXTURES:?}/tiny-musicgen

# (a) LD_DEBUG=libs names every library the loader initialises
LD_DEBUG=libs "$musae" --help >/dev/null 2>"$tmp/help.txt"; rc=$?
check '[ $rc = 0 ]' "musae --help exited $rc"
check '! grep -qE "calling init: .*$cuda_libs" "$tmp/help.txt"' \
  "musae --help loaded: $(grep -oE "calling init: .*$cuda_libs.*" "$tmp/help.txt" | head -3)"
check 'grep -q "calling init: .*libc.so" "$tmp/help.txt"' "LD_DEBUG=libs gave no 'calling init' lines to check"
LD_LIBRARY_PATH="$stub" LD_DEBUG=libs "$musae" forward --device cpu --model "$model" --codes /nonexistent -o "$tmp/x" \
  >/dev/null 2>"$tmp/cpu.txt"
check '! grep -qE "calling init: .*$cuda_libs" "$tmp/cpu.txt"' "a --device cpu run loaded CUDA libraries"

# (b) no driver: refused before anything CUDA is loaded (only where there is none)
if ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
  echo "(b) not run: this machine has an NVIDIA driver (libcuda.so.1)"
else
LD_DEBUG=libs "$musae" forward --device cuda --model "$model" --codes /nonexistent -o "$tmp/x" >/dev/null 2>"$tmp/nodrv.txt"
rc=$?
check '[ $rc = 1 ]' "--device cuda without a driver exited $rc"
check 'grep -q "^musae: error: --device cuda: no usable CUDA device (no NVIDIA driver" "$tmp/nodrv.txt"' \
  "no driver: $(grep error "$tmp/nodrv.txt")"
check '! grep -qE "calling init: .*$cuda_libs" "$tmp/nodrv.txt"' "no driver, yet CUDA libraries were loaded"
fi

# (c) a driver library is there (the stub): the module loads, cudart answers, the reason is said once
LD_LIBRARY_PATH="$stub" LD_DEBUG=libs "$musae" forward --device cuda --model "$model" --codes /nonexistent -o "$tmp/x" \
  >/dev/null 2>"$tmp/stub.txt"
rc=$?
check '[ $rc = 1 ]' "--device cuda with the stub driver exited $rc"
check 'grep -qE "calling init: .*libmusae_cuda\.so" "$tmp/stub.txt"' "the stub driver did not lead to loading the module"
check 'grep -q "^musae: error: --device cuda: no usable CUDA device (cudaGetDeviceCount: " "$tmp/stub.txt"' \
  "stub driver: $(grep error "$tmp/stub.txt")"
check '[ "$(grep "^musae: error" "$tmp/stub.txt" | grep -o "no usable CUDA device" | wc -l)" = 1 ]' \
  "'no usable CUDA device' not said exactly once"
echo "$passes passed, $fails failed"
[ $fails = 0 ]
