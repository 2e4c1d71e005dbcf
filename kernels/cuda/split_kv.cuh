/* Split-KV ("flash-decoding") attention for one query per (row, head), shared by attention.cu's decode path
 * and the decode step's attention (step_attention.cu), which differ only in where the key count comes from and
 * in masking. Phase 1: warp u of a head owns a contiguous key range, computes 8 dot products at a time (lane
 * owns dims lane + 32c; every lane ends with every score, so control flow is warp-uniform), and folds them into
 * a running (m, l, o) online softmax. It writes the unnormalized partial o[0..D), m, l. Phase 2 merges a head's
 * partials: out = Σ w_u o_u / Σ w_u l_u with w_u = exp(m_u - max m). An empty unit writes m = -inf, l = 0, o = 0
 * and gets weight exactly 0. Numerics: fp32 scores, expf (not __expf), fp32 accumulators. */
#ifndef MUSAE_SPLIT_KV_CUH
#define MUSAE_SPLIT_KV_CUH

#include <math.h>
#include <stdint.h>

#include "kernels/cuda/cuda_utils.cuh"

#define SKV_WARPS 4       /* warps (= key units) per block of phase 1 */
#define SKV_G 8           /* keys in flight per warp step */
#define SKV_MAX_UNITS 1024
#define SKV_MIN_KEYS 32   /* automatic splitting keeps at least this many keys per unit */

/* The warp's start: qv = this lane's dims of the query row qr (0 past D), the accumulator o = 0. */
template <int C>
static __device__ __forceinline__ void skv_start(float (&qv)[C], float (&o)[C], const float *qr, int64_t D, int lane) {
#pragma unroll
    for (int c = 0; c < C; c++) {
        const int d = lane + WARP_SIZE * c;
        qv[c] = d < D ? qr[d] : 0.0f;
        o[c] = 0.0f;
    }
}

/* s[g] = <q, k_{jb+g}> for the keys jb + g < j1 (0 past them), reduced across the warp. Rows of kb are k_st
 * floats apart. The 8 row loads are independent, so they are in flight together. */
template <int C>
static __device__ __forceinline__ void skv_scores(float (&s)[SKV_G], const float (&qv)[C], const float *kb, int64_t jb,
                                                  int64_t j1, int64_t k_st, int64_t D, int lane) {
#pragma unroll
    for (int g = 0; g < SKV_G; g++) {
        const int64_t j = jb + g;
        float p = 0.0f;
        if (j < j1) {
            const float *kr = kb + j * k_st;
#pragma unroll
            for (int c = 0; c < C; c++) {
                const int d = lane + WARP_SIZE * c;
                if (d < D) p = fmaf(qv[c], kr[d], p);
            }
        }
        s[g] = p;
    }
#pragma unroll
    for (int g = 0; g < SKV_G; g++) s[g] = warp_sum(s[g]);
}

/* Folds the final scores s[] of keys jb.. (scaled and masked; -INFINITY for keys past the range) into the
 * running (m, l, o) and streams their value rows. A key whose weight is exactly 0 never touches v, and a
 * rescale by exactly 0 resets o instead of multiplying it, so non-finite values in masked V rows stay out of
 * the output (as the CPU skips zero weights; attention.cu's header comment). */
template <int C>
static __device__ __forceinline__ void skv_fold(float (&s)[SKV_G], float &m, float &l, float (&o)[C], const float *vb,
                                                int64_t jb, int64_t v_st, int64_t D, int lane) {
    float mc = -INFINITY;
#pragma unroll
    for (int g = 0; g < SKV_G; g++) mc = fmaxf(mc, s[g]);
    const float m_new = fmaxf(m, mc); // finite: key jb is in range
    const float corr = expf(m - m_new);
    float psum = 0.0f;
#pragma unroll
    for (int g = 0; g < SKV_G; g++) {
        s[g] = expf(s[g] - m_new);
        psum += s[g];
    }
    l = l * corr + psum;
#pragma unroll
    for (int c = 0; c < C; c++) o[c] = corr == 0.0f ? 0.0f : o[c] * corr;
#pragma unroll
    for (int g = 0; g < SKV_G; g++) {
        if (s[g] != 0.0f) { // warp-uniform: every lane holds every score
            const float *vr = vb + (jb + g) * v_st;
#pragma unroll
            for (int c = 0; c < C; c++) {
                const int d = lane + WARP_SIZE * c;
                if (d < D) o[c] = fmaf(s[g], vr[d], o[c]);
            }
        }
    }
    m = m_new;
}

/* The partial of one unit: pp[0..D) = o, pp[D] = m, pp[D + 1] = l. */
template <int C>
static __device__ __forceinline__ void skv_write_partial(float *pp, const float (&o)[C], float m, float l, int64_t D,
                                                         int lane) {
#pragma unroll
    for (int c = 0; c < C; c++) {
        const int d = lane + WARP_SIZE * c;
        if (d < D) pp[d] = o[c];
    }
    if (lane == 0) {
        pp[D] = m;
        pp[D + 1] = l;
    }
}

/* Phase 2, the body of a kernel of one block per (h, b): merges the `units` partials of head h of row b,
 * part[((b·H + h)·units + u)·(D + 2)], into out[b·o_sb + h·D + d]. A unit with weight 0 is skipped. The kernel
 * declares the shared memory (w: SKV_MAX_UNITS floats, scratch: 32), so that tools/cuda_emu, which rewrites
 * __shared__ declarations in .cu files only, sees them. */
static __device__ __forceinline__ void skv_combine(float *out, const float *__restrict__ part, int64_t H, int64_t D,
                                                   int64_t o_sb, int units, float *w, float *scratch) {
    const int t = threadIdx.x;
    const int64_t h = blockIdx.x, b = blockIdx.y, stride = D + 2;
    const float *pp = part + (b * H + h) * units * stride;

    float mx = -INFINITY;
    for (int u = t; u < units; u += blockDim.x) mx = fmaxf(mx, pp[u * stride + D]);
    mx = block_max(mx, scratch);
    float lsum = 0.0f;
    for (int u = t; u < units; u += blockDim.x) {
        const float mu = pp[u * stride + D];
        const float wu = mu == -INFINITY ? 0.0f : expf(mu - mx);
        w[u] = wu;
        lsum += wu * pp[u * stride + D + 1];
    }
    lsum = block_sum(lsum, scratch); // its barriers also publish w[] to the whole block
    const float inv = 1.0f / lsum;
    float *ob = out + b * o_sb + h * D;
    for (int d = t; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int u = 0; u < units; u++)
            if (w[u] != 0.0f) acc = fmaf(w[u], pp[u * stride + d], acc);
        ob[d] = acc * inv;
    }
}

/* Units per head: enough warps to fill the GPU (~16 per SM) without going under SKV_MIN_KEYS keys per unit,
 * a multiple of SKV_WARPS, at most SKV_MAX_UNITS. */
static inline int skv_units(int64_t rows_heads, int64_t keys, int sm_count) {
    const int64_t heads = rows_heads > 0 ? rows_heads : 1;
    const int64_t fill = CEIL_DIV((int64_t)(sm_count > 0 ? sm_count : 1) * 16, heads);
    const int64_t by_keys = CEIL_DIV(keys, (int64_t)SKV_MIN_KEYS);
    int64_t units = fill < by_keys ? fill : by_keys;
    if (units < 1) units = 1;
    units = CEIL_DIV(units, (int64_t)SKV_WARPS) * SKV_WARPS;
    return (int)(units > SKV_MAX_UNITS ? SKV_MAX_UNITS : units);
}

#endif /* MUSAE_SPLIT_KV_CUH */
