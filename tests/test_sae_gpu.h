/* The GPU SAE op test's harness, shared by its driver (tests/test_sae_gpu.cu, which defines it) and its part
 * test_sae_gpu_step.cu: the results table, device buffers with poison and guard bytes, Philox inputs, the
 * comparisons and tolerance rules (the driver's header), codes on both sides. */
#ifndef MUSAE_TEST_SAE_GPU_H
#define MUSAE_TEST_SAE_GPU_H

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/sae_ops.h"

/* One row of the table printed at the end; CHECKs ok (counted by the driver). */
void report(const char *kernel, const char *shape, const char *rule, double max_abs, double nmse, double tol,
            long long bad, int ok);

/* A device buffer of `bytes`, poisoned (0xff) and followed by guard bytes; dfree_all checks every live buffer's
 * guard (a CHECK under `what`), frees them all and returns the number of damaged guard bytes. */
void *dmalloc(size_t bytes);
int dfree_all(const char *what);
template <typename T>
static T *dnew(int64_t n) {
    return (T *)dmalloc(sizeof(T) * (size_t)(n > 0 ? n : 1));
}
template <typename T>
static T *dup(const T *h, int64_t n) {
    T *d = dnew<T>(n);
    if (n > 0) CUDA_CHECK(cudaMemcpy(d, h, sizeof(T) * (size_t)n, cudaMemcpyHostToDevice));
    return d;
}
template <typename T>
static void down(T *h, const T *d, int64_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    if (n > 0) CUDA_CHECK(cudaMemcpy(h, d, sizeof(T) * (size_t)n, cudaMemcpyDeviceToHost));
}

/* Host data: scale·U(-1, 1) from Philox stream `stream`; bf16 bits and bf16-rounded floats of x. */
void fill(float *x, int64_t n, uint64_t stream, float scale);
std::vector<uint16_t> to_bf16(const float *x, int64_t n);
std::vector<float> round_bf16(const float *x, int64_t n);

/* Comparisons: max |a − b| (INFINITY on NaN), max |a|, NMSE against ref, 4-byte words that differ, and the order
 * rule's bound 16·(n·u)² for a reduction of length n. */
double max_abs_diff(const float *a, const float *b, int64_t n);
double max_abs(const float *a, int64_t n);
double nmse(const float *a, const float *ref, int64_t n);
long long word_mismatch(const void *a, const void *b, int64_t words);
double order_tol(double n);

/* Codes on the host (calloc) and on the device (dnew), a host copy uploaded with capacity cap, and codes from the
 * CPU encoder on random data (AuxK codes over `dead` when given; hot: two latents fire on every row). */
sae_codes hcodes(int64_t rows, int64_t cap);
void hcodes_free(sae_codes *c);
sae_codes dcodes(int64_t rows, int64_t cap);
sae_codes dcodes_up(const sae_codes *h, int64_t cap);
sae_codes make_codes(int64_t N, int64_t d, int64_t M, int k, uint64_t seed, const uint8_t *dead, int hot);
/* "N.. d.. M.. k.. a.." for the table. */
void shape_str(char *s, size_t n, int64_t N, int64_t d, int64_t M, int k, int ka);

/* The part (test_sae_gpu_step.cu): backward, the optimizers, the centring, a whole step twice. */
void test_backward(int64_t N, int64_t d, int64_t M, int k, int k_aux, musae_dtype act_t, int hot);
void test_adam(int64_t n, int offset);
void test_adam_decoder(int64_t M, int64_t d);
void test_center(int64_t N, int64_t d);
void test_determinism(cublasHandle_t blas, int64_t N, int64_t d, int64_t M, int k, int k_aux);

#endif /* MUSAE_TEST_SAE_GPU_H */
