/* Attention kernels: tiled prefill with online softmax, split-KV decode with a combine step.
 *
 * Masking, exactly as kernels/cpu/attention.c: score = scale·<q,k> + bias; a key hidden by the causal rule
 * (j > i + q_pos0) or by key_mask gets -FLT_MAX added (for any |score| < 2^103 the sum rounds to -FLT_MAX
 * itself). The online softmax needs no special cases for that: a row that has seen only masked keys has
 * max = -FLT_MAX and sums them with weight exp(0) = 1 (the uniform row of a fully masked query), and the
 * first unmasked key rescales that state by exp(-FLT_MAX - max) = 0, discarding it. Keys past the end of the
 * processed range get -INFINITY, weight exactly 0. As on the CPU, a key whose weight is exactly 0 never
 * touches v, so non-finite values in masked V rows stay out of the output; for the same reason a rescale by
 * exactly 0 (a run of masked keys followed by a real one) resets the accumulator instead of multiplying it.
 *
 * Numerics: fp32 scores, expf (not __expf), fp32 accumulators; the result is normalized by 1/l at the end.
 * The CPU normalizes each weight before the PV sum, so the two differ by rounding only. */
#include <float.h>

#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/cuda_utils.cuh"
#include "kernels/cuda/split_kv.cuh"

#define ATT_BQ 64     /* prefill: queries per block = threads per block */
#define ATT_BK 32     /* prefill: keys per shared-memory tile */
#define ATT_CH 16     /* prefill: keys per online-softmax step (scores held in registers) */

static_assert(ATT_BK % ATT_CH == 0, "a key tile must hold whole softmax chunks");
static_assert(ATT_BQ >= ATT_BK, "the key-mask flags of a tile are loaded one per thread");

typedef struct {
    int64_t B, H, TQ, TK, D;
    int64_t q_sb, q_st, k_sb, k_st, v_sb, v_st, o_sb, o_st;
    float scale;
    int causal;
    int64_t q_pos0;
    const float *bias;
    int64_t bias_tk;
    const float *key_mask;
} attn_args;

// ---- CUDA kernels

/* Prefill. Block (qt, h, b) owns queries i0 .. i0+63 of head h, batch b; thread t owns query i0 + t.
 * Shared memory (dynamic): Qs [BQ][DMAX+4] (each thread's own query row; the +4 pad puts the 8 threads of a
 * 16-byte access phase on distinct banks), Ks and Vs [BK][DMAX] (read as broadcasts: all threads read the
 * same key at the same time), Mk [BK] (1 where key_mask hides the key). Dims d >= D and keys past the
 * processed range are zero-filled, so padded lanes contribute exactly 0 and never read garbage. */
template <int DMAX>
static __global__ void __launch_bounds__(ATT_BQ)
    attention_prefill_kernel(float *out, const float *__restrict__ q, const float *__restrict__ k,
                             const float *__restrict__ v, attn_args a) {
    constexpr int QS = DMAX + 4;
    extern __shared__ float4 smem4[];
    float *Qs = reinterpret_cast<float *>(smem4);
    float *Ks = Qs + ATT_BQ * QS;
    float *Vs = Ks + ATT_BK * DMAX;
    float *Mk = Vs + ATT_BK * DMAX;

    const int t = threadIdx.x;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t i0 = (int64_t)blockIdx.x * ATT_BQ, i = i0 + t;
    const float *qb = q + b * a.q_sb + h * a.D;
    const float *kb = k + b * a.k_sb + h * a.D;
    const float *vb = v + b * a.v_sb + h * a.D;

    for (int idx = t; idx < ATT_BQ * DMAX; idx += ATT_BQ) { // coalesced along d
        const int r = idx / DMAX, d = idx % DMAX;
        const int64_t ii = i0 + r;
        Qs[r * QS + d] = (ii < a.TQ && d < a.D) ? qb[ii * a.q_st + d] : 0.0f;
    }

    // Keys this block must visit. Causal without a key mask: every row sees key 0, so no row is fully
    // masked, and keys past the last row's horizon get weight exactly 0 in every row: skip them.
    int64_t k_end = a.TK;
    if (a.causal && !a.key_mask) {
        const int64_t i_last = (i0 + ATT_BQ < a.TQ ? i0 + ATT_BQ : a.TQ) - 1;
        const int64_t horizon = i_last + a.q_pos0 + 1;
        if (horizon < k_end) k_end = horizon;
    }

    const bool row_live = i < a.TQ;
    const float *brow = (a.bias && row_live) ? a.bias + (h * a.TQ + i) * a.bias_tk : nullptr;
    const int64_t last_visible = i + a.q_pos0;
    float o[DMAX];
#pragma unroll
    for (int d = 0; d < DMAX; d++) o[d] = 0.0f;
    float m = -INFINITY, l = 0.0f;

    for (int64_t kt0 = 0; kt0 < k_end; kt0 += ATT_BK) {
        __syncthreads(); // every thread is done with the previous tile (and, first time round, Qs is written)
        for (int idx = t; idx < ATT_BK * DMAX; idx += ATT_BQ) {
            const int r = idx / DMAX, d = idx % DMAX;
            const int64_t j = kt0 + r;
            const bool ok = j < k_end && d < a.D;
            Ks[r * DMAX + d] = ok ? kb[j * a.k_st + d] : 0.0f;
            Vs[r * DMAX + d] = ok ? vb[j * a.v_st + d] : 0.0f;
        }
        if (t < ATT_BK) {
            const int64_t j = kt0 + t;
            Mk[t] = (a.key_mask && j < k_end && a.key_mask[b * a.TK + j] == 0.0f) ? 1.0f : 0.0f;
        }
        __syncthreads();

        const int n_valid = (int)(k_end - kt0 < ATT_BK ? k_end - kt0 : ATT_BK);
        for (int c0 = 0; c0 < n_valid; c0 += ATT_CH) {
            float s[ATT_CH];
#pragma unroll
            for (int jj = 0; jj < ATT_CH; jj++) s[jj] = 0.0f;
#pragma unroll
            for (int d = 0; d < DMAX; d += 4) {
                const float4 q4 = *reinterpret_cast<const float4 *>(&Qs[t * QS + d]);
#pragma unroll
                for (int jj = 0; jj < ATT_CH; jj++) {
                    const float4 k4 = *reinterpret_cast<const float4 *>(&Ks[(c0 + jj) * DMAX + d]);
                    s[jj] = fmaf(q4.x, k4.x, s[jj]);
                    s[jj] = fmaf(q4.y, k4.y, s[jj]);
                    s[jj] = fmaf(q4.z, k4.z, s[jj]);
                    s[jj] = fmaf(q4.w, k4.w, s[jj]);
                }
            }
            float mc = -INFINITY;
#pragma unroll
            for (int jj = 0; jj < ATT_CH; jj++) {
                const int64_t j = kt0 + c0 + jj;
                float sc = -INFINITY;
                if (c0 + jj < n_valid) {
                    sc = s[jj] * a.scale;
                    if (brow) sc += brow[j];
                    if ((a.causal && j > last_visible) || Mk[c0 + jj] != 0.0f) sc += -FLT_MAX;
                }
                s[jj] = sc;
                mc = fmaxf(mc, sc);
            }
            const float m_new = fmaxf(m, mc); // finite: chunk c0 holds at least one key in range
            const float corr = expf(m - m_new);
            float psum = 0.0f;
#pragma unroll
            for (int jj = 0; jj < ATT_CH; jj++) {
                s[jj] = expf(s[jj] - m_new);
                psum += s[jj];
            }
            l = l * corr + psum;
            // corr == 0: everything seen so far had weight 0 next to this chunk (a masked prefix). Reset
            // rather than multiply, so NaN from masked V rows does not survive as NaN·0 (the CPU skips them).
#pragma unroll
            for (int d = 0; d < DMAX; d++) o[d] = corr == 0.0f ? 0.0f : o[d] * corr;
#pragma unroll
            for (int jj = 0; jj < ATT_CH; jj++) {
                const float p = s[jj];
                if (p != 0.0f) {
#pragma unroll
                    for (int d = 0; d < DMAX; d += 4) {
                        const float4 v4 = *reinterpret_cast<const float4 *>(&Vs[(c0 + jj) * DMAX + d]);
                        o[d] = fmaf(p, v4.x, o[d]);
                        o[d + 1] = fmaf(p, v4.y, o[d + 1]);
                        o[d + 2] = fmaf(p, v4.z, o[d + 2]);
                        o[d + 3] = fmaf(p, v4.w, o[d + 3]);
                    }
                }
            }
            m = m_new;
        }
    }

    // Stage the normalized rows through Qs (each thread overwrites only its own row, which no other thread
    // reads), then store coalesced along d.
    const float inv = 1.0f / l;
#pragma unroll
    for (int d = 0; d < DMAX; d += 4)
        *reinterpret_cast<float4 *>(&Qs[t * QS + d]) =
            make_float4(o[d] * inv, o[d + 1] * inv, o[d + 2] * inv, o[d + 3] * inv);
    __syncthreads();
    float *ob = out + b * a.o_sb + h * a.D;
    for (int idx = t; idx < ATT_BQ * DMAX; idx += ATT_BQ) {
        const int r = idx / DMAX, d = idx % DMAX;
        const int64_t ii = i0 + r;
        if (ii < a.TQ && d < a.D) ob[ii * a.o_st + d] = Qs[r * QS + d];
    }
}

/* Decode, phase 1 (split_kv.cuh). Block (x, h, b), warp w is key unit u = x·4 + w of head h, batch b, owning
 * keys [u·kpu, min(k_len, (u+1)·kpu)); bias, causal rule and key mask as the prefill kernel. */
template <int DMAX>
static __global__ void __launch_bounds__(SKV_WARPS * WARP_SIZE)
    attention_decode_split_kernel(float *__restrict__ part, const float *__restrict__ q, const float *__restrict__ k,
                                  const float *__restrict__ v, attn_args a, int64_t k_len, int64_t kpu) {
    constexpr int C = DMAX / WARP_SIZE;
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int64_t h = blockIdx.y, b = blockIdx.z;
    const int64_t units = (int64_t)gridDim.x * SKV_WARPS, u = (int64_t)blockIdx.x * SKV_WARPS + warp;
    const int64_t j0 = u * kpu, j1 = (j0 + kpu < k_len ? j0 + kpu : k_len);
    const float *kb = k + b * a.k_sb + h * a.D;
    const float *vb = v + b * a.v_sb + h * a.D;
    const float *brow = a.bias ? a.bias + h * a.TQ * a.bias_tk : nullptr; /* query row 0 of head h */

    float qv[C], o[C];
    skv_start<C>(qv, o, q + b * a.q_sb + h * a.D, a.D, lane);
    float m = -INFINITY, l = 0.0f;
    for (int64_t jb = j0; jb < j1; jb += SKV_G) {
        float s[SKV_G];
        skv_scores<C>(s, qv, kb, jb, j1, a.k_st, a.D, lane);
#pragma unroll
        for (int g = 0; g < SKV_G; g++) {
            const int64_t j = jb + g;
            float sc = -INFINITY;
            if (j < j1) {
                sc = s[g] * a.scale;
                if (brow) sc += brow[j];
                if ((a.causal && j > a.q_pos0) || (a.key_mask && a.key_mask[b * a.TK + j] == 0.0f)) sc += -FLT_MAX;
            }
            s[g] = sc;
        }
        skv_fold<C>(s, m, l, o, vb, jb, a.v_st, a.D, lane);
    }
    skv_write_partial<C>(part + ((b * a.H + h) * units + u) * (a.D + 2), o, m, l, a.D, lane);
}

/* Phase 2 (split_kv.cuh): block (h, b) merges the units of one head. */
static __global__ void __launch_bounds__(128)
    attention_decode_combine_kernel(float *out, const float *__restrict__ part, attn_args a, int units) {
    __shared__ float w[SKV_MAX_UNITS];
    __shared__ float scratch[32];
    skv_combine(out, part, a.H, a.D, a.o_sb, units, w, scratch);
}

// ---- kernel launchers

static attn_args args_from(const musae_attn_params *p) {
    attn_args a;
    a.B = p->batch, a.H = p->heads, a.TQ = p->tq, a.TK = p->tk, a.D = p->dh;
    a.q_sb = p->q_sb, a.q_st = p->q_st, a.k_sb = p->k_sb, a.k_st = p->k_st;
    a.v_sb = p->v_sb, a.v_st = p->v_st, a.o_sb = p->o_sb, a.o_st = p->o_st;
    a.scale = p->scale, a.causal = p->causal, a.q_pos0 = p->q_pos0;
    a.bias = p->bias, a.bias_tk = p->bias_tk, a.key_mask = p->key_mask;
    return a;
}

/* Keys a decode call visits: causal without a key mask ends at the query's horizon (q_pos0), exactly. */
static int64_t decode_k_len(const musae_attn_params *p) {
    if (p->causal && !p->key_mask && p->q_pos0 + 1 < p->tk) return p->q_pos0 + 1;
    return p->tk;
}

attn_plan attention_plan(const musae_attn_params *p, int sm_count, attn_force force) {
    attn_plan pl = {ATTN_PATH_PREFILL, 0, 0};
    const bool decode = force.path == ATTN_PATH_DECODE || (force.path == ATTN_PATH_AUTO && p->tq == 1);
    if (!decode) return pl;
    MUSAE_ASSERT(p->tq == 1, "attention: the decode path needs tq == 1 (tq = %lld)", (long long)p->tq);
    int64_t units = force.units;
    if (units <= 0) {
        units = skv_units(p->batch * p->heads, decode_k_len(p), sm_count);
    } else { /* a forced count (tests): rounded to whole blocks, capped */
        units = CEIL_DIV(units, (int64_t)SKV_WARPS) * SKV_WARPS;
        if (units > SKV_MAX_UNITS) units = SKV_MAX_UNITS;
    }
    pl.path = ATTN_PATH_DECODE;
    pl.units = (int)units;
    pl.workspace_bytes = (size_t)(p->batch * p->heads * units * (p->dh + 2)) * sizeof(float);
    return pl;
}

static size_t prefill_smem_bytes(int dmax) {
    return (size_t)(ATT_BQ * (dmax + 4) + 2 * ATT_BK * dmax + ATT_BK) * sizeof(float);
}

template <int DMAX>
static void prefill_launch(float *out, const float *q, const float *k, const float *v, const attn_args &a,
                           cudaStream_t stream) {
    const size_t smem = prefill_smem_bytes(DMAX);
    static bool attr_set = false; // above 48 KB a kernel must opt in (once per kernel; single device)
    if (smem > 48 * 1024 && !attr_set) {
        CUDA_CHECK(cudaFuncSetAttribute(attention_prefill_kernel<DMAX>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)smem));
        attr_set = true;
    }
    dim3 grid((unsigned)CEIL_DIV(a.TQ, (int64_t)ATT_BQ), (unsigned)a.H, (unsigned)a.B);
    attention_prefill_kernel<DMAX><<<grid, ATT_BQ, smem, stream>>>(out, q, k, v, a);
    CUDA_LAUNCH_CHECK();
}

template <int DMAX>
static void decode_launch(float *out, const float *q, const float *k, const float *v, const attn_args &a,
                          int64_t k_len, int units, float *part, cudaStream_t stream) {
    const int64_t kpu = CEIL_DIV(k_len, (int64_t)units);
    dim3 grid1((unsigned)(units / SKV_WARPS), (unsigned)a.H, (unsigned)a.B);
    attention_decode_split_kernel<DMAX><<<grid1, SKV_WARPS * WARP_SIZE, 0, stream>>>(part, q, k, v, a, k_len, kpu);
    CUDA_LAUNCH_CHECK();
    dim3 grid2((unsigned)a.H, (unsigned)a.B);
    attention_decode_combine_kernel<<<grid2, 128, 0, stream>>>(out, part, a, units);
    CUDA_LAUNCH_CHECK();
}

void attention_cuda(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                    int sm_count, attn_force force, void *workspace, size_t workspace_bytes, cudaStream_t stream) {
    MUSAE_ASSERT(p->batch >= 0 && p->heads > 0 && p->tq >= 0 && p->tk > 0 && p->dh > 0,
                 "attention dims b%lld h%lld tq%lld tk%lld d%lld", (long long)p->batch, (long long)p->heads,
                 (long long)p->tq, (long long)p->tk, (long long)p->dh);
    MUSAE_ASSERT(p->dh <= ATTENTION_MAX_DH, "attention: head dim %lld > %d is not supported on the GPU",
                 (long long)p->dh, ATTENTION_MAX_DH);
    MUSAE_ASSERT(p->batch <= 65535 && p->heads <= 65535, "attention: batch %lld / heads %lld above 65535",
                 (long long)p->batch, (long long)p->heads);
    MUSAE_ASSERT(!p->bias || p->bias_tk >= p->tk, "bias row stride %lld < tk %lld", (long long)p->bias_tk,
                 (long long)p->tk);
    MUSAE_ASSERT(p->q_pos0 >= 0, "attention: q_pos0 = %lld", (long long)p->q_pos0);
    if (p->batch == 0 || p->tq == 0) return;
    MUSAE_ASSERT(out && q && k && v, "attention: NULL pointer");
    MUSAE_ASSERT(out != k && out != v, "attention: out must not alias k or v");
    const attn_args a = args_from(p);
    const attn_plan pl = attention_plan(p, sm_count, force);
    if (pl.path == ATTN_PATH_PREFILL) {
        MUSAE_ASSERT(CEIL_DIV(p->tq, (int64_t)ATT_BQ) < INT32_MAX, "attention: tq %lld", (long long)p->tq);
        if (p->dh <= 32) prefill_launch<32>(out, q, k, v, a, stream);
        else if (p->dh <= 64) prefill_launch<64>(out, q, k, v, a, stream);
        else prefill_launch<128>(out, q, k, v, a, stream);
        return;
    }
    MUSAE_ASSERT(workspace && workspace_bytes >= pl.workspace_bytes, "attention: workspace %zu bytes, need %zu",
                 workspace_bytes, pl.workspace_bytes);
    const int64_t k_len = decode_k_len(p);
    float *part = (float *)workspace;
    if (p->dh <= 32) decode_launch<32>(out, q, k, v, a, k_len, pl.units, part, stream);
    else if (p->dh <= 64) decode_launch<64>(out, q, k, v, a, k_len, pl.units, part, stream);
    else decode_launch<128>(out, q, k, v, a, k_len, pl.units, part, stream);
}
