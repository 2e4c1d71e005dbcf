/* EnCodec against HF goldens on the tiny 32 kHz-shaped codec of tests/fixtures/tiny-musicgen
 * (tools/reference/golden_encodec.py): codes identical, decoded audio within 1e-4, 640·F samples,
 * resampled stereo inputs, chunked encoding/decoding equal to one pass, both weight-norm spellings, and
 * clear errors for bad codes files. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "host/core/log.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "kernels/ops.h"
#include "model/encodec.h"
#include "st_test.h"
#include "model/lm_files.h"
#include "test.h"

static musae_st g_gold;

static float *gold_f32(const char *name, int64_t *n) {
    int rank;
    int64_t shape[8];
    float *x = musae_st_load_any(&g_gold, name, MUSAE_F32, &rank, shape);
    if (!x) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        exit(1);
    }
    *n = 1;
    for (int i = 0; i < rank; i++) *n *= shape[i];
    return x;
}

static int64_t *gold_i64(const char *name, int64_t *n) {
    int rank;
    int64_t shape[8];
    int64_t *x = musae_st_load_any(&g_gold, name, MUSAE_I64, &rank, shape);
    if (!x) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        exit(1);
    }
    *n = 1;
    for (int i = 0; i < rank; i++) *n *= shape[i];
    return x;
}

/* Encoder output [F, D] vs the golden [1, D, F]. */
static double emb_diff(const float *mine, const float *gold, int64_t F, int64_t D) {
    double m = 0;
    for (int64_t f = 0; f < F; f++)
        for (int64_t d = 0; d < D; d++) {
            double e = fabs((double)mine[f * D + d] - gold[d * F + f]);
            if (!(e <= m)) m = e;
        }
    return m;
}

static int64_t count_diff(const int64_t *a, const int64_t *b, int64_t n) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) k += a[i] != b[i];
    return k;
}

typedef struct {
    int64_t *codes;
    float *emb;
    int64_t frames;
} enc_out;

static enc_out encode(const encodec *m, const float *x, int64_t n, int chunk, int64_t piece) {
    encodec_encoder *e = encodec_encoder_new(m, chunk, 1);
    for (int64_t off = 0; off < n; off += piece) encodec_encoder_push(e, x + off, n - off < piece ? n - off : piece);
    encodec_encoder_finish(e);
    enc_out o = {.frames = encodec_encoder_frames(e)};
    size_t nc = (size_t)(o.frames * m->n_q), ne = (size_t)(o.frames * m->dim);
    o.codes = musae_xmalloc(nc * sizeof(int64_t));
    o.emb = musae_xmalloc(ne * sizeof(float));
    memcpy(o.codes, encodec_encoder_codes(e), nc * sizeof(int64_t));
    memcpy(o.emb, encodec_encoder_embeddings(e), ne * sizeof(float));
    encodec_encoder_free(e);
    return o;
}

static void enc_out_free(enc_out *o) {
    free(o->codes);
    free(o->emb);
}

typedef struct {
    float *out;
    int64_t n, calls;
} sink_ctx;

static void sink(void *ctx, const float *s, int64_t n) {
    sink_ctx *c = ctx;
    memcpy(c->out + c->n, s, (size_t)n * sizeof(float));
    c->n += n;
    c->calls++;
}

static float *decode_chunked(const encodec *m, const int64_t *codes, int64_t F, int chunk, int64_t *calls) {
    sink_ctx c = {.out = musae_xmalloc((size_t)(F * m->hop) * sizeof(float))};
    encodec_decode(m, codes, F, chunk, sink, &c);
    CHECK(c.n == F * m->hop, "decode gave %lld samples for %lld frames", (long long)c.n, (long long)F);
    *calls = c.calls;
    return c.out;
}

static const char *const k_signals[] = {"chord", "noise_bursts", "silence", "square_clipped", "chirp_odd"};

static void test_signals(const encodec *m) {
    for (size_t s = 0; s < sizeof k_signals / sizeof k_signals[0]; s++) {
        char name[96];
        int64_t n, nc, ne, nd;
        snprintf(name, sizeof name, "audio.%s", k_signals[s]);
        float *x = gold_f32(name, &n);
        snprintf(name, sizeof name, "codes.%s", k_signals[s]);
        int64_t *gc = gold_i64(name, &nc);
        snprintf(name, sizeof name, "embeddings.%s", k_signals[s]);
        float *ge = gold_f32(name, &ne);
        snprintf(name, sizeof name, "decoded.%s", k_signals[s]);
        float *gd = gold_f32(name, &nd);

        enc_out o = encode(m, x, n, 0, n);
        int64_t F = (n + m->hop - 1) / m->hop;
        CHECK(o.frames == F, "%s: %lld frames, expected ceil(%lld / %d) = %lld", k_signals[s], (long long)o.frames,
              (long long)n, m->hop, (long long)F);
        CHECK(nc == F * m->n_q, "%s: golden codes size", k_signals[s]);
        int64_t bad = count_diff(o.codes, gc, nc);
        double de = emb_diff(o.emb, ge, F, m->dim);
        CHECK(bad == 0, "%s: %lld of %lld codes differ from HF", k_signals[s], (long long)bad, (long long)nc);
        CHECK(de <= 1e-4, "%s: embeddings max abs diff %.3g", k_signals[s], de);

        float *y = encodec_decode_all(m, gc, F);
        CHECK(nd == F * m->hop, "%s: golden decoded length %lld", k_signals[s], (long long)nd);
        double dd = test_max_abs_diff(y, gd, (size_t)nd);
        CHECK(dd <= 1e-4, "%s: decoded max abs diff %.3g vs HF", k_signals[s], dd);
        printf("%-15s frames %3lld  codes equal %s  embeddings max|d| %.2e  decoded max|d| %.2e\n", k_signals[s],
               (long long)F, bad ? "NO" : "yes", de, dd);
        free(y);
        enc_out_free(&o);
        free(x);
        free(gc);
        free(ge);
        free(gd);
    }
    int64_t nc, nd;
    int64_t *rc = gold_i64("codes_random", &nc);
    float *gd = gold_f32("decoded_random", &nd);
    float *y = encodec_decode_all(m, rc, nc / m->n_q);
    double dd = test_max_abs_diff(y, gd, (size_t)nd);
    CHECK(nd == 640 * (nc / m->n_q) && dd <= 1e-4, "decoded_random max abs diff %.3g", dd);
    printf("decoded_random  frames %3lld  decoded max|d| %.2e\n", (long long)(nc / m->n_q), dd);
    free(y);
    free(rc);
    free(gd);
}

/* 44.1 and 48 kHz stereo: downmix + libsoxr HQ against python-soxr's output, then codes against HF's codes
 * of python-soxr's samples. */
static void test_resampled(const encodec *m) {
    static const char *const cases[] = {"44k", "48k"};
    for (int c = 0; c < 2; c++) {
        char name[96];
        int64_t n_in, n_sr, n_out, nc;
        snprintf(name, sizeof name, "resample_in.%s", cases[c]);
        float *in = gold_f32(name, &n_in); /* [N, 2] interleaved */
        snprintf(name, sizeof name, "resample_sr.%s", cases[c]);
        int64_t *sr = gold_i64(name, &n_sr);
        snprintf(name, sizeof name, "resample_out.%s", cases[c]);
        float *ref = gold_f32(name, &n_out);
        snprintf(name, sizeof name, "codes.resampled_%s", cases[c]);
        int64_t *gc = gold_i64(name, &nc);

        /* through the file reader: a float WAV holds the samples exactly */
        char path[512], err[512];
        snprintf(path, sizeof path, "%s/encodec_resample_%s.wav", test_tmp(), cases[c]);
        musae_audio_writer *w = musae_audio_writer_open(path, (int)sr[0], 2, MUSAE_AUDIO_FLOAT, err, sizeof err);
        CHECK(w != NULL, "%s", err);
        CHECK(musae_audio_write(w, in, n_in / 2, err, sizeof err) == 0, "%s", err);
        CHECK(musae_audio_writer_close(w, NULL, err, sizeof err) == 0, "%s", err);
        int64_t n;
        float *x = musae_audio_load(path, 32000, 0, 0, &n, err, sizeof err);
        CHECK(x != NULL, "%s", err);
        if (!x) continue;
        CHECK(n == n_out, "%s: %lld resampled samples, python-soxr gave %lld", cases[c], (long long)n, (long long)n_out);
        double dr = test_max_abs_diff(x, ref, (size_t)(n < n_out ? n : n_out));
        CHECK(dr <= 1e-6, "%s: resampled max abs diff %.3g vs python-soxr", cases[c], dr);
        enc_out o = encode(m, x, n, 0, n);
        int64_t bad = count_diff(o.codes, gc, nc);
        CHECK(o.frames * m->n_q == nc && bad == 0, "%s: %lld codes differ from HF", cases[c], (long long)bad);
        printf("resampled %s  %lld -> %lld samples  max|d| vs python-soxr %.2e  codes equal %s\n", cases[c],
               (long long)(n_in / 2), (long long)n, dr, bad ? "NO" : "yes");
        enc_out_free(&o);
        free(x);
        free(in);
        free(sr);
        free(ref);
        free(gc);
    }
}

/* Windows of a few frames, odd push sizes: the same codes, embeddings and audio as one pass. */
static void test_chunking(const encodec *m) {
    static const char *const sigs[] = {"chirp_odd", "noise_bursts"};
    for (int s = 0; s < 2; s++) {
        char name[96];
        int64_t n;
        snprintf(name, sizeof name, "audio.%s", sigs[s]);
        float *x = gold_f32(name, &n);
        enc_out one = encode(m, x, n, 100000, n);
        static const int chunks[] = {1, 3, 7};
        for (int c = 0; c < 3; c++) {
            enc_out o = encode(m, x, n, chunks[c], 777);
            CHECK(o.frames == one.frames, "%s chunk %d: %lld frames vs %lld", sigs[s], chunks[c], (long long)o.frames,
                  (long long)one.frames);
            if (o.frames == one.frames) {
                int64_t bad = count_diff(o.codes, one.codes, one.frames * m->n_q);
                double de = test_max_abs_diff(o.emb, one.emb, (size_t)(one.frames * m->dim));
                CHECK(bad == 0 && de <= 1e-5, "%s chunk %d frames: %lld codes differ, embeddings max|d| %.3g",
                      sigs[s], chunks[c], (long long)bad, de);
                printf("chunked encode %-12s chunk %d: codes equal %s, embeddings max|d| vs one pass %.2e\n", sigs[s],
                       chunks[c], bad ? "NO" : "yes", de);
            }
            enc_out_free(&o);
        }
        int64_t calls;
        float *y1 = decode_chunked(m, one.codes, one.frames, 100000, &calls);
        CHECK(calls == 1, "one-pass decode made %lld sink calls", (long long)calls);
        for (int c = 0; c < 2; c++) {
            int chunk = c ? 5 : 2;
            float *y = decode_chunked(m, one.codes, one.frames, chunk, &calls);
            double dd = test_max_abs_diff(y, y1, (size_t)(one.frames * m->hop));
            CHECK(dd <= 1e-5 && calls > 1, "%s decode chunk %d: max|d| %.3g, %lld sink calls", sigs[s], chunk, dd,
                  (long long)calls);
            printf("chunked decode %-12s chunk %d: %lld pieces, max|d| vs one pass %.2e\n", sigs[s], chunk,
                   (long long)calls, dd);
            free(y);
        }
        free(y1);
        enc_out_free(&one);
        free(x);
    }
    /* shorter than one frame, and shorter than the first conv's padding (HF's zero-extended reflection) */
    static const int64_t tiny[] = {1, 2, 5, 639, 641};
    for (int i = 0; i < 5; i++) {
        float x[641];
        for (int j = 0; j < 641; j++) x[j] = 0.3f * sinf(0.05f * (float)j);
        int64_t F;
        int64_t *codes = encodec_encode(m, x, tiny[i], &F);
        CHECK(F == (tiny[i] + 639) / 640, "%lld samples gave %lld frames", (long long)tiny[i], (long long)F);
        float *y = encodec_decode_all(m, codes, F);
        int finite = 1;
        for (int64_t j = 0; j < F * 640; j++) finite &= isfinite(y[j]);
        CHECK(finite, "%lld samples: decoded audio not finite", (long long)tiny[i]);
        free(y);
        free(codes);
    }
}

/* The same checkpoint with the legacy weight_g/weight_v names loads to the same weights. */
static void test_legacy_names(const encodec *m5, const char *model_dir) {
    char err[512], path[512];
    musae_st st;
    CHECK(musae_st_open(&st, model_dir, err, sizeof err) == 0, "%s", err);
    musae_st_writer *w = musae_st_writer_new();
    for (int i = 0; i < st.n_tensors; i++) {
        musae_st_tensor *t = &st.tensors[i];
        if (strncmp(t->name, "audio_encoder.", 14)) continue;
        char name[256];
        snprintf(name, sizeof name, "%s", t->name);
        char *at = strstr(name, "parametrizations.weight.original");
        if (at) snprintf(at, sizeof name - (size_t)(at - name), "%s", at[32] == '0' ? "weight_g" : "weight_v");
        float *v = musae_xmalloc((size_t)musae_st_numel(t) * sizeof(float));
        musae_st_read(&st, t, v, MUSAE_F32);
        musae_st_writer_add(w, name, MUSAE_F32, t->rank, t->shape, v);
        free(v);
    }
    snprintf(path, sizeof path, "%s/encodec_legacy.safetensors", test_tmp());
    CHECK(musae_st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    musae_st_close(&st);
    musae_st lst;
    CHECK(musae_st_open(&lst, path, err, sizeof err) == 0, "%s", err);
    encodec ml;
    encodec_load_st(&ml, &m5->cfg, &lst, "audio_encoder.", musae_ops_cpu());
    musae_st_close(&lst);
    int64_t n;
    float *x = gold_f32("audio.chord", &n);
    int64_t F5, Fl;
    int64_t *c5 = encodec_encode(m5, x, n, &F5), *cl = encodec_encode(&ml, x, n, &Fl);
    CHECK(F5 == Fl && count_diff(c5, cl, F5 * m5->n_q) == 0, "legacy names: codes differ");
    float *y5 = encodec_decode_all(m5, c5, F5), *yl = encodec_decode_all(&ml, c5, F5);
    CHECK(test_max_abs_diff(y5, yl, (size_t)(F5 * 640)) == 0, "legacy names: decoded audio differs");
    printf("legacy weight_g/weight_v checkpoint: same codes and audio\n");
    free(y5);
    free(yl);
    free(c5);
    free(cl);
    free(x);
    encodec_free(&ml);
}

static void write_codes(const char *path, musae_dtype dt, int rank, const int64_t *shape, const void *data) {
    char err[512];
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "codes", dt, rank, shape, data);
    CHECK(musae_st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
}

static void expect_codes_error(const encodec *m, const char *path, const char *needle) {
    char err[512];
    int64_t *codes, b, f;
    int rc = mg_codes_read(path, m->cfg.num_quantizers, m->cfg.codebook_size, &codes, &b, &f, err, sizeof err);
    CHECK(rc == -1, "bad codes accepted (%s)", needle);
    if (rc == -1) {
        CHECK_STR_CONTAINS(err, needle);
        CHECK_STR_CONTAINS(err, path);
    } else {
        free(codes);
    }
}

static void test_codes_check(const encodec *m) {
    char path[512];
    snprintf(path, sizeof path, "%s/encodec_codes_bad.safetensors", test_tmp());
    int64_t c[2 * 4 * 3];
    for (int i = 0; i < 24; i++) c[i] = i * 37;
    const int64_t s3[3] = {2, 4, 3};
    write_codes(path, MUSAE_I64, 3, s3, c);
    char err[512];
    int64_t *codes = NULL, b, f;
    CHECK(mg_codes_read(path, m->cfg.num_quantizers, m->cfg.codebook_size, &codes, &b, &f, err, sizeof err) == 0 &&
              b == 2 && f == 3,
          "good codes rejected: %s", err);
    free(codes);

    c[17] = 2048;
    write_codes(path, MUSAE_I64, 3, s3, c);
    expect_codes_error(m, path, "codes[1, 1, 2] = 2048 is outside 0..2047");
    c[17] = -1;
    write_codes(path, MUSAE_I64, 3, s3, c);
    expect_codes_error(m, path, "= -1 is outside");
    c[17] = 5;
    const int64_t s3b[3] = {2, 3, 4};
    write_codes(path, MUSAE_I64, 3, s3b, c);
    expect_codes_error(m, path, "has 3 codebooks, the model has 4");
    const int64_t s2[2] = {4, 6};
    write_codes(path, MUSAE_I64, 2, s2, c);
    expect_codes_error(m, path, "expected [B, 4, F]");
    float fc[24] = {0};
    write_codes(path, MUSAE_F32, 3, s3, fc);
    expect_codes_error(m, path, "dtype F32");
    /* one rule for every verb (decode, forward, evaluate): the format is int64, int32 is refused */
    int32_t ic[24] = {0};
    write_codes(path, MUSAE_I32, 3, s3, ic);
    expect_codes_error(m, path, "tensor 'codes' has dtype I32, expected I64");
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "tokens", MUSAE_I64, 3, s3, c);
    CHECK(musae_st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
    expect_codes_error(m, path, "no tensor 'codes'");
}

/* Paths MusicGen's codec does not take (tools/reference/encodec_extra.py): the shortcut conv, two residual
 * layers with dilated convs, zero padding, 1 and 3 LSTM layers; one pass and small windows against HF. */
static void test_extra_configs(void) {
    static const char *const names[] = {"shortcut", "constant"};
    for (int i = 0; i < 2; i++) {
        char path[600], err[512];
        snprintf(path, sizeof path, "%s/golden/encodec_extra_%s.safetensors", test_fixtures(), names[i]);
        musae_st st;
        if (musae_st_open(&st, path, err, sizeof err)) {
            CHECK(0, "%s", err);
            continue;
        }
        musae_encodec_config cfg;
        const char *json = musae_st_meta(&st, "config");
        CHECK(json && musae_encodec_config_parse(&cfg, path, json, err, sizeof err) == 0, "%s: config: %s", names[i], err);
        encodec m;
        encodec_load_st(&m, &cfg, &st, "weights.", musae_ops_cpu());
        int rank;
        int64_t sa[8], sc[8], se[8], sd[8];
        float *x = musae_st_load_any(&st, "audio", MUSAE_F32, &rank, sa);
        int64_t *gc = musae_st_load_any(&st, "codes", MUSAE_I64, &rank, sc);
        float *ge = musae_st_load_any(&st, "embeddings", MUSAE_F32, &rank, se);
        float *gd = musae_st_load_any(&st, "decoded", MUSAE_F32, &rank, sd);
        const int64_t n = sa[2], F = sc[2];
        CHECK(m.n_q == 2 && m.hop == 8 && sc[1] == 2, "%s: n_q %d hop %d", names[i], m.n_q, m.hop);
        static const int chunks[] = {100000, 1, 3};
        for (int c = 0; c < 3; c++) {
            enc_out o = encode(&m, x, n, chunks[c], c ? 61 : n);
            int64_t bad = o.frames == F ? count_diff(o.codes, gc, 2 * F) : -1;
            double de = o.frames == F ? emb_diff(o.emb, ge, F, m.dim) : 1;
            CHECK(bad == 0 && de <= 1e-4, "%s chunk %d: %lld codes differ, embeddings max|d| %.3g", names[i],
                  chunks[c], (long long)bad, de);
            int64_t calls;
            float *y = decode_chunked(&m, gc, F, chunks[c], &calls);
            double dd = test_max_abs_diff(y, gd, (size_t)(F * m.hop));
            CHECK(dd <= 1e-4, "%s chunk %d: decoded max|d| %.3g", names[i], chunks[c], dd);
            printf("extra config %-8s chunk %6d: codes equal %s, embeddings max|d| %.2e, decoded max|d| %.2e\n",
                   names[i], chunks[c], bad ? "NO" : "yes", de, dd);
            free(y);
            enc_out_free(&o);
        }
        free(x), free(gc), free(ge), free(gd);
        encodec_free(&m);
        musae_st_close(&st);
    }
}

int main(void) {
    musae_log_set_level(MUSAE_LOG_WARN);
    char model_dir[512], gold[512];
    snprintf(model_dir, sizeof model_dir, "%s/tiny-musicgen", test_fixtures());
    snprintf(gold, sizeof gold, "%s/golden/encodec.safetensors", test_fixtures());
    st_open_or_die(&g_gold, gold); /* a committed golden: missing = failure */
    encodec m;
    encodec_load(&m, model_dir, musae_ops_cpu());
    CHECK(m.hop == 640 && m.n_q == 4 && m.codebook_size == 2048 && m.dim == 16, "tiny codec shape");
    test_signals(&m);
    test_resampled(&m);
    test_chunking(&m);
    test_legacy_names(&m, model_dir);
    test_codes_check(&m);
    test_extra_configs();
    encodec_free(&m);
    musae_st_close(&g_gold);
    TEST_END();
}
