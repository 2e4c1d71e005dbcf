/* host/io/audio: write/read round trips (WAV 16-bit, WAV float, FLAC; OGG/Vorbis and MP3 through
 * libsndfile), downmix, start/duration, exact resampled lengths (python-soxr's), streaming reads equal to
 * whole reads, clipping counted, and a clear one-line error naming the file for every bad input. */
#include <math.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/log.h"
#include "host/io/audio.h"
#include "test.h"

static char g_path[600];
static const char *tmp_path(const char *name) {
    snprintf(g_path, sizeof g_path, "%s/audio_%s", test_tmp(), name);
    return g_path;
}

static void write_file(const char *path, int rate, int ch, musae_audio_format fmt, const float *x, int64_t frames,
                       musae_audio_write_stats *st) {
    char err[512];
    musae_audio_writer *w = musae_audio_writer_open(path, rate, ch, fmt, err, sizeof err);
    CHECK(w != NULL, "%s", err);
    if (!w) return;
    CHECK(musae_audio_write(w, x, frames, err, sizeof err) == 0, "%s", err);
    CHECK(musae_audio_writer_close(w, st, err, sizeof err) == 0, "%s", err);
}

static void expect_open_error(const char *path, double start, double dur, const char *needle) {
    char err[512] = "";
    musae_audio_reader *r = musae_audio_open(path, 32000, start, dur, err, sizeof err);
    if (r) {
        /* some damage only shows while reading */
        float buf[4096];
        int64_t n;
        while ((n = musae_audio_read(r, buf, 4096, err, sizeof err)) > 0) {
        }
        musae_audio_close(r);
        CHECK(n < 0, "%s: read without error (expected '%s')", path, needle);
        if (n >= 0) return;
    }
    CHECK_STR_CONTAINS(err, needle);
    CHECK_STR_CONTAINS(err, path);
}

static void test_roundtrip(void) {
    const int64_t n = 32000 + 77;
    float *x = musae_xmalloc((size_t)n * sizeof(float)), *st = musae_xmalloc((size_t)(2 * n) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        x[i] = 0.6f * sinf(0.013f * (float)i) + 0.3f * sinf(0.171f * (float)i);
        st[2 * i] = x[i];
        st[2 * i + 1] = 0.25f * cosf(0.05f * (float)i);
    }
    char err[512];
    int64_t m;
    musae_audio_write_stats s;
    /* float WAV: exact */
    write_file(tmp_path("f32.wav"), 32000, 1, MUSAE_AUDIO_FLOAT, x, n, &s);
    float *y = musae_audio_load(g_path, 32000, 0, 0, &m, err, sizeof err);
    CHECK(y && m == n && test_max_abs_diff(x, y, (size_t)n) == 0, "float WAV round trip (%s)", err);
    CHECK(s.frames == n && s.clipped == 0 && fabsf(s.peak - 0.9f) < 0.01f, "float stats %lld %lld %g",
          (long long)s.frames, (long long)s.clipped, s.peak);
    free(y);
    /* 16-bit WAV and FLAC: within one quantization step */
    musae_audio_format fmts[2] = {MUSAE_AUDIO_PCM16, MUSAE_AUDIO_FLAC};
    const char *names[2] = {"pcm16.wav", "pcm16.flac"};
    for (int f = 0; f < 2; f++) {
        write_file(tmp_path(names[f]), 32000, 1, fmts[f], x, n, &s);
        y = musae_audio_load(g_path, 32000, 0, 0, &m, err, sizeof err);
        double d = y && m == n ? test_max_abs_diff(x, y, (size_t)n) : 1;
        CHECK(d <= 1.0 / 32767, "%s round trip max|d| %.3g (%s)", names[f], d, err);
        free(y);
    }
    /* stereo: the mean of the channels, in float32 */
    write_file(tmp_path("stereo.wav"), 32000, 2, MUSAE_AUDIO_FLOAT, st, n, NULL);
    y = musae_audio_load(g_path, 32000, 0, 0, &m, err, sizeof err);
    int ok = y && m == n;
    for (int64_t i = 0; ok && i < n; i++) ok = y[i] == (st[2 * i] + st[2 * i + 1]) / 2.0f;
    CHECK(ok, "stereo downmix");
    free(y);
    /* start / duration at the file's rate */
    write_file(tmp_path("f32.wav"), 32000, 1, MUSAE_AUDIO_FLOAT, x, n, NULL);
    y = musae_audio_load(g_path, 32000, 0.5, 0.25, &m, err, sizeof err);
    CHECK(y && m == 8000 && !memcmp(y, x + 16000, 8000 * sizeof(float)), "start 0.5 duration 0.25: %lld samples", (long long)m);
    free(y);
    y = musae_audio_load(g_path, 32000, 0.9, 5.0, &m, err, sizeof err);
    CHECK(y && m == n - 28800, "duration past the end: %lld samples", (long long)m);
    free(y);
    free(x);
    free(st);
}

/* Resampled lengths are floor(n·32000/sr + 0.5), python-soxr's count (checked there for these rates), and a
 * read in small pieces gives the samples of a read in one piece. */
static void test_resampling(void) {
    static const int rates[] = {44100, 48000, 16000, 22050, 8000};
    static const int64_t lens[] = {1, 7, 1000, 12345, 88213};
    char err[512];
    for (int r = 0; r < 5; r++)
        for (int l = 0; l < 5; l++) {
            int64_t n = lens[l];
            float *x = musae_xmalloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++) x[i] = 0.5f * sinf(0.01f * (float)i * (float)(r + 1));
            write_file(tmp_path("rs.wav"), rates[r], 1, MUSAE_AUDIO_FLOAT, x, n, NULL);
            int64_t want = musae_resampled_length(n, rates[r], 32000), m;
            CHECK(want == (int64_t)floor((double)n * 32000.0 / rates[r] + 0.5), "length rule");
            float *y = musae_audio_load(g_path, 32000, 0, 0, &m, err, sizeof err);
            CHECK(y && m == want, "%d Hz, %lld samples: read %lld, expected %lld", rates[r], (long long)n,
                  (long long)m, (long long)want);
            musae_audio_reader *rd = musae_audio_open(g_path, 32000, 0, 0, err, sizeof err);
            float *z = musae_xmalloc((size_t)(want + 1) * sizeof(float));
            int64_t got = 0, k;
            while ((k = musae_audio_read(rd, z + got, 13, err, sizeof err)) > 0) got += k;
            musae_audio_close(rd);
            CHECK(got == want && y && !memcmp(y, z, (size_t)want * sizeof(float)), "%d Hz, %lld: piecewise read differs",
                  rates[r], (long long)n);
            free(x), free(y), free(z);
        }
}

static void test_clipping(void) {
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = 1.5f * sinf(0.02f * (float)i);
    musae_audio_write_stats s;
    write_file(tmp_path("clip.wav"), 32000, 1, MUSAE_AUDIO_PCM16, x, 1000, &s);
    int64_t over = 0;
    for (int i = 0; i < 1000; i++) over += fabsf(x[i]) > 1.0f;
    CHECK(s.clipped == over && over > 0 && fabsf(s.peak - 1.5f) < 1e-3f, "clipped %lld of %lld, peak %g",
          (long long)s.clipped, (long long)over, s.peak);
    char msg[256], err[512];
    musae_audio_clip_message(&s, msg, sizeof msg);
    CHECK_STR_CONTAINS(msg, "clipped");
    int64_t m;
    float *y = musae_audio_load(g_path, 32000, 0, 0, &m, err, sizeof err);
    float mx = 0;
    for (int64_t i = 0; y && i < m; i++) mx = fmaxf(mx, fabsf(y[i]));
    CHECK(y && mx <= 1.0f && mx > 0.999f, "clipped file peak %g (no wrap-around)", mx);
    free(y);
    write_file(tmp_path("noclip.wav"), 32000, 1, MUSAE_AUDIO_FLOAT, x, 1000, &s);
    musae_audio_clip_message(&s, msg, sizeof msg);
    CHECK(s.clipped == 0 && msg[0] == 0, "float WAV must not clip");
    /* a NaN is refused and leaves no file */
    x[10] = NAN;
    musae_audio_writer *w = musae_audio_writer_open(tmp_path("nan_out.wav"), 32000, 1, MUSAE_AUDIO_PCM16, err, sizeof err);
    CHECK(musae_audio_write(w, x, 1000, err, sizeof err) == -1, "NaN written");
    CHECK_STR_CONTAINS(err, "NaN");
    musae_audio_writer_abort(w);
    CHECK(access(g_path, F_OK) != 0, "aborted writer left %s", g_path);
}

/* Lossy formats through libsndfile: they decode to about the right length and waveform. */
static void test_lossy(void) {
    const int64_t n = 44100;
    float *x = musae_xmalloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * (float)i / 44100.0f);
    struct {
        const char *name;
        int format;
    } fm[2] = {{"a.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS}, {"a.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III}};
    for (int f = 0; f < 2; f++) {
        SF_INFO si = {.samplerate = 44100, .channels = 1, .format = fm[f].format};
        SNDFILE *sf = sf_open(tmp_path(fm[f].name), SFM_WRITE, &si);
        /* docs/CAPTURE.md promises .ogg and .mp3: a libsndfile without them (< 1.1 for MPEG) fails here */
        CHECK(sf != NULL, "%s: this libsndfile cannot write it (%s), so musae cannot read it", fm[f].name,
              sf_strerror(NULL));
        if (!sf) continue;
        sf_writef_float(sf, x, n);
        sf_close(sf);
        char err[512];
        int64_t m;
        float *y = musae_audio_load(g_path, 32000, 0, 0, &m, err, sizeof err);
        CHECK(y != NULL, "%s", err);
        if (!y) continue;
        /* encoder delay/padding may add a little; the tone's RMS survives */
        double rms = 0;
        for (int64_t i = 0; i < m; i++) rms += (double)y[i] * y[i];
        rms = sqrt(rms / (double)m);
        CHECK(m >= 31000 && m <= 34000 && fabs(rms - 0.3536) < 0.05, "%s: %lld samples, rms %.3f", fm[f].name,
              (long long)m, rms);
        printf("%s: decoded %lld samples at 32 kHz, rms %.3f (0.354 written)\n", fm[f].name, (long long)m, rms);
        free(y);
    }
    free(x);
}

static void test_bad_input(void) {
    char err[512];
    expect_open_error(tmp_path("does_not_exist.wav"), 0, 0, "cannot open");
    expect_open_error(test_tmp(), 0, 0, "is a directory");
    FILE *f = fopen(tmp_path("empty.wav"), "wb");
    fclose(f);
    expect_open_error(g_path, 0, 0, "empty");
    f = fopen(tmp_path("garbage.wav"), "wb");
    for (int i = 0; i < 4000; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    expect_open_error(g_path, 0, 0, "cannot read as audio");
    /* a valid header with no samples */
    write_file(tmp_path("nosamples.wav"), 32000, 1, MUSAE_AUDIO_PCM16, NULL, 0, NULL);
    expect_open_error(g_path, 0, 0, "no audio samples");
    /* NaN / inf inside a float WAV: named with their time */
    float x[64000];
    for (int i = 0; i < 64000; i++) x[i] = 0.1f;
    x[48000] = NAN;
    SF_INFO si = {.samplerate = 32000, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(tmp_path("nan.wav"), SFM_WRITE, &si);
    sf_writef_float(sf, x, 32000);
    sf_close(sf);
    expect_open_error(g_path, 0, 0, "sample at 0.750000 s (frame 24000, channel 0) is NaN");
    x[48000] = INFINITY;
    sf = sf_open(tmp_path("inf.wav"), SFM_WRITE, &si);
    sf_writef_float(sf, x, 32000);
    sf_close(sf);
    expect_open_error(g_path, 0, 0, "is infinite");
    /* a WAV cut short: its header promises more data than the file holds */
    for (int i = 0; i < 64000; i++) x[i] = 0.1f * sinf(0.01f * (float)i);
    write_file(tmp_path("full.wav"), 32000, 1, MUSAE_AUDIO_PCM16, x, 64000, NULL);
    struct stat sb;
    stat(g_path, &sb);
    CHECK(truncate(g_path, sb.st_size / 2) == 0, "truncate");
    expect_open_error(g_path, 0, 0, "truncated");
    /* a header cut in the middle */
    write_file(tmp_path("head.wav"), 32000, 1, MUSAE_AUDIO_PCM16, x, 64000, NULL);
    CHECK(truncate(g_path, 30) == 0, "truncate");
    expect_open_error(g_path, 0, 0, "head.wav");
    /* start past the end */
    write_file(tmp_path("short.wav"), 32000, 1, MUSAE_AUDIO_PCM16, x, 32000, NULL);
    expect_open_error(g_path, 1.5, 0, "start 1.500 s is at or past the end of the audio (1.000 s)");
    CHECK(musae_audio_open(g_path, 32000, -1, 0, err, sizeof err) == NULL, "negative start accepted");
    /* output to a directory */
    CHECK(musae_audio_writer_open(test_tmp(), 32000, 1, MUSAE_AUDIO_PCM16, err, sizeof err) == NULL,
          "writer opened a directory");
    CHECK_STR_CONTAINS(err, "is a directory");
}

int main(void) {
    musae_log_set_level(MUSAE_LOG_WARN);
    test_roundtrip();
    test_resampling();
    test_clipping();
    test_lossy();
    test_bad_input();
    TEST_END();
}
