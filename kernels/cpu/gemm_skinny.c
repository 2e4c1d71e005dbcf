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

/* The same sums with B packed (kernels/cpu/cpu_ops.h): 16 columns at a time, the vector lanes now the columns
 * and the 16 partial sums of the row loop above 16 vectors. Element (i, j) gets exactly the products, adds and
 * fold of rows_block_body (partial l sums the positions p ≡ l mod 16 in order, then the same fold), so both
 * layouts give the same bits; alpha is 1 and beta 0 or 1 (nn.Linear), so c = s or s + c as there. */
ISA_BODY void half_panel_body(int64_t m, int64_t nc, int64_t k, const float *a, int64_t lda, const float *bp,
                              float beta, float *c, int64_t ldc) {
    const int64_t k16 = k / 16 * 16;
    for (int64_t i = 0; i < m; i++) {
        const float *ai = a + i * lda;
        f32x16 acc[16];
        for (int l = 0; l < 16; l++) acc[l] = V16(0.0f);
        for (int64_t p = 0; p < k16; p += 16)
            for (int l = 0; l < 16; l++) acc[l] += V16(ai[p + l]) * v_load(bp + (p + l) * CPU_PACK_W);
        for (int64_t p = k16; p < k; p++) acc[p - k16] += V16(ai[p]) * v_load(bp + p * CPU_PACK_W);
        for (int w = 8; w > 0; w /= 2)
            for (int l = 0; l < w; l++) acc[l] += acc[l + w];
        float *ci = c + i * ldc;
        for (int64_t j = 0; j < nc; j++) ci[j] = beta == 0.0f ? acc[0][j] : acc[0][j] + ci[j];
    }
}
MUSAE_ISA_DISPATCH(half_panel,
                   (int64_t m, int64_t nc, int64_t k, const float *a, int64_t lda, const float *bp, float beta, float *c,
                    int64_t ldc),
                   (m, nc, k, a, lda, bp, beta, c, ldc))

void cpu_gemm_nt_skinny_packed(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *bp,
                               float beta, float *c, int64_t ldc) {
    MUSAE_ASSERT(beta == 0.0f || beta == 1.0f, "gemm_nt_skinny_packed: beta %g (0 or 1 only)", (double)beta);
    const int64_t tasks = (n + 15) / 16; /* half panels: half h of panel t starts at bp + t·k·PW + 16·h */
#pragma omp parallel for schedule(dynamic, 4) if (n * k > (1 << 16) && tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t j0 = t * 16, nc = n - j0 < 16 ? n - j0 : 16;
        half_panel(m, nc, k, a, lda, bp + j0 / CPU_PACK_W * k * CPU_PACK_W + j0 % CPU_PACK_W, beta, c + j0, ldc);
    }
}
