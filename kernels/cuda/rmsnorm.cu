/* RMS norm: one pass for Σx², one for the output (which re-reads the row from L1/L2). The output expression
 * w * (x * rs) mirrors kernels/cpu/rmsnorm.c. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/rmsnorm.cuh"

static const int k_block = 256;

// ---- CUDA kernels
template <int TPR>
static __global__ void __launch_bounds__(256)
    rmsnorm_tpr_kernel(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps) {
    __shared__ float scratch[32];
    const int64_t row = (int64_t)blockIdx.x * (k_block / TPR) + threadIdx.x / TPR;
    const int lane = threadIdx.x % TPR;
    if (row >= rows) return; // whole block (TPR 256) or whole warp (TPR 32): no partial barrier
    const float *xr = x + row * dim;
    float *o = out + row * dim;
    float ss = 0.0f;
    for (int64_t i = lane; i < dim; i += TPR) ss += xr[i] * xr[i];
    ss = TPR == WARP_SIZE ? warp_sum(ss) : block_sum(ss, scratch);
    const float rs = 1.0f / sqrtf(ss / (float)dim + eps);
    for (int64_t i = lane; i < dim; i += TPR) o[i] = w[i] * (xr[i] * rs);
}

// ---- kernel launchers
void rmsnorm_cuda(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps,
                  cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 0 && dim > 0, "rmsnorm dims %lld x %lld", (long long)rows, (long long)dim);
    if (rows == 0) return;
    MUSAE_ASSERT(out && x && w, "rmsnorm: NULL pointer");
    if (rows < RMSNORM_BLOCK_ROWS) {
        rmsnorm_tpr_kernel<256><<<(unsigned)rows, k_block, 0, stream>>>(out, x, w, rows, dim, eps);
    } else {
        const int64_t blocks = CEIL_DIV(rows, (int64_t)(k_block / WARP_SIZE));
        MUSAE_ASSERT(blocks < INT32_MAX, "rmsnorm: %lld rows", (long long)rows);
        rmsnorm_tpr_kernel<WARP_SIZE><<<(unsigned)blocks, k_block, 0, stream>>>(out, x, w, rows, dim, eps);
    }
    CUDA_LAUNCH_CHECK();
}
