/* musae encode / musae decode end to end on the tiny codec: a float WAV of HF's test clip encodes to HF's
 * codes and decodes to HF's audio through the verbs, a batch of codes gives one file per item, and every
 * bad input (file, folder, codes) ends with exit status 1 and one line naming the file and the field. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/log.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "test.h"

static char g_out[8192];

/* Runs `musae <args>` and returns its exit status; stdout+stderr in g_out. */
static int run(const char *args) {
    char cmd[4096], log[600];
    snprintf(log, sizeof log, "%s/encodec_cli.log", test_tmp());
    snprintf(cmd, sizeof cmd, "MUSAE_LOG=info %s %s > %s 2>&1", getenv("MUSAE_BIN") ? getenv("MUSAE_BIN") : MUSAE_BIN,
             args, log);
    int st = system(cmd);
    FILE *f = fopen(log, "rb");
    size_t n = f ? fread(g_out, 1, sizeof g_out - 1, f) : 0;
    g_out[n] = 0;
    if (f) fclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect_fail(const char *args, const char *needle) {
    int rc = run(args);
    CHECK(rc == 1, "musae %s: exit %d, expected 1\n%s", args, rc, g_out);
    CHECK_STR_CONTAINS(g_out, needle);
    CHECK(!strstr(g_out, "Assert") && !strstr(g_out, "failed:") && !strstr(g_out, "Sanitizer"),
          "musae %s: an internal check fired instead of an input error:\n%s", args, g_out);
}

static void *load(const char *file, const char *name, musae_dtype dt, int64_t *n) {
    char err[512];
    musae_st st;
    if (musae_st_open(&st, file, err, sizeof err)) {
        CHECK(0, "%s", err);
        return NULL;
    }
    int rank;
    int64_t shape[8];
    void *x = musae_st_load_any(&st, name, dt, &rank, shape);
    *n = 1;
    for (int i = 0; i < rank; i++) *n *= shape[i];
    musae_st_close(&st);
    return x;
}

static void write_codes(const char *path, int rank, const int64_t *shape, const int64_t *c) {
    char err[512];
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "codes", MUSAE_I64, rank, shape, c);
    CHECK(musae_st_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
}

int main(void) {
    musae_log_set_level(MUSAE_LOG_WARN);
    const char *tmp = test_tmp();
    char model[512], gold[512], wav[600], codes[600], out[600], args[4096], err[512];
    snprintf(model, sizeof model, "%s/tiny-musicgen", test_fixtures());
    snprintf(gold, sizeof gold, "%s/golden/encodec.safetensors", test_fixtures());

    CHECK(run("encode --help") == 0 && strstr(g_out, "usage: musae encode"), "encode --help\n%s", g_out);
    CHECK(run("decode --help") == 0 && strstr(g_out, "usage: musae decode"), "decode --help\n%s", g_out);

    /* the chord clip as a float WAV → HF's codes → HF's audio */
    int64_t n, nc, nd;
    float *x = load(gold, "audio.chord", MUSAE_F32, &n);
    int64_t *gc = load(gold, "codes.chord", MUSAE_I64, &nc);
    float *gd = load(gold, "decoded.chord", MUSAE_F32, &nd);
    snprintf(wav, sizeof wav, "%s/cli_chord.wav", tmp);
    musae_audio_writer *w = musae_audio_writer_open(wav, 32000, 1, MUSAE_AUDIO_FLOAT, err, sizeof err);
    musae_audio_write(w, x, n, err, sizeof err);
    musae_audio_writer_close(w, NULL, err, sizeof err);
    snprintf(codes, sizeof codes, "%s/cli_chord.safetensors", tmp);
    snprintf(args, sizeof args, "encode --model %s %s -o %s --chunk-frames 7", model, wav, codes);
    CHECK(run(args) == 0, "musae %s\n%s", args, g_out);
    int64_t mc;
    int64_t *c = load(codes, "codes", MUSAE_I64, &mc);
    CHECK(c && mc == nc && !memcmp(c, gc, (size_t)nc * sizeof(int64_t)), "CLI codes differ from HF");
    free(c);
    snprintf(out, sizeof out, "%s/cli_chord_out.wav", tmp);
    snprintf(args, sizeof args, "decode --model %s %s -o %s --float", model, codes, out);
    CHECK(run(args) == 0, "musae %s\n%s", args, g_out);
    int64_t m;
    float *y = musae_audio_load(out, 32000, 0, 0, &m, err, sizeof err);
    CHECK(y && m == nd && test_max_abs_diff(y, gd, (size_t)nd) <= 1e-4, "CLI audio: %lld samples, max|d| %.3g",
          (long long)m, y && m == nd ? test_max_abs_diff(y, gd, (size_t)nd) : -1.0);
    free(y);
    /* --start / --duration select the span */
    snprintf(args, sizeof args, "encode --model %s %s -o %s --start 0.5 --duration 1", model, wav, codes);
    CHECK(run(args) == 0, "musae %s\n%s", args, g_out);
    c = load(codes, "codes", MUSAE_I64, &mc);
    CHECK(c && mc == 4 * 50, "--start 0.5 --duration 1: %lld codes", (long long)mc);
    free(c);

    /* a batch of two: out_0.flac and out_1.flac */
    int64_t two[2 * 4 * 5];
    for (int i = 0; i < 40; i++) two[i] = (i * 211) % 2048;
    const int64_t s2[3] = {2, 4, 5};
    snprintf(codes, sizeof codes, "%s/cli_two.safetensors", tmp);
    write_codes(codes, 3, s2, two);
    snprintf(out, sizeof out, "%s/cli_two.flac", tmp);
    snprintf(args, sizeof args, "decode --model %s %s -o %s", model, codes, out);
    CHECK(run(args) == 0, "musae %s\n%s", args, g_out);
    for (int b = 0; b < 2; b++) {
        snprintf(out, sizeof out, "%s/cli_two_%d.flac", tmp, b);
        y = musae_audio_load(out, 32000, 0, 0, &m, err, sizeof err);
        CHECK(y && m == 3200, "%s: %s", out, y ? "wrong length" : err);
        free(y);
    }

    /* musae generate -o: HF's greedy unconditional generation (2 items, 20 frames), decoded, is HF's audio */
    {
        char glm[600], gen[600];
        snprintf(glm, sizeof glm, "%s/golden/lm_generate.safetensors", test_fixtures());
        int64_t na;
        float *ha = load(glm, "uncond.mnt23.audio", MUSAE_F32, &na); /* [2, 1, 12800] */
        snprintf(gen, sizeof gen, "%s/cli_gen.wav", tmp);
        snprintf(args, sizeof args, "generate --model %s --frames 20 --batch 2 --greedy -o %s", model, gen);
        CHECK(run(args) == 0, "musae %s\n%s", args, g_out);
        CHECK_STR_CONTAINS(g_out, "were beyond full scale (peak 1.040 = +0.3 dBFS) and were clipped");
        for (int b = 0; b < 2 && ha; b++) {
            snprintf(out, sizeof out, "%s/cli_gen_%d.wav", tmp, b);
            y = musae_audio_load(out, 32000, 0, 0, &m, err, sizeof err);
            /* 16-bit WAV: HF's float audio clipped to full scale (its peak is 1.04), within 1.5 steps */
            float want[12800];
            for (int i = 0; i < 12800; i++) want[i] = fminf(1.0f, fmaxf(-1.0f, ha[b * 12800 + i]));
            double d = y && m == 12800 ? test_max_abs_diff(y, want, 12800) : 1.0;
            CHECK(d <= 1.5 / 32767, "generate -o item %d: %lld samples, max|d| %.3g vs HF", b, (long long)m, d);
            free(y);
        }
        free(ha);
    }

    /* bad input */
    snprintf(args, sizeof args, "encode --model %s %s/nope.wav -o %s/x.safetensors", model, tmp, tmp);
    expect_fail(args, "nope.wav: cannot open");
    snprintf(args, sizeof args, "encode --model %s %s -o %s/x.safetensors", model, tmp, tmp);
    expect_fail(args, "is a directory");
    snprintf(args, sizeof args, "encode --model %s/no_model %s -o %s/x.safetensors", tmp, wav, tmp);
    expect_fail(args, "config.json: cannot read");
    snprintf(args, sizeof args, "encode --model %s %s -o %s/x.safetensors --start 9", model, wav, tmp);
    expect_fail(args, "is at or past the end");
    snprintf(args, sizeof args, "encode --model %s %s", model, wav);
    expect_fail(args, "are required");
    snprintf(args, sizeof args, "encode --model %s %s -o %s/x.safetensors --chunk-frames 0", model, wav, tmp);
    expect_fail(args, "--chunk-frames: expected an integer");
    snprintf(args, sizeof args, "decode --model %s %s -o %s/x.wav", model, wav, tmp);
    expect_fail(args, "cli_chord.wav");
    int64_t bad[4 * 3];
    for (int i = 0; i < 12; i++) bad[i] = i;
    bad[7] = 4096;
    const int64_t s3[3] = {1, 4, 3}, s3k[3] = {1, 3, 4};
    snprintf(codes, sizeof codes, "%s/cli_bad.safetensors", tmp);
    write_codes(codes, 3, s3, bad);
    snprintf(args, sizeof args, "decode --model %s %s -o %s/x.wav", model, codes, tmp);
    expect_fail(args, "cli_bad.safetensors: codes[0, 2, 1] = 4096 is outside 0..2047");
    write_codes(codes, 3, s3k, bad);
    expect_fail(args, "has 3 codebooks, the model has 4");
    snprintf(args, sizeof args, "decode --model %s %s -o %s/x.flac --float", model, codes, tmp);
    expect_fail(args, "exclude each other");
    snprintf(out, sizeof out, "%s/x.wav", tmp);
    CHECK(access(out, F_OK) != 0, "a failed decode left %s", out);

    free(x), free(gc), free(gd);
    TEST_END();
}
