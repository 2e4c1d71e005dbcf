/* expf over an array, 16 values at a time, with the bits of the C library's expf (the attention softmax's
 * exponentials: one libm call per score was ~6 % of a musicgen-small prefill, call overhead included).
 *
 * glibc (2.27 and later) computes expf in double: k = round(x·32/ln 2) by adding 1.5·2^52, r = x·32/ln 2 - k,
 * 2^(k/32) from a 32-entry table and the exponent bits, then a degree-3 polynomial in r; on a CPU with FMA
 * it runs the build with fused multiply-adds (__expf_fma). The AVX-512 path below is that sequence, operation
 * for operation, in 8 double lanes (constants and table as glibc 2.36 stores them in __exp2f_data), so each
 * value is bitwise what expf returns. Inputs where glibc leaves that path (|x| >= 88, NaN, infinities) are
 * handed to expf itself.
 *
 * A C library whose expf is another function (an older glibc, musl, a CPU without FMA where glibc picks its
 * SSE2 build) would get other bits from this path, so it is used only after a check at first use: 65536
 * inputs across the whole range must give expf's bits, else every call goes to expf (tests/test_ops checks
 * it on 2^22 more). Below AVX-512 (MUSAE_ISA) the scalar expf runs: the same bits. */
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"

static const uint64_t k_tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
/* 32/ln 2, the polynomial (scaled by 32^-3, 32^-2, 32^-1) and the rounding shift 1.5·2^52, as bit patterns */
#define K_INVLN2N 0x40471547652b82feull
#define K_C0 0x3ebc6af84b912394ull
#define K_C1 0x3f2ebfce50fac4f3ull
#define K_C2 0x3f962e42ff0c52d6ull
#define K_SHIFT 0x4338000000000000ull

static double bits_d(uint64_t u) {
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* 8 values (x already widened) → expf's main path */
__attribute__((target("arch=x86-64-v4"))) static __m256 exp8(__m256 xf) {
    const __m512d inv = _mm512_set1_pd(bits_d(K_INVLN2N)), shift = _mm512_set1_pd(bits_d(K_SHIFT));
    const __m512d xd = _mm512_cvtps_pd(xf);
    __m512d kd = _mm512_fmadd_pd(inv, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, shift);
    const __m512d r = _mm512_fmsub_pd(inv, xd, kd);
    const __m512i t = _mm512_add_epi64(_mm512_i64gather_epi64(_mm512_and_si512(ki, _mm512_set1_epi64(31)), k_tab, 8),
                                       _mm512_slli_epi64(ki, 47));
    const __m512d z = _mm512_fmadd_pd(r, _mm512_set1_pd(bits_d(K_C0)), _mm512_set1_pd(bits_d(K_C1)));
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(bits_d(K_C2)), _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_cvtpd_ps(_mm512_mul_pd(y, _mm512_castsi512_pd(t)));
}

__attribute__((target("arch=x86-64-v4"), noipa)) static void exp_avx512(float *y, const float *x, int64_t n) {
    int64_t j = 0;
    for (; j + 16 <= n; j += 16) {
        const __m512 xv = _mm512_loadu_ps(x + j);
        /* glibc's main path: the top 12 bits of |x| below those of 88.0f */
        const __m512i top = _mm512_and_si512(_mm512_srli_epi32(_mm512_castps_si512(xv), 20), _mm512_set1_epi32(0x7ff));
        const __mmask16 out = _mm512_cmpge_epi32_mask(top, _mm512_set1_epi32(0x42b));
        const __m256 lo = exp8(_mm512_castps512_ps256(xv)), hi = exp8(_mm512_extractf32x8_ps(xv, 1));
        float xs[16];
        memcpy(xs, x + j, sizeof xs); /* y may alias x */
        _mm256_storeu_ps(y + j, lo);
        _mm256_storeu_ps(y + j + 8, hi);
        for (int l = 0; out && l < 16; l++) /* below -104 glibc returns +0 (a masked score): no call */
            if (out >> l & 1) y[j + l] = xs[l] < -104.0f ? 0.0f : expf(xs[l]);
    }
    for (; j < n; j++) y[j] = expf(x[j]);
}

static int g_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* 65536 inputs over every exponent and sign, with the edges of glibc's paths: all must match expf */
static void self_check(void) {
    if (musae_isa_cpu() < MUSAE_ISA_AVX512) return;
    enum { N = 65536 };
    static float x[N], y[N];
    uint32_t s = 0x9e3779b9u;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        float v;
        memcpy(&v, &s, sizeof v);
        x[i] = i % 2 ? v : (float)(s >> 8) / 16777216.0f * -120.0f + 10.0f; /* any bits; the softmax's range */
    }
    const float edges[] = {0.0f, -0.0f, 88.0f, -88.0f, 88.72f, -103.0f, -103.3f, -103.97f, -104.0f, -104.5f,
                           -3.0e38f, -FLT_MAX, -0x1p-149f, INFINITY, -INFINITY, NAN};
    memcpy(x, edges, sizeof edges);
    exp_avx512(y, x, N);
    int ok = 1;
    for (int i = 0; i < N && ok; i++) {
        const float e = expf(x[i]);
        ok = !memcmp(&e, &y[i], sizeof e) || (isnan(e) && isnan(y[i]));
    }
    g_ok = ok;
}

int cpu_expf_vec_active(void) {
    pthread_once(&g_once, self_check);
    return g_ok && musae_isa_get() >= MUSAE_ISA_AVX512;
}

void cpu_expf_vec(float *y, const float *x, int64_t n) {
    if (cpu_expf_vec_active()) {
        exp_avx512(y, x, n);
        return;
    }
    for (int64_t j = 0; j < n; j++) y[j] = expf(x[j]);
}
