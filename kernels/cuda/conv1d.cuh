/* Conv1d over time-major activations (kernels/ops.h musae_conv1d_params), fp32. Dispatch by shape:
 *   c_in·k <= CONV1D_DIRECT_MAX_CK (EnCodec's first conv, c_in 1): a direct kernel, one thread per output;
 *   otherwise the padded input is materialized in scratch and the taps are taken in groups of
 *   g = min(stride, k) (dilation 1; one tap per group otherwise), each group one cuBLASLt GEMM over a strided
 *   view of the padded rows (lda = stride·c_in) accumulating into out -- the CPU's scheme, without im2col. */
#ifndef MUSAE_CONV1D_CUH
#define MUSAE_CONV1D_CUH

#include <cuda_runtime.h>
#include <stddef.h>

#include "kernels/cuda/matmul.cuh"
#include "kernels/ops.h"

#define CONV1D_DIRECT_MAX_CK 32

size_t conv1d_scratch_bytes(const musae_conv1d_params *p);
void conv1d_cuda(musae_lt *lt, float *out, const float *x, const float *w, const float *bias,
                 const musae_conv1d_params *p, void *scratch, size_t scratch_bytes, cudaStream_t stream);

#endif /* MUSAE_CONV1D_CUH */
