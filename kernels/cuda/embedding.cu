/* Embedding gather (MusicGen sums K codebook tables into one row by calling this K times with accumulate=1;
 * the sum is a plain fp32 add per call, bit-identical to kernels/cpu/embedding.c). */
#include <stdio.h>

#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/embedding.cuh"

// ---- CUDA kernels
// Columns along x (coalesced row copy), output rows along y, grid-strided past 65535.
static __global__ void embedding_gather_kernel(float *out, const float *table, int64_t rows, int64_t dim,
                                               const int64_t *ids, int64_t n, int accumulate) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (int64_t r = blockIdx.y; r < n; r += gridDim.y) {
        const int64_t id = ids[r];
        if (id < 0 || id >= rows) {
            if (i == 0) printf("[musae] embedding id %lld at %lld outside [0, %lld)\n", (long long)id, (long long)r,
                               (long long)rows);
            __trap();
        }
        if (i >= dim) continue;
        const float src = table[id * dim + i];
        float *o = out + r * dim + i;
        *o = accumulate ? *o + src : src;
    }
}

// ---- kernel launchers
void embedding_cuda(float *out, const float *table, int64_t rows, int64_t dim, const int64_t *ids, int64_t n,
                    int accumulate, cudaStream_t stream) {
    MUSAE_ASSERT(rows > 0 && dim > 0 && n >= 0, "embedding dims rows %lld dim %lld n %lld", (long long)rows,
                 (long long)dim, (long long)n);
    if (n == 0) return;
    MUSAE_ASSERT(out && table && ids, "embedding: NULL pointer");
    const int block = 256;
    MUSAE_ASSERT(CEIL_DIV(dim, (int64_t)block) < INT32_MAX, "embedding: dim %lld too large", (long long)dim);
    dim3 grid((unsigned)CEIL_DIV(dim, (int64_t)block), (unsigned)(n < 65535 ? n : 65535));
    embedding_gather_kernel<<<grid, block, 0, stream>>>(out, table, rows, dim, ids, n, accumulate);
    CUDA_LAUNCH_CHECK();
}
