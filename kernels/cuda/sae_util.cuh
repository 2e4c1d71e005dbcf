/* Device helpers shared by the SAE kernels (kernels/cuda/sae_*.cu): scratch carving, 8-wide loads of fp32 or
 * bf16 rows, fixed-order warp/block reductions, and the launch shape of the row-per-block kernels.
 * Everything here is static or inline: each .cu gets its own copy, nothing is exported. */
#ifndef MUSAE_SAE_UTIL_CUH
#define MUSAE_SAE_UTIL_CUH

#include <stdint.h>

#include "host/core/dtype.h"
#include "kernels/cuda/cuda_common.cuh"

// ---- scratch: one bump allocator used twice, once with base NULL to size, once to carve --------------------
typedef struct {
    char *base;
    size_t used;
} sae_carver;

static inline void *sae_carve(sae_carver *c, size_t bytes) {
    size_t at = (c->used + 255) & ~(size_t)255;
    c->used = at + bytes;
    return c->base ? (void *)(c->base + at) : NULL;
}
#define SAE_CARVE(c, T, n) ((T *)sae_carve((c), sizeof(T) * (size_t)(n)))

static inline int sae_aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static inline int sae_pow2ceil(int x) {
    int p = 1;
    while (p < x) p <<= 1;
    return p;
}

// ---- loads: 8 consecutive elements as floats ---------------------------------------------------------------
// AL: the 8 elements start 16-byte aligned and are all in range (callers guarantee d % 8 == 0 and aligned
// bases); otherwise element-wise with a bound (n_left may be < 8; missing elements read as 0).
template <bool AL>
static __device__ __forceinline__ void sae_load8(const float *p, int64_t n_left, float out[8]) {
    if (AL) {
        float4 a = __ldg(reinterpret_cast<const float4 *>(p)), b = __ldg(reinterpret_cast<const float4 *>(p) + 1);
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w, out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) out[j] = j < n_left ? __ldg(p + j) : 0.0f;
    }
}
template <bool AL>
static __device__ __forceinline__ void sae_load8(const uint16_t *p, int64_t n_left, float out[8]) {
    if (AL) {
        uint4 u = __ldg(reinterpret_cast<const uint4 *>(p));
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            out[2 * j] = __uint_as_float(w[j] << 16);
            out[2 * j + 1] = __uint_as_float(w[j] & 0xffff0000u);
        }
    } else {
#pragma unroll
        for (int j = 0; j < 8; j++) out[j] = j < n_left ? musae_bf16_to_f32(__ldg(p + j)) : 0.0f;
    }
}

// ---- fixed-order reductions ----------------------------------------------------------------------------------
// The xor butterfly gives every lane the same bits (each level adds the same two partial sums, and fp addition
// is commutative), so the result depends only on the inputs, never on timing.
template <typename T>
static __device__ __forceinline__ T sae_warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Block sum returned to every thread. blockDim.x a multiple of 32, <= 1024; `red` holds 33 T in shared memory.
// Two barriers: the second keeps a following call from overwriting red[] before everyone has read the result.
template <typename T>
static __device__ __forceinline__ T sae_block_sum(T v, T *red) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = sae_warp_sum(v);
    if (lane == 0) red[warp] = v;
    __syncthreads();
    if (warp == 0) {
        T s = lane < nw ? red[lane] : (T)0;
        s = sae_warp_sum(s);
        if (lane == 0) red[32] = s;
    }
    __syncthreads();
    T r = red[32];
    __syncthreads();
    return r;
}

// ---- row-per-block launch shape: thread t owns columns [8t, 8t+8) (+ 8·blockDim·v for v < nv) ----------------
typedef struct {
    int threads, nv; // nv: 8-wide column vectors per thread (1 or 2)
} sae_row_shape;

static inline sae_row_shape sae_row_shape_for(int64_t d) {
    MUSAE_ASSERT(d >= 1 && d <= 8192, "d = %lld: the row kernels take 1..8192 columns", (long long)d);
    sae_row_shape s;
    s.nv = d > 2048 ? 2 : 1;
    int64_t t = (d + 8 * s.nv - 1) / (8 * s.nv);
    t = (t + 31) / 32 * 32;
    s.threads = (int)(t < 32 ? 32 : t);
    return s;
}

#endif /* MUSAE_SAE_UTIL_CUH */
