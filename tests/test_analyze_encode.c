/* analyze's AMX encoder (eval/analyze_encode.h) against plain double loops: for every row, the selected latents
 * must be the top k of the pre-activations (value descending, > 0 only) up to fp32 summation noise, and each
 * value the f32 pre-activation within 1e-5 relative. Shapes: 4096 latents, k 32 with random weights, padded
 * shapes, and an adversarial SAE whose latents share one direction up to perturbations below bf16's resolution,
 * so the bf16 screen cannot order them and every row's selection rests on the error bound (with the bound set to
 * 0 all of these fail); and the same without the ReLU (values of any sign, no bias: the decoder neighbours' use).
 * Skips (77) where the CPU has no AMX (the sgemm path, tested by test_analyze, runs there). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/analyze_encode.h"
#include "host/core/philox.h"
#include "sae/sae.h"
#include "test.h"

static double gauss(uint64_t seed, uint64_t i) {
    musae_u32x4 r = musae_philox(seed, 0x6A, i);
    double u1 = ((double)(r.v[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(r.v[1] >> 8) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Checks codes of rows x [n, d] against double pre-activations; returns the number of bad rows. */
static int check_rows(const sae_model *m, const float *x, int64_t n, const sae_codes *c, int relu, const char *label) {
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

static void run_case(const char *label, int d, int M, int k, int adversarial, int relu) {
    sae_model m;
    memset(&m, 0, sizeof m);
    m.d = d, m.M = M, m.k = k, m.layer = 0;
    sae_params_alloc(&m.p, d, M);
    for (int64_t j = 0; j < d; j++) m.p.b_dec[j] = (float)(0.1 * gauss(3, (uint64_t)j));
    for (int64_t i = 0; i < M; i++) {
        m.p.b_enc[i] = adversarial ? 0.0f : (float)(0.05 * gauss(4, (uint64_t)i));
        double nrm = 0;
        for (int64_t j = 0; j < d; j++) {
            /* adversarial: one shared direction, each latent nudged by ~2e-3 relative, below bf16's 4e-3 step */
            const double w = adversarial ? gauss(5, (uint64_t)j) * (1.0 + 2e-3 * gauss(6, (uint64_t)(i * d + j)))
                                         : gauss(5, (uint64_t)(i * d + j));
            m.p.W_enc[i * d + j] = (float)w;
            nrm += w * w;
        }
        for (int64_t j = 0; j < d; j++) m.p.W_enc[i * d + j] = (float)(m.p.W_enc[i * d + j] / sqrt(nrm));
    }
    /* relu 0: any value ranks (the decoder neighbours' use), and the bias is left out */
    analyze_amx *a = relu ? analyze_amx_init(&m) : analyze_amx_init_rows(m.p.W_enc, NULL, M, d, k, 0);
    if (!relu) memset(m.p.b_enc, 0, sizeof(float) * (size_t)M);
    if (!a) {
        sae_model_free(&m);
        TEST_SKIP("this CPU has no AMX-BF16 (or MUSAE_ISA is below avx512): analyze encodes with sgemm here");
    }
    const int64_t n = adversarial ? 300 : 1500;
    float *x = malloc(sizeof(float) * (size_t)(n * d)), *xc = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < d; j++) {
            /* adversarial rows lie along the shared direction, so every latent's value is nearly the same */
            x[r * d + j] = adversarial ? (float)(gauss(5, (uint64_t)j) * (1 + 0.01 * gauss(8, (uint64_t)(r * d + j))))
                                       : (float)gauss(7, (uint64_t)(r * d + j));
            xc[r * d + j] = x[r * d + j] - m.p.b_dec[j];
        }
    sae_codes c = {0};
    c.ptr = calloc((size_t)n + 1, sizeof(int64_t));
    analyze_amx_encode(a, xc, n, &c);
    CHECK(c.n_rows == n && c.ptr[0] == 0, "%s: %lld rows", label, (long long)c.n_rows);
    const int bad = check_rows(&m, x, n, &c, relu, label);
    CHECK(bad == 0, "%s: %d of %lld rows are not their top %d", label, bad, (long long)n, k);
    /* a row's codes do not depend on the rows beside it: row 7 alone gives the same entries */
    sae_codes one = {0};
    one.ptr = calloc(2, sizeof(int64_t));
    analyze_amx_encode(a, xc + 7 * d, 1, &one);
    int same = one.ptr[1] == c.ptr[8] - c.ptr[7];
    for (int64_t e = 0; same && e < one.ptr[1]; e++)
        same = one.idx[e] == c.idx[c.ptr[7] + e] && one.val[e] == c.val[c.ptr[7] + e];
    CHECK(same, "%s: row 7 alone differs from row 7 in a block", label);
    free(one.ptr), free(one.idx), free(one.val);
    free(c.ptr), free(c.idx), free(c.val);
    free(x), free(xc);
    analyze_amx_free(a);
    sae_model_free(&m);
}

int main(void) {
    run_case("random d 128, M 4096, k 32", 128, 4096, 32, 0, 1);
    run_case("random d 72, M 200, k 5 (padded shapes)", 72, 200, 5, 0, 1);
    run_case("adversarial d 256, M 1024, k 16", 256, 1024, 16, 1, 1);
    run_case("any sign (neighbours), d 96, M 1000, k 9", 96, 1000, 9, 0, 0);
    run_case("any sign, adversarial d 256, M 1024, k 9", 256, 1024, 9, 1, 0);
    TEST_END();
}
