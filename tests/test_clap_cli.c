/* musae clap end to end on the tiny model: the golden waveforms written as float WAVs (16 kHz, the model's
 * rate: no resampling, so the samples are HF's) embed to HF's audio_embeds, the golden texts to HF's
 * text_embeds, with HF's logits_per_text; rows keep the order given (paths after one --audio, --audio
 * repeated, a folder expanded to its sorted files); a 48 kHz copy goes through libsoxr. Every refusal exits 1
 * with one line. */
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/log.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "test.h"
#include "cli.h"
#include "fixture_io.h"

static musae_st g_gold;
static char g_model[1024];

static void write_wav(const char *rel, const float *x, int64_t n, int rate) {
    fx_write_wav(at(rel), x, n, rate, 1, MUSAE_AUDIO_FLOAT);
}

static float *gold(const char *name, int64_t *n) {
    int rank;
    int64_t shape[8];
    float *v = musae_st_load_any(&g_gold, name, MUSAE_F32, &rank, shape);
    if (!v) {
        fprintf(stderr, "FAIL: golden tensor %s missing (tools/reference/make_clap.py)\n", name);
        exit(1);
    }
    *n = 1;
    for (int i = 0; i < rank; i++) *n *= shape[i];
    return v;
}

/* Row `row` of out's tensor `name` [rows, cols] against row `grow` of the golden's. */
static double row_diff(musae_st *out, const char *name, int64_t row, const float *g, int64_t grow, int64_t cols) {
    musae_st_tensor *t = musae_st_find(out, name);
    if (!t || t->rank != 2 || t->shape[1] != cols || row >= t->shape[0]) return INFINITY;
    float *v = musae_xmalloc((size_t)musae_st_numel(t) * sizeof *v);
    musae_st_read(out, t, v, MUSAE_F32);
    const double d = test_max_abs_diff(v + row * cols, g + grow * cols, (size_t)cols);
    free(v);
    return d;
}

static void test_embeddings(void) {
    int64_t n;
    float *w[3];
    int64_t len[3];
    for (int c = 0; c < 3; c++) {
        char name[16], rel[32];
        snprintf(name, sizeof name, "wave%d", c);
        w[c] = gold(name, &len[c]);
        snprintf(rel, sizeof rel, "w%d.wav", c);
        write_wav(rel, w[c], len[c], 16000);
    }
    CHECK(sh("mkdir -p folder/sub && cp w1.wav folder/b.wav && cp w0.wav folder/sub/a.wav && cp w2.wav folder/c.wav "
             "&& echo notes > folder/readme.txt") == 0, "folder");
    float *ga = gold("audio_embeds", &n), *gt = gold("text_embeds", &n), *gl = gold("logits_per_text", &n);
    const int64_t D = 20;

    /* order: w2, w0 after one --audio, a text in between, then a second --audio */
    const int rc = run("clap --model %s --audio w2.wav w0.wav --text 'a calm piano melody' --audio=w1.wav "
                       "--text 'upbeat electronic dance track with heavy bass' -o emb.safetensors", g_model);
    CHECK(rc == 0, "clap exited %d", rc);
    if (rc) {
        char *e = slurp("err.txt");
        fprintf(stderr, "%s\n", e);
        free(e);
        return;
    }
    musae_st out;
    char err[512] = "";
    CHECK(musae_st_open(&out, at("emb.safetensors"), err, sizeof err) == 0, "%s", err);
    const int order[3] = {2, 0, 1};
    double da = 0, dt = 0, dl = 0;
    for (int i = 0; i < 3; i++) da = fmax(da, row_diff(&out, "audio_embeds", i, ga, order[i], D));
    for (int i = 0; i < 2; i++) dt = fmax(dt, row_diff(&out, "text_embeds", i, gt, i, D));
    for (int i = 0; i < 2; i++) {
        /* golden logits are [4 texts, 3 clips] in clip order 0, 1, 2; ours [2, 3] in the order given */
        musae_st_tensor *t = musae_st_find(&out, "logits_per_text");
        CHECK(t && t->rank == 2 && t->shape[0] == 2 && t->shape[1] == 3, "logits_per_text shape");
        if (!t) break;
        float v[6];
        musae_st_read(&out, t, v, MUSAE_F32);
        for (int j = 0; j < 3; j++) dl = fmax(dl, fabs(v[i * 3 + j] - gl[i * 3 + order[j]]));
    }
    CHECK(da <= 1e-4, "audio_embeds: max |musae - HF| = %.3g", da);
    CHECK(dt <= 1e-4, "text_embeds: max |musae - HF| = %.3g", dt);
    CHECK(dl <= 1e-3, "logits_per_text: max |musae - HF| = %.3g", dl);
    printf("musae clap vs HF: audio %.3g, text %.3g, logits %.3g\n", da, dt, dl);
    const char *meta = musae_st_meta(&out, "audio");
    CHECK(meta && !strcmp(meta, "[\"w2.wav\",\"w0.wav\",\"w1.wav\"]"), "audio metadata %s", meta ? meta : "(none)");
    musae_st_close(&out);

    /* a folder: its audio files, recursively, sorted by path (b, c, sub/a); text alone and audio alone */
    CHECK(run("clap --model %s --audio folder -o f.safetensors", g_model) == 0, "folder run");
    CHECK(musae_st_open(&out, at("f.safetensors"), err, sizeof err) == 0, "%s", err);
    const int forder[3] = {1, 2, 0};
    da = 0;
    for (int i = 0; i < 3; i++) da = fmax(da, row_diff(&out, "audio_embeds", i, ga, forder[i], D));
    CHECK(da <= 1e-4, "folder order: max |musae - HF| = %.3g", da);
    CHECK(!musae_st_find(&out, "text_embeds") && !musae_st_find(&out, "logits_per_text"), "audio only: no text rows");
    musae_st_close(&out);

    /* 48 kHz: resampled by libsoxr to 16 kHz; the embedding stays close to the 16 kHz one (band-limited) */
    float *up = musae_xmalloc((size_t)len[1] * 3 * sizeof *up);
    for (int64_t i = 0; i < len[1] * 3; i++) { /* linear interpolation: the test only needs a 48 kHz file */
        const int64_t k = i / 3;
        const float f = (float)(i % 3) / 3.0f;
        up[i] = w[1][k] * (1 - f) + (k + 1 < len[1] ? w[1][k + 1] : 0.0f) * f;
    }
    write_wav("w1_48k.wav", up, len[1] * 3, 48000);
    CHECK(run("clap --model %s --audio w1_48k.wav -o r.safetensors", g_model) == 0, "48 kHz run");
    CHECK(musae_st_open(&out, at("r.safetensors"), err, sizeof err) == 0, "%s", err);
    musae_st_tensor *t = musae_st_find(&out, "audio_embeds");
    float v[20];
    if (t && musae_st_numel(t) == D) {
        musae_st_read(&out, t, v, MUSAE_F32);
        double dot = 0;
        for (int k = 0; k < D; k++) dot += (double)v[k] * ga[1 * D + k];
        CHECK(dot > 0.9, "48 kHz copy: cosine %.4f to the 16 kHz clip", dot);
        printf("48 kHz copy through libsoxr: cosine %.4f to the 16 kHz clip's embedding\n", dot);
    } else {
        CHECK(0, "48 kHz: audio_embeds [1, %lld] missing", (long long)D);
    }
    musae_st_close(&out);
    free(up), free(ga), free(gt), free(gl);
    for (int c = 0; c < 3; c++) free(w[c]);
}

static void refuse(const char *args, const char *msg) {
    const int rc = run("%s", args);
    CHECK(rc == 1, "'%s' exited %d, want 1", args, rc);
    char *e = slurp("err.txt");
    CHECK(strstr(e, msg) != NULL, "'%s': stderr '%s' lacks '%s'", args, e, msg);
    free(e);
}

static void test_refusals(void) {
    char a[2048];
    refuse("clap --model x", "--model and -o are required; see musae clap --help");
    snprintf(a, sizeof a, "clap --model %s -o e.safetensors", g_model);
    refuse(a, "nothing to embed");
    snprintf(a, sizeof a, "clap --model %s stray.wav --audio w0.wav -o e.safetensors", g_model);
    refuse(a, "'stray.wav' is not an option's value (audio paths follow --audio); see musae clap --help");
    refuse("clap --bogus", "unknown option '--bogus'; see musae clap --help");
    refuse("clap --model m -o e --text", "--text needs a value; see musae clap --help");
    snprintf(a, sizeof a, "clap --model %s --audio missing.wav -o e.safetensors", g_model);
    refuse(a, "missing.wav");
    snprintf(a, sizeof a, "clap --model %s --audio empty_dir -o e.safetensors", g_model);
    CHECK(sh("mkdir -p empty_dir") == 0, "mkdir");
    refuse(a, "empty_dir");
    refuse("clap --model /nonexistent --text hi -o e.safetensors", "/nonexistent/config.json: cannot read");
    snprintf(a, sizeof a, "clap --model %s --text hi --batch 0 -o e.safetensors", g_model);
    refuse(a, "--batch");
    CHECK(run("clap --help") == 0, "--help exits 0");
    char *o = slurp("out.txt");
    CHECK_STR_CONTAINS(o, "usage: musae clap --model DIR");
    free(o);
}

int main(void) {
    scratch_open("clap_cli");
    snprintf(g_model, sizeof g_model, "%s/tiny-clap", test_fixtures());
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/golden/clap_tiny.safetensors", test_fixtures());
    if (musae_st_open(&g_gold, path, err, sizeof err)) {
        fprintf(stderr, "FAIL: golden: %s\n", err);
        return 1;
    }
    test_embeddings();
    test_refusals();
    musae_st_close(&g_gold);
    scratch_close();
    TEST_END();
}
