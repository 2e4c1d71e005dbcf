/* step_ops->kv_append on the GPU: one step's K/V rows copied into the cache at the device position. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/step_ops_cuda.cuh"

// ---- CUDA kernels
static __global__ void step_kv_append_kernel(float *cache, const float *__restrict__ src, int64_t width,
                                             int64_t row_stride, const int64_t *__restrict__ pos) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    if (i < width) cache[r * row_stride + *pos * width + i] = src[r * width + i];
}

// ---- kernel launchers
void step_kv_append_cuda(float *cache, const float *src, int64_t rows, int64_t width, int64_t row_stride,
                         const int64_t *pos, cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 1 && rows <= 65535 && width >= 1 && row_stride >= width, "kv append rows %lld width %lld "
                 "stride %lld", (long long)rows, (long long)width, (long long)row_stride);
    const int block = 256;
    dim3 grid((unsigned)CEIL_DIV(width, (int64_t)block), (unsigned)rows);
    step_kv_append_kernel<<<grid, block, 0, stream>>>(cache, src, width, row_stride, pos);
    CUDA_LAUNCH_CHECK();
}
