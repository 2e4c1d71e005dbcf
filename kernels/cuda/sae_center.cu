/* Small elementwise helpers of the SAE step: the scaled and centred input (and its bf16 shadow for the encoder
 * GEMM), and fp32 -> bf16 copies (the initial weight shadows). Rounding as the CPU: one multiply, one subtract,
 * musae_f32_to_bf16 (nearest even). */
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/cuda/sae_util.cuh"

namespace {

__global__ void center_kernel(const float *x, float s, const float *b_dec, int64_t N, int64_t d, float *x_out,
                              float *xc, uint16_t *xc16) {
    const int64_t n = N * d, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = __fmul_rn(x[i], s), c = __fsub_rn(v, b_dec[i % d]);
        if (x_out) x_out[i] = v;
        xc[i] = c;
        if (xc16) xc16[i] = musae_f32_to_bf16(c);
    }
}

__global__ void to_bf16_kernel(const float *src, int64_t n, uint16_t *dst) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = musae_f32_to_bf16(src[i]);
}

unsigned grid_1d(int64_t n) {
    int64_t b = CEIL_DIV(n, 256);
    return (unsigned)(b < 1 ? 1 : b > 65536 ? 65536 : b);
}

}  // namespace

void sae_cuda_center(const float *x, float s, const float *b_dec, int64_t N, int64_t d, float *x_out, float *xc,
                     uint16_t *xc_bf16, cudaStream_t stream) {
    MUSAE_ASSERT(N >= 0 && d >= 1, "N %lld d %lld", (long long)N, (long long)d);
    if (N == 0) return;
    center_kernel<<<grid_1d(N * d), 256, 0, stream>>>(x, s, b_dec, N, d, x_out, xc, xc_bf16);
    CUDA_LAUNCH_CHECK();
}

void sae_cuda_to_bf16(const float *src, int64_t n, uint16_t *dst, cudaStream_t stream) {
    MUSAE_ASSERT(n >= 0, "n %lld", (long long)n);
    if (n == 0) return;
    to_bf16_kernel<<<grid_1d(n), 256, 0, stream>>>(src, n, dst);
    CUDA_LAUNCH_CHECK();
}
