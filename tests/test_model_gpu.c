/* The whole model on a device table against the CPU reference table, on the tiny fixtures
 * (tests/fixtures/tiny-musicgen, goldens in tests/fixtures/golden):
 *   LM fp32, teacher-forced (unconditional; text)   logits and every hidden.<L> within the fp32 rule
 *   LM fp32, greedy generation                       codes identical to the CPU's and HF's (uncond; text + CFG 3)
 *   LM bf16, teacher-forced                          logits within the bf16 rule of the fp32 CPU model, and of
 *                                                    the CPU model whose matrices hold the same bf16 values
 *   T5 + enc_to_dec_proj from prompts                text states within the fp32 rule
 *   EnCodec                                          codes identical; embeddings and decoded audio within the rule
 *
 * usage: test_model_gpu [--table cpu] [--audio-samples N]
 *   default: the device is the CUDA table; without one the test exits 77 with musae_cuda_device_count's reason.
 *   --table cpu: the device is the CPU table too. The fp32 parts are then exact; what is tested is bf16 mode
 *   through linear_bf16w (CI: test_lm_bf16), at the FMA levels (on an AMX host: avx512). Under tools/cuda_emu/run_model.sh the CUDA table is the real
 *   kernels/cuda sources emulated on the CPU.
 *
 * Tolerance rules. A dot product of length k whose terms are summed in another order differs by at most
 * γ_k·Σ|w||x| with γ_k ≈ k·2^-24 (Higham, fp32 unit roundoff 2^-24); a weight rounded to bf16 (round to
 * nearest even, 8 significant bits) moves by at most 2^-9 of itself, so the product moves by at most
 * 2^-9·Σ|w||x|. With u the per-product relative error of a configuration:
 *   fp32 on another device                u = k_max·2^-24          (k_max: the longest sum, max(H, ffn, T))
 *   bf16 weights (CPU: x stays fp32)      u = 2^-9 + k_max·2^-24
 *   bf16 weights on the GPU               u = 2·2^-9 + k_max·2^-24 (its GEMM path rounds x to bf16 as well)
 * every one of the N weight matrices on the path to an output adds a perturbation of that relative size,
 * which the layers after it pass on (LayerNorm renormalizes, so the gain is about 1). The rule is then
 *   logits:  |Δ| <= u·(N + 1)·Σ_i |W_head[j, i]|·|h_i|      h = LN_final(x), the head's own |W||x| scale
 *   hidden:  |Δ| <= u·(N_L + 1)·max_i |x_i| of the row    N_L: matrices up to layer L
 * The worst ratio error / bound of every check is printed, so the margin is on record. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/log.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "kernels/cpu/isa.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/ops.h"
#include "model/delay.h"
#include "model/encodec.h"
#include "model/generate.h"
#include "model/musicgen.h"
#include "model/text_cond.h"
#include "test.h"

#include "st_test.h"

static const musae_ops *g_ref, *g_dev; /* the CPU reference, the table under test */
static int g_same;                      /* the device is the CPU table */
static char g_model[1024];
static int64_t g_audio_samples = 32123; /* the whole chirp_odd golden */

/* Every |got - ref| <= bound[i] (scale[i]·coef); prints the worst error and the worst ratio. */
static void check_rule(const char *what, const float *got, const float *ref, const float *scale, int64_t n,
                       double coef) {
    double worst = 0, ratio = 0;
    int64_t bad = 0, nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            nonfinite++;
            continue;
        }
        const double e = fabs((double)got[i] - (double)ref[i]), b = coef * (double)scale[i];
        if (e > worst) worst = e;
        const double r = b > 0 ? e / b : (e > 0 ? INFINITY : 0);
        if (r > ratio) ratio = r;
        if (e > b) bad++;
    }
    printf("  %-44s max abs %.3g, worst error/bound %.3g%s\n", what, worst, ratio,
           nonfinite ? " NON-FINITE" : "");
    CHECK(bad == 0 && nonfinite == 0, "%s: %lld of %lld beyond the rule (worst ratio %.3g), %lld non-finite", what,
          (long long)bad, (long long)n, ratio, (long long)nonfinite);
}

/* scale[r, :] = max |x[r, :]| (the hidden-state rule). */
static float *row_max_scale(const float *x, int64_t rows, int64_t H) {
    float *s = musae_xmalloc((size_t)(rows * H) * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        float m = 0;
        for (int64_t i = 0; i < H; i++) m = fmaxf(m, fabsf(x[r * H + i]));
        for (int64_t i = 0; i < H; i++) s[r * H + i] = m;
    }
    return s;
}

/* ---- LM ----------------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t B, K, T, S;
    int64_t *delayed;  /* [B, K, T] */
    float *states;     /* [B, S, H] or NULL */
    float *mask;       /* [B, S] */
} tf_case;

static void load_case(tf_case *c, const char *rel, int text) {
    musae_st st;
    fixture_open(&st, rel);
    int64_t sh[4];
    c->delayed = st_load_or_die(&st, "delayed", MUSAE_I64, sh);
    c->B = sh[0], c->K = sh[1], c->T = sh[2];
    c->states = NULL, c->mask = NULL, c->S = 0;
    if (text) {
        c->states = st_load_or_die(&st, "text_states", MUSAE_F32, sh);
        c->S = sh[1];
        int64_t *m = st_load_or_die(&st, "text_mask", MUSAE_I64, NULL);
        c->mask = musae_xmalloc((size_t)(c->B * c->S) * sizeof(float));
        for (int64_t i = 0; i < c->B * c->S; i++) c->mask[i] = (float)m[i];
        free(m);
    }
    musae_st_close(&st);
}

static void free_case(tf_case *c) { free(c->delayed), free(c->states), free(c->mask); }

/* Teacher-forced pass: logits [B, K, T, V] (returned) and hidden[l] [B, T, H] for every layer. */
static float *tf_forward(const mg_model *m, const tf_case *c, float **hidden) {
    mg_state st;
    mg_state_opts o = {.batch = c->B, .n_cond = c->B, .t_max = c->T, .t_call = c->T, .incremental = 0, .logits = 1};
    mg_state_init(&st, m, &o);
    if (c->states) mg_state_set_text(&st, m, c->states, c->mask, c->S);
    mg_hook hooks[64];
    MUSAE_ASSERT(m->n_layers <= 64, "layers");
    for (int l = 0; l < m->n_layers; l++)
        hooks[l] = (mg_hook){.kind = MG_HOOK_READ, .layer = l, .branch = MG_BRANCH_COND, .pos_end = MG_POS_END,
                             .dst = hidden[l], .dst_t = c->T};
    mg_forward(m, &st, c->delayed, c->T, hooks, (int)m->n_layers, 1);
    float *logits = musae_xmalloc((size_t)(c->B * m->K * c->T * m->V) * sizeof(float));
    mg_logits_bktv(m, &st, c->T, logits);
    mg_state_free(&st, m);
    return logits;
}

/* The logits rule's scale: Σ_i |W_head[j, i]|·|h_i| with h = LN_final(x_last), host, in [B, K, T, V]. */
static float *head_scale(const tf_case *c, const float *x_last, int64_t K, int64_t V, int64_t H) {
    musae_st st;
    char err[1024];
    if (musae_st_open(&st, g_model, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    float *lw = musae_st_load(&st, "decoder.model.decoder.layer_norm.weight", MUSAE_F32, 1, (int64_t[]){H});
    float *lb = musae_st_load(&st, "decoder.model.decoder.layer_norm.bias", MUSAE_F32, 1, (int64_t[]){H});
    float *s = musae_xmalloc((size_t)(c->B * K * c->T * V) * sizeof(float));
    double *h = musae_xmalloc((size_t)H * sizeof(double));
    for (int64_t k = 0; k < K; k++) {
        char name[128];
        snprintf(name, sizeof name, "decoder.lm_heads.%lld.weight", (long long)k);
        float *W = musae_st_load(&st, name, MUSAE_F32, 2, (int64_t[]){V, H});
        for (int64_t b = 0; b < c->B; b++)
            for (int64_t t = 0; t < c->T; t++) {
                const float *x = x_last + (b * c->T + t) * H;
                double mu = 0, var = 0;
                for (int64_t i = 0; i < H; i++) mu += x[i];
                mu /= (double)H;
                for (int64_t i = 0; i < H; i++) var += (x[i] - mu) * (x[i] - mu);
                var /= (double)H;
                for (int64_t i = 0; i < H; i++)
                    h[i] = fabs((x[i] - mu) / sqrt(var + MG_LN_EPS) * lw[i] + lb[i]);
                for (int64_t j = 0; j < V; j++) {
                    double a = 0;
                    for (int64_t i = 0; i < H; i++) a += fabs((double)W[j * H + i]) * h[i];
                    s[((b * K + k) * c->T + t) * V + j] = (float)a;
                }
            }
        free(W);
    }
    free(h), free(lw), free(lb);
    musae_st_close(&st);
    return s;
}

/* Weight matrices on the path to the output of layer l (l = n_layers: the logits, the head included). */
static double matrices_upto(const mg_model *m, int64_t l, int text) {
    const int64_t per = text ? 8 : 5; /* sa q, kv, o; ca q, kv, o (text); fc1, fc2 */
    return (double)(per * (l < m->n_layers ? l + 1 : m->n_layers) + (l >= m->n_layers ? 1 : 0));
}

/* Rounds every mg_mat of an fp32 model to bf16 values in place: the fp32 model the bf16 one computes. */
static void round_model_to_bf16(mg_model *m) {
    const int64_t H = m->H, F = m->ffn;
    for (int64_t l = 0; l <= m->n_layers; l++) {
        mg_mat mats[8];
        int64_t rows[8], ks[8];
        int n = 0;
        if (l == m->n_layers) {
            mats[n] = m->heads, rows[n] = m->K * m->V, ks[n++] = H;
        } else {
            const mg_layer *w = &m->layers[l];
            mats[n] = w->sa_q, rows[n] = H, ks[n++] = H;
            mats[n] = w->sa_kv, rows[n] = 2 * H, ks[n++] = H;
            mats[n] = w->sa_o, rows[n] = H, ks[n++] = H;
            mats[n] = w->ca_q, rows[n] = H, ks[n++] = H;
            mats[n] = w->ca_kv, rows[n] = 2 * H, ks[n++] = H;
            mats[n] = w->ca_o, rows[n] = H, ks[n++] = H;
            mats[n] = w->fc1, rows[n] = F, ks[n++] = H;
            mats[n] = w->fc2, rows[n] = H, ks[n++] = F;
        }
        for (int i = 0; i < n; i++) {
            /* rounding is elementwise, so a packed matrix (the CPU table's) is rounded in its own layout */
            float *x = mats[i].f ? mats[i].f : mats[i].p;
            MUSAE_ASSERT(x, "fp32 model expected");
            const int64_t size = mats[i].p ? m->ops->packed_floats(rows[i], ks[i]) : rows[i] * ks[i];
            float *h = musae_xmalloc((size_t)size * sizeof(float));
            m->ops->download(h, x, (size_t)size * sizeof(float));
            for (int64_t j = 0; j < size; j++) h[j] = musae_bf16_to_f32(musae_f32_to_bf16(h[j]));
            m->ops->upload(x, h, (size_t)size * sizeof(float));
            free(h);
        }
    }
}

static void test_teacher_forced(const char *rel, int text) {
    double t0 = musae_now();
    tf_case c;
    load_case(&c, rel, text);
    mg_model r, d, db, rr;
    mg_load(&r, g_model, g_ref, MUSAE_PREC_FP32);
    mg_load(&d, g_model, g_dev, MUSAE_PREC_FP32);
    mg_load(&db, g_model, g_dev, MUSAE_PREC_BF16);
    mg_load(&rr, g_model, g_ref, MUSAE_PREC_FP32);
    round_model_to_bf16(&rr);
    const int64_t L = r.n_layers, H = r.H, K = r.K, V = r.V, BT = c.B * c.T;
    printf("%s (%s): batch %lld x %lld positions, bf16 arena %.2f MiB vs fp32 %.2f MiB\n", rel,
           text ? "text" : "unconditional", (long long)c.B, (long long)c.T, (double)db.arena_bytes / 1048576.0,
           (double)d.arena_bytes / 1048576.0);
    CHECK(db.arena_bytes < d.arena_bytes, "bf16 arena %zu not below fp32 %zu", db.arena_bytes, d.arena_bytes);

    float *hr[64], *hd[64], *hb[64], *hrr[64];
    for (int64_t l = 0; l < L; l++) {
        hr[l] = musae_xmalloc((size_t)(BT * H) * sizeof(float));
        hd[l] = musae_xmalloc((size_t)(BT * H) * sizeof(float));
        hb[l] = musae_xmalloc((size_t)(BT * H) * sizeof(float));
        hrr[l] = musae_xmalloc((size_t)(BT * H) * sizeof(float));
    }
    float *lr = tf_forward(&r, &c, hr), *ld = tf_forward(&d, &c, hd), *lb = tf_forward(&db, &c, hb);
    float *lrr = tf_forward(&rr, &c, hrr);
    float *scale = head_scale(&c, hr[L - 1], K, V, H);

    const double kmax = (double)(H > r.ffn ? (H > c.T ? H : c.T) : (r.ffn > c.T ? r.ffn : c.T));
    const double u32 = g_same ? 0.0 : kmax * 0x1p-24;
    const double ubf = (g_same ? 1.0 : 2.0) * 0x1p-9 + kmax * 0x1p-24;
    const double n_all = matrices_upto(&r, L, text);
    char what[128];
    const int64_t nl = BT * K * V;

    if (g_same) {
        CHECK(!memcmp(ld, lr, (size_t)nl * sizeof(float)), "fp32 on the same table: logits bitwise");
        CHECK(!memcmp(lb, lrr, (size_t)nl * sizeof(float)),
              "bf16 mode == the fp32 model holding the same bf16 values, bitwise (every matrix goes through bf16)");
        printf("  fp32 logits bitwise equal; bf16 logits bitwise equal to the bf16-valued fp32 model\n");
    } else {
        check_rule("fp32 logits vs CPU", ld, lr, scale, nl, u32 * (n_all + 1));
        for (int64_t l = 0; l < L; l++) {
            float *hs = row_max_scale(hr[l], BT, H);
            snprintf(what, sizeof what, "fp32 hidden.%lld vs CPU", (long long)l);
            check_rule(what, hd[l], hr[l], hs, BT * H, u32 * (matrices_upto(&r, l, text) + 1));
            free(hs);
        }
        /* the bf16 weights' own effect removed: what is left is the GPU's activation rounding and order */
        check_rule("bf16 logits vs CPU with the same bf16 weights", lb, lrr, scale, nl,
                   (0x1p-9 + kmax * 0x1p-24) * (n_all + 1));
    }
    check_rule("bf16 logits vs fp32 CPU", lb, lr, scale, nl, ubf * (n_all + 1));
    for (int64_t l = 0; l < L; l++) {
        float *hs = row_max_scale(hr[l], BT, H);
        snprintf(what, sizeof what, "bf16 hidden.%lld vs fp32 CPU", (long long)l);
        check_rule(what, hb[l], hr[l], hs, BT * H, ubf * (matrices_upto(&r, l, text) + 1));
        free(hs);
    }
    /* and the bound is not vacuous: bf16 does move the logits */
    CHECK(test_max_abs_diff(lb, lr, (size_t)nl) > 0, "bf16 logits identical to fp32: the bf16 path is not used");

    for (int64_t l = 0; l < L; l++) free(hr[l]), free(hd[l]), free(hb[l]), free(hrr[l]);
    free(lr), free(ld), free(lb), free(lrr), free(scale);
    mg_free(&r), mg_free(&d), mg_free(&db), mg_free(&rr);
    free_case(&c);
    printf("  (%.1f s)\n", musae_now() - t0);
}

static int64_t *generate(const mg_model *m, int64_t B, const mg_text *text, int64_t steps, float guidance,
                         int64_t *F) {
    mg_gen_params p = {.steps = steps, .guidance = guidance};
    p.sampler = (mg_sampler){.greedy = 1, .temperature = 1, .top_k = 0, .top_p = 1};
    const mg_delay_plan plan = mg_delay_plan_steps(m->K, steps);
    int64_t *codes = musae_xcalloc((size_t)(B * m->K * plan.frames), sizeof(int64_t));
    *F = mg_generate(m, B, text, &p, NULL, 0, NULL, NULL, codes);
    return codes;
}

static void test_generate(void) {
    double t0 = musae_now();
    musae_st st;
    fixture_open(&st, "golden/lm_generate.safetensors");
    mg_model r, d, db;
    mg_load(&r, g_model, g_ref, MUSAE_PREC_FP32);
    mg_load(&d, g_model, g_dev, MUSAE_PREC_FP32);
    mg_load(&db, g_model, g_dev, MUSAE_PREC_BF16);
    const int64_t B = 2, K = r.K;
    float *states = st_load_or_die(&st, "text.text_states", MUSAE_F32, NULL);
    int64_t msh[2];
    int64_t *mask64 = st_load_or_die(&st, "text.text_mask", MUSAE_I64, msh);
    float *mask = musae_xmalloc((size_t)(msh[0] * msh[1]) * sizeof(float));
    for (int64_t i = 0; i < msh[0] * msh[1]; i++) mask[i] = (float)mask64[i];
    const mg_text text = {states, mask, msh[1]};
    const struct {
        const char *golden;
        const mg_text *text;
        float guidance;
    } cases[] = {{"uncond.mnt23.codes", NULL, 1.0f}, {"text_cfg3.codes", &text, 3.0f}};
    printf("greedy generation, batch 2:\n");
    for (int i = 0; i < 2; i++) {
        int64_t sh[3];
        int64_t *want = st_load_or_die(&st, cases[i].golden, MUSAE_I64, sh);
        const int64_t steps = mg_delay_plan_frames(K, sh[2]).steps, n = B * K * sh[2];
        int64_t Fr, Fd, Fb;
        int64_t *cr = generate(&r, B, cases[i].text, steps, cases[i].guidance, &Fr);
        int64_t *cd = generate(&d, B, cases[i].text, steps, cases[i].guidance, &Fd);
        int64_t *cb = generate(&db, B, cases[i].text, steps, cases[i].guidance, &Fb);
        CHECK(Fr == sh[2] && Fd == sh[2] && Fb == sh[2], "%s: frames %lld %lld %lld, want %lld", cases[i].golden,
              (long long)Fr, (long long)Fd, (long long)Fb, (long long)sh[2]);
        int64_t same_r = 0, same_b = 0;
        for (int64_t j = 0; j < n; j++) same_r += cd[j] == cr[j], same_b += cb[j] == cd[j];
        printf("  %-20s fp32 device == CPU: %lld/%lld codes, == HF golden: %s; bf16 == fp32: %lld/%lld (reported, "
               "greedy near-ties may flip)\n", cases[i].golden, (long long)same_r, (long long)n,
               memcmp(cd, want, (size_t)n * sizeof(int64_t)) ? "no" : "yes", (long long)same_b, (long long)n);
        CHECK(same_r == n, "%s: fp32 device codes differ from the CPU's in %lld places", cases[i].golden,
              (long long)(n - same_r));
        CHECK(!memcmp(cd, want, (size_t)n * sizeof(int64_t)), "%s: fp32 device codes differ from HF's",
              cases[i].golden);
        free(want), free(cr), free(cd), free(cb);
    }
    free(states), free(mask64), free(mask);
    mg_free(&r), mg_free(&d), mg_free(&db);
    musae_st_close(&st);
    printf("  (%.1f s)\n", musae_now() - t0);
}

/* ---- T5 ----------------------------------------------------------------------------------------------------- */

static void test_t5(void) {
    double t0 = musae_now();
    char err[1024];
    musae_model_config cfg;
    if (musae_config_load(&cfg, g_model, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    musae_st st;
    if (musae_st_open(&st, g_model, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    const char *prompts[3] = {"80s pop track with bassy drums and synth",
                              "90s rock song with loud guitars and heavy drums!", "calm harp"};
    musae_text_cond tr, td;
    musae_text_states sr, sd;
    CHECK(musae_text_cond_load(&tr, g_model, &st, &cfg, g_ref, err, sizeof err) == 0, "%s", err);
    CHECK(musae_text_cond_load(&td, g_model, &st, &cfg, g_dev, err, sizeof err) == 0, "%s", err);
    CHECK(musae_text_cond_prompts(&tr, 3, prompts, 0, &sr, err, sizeof err) == 0, "%s", err);
    CHECK(musae_text_cond_prompts(&td, 3, prompts, 0, &sd, err, sizeof err) == 0, "%s", err);
    const int64_t rows = sr.batch * sr.len, H = sr.hidden;
    CHECK(sd.batch == sr.batch && sd.len == sr.len && !memcmp(sd.mask, sr.mask, (size_t)rows * sizeof(int64_t)),
          "T5 shapes/mask differ");
    const musae_t5_config *t = &cfg.text;
    const double kmax = (double)(t->d_ff > t->d_model ? t->d_ff : t->d_model);
    const double n_mat = (double)t->num_layers * (t->is_gated ? 7 : 6) + 1; /* q k v o wi (wi_1) wo; proj */
    printf("T5 + enc_to_dec_proj, 3 prompts (%lld tokens):\n", (long long)sr.len);
    if (g_same) {
        CHECK(!memcmp(sd.states, sr.states, (size_t)(rows * H) * sizeof(float)), "T5 on the same table: bitwise");
        printf("  text states bitwise equal\n");
    } else {
        float *sc = row_max_scale(sr.states, rows, H);
        check_rule("text states vs CPU", sd.states, sr.states, sc, rows * H, kmax * 0x1p-24 * (n_mat + 1));
        free(sc);
    }
    musae_text_states_free(&sr), musae_text_states_free(&sd);
    musae_text_cond_free(&tr), musae_text_cond_free(&td);
    musae_st_close(&st);
    printf("  (%.1f s)\n", musae_now() - t0);
}

/* ---- EnCodec -------------------------------------------------------------------------------------------------- */

static void test_encodec(void) {
    double t0 = musae_now();
    musae_st g;
    fixture_open(&g, "golden/encodec.safetensors");
    int64_t sh[3];
    float *audio = st_load_or_die(&g, "audio.chirp_odd", MUSAE_F32, sh);
    const int64_t n = g_audio_samples < sh[2] ? g_audio_samples : sh[2];
    int64_t csh[3];
    int64_t *rnd = st_load_or_die(&g, "codes_random", MUSAE_I64, csh);
    musae_st_close(&g);
    encodec er, ed;
    encodec_load(&er, g_model, g_ref);
    encodec_load(&ed, g_model, g_dev);
    printf("EnCodec, %lld samples of chirp_odd:\n", (long long)n);

    encodec_encoder *xr = encodec_encoder_new(&er, 0, 1), *xd = encodec_encoder_new(&ed, 0, 1);
    encodec_encoder_push(xr, audio, n), encodec_encoder_push(xd, audio, n);
    encodec_encoder_finish(xr), encodec_encoder_finish(xd);
    const int64_t F = encodec_encoder_frames(xr);
    CHECK(encodec_encoder_frames(xd) == F, "frames %lld vs %lld", (long long)encodec_encoder_frames(xd), (long long)F);
    int64_t same = 0;
    for (int64_t i = 0; i < er.n_q * F; i++) same += encodec_encoder_codes(xd)[i] == encodec_encoder_codes(xr)[i];
    printf("  codes identical: %lld/%lld\n", (long long)same, (long long)(er.n_q * F));
    CHECK(same == er.n_q * F, "EnCodec codes differ from the CPU's in %lld places", (long long)(er.n_q * F - same));
    /* SEANet: convolutions of up to c_in·k terms (k_max); layers: every conv, the LSTM's gates, the RVQ-free path */
    const musae_encodec_config *c = &er.cfg;
    const double kmax = (double)(c->num_filters << c->n_ratios) * c->kernel_size;
    const double n_layers = 4.0 * (double)c->n_ratios * 3 + 2 * c->num_lstm_layers + 4;
    float *es = row_max_scale(encodec_encoder_embeddings(xr), F, er.dim);
    if (g_same)
        CHECK(!memcmp(encodec_encoder_embeddings(xd), encodec_encoder_embeddings(xr), (size_t)(F * er.dim) * 4),
              "embeddings bitwise");
    else
        check_rule("embeddings vs CPU", encodec_encoder_embeddings(xd), encodec_encoder_embeddings(xr), es,
                   F * er.dim, kmax * 0x1p-24 * (n_layers + 1));
    free(es);
    encodec_encoder_free(xr), encodec_encoder_free(xd);

    const int64_t Fr = csh[2];
    float *ar = encodec_decode_all(&er, rnd, Fr), *ad = encodec_decode_all(&ed, rnd, Fr);
    const int64_t ns = Fr * er.hop;
    float peak = 0;
    for (int64_t i = 0; i < ns; i++) peak = fmaxf(peak, fabsf(ar[i]));
    float *ps = musae_xmalloc((size_t)ns * sizeof(float));
    for (int64_t i = 0; i < ns; i++) ps[i] = peak;
    if (g_same)
        CHECK(!memcmp(ad, ar, (size_t)ns * sizeof(float)), "decoded audio bitwise");
    else
        check_rule("decoded audio (codes_random) vs CPU", ad, ar, ps, ns, kmax * 0x1p-24 * (n_layers + 1));
    free(ps), free(ar), free(ad), free(audio), free(rnd);
    encodec_free(&er), encodec_free(&ed);
    printf("  (%.1f s)\n", musae_now() - t0);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows as it happens (the emulated run takes minutes) */
    int cpu = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--table") && i + 1 < argc && !strcmp(argv[i + 1], "cpu")) cpu = 1, i++;
        else if (!strcmp(argv[i], "--audio-samples") && i + 1 < argc) g_audio_samples = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: test_model_gpu [--table cpu] [--audio-samples N]\n");
            return 2;
        }
    }
    g_ref = musae_ops_cpu();
    if (cpu) {
        g_dev = g_ref;
        /* bf16 mode's linear_bf16w runs the FMA kernels at every level, while the amx level computes the fp32
         * model's packed products in bf16x3 (kernels/cpu/gemm_amx.c): the bitwise promise below is the FMA
         * levels' (the amx level has its own test, test_ops_amx) */
        if (musae_isa_get() > MUSAE_ISA_AVX512) musae_isa_set(MUSAE_ISA_AVX512);
    } else {
        char why[512] = "";
        if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("no GPU: %s", why);
        g_dev = musae_ops_cuda();
        if (!g_dev) TEST_SKIP("the CUDA table did not start");
    }
    g_same = g_dev == g_ref;
    snprintf(g_model, sizeof g_model, "%s/tiny-musicgen", test_fixtures());
    printf("device table: %s (reference: %s)\n", g_dev->name, g_ref->name);
    const double t0 = musae_now();
    test_teacher_forced("golden/lm_forward_uncond.safetensors", 0);
    test_teacher_forced("golden/lm_forward_text.safetensors", 1);
    test_generate();
    test_t5();
    test_encodec();
    printf("total %.1f s\n", musae_now() - t0);
    TEST_END();
}
