/* The CPU GEMM's ceiling and where musae's kernels stand against it (issue cpu-speed, teacher forcing), one
 * thread, GFLOP per CPU-second (the thread's own clock: steady on a shared host):
 *   peak      a register-only loop of independent FMAs (AVX-512 when the CPU has it, else AVX2): the most
 *             this core can do;
 *   per shape (the prefill's products: 504 rows against the q/o, fc1 and fc2 weights)
 *             musae rows   cpu_gemm_nt_fma with the weight as rows (each product packs every panel again),
 *             musae packed cpu_gemm_nt_fma_packed on the weight packed once (what the LM runs below amx),
 *             amx          cpu_gemm_amx_packed, the same packed weight in bf16x3 on AMX tiles (what the LM runs
 *                          at the amx level; fp32-equivalent FLOP, "-" without AMX),
 *             OpenBLAS     one single-threaded cblas_sgemm over the whole product, the peer's kind of kernel
 *                          (the same library PyTorch's MKL competes with), and the ratio packed / OpenBLAS.
 *   gemm_cpu_bench [--reps N]   (best of N, default 5, after a warm-up) */
#include <cblas.h>
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"

/* 24 independent accumulators: more than the FMA latency × ports needs, so the loop is bound by throughput */
__attribute__((target("arch=x86-64-v4"), noinline)) static float peak_512(long iters) {
    __m512 acc[24];
    for (int i = 0; i < 24; i++) acc[i] = _mm512_set1_ps((float)i * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 24
        for (int i = 0; i < 24; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    __m512 s = acc[0];
    for (int i = 1; i < 24; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("arch=x86-64-v3"), noinline)) static float peak_256(long iters) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float out[8], s = 0;
    __m256 t = acc[0];
    for (int i = 1; i < 12; i++) t = _mm256_add_ps(t, acc[i]);
    _mm256_storeu_ps(out, t);
    for (int i = 0; i < 8; i++) s += out[i];
    return s;
}

static float *rnd(int64_t n) {
    float *x = musae_xmalloc(sizeof(float) * (size_t)n);
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) s = s * 1664525u + 1013904223u, x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    return x;
}

int main(int argc, char **argv) {
    int reps = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else musae_fail("usage: gemm_cpu_bench [--reps N]");
    }
    if (argc % 2 == 0 || reps < 1) musae_fail("usage: gemm_cpu_bench [--reps N]");
    if (!cpu_gemm_nt_fma_ok()) musae_fail("gemm_cpu_bench: this CPU has no AVX2 + FMA (musae's kernels do not run)");
    omp_set_num_threads(1);
    cpu_blas_init();
    const int wide = musae_isa_get() >= MUSAE_ISA_AVX512;
    const long iters = 20000000;
    double best = 1e30;
    volatile float sink = 0;
    for (int r = 0; r <= reps; r++) {
        const double c0 = musae_thread_cpu();
        sink += wide ? peak_512(iters) : peak_256(iters);
        const double dc = musae_thread_cpu() - c0;
        if (r > 0 && dc < best) best = dc;
    }
    const double lanes = wide ? 16 : 8, per_iter = wide ? 24 : 12;
    printf("peak (%s, register FMAs, one thread): %.1f GFLOP per CPU-s\n", musae_isa_name(musae_isa_get()),
           2.0 * lanes * per_iter * (double)iters / best / 1e9);
    const int64_t shapes[][3] = {{504, 1024, 1024}, {504, 4096, 1024}, {504, 1024, 4096}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = rnd(m * k), *b = rnd(n * k), *c = musae_xmalloc(sizeof(float) * (size_t)(m * n));
        float *bp = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k));
        cpu_pack_weights(bp, b, k, n, k);
        double t[4] = {1e30, 1e30, 1e30, 1e30};
        const int amx = musae_isa_get() >= MUSAE_ISA_AMX;
        for (int r = 0; r <= reps; r++)
            for (int v = 0; v < 4; v++) { /* they alternate, so load changes hit each alike */
                if (v == 3 && !amx) continue;
                const double c0 = musae_thread_cpu();
                if (v == 0) cpu_gemm_nt_fma(m, n, k, a, k, b, k, 0.0f, c, n, 0);
                else if (v == 1) cpu_gemm_nt_fma_packed(m, n, k, a, k, bp, 0.0f, c, n, 0);
                else if (v == 3) cpu_gemm_amx_packed(m, n, k, a, k, bp, 0.0f, c, n, 0);
                else cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b,
                                 (int)k, 0.0f, c, (int)n);
                const double dc = musae_thread_cpu() - c0;
                if (r > 0 && dc < t[v]) t[v] = dc;
            }
        const double gf = 2.0 * (double)(m * n * k) / 1e9;
        char amx_s[32] = "-";
        if (amx) snprintf(amx_s, sizeof amx_s, "%.1f", gf / t[3]);
        printf("%lld x %lld x %lld: musae rows %.1f | musae packed %.1f | amx %s | OpenBLAS sgemm %.1f GFLOP per CPU-s | "
               "packed / OpenBLAS %.2fx, amx / packed %.2fx\n", (long long)m, (long long)n, (long long)k, gf / t[0],
               gf / t[1], amx_s, gf / t[2], t[2] / t[1], amx ? t[1] / t[3] : 0.0);
        free(a), free(b), free(c), free(bp);
    }
    /* a decoding step's products (2 rows: CFG), bound by streaming the weights: COPIES matrices of 16 MB,
     * more than the caches hold, as rows (cpu_gemm_nt_skinny) and packed (cpu_gemm_nt_skinny_packed) */
    enum { COPIES = 20 };
    const int64_t m = 2, n = 4096, k = 1024;
    float *x = rnd(m * k), *y = musae_xmalloc(sizeof(float) * (size_t)(m * n)), *w[COPIES], *wp[COPIES];
    for (int i = 0; i < COPIES; i++) {
        w[i] = rnd(n * k), wp[i] = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k));
        cpu_pack_weights(wp[i], w[i], k, n, k);
    }
    double t[2] = {1e30, 1e30};
    for (int r = 0; r <= reps; r++)
        for (int v = 0; v < 2; v++) {
            const double c0 = musae_thread_cpu();
            for (int i = 0; i < COPIES; i++)
                if (v == 0) cpu_gemm_nt_skinny(m, n, k, 1.0f, x, k, w[i], k, 0.0f, y, n);
                else cpu_gemm_nt_skinny_packed(m, n, k, x, k, wp[i], 0.0f, y, n);
            const double dc = musae_thread_cpu() - c0;
            if (r > 0 && dc < t[v]) t[v] = dc;
        }
    const double gb = (double)COPIES * (double)(n * k) * 4.0 / 1e9;
    printf("decoding step, %lld x %lld x %lld over %d weights (%.0f MB): rows %.2f | packed %.2f GB per CPU-s | "
           "packed / rows %.2fx\n", (long long)m, (long long)n, (long long)k, COPIES, gb * 1e3, gb / t[0], gb / t[1],
           t[0] / t[1]);
    for (int i = 0; i < COPIES; i++) free(w[i]), free(wp[i]);
    free(x), free(y);
    return sink == 12345.0f; /* keeps the peak loops from being optimised away */
}
