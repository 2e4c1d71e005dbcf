/* Device helpers shared by the hand-written kernels in kernels/cuda/: warp and block reductions, alignment
 * tests for the vectorized paths. Header-only; every function is static inline so each .cu gets its own copy
 * (the library is built without separable compilation). */
#ifndef MUSAE_CUDA_UTILS_CUH
#define MUSAE_CUDA_UTILS_CUH

#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_common.cuh"

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

// Butterfly reductions: every lane ends with the result (all 32 lanes must be active).
static __device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}
static __device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 floats of shared memory. The leading __syncthreads lets callers reuse one scratch array
// for consecutive reductions: without it a fast warp could overwrite scratch[w] while a slow warp still
// reads the previous result out of it.
static __device__ __forceinline__ float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, nwarps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : 0.0f;
    return warp_sum(v);
}
static __device__ __forceinline__ float block_max(float v, float *scratch) {
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, nwarps = blockDim.x / WARP_SIZE;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < nwarps ? scratch[lane] : -INFINITY;
    return warp_max(v);
}

// True when p is 16-byte aligned (float4 / 8×bf16 loads allowed).
static inline bool is_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// Grid size for grid-stride loops: enough blocks to cover n work items, capped so that huge n does not make
// a grid the hardware would reject (x dimension < 2^31) and so that each thread does a few iterations.
static inline unsigned grid_for(int64_t n, int block) {
    int64_t g = CEIL_DIV(n, (int64_t)block);
    if (g < 1) g = 1;
    if (g > 65535LL * 16) g = 65535LL * 16;
    return (unsigned)g;
}

#endif /* MUSAE_CUDA_UTILS_CUH */
