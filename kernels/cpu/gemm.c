/* GEMM and nn.Linear on the CPU (row-major), OpenBLAS underneath.
 *
 * One thread pool. OpenBLAS's own pthreads and OpenMP's team would share the cores, each spinning while the
 * other works (measured on 2 cores: a quarter of a musicgen-small forward lost to sched_yield and libgomp
 * spin-waits). So OpenBLAS runs single-threaded, and a large product is split over the OpenMP threads into
 * column (or row) blocks, one sgemm each.
 * OpenBLAS is made single-threaded once for the process (cpu_blas_init), never switched back and forth
 * around a call: its thread count is one global, and with two host threads in BLAS at once (capture runs
 * EnCodec beside the decoder) one thread's restore let the other's sgemm run threaded, whose partition
 * rounds differently on some CPUs (Haswell/Zen kernels): a capture that differed in the last bits about
 * once in 25 runs. It also keeps results independent of the machine's core count and OPENBLAS_NUM_THREADS.
 * Skinny products (C = A·Bᵀ with at most SKINNY_M rows: every decoding step) skip BLAS: they are bound by
 * reading B once, which cpu_gemm_nt_skinny does at memory speed, where sgemm first packs B (about 3x
 * slower at 2 rows). */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "kernels/cpu/cpu_ops.h"

enum { SKINNY_M = 8, BLOCK_ALIGN = 16 };
#define PARALLEL_FLOPS 4.0e6 /* below this a team costs more than it saves */

static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
void cpu_blas_init(void) { pthread_once(&g_blas_once, blas_single_thread); }

static void sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void cpu_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
              const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    MUSAE_ASSERT(m >= 0 && n >= 0 && k >= 0 && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX,
                 "gemm dims %lld x %lld x %lld out of BLAS int range", (long long)m, (long long)n, (long long)k);
    if (m == 0 || n == 0) return;
    if (!trans_a && trans_b && m <= SKINNY_M) {
        cpu_gemm_nt_skinny(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cpu_blas_init();
    const int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    const int by_cols = n >= (int64_t)nt * 4 * BLOCK_ALIGN, by_rows = !by_cols && m >= (int64_t)nt * 4 * BLOCK_ALIGN;
    if (nt == 1 || (double)m * (double)n * (double)k < PARALLEL_FLOPS || (!by_cols && !by_rows)) {
        sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    } else {
        const int64_t len = by_cols ? n : m, per = ((len + nt - 1) / nt + BLOCK_ALIGN - 1) / BLOCK_ALIGN * BLOCK_ALIGN;
#pragma omp parallel num_threads(nt)
        {
            const int64_t s0 = per * omp_get_thread_num(), s1 = s0 + per < len ? s0 + per : len;
            if (s0 < s1) {
                if (by_cols) /* columns j of op(B) are rows of B when it is transposed */
                    sgemm(trans_a, trans_b, m, s1 - s0, k, alpha, a, lda, b + (trans_b ? s0 * ldb : s0), ldb, beta,
                          c + s0, ldc);
                else
                    sgemm(trans_a, trans_b, s1 - s0, n, k, alpha, a + (trans_a ? s0 : s0 * lda), lda, b, ldb, beta,
                          c + s0 * ldc, ldc);
            }
        }
    }
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
