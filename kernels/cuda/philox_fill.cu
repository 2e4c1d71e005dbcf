#include "host/core/philox.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/philox_fill.cuh"

// ---- CUDA kernels
// One thread per Philox block: four outputs from one 10-round evaluation.
static __global__ void philox_uniform_fill_kernel(float *out, int64_t n, uint64_t seed, uint64_t stream) {
    int64_t blk = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t i0 = blk * 4;
    if (i0 >= n) return;
    musae_u32x4 r = musae_philox(seed, stream, (uint64_t)blk);
    for (int j = 0; j < 4 && i0 + j < n; j++) out[i0 + j] = musae_u32_to_unit(r.v[j]);
}

// ---- kernel launchers
void philox_uniform_fill(float *out, int64_t n, uint64_t seed, uint64_t stream, cudaStream_t cs) {
    MUSAE_ASSERT(n >= 0, "negative size %lld", (long long)n);
    if (n == 0) return;
    const int block = 256;
    int64_t blocks = CEIL_DIV(CEIL_DIV(n, 4), block);
    philox_uniform_fill_kernel<<<(unsigned)blocks, block, 0, cs>>>(out, n, seed, stream);
    CUDA_LAUNCH_CHECK();
}
