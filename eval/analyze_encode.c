/* The AMX bf16 screen and f32 rescore of analyze's top-k encoder (analyze_encode.h has the argument).
 *
 * Layout. W_enc is packed once into AMX's B operand: latents in blocks of 16, and per block the d inputs in
 * pairs, [M/16][d/2][16][2] bf16 (zero-padded to d % 32 == 0 and M % 32 == 0). A block of R rows of xc is
 * converted to bf16 [R][d] (the A operand), and one pass computes its [R, M] screen in fp32 with 2×2 tiles
 * (32 rows × 32 latents per accumulator set), adding the bias and keeping 16·G chunk maxima per row while each
 * block is in L1 (the k-th largest chunk maximum is a lower bound θ of the k-th largest value: k distinct latents
 * reach it). Then per row: the candidates, the f32 rescore, and the exact top-k among the candidates.
 *
 * The AMX code is compiled for its target by function attributes only (the build stays baseline x86-64) and
 * runs only where the CPU has AMX-BF16 and the kernel grants the tile state (arch_prctl). */
#include "eval/analyze_encode.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/log.h"
#include "kernels/cpu/isa.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define ANALYZE_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

enum { ROW_TILE = 16, PAIR_K = 32 };

struct analyze_amx {
    int64_t d, M, dp, Mp;  /* dp, Mp: d and M rounded up to 32 */
    int k, relu;           /* relu: only values > 0 are selected (the encoder); 0: any value (neighbours) */
    const float *W, *b;    /* f32 W [M, d] and b [M] (the rescore): the caller's */
    float *zeros;          /* b when none was given */
    uint16_t *Wp;          /* [Mp/16][dp/2][16][2] bf16 */
    double wmax, emax;     /* max_i ‖W_i‖₂ and max_i ‖W_i − bf16(W_i)‖₂, rounded up */
    double bmax;           /* max_i |b_i| */
    double c;              /* the fp32 sums' relative error (below) */
};

#ifdef ANALYZE_AMX
#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,amx-tile,amx-bf16")))

static int g_amx_ok;
static pthread_once_t g_amx_once = PTHREAD_ONCE_INIT;

/* AMX-BF16 and AMX-TILE (CPUID.7.0:EDX bits 22 and 24), and the kernel's permission for the tile data. */
static void amx_probe(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return;
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    g_amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
    if (!g_amx_ok) LOG_DEBUG("analyze: the CPU has AMX but the kernel refused the tile state: sgemm encoder");
}

static int amx_usable(void) {
    if (musae_isa_get() != MUSAE_ISA_AVX512) return 0;
    pthread_once(&g_amx_once, amx_probe);
    return g_amx_ok;
}

/* Tile palette 1: tmm0..3 accumulators [16 rows × 16 fp32], tmm4..5 A [16 rows × 32 bf16], tmm6..7 B
 * [16 pairs × 16 latents × 2 bf16]; every tile is 16 rows of 64 bytes. */
typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

/* A constant in memory: GCC 12 does not treat ldtilecfg as reading its operand, and dropped the stores of a
 * configuration built on the stack. */
static const tile_config TILE_CONFIG = {.palette = 1,
                                        .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
                                        .rows = {ROW_TILE, ROW_TILE, ROW_TILE, ROW_TILE, ROW_TILE, ROW_TILE, ROW_TILE, ROW_TILE}};

AMX_TARGET static void amx_configure(void) { _tile_loadconfig(&TILE_CONFIG); }

AMX_TARGET static void amx_release(void) { _tile_release(); }

/* out [R, Mp] (fp32, row stride Mp) = A [R, dp] (bf16) · W_encᵀ + b (bias_p: b padded with −inf, so padding
 * never ranks), R a multiple of 32; and while each 32 × 32 block is in L1, the row's chunk maxima: cmax [R, 16·G]
 * (−inf on entry), where chunk (g, lane) holds the latents 16·v + lane of the row's 16-wide vectors v ≡ g
 * (mod G). (Prefetching the next block's weights from L3 made no measurable difference.) */
AMX_TARGET static void amx_screen(const analyze_amx *a, const uint16_t *A, int64_t R, const float *bias_p, float *out,
                                  float *cmax, int64_t G) {
    const int64_t dp = a->dp, Mp = a->Mp, kc_n = dp / PAIR_K, blk = (dp / 2) * 32, n2 = Mp / 32;
    for (int64_t l2 = 0; l2 < n2; l2++) {
        const uint16_t *B0 = a->Wp + (2 * l2) * blk, *B1 = B0 + blk;
        const __m512 b0 = _mm512_loadu_ps(bias_p + l2 * 32), b1 = _mm512_loadu_ps(bias_p + l2 * 32 + 16);
        const int64_t g0 = (2 * l2) % G, g1 = (2 * l2 + 1) % G;
        for (int64_t r0 = 0; r0 < R; r0 += 32) {
            const uint16_t *A0 = A + r0 * dp, *A1 = A0 + 16 * dp;
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            for (int64_t kc = 0; kc < kc_n; kc++) {
                _tile_loadd(4, A0 + kc * PAIR_K, (int)(dp * 2));
                _tile_loadd(5, A1 + kc * PAIR_K, (int)(dp * 2));
                _tile_loadd(6, B0 + kc * 16 * 32, 64);
                _tile_loadd(7, B1 + kc * 16 * 32, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            float *o = out + r0 * Mp + l2 * 32;
            _tile_stored(0, o, (int)(Mp * 4));
            _tile_stored(1, o + 16, (int)(Mp * 4));
            _tile_stored(2, o + 16 * Mp, (int)(Mp * 4));
            _tile_stored(3, o + 16 * Mp + 16, (int)(Mp * 4));
            for (int64_t r = 0; r < 32; r++) {
                float *row = o + r * Mp, *cm = cmax + (r0 + r) * 16 * G;
                const __m512 v0 = _mm512_add_ps(_mm512_loadu_ps(row), b0), v1 = _mm512_add_ps(_mm512_loadu_ps(row + 16), b1);
                _mm512_storeu_ps(row, v0);
                _mm512_storeu_ps(row + 16, v1);
                _mm512_storeu_ps(cm + 16 * g0, _mm512_max_ps(_mm512_loadu_ps(cm + 16 * g0), v0));
                _mm512_storeu_ps(cm + 16 * g1, _mm512_max_ps(_mm512_loadu_ps(cm + 16 * g1), v1));
            }
        }
    }
}

/* The latents i < M with !(s[i] < lo) (a NaN is kept), into ci/cv; returns their count. */
AMX_TARGET static int64_t gather_candidates(const float *s, int64_t M, float lo, int32_t *ci, float *cv) {
    const __m512 vlo = _mm512_set1_ps(lo);
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    int64_t n = 0;
    for (int64_t i0 = 0; i0 < M; i0 += 16) {
        const __mmask16 in = M - i0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (M - i0)) - 1u);
        const __m512 v = _mm512_maskz_loadu_ps(in, s + i0);
        const __mmask16 m = _mm512_mask_cmp_ps_mask(in, v, vlo, _CMP_NLT_UQ);
        if (!m) continue;
        _mm512_mask_compressstoreu_ps(cv + n, m, v);
        _mm512_mask_compressstoreu_epi32(ci + n, m, _mm512_add_epi32(iota, _mm512_set1_epi32((int)i0)));
        n += __builtin_popcount(m);
    }
    return n;
}

/* Σ_j w[j]·x[j] in f32 (16 lanes, then the lanes' sum). */
AMX_TARGET static float dot_f32(const float *w, const float *x, int64_t d) {
    __m512 acc = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= d; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), acc);
    if (j < d) {
        const __mmask16 m = (__mmask16)((1u << (d - j)) - 1u);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + j), _mm512_maskz_loadu_ps(m, x + j), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#endif /* ANALYZE_AMX */

/* x as f32, rounded towards −∞ by a margin (a bound that excludes no more than x does). */
static float round_down(double x) { return (float)(x - fabs(x) * 1e-6); }

/* "(av, ai) ranks before (bv, bi)": larger value, or the same at a lower latent. */
static inline int better(float av, int32_t ai, float bv, int32_t bi) { return av > bv || (av == bv && ai < bi); }

/* The k-th largest of v[0..n) (1 <= k <= n), v reordered (quickselect, middle pivot). */
static float kth_largest(float *v, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1, want = k - 1;
    while (lo < hi) {
        const float p = v[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > p) i++;
            while (v[j] < p) j--;
            if (i <= j) {
                float t = v[i];
                v[i++] = v[j];
                v[j--] = t;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return v[want];
    }
    return v[want];
}

analyze_amx *analyze_amx_init_rows(const float *W, const float *bias, int64_t M, int64_t d, int k, int relu) {
#ifdef ANALYZE_AMX
    if (k <= 0 || M <= 0 || d <= 0 || M > INT32_MAX || !amx_usable()) return NULL;
    analyze_amx *a = musae_xcalloc(1, sizeof *a);
    a->d = d;
    a->M = M;
    a->dp = (d + 31) / 32 * 32;
    a->Mp = (M + 31) / 32 * 32;
    a->k = k < M ? k : (int)M;
    a->relu = relu;
    a->W = W;
    if (!bias) bias = a->zeros = musae_xcalloc((size_t)M, sizeof(float));
    a->b = bias;
    const int64_t half = a->dp / 2;
    a->Wp = musae_xcalloc((size_t)(a->Mp * a->dp), sizeof(uint16_t));
    double wmax = 0, emax = 0, bmax = 0;
    for (int64_t i = 0; i < M; i++) {
        double s = 0, e = 0;
        for (int64_t j = 0; j < d; j++) {
            const float w = W[i * d + j];
            const uint16_t wb = musae_f32_to_bf16(w);
            s += (double)w * w;
            e += ((double)w - musae_bf16_to_f32(wb)) * ((double)w - musae_bf16_to_f32(wb));
            a->Wp[(((i / 16) * half + j / 2) * 16 + i % 16) * 2 + j % 2] = wb;
        }
        if (!isfinite(s) || !isfinite(bias[i])) { /* the bound needs finite weights: sgemm then */
            analyze_amx_free(a);
            return NULL;
        }
        wmax = sqrt(s) > wmax ? sqrt(s) : wmax;
        emax = sqrt(e) > emax ? sqrt(e) : emax;
        bmax = fabs(bias[i]) > bmax ? fabs(bias[i]) : bmax;
    }
    a->wmax = wmax * (1 + 1e-9);
    a->emax = emax * (1 + 1e-9);
    a->bmax = bmax;
    /* the screen's and the rescore's fp32 sums: each at most (d + 2)·2^-24 relative to Σ_j |W̃_ij x̃_j| (resp.
     * |W_ij xc_j|), in any order (row_select has the whole bound) */
    a->c = 2.0 * (double)(d + 2) * ldexp(1, -24) * (1 + ldexp(1, -7));
    return a;
#else
    (void)W, (void)bias, (void)M, (void)d, (void)k, (void)relu;
    return NULL;
#endif
}

analyze_amx *analyze_amx_init(const sae_model *m) {
    if (m->batch_topk) return NULL;
    return analyze_amx_init_rows(m->p.W_enc, m->p.b_enc, m->M, m->d, m->k, 1);
}

void analyze_amx_free(analyze_amx *a) {
    if (!a) return;
    free(a->Wp);
    free(a->zeros);
    free(a);
}

#ifdef ANALYZE_AMX
typedef struct {
    float v;
    int32_t i;
} cand;

static int cmp_cand(const void *x, const void *y) {
    const cand *p = x, *q = y;
    return better(p->v, p->i, q->v, q->i) ? -1 : better(q->v, q->i, p->v, p->i) ? 1 : 0;
}

/* One row: s [M] its screen (bias added), cmax [n_ch] its chunk maxima (n_ch >= k; reordered here); xc [d].
 * Writes at most k entries to idx/val, returns the count. ci/cv/work: M entries each. */
AMX_TARGET static int row_select(const analyze_amx *a, const float *s, float *cmax, int64_t n_ch, const float *xc,
                                 int32_t *ci, float *cv, float *work, cand *best, int32_t *idx, float *val) {
    const int64_t d = a->d, M = a->M, k = a->k;
    /* |a_i − p_i| <= |W̃_i·x̃ − W_i·xc| + the sums' rounding + the bias additions' rounding, where
     * W̃_i·x̃ − W_i·xc = (W̃_i − W_i)·x̃ + W_i·(x̃ − xc), so by Cauchy–Schwarz with the rounding errors as they
     * are (not their worst case): emax·‖x̃‖ + wmax·‖x̃ − xc‖; Σ_j |W_ij xc_j| <= wmax·‖xc‖ =: S */
    double nx = 0, ex = 0, nxb = 0;
    for (int64_t j = 0; j < d; j++) {
        const double xb = musae_bf16_to_f32(musae_f32_to_bf16(xc[j]));
        nx += (double)xc[j] * xc[j];
        nxb += xb * xb;
        ex += (xb - xc[j]) * (xb - xc[j]);
    }
    nx = sqrt(nx) * (1 + 1e-9), nxb = sqrt(nxb) * (1 + 1e-9), ex = sqrt(ex) * (1 + 1e-9);
    const double S = a->wmax * nx, Sb = (a->wmax + a->emax) * nxb; /* >= Σ|W_ij xc_j|, Σ|W̃_ij x̃_j| */
    const double B = a->emax * nxb + a->wmax * ex + a->c * (S > Sb ? S : Sb) + ldexp(1, -22) * (a->bmax + 2 * Sb) + 1e-30;
    /* a bound too large to use: every latent is rescored. (W and b are finite (analyze_amx_init) and so is xc
     * (analyze skips rows that are not), so a NaN or infinite screen value needs S >= ~1e38, caught here.) */
    const int finite = isfinite(B) && B < 1e30;
    /* stage 1: θ1 = the k-th largest chunk maximum (<= the k-th largest screen value: k latents reach it) */
    const double theta1 = finite && n_ch >= k ? kth_largest(cmax, n_ch, k) : -INFINITY;
    const double floor_ = a->relu ? -B : -INFINITY; /* relu: p_i <= 0 is never selected, nor a_i < −B */
    const float lo1 = finite ? round_down(theta1 - 2 * B > floor_ ? theta1 - 2 * B : floor_) : -INFINITY;
    const int64_t n1 = gather_candidates(s, M, lo1, ci, cv);
    /* stage 2: θ2 = the k-th largest screen value itself (every value >= θ1 is among the candidates) */
    float lo2 = lo1;
    if (finite && n1 >= k) {
        memcpy(work, cv, sizeof(float) * (size_t)n1);
        const double theta2 = kth_largest(work, n1, k);
        lo2 = round_down(theta2 - 2 * B > floor_ ? theta2 - 2 * B : floor_);
    }
    int64_t n = 0;
    for (int64_t q = 0; q < n1; q++)
        if (!(cv[q] < lo2)) {
            const int32_t i = ci[q];
            const float p = dot_f32(a->W + (int64_t)i * d, xc, d) + a->b[i];
            if (p > 0 || !a->relu) best[n].v = p, best[n++].i = i;
        }
    qsort(best, (size_t)n, sizeof *best, cmp_cand);
    const int out = (int)(n < k ? n : k);
    for (int q = 0; q < out; q++) idx[q] = best[q].i, val[q] = best[q].v;
    return out;
}
#endif

void analyze_amx_encode(const analyze_amx *a, const float *xc, int64_t n, sae_codes *codes) {
#ifdef ANALYZE_AMX
    const int64_t d = a->d, dp = a->dp, Mp = a->Mp, M = a->M, k = a->k;
    /* rows per screen block: the [R, Mp] fp32 screen stays near 2 MiB (L2), R a multiple of 32 */
    int64_t R = ((int64_t)1 << 19) / Mp / 32 * 32;
    R = R < 32 ? 32 : R > 256 ? 256 : R;
    if (codes->cap < n * k) {
        codes->cap = n * k;
        codes->idx = musae_xrealloc(codes->idx, sizeof(int32_t) * (size_t)(codes->cap + 1));
        codes->val = musae_xrealloc(codes->val, sizeof(float) * (size_t)(codes->cap + 1));
    }
    int32_t *cnt = musae_xmalloc(sizeof(int32_t) * (size_t)(n + 1));
    const int64_t n_blocks = (n + R - 1) / R;
    /* chunk groups: 16·G chunk maxima per row, at least 2k (so the k-th largest is a close bound), at most one
     * vector per group */
    int64_t G = 2 * ((k + 15) / 16);
    G = G > Mp / 16 ? Mp / 16 : G;
    G = G < (k + 15) / 16 ? (k + 15) / 16 : G;
    float *bias_p = musae_xmalloc(sizeof(float) * (size_t)Mp);
    for (int64_t i = 0; i < Mp; i++) bias_p[i] = i < M ? a->b[i] : -INFINITY;
#pragma omp parallel
    {
        amx_configure();
        uint16_t *A = musae_xcalloc((size_t)(R * dp), sizeof(uint16_t));
        float *s = musae_xmalloc(sizeof(float) * (size_t)(R * Mp)), *cmax = musae_xmalloc(sizeof(float) * (size_t)(R * 16 * G));
        int32_t *ci = musae_xmalloc(sizeof(int32_t) * (size_t)(M + 16));
        float *cv = musae_xmalloc(sizeof(float) * (size_t)(M + 16)), *work = musae_xmalloc(sizeof(float) * (size_t)(M + 16));
        cand *best = musae_xmalloc(sizeof(cand) * (size_t)(M + 1));
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < n_blocks; blk++) {
            const int64_t r0 = blk * R, nr = r0 + R <= n ? R : n - r0;
            for (int64_t r = 0; r < R; r++) /* rows past n stay zero: their screen is computed and ignored */
                for (int64_t j = 0; j < d; j++) A[r * dp + j] = r < nr ? musae_f32_to_bf16(xc[(r0 + r) * d + j]) : 0;
            for (int64_t q = 0; q < R * 16 * G; q++) cmax[q] = -INFINITY;
            amx_screen(a, A, R, bias_p, s, cmax, G);
            for (int64_t r = 0; r < nr; r++)
                cnt[r0 + r] = row_select(a, s + r * Mp, cmax + r * 16 * G, 16 * G, xc + (r0 + r) * d, ci, cv,
                                         work, best, codes->idx + (r0 + r) * k, codes->val + (r0 + r) * k);
        }
        free(A);
        free(s);
        free(cmax);
        free(ci);
        free(cv);
        free(work);
        free(best);
        amx_release();
    }
    free(bias_p);
    /* pack the rows (written at r·k) into CSR */
    int64_t at = 0;
    codes->ptr[0] = 0;
    for (int64_t r = 0; r < n; r++) {
        if (at != r * k) {
            memmove(codes->idx + at, codes->idx + r * k, sizeof(int32_t) * (size_t)cnt[r]);
            memmove(codes->val + at, codes->val + r * k, sizeof(float) * (size_t)cnt[r]);
        }
        at += cnt[r];
        codes->ptr[r + 1] = at;
    }
    codes->n_rows = n;
    free(cnt);
#else
    (void)a, (void)xc, (void)n, (void)codes;
    MUSAE_ASSERT(0, "analyze_amx_encode without AMX support in this build");
#endif
}
