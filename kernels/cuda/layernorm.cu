/* LayerNorm, optionally fused with the residual add that precedes it in a pre-norm transformer block.
 * Three passes over the row: mean, then the variance around it (two-pass, not E[x²] - E[x]², which cancels
 * catastrophically for rows with a large mean), then the normalized output. Passes 2 and 3 re-read the row
 * from L1/L2; every thread touches the same elements in every pass (i = lane + k·TPR), so the fused variant
 * can write x + res in pass 1 and read it back later without any barrier. The CPU reference keeps its
 * statistics in double; fp32 here agrees to a few ulps for rows whose mean is not huge next to their spread. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/layernorm.cuh"

static const int k_block = 256;

// ---- CUDA kernels
// TPR threads per row: 32 (warp per row, warp shuffles only) or 256 (block per row, block reductions).
template <int TPR>
static __device__ __forceinline__ float row_sum(float v, float *scratch) {
    if (TPR == WARP_SIZE) return warp_sum(v);
    return block_sum(v, scratch);
}

template <int TPR, bool FUSED_ADD>
static __global__ void __launch_bounds__(256)
    layernorm_tpr_kernel(float *out, float *x, const float *res, const float *w, const float *b, int64_t rows,
                         int64_t dim, float eps) {
    __shared__ float scratch[32];
    const int64_t row = (int64_t)blockIdx.x * (k_block / TPR) + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    // TPR == 256: one row per block, so a whole block leaves together; TPR == 32: whole warps leave, and
    // their reductions are warp-only. Either way no barrier is skipped by part of its participants.
    if (row >= rows) return;
    float *xr = x + row * dim;
    const float *rr = FUSED_ADD ? res + row * dim : nullptr;
    float *o = out + row * dim;

    float s = 0.0f;
    for (int64_t i = lane; i < dim; i += TPR) {
        float v = xr[i];
        if (FUSED_ADD) {
            v = v + rr[i];
            xr[i] = v;
        }
        s += v;
    }
    const float mean = row_sum<TPR>(s, scratch) / (float)dim;
    float ss = 0.0f;
    for (int64_t i = lane; i < dim; i += TPR) {
        const float d = xr[i] - mean;
        ss += d * d;
    }
    const float var = row_sum<TPR>(ss, scratch) / (float)dim;
    const float rstd = 1.0f / sqrtf(var + eps);
    for (int64_t i = lane; i < dim; i += TPR) o[i] = (xr[i] - mean) * rstd * w[i] + (b ? b[i] : 0.0f);
}

// ---- kernel launchers
template <bool FUSED_ADD>
static void layernorm_launch(float *out, float *x, const float *res, const float *w, const float *b, int64_t rows,
                             int64_t dim, float eps, cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 0 && dim > 0, "layernorm dims %lld x %lld", (long long)rows, (long long)dim);
    if (rows == 0) return;
    MUSAE_ASSERT(out && x && w && (!FUSED_ADD || res), "layernorm: NULL pointer");
    if (rows < LAYERNORM_BLOCK_ROWS) {
        layernorm_tpr_kernel<256, FUSED_ADD><<<(unsigned)rows, k_block, 0, stream>>>(out, x, res, w, b, rows, dim, eps);
    } else {
        const int64_t blocks = CEIL_DIV(rows, (int64_t)(k_block / WARP_SIZE));
        MUSAE_ASSERT(blocks < INT32_MAX, "layernorm: %lld rows", (long long)rows);
        layernorm_tpr_kernel<WARP_SIZE, FUSED_ADD>
            <<<(unsigned)blocks, k_block, 0, stream>>>(out, x, res, w, b, rows, dim, eps);
    }
    CUDA_LAUNCH_CHECK();
}

void layernorm_cuda(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps,
                    cudaStream_t stream) {
    // x is only read when FUSED_ADD is false; the cast lets both variants share one kernel.
    layernorm_launch<false>(out, const_cast<float *>(x), nullptr, w, b, rows, dim, eps, stream);
}

void add_layernorm_cuda(float *x, const float *res, float *out, const float *w, const float *b, int64_t rows,
                        int64_t dim, float eps, cudaStream_t stream) {
    MUSAE_ASSERT(out != x && out != res, "add_layernorm: out must not alias x or res");
    layernorm_launch<true>(out, x, res, w, b, rows, dim, eps, stream);
}
