/* ConvTranspose1d, polyphase (kernels/ops.h musae_convt1d_params), fp32: out = bias, then for each output
 * phase r and tap m one cuBLASLt GEMM over the input rows that reach it, written into every stride-th output
 * row (ldc = stride·c_out) -- the scheme of kernels/cpu/conv_transpose1d.c, no col2im buffer. */
#ifndef MUSAE_CONV_TRANSPOSE1D_CUH
#define MUSAE_CONV_TRANSPOSE1D_CUH

#include <cuda_runtime.h>

#include "kernels/cuda/matmul.cuh"
#include "kernels/ops.h"

void conv_transpose1d_cuda(musae_lt *lt, float *out, const float *x, const float *w, const float *bias,
                           const musae_convt1d_params *p, cudaStream_t stream);

#endif /* MUSAE_CONV_TRANSPOSE1D_CUH */
