/* Elementwise ops of the CUDA table (kernels/ops.h): exact-erf GELU, tanh GELU, ReLU, ELU, tanh, add, mul, and
 * add_rows (one vector into many rows). Each launcher takes a stream, checks its preconditions always, and
 * checks the launch. `out` may alias an input (same index in, same index out).
 * Dispatch: when every pointer is 16-byte aligned the float4 kernel runs (with the n % 4 tail done by the
 * first threads of the same launch); otherwise the scalar kernel. tests/test_ops_gpu forces both by
 * offsetting the pointers by one float. */
#ifndef MUSAE_ELEMENTWISE_CUH
#define MUSAE_ELEMENTWISE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

void gelu_cuda(float *out, const float *x, int64_t n, cudaStream_t stream);
void gelu_tanh_cuda(float *out, const float *x, int64_t n, cudaStream_t stream);
void relu_cuda(float *out, const float *x, int64_t n, cudaStream_t stream);
void elu_cuda(float *out, const float *x, int64_t n, cudaStream_t stream);
void tanh_cuda(float *out, const float *x, int64_t n, cudaStream_t stream);
void add_cuda(float *out, const float *a, const float *b, int64_t n, cudaStream_t stream);
void mul_cuda(float *out, const float *a, const float *b, int64_t n, cudaStream_t stream);
/* x[r,:] += alpha * v[:] for r < rows; the product is rounded before the add (no FMA), as on the CPU. */
void add_rows_cuda(float *x, const float *v, float alpha, int64_t rows, int64_t dim, cudaStream_t stream);
/* x[i] *= beta (beta == 0 writes 0 without reading x, as BLAS does for C): gemm with k = 0. */
void scale_cuda(float *x, float beta, int64_t n, cudaStream_t stream);

#endif /* MUSAE_ELEMENTWISE_CUH */
