#!/usr/bin/env bash
# Packs what a GPU machine needs to run musae's GPU tests and benchmarks without building there (its image
# has CUDA 13 and PyTorch but none of musae's build dependencies; x86-64 both sides, its glibc is newer):
#   bench/pack_device.sh [BUILD_DIR]        (default build-cusae; configured with -DMUSAE_CUDA=ON)
# -> BUILD_DIR/devpack.tgz  devpack/build/  the musae binary, every executable a gpu-labelled ctest runs, the
#                                           benchmarks (lm_gpu_bench, sae_gpu_bench) and every CTestTestfile.cmake,
#                                           at their paths relative to BUILD_DIR (bench/devpack_env.sh restores
#                                           them at the same absolute path, so `ctest -L gpu` runs there as here)
#                           devpack/bin/    links to the binaries by name (bench/devpack_env.sh checks that each finds its libraries)
#                           devpack/lib/    the shared libraries they need that are neither glibc/libstdc++ nor
#                                           CUDA's nor NCCL (the machine's toolkit and PyTorch's nvidia-* wheels
#                                           have those): OpenBLAS, HDF5, libsndfile, libsoxr, sentencepiece, MPI
#                           devpack/env     the source root, the build folder and the commit
#    BUILD_DIR/whl/         eai-sparsify and the pure-Python packages its SparseCoder imports that the GPU
#                           image lacks (natsort, simple-parsing, docstring-parser), pinned (the SAE peer)
# Both live under the ignored build folder: name them in the device tool's `carry` (bench/README.md). The
# working tree and the carried paths together must stay under the tool's 64 MiB: checked at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-cusae}
BUILD=${BUILD%/}
[ -f "$BUILD/CMakeCache.txt" ] || { echo "$BUILD is not a configured build folder"; exit 1; }
grep -q '^MUSAE_HAVE_CUDA:INTERNAL=1\|^MUSAE_CUDA:STRING=ON' "$BUILD/CMakeCache.txt" || \
  echo "warning: $BUILD may not be a CUDA configuration (-DMUSAE_CUDA=ON)"

# the executables the gpu-labelled tests run, read from ctest's files (ctest -N omits the commands of tests
# whose executables are not built yet)
mapfile -t GPU_EXES < <(python3 - "$BUILD" <<'PY'
import os, re, sys
build = os.path.realpath(sys.argv[1])
seen = []
for root, _, names in os.walk(build):
    if "CTestTestfile.cmake" not in names:
        continue
    text = open(os.path.join(root, "CTestTestfile.cmake")).read()
    gpu = set()
    for m in re.finditer(r'set_tests_properties\(\[=\[(.+?)\]=\] PROPERTIES (.*)', text):
        lab = re.search(r'LABELS "([^"]*)"', m.group(2))
        if lab and "gpu" in lab.group(1).split(";"):
            gpu.add(m.group(1))
    for m in re.finditer(r'add_test\(\[=\[(.+?)\]=\] (.*)\)', text):
        if m.group(1) not in gpu:
            continue
        for arg in re.findall(r'"([^"]*)"', m.group(2)):
            p = os.path.realpath(arg)
            if p.startswith(build + "/") and os.path.relpath(p, build) not in seen:
                seen.append(os.path.relpath(p, build))
print("\n".join(seen))
PY
)
BENCHES=(bench/lm_gpu_bench bench/sae_gpu_bench)
targets=(musae musae_cuda)
for f in "${GPU_EXES[@]}" "${BENCHES[@]}"; do targets+=("$(basename "$f")"); done
echo "building: ${targets[*]}"
cmake --build "$BUILD" -j2 --target "${targets[@]}"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
DP=$STAGE/devpack
mkdir -p "$DP/build" "$DP/bin" "$DP/lib"
files=(musae libmusae_cuda.so "${GPU_EXES[@]}" "${BENCHES[@]}")  # the module musae loads for the GPU
for f in "${files[@]}"; do
  mkdir -p "$DP/build/$(dirname "$f")"
  cp "$BUILD/$f" "$DP/build/$f"
  ln -sf "../build/$f" "$DP/bin/$(basename "$f")"
done
(cd "$BUILD" && find . -name CTestTestfile.cmake -not -path './_deps/*') | while read -r f; do
  mkdir -p "$DP/build/$(dirname "$f")" && cp "$BUILD/$f" "$DP/build/$f"
done
mkdir -p "$DP/build/test-tmp"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcublas|libnccl|libnvidia)'
for f in "${files[@]}"; do
  ldd "$BUILD/$f" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    [[ $name =~ $skip ]] || cp -L "$path" "$DP/lib/$name"
  done
done
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || commit="$commit+dirty"
cat > "$DP/env" <<EOF
MUSAE_SRC='$(pwd -P)'
MUSAE_BUILD_REL='$BUILD'
MUSAE_COMMIT='$commit'
EOF
tar czf "$BUILD/devpack.tgz" -C "$STAGE" devpack

mkdir -p "$BUILD/whl"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$BUILD/whl" \
  eai-sparsify==1.3.3 natsort==8.4.0 simple-parsing==0.1.9 docstring-parser==0.18.0

tar tzvf "$BUILD/devpack.tgz" | awk '{printf "  %10d  %s\n", $3, $6}'
# what travels: tracked and untracked-not-ignored files, plus the two carried paths
tree=$(git ls-files -z -co --exclude-standard | xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
carried=$(du -sb "$BUILD/devpack.tgz" "$BUILD/whl" | awk '{s += $1} END {print s}')
total=$((tree + carried))
printf 'devpack %s (commit %s): %.1f MiB; wheels %.1f MiB; working tree %.1f MiB; together %.1f MiB of 64\n' \
  "$BUILD/devpack.tgz" "$commit" "$(du -sb "$BUILD/devpack.tgz" | awk '{print $1 / 1048576}')" \
  "$(du -sb "$BUILD/whl" | awk '{print $1 / 1048576}')" "$(echo "$tree" | awk '{print $1 / 1048576}')" \
  "$(echo "$total" | awk '{print $1 / 1048576}')"
[ "$total" -lt $((62 * 1048576)) ] || { echo "over the carry limit's safe margin (62 MiB): trim the pack"; exit 1; }
