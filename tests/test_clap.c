/* CLAP embeddings against HF ClapModel (transformers 5.24) on the tiny random-weight model
 * (tests/fixtures/tiny-clap, golden/clap_tiny.safetensors; tools/reference/make_clap.py): text through the
 * C tokenizer, audio through the C front end from the raw waveforms (3 clips: repeat-padded, exact, longer),
 * then the encoders' pooled outputs, the L2-normalised embeddings (within 1e-4) and logits_per_text (within
 * 1e-3), on the CPU table. Then refusals of broken model folders (config fields, a missing or misshapen
 * tensor is a musae_fail checked through the CLI test instead). */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "host/io/safetensors.h"
#include "model/clap.h"
#include "test.h"

static float *golden(musae_st *st, const char *name, int64_t *n) {
    int rank;
    int64_t shape[8];
    float *v = musae_st_load_any(st, name, MUSAE_F32, &rank, shape);
    CHECK(v != NULL, "golden tensor %s missing", name);
    *n = 1;
    for (int i = 0; i < rank; i++) *n *= shape[i];
    return v;
}

static void report(const char *what, const float *got, const float *want, int64_t n, double tol) {
    const double d = test_max_abs_diff(got, want, (size_t)n);
    CHECK(d <= tol, "%s: max |musae - HF| = %.3g (tolerance %.0e)", what, d, tol);
    printf("%-28s max |musae - HF| = %.3g (tolerance %.0e)\n", what, d, tol);
}

static void test_tiny(void) {
    char dir[1024], path[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/tiny-clap", test_fixtures());
    snprintf(path, sizeof path, "%s/golden/clap_tiny.safetensors", test_fixtures());
    musae_clap m;
    CHECK(musae_clap_open(&m, dir, musae_ops_cpu(), err, sizeof err) == 0, "open %s: %s", dir, err);
    musae_st st;
    CHECK(musae_st_open(&st, path, err, sizeof err) == 0, "golden: %s", err);
    if (!m.ops || !st.path) return;
    const int64_t D = m.cfg.proj_dim, NA = 3;

    /* text: the golden's strings through the C tokenizer */
    cJSON *texts = cJSON_Parse(musae_st_meta(&st, "texts"));
    const int64_t NT = cJSON_GetArraySize(texts);
    CHECK(NT == 4, "%lld golden texts", (long long)NT);
    int64_t *ids = malloc((size_t)NT * MUSAE_CLAP_TEXT_LEN * sizeof *ids);
    int64_t *mask = malloc((size_t)NT * MUSAE_CLAP_TEXT_LEN * sizeof *mask);
    for (int64_t i = 0; i < NT; i++) {
        const char *s = cJSON_GetArrayItem(texts, (int)i)->valuestring;
        CHECK(musae_clap_tokenize(m.tok, s, strlen(s), "text", ids + i * MUSAE_CLAP_TEXT_LEN,
                                  mask + i * MUSAE_CLAP_TEXT_LEN, NULL, err, sizeof err) == 0, "%s", err);
    }
    const int64_t ishape[2] = {NT, MUSAE_CLAP_TEXT_LEN};
    int64_t *want_ids = musae_st_load(&st, "input_ids", MUSAE_I64, 2, ishape);
    CHECK(!memcmp(ids, want_ids, (size_t)NT * MUSAE_CLAP_TEXT_LEN * sizeof *ids), "input_ids differ from HF's");
    free(want_ids);
    cJSON_Delete(texts);

    float *t_emb = malloc((size_t)(NT * D) * sizeof *t_emb);
    float *t_pool = malloc((size_t)(NT * m.cfg.text.hidden) * sizeof *t_pool);
    musae_clap_text_embed(&m, ids, mask, NT, t_emb, t_pool);
    int64_t n;
    float *want = golden(&st, "text_pooler", &n);
    if (want) report("text pooler_output", t_pool, want, n, 1e-4), free(want);
    want = golden(&st, "text_embeds", &n);
    if (want) report("text_embeds", t_emb, want, n, 1e-4), free(want);

    /* audio: waveforms → front end → HTSAT; the features are checked on the way */
    const int64_t F = m.fe.frames * m.fe.n_mels;
    float *feats = malloc((size_t)(NA * F) * sizeof *feats);
    for (int c = 0; c < NA; c++) {
        char name[16];
        snprintf(name, sizeof name, "wave%d", c);
        float *w = golden(&st, name, &n);
        if (w) musae_clap_fe_features(&m.fe, w, n, feats + c * F), free(w);
    }
    want = golden(&st, "input_features", &n);
    if (want) report("input_features", feats, want, n, 1e-4), free(want);
    float *a_emb = malloc((size_t)(NA * D) * sizeof *a_emb);
    float *a_pool = malloc((size_t)(NA * m.cfg.audio.hidden) * sizeof *a_pool);
    musae_clap_audio_embed(&m, feats, NA, a_emb, a_pool);
    want = golden(&st, "audio_pooler", &n);
    if (want) report("audio pooler_output", a_pool, want, n, 1e-4), free(want);
    want = golden(&st, "audio_embeds", &n);
    if (want) report("audio_embeds", a_emb, want, n, 1e-4), free(want);

    /* one clip alone gives the batch's row: clips do not leak into each other */
    float one[64];
    MUSAE_ASSERT(D <= 64, "proj dim");
    musae_clap_audio_embed(&m, feats + 2 * F, 1, one, NULL);
    report("audio_embeds, batch of 1", one, a_emb + 2 * D, D, 1e-6);

    float *logits = malloc((size_t)(NT * NA) * sizeof *logits);
    musae_clap_logits(&m, t_emb, NT, a_emb, NA, logits);
    want = golden(&st, "logits_per_text", &n);
    if (want) report("logits_per_text", logits, want, n, 1e-3), free(want);

    free(ids), free(mask), free(t_emb), free(t_pool), free(feats), free(a_emb), free(a_pool), free(logits);
    musae_st_close(&st);
    musae_clap_close(&m);
}

/* A copy of tiny-clap whose config.json is replaced, opened: it must fail with msg. */
static void refuse_config(const char *tmp, const char *sed, const char *msg) {
    char cmd[2048], err[512] = "";
    snprintf(cmd, sizeof cmd, "rm -rf %s/m && cp -r %s/tiny-clap %s/m && sed -i '%s' %s/m/config.json", tmp,
             test_fixtures(), tmp, sed, tmp);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(cmd, sizeof cmd, "%s/m", tmp);
    musae_clap m;
    CHECK(musae_clap_open(&m, cmd, musae_ops_cpu(), err, sizeof err) == -1, "accepted: %s", sed);
    CHECK_STR_CONTAINS(err, msg);
}

static void test_refusals(void) {
    char tmp[512], cmd[600], err[512] = "";
    snprintf(tmp, sizeof tmp, "%s/clap_%d", test_tmp(), (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp);
    CHECK(system(cmd) == 0, "mkdir");
    musae_clap m;
    CHECK(musae_clap_open(&m, "/nonexistent-clap", musae_ops_cpu(), err, sizeof err) == -1, "missing folder");
    CHECK_STR_CONTAINS(err, "/nonexistent-clap/config.json: cannot read");
    refuse_config(tmp, "s/\"model_type\": \"clap\"/\"model_type\": \"t5\"/", "model_type: expected \"clap\"");
    refuse_config(tmp, "s/\"enable_fusion\": false/\"enable_fusion\": true/", "audio_config.enable_fusion");
    refuse_config(tmp, "s/\"window_size\": 3/\"window_size\": 5/", "does not divide into 5x5 windows");
    refuse_config(tmp, "s/\"hidden_size\": 32/\"hidden_size\": 48/", "audio_config.hidden_size: 48");
    refuse_config(tmp, "s/\"vocab_size\": 580/\"vocab_size\": 500/", "ids up to 579, but text_config.vocab_size is 500");
    refuse_config(tmp, "s/\"max_position_embeddings\": 80/\"max_position_embeddings\": 60/",
                  "max_position_embeddings: 60 is too small");
    refuse_config(tmp, "s/\"hidden_act\": \"gelu\"/\"hidden_act\": \"relu\"/", "hidden_act: \"relu\" is not supported");
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
}

int main(void) {
    test_tiny();
    test_refusals();
    TEST_END();
}
