/* f32 -> bf16 for weights at load time and for activations entering the bf16 GEMM (linear_bf16w.cu). */
#include "host/core/dtype.h"
#include "kernels/cuda/convert.cuh"
#include "kernels/cuda/cuda_utils.cuh"

// ---- CUDA kernels
static __global__ void f32_to_bf16_kernel(uint16_t *out, const float *x, int64_t n) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        out[i] = musae_f32_to_bf16(x[i]);
}

// ---- kernel launchers
void f32_to_bf16_cuda(uint16_t *out, const float *x, int64_t n, cudaStream_t stream) {
    MUSAE_ASSERT(n >= 0, "f32_to_bf16: n = %lld", (long long)n);
    if (n == 0) return;
    MUSAE_ASSERT(out && x, "f32_to_bf16: NULL pointer");
    const int block = 256;
    f32_to_bf16_kernel<<<grid_for(n, block), block, 0, stream>>>(out, x, n);
    CUDA_LAUNCH_CHECK();
}
