/* Candidate gather and exact f32 rescore of analyze's screened encoder (analyze_rescore.h), AVX-512 and AVX2.
 *
 * Both variants are compiled for their targets by function attributes only (the build stays baseline x86-64);
 * they run only where kernels/cpu/isa.h says the CPU and MUSAE_ISA allow. */
#include "eval/analyze_rescore.h"

#include "host/core/check.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

#define T512 __attribute__((target("arch=x86-64-v4")))
#define T256 __attribute__((target("arch=x86-64-v3")))

/* The lanes' fixed tree on s8 = lanes l + (l + 8): (l, l + 4), then (l, l + 2), then (0, 1). Used by both variants,
 * so the AVX2 one inlines the same instructions (a v3 function may inline into v4, not the reverse). */
T256 static inline float tree8(__m256 s8) {
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

T512 static float dot512(const float *w, const float *x, int64_t d) {
    __m512 acc = _mm512_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= d; j += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(w + j), _mm512_loadu_ps(x + j), acc);
    if (j < d) { /* the tail's missing lanes add 0·0 (as the AVX2 variant's masked loads do) */
        const __mmask16 m = (__mmask16)((1u << (d - j)) - 1u);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + j), _mm512_maskz_loadu_ps(m, x + j), acc);
    }
    return tree8(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
}

T256 static float dot256(const float *w, const float *x, int64_t d) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 16 <= d; j += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
    }
    if (j < d) {
        const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d - j)), iota);
        const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(d - j - 8)), iota);
        a0 = _mm256_fmadd_ps(_mm256_maskload_ps(w + j, m0), _mm256_maskload_ps(x + j, m0), a0);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(w + j + 8, m1), _mm256_maskload_ps(x + j + 8, m1), a1);
    }
    return tree8(_mm256_add_ps(a0, a1));
}

/* The candidates' rows are scattered over W (16 MiB at d 512 and 8192 latents: L3), so the rescore waits on
 * memory, not on the multiplies: each row's cache lines are requested two candidates ahead. */
static inline void prefetch_row(const float *w, int64_t d) {
    for (int64_t j = 0; j < d; j += 16) __builtin_prefetch(w + j);
}

T512 static void rescore512(const float *W, const float *b, int64_t d, const float *x, const int32_t *ci, int64_t n,
                            float *p) {
    for (int64_t q = 0; q < n; q++) {
        if (q + 2 < n) prefetch_row(W + (int64_t)ci[q + 2] * d, d);
        p[q] = dot512(W + (int64_t)ci[q] * d, x, d) + b[ci[q]];
    }
}

T256 static void rescore256(const float *W, const float *b, int64_t d, const float *x, const int32_t *ci, int64_t n,
                            float *p) {
    for (int64_t q = 0; q < n; q++) {
        if (q + 2 < n) prefetch_row(W + (int64_t)ci[q + 2] * d, d);
        p[q] = dot256(W + (int64_t)ci[q] * d, x, d) + b[ci[q]];
    }
}

T512 static int64_t gather512(const float *s, int64_t M, float lo, int32_t *ci, float *cv) {
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

T256 static int64_t gather256(const float *s, int64_t M, float lo, int32_t *ci, float *cv) {
    const __m256 vlo = _mm256_set1_ps(lo);
    int64_t n = 0;
    for (int64_t i0 = 0; i0 < M; i0 += 8) {
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + i0), vlo, _CMP_NLT_UQ));
        if (M - i0 < 8) m &= (1u << (M - i0)) - 1u;
        for (; m; m &= m - 1) {
            const int64_t i = i0 + __builtin_ctz(m);
            ci[n] = (int32_t)i, cv[n++] = s[i];
        }
    }
    return n;
}

void analyze_rescore(int avx512, const float *W, const float *b, int64_t d, const float *x, const int32_t *ci,
                     int64_t n, float *p) {
    if (avx512) rescore512(W, b, d, x, ci, n, p);
    else rescore256(W, b, d, x, ci, n, p);
}

int64_t analyze_candidates(int avx512, const float *s, int64_t M, float lo, int32_t *ci, float *cv) {
    return avx512 ? gather512(s, M, lo, ci, cv) : gather256(s, M, lo, ci, cv);
}
#else
void analyze_rescore(int avx512, const float *W, const float *b, int64_t d, const float *x, const int32_t *ci,
                     int64_t n, float *p) {
    MUSAE_ASSERT(0, "analyze_rescore in a build without x86-64 variants");
}

int64_t analyze_candidates(int avx512, const float *s, int64_t M, float lo, int32_t *ci, float *cv) {
    MUSAE_ASSERT(0, "analyze_candidates in a build without x86-64 variants");
    return 0;
}
#endif
