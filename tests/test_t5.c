/* T5 encoder and text conditioning against HF transformers 5.24:
 *   - relative position buckets: HF's table for 4 (num_buckets, max_distance) configs, rel -600..600;
 *   - the tiny MusicGen's T5 (relu, inner dim 32 != d_model 24): embeddings, every block's residual, the
 *     last hidden state and the projected, masked text states on a padded batch of 3 (golden/t5);
 *   - a tiny gated-gelu (v1.1) T5 of 3 blocks, 45 tokens, saturated buckets (golden/t5_extra_gated);
 *   - prompts → text states end to end (tokenizer + T5 + projection), for golden/t5 and lm_generate.
 * Tolerance: 1e-4 max abs (the bar); the achieved error is printed. */
#include <inttypes.h>

#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "model/t5.h"
#include "model/text_cond.h"
#include "golden.h"
#include "test.h"

#define TOL 1e-4

static void *must_load(musae_st *st, const char *name, musae_dtype dt, int64_t *shape) {
    int rank;
    void *p = musae_st_load_any(st, name, dt, &rank, shape);
    if (!p) {
        fprintf(stderr, "%s: golden tensor %s missing (regenerate with tools/reference)\n", st->path, name);
        exit(1);
    }
    return p;
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    double d = test_max_abs_diff(got, want, n);
    printf("  %-40s max |diff| %.3g\n", what, d);
    CHECK(d <= TOL, "%s: max |diff| %.3g > %g", what, d, TOL);
}

static void test_buckets(void) {
    musae_st st;
    if (golden_open(&st, "t5_extra_tokens.safetensors")) return;
    static const int cfgs[4][2] = {{32, 128}, {16, 20}, {64, 256}, {8, 16}}; /* t5_extra.py BUCKET_CFGS */
    int64_t shape[2];
    int64_t *want = must_load(&st, "buckets", MUSAE_I64, shape);
    int bad = 0;
    for (int c = 0; c < 4; c++)
        for (int64_t i = 0; i < shape[1]; i++) {
            int b = musae_t5_bucket(i - 600, cfgs[c][0], cfgs[c][1]);
            if (b != want[c * shape[1] + i] && bad++ < 5)
                fprintf(stderr, "bucket(rel %" PRId64 ", %d, %d) = %d, HF %" PRId64 "\n", i - 600, cfgs[c][0],
                        cfgs[c][1], b, want[c * shape[1] + i]);
        }
    CHECK(bad == 0, "%d bucket mismatches", bad);
    free(want);
    musae_st_close(&st);
}

static void test_tiny(const musae_ops *ops, const char *fx) {
    char dir[1024], path[1100], err[512];
    snprintf(dir, sizeof dir, "%s/tiny-musicgen", fx);
    musae_model_config cfg;
    if (musae_config_load(&cfg, dir, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    musae_st model;
    if (musae_st_open(&model, dir, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    musae_text_cond tc;
    if (musae_text_cond_load(&tc, dir, &model, &cfg, ops, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    CHECK(tc.t5.inner == 32 && tc.proj_w && tc.hidden == 32, "inner %" PRId64 " hidden %" PRId64, tc.t5.inner,
          tc.hidden);

    musae_st g;
    if (golden_open(&g, "t5.safetensors")) return;
    int64_t s2[2], s3[3];
    int64_t *ids = must_load(&g, "enc.input_ids", MUSAE_I64, s2);
    int64_t *mask = must_load(&g, "enc.attention_mask", MUSAE_I64, s2);
    const int64_t B = s2[0], S = s2[1], D = cfg.text.d_model, H = tc.hidden, L = cfg.text.num_layers;
    float *h = musae_xmalloc((size_t)(B * S * D) * sizeof *h);
    float **blocks = musae_xcalloc((size_t)L, sizeof *blocks);
    for (int j = 0; j < L; j++) blocks[j] = musae_xmalloc((size_t)(B * S * D) * sizeof(float));
    musae_t5_encode(&tc.t5, ids, mask, B, S, h, blocks);

    printf("tiny T5 (relu), batch %" PRId64 " x %" PRId64 ", padded:\n", B, S);
    float *emb = musae_xmalloc((size_t)(B * S * D) * sizeof *emb);
    ops->embedding(emb, tc.t5.embed, cfg.text.vocab_size, D, ids, B * S, 0);
    float *want = must_load(&g, "enc.embeddings", MUSAE_F32, s3);
    check_close("embeddings", emb, want, (size_t)(B * S * D));
    free(want), free(emb);
    for (int j = 0; j < L; j++) {
        char name[64];
        snprintf(name, sizeof name, "enc.block_out.%d", j);
        want = must_load(&g, name, MUSAE_F32, s3);
        check_close(name, blocks[j], want, (size_t)(B * S * D));
        free(want);
    }
    want = must_load(&g, "enc.last_hidden_state", MUSAE_F32, s3);
    check_close("last_hidden_state (all positions)", h, want, (size_t)(B * S * D));
    free(want);

    float *proj = musae_xmalloc((size_t)(B * S * H) * sizeof *proj);
    musae_text_cond_project(&tc, h, mask, B, S, proj);
    want = must_load(&g, "enc.projected", MUSAE_F32, s3);
    check_close("projected * mask", proj, want, (size_t)(B * S * H));

    /* the same from the prompt strings (golden_t5.py ENC_PROMPTS): tokenizer + T5 + projection */
    const char *prompts[3] = {"90s rock song with loud guitars and heavy drums", "calm piano",
                              "cr\xc3\xa8me br\xc3\xbbl\xc3\xa9"
                              "e \xf0\x9f\x8e\xb8 \xe9\x9f\xb3\xe6\xa5\xbd na\xc3\xaf"
                              "ve"};
    musae_text_states ts;
    CHECK(musae_text_cond_prompts(&tc, 3, prompts, 0, &ts, err, sizeof err) == 0, "%s", err);
    CHECK(ts.batch == B && ts.len == S && ts.hidden == H, "text states %" PRId64 "x%" PRId64 "x%" PRId64, ts.batch,
          ts.len, ts.hidden);
    if (ts.batch == B && ts.len == S) {
        CHECK(!memcmp(ts.mask, mask, (size_t)(B * S) * sizeof *mask), "mask from the prompts differs from HF");
        check_close("prompts -> text states", ts.states, want, (size_t)(B * S * H));
    }
    free(want);

    musae_text_states_free(&ts);

    /* lm_generate's two prompts → the text states its CFG golden was generated with */
    snprintf(path, sizeof path, "%s/golden/lm_generate.safetensors", fx);
    musae_st lg;
    if (musae_st_open(&lg, path, err, sizeof err) == 0) {
        const char *gp[2] = {"80s pop track with bassy drums and synth",
                             "90s rock song with loud guitars and heavy drums!"};
        const char *meta = musae_st_meta(&lg, "prompts");
        CHECK(meta && strstr(meta, gp[0]) && strstr(meta, gp[1]), "lm_generate prompts are not the expected ones");
        int64_t *gids = must_load(&lg, "text.input_ids", MUSAE_I64, s2);
        float *gst = must_load(&lg, "text.text_states", MUSAE_F32, s3);
        musae_t5_tokens tk;
        CHECK(musae_t5_tokenize_batch(&tc.tok, 2, gp, 0, &tk, err, sizeof err) == 0, "%s", err);
        CHECK(tk.len == s2[1] && !memcmp(tk.ids, gids, (size_t)(2 * tk.len) * sizeof *gids), "lm_generate ids differ");
        musae_t5_tokens_free(&tk);
        CHECK(musae_text_cond_prompts(&tc, 2, gp, 0, &ts, err, sizeof err) == 0, "%s", err);
        if (ts.len == s3[1])
            check_close("lm_generate prompts -> text states", ts.states, gst, (size_t)(2 * ts.len * H));
        musae_text_states_free(&ts);
        free(gids), free(gst);
        musae_st_close(&lg);
    } else {
        CHECK(0, "%s", err);
    }

    free(proj), free(h), free(ids), free(mask);
    for (int j = 0; j < L; j++) free(blocks[j]);
    free(blocks);
    musae_st_close(&g);
    musae_text_cond_free(&tc);
    musae_st_close(&model);
}

static void test_gated(const musae_ops *ops) {
    char err[512];
    musae_st g;
    if (golden_open(&g, "t5_extra_gated.safetensors")) return;
    musae_model_config cfg;
    const char *json = musae_st_meta(&g, "config");
    CHECK(json && musae_config_parse(&cfg, "t5_extra_gated config", json, err, sizeof err) == 0, "%s", err);
    CHECK(cfg.text.is_gated && !strcmp(cfg.text.dense_act_fn, "gelu_new"), "gated %d act %s", cfg.text.is_gated,
          cfg.text.dense_act_fn);
    musae_t5 t5;
    musae_t5_load(&t5, &g, "text_encoder.", &cfg.text, ops); /* embedding stored as encoder.embed_tokens.weight */
    int64_t s2[2], s3[3];
    int64_t *ids = must_load(&g, "input_ids", MUSAE_I64, s2);
    int64_t *mask = must_load(&g, "attention_mask", MUSAE_I64, s2);
    const int64_t B = s2[0], S = s2[1], D = cfg.text.d_model, L = cfg.text.num_layers;
    float *h = musae_xmalloc((size_t)(B * S * D) * sizeof *h);
    float **blocks = musae_xcalloc((size_t)L, sizeof *blocks);
    for (int j = 0; j < L; j++) blocks[j] = musae_xmalloc((size_t)(B * S * D) * sizeof(float));
    musae_t5_encode(&t5, ids, mask, B, S, h, blocks);
    printf("tiny gated-gelu T5 (v1.1), %" PRId64 " blocks, batch %" PRId64 " x %" PRId64 ", max_distance %d:\n", L, B,
           S, cfg.text.relative_attention_max_distance);
    for (int j = 0; j < L; j++) {
        char name[64];
        snprintf(name, sizeof name, "block_out.%d", j);
        float *want = must_load(&g, name, MUSAE_F32, s3);
        check_close(name, blocks[j], want, (size_t)(B * S * D));
        free(want);
    }
    float *want = must_load(&g, "last_hidden_state", MUSAE_F32, s3);
    check_close("last_hidden_state (all positions)", h, want, (size_t)(B * S * D));
    free(want), free(h), free(ids), free(mask);
    for (int j = 0; j < L; j++) free(blocks[j]);
    free(blocks);
    musae_t5_free(&t5);
    musae_st_close(&g);
}

int main(void) {
    const char *fx = test_fixtures();
    const musae_ops *ops = musae_ops_cpu();
    test_buckets();
    test_tiny(ops, fx);
    test_gated(ops);
    TEST_END();
}
