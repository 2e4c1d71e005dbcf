/* step_ops->embed on the GPU: Σ_k table_k[id] in codebook order, then + the position row of the device counter:
 * the same fp32 adds in the same order as kernels/cpu/step_embed.c, so the result is bitwise equal. */
#include <stdio.h>

#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/step_ops_cuda.cuh"

// ---- CUDA kernels
// Block y = row, threads along the dimension (coalesced table rows).
static __global__ void step_embed_kernel(float *x, const float *__restrict__ table, int64_t K, int64_t n_ids,
                                         int64_t dim, const int64_t *__restrict__ ids, int64_t rows,
                                         const float *__restrict__ pos_table, const int64_t *__restrict__ pos) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (i >= dim) return;
    float acc = 0.0f;
    for (int64_t k = 0; k < K; k++) {
        const int64_t id = ids[k * rows + r];
        if (id < 0 || id >= n_ids) {
            if (i == 0) printf("[musae] step embed: token %lld of row %lld, codebook %lld outside [0, %lld)\n",
                               (long long)id, (long long)r, (long long)k, (long long)n_ids);
            __trap();
        }
        const float e = table[(k * n_ids + id) * dim + i];
        acc = k ? __fadd_rn(acc, e) : e;
    }
    x[r * dim + i] = __fadd_rn(acc, pos_table[*pos * dim + i]);
}

// ---- kernel launchers
void step_embed_cuda(float *x, const float *table, int64_t K, int64_t n_ids, int64_t dim, const int64_t *ids,
                     int64_t rows, const float *pos_table, const int64_t *pos, cudaStream_t stream) {
    MUSAE_ASSERT(K >= 1 && n_ids >= 1 && dim >= 1 && rows >= 1 && rows <= 65535, "step embed: K %lld ids %lld dim "
                 "%lld rows %lld", (long long)K, (long long)n_ids, (long long)dim, (long long)rows);
    const int block = 128;
    dim3 grid((unsigned)CEIL_DIV(dim, (int64_t)block), (unsigned)rows);
    step_embed_kernel<<<grid, block, 0, stream>>>(x, table, K, n_ids, dim, ids, rows, pos_table, pos);
    CUDA_LAUNCH_CHECK();
}
