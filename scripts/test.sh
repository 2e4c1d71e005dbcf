#!/usr/bin/env bash
# Installs what musae needs, builds every configuration and runs every test:
#   (a) CPU Release            -> all tests (labels cpu, mpi, slow)
#   (a2) the same build, AVX2  -> the cpu and mpi tests again on the code an AVX2-only host runs
#                                 (OPENBLAS_CORETYPE=Haswell MUSAE_ISA=avx2; about a minute)
#   (b) ASan + UBSan           -> all tests again
#   (c) CUDA (archs 80;90)     -> compile and link; GPU tests run where a GPU exists, else skip with a reason
#   (d) libFuzzer targets      -> bounded runs under ASan (MUSAE_FUZZ_SECONDS, default 60 each)
#   (e) tools/cuda_emu         -> the CUDA op, step and SAE kernel tests on the CPU emulation (no GPU needed)
#   (f) the README's set-up    -> followed verbatim on a fresh clone of HEAD (scripts/readme_check.sh, ~1 min)
# Usage: scripts/test.sh [--quick]   (--quick: only (a) and (a2))
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/install-deps.sh
mkdir -p build
jobs=$(nproc)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}
# OpenMPI refuses to run as root and to oversubscribe 2 cores unless told; tests use -np 2.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export PRTE_MCA_rmaps_default_mapping_policy=:oversubscribe

section() { echo; echo "==== $* ($(date +%T))"; }
status=0
run_ctest() { # dir, extra args...
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "$@" || status=1
}

section "(a) CPU Release build + tests"
cmake -S . -B build/ci-cpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DMUSAE_CUDA=OFF >build/ci-cpu.log 2>&1 \
  || { cat build/ci-cpu.log; exit 1; }
grep -E '^-- musae:' build/ci-cpu.log || true
cmake --build build/ci-cpu -j "$jobs"
run_ctest build/ci-cpu -LE fuzz

# An AVX-512 machine runs other OpenBLAS kernels and other variants of musae's own kernels than an AVX2-only
# one (AMD Zen 3, older Intel), and bitwise promises (capture --batch, resume, device loop == host loop) have
# broken only there. The run-time paths are what differ, so the build of (a) is reused.
section "(a2) CPU tests on the AVX2 paths (OPENBLAS_CORETYPE=Haswell MUSAE_ISA=avx2)"
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  OPENBLAS_CORETYPE=Haswell MUSAE_ISA=avx2 run_ctest build/ci-cpu -LE 'fuzz|slow|gpu'
else
  echo "SKIPPED: this CPU has no AVX2/FMA (the tests of (a) already ran its own paths)"
fi

if [ $quick = 0 ]; then
  section "(b) ASan + UBSan build + tests"
  cmake -S . -B build/ci-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUSAE_CUDA=OFF \
        -DMUSAE_SANITIZE=address,undefined >build/ci-asan.log 2>&1 || { cat build/ci-asan.log; exit 1; }
  cmake --build build/ci-asan -j "$jobs"
  run_ctest build/ci-asan -LE fuzz

  section "(c) CUDA build (compile + link; GPU tests skip without a GPU)"
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then
    cmake -S . -B build/ci-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DMUSAE_CUDA=ON >build/ci-cuda.log 2>&1 \
      || { cat build/ci-cuda.log; exit 1; }
    grep -E '^-- musae:' build/ci-cuda.log || true
    cmake --build build/ci-cuda -j "$jobs"
    run_ctest build/ci-cuda -L gpu
    run_ctest build/ci-cuda -R '^test_cuda_backend$'   # a CPU run of the CUDA build maps no CUDA library
  else
    echo "SKIPPED: no CUDA toolkit (nvcc) on this machine"
  fi

  section "(e) CUDA kernels on the CPU emulator (tools/cuda_emu, ASan; about 3 minutes)"
  # the runs under 3 minutes each: the op table, the step table + graph generation, the SAE kernels (--small);
  # run_model.sh and run_sae.sh's trainer test take longer and stay manual (tools/cuda_emu/README.md)
  bash tools/cuda_emu/run.sh build/ci-cpu || status=1
  bash tools/cuda_emu/run_step.sh build/ci-cpu --quick || status=1
  SAE_OPS_ARGS=--small bash tools/cuda_emu/run_sae.sh build/ci-cpu ops || status=1

  section "(f) the README's set-up, verbatim, on a fresh clone (scripts/readme_check.sh)"
  bash scripts/readme_check.sh || status=1

  if [ -x scripts/fuzz.sh ]; then
    section "(d) fuzzing (libFuzzer + ASan, bounded)"
    bash scripts/fuzz.sh || status=1
  fi
fi

section "done"
if [ $status -ne 0 ]; then echo "FAILED: see the test output above"; exit 1; fi
echo "all configurations built and all tests passed"
