/* step_ops->add_rows_at on the GPU: x[r] += alpha[r]·v[r mod n_vec] when the device position is in [p0, p1), with
 * the product rounded before the add (bitwise equal to kernels/cpu/step_add_rows.c). n_vec is 1 (one vector for
 * every row) or the batch's items (per-item directions in one CFG batch). */
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/step_ops_cuda.cuh"

// ---- CUDA kernels
static __global__ void step_add_rows_kernel(float *x, const float *__restrict__ v, int64_t n_vec,
                                            const float *__restrict__ alpha, int64_t dim, int64_t p0, int64_t p1,
                                            const int64_t *__restrict__ pos) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, r = blockIdx.y;
    const int64_t p = *pos;
    if (i >= dim || p < p0 || p >= p1) return;
    x[r * dim + i] = __fadd_rn(x[r * dim + i], __fmul_rn(alpha[r], v[(r % n_vec) * dim + i]));
}

// ---- kernel launchers
void step_add_rows_cuda(float *x, const float *v, int64_t n_vec, const float *alpha, int64_t rows, int64_t dim,
                        int64_t p0, int64_t p1, const int64_t *pos, cudaStream_t stream) {
    MUSAE_ASSERT(rows >= 1 && rows <= 65535 && dim >= 1 && n_vec >= 1, "step add_rows %lld x %lld, %lld vectors",
                 (long long)rows, (long long)dim, (long long)n_vec);
    const int block = 128;
    dim3 grid((unsigned)CEIL_DIV(dim, (int64_t)block), (unsigned)rows);
    step_add_rows_kernel<<<grid, block, 0, stream>>>(x, v, n_vec, alpha, dim, p0, p1, pos);
    CUDA_LAUNCH_CHECK();
}
