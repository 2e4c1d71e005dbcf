/* step_ops->capture on the GPU: the hooked rows into slot (*pos mod slots) of the READ ring. */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/step_ops_cuda.cuh"

// ---- CUDA kernels
static __global__ void step_capture_kernel(float *ring, const float *__restrict__ x, int64_t n, int64_t slots,
                                           const int64_t *__restrict__ pos) {
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    float *slot = ring + (*pos % slots) * n;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) slot[i] = x[i];
}

// ---- kernel launchers
void step_capture_cuda(float *ring, const float *x, int64_t rows, int64_t dim, int64_t slots, const int64_t *pos,
                       cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 1 && dim >= 1 && slots >= 1, "step capture %lld x %lld, %lld slots", (long long)rows,
                 (long long)dim, (long long)slots);
    const int block = 256;
    step_capture_kernel<<<grid_for(rows * dim, block), block, 0, stream>>>(ring, x, rows * dim, slots, pos);
    CUDA_LAUNCH_CHECK();
}
