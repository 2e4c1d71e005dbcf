/* GEMM and nn.Linear on the CPU (row-major), OpenBLAS underneath.
 *
 * One thread pool. OpenBLAS's own pthreads and OpenMP's team would share the cores, each spinning while the
 * other works (measured on 2 cores: a quarter of a musicgen-small forward lost to sched_yield and libgomp
 * spin-waits). So OpenBLAS runs single-threaded, and a large product is cut into tiles, one sgemm each, that
 * the OpenMP threads share.
 * OpenBLAS is made single-threaded once for the process (cpu_blas_init), never switched back and forth
 * around a call: its thread count is one global, and with two host threads in BLAS at once (capture runs
 * EnCodec beside the decoder) one thread's restore let the other's sgemm run threaded, whose partition
 * rounds differently on some CPUs (Haswell/Zen kernels): a capture that differed in the last bits about
 * once in 25 runs. It also keeps results independent of the machine's core count and OPENBLAS_NUM_THREADS.
 * The tiles are chosen from the product's shape alone, never from the thread count: OpenBLAS rounds an
 * element by its place in the sgemm that computes it (Haswell/Zen kernels: rows and columns near a call's
 * edge), so tiles cut per thread made results depend on OMP_NUM_THREADS. A tile is the largest of 512, 256
 * or 128 on a side that still gives MIN_TILES tiles, enough for a 16-core machine. Each tile packs its
 * slices of both operands again, which a machine with few cores pays for: a capture-sized product (504 x
 * 1024 x 1024, 16 tiles of 256 x 128) runs at 114-118 GFLOP/s per core with AVX-512 kernels where one sgemm
 * gave 140 (87 against 95 with Haswell kernels), and capture_bench's decoder took 16% more CPU time on one
 * thread (musicgen-small, 2 clips: 6.35 s against 5.5). With 16 threads the tiles are larger than the
 * 504 x 64 column blocks that one block per thread gave (about 100 GFLOP/s per core).
 * cpu_linear over more than SKINNY_M rows (prefill, capture) does not come here: it runs gemm_nt_fma.c's own
 * FMA kernels, whose bits do not depend on any cut, so they pack each weight panel once per product. With the
 * weights packed at load (cpu_linear_packed, the language model) the amx ISA level runs those products in
 * bf16x3 on AMX tiles instead (gemm_amx.c); the unpacked cpu_linear (EnCodec, T5, CLAP) keeps the FMA kernels,
 * so their outputs (EnCodec's codes against transformers') are the same at every level from avx2 up.
 * Skinny products (C = A·Bᵀ with at most SKINNY_M rows: every decoding step) skip BLAS: they are bound by
 * reading B once, which cpu_gemm_nt_skinny does at memory speed, where sgemm first packs B (about 3x
 * slower at 2 rows). Each of their elements is one thread's fixed-order sum, whatever the thread count. */
#include <cblas.h>
#include <omp.h>
#include <pthread.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"

enum { SKINNY_M = 8, TILE_MAX = 512, TILE_MIN = 128, MIN_TILES = 16 };
#define PARALLEL_FLOPS 4.0e6 /* below this a team costs more than it saves */

static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_single_thread(void) { openblas_set_num_threads(1); }
void cpu_blas_init(void) { pthread_once(&g_blas_once, blas_single_thread); }

void cpu_sgemm_tile(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                    const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    cpu_blas_init();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int cpu_gemm_grid(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, int64_t *tr, int64_t *tc) {
    *tr = m, *tc = n;
    if ((!trans_a && trans_b && m <= SKINNY_M) || (double)m * (double)n * (double)k < PARALLEL_FLOPS) return 0;
    *tr = *tc = TILE_MAX; /* halve the wider side (columns on a tie) until there are enough */
    while (cdiv(m, *tr) * cdiv(n, *tc) < MIN_TILES && (*tr > TILE_MIN || *tc > TILE_MIN)) {
        if (*tc >= *tr && *tc > TILE_MIN) *tc /= 2;
        else *tr /= 2;
    }
    return 1;
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
    int64_t tr, tc;
    if (!cpu_gemm_grid(trans_a, trans_b, m, n, k, &tr, &tc)) {
        cpu_sgemm_tile(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    const int64_t tiles_n = cdiv(n, tc), tiles = cdiv(m, tr) * tiles_n;
#pragma omp parallel for schedule(dynamic, 1) if (tiles > 1)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t i0 = t / tiles_n * tr, j0 = t % tiles_n * tc;
        const int64_t mi = m - i0 < tr ? m - i0 : tr, nj = n - j0 < tc ? n - j0 : tc;
        /* rows i of op(A) are columns of A when it is transposed, and likewise for op(B) */
        cpu_sgemm_tile(trans_a, trans_b, mi, nj, k, alpha, a + (trans_a ? i0 : i0 * lda), lda, b + (trans_b ? j0 * ldb : j0),
              ldb, beta, c + i0 * ldc + j0, ldc);
    }
}

void cpu_linear(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
                float beta) {
    /* many rows: our FMA kernels (no per-tile packing, thread-independent bits); few rows, a CPU without FMA,
     * or a beta BLAS must scale: cpu_gemm */
    if (m > SKINNY_M && (beta == 0.0f || beta == 1.0f) && cpu_gemm_nt_fma_ok())
        cpu_gemm_nt_fma(m, n, k, x, k, w, k, beta, y, n, 0);
    else
        cpu_gemm(0, 1, m, n, k, 1.0f, x, k, w, k, beta, y, n);
    if (bias) {
#pragma omp parallel for if (m * n > 65536)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) y[i * n + j] += bias[j];
    }
}

void cpu_linear_gelu(float *y, const float *x, const float *w, int64_t m, int64_t n, int64_t k) {
    if (m > SKINNY_M && cpu_gemm_nt_fma_ok()) { /* the activation while each tile is in cache: one pass less */
        cpu_gemm_nt_fma(m, n, k, x, k, w, k, 0.0f, y, n, 1);
        return;
    }
    cpu_linear(y, x, w, NULL, m, n, k, 0.0f);
    cpu_gelu(y, y, m * n);
}

const char *cpu_gemm_arith(void) {
    if (musae_isa_get() >= MUSAE_ISA_AMX) return "amx-bf16x3";
    return cpu_gemm_nt_fma_ok() ? "fma-fp32" : "openblas-fp32";
}

int64_t cpu_packed_floats_if_fma(int64_t n, int64_t k) { return cpu_gemm_nt_fma_ok() ? cpu_packed_floats(n, k) : 0; }

void cpu_linear_packed(float *y, int64_t ldy, const float *x, const float *wp, int64_t m, int64_t n, int64_t k,
                       float beta, int gelu) {
    MUSAE_ASSERT(m >= 0 && n >= 0 && k >= 0 && (beta == 0.0f || beta == 1.0f) && (!gelu || beta == 0.0f),
                 "linear_packed: %lld x %lld x %lld, beta %g, gelu %d", (long long)m, (long long)n, (long long)k,
                 (double)beta, gelu);
    if (m == 0 || n == 0) return;
    if (m > SKINNY_M) { /* cpu_linear's many-row path, the panels read where they lie; bf16x3 at the amx level */
        if (musae_isa_get() >= MUSAE_ISA_AMX)
            cpu_gemm_amx_packed(m, n, k, x, k, wp, beta, y, ldy, gelu);
        else
            cpu_gemm_nt_fma_packed(m, n, k, x, k, wp, beta, y, ldy, gelu);
        return;
    }
    cpu_gemm_nt_skinny_packed(m, n, k, x, k, wp, beta, y, ldy);
    if (gelu)
        for (int64_t i = 0; i < m; i++) cpu_gelu_range(y + i * ldy, y + i * ldy, n);
}
