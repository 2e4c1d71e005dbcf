/* Attention on the CPU: scores in fp32, max-subtracted softmax, masks added as -FLT_MAX like HF's additive
 * finfo(float32).min masks (so a fully masked row becomes uniform over all tk keys, exactly as HF computes
 * it).
 *
 * Work is split into tasks of (batch, head, block of up to QB queries), one OpenMP thread each.
 *
 * Several queries (teacher forcing, prompts, T5, CLAP): a kernel of our own for every row of the call, in
 * the variants of kernels/cpu/isa.h. A thread packs the keys of its (item, head) transposed, in tiles of 16
 * keys ([tile][d][16]: the 16 lanes are 16 keys), and the values in rows padded to a multiple of 16, once
 * (its next block of the same head packs only the keys it adds); then each group of R queries scores the key
 * tiles (one broadcast of q[r][d] per FMA), the softmax runs over the row in vectors with vec_math.h's v_exp,
 * and P·V accumulates R rows × 32 columns in registers. It replaced two OpenBLAS sgemms per block (and
 * their packing) and a libm expf per score: on musicgen-small's 504-row forward attention's CPU time fell
 * 2.2x (bench/results/cpu_speed.md, section 3).
 *
 * The sequence of each output row depends only on its query, the keys and values it sees and the masks,
 * never on the task, the group or the block it falls in, the thread count or the batch: a score is
 * s = +0; s = fma(q[d], k[d], s) for d in order, then s·scale, + bias, + (-FLT_MAX) if masked; the row's
 * maximum m (order-free); e_j = v_exp(s_j - m), +0 below -87 (where expf is below FLT_MIN, against a sum
 * >= 1); the sum in 16 partial sums by j mod 16, each in j order, then added lane 0 to 15; o[d] =
 * (a = +0; a = fma(e_j, v[j][d], a) for j in order)·(1/sum). A group reads more keys than a row can see (up
 * to its last row's): those are causally masked, their e is +0, and fma(+0, v, a) = a, so the row's bits do
 * not depend on how far its group reads. The variants run these operations lane by lane (v_fma: vfmadd in
 * AVX2 and AVX-512, libm's fmaf in the baseline; ISO C mode contracts nothing else), so every level gives
 * the same bits (tests/test_ops.c). On a CPU without FMA the baseline's fmaf is glibc's emulation: correct,
 * several times slower; musae's other kernels assume AVX2 for speed as well.
 *
 * A row whose visible keys are all masked (only possible with a key_mask) is computed over all tk keys,
 * where every score is masked, so the row is uniform over tk keys as HF's.
 *
 * One query per call (a decoding step): plain loops, where packing would cost as much as the dot products;
 * a step's row is not bitwise the teacher-forced one (nothing promises that; the step equals mg_forward's
 * t = 1 call, which takes this path too). */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_math.h"

enum { QB = 64, R = 4, L = 16 };

static int is_masked(const musae_attn_params *p, int64_t b, int64_t i, int64_t j) {
    return (p->causal && j > i + p->q_pos0) || (p->key_mask && p->key_mask[b * p->tk + j] == 0.0f);
}

/* ---- one query: plain loops ---- */

/* s[j] for j < n (already scaled) → bias, masks, then softmax weights in place */
static void softmax_row(float *s, int64_t n, const musae_attn_params *p, int64_t b, int64_t h, int64_t i) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        float sc = s[j];
        if (p->bias) sc += p->bias[(h * p->tq + i) * p->bias_tk + j];
        if (is_masked(p, b, i, j)) sc += -FLT_MAX;
        s[j] = sc;
        if (sc > mx) mx = sc;
    }
    float sum = 0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; j++) s[j] *= inv;
}

/* One query row over keys [0, n): scores, softmax, weighted sum of values. */
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
    softmax_row(s, n, p, b, h, i);
    for (int64_t d = 0; d < D; d++) o[d] = 0;
    for (int64_t j = 0; j < n; j++) {
        if (s[j] == 0.0f) continue;
        const float *vj = v + b * p->v_sb + j * p->v_st + h * D;
        const float w = s[j];
#pragma omp simd
        for (int64_t d = 0; d < D; d++) o[d] += w * vj[d];
    }
}

/* ---- several queries: the packed kernel ---- */

/* A thread's buffers, sized for tk keys: kt [tiles][dh][L] keys transposed, vp [tk][dp] values, s [R][tiles·L]
 * a group's scores then weights, km [tiles·L] the key_mask as lane masks (-1 = hidden). They hold keys
 * [0, packed) of item pb, head ph: the thread's next block of the same head only packs the keys it adds. */
typedef struct {
    float *kt, *vp, *s;
    int32_t *km;
    int64_t dp; /* dh rounded up to L */
    int64_t pb, ph, packed;
} attn_work;

/* Makes keys and values [0, n) of (b, h) packed. Lanes past n in the last tile hold zeros or other keys: their
 * scores are replaced by -inf. */
static void pack_kv(attn_work *w, const float *k, const float *v, const musae_attn_params *p, int64_t b,
                    int64_t h, int64_t n) {
    const int64_t D = p->dh, dp = w->dp;
    if (w->pb != b || w->ph != h) w->pb = b, w->ph = h, w->packed = 0;
    for (int64_t j = w->packed; j < n; j++) {
        const float *kj = k + b * p->k_sb + j * p->k_st + h * D;
        float *dst = w->kt + (j / L) * D * L + j % L;
        for (int64_t d = 0; d < D; d++) dst[d * L] = kj[d];
        float *vj = w->vp + j * dp;
        memcpy(vj, v + b * p->v_sb + j * p->v_st + h * D, (size_t)D * sizeof(float));
        for (int64_t d = D; d < dp; d++) vj[d] = 0.0f;
        w->km[j] = p->key_mask && p->key_mask[b * p->tk + j] == 0.0f ? -1 : 0;
    }
    if (n > w->packed) w->packed = n;
}

#define ATTN_ROWS_PARAMS                                                                                      \
    float *const *orow, const float *const *qr, int nr, const attn_work *w, const musae_attn_params *p, int64_t h, \
        int64_t i0, int64_t n

/* fma(a, b, c) lane by lane, rounded once: one vfmadd at -O3 in the AVX2 and AVX-512 variants (GCC vectorizes
 * the lanes), libm's fmaf in the baseline one, the same bits everywhere. */
VM_INLINE f32x16 v_fma(f32x16 a, f32x16 b, f32x16 c) {
    f32x16 r;
    for (int l = 0; l < L; l++) r[l] = fmaf(a[l], b[l], c[l]);
    return r;
}

/* Scores of rows q[0..R) against key tiles [t, t + nt) into acc[r][u] (nt = 1 or 2: two tiles give AVX-512
 * eight independent chains of FMAs; AVX2's vectors of 16 are two registers each, so one tile is enough). */
ISA_BODY void score_tiles(f32x16 acc[R][2], const float *const *q, const float *kt, int64_t D, int nt) {
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    f32x16 c00 = V16(0.0f), c10 = c00, c20 = c00, c30 = c00, c01 = c00, c11 = c00, c21 = c00, c31 = c00;
    if (nt == 2) {
        for (int64_t d = 0; d < D; d++) {
            const f32x16 k0 = v_load(kt + d * L), k1 = v_load(kt + (D + d) * L);
            const f32x16 x0 = V16(q0[d]), x1 = V16(q1[d]), x2 = V16(q2[d]), x3 = V16(q3[d]);
            c00 = v_fma(x0, k0, c00), c01 = v_fma(x0, k1, c01);
            c10 = v_fma(x1, k0, c10), c11 = v_fma(x1, k1, c11);
            c20 = v_fma(x2, k0, c20), c21 = v_fma(x2, k1, c21);
            c30 = v_fma(x3, k0, c30), c31 = v_fma(x3, k1, c31);
        }
    } else {
        for (int64_t d = 0; d < D; d++) {
            const f32x16 k0 = v_load(kt + d * L);
            c00 = v_fma(V16(q0[d]), k0, c00), c10 = v_fma(V16(q1[d]), k0, c10);
            c20 = v_fma(V16(q2[d]), k0, c20), c30 = v_fma(V16(q3[d]), k0, c30);
        }
    }
    acc[0][0] = c00, acc[1][0] = c10, acc[2][0] = c20, acc[3][0] = c30;
    acc[0][1] = c01, acc[1][1] = c11, acc[2][1] = c21, acc[3][1] = c31;
}

/* Rows i0 + r (r < nr <= R, query rows qr[r], output rows orow[r]) over keys [0, n), all packed. wide: the
 * AVX-512 shape (two key tiles per pass, 32 output columns per pass), else one tile and 16 columns. */
ISA_BODY void attn_rows_body(float *const *orow, const float *const *qr, int nr, const attn_work *w,
                             const musae_attn_params *p, int64_t h, int64_t i0, int64_t n, int wide) {
    const int64_t D = p->dh, dp = w->dp, tiles = (n + L - 1) / L, sw = tiles * L;
    const f32x16 scale = V16(p->scale), neg = V16(-FLT_MAX), ninf = V16(-INFINITY), zero = V16(0.0f);
    const i32x16 iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    const float *q[R];
    for (int r = 0; r < R; r++) q[r] = qr[r < nr ? r : nr - 1]; /* a short group repeats its last row */

    /* scores, bias and masks; lanes past n get -inf (their e is +0 like a masked key's) */
    for (int64_t t0 = 0; t0 < tiles;) {
        const int nt = wide && t0 + 1 < tiles ? 2 : 1;
        f32x16 acc[R][2];
        score_tiles(acc, q, w->kt + t0 * D * L, D, nt);
        for (int u = 0; u < nt; u++) {
            const int64_t t = t0 + u;
            const i32x16 j = iota + (int32_t)(t * L), km = (i32x16)v_load((const float *)(w->km + t * L));
            const i32x16 past = j >= (int32_t)n;
            for (int r = 0; r < nr; r++) {
                const int64_t i = i0 + r;
                f32x16 sc = acc[r][u] * scale;
                if (p->bias) {
                    float bb[L] = {0};
                    const int64_t m = n - t * L < L ? n - t * L : L;
                    memcpy(bb, p->bias + (h * p->tq + i) * p->bias_tk + t * L, (size_t)m * sizeof(float));
                    sc = sc + v_load(bb);
                }
                i32x16 hidden = km;
                if (p->causal) {
                    const int64_t last = i + p->q_pos0; /* the last visible key */
                    hidden |= j > (int32_t)(last < -1 ? -1 : last > INT32_MAX - 1 ? INT32_MAX - 1 : last);
                }
                sc = v_select(hidden, sc + neg, sc);
                v_store(w->s + r * sw + t * L, v_select(past, ninf, sc));
            }
        }
        t0 += nt;
    }

    float inv[R];
    for (int r = 0; r < nr; r++) {
        float *s = w->s + r * sw;
        f32x16 mv = ninf;
        for (int64_t t = 0; t < tiles; t++) mv = v_max(mv, v_load(s + t * L));
        float m = mv[0];
        for (int l = 1; l < L; l++) m = mv[l] > m ? mv[l] : m;
        const f32x16 mm = V16(m), lo = V16(-87.0f);
        f32x16 sum = zero;
        for (int64_t t = 0; t < tiles; t++) {
            const f32x16 x = v_load(s + t * L) - mm;
            const f32x16 e = v_select(x < lo, zero, v_exp(v_max(x, lo)));
            v_store(s + t * L, e);
            sum = sum + e;
        }
        float tot = sum[0];
        for (int l = 1; l < L; l++) tot = tot + sum[l];
        inv[r] = 1.0f / tot;
    }

    /* P·V, 32 or 16 columns per pass; the padding columns are not stored */
    const float *sr[R];
    for (int r = 0; r < R; r++) sr[r] = w->s + (r < nr ? r : 0) * sw;
    for (int64_t c = 0; c < dp;) {
        const int nv = wide && c + 2 * L <= dp ? 2 : 1;
        const float *e0 = sr[0], *e1 = sr[1], *e2 = sr[2], *e3 = sr[3];
        f32x16 a00 = zero, a10 = zero, a20 = zero, a30 = zero, a01 = zero, a11 = zero, a21 = zero, a31 = zero;
        if (nv == 2) {
            for (int64_t jj = 0; jj < n; jj++) {
                const float *vj = w->vp + jj * dp + c;
                const f32x16 v0 = v_load(vj), v1 = v_load(vj + L);
                const f32x16 x0 = V16(e0[jj]), x1 = V16(e1[jj]), x2 = V16(e2[jj]), x3 = V16(e3[jj]);
                a00 = v_fma(x0, v0, a00), a01 = v_fma(x0, v1, a01);
                a10 = v_fma(x1, v0, a10), a11 = v_fma(x1, v1, a11);
                a20 = v_fma(x2, v0, a20), a21 = v_fma(x2, v1, a21);
                a30 = v_fma(x3, v0, a30), a31 = v_fma(x3, v1, a31);
            }
        } else {
            for (int64_t jj = 0; jj < n; jj++) {
                const f32x16 v0 = v_load(w->vp + jj * dp + c);
                a00 = v_fma(V16(e0[jj]), v0, a00), a10 = v_fma(V16(e1[jj]), v0, a10);
                a20 = v_fma(V16(e2[jj]), v0, a20), a30 = v_fma(V16(e3[jj]), v0, a30);
            }
        }
        const f32x16 a[R][2] = {{a00, a01}, {a10, a11}, {a20, a21}, {a30, a31}};
        for (int r = 0; r < nr; r++) {
            float o[2 * L];
            v_store(o, a[r][0] * V16(inv[r]));
            v_store(o + L, a[r][1] * V16(inv[r]));
            const int64_t m = D - c < nv * L ? D - c : nv * L;
            memcpy(orow[r] + c, o, (size_t)m * sizeof(float));
        }
        c += nv * L;
    }
}
#if MUSAE_ISA_VARIANTS
__attribute__((target("arch=x86-64-v4"))) static void attn_rows_avx512(ATTN_ROWS_PARAMS) {
    attn_rows_body(orow, qr, nr, w, p, h, i0, n, 1);
}
__attribute__((target("arch=x86-64-v3"))) static void attn_rows_avx2(ATTN_ROWS_PARAMS) {
    attn_rows_body(orow, qr, nr, w, p, h, i0, n, 0);
}
#endif
/* isa.h's dispatch, with the shape chosen per variant (the shape changes no bit) */
static void attn_rows(ATTN_ROWS_PARAMS) {
#if MUSAE_ISA_VARIANTS
    switch (musae_isa_get()) {
    case MUSAE_ISA_AVX512: attn_rows_avx512(orow, qr, nr, w, p, h, i0, n); return;
    case MUSAE_ISA_AVX2: attn_rows_avx2(orow, qr, nr, w, p, h, i0, n); return;
    default: break;
    }
#endif
    attn_rows_body(orow, qr, nr, w, p, h, i0, n, 0);
}

/* Rows [i0, i0 + nq) of (b, h). */
static void attn_block(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                       attn_work *w, int64_t b, int64_t h, int64_t i0, int64_t nq) {
    const int64_t TK = p->tk, D = p->dh;
    /* the keys the block's last row can see (at least one: a row that sees none is all masked, below) */
    int64_t n = TK;
    if (p->causal && i0 + nq + p->q_pos0 < TK) n = i0 + nq + p->q_pos0;
    if (n < 1) n = 1;
    pack_kv(w, k, v, p, b, h, n);
    /* the first key the key_mask shows (TK: none) */
    int64_t first = 0;
    if (p->key_mask)
        while (first < TK && p->key_mask[b * TK + first] == 0.0f) first++;
    const float *qr[R];
    float *orow[R];
    for (int64_t r0 = 0; r0 < nq; r0 += R) {
        const int nr = (int)(nq - r0 < R ? nq - r0 : R);
        for (int r = 0; r < nr; r++) {
            qr[r] = q + b * p->q_sb + (i0 + r0 + r) * p->q_st + h * D;
            orow[r] = out + b * p->o_sb + (i0 + r0 + r) * p->o_st + h * D;
        }
        int64_t ng = n; /* keys up to the group's last row */
        if (p->causal && i0 + r0 + nr + p->q_pos0 < n) ng = i0 + r0 + nr + p->q_pos0;
        if (ng < 1) ng = 1;
        attn_rows(orow, qr, nr, w, p, h, i0 + r0, ng);
        if (ng == TK) continue;
        /* every visible key masked (or none visible): HF's row is uniform over all tk keys */
        for (int r = 0; r < nr; r++) {
            const int64_t last = i0 + r0 + r + p->q_pos0; /* the last visible key */
            if (first <= last && first < TK) continue;
            pack_kv(w, k, v, p, b, h, TK);
            attn_rows(orow + r, qr + r, 1, w, p, h, i0 + r0 + r, TK);
        }
    }
}

void cpu_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p) {
    const int64_t B = p->batch, H = p->heads, TQ = p->tq, TK = p->tk, D = p->dh;
    MUSAE_ASSERT(B >= 0 && H > 0 && TQ >= 0 && TK > 0 && D > 0, "attention dims b%lld h%lld tq%lld tk%lld d%lld",
                 (long long)B, (long long)H, (long long)TQ, (long long)TK, (long long)D);
    MUSAE_ASSERT(!p->bias || p->bias_tk >= TK, "bias row stride %lld < tk %lld", (long long)p->bias_tk, (long long)TK);
    MUSAE_ASSERT(TK <= INT32_MAX - L, "attention tk %lld past int32 lanes", (long long)TK);
    const int64_t n_blocks = (TQ + QB - 1) / QB, n_tasks = B * H * n_blocks;
    if (n_tasks == 0) return;
    /* threads only pay off past a few hundred thousand multiply-adds; below that a team costs more */
    const int parallel = B * H * TQ * TK * D > (1 << 18) && n_tasks > 1;
    const int64_t tiles = (TK + L - 1) / L, dp = (D + L - 1) / L * L;
#pragma omp parallel if (parallel)
    {
        attn_work w = {.dp = dp, .pb = -1};
        float *s = NULL;
        if (TQ == 1) {
            s = musae_xmalloc((size_t)TK * sizeof(float));
        } else {
            /* zeroed: the last tile's lanes past tk are read (and their scores replaced) */
            w.kt = musae_xcalloc((size_t)(tiles * L * D), sizeof(float));
            w.vp = musae_xmalloc((size_t)(TK * dp) * sizeof(float));
            w.s = musae_xmalloc((size_t)(R * tiles * L) * sizeof(float));
            w.km = musae_xcalloc((size_t)(tiles * L), sizeof(int32_t));
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < n_tasks; task++) {
            const int64_t blk = task % n_blocks, h = task / n_blocks % H, b = task / (n_blocks * H);
            const int64_t i0 = blk * QB, nq = i0 + QB <= TQ ? QB : TQ - i0;
            if (TQ > 1) {
                attn_block(out, q, k, v, p, &w, b, h, i0, nq);
                continue;
            }
            const float *qi = q + b * p->q_sb + h * D;
            float *o = out + b * p->o_sb + h * D;
            int64_t n = TK; /* keys the query can see */
            if (p->causal && 1 + p->q_pos0 < TK) n = 1 + p->q_pos0;
            if (n < 1) n = 1;
            row_loops(o, qi, k, v, s, n, p, b, h, 0);
            /* every visible key masked (key_mask): HF's row is uniform over all tk keys */
            int all = n < TK;
            for (int64_t j = 0; j < n && all; j++) all = is_masked(p, b, 0, j);
            if (all) row_loops(o, qi, k, v, s, TK, p, b, h, 0);
        }
        free(s), free(w.kt), free(w.vp), free(w.s), free(w.km);
    }
}
