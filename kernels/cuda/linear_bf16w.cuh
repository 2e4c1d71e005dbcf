/* nn.Linear with bf16 weights: y[M,N] (fp32) = x[M,K] (fp32) · w[N,K]ᵀ (bf16) + bias[N] (+ beta·y), fp32
 * accumulation. Dispatch by shape:
 *   m <= LINEAR_BF16W_GEMV_MAX_M (decode: batch × CFG rows): a weight-streaming GEMV kernel that reads each
 *     bf16 weight once with 16-byte loads and keeps x in fp32 (so it is more accurate than the bf16 GEMM);
 *     16-byte path when k % 8 == 0 and w, x are 16-byte aligned, else a scalar path.
 *   larger m (prefill, teacher forcing): x is rounded to bf16 into `scratch` (m·k·2 bytes) and cuBLASLt runs
 *     a bf16 × bf16 -> fp32 GEMM with fp32 accumulation.
 * tests/test_ops_gpu runs all three branches against the CPU reference by the FlashAttention rule. */
#ifndef MUSAE_LINEAR_BF16W_CUH
#define MUSAE_LINEAR_BF16W_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/matmul.cuh"

#define LINEAR_BF16W_GEMV_MAX_M 8

/* Bytes of scratch linear_bf16w_cuda needs for these dims (0 on the GEMV path). */
size_t linear_bf16w_scratch_bytes(int64_t m, int64_t k);

void linear_bf16w_cuda(musae_lt *lt, float *y, const float *x, const uint16_t *w, const float *bias, int64_t m,
                       int64_t n, int64_t k, float beta, void *scratch, size_t scratch_bytes, cudaStream_t stream);

#endif /* MUSAE_LINEAR_BF16W_CUH */
