/* analyze's screened top-k encoder (analyze_encode.h has the argument): the choice of screen, the packing of W,
 * the bound, the per-row selection, and the AMX bf16 screen (the int16 one is eval/analyze_screen_i16.c, the
 * gather and the f32 rescore eval/analyze_rescore.c).
 *
 * A block of R rows of xc is quantized (bf16, or int16 with a scale per row), and one pass computes its [R, M]
 * screen with the bias added, keeping 16·G chunk maxima per row while each block of latents is in L1 (the k-th
 * largest chunk maximum is a lower bound θ of the k-th largest value: k distinct latents reach it). Then per row:
 * the candidates, the f32 rescore, and the exact top-k among the candidates.
 *
 * AMX layout. W_enc is packed once into AMX's B operand: latents in blocks of 16, and per block the d inputs in
 * pairs, [M/16][d/2][16][2] bf16 (zero-padded to d % 32 == 0 and M % 32 == 0); the rows are the A operand,
 * [R][d] bf16, and the screen runs 2×2 tiles (32 rows × 32 latents per accumulator set). The AMX code is compiled
 * for its target by function attributes only (the build stays baseline x86-64) and runs only where the CPU has
 * AMX-BF16 and the kernel grants the tile state (the amx ISA level, kernels/cpu/isa.h). */
#include "eval/analyze_encode.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "eval/analyze_rescore.h"
#include "eval/analyze_screen_i16.h"
#include "host/core/check.h"
#include "host/core/dtype.h"
#include "kernels/cpu/isa.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
#define ANALYZE_AMX 1
#include <immintrin.h>
#endif

enum { ROW_TILE = 16, PAIR_K = 32 };

struct analyze_screen {
    analyze_screen_kind kind;
    int avx512;             /* the gather and rescore variant (MUSAE_ISA avx512) */
    int64_t d, M, dp, Mp;   /* dp: d rounded up to 32 (AMX) or 2 (int16); Mp: M rounded up to 32 */
    int k, relu;            /* relu: only values > 0 are selected (the encoder); 0: any value (neighbours) */
    float thr;              /* > 0: a batch-top-k SAE's inference threshold: every value > thr, not the top k */
    const float *W, *b;     /* f32 W [M, d] and b [M] (the rescore): the caller's */
    float *zeros;           /* b when none was given */
    uint16_t *Wp;           /* AMX: [Mp/16][dp/2][16][2] bf16 */
    int16_t *Wq;            /* int16: [Mp/16][dp/2][16][2] (analyze_screen_i16.h) */
    float *sw;              /* int16: [Mp] the latents' scales */
    int Q;                  /* int16: the quantization range */
    double wmax, emax;      /* max_i ‖W_i‖₂ and max_i ‖W̃_i − W_i‖₂ (W̃: what the screen multiplies), rounded up */
    double bmax;            /* max_i |b_i| */
    double c_screen, c_rescore; /* the fp32 sums' relative errors (row_select has the whole bound) */
};

#ifdef ANALYZE_AMX
#define AMX_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,amx-tile,amx-bf16")))

/* The screen follows the ISA level: the amx level (kernels/cpu/isa.c probes the CPU and asks the kernel for the
 * tile state); MUSAE_ISA=avx512 or lower turns it off, as everywhere in musae. */
static int amx_usable(void) { return musae_isa_get() >= MUSAE_ISA_AMX; }

/* Tiles (musae_amx_configure: all eight 16 rows of 64 bytes): tmm0..3 accumulators [16 rows × 16 fp32], tmm4..5 A
 * [16 rows × 32 bf16], tmm6..7 B [16 pairs × 16 latents × 2 bf16]. */

/* out [R, Mp] (fp32, row stride Mp) = A [R, dp] (bf16) · W_encᵀ + b (bias_p: b padded with −inf, so padding
 * never ranks), R a multiple of 32; and while each 32 × 32 block is in L1, the row's chunk maxima: cmax [R, 16·G]
 * (−inf on entry), where chunk (g, lane) holds the latents 16·v + lane of the row's 16-wide vectors v ≡ g
 * (mod G). (Prefetching the next block's weights from L3 made no measurable difference.) */
AMX_TARGET static void amx_screen(const analyze_screen *a, const uint16_t *A, int64_t R, const float *bias_p, float *out,
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

/* Rows xc [nr, d] as AMX's A operand [R][dp] bf16 (rows nr.. zero: their screen is computed and ignored), and
 * per row nrm[3r..] = ‖xc‖₂, ‖x̃‖₂, ‖x̃ − xc‖₂ (x̃ = bf16(xc)), rounded up. */
static void amx_rows(const float *xc, int64_t nr, int64_t R, int64_t d, int64_t dp, uint16_t *A, double *nrm) {
    for (int64_t r = 0; r < R; r++) {
        double nx = 0, nxt = 0, ex = 0;
        for (int64_t j = 0; j < dp; j++) {
            const uint16_t b = r < nr && j < d ? musae_f32_to_bf16(xc[r * d + j]) : 0;
            A[r * dp + j] = b;
            if (r >= nr || j >= d) continue;
            const double x = xc[r * d + j], xt = musae_bf16_to_f32(b);
            nx += x * x;
            nxt += xt * xt;
            ex += (xt - x) * (xt - x);
        }
        nrm[3 * r] = sqrt(nx) * (1 + 1e-9), nrm[3 * r + 1] = sqrt(nxt) * (1 + 1e-9), nrm[3 * r + 2] = sqrt(ex) * (1 + 1e-9);
    }
}
#endif /* ANALYZE_AMX */

/* MUSAE_ANALYZE_SCREEN (analyze_encode.h), read once. */
static enum { ENV_AUTO, ENV_INT16, ENV_OFF, ENV_INT16_AVX2 } g_env;
static pthread_once_t g_env_once = PTHREAD_ONCE_INIT;

static void env_read(void) {
    const char *v = getenv("MUSAE_ANALYZE_SCREEN");
    if (!v || !*v || !strcmp(v, "auto")) return;
    if (!strcmp(v, "int16")) g_env = ENV_INT16;
    else if (!strcmp(v, "off")) g_env = ENV_OFF;
    else if (!strcmp(v, "int16-avx2")) g_env = ENV_INT16_AVX2;
    else musae_fail("MUSAE_ANALYZE_SCREEN=%s: unknown; use auto, int16, int16-avx2 or off", v);
}

/* Whether the CPU has `feature` (a CPUID name GCC knows; a string literal), on the builds with ISA variants. */
#if MUSAE_ISA_VARIANTS
#define CPU_HAS(feature) (__builtin_cpu_init(), __builtin_cpu_supports(feature))
#else
#define CPU_HAS(feature) 0
#endif

/* Whether this process can run screen `kind` now (the CPU, and MUSAE_ISA). */
static int kind_usable(analyze_screen_kind kind) {
    const musae_isa isa = musae_isa_get();
    switch (kind) {
    case ANALYZE_SCREEN_AMX:
#ifdef ANALYZE_AMX
        return amx_usable();
#else
        return 0;
#endif
    case ANALYZE_SCREEN_I16_AVX512_VNNI: return isa >= MUSAE_ISA_AVX512 && CPU_HAS("avx512vnni");
    case ANALYZE_SCREEN_I16_AVX2: return MUSAE_ISA_VARIANTS && isa >= MUSAE_ISA_AVX2;
    case ANALYZE_SCREEN_I16_AVX_VNNI: return isa >= MUSAE_ISA_AVX2 && CPU_HAS("avxvnni");
    default: return 0;
    }
}

analyze_screen_kind analyze_screen_choice(void) {
    pthread_once(&g_env_once, env_read);
    if (g_env == ENV_OFF) return ANALYZE_SCREEN_AUTO;
    if (g_env == ENV_AUTO && kind_usable(ANALYZE_SCREEN_AMX)) return ANALYZE_SCREEN_AMX;
    if (g_env != ENV_INT16_AVX2 && kind_usable(ANALYZE_SCREEN_I16_AVX512_VNNI)) return ANALYZE_SCREEN_I16_AVX512_VNNI;
    if (g_env != ENV_INT16_AVX2 && kind_usable(ANALYZE_SCREEN_I16_AVX_VNNI)) return ANALYZE_SCREEN_I16_AVX_VNNI;
    if (kind_usable(ANALYZE_SCREEN_I16_AVX2)) return ANALYZE_SCREEN_I16_AVX2;
    return ANALYZE_SCREEN_AUTO; /* none */
}

const char *analyze_screen_name(analyze_screen_kind kind) {
    switch (kind) {
    case ANALYZE_SCREEN_AMX: return "AMX bf16";
    case ANALYZE_SCREEN_I16_AVX512_VNNI: return "int16 AVX-512 VNNI";
    case ANALYZE_SCREEN_I16_AVX2: return "int16 AVX2";
    case ANALYZE_SCREEN_I16_AVX_VNNI: return "int16 AVX-VNNI";
    default: return "none";
    }
}

int analyze_screen_is_i16(analyze_screen_kind kind) {
    return kind == ANALYZE_SCREEN_I16_AVX2 || kind == ANALYZE_SCREEN_I16_AVX512_VNNI || kind == ANALYZE_SCREEN_I16_AVX_VNNI;
}

/* The int16 kernel of an int16 screen. */
static analyze_i16_kernel i16_kernel(analyze_screen_kind kind) {
    return kind == ANALYZE_SCREEN_I16_AVX512_VNNI ? ANALYZE_I16_AVX512_VNNI
           : kind == ANALYZE_SCREEN_I16_AVX_VNNI  ? ANALYZE_I16_AVX_VNNI
                                                  : ANALYZE_I16_AVX2;
}

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

/* The AMX operand: bf16 W in [Mp/16][dp/2][16][2]; returns max_i ‖bf16(W_i) − W_i‖₂, rounded up. */
static double amx_pack(const float *W, int64_t M, int64_t d, int64_t Mp, int64_t dp, uint16_t *Wp) {
    const int64_t half = dp / 2;
    memset(Wp, 0, sizeof(uint16_t) * (size_t)(Mp * dp));
    double emax = 0;
    for (int64_t i = 0; i < M; i++) {
        double e = 0;
        for (int64_t j = 0; j < d; j++) {
            const float w = W[i * d + j];
            const uint16_t wb = musae_f32_to_bf16(w);
            e += ((double)w - musae_bf16_to_f32(wb)) * ((double)w - musae_bf16_to_f32(wb));
            Wp[(((i / 16) * half + j / 2) * 16 + i % 16) * 2 + j % 2] = wb;
        }
        emax = sqrt(e) > emax ? sqrt(e) : emax;
    }
    return emax * (1 + 1e-9);
}

analyze_screen *analyze_screen_init_rows(const float *W, const float *bias, int64_t M, int64_t d, int k, int relu,
                                         analyze_screen_kind kind) {
    if (kind == ANALYZE_SCREEN_AUTO) kind = analyze_screen_choice();
    if (k <= 0 || M <= 0 || d <= 0 || M > INT32_MAX || d > INT32_MAX || kind == ANALYZE_SCREEN_AUTO ||
        !kind_usable(kind))
        return NULL;
    double wmax = 0, bmax = 0;
    for (int64_t i = 0; i < M; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)W[i * d + j] * W[i * d + j];
        const double bi = bias ? bias[i] : 0.0;
        if (!isfinite(s) || !isfinite(bi)) return NULL; /* the bound needs finite weights: sgemm then */
        wmax = sqrt(s) > wmax ? sqrt(s) : wmax;
        bmax = fabs(bi) > bmax ? fabs(bi) : bmax;
    }
    analyze_screen *a = musae_xcalloc(1, sizeof *a);
    a->kind = kind;
    a->avx512 = musae_isa_get() >= MUSAE_ISA_AVX512;
    a->d = d;
    a->M = M;
    a->Mp = (M + 31) / 32 * 32;
    a->k = k < M ? k : (int)M;
    a->relu = relu;
    a->W = W;
    if (!bias) bias = a->zeros = musae_xcalloc((size_t)M, sizeof(float));
    a->b = bias;
    a->wmax = wmax * (1 + 1e-9);
    a->bmax = bmax;
    const double u = ldexp(1, -24);
    /* the rescore's fp32 sum: ceil(d/16) + 4 roundings in a row (analyze_rescore.h), (d + 6)·u(1 + 2^-7) being
     * more than γ_n = n·u/(1 − n·u) for that n */
    a->c_rescore = (double)(d + 6) * u * (1 + ldexp(1, -7));
    if (kind == ANALYZE_SCREEN_AMX) {
        a->dp = (d + 31) / 32 * 32;
        a->Wp = musae_xmalloc(sizeof(uint16_t) * (size_t)(a->Mp * a->dp));
        a->emax = amx_pack(W, M, d, a->Mp, a->dp, a->Wp);
        /* the tiles' fp32 sums of exact bf16 products, in an order of the hardware's: at most γ_(d+2) */
        a->c_screen = (double)(d + 2) * u * (1 + ldexp(1, -7));
    } else {
        a->dp = (d + 1) / 2 * 2;
        a->Q = analyze_i16_range(d);
        a->Wq = musae_xmalloc(sizeof(int16_t) * (size_t)(a->Mp * a->dp));
        a->sw = musae_xmalloc(sizeof(float) * (size_t)a->Mp);
        a->emax = analyze_i16_pack(W, M, d, a->Mp, a->dp, a->Q, a->Wq, a->sw);
        a->c_screen = 0; /* the integer sum is exact; its conversion is in row_select's 4u term */
    }
    return a;
}

analyze_screen *analyze_screen_init_threshold(const float *W, const float *bias, int64_t M, int64_t d, float thr,
                                              analyze_screen_kind kind) {
    if (!(thr > 0) || !isfinite(thr)) return NULL;
    analyze_screen *a = analyze_screen_init_rows(W, bias, M, d, 1, 1, kind);
    if (a) a->thr = thr;
    return a;
}

analyze_screen *analyze_screen_init(const sae_model *m) {
    pthread_once(&g_env_once, env_read); /* a bad MUSAE_ANALYZE_SCREEN is refused whatever the SAE */
    if (m->batch_topk)
        return analyze_screen_init_threshold(m->p.W_enc, m->p.b_enc, m->M, m->d, (float)m->threshold, ANALYZE_SCREEN_AUTO);
    return analyze_screen_init_rows(m->p.W_enc, m->p.b_enc, m->M, m->d, m->k, 1, ANALYZE_SCREEN_AUTO);
}

analyze_screen_kind analyze_screen_kind_of(const analyze_screen *a) { return a->kind; }

void analyze_screen_free(analyze_screen *a) {
    if (!a) return;
    free(a->Wp);
    free(a->Wq);
    free(a->sw);
    free(a->zeros);
    free(a);
}

typedef struct {
    float v;
    int32_t i;
} cand;

static int cmp_cand(const void *x, const void *y) {
    const cand *p = x, *q = y;
    return better(p->v, p->i, q->v, q->i) ? -1 : better(q->v, q->i, p->v, p->i) ? 1 : 0;
}

/* One thread's scratch for row_select: M (+ 16) entries each. */
typedef struct {
    int32_t *ci;
    float *cv, *work, *p;
    cand *best;
} scratch;

/* The bound B with |a_i − p_i| <= B for every latent i of a row whose norms are nrm = ‖xc‖, ‖x̃‖, ‖x̃ − xc‖.
 * |a_i − p_i| <= |W̃_i·x̃ − W_i·xc| + the sums' and conversions' rounding + the bias additions' rounding, where
 * W̃_i·x̃ − W_i·xc = (W̃_i − W_i)·x̃ + W_i·(x̃ − xc), so by Cauchy–Schwarz with the rounding errors as they
 * are (not their worst case): emax·‖x̃‖ + wmax·‖x̃ − xc‖. With S >= Σ|W_ij xc_j| (the rescore's terms) and
 * St >= Σ|W̃_ij x̃_j| (the screen's): the screen's sum c_screen·St, the rescore's c_rescore·S, and at most
 * 4u·(|b| + St + S) for the conversions and the two bias additions (AMX: u·(St + |b|) + u·(S + |b|), to first
 * order; int16: float(S_int), sw·sx and the fma, 3u·St + u·|b|, and the rescore's u·(S + |b|)); 1e-30 for
 * what underflows (a scale product below 2^-126: at most 2^31·2^-149 in all). */
static double screen_bound(const analyze_screen *a, const double *nrm) {
    const double nx = nrm[0], nxt = nrm[1], ex = nrm[2], u = ldexp(1, -24);
    const double S = a->wmax * nx, St = (a->wmax + a->emax) * nxt;
    return a->emax * nxt + a->wmax * ex + a->c_screen * St + a->c_rescore * S + 4 * u * (a->bmax + St + S) + 1e-30;
}

/* c[0..n) by `better` (value descending, ties to the lower latent). */
static void sort_cands(cand *c, int64_t n) {
    if (n > 64) {
        qsort(c, (size_t)n, sizeof *c, cmp_cand);
        return;
    }
    for (int64_t q = 1; q < n; q++) { /* the usual few dozen: insertion sort, without qsort's indirect calls */
        const cand x = c[q];
        int64_t e = q;
        for (; e > 0 && better(x.v, x.i, c[e - 1].v, c[e - 1].i); e--) c[e] = c[e - 1];
        c[e] = x;
    }
}

/* A batch-top-k SAE's row (a->thr > 0): every latent whose f32 value p_i is > thr, as sae_model_threshold_codes
 * selects from the sgemm's. No latent with a_i < thr − B can have p_i > thr, so the others are rescored and kept
 * where p_i > thr. Writes the count (up to M) to idx/val (room for M), sorted like the top-k codes. */
static int64_t row_threshold(const analyze_screen *a, const float *s, const float *xc, double B, scratch *w,
                             int32_t *idx, float *val) {
    const float lo = isfinite(B) ? round_down((double)a->thr - B) : -INFINITY;
    const int64_t n1 = analyze_candidates(a->avx512, s, a->M, lo, w->ci, w->cv);
    analyze_rescore(a->avx512, a->W, a->b, a->d, xc, w->ci, n1, w->p);
    int64_t n = 0;
    for (int64_t q = 0; q < n1; q++)
        if (w->p[q] > a->thr) w->best[n].v = w->p[q], w->best[n++].i = w->ci[q];
    sort_cands(w->best, n);
    for (int64_t q = 0; q < n; q++) idx[q] = w->best[q].i, val[q] = w->best[q].v;
    return n;
}

/* One row: s [M] its screen (bias added), cmax [n_ch] its chunk maxima (n_ch >= k; reordered here); xc [d];
 * nrm: ‖xc‖, ‖x̃‖, ‖x̃ − xc‖. Writes at most k entries to idx/val, returns the count. */
static int64_t row_select(const analyze_screen *a, const float *s, float *cmax, int64_t n_ch, const float *xc,
                          const double *nrm, scratch *w, int32_t *idx, float *val) {
    const int64_t d = a->d, M = a->M, k = a->k;
    const double B = screen_bound(a, nrm);
    /* a bound too large to use: every latent is rescored. (W and b are finite (analyze_screen_init) and so is xc
     * (analyze skips rows that are not), so a NaN or infinite screen value needs S >= ~1e38, caught here.) */
    const int finite = isfinite(B) && B < 1e30;
    if (a->thr > 0) return row_threshold(a, s, xc, finite ? B : INFINITY, w, idx, val);
    /* stage 1: θ1 = the k-th largest chunk maximum (<= the k-th largest screen value: k latents reach it) */
    const double theta1 = finite && n_ch >= k ? kth_largest(cmax, n_ch, k) : -INFINITY;
    const double floor_ = a->relu ? -B : -INFINITY; /* relu: p_i <= 0 is never selected, nor a_i < −B */
    const float lo1 = finite ? round_down(theta1 - 2 * B > floor_ ? theta1 - 2 * B : floor_) : -INFINITY;
    const int64_t n1 = analyze_candidates(a->avx512, s, M, lo1, w->ci, w->cv);
    /* stage 2: θ2 = the k-th largest screen value itself (every value >= θ1 is among the candidates) */
    float lo2 = lo1;
    if (finite && n1 >= k) {
        memcpy(w->work, w->cv, sizeof(float) * (size_t)n1);
        const double theta2 = kth_largest(w->work, n1, k);
        lo2 = round_down(theta2 - 2 * B > floor_ ? theta2 - 2 * B : floor_);
    }
    int64_t n2 = 0;
    for (int64_t q = 0; q < n1; q++)
        if (!(w->cv[q] < lo2)) w->ci[n2++] = w->ci[q];
    analyze_rescore(a->avx512, a->W, a->b, d, xc, w->ci, n2, w->p);
    int64_t n = 0;
    for (int64_t q = 0; q < n2; q++)
        if (w->p[q] > 0 || !a->relu) w->best[n].v = w->p[q], w->best[n++].i = w->ci[q];
    sort_cands(w->best, n);
    const int out = (int)(n < k ? n : k);
    for (int q = 0; q < out; q++) idx[q] = w->best[q].i, val[q] = w->best[q].v;
    return out;
}

/* One block's codes under a threshold (analyze_screen_encode), grown by doubling. */
typedef struct {
    int32_t *idx;
    float *val;
    int64_t n, cap;
} block_codes;

static void block_codes_add(block_codes *b, const int32_t *idx, const float *val, int64_t n) {
    if (n == 0) return; /* (memcpy may not be given the NULL of an empty block, even for 0 bytes) */
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->idx = musae_xrealloc(b->idx, sizeof(int32_t) * (size_t)b->cap);
        b->val = musae_xrealloc(b->val, sizeof(float) * (size_t)b->cap);
    }
    memcpy(b->idx + b->n, idx, sizeof(int32_t) * (size_t)n);
    memcpy(b->val + b->n, val, sizeof(float) * (size_t)n);
    b->n += n;
}

void analyze_screen_encode(const analyze_screen *a, const float *xc, int64_t n, sae_codes *codes) {
    const int64_t d = a->d, dp = a->dp, Mp = a->Mp, M = a->M, k = a->k;
    const int amx = a->kind == ANALYZE_SCREEN_AMX;
#ifndef ANALYZE_AMX
    MUSAE_ASSERT(!amx, "an AMX screen in a build without AMX support");
#endif
    /* rows per screen block: the [R, Mp] fp32 screen stays near 2 MiB (L2), R a multiple of 32 */
    int64_t R = ((int64_t)1 << 19) / Mp / 32 * 32;
    R = R < 32 ? 32 : R > 256 ? 256 : R;
    const int thr = a->thr > 0;
    if (!thr && codes->cap < n * k) {
        codes->cap = n * k;
        codes->idx = musae_xrealloc(codes->idx, sizeof(int32_t) * (size_t)(codes->cap + 1));
        codes->val = musae_xrealloc(codes->val, sizeof(float) * (size_t)(codes->cap + 1));
    }
    int32_t *cnt = musae_xmalloc(sizeof(int32_t) * (size_t)(n + 1));
    const int64_t n_blocks = (n + R - 1) / R;
    /* a threshold's rows have any number of codes: each block's go to a buffer of its own, joined in order below */
    block_codes *bc = thr ? musae_xcalloc((size_t)n_blocks, sizeof(block_codes)) : NULL;
    /* chunk groups: 16·G chunk maxima per row, at least 2k (so the k-th largest is a close bound), at most one
     * 16-latent block per group */
    int64_t G = 2 * ((k + 15) / 16);
    G = G > Mp / 16 ? Mp / 16 : G;
    G = G < (k + 15) / 16 ? (k + 15) / 16 : G;
    float *bias_p = musae_xmalloc(sizeof(float) * (size_t)Mp);
    for (int64_t i = 0; i < Mp; i++) bias_p[i] = i < M ? a->b[i] : -INFINITY;
#pragma omp parallel
    {
#ifdef ANALYZE_AMX
        if (amx) musae_amx_configure();
#endif
        void *A = musae_xcalloc((size_t)(R * dp), amx ? sizeof(uint16_t) : sizeof(int16_t));
        float *sx = musae_xmalloc(sizeof(float) * (size_t)R);
        double *nrm = musae_xmalloc(sizeof(double) * (size_t)(3 * R));
        float *s = musae_xmalloc(sizeof(float) * (size_t)(R * Mp)), *cmax = musae_xmalloc(sizeof(float) * (size_t)(R * 16 * G));
        scratch w = {.ci = musae_xmalloc(sizeof(int32_t) * (size_t)(M + 16)),
                     .cv = musae_xmalloc(sizeof(float) * (size_t)(M + 16)),
                     .work = musae_xmalloc(sizeof(float) * (size_t)(M + 16)),
                     .p = musae_xmalloc(sizeof(float) * (size_t)(M + 16)),
                     .best = musae_xmalloc(sizeof(cand) * (size_t)(M + 1))};
        int32_t *ridx = thr ? musae_xmalloc(sizeof(int32_t) * (size_t)(M + 1)) : NULL;
        float *rval = thr ? musae_xmalloc(sizeof(float) * (size_t)(M + 1)) : NULL;
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < n_blocks; blk++) {
            const int64_t r0 = blk * R, nr = r0 + R <= n ? R : n - r0;
            for (int64_t q = 0; q < R * 16 * G; q++) cmax[q] = -INFINITY;
#ifdef ANALYZE_AMX
            if (amx) {
                amx_rows(xc + r0 * d, nr, R, d, dp, A, nrm);
                amx_screen(a, A, R, bias_p, s, cmax, G);
            }
#endif
            if (!amx) {
                analyze_i16_rows(xc + r0 * d, nr, R, d, dp, a->Q, A, sx, nrm);
                analyze_i16_screen(i16_kernel(a->kind), a->Wq, a->sw, A, sx, R, dp, Mp, bias_p,
                                   s, cmax, G);
            }
            for (int64_t r = 0; r < nr; r++) {
                const int64_t c = row_select(a, s + r * Mp, cmax + r * 16 * G, 16 * G, xc + (r0 + r) * d, nrm + 3 * r, &w,
                                             thr ? ridx : codes->idx + (r0 + r) * k, thr ? rval : codes->val + (r0 + r) * k);
                cnt[r0 + r] = (int32_t)c;
                if (thr) block_codes_add(&bc[blk], ridx, rval, c);
            }
        }
        free(ridx);
        free(rval);
        free(A);
        free(sx);
        free(nrm);
        free(s);
        free(cmax);
        free(w.ci);
        free(w.cv);
        free(w.work);
        free(w.p);
        free(w.best);
#ifdef ANALYZE_AMX
        if (amx) musae_amx_release();
#endif
    }
    free(bias_p);
    if (thr) { /* the blocks' buffers, in order */
        int64_t total = 0;
        for (int64_t b = 0; b < n_blocks; b++) total += bc[b].n;
        if (codes->cap < total) {
            codes->cap = total;
            codes->idx = musae_xrealloc(codes->idx, sizeof(int32_t) * (size_t)(codes->cap + 1));
            codes->val = musae_xrealloc(codes->val, sizeof(float) * (size_t)(codes->cap + 1));
        }
        int64_t at = 0;
        for (int64_t b = 0; b < n_blocks; b++) {
            if (bc[b].n) {
                memcpy(codes->idx + at, bc[b].idx, sizeof(int32_t) * (size_t)bc[b].n);
                memcpy(codes->val + at, bc[b].val, sizeof(float) * (size_t)bc[b].n);
            }
            at += bc[b].n;
            free(bc[b].idx);
            free(bc[b].val);
        }
        free(bc);
        codes->ptr[0] = 0;
        for (int64_t r = 0; r < n; r++) codes->ptr[r + 1] = codes->ptr[r] + cnt[r];
        codes->n_rows = n;
        free(cnt);
        return;
    }
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
}

/* The tile's scratch (analyze_screen_tile): which rows it holds and their bound, then nrm [3·TILE_ROWS] doubles,
 * sx [TILE_ROWS], cmax [TILE_ROWS·16] and bias [TILE_COLS] floats, and xq [TILE_ROWS][dp] int16. A thread's
 * consecutive tiles mostly share their rows, which are then quantized once. */
enum { TILE_ROWS = 256, TILE_COLS = 256 };

typedef struct {
    const float *x;     /* the rows quantized in xq (NULL: none yet) */
    int64_t nr;
    double B;           /* their largest bound */
} tile_rows;

void *analyze_screen_tile_ws(const analyze_screen *a) {
    tile_rows *h = musae_xmalloc(sizeof(tile_rows) + sizeof(double) * 3 * TILE_ROWS +
                                 sizeof(float) * (TILE_ROWS * 17 + TILE_COLS) + sizeof(int16_t) * (size_t)(TILE_ROWS * a->dp));
    h->x = NULL;
    return h;
}

double analyze_screen_tile(const analyze_screen *a, void *ws, const float *x, int64_t nr, int64_t j0, int64_t nj,
                           float *out) {
    MUSAE_ASSERT(analyze_screen_is_i16(a->kind), "analyze_screen_tile on the %s screen", analyze_screen_name(a->kind));
    MUSAE_ASSERT(nr > 0 && nr <= TILE_ROWS && nj > 0 && nj <= TILE_COLS && j0 % 32 == 0 && j0 + nj <= a->M,
                 "tile of %lld rows at column %lld + %lld", (long long)nr, (long long)j0, (long long)nj);
    const int64_t dp = a->dp, R = (nr + 31) / 32 * 32, njp = (nj + 31) / 32 * 32;
    tile_rows *h = ws;
    double *nrm = (double *)(h + 1);
    float *sx = (float *)(nrm + 3 * TILE_ROWS), *cmax = sx + TILE_ROWS, *bias = cmax + TILE_ROWS * 16;
    int16_t *xq = (int16_t *)(bias + TILE_COLS);
    if (h->x != x || h->nr != nr) {
        analyze_i16_rows(x, nr, R, a->d, dp, a->Q, xq, sx, nrm);
        h->x = x, h->nr = nr, h->B = 0;
        for (int64_t r = 0; r < nr; r++) {
            const double b = screen_bound(a, nrm + 3 * r);
            h->B = b > h->B ? b : h->B;
        }
    }
    for (int64_t c = 0; c < njp; c++) bias[c] = c < nj ? a->b[j0 + c] : -INFINITY;
    for (int64_t q = 0; q < R * 16; q++) cmax[q] = -INFINITY;
    analyze_i16_screen(i16_kernel(a->kind), a->Wq + (j0 / 16) * (dp / 2) * 32, a->sw + j0, xq,
                       sx, R, dp, njp, bias, out, cmax, 1);
    return h->B;
}
