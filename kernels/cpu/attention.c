/* Attention on the CPU: scores in fp32, max-subtracted softmax, masks added as -FLT_MAX like HF's additive
 * finfo(float32).min masks (so a fully masked row becomes uniform over all tk keys, exactly as HF computes
 * it).
 *
 * Work is split into tasks of (batch, head, block of up to QB queries), one OpenMP thread each. A block of
 * several queries runs its QKᵀ and PV products as single-threaded sgemms (the bulk of teacher forcing);
 * a single query (a decoding step) uses vector loops, where a call per head would cost more than the math.
 * With a causal mask a block only reads the keys its last query can see: the keys after them are masked
 * for every query of the block, and their exp() is exactly 0 unless a row has no visible key at all —
 * that row (only possible with a key_mask) is redone over all tk keys so the uniform row stays exact. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>

#include "kernels/cpu/cpu_ops.h"

enum { QB = 64 };

static int is_masked(const musae_attn_params *p, int64_t b, int64_t i, int64_t j) {
    return (p->causal && j > i + p->q_pos0) || (p->key_mask && p->key_mask[b * p->tk + j] == 0.0f);
}

/* The largest of s[0, n) that is not NaN (-inf if none): the value of `if (s[j] > mx) mx = s[j]` from -inf, in
 * 16 running maxima so the comparisons do not wait on each other (a one-chain loop was ~2 % of a prefill).
 * Max is order-independent but for the sign of a zero maximum, and x - (+0) and x - (-0) differ only when x
 * is a zero, whose exp is 1 either way, so the softmax's bits are the one-chain loop's. */
static float row_max(const float *s, int64_t n) {
    float m[16];
    for (int l = 0; l < 16; l++) m[l] = -INFINITY;
    int64_t j = 0;
    for (; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; l++) m[l] = s[j + l] > m[l] ? s[j + l] : m[l];
    for (int l = 0; j + l < n; l++) m[l] = s[j + l] > m[l] ? s[j + l] : m[l];
    float mx = -INFINITY;
    for (int l = 0; l < 16; l++) mx = m[l] > mx ? m[l] : mx;
    return mx;
}

/* Rows [0, rows) of s (n apiece, already scaled; query positions i0, i0 + 1, ..) → bias, masks, then softmax
 * weights in place. Each row is the sequence of the one-row loop: its max, x - max, expf, the sum in key
 * order, 1 / sum, the products. Rows are only interleaved where a loop waits on its own chain: the sums of
 * four rows advance together (a lone sum was ~1.5 % of a prefill, one add's latency per key). */
static void softmax_rows(float *s, int64_t rows, int64_t n, const musae_attn_params *p, int64_t b, int64_t h,
                         int64_t i0) {
    const float *km = p->key_mask ? p->key_mask + b * p->tk : NULL;
    for (int64_t r = 0; r < rows; r++) {
        float *sr = s + r * n;
        const int64_t i = i0 + r;
        if (p->bias)
            for (int64_t j = 0; j < n; j++) sr[j] += p->bias[(h * p->tq + i) * p->bias_tk + j];
        if (p->causal || km) { /* is_masked, with the causal bound taken out of the loop */
            const int64_t lim = p->causal ? i + p->q_pos0 + 1 : n;
            for (int64_t j = 0; j < n; j++)
                if (j >= lim || (km && km[j] == 0.0f)) sr[j] += -FLT_MAX;
        }
        const float mx = row_max(sr, n);
        for (int64_t j = 0; j < n; j++) sr[j] -= mx;
    }
    cpu_expf_vec(s, s, rows * n); /* expf's bits, 16 at a time */
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        const int64_t nr = rows - r0 < 4 ? rows - r0 : 4;
        float sum[4] = {0, 0, 0, 0};
        if (nr == 4)
            for (int64_t j = 0; j < n; j++)
                for (int q = 0; q < 4; q++) sum[q] += s[(r0 + q) * n + j];
        else
            for (int q = 0; q < nr; q++)
                for (int64_t j = 0; j < n; j++) sum[q] += s[(r0 + q) * n + j];
        for (int q = 0; q < nr; q++) {
            const float inv = 1.0f / sum[q];
            float *sr = s + (r0 + q) * n;
            for (int64_t j = 0; j < n; j++) sr[j] *= inv;
        }
    }
}

/* One query row over keys [0, n) with plain loops: scores, softmax, weighted sum of values. */
static void row_loops(float *o, const float *qi, const float *k, const float *v, float *s, int64_t n,
                      const musae_attn_params *p, int64_t b, int64_t h, int64_t i) {
    const int64_t D = p->dh;
    for (int64_t j = 0; j < n; j++) {
        const float *kj = k + b * p->k_sb + j * p->k_st + h * D;
        float dot = 0;
#pragma omp simd reduction(+ : dot)
        for (int64_t d = 0; d < D; d++) dot += qi[d] * kj[d];
        s[j] = dot * p->scale;
    }
    softmax_rows(s, 1, n, p, b, h, i);
    for (int64_t d = 0; d < D; d++) o[d] = 0;
    for (int64_t j = 0; j < n; j++) {
        if (s[j] == 0.0f) continue;
        const float *vj = v + b * p->v_sb + j * p->v_st + h * D;
        const float w = s[j];
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] += w * vj[d];
    }
}

void cpu_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p) {
    const int64_t B = p->batch, H = p->heads, TQ = p->tq, TK = p->tk, D = p->dh;
    MUSAE_ASSERT(B >= 0 && H > 0 && TQ >= 0 && TK > 0 && D > 0, "attention dims b%lld h%lld tq%lld tk%lld d%lld",
                 (long long)B, (long long)H, (long long)TQ, (long long)TK, (long long)D);
    MUSAE_ASSERT(!p->bias || p->bias_tk >= TK, "bias row stride %lld < tk %lld", (long long)p->bias_tk, (long long)TK);
    MUSAE_ASSERT(TK <= INT32_MAX && p->q_st <= INT32_MAX && p->k_st <= INT32_MAX && p->v_st <= INT32_MAX &&
                     p->o_st <= INT32_MAX, "attention strides out of BLAS int range");
    const int64_t n_blocks = (TQ + QB - 1) / QB, n_tasks = B * H * n_blocks;
    if (n_tasks == 0) return;
    /* threads only pay off past a few hundred thousand multiply-adds; below that a team costs more */
    const int parallel = B * H * TQ * TK * D > (1 << 18) && n_tasks > 1;
    cpu_blas_init();
#pragma omp parallel if (parallel)
    {
        float *s = musae_xmalloc((size_t)(QB * TK) * sizeof(float));
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; task++) {
            const int64_t blk = task % n_blocks, h = task / n_blocks % H, b = task / (n_blocks * H);
            const int64_t i0 = blk * QB, nq = i0 + QB <= TQ ? QB : TQ - i0;
            int64_t n = TK; /* keys the block can see */
            if (p->causal && i0 + nq + p->q_pos0 < TK) n = i0 + nq + p->q_pos0;
            if (n < 1) n = 1;
            const float *qb = q + b * p->q_sb + i0 * p->q_st + h * D;
            float *ob = out + b * p->o_sb + i0 * p->o_st + h * D;
            if (nq == 1) {
                row_loops(ob, qb, k, v, s, n, p, b, h, i0);
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)n, (int)D, p->scale, qb,
                            (int)p->q_st, k + b * p->k_sb + h * D, (int)p->k_st, 0.0f, s, (int)n);
                softmax_rows(s, nq, n, p, b, h, i0);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)D, (int)n, 1.0f, s, (int)n,
                            v + b * p->v_sb + h * D, (int)p->v_st, 0.0f, ob, (int)p->o_st);
            }
            if (n < TK)
                for (int64_t r = 0; r < nq; r++) {
                    /* every visible key masked (key_mask): HF's row is uniform over all tk keys */
                    int all = 1;
                    for (int64_t j = 0; j < n && all; j++) all = is_masked(p, b, i0 + r, j);
                    if (all) row_loops(ob + r * p->o_st, qb + r * p->q_st, k, v, s, TK, p, b, h, i0 + r);
                }
        }
        free(s);
    }
}
