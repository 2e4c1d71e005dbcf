/* One nn.LSTM layer on the GPU (kernels/ops.h lstm): the input projection of all t steps is one cuBLASLt
 * GEMM into `work` (plus b_ih + b_hh), then one kernel per step computes W_hh·h and the cell update.
 * Step s reads h from out[s-1] (the caller's h for s = 0) and writes out[s], so no step overwrites what
 * another warp of the same step still reads; c[j] is touched by one warp only. */
#ifndef MUSAE_LSTM_CUH
#define MUSAE_LSTM_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/matmul.cuh"

void lstm_cuda(musae_lt *lt, float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
               const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work,
               cudaStream_t stream);

#endif /* MUSAE_LSTM_CUH */
