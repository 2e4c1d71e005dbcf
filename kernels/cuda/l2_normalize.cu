/* Row L2 normalisation: one pass for Σx², one for the output (re-read from L1/L2). The expression
 * x * (1 / max(sqrt(ss), 1e-12)) mirrors kernels/cpu/l2_normalize.c. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/l2_normalize.cuh"

static const int k_block = 256;

// ---- CUDA kernels
static __global__ void __launch_bounds__(256) l2_normalize_kernel(float *out, const float *x, int64_t dim) {
    __shared__ float scratch[32];
    const float *xr = x + (int64_t)blockIdx.x * dim;
    float *o = out + (int64_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < dim; i += k_block) ss += xr[i] * xr[i];
    ss = block_sum(ss, scratch);
    const float inv = 1.0f / fmaxf(sqrtf(ss), 1e-12f);
    for (int64_t i = threadIdx.x; i < dim; i += k_block) o[i] = xr[i] * inv;
}

// ---- kernel launchers
void l2_normalize_cuda(float *out, const float *x, int64_t rows, int64_t dim, cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 0 && dim > 0, "l2_normalize dims %lld x %lld", (long long)rows, (long long)dim);
    if (rows == 0) return;
    MUSAE_ASSERT(out && x, "l2_normalize: NULL pointer");
    MUSAE_ASSERT(rows < INT32_MAX, "l2_normalize: %lld rows", (long long)rows);
    l2_normalize_kernel<<<(unsigned)rows, k_block, 0, stream>>>(out, x, dim);
    CUDA_LAUNCH_CHECK();
}
