/* analyze's screened encoder (eval/analyze_encode.h) against plain double loops: for every row, the selected
 * latents must be the top k of the pre-activations (value descending, > 0 only) up to fp32 summation noise, and
 * each value the f32 pre-activation within 1e-5 relative. Every screen this CPU can run is tested (AMX bf16, int16
 * with AVX-512 VNNI, int16 with AVX2 at MUSAE_ISA avx512 and avx2, i.e. both rescore variants), and all of them
 * must return the same codes bit for bit. Shapes: 4096 latents, k 32 with random weights, padded shapes, an
 * adversarial SAE whose latents share one direction up to perturbations below bf16's resolution (and about int16's
 * step), so the screen cannot order them and every row's selection rests on the error bound (with the bound set
 * to 0 these fail), the same without the ReLU (values of any sign, no bias: the decoder neighbours' use), and a
 * saturated one where every quantized product is ±Q², the int32 sums' largest case; and a batch-top-k SAE's
 * threshold (every value above it, none below, beyond the noise) on random rows and on adversarial ones with the
 * threshold at their mean, where half the latents lie within the bound of it. Skips (77) only where the CPU
 * has neither AMX nor AVX2 (the sgemm path, tested by test_analyze, runs there). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/analyze_encode.h"
#include "eval/analyze_screen_i16.h"
#include "kernels/cpu/isa.h"
#include "sae/sae.h"
#include "test.h"
#include "test_rand.h"
#include "test_screens.h"

/* (av, ai) ranks before (bv, bi): a larger value, or the same at a lower latent. */
static int better_eq(float av, int32_t ai, float bv, int32_t bi) { return av > bv || (av == bv && ai < bi); }

/* Checks codes of rows x [n, d] against double pre-activations: the top k (thr 0), or every value > thr (a
 * batch-top-k threshold); returns the number of bad rows. */
static int check_rows(const sae_model *m, const float *x, int64_t n, const sae_codes *c, int relu, double thr,
                      const char *label) {
    const int64_t d = m->d, M = m->M, k = m->k;
    double *p = malloc(sizeof(double) * (size_t)M);
    uint8_t *sel = calloc((size_t)M, 1);
    int bad = 0;
    for (int64_t r = 0; r < n; r++) {
        double scale = 0;
        for (int64_t i = 0; i < M; i++) {
            double s = m->p.b_enc[i], a = fabs(m->p.b_enc[i]);
            for (int64_t j = 0; j < d; j++) {
                const double xc = (double)(float)(x[r * d + j] - m->p.b_dec[j]);
                s += (double)m->p.W_enc[i * d + j] * xc;
                a += fabs((double)m->p.W_enc[i * d + j] * xc);
            }
            p[i] = s;
            scale = a > scale ? a : scale;
        }
        const double tol = 1e-5 * scale; /* fp32 summation noise of the largest |W_i·xc| + |b_i| */
        if (thr > 0) { /* every value above thr, none below, beyond the noise; each within it; in order */
            const int64_t got = c->ptr[r + 1] - c->ptr[r];
            int ok = got <= M;
            for (int64_t e = c->ptr[r]; ok && e < c->ptr[r + 1]; e++) {
                const int32_t i = c->idx[e];
                ok &= i >= 0 && i < M && !sel[i] && c->val[e] > (float)thr && fabs(c->val[e] - p[i]) <= tol &&
                      (e == c->ptr[r] || better_eq(c->val[e - 1], c->idx[e - 1], c->val[e], i));
                if (i >= 0 && i < M) sel[i] = 1;
            }
            for (int64_t i = 0; i < M; i++) {
                ok &= sel[i] ? p[i] > thr - tol : p[i] <= thr + tol;
                sel[i] = 0;
            }
            if (!ok && bad++ < 3) printf("%s: row %lld: %lld codes, not those above %g\n", label, (long long)r, (long long)got, thr);
            continue;
        }
        int64_t pos = 0;
        for (int64_t i = 0; i < M; i++) pos += !relu || p[i] > tol;
        const int64_t got = c->ptr[r + 1] - c->ptr[r];
        int ok = got <= k && (got == k || got >= pos);
        double min_sel = INFINITY;
        for (int64_t e = c->ptr[r]; e < c->ptr[r + 1]; e++) {
            const int32_t i = c->idx[e];
            ok &= i >= 0 && i < M && !sel[i] && (c->val[e] > 0 || !relu) && fabs(c->val[e] - p[i]) <= tol;
            if (e > c->ptr[r]) ok &= c->val[e] <= c->val[e - 1];
            if (i < 0 || i >= M) continue;
            sel[i] = 1;
            min_sel = p[i] < min_sel ? p[i] : min_sel;
        }
        for (int64_t i = 0; i < M; i++) /* nothing left out ranks above what was selected (beyond the noise) */
            if (!sel[i] && (p[i] > tol || !relu) && got == k) ok &= p[i] <= min_sel + 2 * tol;
        for (int64_t e = c->ptr[r]; e < c->ptr[r + 1]; e++)
            if (c->idx[e] >= 0 && c->idx[e] < M) sel[c->idx[e]] = 0;
        if (!ok && bad++ < 3) printf("%s: row %lld: %lld codes, not the top %lld\n", label, (long long)r, (long long)got, (long long)k);
    }
    free(p);
    free(sel);
    return bad;
}

static int g_ran[N_SCREENS];

/* shape: 0 random, 1 adversarial (one shared direction), 2 saturated (±1 weights, constant rows). thr > 0: a
 * batch-top-k threshold instead of the top k; thr < 0: the threshold is the mean pre-activation of row 0 (about
 * half of every adversarial row's latents then lie within the bound of it). */
static void run_case(const char *label, int d, int M, int k, int shape, int relu, double thr) {
    const int adversarial = shape == 1, saturated = shape == 2;
    sae_model m;
    memset(&m, 0, sizeof m);
    m.d = d, m.M = M, m.k = k, m.layer = 0;
    sae_params_alloc(&m.p, d, M);
    for (int64_t j = 0; j < d; j++) m.p.b_dec[j] = saturated ? 0.0f : (float)(0.1 * test_gauss(3, (uint64_t)j));
    for (int64_t i = 0; i < M; i++) {
        m.p.b_enc[i] = adversarial || saturated ? 0.0f : (float)(0.05 * test_gauss(4, (uint64_t)i));
        double nrm = 0;
        for (int64_t j = 0; j < d; j++) {
            /* adversarial: one shared direction, each latent nudged by ~2e-3 relative, below bf16's 4e-3 step;
             * saturated: latent i is +1 on its first d − i % d inputs, −1 after, so every |q| is Q */
            const double w = adversarial ? test_gauss(5, (uint64_t)j) * (1.0 + 2e-3 * test_gauss(6, (uint64_t)(i * d + j)))
                             : saturated ? (j < d - i % d ? 1.0 : -1.0)
                                         : test_gauss(5, (uint64_t)(i * d + j));
            m.p.W_enc[i * d + j] = (float)w;
            nrm += w * w;
        }
        for (int64_t j = 0; j < d; j++) m.p.W_enc[i * d + j] = (float)(m.p.W_enc[i * d + j] / sqrt(nrm));
    }
    /* relu 0: any value ranks (the decoder neighbours' use), and the bias is left out */
    if (!relu) memset(m.p.b_enc, 0, sizeof(float) * (size_t)M);
    const int64_t n = adversarial || saturated ? 300 : 1500;
    float *x = malloc(sizeof(float) * (size_t)(n * d)), *xc = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) {
            /* adversarial rows lie along the shared direction, so every latent's value is nearly the same;
             * saturated rows are constant (their sign and size vary with r) */
            x[r * d + j] = adversarial ? (float)(test_gauss(5, (uint64_t)j) * (1 + 0.01 * test_gauss(8, (uint64_t)(r * d + j))))
                           : saturated ? (float)((r % 2 ? -1.0 : 1.0) * (1 + r))
                                       : (float)test_gauss(7, (uint64_t)(r * d + j));
            xc[r * d + j] = x[r * d + j] - m.p.b_dec[j];
        }
    if (thr < 0) {
        thr = 0;
        for (int64_t i = 0; i < M; i++) {
            double p = m.p.b_enc[i];
            for (int64_t j = 0; j < d; j++) p += (double)m.p.W_enc[i * d + j] * (double)xc[j];
            thr += p / (double)M;
        }
        CHECK(thr > 0, "%s: row 0's mean pre-activation %g is not a threshold", label, thr);
    }
    const musae_isa isa0 = musae_isa_get();
    sae_codes first = {0};
    const char *first_name = NULL;
    for (int v = 0; v < N_SCREENS; v++) {
        if (SCREENS[v].isa > isa0) continue;
        musae_isa_set(SCREENS[v].isa);
        analyze_screen *a = thr > 0 ? analyze_screen_init_threshold(m.p.W_enc, m.p.b_enc, M, d, (float)thr, SCREENS[v].kind)
                                    : analyze_screen_init_rows(m.p.W_enc, relu ? m.p.b_enc : NULL, M, d, k, relu, SCREENS[v].kind);
        if (!a) {
            musae_isa_set(isa0);
            continue;
        }
        g_ran[v]++;
        char what[160];
        snprintf(what, sizeof what, "%s [%s, MUSAE_ISA %s]", label, SCREENS[v].name, musae_isa_name(SCREENS[v].isa));
        sae_codes c = {0};
        c.ptr = calloc((size_t)n + 1, sizeof(int64_t));
        analyze_screen_encode(a, xc, n, &c);
        CHECK(c.n_rows == n && c.ptr[0] == 0, "%s: %lld rows", what, (long long)c.n_rows);
        const int bad = check_rows(&m, x, n, &c, relu, thr, what);
        CHECK(bad == 0, "%s: %d of %lld rows are not their codes", what, bad, (long long)n);
        /* a row's codes do not depend on the rows beside it: row 7 alone gives the same entries */
        sae_codes one = {0};
        one.ptr = calloc(2, sizeof(int64_t));
        analyze_screen_encode(a, xc + 7 * d, 1, &one);
        int same = one.ptr[1] == c.ptr[8] - c.ptr[7];
        for (int64_t e = 0; same && e < one.ptr[1]; e++)
            same = one.idx[e] == c.idx[c.ptr[7] + e] && one.val[e] == c.val[c.ptr[7] + e];
        CHECK(same, "%s: row 7 alone differs from row 7 in a block", what);
        free(one.ptr), free(one.idx), free(one.val);
        if (!first_name) {
            first = c, first_name = SCREENS[v].name;
        } else { /* every screen and level: the same codes, bit for bit */
            int64_t diff = -1;
            for (int64_t r = 0; r < n && diff < 0; r++) {
                int eq = c.ptr[r + 1] == first.ptr[r + 1];
                for (int64_t e = c.ptr[r]; eq && e < c.ptr[r + 1]; e++)
                    eq = c.idx[e] == first.idx[e] && memcmp(&c.val[e], &first.val[e], sizeof(float)) == 0;
                if (!eq) diff = r;
            }
            CHECK(diff < 0, "%s: row %lld differs from the %s screen's codes", what, (long long)diff, first_name);
            free(c.ptr), free(c.idx), free(c.val);
        }
        analyze_screen_free(a);
        musae_isa_set(isa0);
    }
    free(first.ptr), free(first.idx), free(first.val);
    free(x), free(xc);
    sae_model_free(&m);
}

int main(void) {
    /* the int16 range: d·Q² fits int32, d·(Q + 1)² does not (or Q is int16's largest) */
    const int64_t ds[] = {1, 2, 72, 96, 128, 256, 512, 1024, 1536, 2048, 4096, 1 << 20};
    int range_ok = 1;
    for (size_t q = 0; q < sizeof ds / sizeof ds[0]; q++) {
        const int64_t d = ds[q], Q = analyze_i16_range(d);
        range_ok &= Q >= 1 && d * Q * Q <= INT32_MAX && (Q == 32767 || d * (Q + 1) * (Q + 1) > INT32_MAX);
    }
    CHECK(range_ok && analyze_i16_range(512) == 2047, "analyze_i16_range: Q(512) = %d", analyze_i16_range(512));
    run_case("random d 128, M 4096, k 32", 128, 4096, 32, 0, 1, 0);
    run_case("random d 72, M 200, k 5 (padded shapes)", 72, 200, 5, 0, 1, 0);
    run_case("random d 37, M 100, k 5 (odd d)", 37, 100, 5, 0, 1, 0);
    run_case("adversarial d 256, M 1024, k 16", 256, 1024, 16, 1, 1, 0);
    run_case("saturated d 512, M 600, k 8", 512, 600, 8, 2, 1, 0);
    run_case("any sign (neighbours), d 96, M 1000, k 9", 96, 1000, 9, 0, 0, 0);
    run_case("any sign, adversarial d 256, M 1024, k 9", 256, 1024, 9, 1, 0, 0);
    run_case("batch-top-k threshold 2.5, random d 128, M 4096", 128, 4096, 32, 0, 1, 2.5);
    run_case("batch-top-k threshold, adversarial d 256, M 1024", 256, 1024, 16, 1, 1, -1);
    run_case("batch-top-k threshold 6 (rows and whole blocks without codes), d 72, M 200", 72, 200, 5, 0, 1, 6.0);
    int any = 0;
    for (int v = 0; v < N_SCREENS; v++) {
        printf("%s at MUSAE_ISA %s: %s\n", SCREENS[v].name, musae_isa_name(SCREENS[v].isa), g_ran[v] ? "tested" : "not on this CPU");
        any |= g_ran[v];
    }
    if (!any) TEST_SKIP("this CPU has neither AMX-BF16 nor AVX2 (or MUSAE_ISA is baseline): analyze encodes with sgemm here");
    TEST_END();
}
