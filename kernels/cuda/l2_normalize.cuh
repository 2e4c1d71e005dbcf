/* F.normalize(x, dim=-1) by rows, fp32 sum of squares; one block per row (CLAP embeds a handful of rows). */
#ifndef MUSAE_L2_NORMALIZE_CUH
#define MUSAE_L2_NORMALIZE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

/* out[r,:] = x[r,:] / max(‖x[r,:]‖₂, 1e-12)   (out may alias x) */
void l2_normalize_cuda(float *out, const float *x, int64_t rows, int64_t dim, cudaStream_t stream);

#endif /* MUSAE_L2_NORMALIZE_CUH */
