/* Uniform [0,1) floats from Philox on the GPU, identical to the CPU's musae_philox + musae_u32_to_unit:
 * element i of stream s takes word i % 4 of block (seed, s, i / 4). */
#ifndef MUSAE_PHILOX_FILL_CUH
#define MUSAE_PHILOX_FILL_CUH

#include <cuda_runtime.h>
#include <stdint.h>

void philox_uniform_fill(float *out, int64_t n, uint64_t seed, uint64_t stream, cudaStream_t cs);

#endif /* MUSAE_PHILOX_FILL_CUH */
