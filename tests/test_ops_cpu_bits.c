/* Part of the op-test driver (tests/test_ops.c, which runs it): the CPU kernels' bit-for-bit promises against their
 * definitions at every ISA level: cpu_gemm_nt_fma against gemm_nt_fma_ref, weights packed once against the
 * unpacked calls, the vectorised expf against libm's. Split from test_ops.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/philox.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "test.h"
#include "test_ops.h"

/* uniform in [-scale, scale) from Philox (seed 2025, stream 0: other draws than test_ops.c's fill) */
static float *rnd_bits(int64_t n, float scale) {
    static uint64_t draw;
    float *x = musae_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++, draw++) {
        musae_u32x4 w = musae_philox(2025, 0, draw / 4);
        x[i] = scale * (2.0f * musae_u32_to_unit(w.v[draw % 4]) - 1.0f);
    }
    return x;
}

/* cpu_gemm_nt_fma (cpu_linear's many-row path) against its definition, gemm_nt_fma_ref, bit for bit, at every
 * ISA level: edge rows and columns of every kernel width, k past one block (KC 512) and not a multiple of 8,
 * rows past one chunk (MC 768), leading dimensions above the minimum, beta 0 and 1. */
static void gemm_nt_fma_bits(void) {
    if (!cpu_gemm_nt_fma_ok()) {
        printf("gemm_nt_fma part skipped: this CPU has no FMA (cpu_linear uses OpenBLAS)\n");
        return;
    }
    const int64_t shapes[][5] = {{13, 45, 7, 0, 0}, {67, 97, 600, 3, 1}, {800, 33, 70, 1, 0}, {9, 1031, 1100, 0, 1},
                                 {24, 64, 8, 2, 0}};
    const musae_isa top = musae_isa_cpu();
    for (int isa = (int)top; isa >= MUSAE_ISA_BASELINE; isa--) {
        musae_isa_set((musae_isa)isa);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ld = k + shapes[s][3], ldc = n + shapes[s][3];
            const float beta = (float)shapes[s][4];
            float *a = rnd_bits(m * ld, 1), *b = rnd_bits(n * ld, 1), *c = rnd_bits(m * ldc, 1), *want = musae_xmalloc(sizeof(float) * (size_t)(m * ldc));
            memcpy(want, c, sizeof(float) * (size_t)(m * ldc));
            gemm_nt_fma_ref(m, n, k, a, ld, b, ld, beta, want, ldc);
            cpu_gemm_nt_fma(m, n, k, a, ld, b, ld, beta, c, ldc, 0);
            CHECK(!memcmp(c, want, sizeof(float) * (size_t)(m * ldc)), "gemm_nt_fma %lldx%lldx%lld ld+%lld beta %g (%s): "
                  "bits differ from gemm_nt_fma_ref", (long long)m, (long long)n, (long long)k, (long long)shapes[s][3],
                  (double)beta, musae_isa_name((musae_isa)isa));
            /* with the GELU epilogue: the bits of the product, then cpu_gelu over each row */
            for (int64_t i = 0; i < m; i++) cpu_gelu_range(want + i * ldc, want + i * ldc, n);
            cpu_gemm_nt_fma(m, n, k, a, ld, b, ld, 0.0f, c, ldc, 1);
            if (beta == 0.0f)
                CHECK(!memcmp(c, want, sizeof(float) * (size_t)(m * ldc)), "gemm_nt_fma + gelu %lldx%lldx%lld (%s): bits "
                      "differ from gemm_nt_fma_ref then gelu", (long long)m, (long long)n, (long long)k,
                      musae_isa_name((musae_isa)isa));
            free(a), free(b), free(c), free(want);
        }
        printf("gemm_nt_fma (%s): %zu shapes, the bits of gemm_nt_fma_ref\n", musae_isa_name((musae_isa)isa),
               sizeof shapes / sizeof shapes[0]);
    }
    musae_isa_set(top);
}

/* cpu_expf_vec (the softmax's exponentials) gives expf's bits on 2^22 inputs: random bit patterns (every
 * exponent, NaNs, infinities) and the softmax's range [-110, 10]. On glibc 2.27+ with AVX-512 the vector
 * path must be the one in use (its check at first use passed): a wrong constant or step would turn it off,
 * which this test reports. */
static void expf_vec_bits(void) {
    const int64_t n = (int64_t)1 << 22;
    float *x = musae_xmalloc(sizeof(float) * (size_t)n), *y = musae_xmalloc(sizeof(float) * (size_t)n);
    uint32_t st = 12345u;
    for (int64_t i = 0; i < n; i++) {
        st = st * 1664525u + 1013904223u;
        if (i % 2) memcpy(&x[i], &st, sizeof st);
        else x[i] = (float)(st >> 8) / 16777216.0f * -120.0f + 10.0f;
    }
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 27)
    if (musae_isa_get() >= MUSAE_ISA_AVX512)
        CHECK(cpu_expf_vec_active(), "expf_vec: the AVX-512 path is off on glibc %d.%d (its check found other bits)",
              __GLIBC__, __GLIBC_MINOR__);
#endif
    memcpy(y, x, sizeof(float) * (size_t)n);
    cpu_expf_vec(y, y, n); /* in place, as the softmax calls it */
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        const float e = expf(x[i]);
        bad += memcmp(&e, &y[i], sizeof e) && !(isnan(e) && isnan(y[i]));
    }
    CHECK(bad == 0, "expf_vec (%s path): %lld of %lld values differ from expf", cpu_expf_vec_active() ? "vector" : "scalar",
          (long long)bad, (long long)n);
    printf("expf_vec: %lld values, expf's bits (%s path)\n", (long long)n, cpu_expf_vec_active() ? "AVX-512" : "scalar");
    free(x), free(y);
}

/* Weights packed once (cpu_pack_weights, the layout of cpu_linear_packed) give the bits of the unpacked call:
 * cpu_gemm_nt_fma_packed those of cpu_gemm_nt_fma, cpu_linear_packed those of cpu_linear / cpu_linear_gelu on
 * both of its paths (m <= 8: the skinny kernel; more: the FMA kernels), with y's rows wider than n, at every
 * FMA level (baseline, avx2, avx512); n not a multiple of the panel width (a zero-padded last panel), k not a multiple of 16 or 8; the
 * bf16 packer equals widening then packing; unpacking gives the rows back. A panel packed to the wrong place,
 * or a padded panel read past n, changes the products. */
static void linear_packed_bits(void) {
    if (!cpu_gemm_nt_fma_ok()) {
        printf("linear_packed part skipped: this CPU has no FMA (weights are not packed)\n");
        return;
    }
    const int64_t shapes[][4] = {{13, 45, 7, 0}, {67, 97, 600, 1}, {9, 1031, 1100, 1}, {8, 70, 53, 0}, {2, 64, 1024, 1},
                                 {1, 33, 16, 0}, {5, 200, 520, 1}, {40, 96, 4, 0}};
    /* the FMA levels only: at amx cpu_linear_packed computes in bf16x3 past 8 rows (tests/test_ops_amx.c) */
    const musae_isa top = musae_isa_cpu(), fma_top = top < MUSAE_ISA_AVX512 ? top : MUSAE_ISA_AVX512;
    for (int isa = (int)fma_top; isa >= MUSAE_ISA_BASELINE; isa--) {
        musae_isa_set((musae_isa)isa);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], ldy = n + 3;
            const float beta = (float)shapes[s][3];
            float *x = rnd_bits(m * k, 1), *w = rnd_bits(n * k, 1), *y0 = rnd_bits(m * ldy, 1);
            float *wp = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k));
            float *want = musae_xmalloc(sizeof(float) * (size_t)(m * n)), *got = musae_xmalloc(sizeof(float) * (size_t)(m * ldy));
            memset(wp, 0xff, sizeof(float) * (size_t)cpu_packed_floats(n, k)); /* NaN: padding must be written */
            CHECK(cpu_pack_weights(wp, w, k, n, k), "pack %lldx%lld: finite weights pass the check", (long long)n, (long long)k);
            for (int64_t at = 0; at < n * k; at += n * k / 3 + 1) { /* non-finite values anywhere are seen */
                const float keep = w[at];
                w[at] = at % 2 ? INFINITY : NAN;
                float *junk = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k));
                CHECK(!cpu_pack_weights(junk, w, k, n, k), "pack %lldx%lld: a non-finite value at %lld is reported",
                      (long long)n, (long long)k, (long long)at);
                free(junk);
                w[at] = keep;
            }
            float *back = musae_xmalloc(sizeof(float) * (size_t)(n * k));
            cpu_unpack_weights(back, wp, n, k);
            CHECK(!memcmp(back, w, sizeof(float) * (size_t)(n * k)), "pack then unpack %lldx%lld gives the rows back",
                  (long long)n, (long long)k);
            uint16_t *wb = musae_xmalloc(sizeof(uint16_t) * (size_t)(n * k));
            for (int64_t i = 0; i < n * k; i++) wb[i] = musae_f32_to_bf16(w[i]), back[i] = musae_bf16_to_f32(wb[i]);
            float *pb = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k)), *pw = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k));
            cpu_pack_weights_bf16(pb, wb, n, k);
            cpu_pack_weights(pw, back, k, n, k);
            CHECK(!memcmp(pb, pw, sizeof(float) * (size_t)cpu_packed_floats(n, k)), "bf16 packer %lldx%lld: widened then packed",
                  (long long)n, (long long)k);
            for (int gelu = 0; gelu <= (beta == 0.0f); gelu++) {
                for (int64_t i = 0; i < m; i++) memcpy(want + i * n, y0 + i * ldy, sizeof(float) * (size_t)n);
                if (gelu)
                    cpu_linear_gelu(want, x, w, m, n, k);
                else
                    cpu_linear(want, x, w, NULL, m, n, k, beta);
                memcpy(got, y0, sizeof(float) * (size_t)(m * ldy));
                cpu_linear_packed(got, ldy, x, wp, m, n, k, beta, gelu);
                int same = 1;
                for (int64_t i = 0; i < m; i++)
                    same &= !memcmp(got + i * ldy, want + i * n, sizeof(float) * (size_t)n) &&
                            !memcmp(got + i * ldy + n, y0 + i * ldy + n, sizeof(float) * 3);
                CHECK(same, "linear_packed %lldx%lldx%lld beta %g gelu %d (%s): the bits of cpu_linear%s, nothing past n "
                      "written", (long long)m, (long long)n, (long long)k, (double)beta, gelu,
                      musae_isa_name((musae_isa)isa), gelu ? "_gelu" : "");
            }
            if (m > 8) { /* the kernel entry itself against its definition */
                memcpy(got, y0, sizeof(float) * (size_t)(m * ldy));
                float *ref = musae_xmalloc(sizeof(float) * (size_t)(m * ldy));
                memcpy(ref, y0, sizeof(float) * (size_t)(m * ldy));
                gemm_nt_fma_ref(m, n, k, x, k, w, k, beta, ref, ldy);
                cpu_gemm_nt_fma_packed(m, n, k, x, k, wp, beta, got, ldy, 0);
                CHECK(!memcmp(got, ref, sizeof(float) * (size_t)(m * ldy)), "gemm_nt_fma_packed %lldx%lldx%lld (%s): the "
                      "bits of gemm_nt_fma_ref", (long long)m, (long long)n, (long long)k, musae_isa_name((musae_isa)isa));
                free(ref);
            }
            free(x), free(w), free(y0), free(wp), free(want), free(got), free(back), free(wb), free(pb), free(pw);
        }
        printf("linear_packed (%s): %zu shapes, the bits of the unpacked calls\n", musae_isa_name((musae_isa)isa),
               sizeof shapes / sizeof shapes[0]);
    }
    musae_isa_set(top);
}

void test_ops_cpu_bits(int *pass, int *fail) {
    gemm_nt_fma_bits();
    linear_packed_bits();
    expf_vec_bits();
    *pass = g_test_pass, *fail = g_test_fail;
}
