/* Matrix products through cuBLASLt, on the row-major conventions of kernels/ops.h.
 *   fp32 (gemm, linear): CUBLAS_COMPUTE_32F, i.e. true fp32 FFMA, TF32 off. This is the verification mode:
 *     it must reproduce the CPU within fp32 rounding (tests/test_ops_gpu checks an NMSE bound that TF32's
 *     ~1e-7 error would fail).
 *   bf16 (matmul_lt_bf16, used by linear_bf16w.cu): bf16 A and B, fp32 C/D, fp32 accumulation.
 * A musae_lt holds the handle, a 32 MiB workspace and a cache of plans (descriptors + the heuristic's
 * algorithm) keyed by shape, leading dimensions and pointer alignment, so repeated shapes (every decode step)
 * cost no heuristic query. Not thread-safe: one musae_lt per host thread. */
#ifndef MUSAE_MATMUL_CUH
#define MUSAE_MATMUL_CUH

#include <cuda_runtime.h>
#include <library_types.h>
#include <stdint.h>

typedef struct musae_lt musae_lt;

musae_lt *matmul_lt_create(void);
void matmul_lt_destroy(musae_lt *lt);

/* C[M,N] = alpha * op(A) op(B) + beta * C, row-major, BLAS leading dimensions; ab_type is CUDA_R_32F or
 * CUDA_R_16BF (A and B the same type), C is always fp32. k = 0 scales C by beta (0 writes zeros). */
void matmul_lt(musae_lt *lt, cudaDataType_t ab_type, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
               float alpha, const void *a, int64_t lda, const void *b, int64_t ldb, float beta, float *c, int64_t ldc,
               cudaStream_t stream);

/* ops.h gemm and linear in fp32 (bias added by a separate pass, in the CPU's order: y = x·wᵀ + beta·y, then
 * y += bias). */
void gemm_cuda(musae_lt *lt, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc, cudaStream_t stream);
void linear_cuda(musae_lt *lt, float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n,
                 int64_t k, float beta, cudaStream_t stream);

#endif /* MUSAE_MATMUL_CUH */
