/* The CUDA op test's pieces shared by its driver (tests/test_ops_gpu.cu, which defines them) and its perf mode
 * (test_ops_gpu_perf.cu). */
#ifndef MUSAE_TEST_OPS_GPU_H
#define MUSAE_TEST_OPS_GPU_H

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "kernels/ops.h"

extern const musae_ops *G; /* the table under test */

/* Whether -o selects op (every op without -o). */
bool want(const char *op);
/* n floats uniform in [lo, hi) from the driver's Philox draws. */
std::vector<float> rnd(int64_t n, float lo, float hi);
/* A device buffer of `bytes` payload + the guard bytes. Payload = init, or 0xFF (NaN) poison if NULL. */
void *dnew(const void *init, size_t bytes);
template <class T> static T *dnew_v(const std::vector<T> &v) { return (T *)dnew(v.data(), v.size() * sizeof(T)); }
/* v rounded to bf16 by the CPU table. */
std::vector<uint16_t> to_bf16(const std::vector<float> &v);

/* test_ops_gpu perf [-o op] (test_ops_gpu_perf.cu): cold-L2 timings of G's ops at MusicGen's shapes. */
void run_perf(void);

#endif /* MUSAE_TEST_OPS_GPU_H */
