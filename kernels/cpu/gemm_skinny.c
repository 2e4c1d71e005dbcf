/* C[m, n] = alpha · A[m, k] · B[n, k]ᵀ + beta · C for a few rows m: a decoding step's nn.Linear, where B is
 * the weight. The cost is reading B once from memory, so each thread streams its block of B rows, and each
 * row, once in L1, meets every row of A. Compiled for AVX-512, AVX2 and baseline x86-64, picked at run time
 * (the build itself targets baseline x86-64). beta == 0 never reads C (BLAS semantics). */
#include <omp.h>

#include "kernels/cpu/cpu_ops.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

enum { ROWS_PER_TASK = 16 };

CLONES static void rows_block(int64_t m, int64_t j0, int64_t j1, int64_t k, float alpha, const float *a, int64_t lda,
                              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    for (int64_t j = j0; j < j1; j++) {
        const float *bj = b + j * ldb;
        for (int64_t i = 0; i < m; i++) {
            const float *ai = a + i * lda;
            float s = 0;
#pragma omp simd reduction(+ : s)
            for (int64_t p = 0; p < k; p++) s += ai[p] * bj[p];
            float *cij = c + i * ldc + j;
            *cij = beta == 0.0f ? alpha * s : alpha * s + beta * *cij;
        }
    }
}

void cpu_gemm_nt_skinny(int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                        int64_t ldb, float beta, float *c, int64_t ldc) {
    const int64_t tasks = (n + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
#pragma omp parallel for schedule(dynamic, 4) if (n * k > (1 << 16) && tasks > 1)
    for (int64_t t = 0; t < tasks; t++) {
        const int64_t j0 = t * ROWS_PER_TASK, j1 = j0 + ROWS_PER_TASK < n ? j0 + ROWS_PER_TASK : n;
        rows_block(m, j0, j1, k, alpha, a, lda, b, ldb, beta, c, ldc);
    }
}
