/* GEMM and nn.Linear through OpenBLAS (row-major cblas). */
#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    MUSAE_ASSERT(m >= 0 && n >= 0 && k >= 0 && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX,
                 "gemm dims %lld x %lld x %lld out of BLAS int range", (long long)m, (long long)n, (long long)k);
    if (m == 0 || n == 0) return;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void cpu_linear(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
                float beta) {
    cpu_gemm(0, 1, m, n, k, 1.0f, x, k, w, k, beta, y, n);
    if (bias) {
#pragma omp parallel for if (m * n > 65536)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) y[i * n + j] += bias[j];
    }
}
