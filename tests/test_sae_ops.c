/* The SAE CPU kernels against plain loops that read like the math, and the sparse backward (with AuxK)
 * against central finite differences of the forward ops. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "kernels/cpu/isa.h"
#include "kernels/sae_ops.h"
#include "test.h"

static float urand(uint64_t stream, uint64_t i) { return 2.0f * musae_u32_to_unit(musae_philox(7, stream, i).v[0]) - 1.0f; }

static void fill(float *x, int64_t n, uint64_t stream, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * urand(stream, (uint64_t)i);
}

static sae_codes codes_new(int64_t rows, int64_t cap) {
    sae_codes c = {0, cap, musae_xcalloc((size_t)rows + 1, 8), musae_xcalloc((size_t)cap + 1, 4), musae_xcalloc((size_t)cap + 1, 4)};
    return c;
}
static void codes_del(sae_codes *c) {
    free(c->ptr);
    free(c->idx);
    free(c->val);
}

/* ---- encode / batch-top-k / decode against brute force ---------------------------------------------------- */

static void test_encode(void) {
    const int64_t N = 37, d = 19, M = 1100; /* M spans three latent tiles; odd sizes exercise the tails */
    const int k = 7, k_aux = 5;
    float *x = malloc(sizeof(float) * N * d), *W = malloc(sizeof(float) * M * d), *b = malloc(sizeof(float) * M);
    fill(x, N * d, 1, 1.0f);
    fill(W, M * d, 2, 0.3f);
    fill(b, M, 3, 0.1f);
    for (int64_t j = 0; j < d; j++) W[5 * d + j] = W[900 * d + j]; /* an exact tie between latents 5 and 900 */
    b[5] = b[900];
    uint8_t *dead = calloc((size_t)M, 1);
    for (int64_t i = 0; i < M; i += 3) dead[i] = 1;
    sae_codes c = codes_new(N, N * k), a = codes_new(N, N * k_aux);
    float *pre = malloc(sizeof(float) * N * M);
    sae_cpu_encode(x, W, b, N, d, M, k, dead, k_aux, &c, &a, pre);
    int bad = 0, bad_aux = 0, bad_pre = 0;
    for (int64_t n = 0; n < N; n++) {
        float ref[1100];
        for (int64_t i = 0; i < M; i++) {
            double z = b[i];
            for (int64_t j = 0; j < d; j++) z += (double)x[n * d + j] * W[i * d + j];
            ref[i] = z > 0 ? (float)z : 0.0f;
            if (fabsf(ref[i] - pre[n * M + i]) > 1e-5f) bad_pre++;
        }
        /* brute force: repeatedly take the largest (lowest index on ties) positive entry */
        for (int pass = 0; pass < 2; pass++) {
            const int kk = pass ? k_aux : k;
            const sae_codes *cc = pass ? &a : &c;
            uint8_t used[1100] = {0};
            int64_t e = cc->ptr[n];
            for (int q = 0; q < kk; q++) {
                int64_t best = -1;
                for (int64_t i = 0; i < M; i++) {
                    if (used[i] || pre[n * M + i] <= 0 || (pass && !dead[i])) continue;
                    if (best < 0 || pre[n * M + i] > pre[n * M + best]) best = i;
                }
                if (best < 0) break;
                used[best] = 1;
                /* top-k rows are sorted; AuxK rows hold the same set in heap order */
                if (!pass && (e >= cc->ptr[n + 1] || cc->idx[e] != best || cc->val[e] != pre[n * M + best])) bad++;
                e++;
            }
            if (e != cc->ptr[n + 1]) (*(pass ? &bad_aux : &bad))++;
            if (pass)
                for (int64_t q = cc->ptr[n]; q < cc->ptr[n + 1]; q++)
                    if (!used[cc->idx[q]] || cc->val[q] != pre[n * M + cc->idx[q]]) bad_aux++;
        }
    }
    CHECK(bad_pre == 0, "%d pre-activations differ from the plain loop", bad_pre);
    CHECK(bad == 0, "%d top-k rows differ from brute force", bad);
    CHECK(bad_aux == 0, "%d AuxK rows differ from brute force over dead latents", bad_aux);

    /* batch-top-k: exactly N·k entries, every selected value >= every unselected positive value */
    sae_codes bc = codes_new(N, N * k);
    float minv = sae_cpu_batch_topk(pre, N, M, N * k, &bc);
    CHECK(bc.ptr[N] == N * k, "batch-top-k selected %lld, want %lld", (long long)bc.ptr[N], (long long)(N * k));
    uint8_t *sel = calloc((size_t)(N * M), 1);
    float sel_min = FLT_MAX, rest_max = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t e = bc.ptr[n]; e < bc.ptr[n + 1]; e++) {
            sel[n * M + bc.idx[e]] = 1;
            CHECK(bc.val[e] == pre[n * M + bc.idx[e]], "value of a selected entry");
            sel_min = fminf(sel_min, bc.val[e]);
        }
    for (int64_t i = 0; i < N * M; i++)
        if (!sel[i]) rest_max = fmaxf(rest_max, pre[i]);
    CHECK(sel_min >= rest_max, "batch-top-k: selected min %g < unselected max %g", sel_min, rest_max);
    CHECK(minv == sel_min, "returned min %g, actual %g", minv, sel_min);
    /* ties at the threshold: a constant matrix takes exactly `total`, lowest rows first */
    for (int64_t i = 0; i < N * M; i++) pre[i] = 1.0f;
    sae_cpu_batch_topk(pre, N, M, N * k, &bc);
    CHECK(bc.ptr[N] == N * k && bc.ptr[1] == (M < N * k ? M : N * k), "ties fill in row-major order");

    /* decode */
    float *out = malloc(sizeof(float) * N * d), *bd = malloc(sizeof(float) * d);
    fill(bd, d, 4, 0.5f);
    sae_cpu_decode(&c, W, bd, d, out);
    double err = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < d; j++) {
            double r = bd[j];
            for (int64_t e = c.ptr[n]; e < c.ptr[n + 1]; e++) r += (double)c.val[e] * W[(int64_t)c.idx[e] * d + j];
            err = fmax(err, fabs(r - out[n * d + j]));
        }
    CHECK(err < 1e-5, "decode differs from the plain sum by %g", err);
    free(x), free(W), free(b), free(dead), free(pre), free(sel), free(out), free(bd);
    codes_del(&c), codes_del(&a), codes_del(&bc);
}

/* ---- finite differences ----------------------------------------------------------------------------------- */

enum { FN = 6, FD = 8, FM = 24, FK = 3, FKA = 4, SEL_LEN = FN * (FK + FKA) + FN + 1 };
typedef struct {
    float W_enc[FM * FD], b_enc[FM], W_dec[FM * FD], b_dec[FD];
} fparams;

static const float *g_x;
static const uint8_t *g_dead;
static double g_tv;
static const float k_coef = 0.25f; /* AuxK weight × scale, large so its gradient is visible */
static float g_e0[FN * FD];          /* the residual at the unperturbed point: AuxK treats e as a constant */

/* Loss of the forward ops; the selection is returned so a perturbation that changes it is skipped (a kink). */
static double loss_of(const fparams *p, int32_t *sel) {
    float xc[FN * FD], xhat[FN * FD], ehat[FN * FD], gx[FN * FD], ge[FN * FD];
    for (int n = 0; n < FN; n++)
        for (int j = 0; j < FD; j++) xc[n * FD + j] = g_x[n * FD + j] - p->b_dec[j];
    sae_codes c = codes_new(FN, FN * FK), a = codes_new(FN, FN * FKA);
    sae_cpu_encode(xc, p->W_enc, p->b_enc, FN, FD, FM, FK, g_dead, FKA, &c, &a, NULL);
    sae_cpu_decode(&c, p->W_dec, p->b_dec, FD, xhat);
    sae_cpu_decode(&a, p->W_dec, NULL, FD, ehat);
    double aux_unused, aux = 0;
    double fvu = sae_cpu_loss_grad(g_x, xhat, ehat, FN, FD, g_tv, k_coef, gx, ge, &aux_unused);
    for (int i = 0; i < FN * FD; i++) aux += ((double)ehat[i] - g_e0[i]) * ((double)ehat[i] - g_e0[i]);
    aux /= g_tv;
    if (sel) {
        for (int i = 0; i < SEL_LEN; i++) sel[i] = -1;
        for (int64_t e = 0; e < c.ptr[FN]; e++) sel[e] = c.idx[e];
        for (int64_t e = 0; e < a.ptr[FN]; e++) sel[FN * FK + e] = a.idx[e];
        for (int n = 0; n <= FN; n++) sel[FN * (FK + FKA) + n] = (int32_t)(c.ptr[n] * 64 + a.ptr[n]);
    }
    codes_del(&c), codes_del(&a);
    return fvu + k_coef * aux;
}

static void test_gradients(void) {
    static float x[FN * FD];
    fill(x, FN * FD, 10, 1.0f);
    g_x = x;
    g_tv = sae_cpu_total_variance(x, FN, FD);
    uint8_t dead[FM] = {0};
    for (int i = 0; i < FM; i += 2) dead[i] = 1;
    g_dead = dead;
    fparams p;
    fill(p.W_enc, FM * FD, 11, 0.5f);
    fill(p.b_enc, FM, 12, 0.3f);
    fill(p.W_dec, FM * FD, 13, 0.5f);
    fill(p.b_dec, FD, 14, 0.2f);
    sae_cpu_normalize_rows(p.W_dec, FM, FD);

    /* analytic: forward + backward ops */
    float xc[FN * FD], xhat[FN * FD], ehat[FN * FD], gx[FN * FD], ge[FN * FD];
    for (int n = 0; n < FN; n++)
        for (int j = 0; j < FD; j++) xc[n * FD + j] = x[n * FD + j] - p.b_dec[j];
    sae_codes c = codes_new(FN, FN * FK), a = codes_new(FN, FN * FKA);
    sae_cpu_encode(xc, p.W_enc, p.b_enc, FN, FD, FM, FK, dead, FKA, &c, &a, NULL);
    CHECK(a.ptr[FN] > 0, "the case must exercise AuxK");
    sae_cpu_decode(&c, p.W_dec, p.b_dec, FD, xhat);
    sae_cpu_decode(&a, p.W_dec, NULL, FD, ehat);
    double aux;
    sae_cpu_loss_grad(x, xhat, ehat, FN, FD, g_tv, k_coef, gx, ge, &aux);
    for (int i = 0; i < FN * FD; i++) g_e0[i] = x[i] - xhat[i];
    fparams g;
    void *scratch = malloc(sae_cpu_backward_scratch_bytes(FN, FN * (FK + FKA), FM));
    sae_cpu_backward(&c, &a, gx, ge, xc, p.W_enc, p.W_dec, FD, FM, g.W_enc, g.b_enc, g.W_dec, g.b_dec, scratch);

    /* central differences on every parameter */
    const float eps = 1e-3f;
    float *pp = (float *)&p, *gg = (float *)&g;
    const int n_par = (int)(sizeof p / sizeof(float));
    int32_t sel0[SEL_LEN], sel1[SEL_LEN], sel2[SEL_LEN];
    loss_of(&p, sel0);
    int checked = 0, bad = 0, kinks = 0;
    double worst = 0;
    for (int i = 0; i < n_par; i++) {
        float keep = pp[i];
        pp[i] = keep + eps;
        double lp = loss_of(&p, sel1);
        pp[i] = keep - eps;
        double lm = loss_of(&p, sel2);
        pp[i] = keep;
        if (memcmp(sel0, sel1, sizeof sel0) || memcmp(sel0, sel2, sizeof sel0)) {
            kinks++;
            continue;
        }
        double fd = (lp - lm) / (2.0 * eps), an = gg[i];
        double err = fabs(fd - an) / fmax(1e-3, fabs(fd) + fabs(an));
        worst = fmax(worst, err);
        if (err > 2e-2) {
            bad++;
            if (bad < 6) fprintf(stderr, "  param %d: finite difference %.6g, backward %.6g\n", i, fd, an);
        }
        checked++;
    }
    printf("finite differences: %d parameters checked, %d skipped at kinks, worst relative error %.2e\n", checked,
           kinks, worst);
    CHECK(checked > n_par * 3 / 4, "too many kinks (%d of %d)", kinks, n_par);
    CHECK(bad == 0, "%d gradients disagree with finite differences", bad);
    int nonzero_enc = 0;
    for (int i = 0; i < FM * FD; i++) nonzero_enc += g.W_enc[i] != 0;
    CHECK(nonzero_enc > 0, "encoder gradient is all zero");
    free(scratch);
    codes_del(&c), codes_del(&a);
}

/* ---- Adam and the decoder constraint ---------------------------------------------------------------------- */

static void test_adam(void) {
    const int64_t M = 5, d = 7;
    float W[35], g[35], m[35] = {0}, v[35] = {0}, W0[35], g0[35];
    fill(W, M * d, 20, 1.0f);
    sae_cpu_normalize_rows(W, M, d);
    fill(g, M * d, 21, 1.0f);
    memcpy(W0, W, sizeof W);
    memcpy(g0, g, sizeof g);
    sae_adam_hparams h = {1e-2f, 0.9f, 0.999f, 6.25e-10f, 1};
    sae_cpu_adam_decoder(W, g, m, v, M, d, &h);
    double err = 0, norm_err = 0;
    for (int64_t i = 0; i < M; i++) {
        double par = 0, nn = 0, ref[7];
        for (int64_t j = 0; j < d; j++) par += (double)g0[i * d + j] * W0[i * d + j];
        for (int64_t j = 0; j < d; j++) {
            double gj = g0[i * d + j] - par * W0[i * d + j];
            double mj = 0.1 * gj, vj = 0.001 * gj * gj;
            double mh = mj / 0.1, vh = vj / 0.001;
            ref[j] = W0[i * d + j] - 1e-2 * mh / (sqrt(vh) + 6.25e-10);
            nn += ref[j] * ref[j];
        }
        double wn = 0;
        for (int64_t j = 0; j < d; j++) {
            err = fmax(err, fabs(ref[j] / sqrt(nn) - W[i * d + j]));
            wn += (double)W[i * d + j] * W[i * d + j];
        }
        norm_err = fmax(norm_err, fabs(sqrt(wn) - 1));
    }
    CHECK(err < 1e-6, "decoder Adam step differs from the formula by %g", err);
    CHECK(norm_err < 1e-6, "decoder rows not unit norm after the step (%g)", norm_err);
    float p[3] = {1, 2, 3}, gp[3] = {0.5f, -1, 0}, mp[3] = {0}, vp[3] = {0};
    sae_adam_hparams h2 = {0.1f, 0.9f, 0.999f, 1e-8f, 1};
    sae_cpu_adam(p, gp, mp, vp, 3, &h2);
    CHECK(fabsf(p[0] - 0.9f) < 1e-6f && fabsf(p[1] - 2.1f) < 1e-6f && p[2] == 3.0f, "first Adam step is lr·sign(g): %g %g %g",
          p[0], p[1], p[2]);
}

/* ---- every x86-64 level gives the same bits (kernels/cpu/isa.h) ------------------------------------------ */

/* One training step's kernels (encode with AuxK, decode, loss, backward, Adam, decoder Adam, normalization)
 * on N rows and sizes with vector tails; returns a hash of every output. */
static uint64_t step_bits(int64_t N) {
    enum { D = 37, M = 1100, K = 9, KA = 6 };
    float *x = malloc(sizeof(float) * N * D), *We = malloc(sizeof(float) * M * D), *Wd = malloc(sizeof(float) * M * D);
    float *be = malloc(sizeof(float) * M), *bd = malloc(sizeof(float) * D);
    fill(x, N * D, 30, 1.0f), fill(We, M * D, 31, 0.3f), fill(Wd, M * D, 32, 0.3f), fill(be, M, 33, 0.1f);
    fill(bd, D, 34, 0.1f);
    uint8_t dead[M];
    for (int i = 0; i < M; i++) dead[i] = i % 4 == 0;
    sae_codes c = codes_new(N, N * K), a = codes_new(N, N * KA);
    float *xhat = malloc(sizeof(float) * N * D), *ehat = malloc(sizeof(float) * N * D);
    float *gx = malloc(sizeof(float) * N * D), *ge = malloc(sizeof(float) * N * D);
    float *dWe = calloc(M * D, sizeof(float)), *dWd = calloc(M * D, sizeof(float)), *dbe = calloc(M, sizeof(float));
    float *dbd = calloc(D, sizeof(float)), *m1 = calloc(M * D, sizeof(float)), *v1 = calloc(M * D, sizeof(float));
    float *m2 = calloc(M * D, sizeof(float)), *v2 = calloc(M * D, sizeof(float));
    sae_cpu_normalize_rows(Wd, M, D);
    sae_cpu_encode(x, We, be, N, D, M, K, dead, KA, &c, &a, NULL);
    sae_cpu_decode(&c, Wd, bd, D, xhat);
    sae_cpu_decode(&a, Wd, NULL, D, ehat);
    double aux = 0;
    const double loss = sae_cpu_loss_grad(x, xhat, ehat, N, D, sae_cpu_total_variance(x, N, D), 0.25f, gx, ge, &aux);
    void *scratch = malloc(sae_cpu_backward_scratch_bytes(N, c.ptr[N] + a.ptr[N], M));
    sae_cpu_backward(&c, &a, gx, ge, x, We, Wd, D, M, dWe, dbe, dWd, dbd, scratch);
    sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 1e-8f, 1};
    sae_cpu_adam(We, dWe, m1, v1, M * D, &h);
    sae_cpu_adam_decoder(Wd, dWd, m2, v2, M, D, &h);
    uint64_t hash = 1469598103934665603ull;
    const struct {
        const void *p;
        size_t n;
    } outs[] = {{c.idx, 4 * (size_t)c.ptr[N]}, {c.val, 4 * (size_t)c.ptr[N]}, {a.idx, 4 * (size_t)a.ptr[N]},
                {a.val, 4 * (size_t)a.ptr[N]}, {xhat, 4 * N * D}, {ehat, 4 * N * D}, {gx, 4 * N * D},
                {ge, 4 * N * D}, {&loss, 8}, {&aux, 8}, {dWe, 4 * M * D}, {dbe, 4 * M}, {dWd, 4 * M * D},
                {dbd, 4 * D}, {We, 4 * M * D}, {Wd, 4 * M * D}};
    for (size_t o = 0; o < sizeof outs / sizeof outs[0]; o++)
        for (size_t i = 0; i < outs[o].n; i++) hash = (hash ^ ((const unsigned char *)outs[o].p)[i]) * 1099511628211ull;
    float *bufs[] = {x, We, Wd, be, bd, xhat, ehat, gx, ge, dWe, dWd, dbe, dbd, m1, v1, m2, v2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(scratch);
    codes_del(&c), codes_del(&a);
    return hash;
}

/* The same step with 1, 2 and 3 OpenMP threads: the same bits (45 rows: one encoder row block; 301: two). */
static void test_thread_counts(void) {
    const int dflt = omp_get_max_threads();
    const int64_t rows[] = {45, 301};
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(2);
        const uint64_t want = step_bits(rows[r]);
        const int counts[] = {1, 3};
        for (int i = 0; i < 2; i++) {
            omp_set_num_threads(counts[i]);
            CHECK(step_bits(rows[r]) == want, "an SAE step of %lld rows with %d OpenMP threads differs from 2 threads' "
                  "bits", (long long)rows[r], counts[i]);
        }
    }
    omp_set_num_threads(dflt);
}

static void test_isa_variants(void) {
    const musae_isa top = musae_isa_cpu();
    musae_isa_set(top);
    const uint64_t want = step_bits(301);
    for (int isa = (int)top - 1; isa >= MUSAE_ISA_BASELINE; isa--) {
        musae_isa_set((musae_isa)isa);
        CHECK(step_bits(301) == want, "an SAE step with the %s variants differs from the %s variants' bits",
              musae_isa_name((musae_isa)isa), musae_isa_name(top));
    }
    musae_isa_set(top);
}

#include "sae/sae.h"

static void test_schedule(void) {
    sae_config c;
    sae_config_defaults(&c, 64, 65536, 32);
    CHECK(fabsf(sae_lr_at(&c, 5000) - 2e-4f) < 1e-9f, "default lr 4e-4/sqrt(M/16384) = 2e-4 at M = 65536");
    c.lr = 1e-4f;
    c.warmup_steps = 10;
    CHECK(fabsf(sae_lr_at(&c, 0) - 1e-5f) < 1e-10f && fabsf(sae_lr_at(&c, 9) - 1e-4f) < 1e-10f,
          "linear warmup: step 0 gets lr/10, step 9 the full lr");
    c.total_steps = 100;
    c.decay_frac = 0.5;
    CHECK(sae_lr_at(&c, 49) == sae_lr_at(&c, 20) && fabsf(sae_lr_at(&c, 75) - 0.5e-4f) < 1e-10f &&
              sae_lr_at(&c, 100) == 0.0f,
          "linear decay over the last half: %g at 75, %g at 100", sae_lr_at(&c, 75), sae_lr_at(&c, 100));
}

int main(void) {
    test_schedule();
    test_encode();
    test_gradients();
    test_adam();
    test_thread_counts();
    test_isa_variants();
    TEST_END();
}
