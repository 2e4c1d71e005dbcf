/* T5LayerNorm (RMS norm: scale only, no mean, no bias), fp32 statistics. Same dispatch as layernorm:
 * fewer than 512 rows -> block per row, else warp per row. */
#ifndef MUSAE_RMSNORM_CUH
#define MUSAE_RMSNORM_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* out[r,:] = w * (x[r,:] / sqrt(mean(x²) + eps))   (out may alias x) */
void rmsnorm_cuda(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps,
                  cudaStream_t stream);

#define RMSNORM_BLOCK_ROWS 512

#endif /* MUSAE_RMSNORM_CUH */
