/* LayerNorm over the last dim (biased variance, fp32 statistics), plain and fused with the residual add.
 * Dispatch by shape: fewer than 512 rows -> one 256-thread block per row (decode: few rows, long dims);
 * otherwise one warp per row, 8 rows per block. tests/test_ops_gpu covers both. */
#ifndef MUSAE_LAYERNORM_CUH
#define MUSAE_LAYERNORM_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* out[r,:] = (x[r,:] - mean) / sqrt(var + eps) * w + b   (b may be NULL; out may alias x) */
void layernorm_cuda(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps,
                    cudaStream_t stream);
/* x[r,:] += res[r,:] (written back), then out[r,:] = layernorm(x[r,:]); out must not alias x or res. */
void add_layernorm_cuda(float *x, const float *res, float *out, const float *w, const float *b, int64_t rows,
                        int64_t dim, float eps, cudaStream_t stream);

/* Rows below which the block-per-row kernel runs (exported for the op test's case list). */
#define LAYERNORM_BLOCK_ROWS 512

#endif /* MUSAE_LAYERNORM_CUH */
