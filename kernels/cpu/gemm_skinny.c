/* C[m, n] = alpha · A[m, k] · B[n, k]ᵀ + beta · C for a few rows m: a decoding step's nn.Linear, where B is
 * the weight. The cost is reading B once from memory, so each thread streams its block of B rows, and each
 * row, once in L1, meets every row of A. Compiled for AVX-512, AVX2 and baseline x86-64, picked at run time
 * (kernels/cpu/isa.h), every variant with the same bits. beta == 0 never reads C (BLAS semantics). */
#include <omp.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_math.h"

enum { ROWS_PER_TASK = 16 };

ISA_BODY void rows_block_body(int64_t m, int64_t j0, int64_t j1, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    for (int64_t j = j0; j < j1; j++) {
        const float *bj = b + j * ldb;
        for (int64_t i = 0; i < m; i++) {
            const float *ai = a + i * lda;
            /* 16 partial sums folded in a fixed order: the same bits from every variant (a vectorizer's own
             * reduction would add in the vector width's order) */
            f32x16 acc = V16(0.0f);
            int64_t p = 0;
            for (; p + 16 <= k; p += 16) acc += v_load(ai + p) * v_load(bj + p);
            for (int l = 0; p + l < k; l++) acc[l] += ai[p + l] * bj[p + l];
            for (int w = 8; w > 0; w /= 2)
                for (int l = 0; l < w; l++) acc[l] += acc[l + w];
            const float s = acc[0];
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? alpha * s : alpha * s + beta * *cij;
        }
    }
}
MUSAE_ISA_DISPATCH(rows_block,
                   (int64_t m, int64_t j0, int64_t j1, int64_t k, float alpha, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc),
                   (m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc))

void cpu_gemm_nt_skinny(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc) {
    const int64_t tasks = (n + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
#pragma omp parallel for schedule(dynamic, 4) if (n * k > (1 << 16) && tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t j0 = t * ROWS_PER_TASK, j1 = j0 + ROWS_PER_TASK < n ? j0 + ROWS_PER_TASK : n;
        rows_block(m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}

/* The same sums with B packed (kernels/cpu/cpu_ops.h). Element (i, j) gets exactly the products, adds and fold
 * of rows_block_body: partial l sums the positions p ≡ l mod 16 in order, then the same fold, and c = s or
 * s + c (alpha is 1 and beta 0 or 1: nn.Linear), so both layouts give the same bits. Here the vector lanes are
 * columns and the 16 partial sums are 16 vectors; a task is one panel (32 columns). The panel is read from
 * memory once, in chunks of CHUNK positions (16 KiB) that stay in L1 while every row and column group runs
 * over them, the partial sums parked in `part` between chunks (an exact store and reload). With AVX-512 a
 * pass holds the 16 partial sums of 16 columns in 16 registers; the narrower levels hold half the partials of
 * 8 columns (lanes 0-7, then 8-15) so they fit AVX2's 16 registers. */
enum { CHUNK = 128, MAX_M = 8 };
typedef float f32x8 __attribute__((vector_size(32)));

#define SKINNY_PANEL_BODY(VT, CW, LG)                                                                              \
    const int64_t k16 = k / 16 * 16;                                                                              \
    VT part[MAX_M][CPU_PACK_W / CW][16];                                                                          \
    for (int64_t i = 0; i < m; i++)                                                                               \
        for (int g = 0; g < CPU_PACK_W / CW; g++)                                                                 \
            for (int l = 0; l < 16; l++) part[i][g][l] = (VT){0};                                                 \
    for (int64_t p0 = 0; p0 < k; p0 += CHUNK) {                                                                   \
        const int64_t p1 = p0 + CHUNK < k16 ? p0 + CHUNK : k16;                                                   \
        for (int64_t i = 0; i < m; i++) {                                                                         \
            const float *ai = a + i * lda;                                                                        \
            for (int g = 0; g < CPU_PACK_W / CW; g++)                                                             \
                for (int l0 = 0; l0 < 16; l0 += LG) {                                                             \
                    VT acc[LG];                                                                                   \
                    for (int l = 0; l < LG; l++) acc[l] = part[i][g][l0 + l];                                     \
                    const float *b = bp + g * CW + l0 * CPU_PACK_W;                                               \
                    for (int64_t p = p0; p < p1; p += 16)                                                         \
                        for (int l = 0; l < LG; l++) {                                                            \
                            VT x;                                                                                 \
                            __builtin_memcpy(&x, b + (p + l) * CPU_PACK_W, sizeof x);                             \
                            acc[l] += ai[p + l0 + l] * x;                                                         \
                        }                                                                                         \
                    if (p1 == k16) /* the last chunk: the positions past the last 16 go to partials 0, 1, .. */   \
                        for (int64_t p = k16; p < k; p++)                                                         \
                            if (p - k16 >= l0 && p - k16 < l0 + LG) {                                             \
                                VT x;                                                                             \
                                __builtin_memcpy(&x, bp + g * CW + p * CPU_PACK_W, sizeof x);                     \
                                acc[p - k16 - l0] += ai[p] * x;                                                   \
                            }                                                                                     \
                    for (int l = 0; l < LG; l++) part[i][g][l0 + l] = acc[l];                                     \
                }                                                                                                 \
        }                                                                                                         \
        if (p1 == k16) break;                                                                                     \
    }                                                                                                             \
    for (int64_t i = 0; i < m; i++)                                                                               \
        for (int g = 0; g < CPU_PACK_W / CW; g++) {                                                               \
            VT *q = part[i][g];                                                                                   \
            for (int w = 8; w > 0; w /= 2)                                                                        \
                for (int l = 0; l < w; l++) q[l] += q[l + w];                                                     \
            float *ci = c + i * ldc + g * CW;                                                                     \
            for (int64_t j = 0; j < CW && g * CW + j < nc; j++) ci[j] = beta == 0.0f ? q[0][j] : q[0][j] + ci[j]; \
        }

ISA_BODY void panel16_body(int64_t m, int64_t nc, int64_t k, const float *a, int64_t lda, const float *bp, float beta,
                           float *c, int64_t ldc) {
    SKINNY_PANEL_BODY(f32x16, 16, 16)
}
ISA_BODY void panel8_body(int64_t m, int64_t nc, int64_t k, const float *a, int64_t lda, const float *bp, float beta,
                          float *c, int64_t ldc) {
    SKINNY_PANEL_BODY(f32x8, 8, 8)
}
MUSAE_ISA_DISPATCH(panel16,
                   (int64_t m, int64_t nc, int64_t k, const float *a, int64_t lda, const float *bp, float beta, float *c,
                    int64_t ldc),
                   (m, nc, k, a, lda, bp, beta, c, ldc))
MUSAE_ISA_DISPATCH(panel8,
                   (int64_t m, int64_t nc, int64_t k, const float *a, int64_t lda, const float *bp, float beta, float *c,
                    int64_t ldc),
                   (m, nc, k, a, lda, bp, beta, c, ldc))

void cpu_gemm_nt_skinny_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp,
                               float beta, float *c, int64_t ldc) {
    MUSAE_ASSERT(beta == 0.0f || beta == 1.0f, "gemm_nt_skinny_packed: beta %g (0 or 1 only)", (double)beta);
    MUSAE_ASSERT(m >= 0 && m <= MAX_M, "gemm_nt_skinny_packed: %lld rows (at most %d)", (long long)m, MAX_M);
    const int64_t panels = (n + CPU_PACK_W - 1) / CPU_PACK_W;
    const int wide = musae_isa_get() >= MUSAE_ISA_AVX512;
#pragma omp parallel for schedule(dynamic, 2) if (n * k > (1 << 16) && panels > 1)
    for (int64_t t = 0; t < panels; t++) {
        const int64_t j0 = t * CPU_PACK_W, nc = n - j0 < CPU_PACK_W ? n - j0 : CPU_PACK_W;
        (wide ? panel16 : panel8)(m, nc, k, a, lda, bp + t * k * CPU_PACK_W, beta, c + j0, ldc);
    }
}
