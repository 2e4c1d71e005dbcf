/* The int16 screen of analyze's encoder (analyze_screen_i16.h): quantization, packing, and the AVX2 and AVX-512
 * VNNI kernels.
 *
 * Kernels. Register blocks of rows × latents accumulate Σ_j qx_j·qw_ij over the input pairs: each step loads one
 * pair of every block latent's weights (16 latents per 512-bit vector, 8 per 256-bit) and broadcasts each row's
 * pair (x_{2p}, x_{2p+1}) as one int32. VNNI: 8 rows × 32 latents, vpdpwssd (32 products per instruction, two per
 * cycle on two-FMA-unit cores: twice the f32 FMA rate). AVX2: 6 rows × 16 latents, vpmaddwd then vpaddd (16
 * products per pair of instructions); AVX-VNNI: the same blocks with vpdpwssd on ymm. A block's weights (dp/2 × 32 latents × 4 bytes, 32 KiB at d 512) stay in L1
 * while every row of the block passes; the bias, the scales and the chunk maxima are applied while the block's
 * sums are in registers. Every kernel computes each value as fma(float(S), sw·sx, b) with the same integer S: the
 * same bits.
 *
 * The kernels are compiled for their targets by function attributes only (the build stays baseline x86-64). */
#include "eval/analyze_screen_i16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"

int analyze_i16_range(int64_t d) {
    int64_t q = (int64_t)sqrt((double)INT32_MAX / (double)d);
    while (q > 1 && d * q * q > INT32_MAX) q--; /* sqrt's rounding */
    while (d * (q + 1) * (q + 1) <= INT32_MAX) q++;
    return q > 32767 ? 32767 : (int)q;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#define T512V __attribute__((target("arch=x86-64-v4,avx512vnni")))
#define T256 __attribute__((target("arch=x86-64-v3")))
#define T256V __attribute__((target("arch=x86-64-v3,avxvnni")))

/* The int32 holding the input pair (x_{2p}, x_{2p+1}) at p. */
static inline int32_t pair_at(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* acc += the pair products of x and w. In asm because GCC 12, given the intrinsics, copies every accumulator to
 * another register once per step (a vmovdqa per multiply, which halved the kernels' rate); the asm updates each
 * accumulator in place. MADD_ADD: vpmaddwd into a temporary, then vpaddd. */
#define DPWSSD(acc, x, w) __asm__("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(x), "v"(w))
#define DPWSSD_VEX(acc, x, w) __asm__("%{vex%} vpdpwssd %2, %1, %0" : "+x"(acc) : "x"(x), "x"(w))
#define MADD_ADD(acc, x, w)                                                                                    \
    do {                                                                                                       \
        __m256i t_;                                                                                            \
        __asm__("vpmaddwd %2, %1, %0" : "=x"(t_) : "x"(x), "x"(w));                                            \
        __asm__("vpaddd %1, %0, %0" : "+x"(acc) : "x"(t_));                                                    \
    } while (0)

/* The register blocks' rows, spelt out so the accumulators stay in registers. */
#define ROWS4(X) X(0) X(1) X(2) X(3)
#define ROWS8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

/* The scale of a row whose largest magnitude is mx: mx / Q, or 0 (the row quantizes to 0) when that is not a
 * positive normal float. */
static float scale_of(float mx, int Q) {
    const float s = mx / (float)Q;
    return s >= 0x1p-126f ? s : 0.0f;
}

/* One row's quantization (analyze_i16_rows): q = round(x / s) with the vector rounding (to nearest even), and the
 * norms' sums of squares in double, 4 lanes each, then the lanes. */
T256 static void quantize_row(const float *x, int64_t d, int64_t dp, int Q, int16_t *q, float *sx, double *nrm) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 vmx = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= d; j += 8) vmx = _mm256_max_ps(vmx, _mm256_and_ps(_mm256_loadu_ps(x + j), absmask));
    float lanes[8], mx = 0.0f;
    _mm256_storeu_ps(lanes, vmx);
    for (int l = 0; l < 8; l++) mx = lanes[l] > mx ? lanes[l] : mx;
    for (; j < d; j++) mx = fabsf(x[j]) > mx ? fabsf(x[j]) : mx;
    const float s = *sx = scale_of(mx, Q);
    const float inv = s > 0 ? 1.0f / s : 0.0f;
    const __m256 vinv = _mm256_set1_ps(inv);
    const __m256i vq = _mm256_set1_epi32(Q), vnq = _mm256_set1_epi32(-Q);
    const __m256d vs = _mm256_set1_pd(s);
    __m256d nx = _mm256_setzero_pd(), nxt = _mm256_setzero_pd(), ex = _mm256_setzero_pd();
    for (j = 0; j + 16 <= d; j += 16) {
        __m256i q0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv));
        __m256i q1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), vinv));
        q0 = _mm256_max_epi32(_mm256_min_epi32(q0, vq), vnq);
        q1 = _mm256_max_epi32(_mm256_min_epi32(q1, vq), vnq);
        /* packs works within 128-bit halves: [q0 0-3, q1 0-3, q0 4-7, q1 4-7], put back in order */
        _mm256_storeu_si256((__m256i *)(q + j), _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xD8));
        const __m128i qs[4] = {_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1), _mm256_castsi256_si128(q1),
                               _mm256_extracti128_si256(q1, 1)};
        for (int h = 0; h < 4; h++) {
            const __m256d xv = _mm256_cvtps_pd(_mm_loadu_ps(x + j + 4 * h));
            const __m256d xt = _mm256_mul_pd(vs, _mm256_cvtepi32_pd(qs[h])); /* exact: 24 + 16 bits */
            const __m256d e = _mm256_sub_pd(xt, xv);
            nx = _mm256_fmadd_pd(xv, xv, nx);
            nxt = _mm256_fmadd_pd(xt, xt, nxt);
            ex = _mm256_fmadd_pd(e, e, ex);
        }
    }
    double sums[3][4];
    _mm256_storeu_pd(sums[0], nx);
    _mm256_storeu_pd(sums[1], nxt);
    _mm256_storeu_pd(sums[2], ex);
    double snx = sums[0][0] + sums[0][1] + sums[0][2] + sums[0][3];
    double snxt = sums[1][0] + sums[1][1] + sums[1][2] + sums[1][3];
    double sex = sums[2][0] + sums[2][1] + sums[2][2] + sums[2][3];
    for (; j < d; j++) {
        const float v = nearbyintf(x[j] * inv);
        q[j] = (int16_t)(v > Q ? Q : v < -Q ? -Q : v);
        const double xt = (double)s * q[j];
        snx += (double)x[j] * x[j];
        snxt += xt * xt;
        sex += (xt - x[j]) * (xt - x[j]);
    }
    for (; j < dp; j++) q[j] = 0;
    /* each sum of squares is within (d + 3)·2^-53 of its value: far inside the margin */
    nrm[0] = sqrt(snx) * (1 + 1e-9), nrm[1] = sqrt(snxt) * (1 + 1e-9), nrm[2] = sqrt(sex) * (1 + 1e-9);
}

void analyze_i16_rows(const float *xc, int64_t nr, int64_t R, int64_t d, int64_t dp, int Q, int16_t *xq, float *sx,
                      double *nrm) {
    for (int64_t r = 0; r < R; r++) {
        if (r < nr) {
            quantize_row(xc + r * d, d, dp, Q, xq + r * dp, sx + r, nrm + 3 * r);
            continue;
        }
        memset(xq + r * dp, 0, sizeof(int16_t) * (size_t)dp);
        sx[r] = 0.0f;
    }
}

double analyze_i16_pack(const float *W, int64_t M, int64_t d, int64_t Mp, int64_t dp, int Q, int16_t *Wq, float *sw) {
    const int64_t half = dp / 2;
    memset(Wq, 0, sizeof(int16_t) * (size_t)(Mp * dp));
    int16_t *q = musae_xmalloc(sizeof(int16_t) * (size_t)dp);
    double emax = 0, nrm[3];
    for (int64_t i = 0; i < Mp; i++) {
        if (i >= M) {
            sw[i] = 0.0f;
            continue;
        }
        quantize_row(W + i * d, d, dp, Q, q, sw + i, nrm); /* as the rows are: ‖W̃_i − W_i‖ is nrm[2] */
        emax = nrm[2] > emax ? nrm[2] : emax;
        for (int64_t j = 0; j < d; j++) Wq[(((i / 16) * half + j / 2) * 16 + i % 16) * 2 + j % 2] = q[j];
    }
    free(q);
    return emax;
}

T512V static void screen_vnni(const int16_t *Wq, const float *sw, const int16_t *xq, const float *sx, int64_t R,
                              int64_t dp, int64_t Mp, const float *bias_p, float *out, float *cmax, int64_t G) {
    const int64_t half = dp / 2, blk = half * 32; /* int16s per 16-latent block */
    for (int64_t v = 0; v < Mp / 16; v += 2) {
        const int16_t *B0 = Wq + v * blk, *B1 = B0 + blk;
        const __m512 s0 = _mm512_loadu_ps(sw + v * 16), s1 = _mm512_loadu_ps(sw + v * 16 + 16);
        const __m512 b0 = _mm512_loadu_ps(bias_p + v * 16), b1 = _mm512_loadu_ps(bias_p + v * 16 + 16);
        const int64_t g0 = v % G, g1 = (v + 1) % G;
        /* the next panel (2·half lines of 64 bytes) is requested into L2 while this one is used: L lines per
         * row block, one per step (L <= half since R >= 32) */
        const char *next = v + 2 < Mp / 16 ? (const char *)(B0 + 2 * blk) : NULL;
        const int64_t L = (2 * half * 8 + R - 1) / R;
        for (int64_t r0 = 0; r0 < R; r0 += 8) {
            const int16_t *X = xq + r0 * dp;
            const char *pf = next ? next + (r0 / 8) * L * 64 : NULL;
            const int64_t pf_n = next ? (2 * half - (r0 / 8) * L < L ? 2 * half - (r0 / 8) * L : L) : 0;
#define DECL(r) __m512i c0_##r = _mm512_setzero_si512(), c1_##r = _mm512_setzero_si512();
            ROWS8(DECL)
#undef DECL
            for (int64_t p = 0; p < half; p++) {
                if (p < pf_n) _mm_prefetch(pf + p * 64, _MM_HINT_T1);
                const __m512i w0 = _mm512_loadu_si512(B0 + p * 32), w1 = _mm512_loadu_si512(B1 + p * 32);
#define STEP(r)                                                       \
    {                                                                 \
        const __m512i xb = _mm512_set1_epi32(pair_at(X + (r) * dp + 2 * p)); \
        DPWSSD(c0_##r, xb, w0);                                       \
        DPWSSD(c1_##r, xb, w1);                                       \
    }
                ROWS8(STEP)
#undef STEP
            }
#define EPI(r)                                                                                                  \
    {                                                                                                           \
        const __m512 xs = _mm512_set1_ps(sx[r0 + (r)]);                                                         \
        float *o = out + (r0 + (r)) * Mp + v * 16, *cm = cmax + (r0 + (r)) * 16 * G;                            \
        const __m512 a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c0_##r), _mm512_mul_ps(s0, xs), b0);               \
        const __m512 a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(c1_##r), _mm512_mul_ps(s1, xs), b1);               \
        _mm512_storeu_ps(o, a0);                                                                                \
        _mm512_storeu_ps(o + 16, a1);                                                                           \
        _mm512_storeu_ps(cm + 16 * g0, _mm512_max_ps(_mm512_loadu_ps(cm + 16 * g0), a0));                       \
        _mm512_storeu_ps(cm + 16 * g1, _mm512_max_ps(_mm512_loadu_ps(cm + 16 * g1), a1));                       \
    }
            ROWS8(EPI)
#undef EPI
        }
    }
}

/* The ymm kernels (AVX2, AVX-VNNI): blocks of 6 rows × 16 latents, 12 accumulators (AVX-VNNI: a vpdpwssd's 5-cycle
 * latency at two per cycle needs 10 independent ones; AVX2: fewer loads per product than 4 rows; 15 of the 16 ymm
 * registers), then 4 or 2 rows for R's remainder (R % 8 == 0). OP(acc, x, w), defined around each instance, is
 * the multiply-add: MADD_ADD, or AVX-VNNI's vpdpwssd (the same exact int32 sums). While a block of latents passes every row group, each group asks
 * for L lines of the next block into L2. */
#define ROWS6(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define ROWS2(X) X(0) X(1)
#define SCREEN256_GROUP(ROWS)                                                                                   \
    {                                                                                                           \
        const int16_t *X = xq + r0 * dp;                                                                        \
        const char *pf = next ? next + gi * L * 64 : NULL;                                                      \
        const int64_t pf_n = next ? (half - gi * L < L ? half - gi * L : L) : 0;                                \
        ROWS(DECL)                                                                                              \
        for (int64_t p = 0; p < half; p++) {                                                                    \
            if (p < pf_n) _mm_prefetch(pf + p * 64, _MM_HINT_T1);                                               \
            const __m256i w0 = _mm256_loadu_si256((const __m256i *)(B + p * 32));                               \
            const __m256i w1 = _mm256_loadu_si256((const __m256i *)(B + p * 32 + 16));                          \
            ROWS(STEP)                                                                                          \
        }                                                                                                       \
        ROWS(EPI)                                                                                               \
    }
#define DEFINE_SCREEN256(NAME, TARGET)                                                                          \
    TARGET static void NAME(const int16_t *Wq, const float *sw, const int16_t *xq, const float *sx, int64_t R,   \
                            int64_t dp, int64_t Mp, const float *bias_p, float *out, float *cmax, int64_t G) {  \
        const int64_t half = dp / 2, blk = half * 32, groups = (R + 5) / 6;                                     \
        const int64_t L = (half + groups - 1) / groups;                                                         \
        for (int64_t v = 0; v < Mp / 16; v++) {                                                                 \
            const int16_t *B = Wq + v * blk;                                                                    \
            const __m256 s0 = _mm256_loadu_ps(sw + v * 16), s1 = _mm256_loadu_ps(sw + v * 16 + 8);              \
            const __m256 b0 = _mm256_loadu_ps(bias_p + v * 16), b1 = _mm256_loadu_ps(bias_p + v * 16 + 8);      \
            const int64_t g = v % G;                                                                            \
            const char *next = v + 1 < Mp / 16 ? (const char *)(B + blk) : NULL;                                \
            int64_t r0 = 0, gi = 0;                                                                             \
            for (; r0 + 6 <= R; r0 += 6, gi++) SCREEN256_GROUP(ROWS6)                                           \
            if (R - r0 == 4) SCREEN256_GROUP(ROWS4)                                                             \
            else if (R - r0 == 2) SCREEN256_GROUP(ROWS2)                                                        \
        }                                                                                                       \
    }
#define DECL(r) __m256i c0_##r = _mm256_setzero_si256(), c1_##r = _mm256_setzero_si256();
#define EPI(r)                                                                                                  \
    {                                                                                                           \
        const __m256 xs = _mm256_set1_ps(sx[r0 + (r)]);                                                         \
        float *o = out + (r0 + (r)) * Mp + v * 16, *cm = cmax + (r0 + (r)) * 16 * G + 16 * g;                   \
        const __m256 a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c0_##r), _mm256_mul_ps(s0, xs), b0);               \
        const __m256 a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(c1_##r), _mm256_mul_ps(s1, xs), b1);               \
        _mm256_storeu_ps(o, a0);                                                                                \
        _mm256_storeu_ps(o + 8, a1);                                                                            \
        _mm256_storeu_ps(cm, _mm256_max_ps(_mm256_loadu_ps(cm), a0));                                           \
        _mm256_storeu_ps(cm + 8, _mm256_max_ps(_mm256_loadu_ps(cm + 8), a1));                                   \
    }
#define STEP(r)                                                                \
    {                                                                          \
        const __m256i xb = _mm256_set1_epi32(pair_at(X + (r) * dp + 2 * p));   \
        OP(c0_##r, xb, w0);                                                    \
        OP(c1_##r, xb, w1);                                                    \
    }
#define OP MADD_ADD
DEFINE_SCREEN256(screen_avx2, T256)
#undef OP
/* AVX-VNNI (Alder Lake and later, Sierra Forest: AVX2 CPUs with VEX-encoded vpdpwssd on ymm) */
#define OP DPWSSD_VEX
DEFINE_SCREEN256(screen_avxvnni, T256V)
#undef OP
#undef STEP
#undef EPI
#undef DECL
#undef DEFINE_SCREEN256
#undef SCREEN256_GROUP

void analyze_i16_screen(analyze_i16_kernel kernel, const int16_t *Wq, const float *sw, const int16_t *xq, const float *sx,
                        int64_t R, int64_t dp, int64_t Mp, const float *bias_p, float *out, float *cmax, int64_t G) {
    MUSAE_ASSERT(R % 8 == 0 && Mp % 32 == 0 && dp % 2 == 0, "R %lld, Mp %lld, dp %lld", (long long)R, (long long)Mp,
                 (long long)dp);
    switch (kernel) {
    case ANALYZE_I16_AVX512_VNNI: screen_vnni(Wq, sw, xq, sx, R, dp, Mp, bias_p, out, cmax, G); break;
    case ANALYZE_I16_AVX_VNNI: screen_avxvnni(Wq, sw, xq, sx, R, dp, Mp, bias_p, out, cmax, G); break;
    default: screen_avx2(Wq, sw, xq, sx, R, dp, Mp, bias_p, out, cmax, G);
    }
}
#else
double analyze_i16_pack(const float *W, int64_t M, int64_t d, int64_t Mp, int64_t dp, int Q, int16_t *Wq, float *sw) {
    MUSAE_ASSERT(0, "analyze_i16_pack in a build without x86-64 variants");
    return 0;
}

void analyze_i16_rows(const float *xc, int64_t nr, int64_t R, int64_t d, int64_t dp, int Q, int16_t *xq, float *sx,
                      double *nrm) {
    MUSAE_ASSERT(0, "analyze_i16_rows in a build without x86-64 variants");
}

void analyze_i16_screen(analyze_i16_kernel kernel, const int16_t *Wq, const float *sw, const int16_t *xq, const float *sx,
                        int64_t R, int64_t dp, int64_t Mp, const float *bias_p, float *out, float *cmax, int64_t G) {
    MUSAE_ASSERT(0, "analyze_i16_screen in a build without x86-64 variants");
}
#endif
