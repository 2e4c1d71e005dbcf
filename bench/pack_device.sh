#!/usr/bin/env bash
# Packs what a GPU machine needs to run the GPU SAE tests and benchmark without building there (its image has
# CUDA 13 and PyTorch but not musae's build dependencies):
#   bench/pack_device.sh [BUILD_DIR]        (default build-cusae; configured with -DMUSAE_CUDA=ON)
# -> BUILD_DIR/devpack.tgz  test_sae_gpu, sae_gpu_bench and the shared libraries they need that are neither
#                           glibc/libstdc++ nor CUDA's (OpenBLAS, libgomp, libgfortran, libquadmath: ~13 MB)
#    BUILD_DIR/whl/         eai-sparsify and the pure-Python packages its SparseCoder imports that the GPU
#                           image lacks (natsort, simple-parsing, docstring-parser), pinned
# Both live under the ignored build folder: name them in the device tool's `carry` (bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-cusae}
cmake --build "$BUILD" --target test_sae_gpu sae_gpu_bench
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/devpack/bin" "$STAGE/devpack/lib"
cp "$BUILD/tests/test_sae_gpu" "$BUILD/bench/sae_gpu_bench" "$STAGE/devpack/bin/"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcublas)'
for b in "$STAGE"/devpack/bin/*; do
  ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' | while read -r name path; do
    [[ $name =~ $skip ]] || cp -L "$path" "$STAGE/devpack/lib/$name"
  done
done
tar czf "$BUILD/devpack.tgz" -C "$STAGE" devpack
mkdir -p "$BUILD/whl"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$BUILD/whl" \
  eai-sparsify==1.3.3 natsort==8.4.0 simple-parsing==0.1.9 docstring-parser==0.18.0
ls -la "$BUILD/devpack.tgz" "$BUILD/whl"
tar tzf "$BUILD/devpack.tgz"
