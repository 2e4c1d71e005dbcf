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
 * and P·V accumulates R rows × 32 (AVX-512) or 16 columns in registers. It replaced two OpenBLAS sgemms per
 * block (and their packing) and a libm expf per score: on musicgen-small's 504-row forward attention's CPU
 * time fell 2.0-2.2x with AVX-512, 1.8x with AVX2 (bench/results/cpu_speed.md, section 3).
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
    for (int64_t j = 0; j < n; j++) s[j] -= mx;
    cpu_expf_vec(s, s, n); /* expf's bits, 16 at a time */
    float sum = 0;
    for (int64_t j = 0; j < n; j++) sum += s[j];
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

/* Halves of a tile. GCC 12 lowers 16-wide comparisons, and 16-wide values carried around a loop, to scalar
 * code on AVX2 (a 16-float vector is two registers there), so the loops that carry or compare run on 8-wide
 * halves in every variant, and the FMA loops of the AVX2 and baseline variants too; the operations per lane
 * are the same, and so are the bits. */
typedef float f32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
#define V8(c) ((f32x8){c, c, c, c, c, c, c, c})
VM_INLINE f32x8 v8_load(const float *p) {
    f32x8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
VM_INLINE i32x8 v8_mask(const int32_t *p) {
    i32x8 v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
VM_INLINE void v8_store(float *p, f32x8 v) { __builtin_memcpy(p, &v, sizeof v); }
/* a tile from its halves and back in registers (AVX-512 stalls on a 16-wide load of two 8-wide stores) */
#define v_join(a, b) __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
#define v_lo(a) __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7)
#define v_hi(a) __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15)
VM_INLINE f32x8 v8_select(i32x8 mask, f32x8 a, f32x8 b) { return (f32x8)(((i32x8)a & mask) | ((i32x8)b & ~mask)); }

/* fma(a, b, c) lane by lane, rounded once: one vfmadd at -O3 in the AVX2 and AVX-512 variants (GCC vectorizes
 * the lanes), libm's fmaf in the baseline one, the same bits everywhere. */
VM_INLINE f32x16 v_fma(f32x16 a, f32x16 b, f32x16 c) {
#define F(l) fmaf(a[l], b[l], c[l])
    return (f32x16){F(0), F(1), F(2), F(3), F(4), F(5), F(6), F(7), F(8), F(9), F(10), F(11), F(12), F(13), F(14), F(15)};
}
VM_INLINE f32x8 v8_fma(f32x8 a, f32x8 b, f32x8 c) {
    return (f32x8){F(0), F(1), F(2), F(3), F(4), F(5), F(6), F(7)};
#undef F
}

/* Raw dot products of rows q[0..R) with key tiles [t, t + nt) into s + r·sw + t·L. AVX-512 (wide): two tiles
 * per pass for eight independent chains of 16-wide FMAs; else one tile, eight chains of 8-wide ones. */
ISA_BODY void score_tiles(float *s, int64_t sw, const float *const *q, const float *kt, int64_t D, int nt, int wide) {
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    if (wide) {
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
            v_store(s + L, c01), v_store(s + sw + L, c11), v_store(s + 2 * sw + L, c21), v_store(s + 3 * sw + L, c31);
        } else {
            for (int64_t d = 0; d < D; d++) {
                const f32x16 k0 = v_load(kt + d * L);
                c00 = v_fma(V16(q0[d]), k0, c00), c10 = v_fma(V16(q1[d]), k0, c10);
                c20 = v_fma(V16(q2[d]), k0, c20), c30 = v_fma(V16(q3[d]), k0, c30);
            }
        }
        v_store(s, c00), v_store(s + sw, c10), v_store(s + 2 * sw, c20), v_store(s + 3 * sw, c30);
        return;
    }
    f32x8 c00 = V8(0.0f), c10 = c00, c20 = c00, c30 = c00, c01 = c00, c11 = c00, c21 = c00, c31 = c00;
    for (int64_t d = 0; d < D; d++) {
        const f32x8 k0 = v8_load(kt + d * L), k1 = v8_load(kt + d * L + 8);
        const f32x8 x0 = V8(q0[d]), x1 = V8(q1[d]), x2 = V8(q2[d]), x3 = V8(q3[d]);
        c00 = v8_fma(x0, k0, c00), c01 = v8_fma(x0, k1, c01);
        c10 = v8_fma(x1, k0, c10), c11 = v8_fma(x1, k1, c11);
        c20 = v8_fma(x2, k0, c20), c21 = v8_fma(x2, k1, c21);
        c30 = v8_fma(x3, k0, c30), c31 = v8_fma(x3, k1, c31);
    }
    v8_store(s, c00), v8_store(s + 8, c01), v8_store(s + sw, c10), v8_store(s + sw + 8, c11);
    v8_store(s + 2 * sw, c20), v8_store(s + 2 * sw + 8, c21), v8_store(s + 3 * sw, c30), v8_store(s + 3 * sw + 8, c31);
}

/* Rows i0 + r (r < nr <= R, query rows qr[r], output rows orow[r]) over keys [0, n), all packed. wide: the
 * AVX-512 shape (16-wide FMA loops, two key tiles or 32 output columns per pass), else 8-wide ones. */
ISA_BODY void attn_rows_body(float *const *orow, const float *const *qr, int nr, const attn_work *w,
                             const musae_attn_params *p, int64_t h, int64_t i0, int64_t n, int wide) {
    const int64_t D = p->dh, dp = w->dp, tiles = (n + L - 1) / L, sw = tiles * L;
    const f32x8 scale = V8(p->scale), neg = V8(-FLT_MAX), ninf = V8(-INFINITY), zero = V8(0.0f);
    const float *q[R];
    for (int r = 0; r < R; r++) q[r] = qr[r < nr ? r : nr - 1]; /* a short group repeats its last row */

    /* scores, bias and masks, and each row's running maximum; lanes past n get -inf (e = +0, as a masked
     * key's) */
    f32x8 mv[R];
    for (int r = 0; r < R; r++) mv[r] = ninf;
    for (int64_t t0 = 0; t0 < tiles;) {
        const int nt = wide && t0 + 1 < tiles ? 2 : 1;
        score_tiles(w->s + t0 * L, sw, q, w->kt + t0 * D * L, D, nt, wide);
        for (int64_t t = t0; t < t0 + nt; t++) {
            const int64_t j0 = t * L, m = n - j0 < L ? n - j0 : L; /* m keys of the tile are real */
            for (int r = 0; r < nr; r++) {
                const int64_t i = i0 + r, last = p->causal ? i + p->q_pos0 : INT64_MAX; /* last visible key */
                float *sr = w->s + r * sw + j0;
                float bb[L] = {0};
                if (p->bias) memcpy(bb, p->bias + (h * p->tq + i) * p->bias_tk + j0, (size_t)m * sizeof(float));
                if (m == L && j0 + L - 1 <= last && !p->key_mask) { /* nothing hidden: the bulk of the tiles */
                    for (int u = 0; u < 2; u++) {
                        f32x8 x = v8_load(sr + 8 * u) * scale;
                        if (p->bias) x = x + v8_load(bb + 8 * u);
                        v8_store(sr + 8 * u, x);
                        mv[r] = v8_select(x > mv[r], x, mv[r]);
                    }
                    continue;
                }
                int32_t hid[L], past[L];
                memcpy(hid, w->km + j0, sizeof hid);
                for (int l = 0; l < L; l++) hid[l] |= j0 + l > last ? -1 : 0, past[l] = l >= m ? -1 : 0;
                for (int u = 0; u < 2; u++) {
                    f32x8 x = v8_load(sr + 8 * u) * scale;
                    if (p->bias) x = x + v8_load(bb + 8 * u);
                    x = v8_select(v8_mask(hid + 8 * u), x + neg, x);
                    x = v8_select(v8_mask(past + 8 * u), ninf, x);
                    v8_store(sr + 8 * u, x);
                    mv[r] = v8_select(x > mv[r], x, mv[r]);
                }
            }
        }
        t0 += nt;
    }

    /* e = exp(s - max) (+0 below -87), its sum in 16 lanes, then 1 / sum */
    float inv[R];
    for (int r = 0; r < nr; r++) {
        float *s = w->s + r * sw;
        float mx = mv[r][0];
        for (int l = 1; l < 8; l++) mx = mv[r][l] > mx ? mv[r][l] : mx;
        const f32x8 mm = V8(mx), lo = V8(-87.0f);
        f32x8 sum0 = zero, sum1 = zero;
        for (int64_t t = 0; t < tiles; t++) {
            const f32x8 x0 = v8_load(s + t * L) - mm, x1 = v8_load(s + t * L + 8) - mm;
            const f32x8 c0 = v8_select(x0 < lo, lo, x0), c1 = v8_select(x1 < lo, lo, x1);
            f32x8 p0, p1; /* exp of the clamped halves: joined in registers on AVX-512, through memory on AVX2 */
            if (wide) {
                const f32x16 e = v_exp(v_join(c0, c1));
                p0 = v_lo(e), p1 = v_hi(e);
            } else {
                float x[L];
                v8_store(x, c0), v8_store(x + 8, c1);
                v_store(x, v_exp(v_load(x)));
                p0 = v8_load(x), p1 = v8_load(x + 8);
            }
            const f32x8 e0 = v8_select(x0 < lo, zero, p0), e1 = v8_select(x1 < lo, zero, p1);
            v8_store(s + t * L, e0), v8_store(s + t * L + 8, e1);
            sum0 = sum0 + e0, sum1 = sum1 + e1;
        }
        float tot = sum0[0];
        for (int l = 1; l < 8; l++) tot = tot + sum0[l];
        for (int l = 0; l < 8; l++) tot = tot + sum1[l];
        inv[r] = 1.0f / tot;
    }

    /* P·V, 32 (wide) or 16 columns per pass; the padding columns are not stored */
    const float *sr[R];
    for (int r = 0; r < R; r++) sr[r] = w->s + (r < nr ? r : 0) * sw;
    const float *e0 = sr[0], *e1 = sr[1], *e2 = sr[2], *e3 = sr[3];
    for (int64_t c = 0; c < dp;) {
        const int nv = wide && c + 2 * L <= dp ? 2 : 1;
        float o[R][2 * L];
        if (wide) {
            const f32x16 z = V16(0.0f);
            f32x16 a00 = z, a10 = z, a20 = z, a30 = z, a01 = z, a11 = z, a21 = z, a31 = z;
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
            v_store(o[0], a00), v_store(o[1], a10), v_store(o[2], a20), v_store(o[3], a30);
            v_store(o[0] + L, a01), v_store(o[1] + L, a11), v_store(o[2] + L, a21), v_store(o[3] + L, a31);
        } else {
            f32x8 a00 = zero, a10 = zero, a20 = zero, a30 = zero, a01 = zero, a11 = zero, a21 = zero, a31 = zero;
            for (int64_t jj = 0; jj < n; jj++) {
                const float *vj = w->vp + jj * dp + c;
                const f32x8 v0 = v8_load(vj), v1 = v8_load(vj + 8);
                const f32x8 x0 = V8(e0[jj]), x1 = V8(e1[jj]), x2 = V8(e2[jj]), x3 = V8(e3[jj]);
                a00 = v8_fma(x0, v0, a00), a01 = v8_fma(x0, v1, a01);
                a10 = v8_fma(x1, v0, a10), a11 = v8_fma(x1, v1, a11);
                a20 = v8_fma(x2, v0, a20), a21 = v8_fma(x2, v1, a21);
                a30 = v8_fma(x3, v0, a30), a31 = v8_fma(x3, v1, a31);
            }
            v8_store(o[0], a00), v8_store(o[1], a10), v8_store(o[2], a20), v8_store(o[3], a30);
            v8_store(o[0] + 8, a01), v8_store(o[1] + 8, a11), v8_store(o[2] + 8, a21), v8_store(o[3] + 8, a31);
        }
        const int64_t m = D - c < nv * L ? D - c : nv * L;
        for (int r = 0; r < nr; r++) {
            for (int64_t d = 0; d < m; d++) o[r][d] = o[r][d] * inv[r];
            memcpy(orow[r] + c, o[r], (size_t)m * sizeof(float));
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
    case MUSAE_ISA_AMX:
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
