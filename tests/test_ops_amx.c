/* The bf16x3 AMX GEMM (kernels/cpu/gemm_amx.c, the amx ISA level's many-row products with packed weights):
 *
 * - accuracy: against a double-precision sum, the rule of aesthetics §6 for a reduced-precision kernel: its
 *   error at most twice the fp32 FMA kernels' own (the "naive same-dtype reference"), plus one unit roundoff
 *   u = 2⁻²⁴ of Σ|a·b|; errors are measured per element relative to Σₚ |a_ip·b_jp|. A bf16x3 product that lost
 *   one of its correction terms is off by ~2⁻⁸ relative and fails by orders of magnitude;
 * - its definition: against gemm_amx_ref (the split, the part products, Intel's pseudo-code for TDPBF16PS) on
 *   sampled rows, within the recursive-summation bound (the hardware's sums round otherwise than the
 *   pseudo-code: see accuracy());
 * - NaN and infinities: rows and columns holding them give the FMA kernels' bits (gemm_nt_fma_ref), the others
 *   are untouched by them;
 * - per-element determinism, bit for bit: rows alone or inside a larger m at other offsets (across the 128-row
 *   chunks), 1, 2 and 3 threads, a column range packed on its own (other panel groups), GELU fused or after,
 *   cpu_linear_packed's dispatch by level; nothing written past n (sentinels).
 * Shapes: m = 9, 17, 504, 1000; n and k not multiples of 32, k past one block (256).
 * Skips, saying why, where the CPU has no AMX-BF16 (or the kernel refuses the tile state). */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "test.h"

#define U 0x1p-24 /* fp32 unit roundoff */
enum { GUARD = 3 };
static const uint32_t SENTINEL = 0x7fc0dead; /* a NaN payload nothing computes */

/* normal(0, 1)-ish (sum of uniforms) from Philox, stream by seed */
static float *rnd(int64_t n, uint64_t seed) {
    float *x = musae_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        const musae_u32x4 w = musae_philox(seed, 7, (uint64_t)i);
        x[i] = (float)(musae_u32_to_unit(w.v[0]) + musae_u32_to_unit(w.v[1]) + musae_u32_to_unit(w.v[2]) - 1.5) * 2.0f;
    }
    return x;
}

static float *packed(const float *w, int64_t n, int64_t k) {
    float *wp = musae_xmalloc(sizeof(float) * (size_t)cpu_packed_floats(n, k));
    cpu_pack_weights(wp, w, k, n, k);
    return wp;
}

/* C [m, ldc] with sentinels in the GUARD columns past n */
static float *out_c(int64_t m, int64_t ldc, const float *init, int64_t n) {
    float *c = musae_xmalloc(sizeof(float) * (size_t)(m * ldc));
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            if (j < n) c[i * ldc + j] = init ? init[i * n + j] : 0.0f;
            else memcpy(&c[i * ldc + j], &SENTINEL, sizeof SENTINEL);
        }
    return c;
}
static int guards_ok(const float *c, int64_t m, int64_t ldc, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = n; j < ldc; j++)
            if (memcmp(&c[i * ldc + j], &SENTINEL, sizeof SENTINEL)) return 0;
    return 1;
}
static int same_rows(const float *x, int64_t ldx, const float *y, int64_t ldy, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++)
        if (memcmp(x + i * ldx, y + i * ldy, sizeof(float) * (size_t)n)) return 0;
    return 1;
}

/* max over elements of |c − exact| / Σ|a·b| (exact: the double sum plus c0 when beta is 1) */
static double rel_err(const float *c, int64_t ldc, const float *a, const float *b, const float *c0, int64_t m,
                      int64_t n, int64_t k) {
    double worst = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = c0 ? c0[i * n + j] : 0.0, mag = c0 ? fabs(c0[i * n + j]) : 0.0;
            for (int64_t p = 0; p < k; p++) {
                const double t = (double)a[i * k + p] * b[j * k + p];
                s += t, mag += fabs(t);
            }
            const double e = fabs(c[i * ldc + j] - s) / (mag > 0 ? mag : 1);
            if (!(e <= worst)) worst = e; /* NaN too */
        }
    return worst;
}

/* Accuracy and the reference, one shape, beta 0 and 1. */
static void accuracy(int64_t m, int64_t n, int64_t k) {
    const int64_t ldc = n + GUARD;
    float *a = rnd(m * k, 1 + (uint64_t)m), *b = rnd(n * k, 2 + (uint64_t)n), *c0 = rnd(m * n, 3);
    float *bp = packed(b, n, k);
    for (int beta = 0; beta <= 1; beta++) {
        float *amx = out_c(m, ldc, beta ? c0 : NULL, n), *fma = out_c(m, ldc, beta ? c0 : NULL, n);
        cpu_gemm_amx_packed(m, n, k, a, k, bp, (float)beta, amx, ldc, 0);
        cpu_gemm_nt_fma_packed(m, n, k, a, k, bp, (float)beta, fma, ldc, 0);
        CHECK(guards_ok(amx, m, ldc, n), "amx %lldx%lldx%lld beta %d: wrote past n", (long long)m, (long long)n,
              (long long)k, beta);
        const double e_amx = rel_err(amx, ldc, a, b, beta ? c0 : NULL, m, n, k);
        const double e_fma = rel_err(fma, ldc, a, b, beta ? c0 : NULL, m, n, k);
        CHECK(e_amx <= 2 * e_fma + U, "amx %lldx%lldx%lld beta %d: error %.3g of Σ|ab| against the FMA kernels' %.3g "
              "(rule: ≤ 2x + u)", (long long)m, (long long)n, (long long)k, beta, e_amx, e_fma);
        /* the definition, on the first 9 rows and the last. TDPBF16PS on the hardware does not round as Intel's
         * pseudo-code (one fp32 sum per product) says: it agrees in ~100% of 32-term sums whose exponents span
         * a few binades, in ~40% of wider ones (it rounds about once per instruction), so the two are held to
         * the recursive-summation bound: each within n·u·Σ|ab| of the exact sum of the same part products (n:
         * the reference's additions into an element, 6·kp + 1; the hardware's are fewer), so at most twice that
         * apart. A part product left out is off by ~2⁻⁸ of it per position: the accuracy rule above catches that
         * at every shape, this bound only from k ~ 100 on. */
        const int64_t rows[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, m - 1};
        const int64_t kp = (k + 31) / 32 * 32, n_add = 6 * kp + 1;
        int64_t differ = 0;
        double worst = 0;
        for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
            const int64_t i = rows[r] < m ? rows[r] : m - 1;
            float *ref = out_c(1, ldc, beta ? c0 + i * n : NULL, n);
            gemm_amx_ref(1, n, k, a + i * k, k, b, k, (float)beta, ref, ldc, 0);
            for (int64_t j = 0; j < n; j++) {
                double mag = beta ? fabs(c0[i * n + j]) : 0.0;
                for (int64_t p = 0; p < k; p++) mag += fabs((double)a[i * k + p] * b[j * k + p]);
                differ += memcmp(&ref[j], &amx[i * ldc + j], sizeof(float)) != 0;
                const double d = fabs((double)ref[j] - amx[i * ldc + j]) / (mag > 0 ? mag : 1);
                if (!(d <= worst)) worst = d;
            }
            free(ref);
        }
        CHECK(worst <= 2.0 * (double)n_add * U, "amx %lldx%lldx%lld beta %d: %.3g of Σ|ab| from gemm_amx_ref (bound "
              "%.3g)", (long long)m, (long long)n, (long long)k, beta, worst, 2.0 * (double)n_add * U);
        printf("amx %lldx%lldx%lld beta %d: error %.3g of Σ|ab| (FMA kernels %.3g); gemm_amx_ref: %lld of %lld sampled "
               "elements differ, by at most %.3g of Σ|ab| (bound %.3g)\n", (long long)m, (long long)n, (long long)k,
               beta, e_amx, e_fma, (long long)differ, (long long)(10 * n), worst, 2.0 * (double)n_add * U);
        free(amx), free(fma);
    }
    free(a), free(b), free(c0), free(bp);
}

/* NaN and ±inf in rows of A and columns of B: those rows and columns are the FMA kernels' bits, the rest the
 * bits of the same product without them. */
static void non_finite(void) {
    const int64_t m = 40, n = 70, k = 300, ldc = n;
    float *a = rnd(m * k, 11), *b = rnd(n * k, 12);
    b[40 * k + 7] = 0.0f; /* for inf · 0 below */
    float *bp = packed(b, n, k), *clean = out_c(m, ldc, NULL, n);
    cpu_gemm_amx_packed(m, n, k, a, k, bp, 0.0f, clean, ldc, 0);
    a[3 * k + 17] = NAN, a[20 * k + 299] = INFINITY, a[21 * k] = -INFINITY;
    b[5 * k + 100] = INFINITY, b[66 * k + 31] = NAN;
    a[30 * k + 7] = INFINITY; /* inf · 0: NaN, as fmaf gives */
    free(bp), bp = packed(b, n, k);
    float *got = out_c(m, ldc, NULL, n), *want = out_c(m, ldc, NULL, n);
    cpu_gemm_amx_packed(m, n, k, a, k, bp, 0.0f, got, ldc, 0);
    gemm_nt_fma_ref(m, n, k, a, k, b, k, 0.0f, want, ldc);
    const int64_t bad_rows[] = {3, 20, 21, 30}, bad_cols[] = {5, 66};
    int64_t differ = 0, checked = 0, nonfinite = 0;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            int bad = 0;
            for (int r = 0; r < 4; r++) bad |= bad_rows[r] == i;
            for (int q = 0; q < 2; q++) bad |= bad_cols[q] == j;
            const float *ref = bad ? want : clean;
            differ += memcmp(&got[i * ldc + j], &ref[i * ldc + j], sizeof(float)) != 0;
            checked++, nonfinite += bad && !isfinite(got[i * ldc + j]);
        }
    CHECK(differ == 0, "non-finite inputs: %lld of %lld elements are not the FMA kernels' (bad rows, columns) or the "
          "clean product's bits", (long long)differ, (long long)checked);
    CHECK(nonfinite == 4 * n + 2 * m - 8, "non-finite inputs: %lld non-finite outputs (want every element of the bad "
          "rows and columns)", (long long)nonfinite);
    CHECK(isnan(got[30 * ldc + 40]), "inf · 0 gives NaN");
    printf("non-finite inputs: the FMA kernels' bits in 4 rows and 2 columns, the rest unchanged\n");
    free(a), free(b), free(bp), free(clean), free(got), free(want);
}

/* Per-element determinism: the same bits for a row whatever else is computed with it, and however. */
static void invariance(void) {
    const int64_t m = 1000, n = 200, k = 600, ldc = n + GUARD;
    float *a = rnd(m * k, 21), *b = rnd(n * k, 22), *bp = packed(b, n, k);
    float *full = out_c(m, ldc, NULL, n);
    cpu_gemm_amx_packed(m, n, k, a, k, bp, 0.0f, full, ldc, 0);
    /* rows alone or in other company: 9 rows at 3, 17 at 500 (across a 128-row chunk), 504 at 496, the last 9 */
    const int64_t sub[][2] = {{3, 9}, {500, 17}, {496, 504}, {991, 9}, {0, 1}};
    for (size_t s = 0; s < sizeof sub / sizeof sub[0]; s++) {
        const int64_t i0 = sub[s][0], ms = sub[s][1];
        float *c = out_c(ms, ldc, NULL, n);
        cpu_gemm_amx_packed(ms, n, k, a + i0 * k, k, bp, 0.0f, c, ldc, 0);
        CHECK(same_rows(c, ldc, full + i0 * ldc, ldc, ms, n) && guards_ok(c, ms, ldc, n),
              "rows %lld..%lld alone: other bits than inside m = %lld", (long long)i0, (long long)(i0 + ms - 1),
              (long long)m);
        free(c);
    }
    /* thread counts */
    const int dflt = omp_get_max_threads();
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        float *c = out_c(m, ldc, NULL, n);
        cpu_gemm_amx_packed(m, n, k, a, k, bp, 0.0f, c, ldc, 0);
        CHECK(same_rows(c, ldc, full, ldc, m, n), "%d threads: other bits than %d", t, dflt);
        free(c);
    }
    omp_set_num_threads(dflt);
    /* columns 64..199 as a matrix of their own (other panel groups, another edge) */
    float *bp2 = packed(b + 64 * k, n - 64, k), *c2 = out_c(m, ldc, NULL, n - 64);
    cpu_gemm_amx_packed(m, n - 64, k, a, k, bp2, 0.0f, c2, ldc, 0);
    CHECK(same_rows(c2, ldc, full + 64, ldc, m, n - 64), "columns 64..%lld packed alone: other bits", (long long)(n - 1));
    /* GELU fused == GELU after, beta 1 == beta 0 then c0 + t, and the dispatch of cpu_linear_packed by level */
    float *g = out_c(m, ldc, NULL, n), *after = out_c(m, ldc, NULL, n);
    cpu_gemm_amx_packed(m, n, k, a, k, bp, 0.0f, g, ldc, 1);
    for (int64_t i = 0; i < m; i++) cpu_gelu_range(after + i * ldc, full + i * ldc, n);
    CHECK(same_rows(g, ldc, after, ldc, m, n), "GELU fused: other bits than GELU after the product");
    float *c0 = rnd(m * n, 23), *acc = out_c(m, ldc, c0, n), *sum = out_c(m, ldc, NULL, n);
    cpu_gemm_amx_packed(m, n, k, a, k, bp, 1.0f, acc, ldc, 0);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) sum[i * ldc + j] = c0[i * n + j] + full[i * ldc + j];
    CHECK(same_rows(acc, ldc, sum, ldc, m, n), "beta 1: other bits than c + (the beta 0 product)");
    float *lin = out_c(m, ldc, NULL, n);
    cpu_linear_packed(lin, ldc, a, bp, m, n, k, 0.0f, 0);
    CHECK(same_rows(lin, ldc, full, ldc, m, n), "cpu_linear_packed at amx: not the AMX kernel's bits");
    musae_isa_set(MUSAE_ISA_AVX512);
    float *fma = out_c(m, ldc, NULL, n);
    cpu_gemm_nt_fma_packed(m, n, k, a, k, bp, 0.0f, fma, ldc, 0);
    cpu_linear_packed(lin, ldc, a, bp, m, n, k, 0.0f, 0);
    CHECK(same_rows(lin, ldc, fma, ldc, m, n), "cpu_linear_packed at avx512: not the FMA kernels' bits");
    CHECK(!same_rows(lin, ldc, full, ldc, m, n), "the AMX and FMA products have the same bits: is AMX running?");
    musae_isa_set(MUSAE_ISA_AMX);
    printf("invariance: rows alone and in company, 1-3 threads, column ranges, GELU fused, beta 1, dispatch\n");
    free(a), free(b), free(bp), free(full), free(bp2), free(c2), free(g), free(after), free(c0), free(acc), free(sum),
        free(lin), free(fma);
}

int main(void) {
    if (musae_isa_cpu() < MUSAE_ISA_AMX)
        TEST_SKIP("this CPU (%s) has no AMX-BF16 and AMX-TILE, or the kernel refused the tile state: the amx level "
                  "and its GEMM do not run here", musae_isa_name(musae_isa_cpu()));
    musae_isa_set(MUSAE_ISA_AMX); /* also where MUSAE_ISA lowers the level for the rest of musae */
    const int64_t shapes[][3] = {{9, 45, 7}, {17, 97, 600}, {504, 1024, 1024}, {1000, 70, 1100}, {33, 1031, 257}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) accuracy(shapes[s][0], shapes[s][1], shapes[s][2]);
    non_finite();
    invariance();
    TEST_END();
}
