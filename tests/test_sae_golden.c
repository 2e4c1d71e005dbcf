/* Reference fixtures for the SAE:
 *  - one training step of the recipe in PyTorch autograd (tools/reference/sae_step.py): the loss terms, the
 *    gradients and the weights after sae_trainer_step must agree within 1e-5;
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

static double max_diff(musae_st *st, const char *name, const float *got, int64_t n) {
    int64_t m;
    float *want = load(st, name, &m);
    MUSAE_ASSERT(m == n, "%s: %lld elements, expected %lld", name, (long long)m, (long long)n);
    double d = test_max_abs_diff(want, got, (size_t)n);
    free(want);
    return d;
}

static void test_torch_step(void) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/golden/sae_step.safetensors", test_fixtures());
    musae_st st;
    if (musae_st_open(&st, path, err, sizeof err)) {
        CHECK(0, "%s (regenerate with python tools/reference/sae_step.py)", err);
        return;
    }
    int64_t n, nx;
    float *hp = load(&st, "hparams", &n), *x = load(&st, "x", &nx), *dead = load(&st, "dead", &n);
    const int M = (int)n;
    int64_t nd;
    float *b_dec = load(&st, "in.b_dec", &nd);
    const int d = (int)nd, N = (int)(nx / d);
    sae_config c;
    sae_config_defaults(&c, d, M, (int)hp[0]);
    c.k_aux = (int)hp[1];
    c.auxk_alpha = hp[2];
    c.lr = hp[3];
    c.eps = hp[4];
    c.warmup_steps = 0;
    c.dead_tokens = 10;
    sae_trainer t;
    sae_trainer_init(&t, &c, N);
    t.scale = 1.0f;
    const char *names[4] = {"W_enc", "b_enc", "W_dec", "b_dec"};
    float *dst[4] = {t.p.W_enc, t.p.b_enc, t.p.W_dec, t.p.b_dec};
    int64_t sizes[4] = {(int64_t)M * d, M, (int64_t)M * d, d};
    for (int i = 0; i < 4; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "in.%s", names[i]);
        float *v = load(&st, nm, &n);
        memcpy(dst[i], v, sizeof(float) * (size_t)sizes[i]);
        free(v);
    }
    for (int i = 0; i < M; i++) t.since_fired[i] = dead[i] > 0 ? c.dead_tokens + 1 : 0;
    float *W_dec0 = musae_xmalloc(sizeof(float) * (size_t)M * d);
    memcpy(W_dec0, t.p.W_dec, sizeof(float) * (size_t)M * d);
    sae_step_stats s;
    sae_trainer_step(&t, x, N, &s);
    int64_t one;
    float *loss = load(&st, "loss", &one), *fvu = load(&st, "fvu", &one), *auxk = load(&st, "auxk", &one);
    printf("torch step: loss %.7f (musae %.7f), fvu %.7f (%.7f), auxk %.7f (%.7f)\n", loss[0], s.loss, fvu[0], s.fvu,
           auxk[0], s.auxk);
    CHECK(fabs(s.loss - loss[0]) < 1e-5 * fabs(loss[0]) && fabs(s.fvu - fvu[0]) < 1e-5 * fabs(fvu[0]) &&
              fabs(s.auxk - auxk[0]) < 1e-5 * fabs(auxk[0]),
          "loss terms match torch");
    /* gradients: W_dec's was projected in place, so project torch's the same way */
    float *gw = load(&st, "grad.W_dec", &n);
    for (int i = 0; i < M; i++) {
        double par = 0;
        for (int j = 0; j < d; j++) par += (double)gw[i * d + j] * W_dec0[i * d + j];
        for (int j = 0; j < d; j++) gw[i * d + j] -= (float)(par * W_dec0[i * d + j]);
    }
    double gscale = 0;
    for (int64_t i = 0; i < n; i++) gscale = fmax(gscale, fabs(gw[i]));
    const double gdiff[4] = {max_diff(&st, "grad.W_enc", t.g.W_enc, (int64_t)M * d), max_diff(&st, "grad.b_enc", t.g.b_enc, M),
                             test_max_abs_diff(gw, t.g.W_dec, (size_t)M * d), max_diff(&st, "grad.b_dec", t.g.b_dec, d)};
    for (int i = 0; i < 4; i++) {
        printf("  grad %-6s max |diff| %.2e\n", names[i], gdiff[i]);
        CHECK(gdiff[i] < 1e-5 * fmax(1.0, gscale), "gradient of %s differs from torch by %g", names[i], gdiff[i]);
    }
    for (int i = 0; i < 4; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "out.%s", names[i]);
        double dd = max_diff(&st, nm, dst[i], sizes[i]);
        printf("  %-6s after the step: max |diff| %.2e\n", names[i], dd);
        CHECK(dd < 1e-5, "%s after one step differs from torch by %g (tolerance 1e-5)", names[i], dd);
    }
    free(gw), free(W_dec0), free(loss), free(fvu), free(auxk), free(hp), free(x), free(dead), free(b_dec);
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
    double rd = max_diff(&st, "sae_out", out, nx);
    printf("sparsify-saved SAE: same latents %s, |value diff| %.2e, |reconstruction diff| %.2e\n", same_idx ? "yes" : "no",
           act_diff, rd);
    CHECK(rd < 1e-5, "reconstruction differs from sparsify's by %g", rd);
    free(x), free(acts), free(idx), free(xc), free(out), free(c.ptr), free(c.idx), free(c.val);
    musae_st_close(&st);
    sae_model_free(&m);
}

int main(void) {
    test_torch_step();
    test_sparsify_fixture();
    TEST_END();
}
