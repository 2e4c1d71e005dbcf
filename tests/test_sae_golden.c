/* Reference fixtures for the SAE:
 *  - three training steps of the recipe in PyTorch autograd (tools/reference/sae_step.py): the loss terms, the
 *    dead count, the gradients, the weights and Adam's moments after every sae_trainer_step must agree;
 *  - a tiny SAE saved by sparsify's own save_to_disk (tools/reference/sae_sparsify.py fixture): musae loads it
 *    and produces the same encodings and reconstructions. */
#include <math.h>

#include "host/io/safetensors.h"
#include "sae/sae.h"
#include "test.h"

static float *load(musae_st *st, const char *name, int64_t *numel) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t) {
        fprintf(stderr, "fixture lacks %s (regenerate with tools/reference/)\n", name);
        exit(1);
    }
    *numel = musae_st_numel(t);
    float *p = musae_xmalloc(sizeof(float) * (size_t)*numel + 4);
    musae_st_read(st, t, p, MUSAE_F32);
    return p;
}

/* The fixture tensor "<prefix><name>" (n elements). */
static float *load_at(musae_st *st, const char *prefix, const char *name, int64_t n) {
    char full[96];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t m;
    float *want = load(st, full, &m);
    MUSAE_ASSERT(m == n, "%s: %lld elements, expected %lld", full, (long long)m, (long long)n);
    return want;
}

static double max_diff(musae_st *st, const char *prefix, const char *name, const float *got, int64_t n) {
    float *want = load_at(st, prefix, name, n);
    double d = test_max_abs_diff(want, got, (size_t)n);
    free(want);
    return d;
}

/* Tensor i of W_enc, b_enc, W_dec, b_dec. */
static float *param(const sae_params *p, int i) {
    float *const all[4] = {p->W_enc, p->b_enc, p->W_dec, p->b_dec};
    return all[i];
}

static double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(a[i]));
    return m;
}

/* Several steps of the recipe against torch (tools/reference/sae_step.py): the loss terms, the dead count, the
 * gradients, the weights and Adam's m and v after every step. Step 1 alone cannot catch wrong betas: its bias
 * correction turns the update into lr·g/|g| for any betas, so the later steps and the moments are compared too.
 * Tolerances: gradients (fp32, another summation order) within 1e-5·max(1, max|g|); m is a convex mix of the
 * gradients, so the same; v mixes g², whose error is at most 2·max|g|·tol_g + tol_g²; weights within 1e-5. */
static void test_torch_steps(void) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/golden/sae_step.safetensors", test_fixtures());
    musae_st st;
    if (musae_st_open(&st, path, err, sizeof err)) {
        CHECK(0, "%s (regenerate with python tools/reference/sae_step.py)", err);
        return;
    }
    int64_t n, nd;
    float *hp = load(&st, "hparams", &n), *dead = load(&st, "dead", &n), *b_dec = load(&st, "in.b_dec", &nd);
    const int M = (int)n, d = (int)nd;
    const musae_st_tensor *tx = musae_st_find(&st, "x");
    MUSAE_ASSERT(tx && tx->rank == 3 && tx->shape[2] == d, "x: expected [steps, N, %d]", d);
    const int steps = (int)tx->shape[0], N = (int)tx->shape[1];
    float *x = load(&st, "x", &n);
    CHECK(steps >= 3, "the fixture has %d steps: at least 3 are needed to see the betas", steps);
    sae_config c;
    sae_config_defaults(&c, d, M, (int)hp[0]);
    c.k_aux = (int)hp[1];
    c.auxk_alpha = hp[2];
    c.lr = hp[3];
    c.eps = hp[4];
    c.dead_tokens = (int64_t)hp[5];
    c.warmup_steps = 0;
    sae_trainer t;
    sae_trainer_init(&t, &c, N);
    t.scale = 1.0f;
    const char *names[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    const int64_t sizes[4] = {(int64_t)M * d, M, (int64_t)M * d, d};
    for (int i = 0; i < 4; i++) {
        float *v = load_at(&st, "in.", names[i], sizes[i]);
        memcpy(param(&t.p, i), v, sizeof(float) * (size_t)sizes[i]);
        free(v);
    }
    for (int i = 0; i < M; i++) t.since_fired[i] = dead[i] > 0 ? c.dead_tokens + 1 : 0;
    float *W_dec0 = musae_xmalloc(sizeof(float) * (size_t)M * d);
    for (int s = 1; s <= steps; s++) {
        char pre[32], at[64];
        snprintf(pre, sizeof pre, "step%d.", s);
        memcpy(W_dec0, t.p.W_dec, sizeof(float) * (size_t)M * d);
        sae_step_stats ss;
        sae_trainer_step(&t, x + (size_t)(s - 1) * N * d, N, &ss);
        float *loss = load_at(&st, pre, "loss", 1), *fvu = load_at(&st, pre, "fvu", 1),
              *auxk = load_at(&st, pre, "auxk", 1), *n_dead = load_at(&st, pre, "n_dead", 1);
        printf("step %d: loss %.7f (musae %.7f), fvu %.7f (%.7f), auxk %.7f (%.7f), %g dead (%g)\n", s, loss[0],
               ss.loss, fvu[0], ss.fvu, auxk[0], ss.auxk, n_dead[0], ss.dead_frac * M);
        CHECK(fabs(ss.loss - loss[0]) < 1e-5 * fabs(loss[0]) && fabs(ss.fvu - fvu[0]) < 1e-5 * fabs(fvu[0]) &&
                  fabs(ss.auxk - auxk[0]) < 1e-5 * fabs(auxk[0]),
              "step %d: loss terms match torch", s);
        CHECK(n_dead[0] > 0 && fabs(ss.dead_frac * M - n_dead[0]) < 0.5, "step %d: %g dead latents, torch %g", s,
              ss.dead_frac * M, n_dead[0]);
        /* gradients: W_dec's was projected in place, so project torch's the same way */
        float *gw = load_at(&st, pre, "grad.W_dec", (int64_t)M * d);
        for (int i = 0; i < M; i++) {
            double par = 0;
            for (int j = 0; j < d; j++) par += (double)gw[i * d + j] * W_dec0[i * d + j];
            for (int j = 0; j < d; j++) gw[i * d + j] -= (float)(par * W_dec0[i * d + j]);
        }
        double gmax = 0;
        for (int i = 0; i < 4; i++) gmax = fmax(gmax, max_abs(param(&t.g, i), sizes[i]));
        const double tol_g = 1e-5 * fmax(1.0, gmax);
        const double tol_v = 2 * gmax * tol_g + tol_g * tol_g;
        for (int i = 0; i < 4; i++) {
            snprintf(at, sizeof at, "%sgrad.", pre);
            const double dg = i == 2 ? test_max_abs_diff(gw, t.g.W_dec, (size_t)sizes[i])
                                     : max_diff(&st, at, names[i], param(&t.g, i), sizes[i]);
            snprintf(at, sizeof at, "%sout.", pre);
            const double dw = max_diff(&st, at, names[i], param(&t.p, i), sizes[i]);
            snprintf(at, sizeof at, "%sm.", pre);
            const double dm = max_diff(&st, at, names[i], param(&t.m, i), sizes[i]);
            snprintf(at, sizeof at, "%sv.", pre);
            const double dv = max_diff(&st, at, names[i], param(&t.v, i), sizes[i]);
            printf("  %-6s max |diff|: grad %.2e, weights %.2e, m %.2e, v %.2e\n", names[i], dg, dw, dm, dv);
            CHECK(dg < tol_g, "step %d: gradient of %s differs from torch by %g (tolerance %g)", s, names[i], dg, tol_g);
            CHECK(dw < 1e-5, "step %d: %s differs from torch by %g (tolerance 1e-5)", s, names[i], dw);
            CHECK(dm < tol_g, "step %d: Adam m of %s differs from torch by %g (tolerance %g)", s, names[i], dm, tol_g);
            CHECK(dv < tol_v, "step %d: Adam v of %s differs from torch by %g (tolerance %g)", s, names[i], dv, tol_v);
        }
        free(gw), free(loss), free(fvu), free(auxk), free(n_dead);
    }
    free(W_dec0), free(hp), free(x), free(dead), free(b_dec);
    sae_trainer_free(&t);
    musae_st_close(&st);
}

static void test_sparsify_fixture(void) {
    char dir[1024], path[1100], err[600];
    snprintf(dir, sizeof dir, "%s/sae/sparsify_tiny", test_fixtures());
    sae_model m;
    if (sae_load(dir, &m, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    CHECK(m.d == 16 && m.M == 64 && m.k == 4 && m.layer == -1, "cfg.json read: d %d, M %d, k %d", m.d, m.M, m.k);
    snprintf(path, sizeof path, "%s/sae/sparsify_tiny_expected.safetensors", test_fixtures());
    musae_st st;
    if (musae_st_open(&st, path, err, sizeof err)) {
        CHECK(0, "%s", err);
        sae_model_free(&m);
        return;
    }
    int64_t nx, n;
    float *x = load(&st, "x", &nx), *acts = load(&st, "top_acts", &n);
    const int64_t N = nx / m.d;
    musae_st_tensor *ti = musae_st_find(&st, "top_indices");
    int64_t *idx = musae_xmalloc(sizeof(int64_t) * (size_t)n);
    musae_st_read(&st, ti, idx, MUSAE_I64);
    sae_codes c = {0, N * m.k, musae_xcalloc((size_t)N + 1, 8), musae_xmalloc(sizeof(int32_t) * (size_t)(N * m.k)),
                   musae_xmalloc(sizeof(float) * (size_t)(N * m.k))};
    float *xc = musae_xmalloc(sizeof(float) * (size_t)nx), *out = musae_xmalloc(sizeof(float) * (size_t)nx);
    sae_model_encode(&m, x, N, &c, xc, NULL);
    int same_idx = 1;
    double act_diff = 0;
    for (int64_t r = 0; r < N; r++)
        for (int j = 0; j < m.k; j++) {
            int64_t e = c.ptr[r] + j;
            same_idx &= e < c.ptr[r + 1] && c.idx[e] == idx[r * m.k + j];
            if (e < c.ptr[r + 1]) act_diff = fmax(act_diff, fabs(c.val[e] - acts[r * m.k + j]));
        }
    CHECK(same_idx, "musae selects the same latents as sparsify");
    CHECK(act_diff < 1e-5, "latent values differ from sparsify's by %g", act_diff);
    sae_cpu_decode(&c, m.p.W_dec, m.p.b_dec, m.d, out);
    double rd = max_diff(&st, "", "sae_out", out, nx);
    printf("sparsify-saved SAE: same latents %s, |value diff| %.2e, |reconstruction diff| %.2e\n", same_idx ? "yes" : "no",
           act_diff, rd);
    CHECK(rd < 1e-5, "reconstruction differs from sparsify's by %g", rd);
    free(x), free(acts), free(idx), free(xc), free(out), free(c.ptr), free(c.idx), free(c.val);
    musae_st_close(&st);
    sae_model_free(&m);
}

int main(void) {
    test_torch_steps();
    test_sparsify_fixture();
    TEST_END();
}
