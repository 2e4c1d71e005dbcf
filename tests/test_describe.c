/* musae describe (issue describe): descriptors of clips synthesized here with known answers, bad input, the
 * DESCRIPTORS.h5 contract, and --acts describing exactly a store's clips in its order.
 *
 * Tolerances come from the issue and from the analysis grids (docs/DESCRIBE.md): tempo within 2 % (aubio's
 * beat period is a whole number of 4 ms hops: 150 BPM = 100 hops, so one hop is 1 %); LUFS within 0.3 dB of
 * the analytic value of a 997 Hz sine (BS.1770 K-weighting is 0 dB there by design, up to ±0.05 dB); the
 * centroid of a sine within 2 % (the Hann main lobe is symmetric around the tone; the 2 % covers the
 * leakage tail toward Nyquist); f0 within 1 % (YIN's parabolic interpolation). */
#include <ebur128.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "eval/describe.h"
#include "eval/dsp.h"
#include "host/core/check.h"
#include "host/io/audio.h"
#include "host/io/descriptors_io.h"
#include "host/io/store.h"
#include "test.h"

#include "cli.h"

#define SR DESCRIBE_RATE

/* ---- synthesis ------------------------------------------------------------------------------------------------ */

static float *zeros(int64_t n) { return musae_xcalloc((size_t)n, sizeof(float)); }

/* 10 ms 1 kHz clicks with a fast decay every 60/bpm s, digital silence between them */
static float *click_track(double bpm, double seconds, int64_t *n) {
    *n = (int64_t)(seconds * SR);
    float *x = zeros(*n);
    for (double t = 0; t < seconds; t += 60.0 / bpm) {
        const int64_t a = llround(t * SR);
        for (int64_t i = 0; i < 320 && a + i < *n; i++) x[a + i] += (float)(0.8 * exp(-i / 60.0) * sin(2 * M_PI * 1000 * i / SR));
    }
    return x;
}

static double midi_hz(int m) { return 440.0 * pow(2.0, (m - 69) / 12.0); }

/* a note with 4 harmonics (amplitudes 1, 1/2, 1/4, 1/8), 10 ms attack and 50 ms release, added at t0 */
static void add_note(float *x, int64_t n, double t0, double dur, int midi, float amp) {
    const double f = midi_hz(midi);
    const int64_t a = llround(t0 * SR), len = llround(dur * SR);
    for (int64_t i = 0; i < len && a + i < n; i++) {
        const double t = (double)i / SR, env = fmin(1.0, fmin(t / 0.01, (dur - t) / 0.05));
        double v = 0;
        for (int h = 0; h < 4; h++) v += pow(0.5, h) * sin(2 * M_PI * f * (h + 1) * t);
        x[a + i] += (float)(amp * env * v);
    }
}

/* a scale played three times, half a second a note */
static float *scale(const int *notes, int k, int64_t *n) {
    *n = 10 * SR;
    float *x = zeros(*n);
    for (int i = 0; i < 20; i++) add_note(x, *n, i * 0.5, 0.5, notes[i % k], 0.3f);
    return x;
}

/* chords of three notes, 2.5 s each */
static float *progression(const int (*chords)[3], int k, int64_t *n) {
    *n = 10 * SR;
    float *x = zeros(*n);
    for (int c = 0; c < 4; c++)
        for (int j = 0; j < 3; j++) add_note(x, *n, c * 2.5, 2.5, chords[c % k][j], 0.2f);
    return x;
}

static float *sine(double hz, double amp, double seconds, int64_t *n) {
    *n = (int64_t)(seconds * SR);
    float *x = zeros(*n);
    for (int64_t i = 0; i < *n; i++) x[i] = (float)(amp * sin(2 * M_PI * hz * i / SR));
    return x;
}

static float *noise(double amp, double seconds, int64_t *n) {
    *n = (int64_t)(seconds * SR);
    float *x = zeros(*n);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (int64_t i = 0; i < *n; i++) { /* xorshift, uniform in [-amp, amp] */
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)(amp * (2.0 * (double)(s >> 11) / 9007199254740992.0 - 1.0));
    }
    return x;
}

static musae_desc g_win[4096];

static musae_desc describe(const float *x, int64_t n) {
    musae_desc c;
    describe_clip(x, n, SR, &c, g_win);
    return c;
}

/* no NaN anywhere except tempo_bpm and f0_median_hz, whose NaN means "none" */
static int nan_only_where_allowed(const musae_desc *d) {
#define F(name, unit)                                                                                      \
    if (isnan(d->name) && strcmp(#name, "tempo_bpm") && strcmp(#name, "f0_median_hz")) return 0;
    MUSAE_DESC_F32_FIELDS(F)
#undef F
    for (int i = 0; i < 12; i++)
        if (!isfinite(d->chroma[i])) return 0;
    return 1;
}

/* ---- known answers ---------------------------------------------------------------------------------------------- */

static void test_tempo(void) {
    static const double bpms[] = {90, 100, 120, 128, 140, 150};
    int exact = 0, octave = 0, wrong = 0;
    for (size_t i = 0; i < sizeof bpms / sizeof bpms[0]; i++) {
        int64_t n;
        float *x = click_track(bpms[i], 10, &n);
        const musae_desc d = describe(x, n);
        const double t = d.tempo_bpm, b = bpms[i];
        const char *kind = "wrong";
        if (fabs(t / b - 1) <= 0.02) exact++, kind = "within 2 %";
        else if (fabs(t / (2 * b) - 1) <= 0.02 || fabs(t / (0.5 * b) - 1) <= 0.02) octave++, kind = "octave error";
        else wrong++;
        printf("tempo: %.0f BPM click track -> %.2f BPM (%s), confidence %.2f, onsets %.2f/s\n", b, t, kind,
               d.beat_confidence, d.onset_rate_hz);
        CHECK(d.beat_confidence > 0, "%.0f BPM: beat confidence %g", b, d.beat_confidence);
        /* windows read aubio's running period, a whole number of 8 ms hops: within 2 % + one hop's worth */
        int win_ok = 1;
        for (int w = 0; w < 10; w++) win_ok &= fabs(g_win[w].tempo_bpm / b - 1) <= 0.02 + 0.008 * b / 60;
        CHECK(win_ok, "%.0f BPM: a window tempo is off (window 0: %g, window 9: %g)", b, g_win[0].tempo_bpm, g_win[9].tempo_bpm);
        CHECK(fabs(d.onset_rate_hz - b / 60) <= 0.1 + 1e-6, "%.0f BPM: %g onsets/s, expected %g", b, d.onset_rate_hz, b / 60);
        free(x);
    }
    printf("tempo: %d within 2 %%, %d octave errors, %d wrong of %d click tracks\n", exact, octave, wrong,
           exact + octave + wrong);
    CHECK(wrong == 0, "%d click tracks got a tempo neither within 2 %% nor an octave off", wrong);
    CHECK(octave == 0, "%d octave errors on clean click tracks", octave);

    /* no onsets: a steady tone and silence have no tempo (NaN), not 0 */
    int64_t n;
    float *x = sine(440, 0.5, 10, &n);
    musae_desc d = describe(x, n);
    CHECK(isnan(d.tempo_bpm) && d.beat_confidence == 0, "steady sine: tempo %g, confidence %g", d.tempo_bpm, d.beat_confidence);
    free(x);
    x = zeros(10 * SR);
    d = describe(x, 10 * SR);
    CHECK(isnan(d.tempo_bpm) && d.onset_rate_hz == 0, "silence: tempo %g, onsets %g", d.tempo_bpm, d.onset_rate_hz);
    free(x);
}

static const char *k_names[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};

static void check_key(const char *what, const float *x, int64_t n, int key, int mode) {
    const musae_desc d = describe(x, n);
    printf("key: %-28s -> %s %s (r = %.3f), chords %d %d %d\n", what, d.key >= 0 ? k_names[d.key] : "none",
           d.mode == 0 ? "major" : d.mode == 1 ? "minor" : "-", d.key_confidence, d.chords[0], d.chords[1], d.chords[2]);
    CHECK(d.key == key && d.mode == mode, "%s: got key %d mode %d, expected %d %d", what, d.key, d.mode, key, mode);
    CHECK(d.key_confidence > 0.6f, "%s: key confidence %g", what, d.key_confidence);
}

static void test_key_and_chords(void) {
    int64_t n;
    static const int c_major[] = {60, 62, 64, 65, 67, 69, 71, 72};
    static const int g_major[] = {67, 69, 71, 72, 74, 76, 78, 79};
    static const int a_minor[] = {57, 59, 60, 62, 64, 65, 68, 69}; /* harmonic: G# */
    static const int d_minor[] = {62, 64, 65, 67, 69, 70, 73, 74};
    float *x = scale(c_major, 8, &n);
    check_key("C major scale", x, n, 0, 0), free(x);
    x = scale(g_major, 8, &n);
    check_key("G major scale", x, n, 7, 0), free(x);
    x = scale(a_minor, 8, &n);
    check_key("A harmonic minor scale", x, n, 9, 1), free(x);
    x = scale(d_minor, 8, &n);
    check_key("D harmonic minor scale", x, n, 2, 1), free(x);
    static const int f_major_cad[4][3] = {{53, 57, 60}, {58, 62, 65}, {60, 64, 67}, {53, 57, 60}}; /* F Bb C F */
    x = progression(f_major_cad, 4, &n);
    check_key("F major I-IV-V-I triads", x, n, 5, 0);
    musae_desc d = describe(x, n);
    CHECK(d.chords[0] == 5, "F major cadence: most frequent chord %d, expected 5 (F major)", d.chords[0]);
    int has_bb = 0, has_c = 0;
    for (int i = 0; i < 3; i++) has_bb |= d.chords[i] == 10, has_c |= d.chords[i] == 0;
    CHECK(has_bb && has_c, "F major cadence: chords %d %d %d lack Bb (10) or C (0)", d.chords[0], d.chords[1], d.chords[2]);
    free(x);
    static const int e_minor_cad[4][3] = {{52, 55, 59}, {57, 60, 64}, {59, 63, 66}, {52, 55, 59}}; /* Em Am B Em */
    x = progression(e_minor_cad, 4, &n);
    check_key("E minor i-iv-V-i triads", x, n, 4, 1);
    d = describe(x, n);
    CHECK(d.chords[0] == 12 + 4, "E minor cadence: most frequent chord %d, expected 16 (E minor)", d.chords[0]);
    /* the first window holds only E minor */
    CHECK(g_win[0].chords[0] == 16 && g_win[0].chords[1] == -1, "E minor cadence window 0: chords %d %d", g_win[0].chords[0],
          g_win[0].chords[1]);
    free(x);
    /* silence: no key, no chord */
    x = zeros(SR * 3);
    d = describe(x, SR * 3);
    CHECK(d.key == -1 && d.mode == -1 && d.key_confidence == 0 && d.chords[0] == -1, "silence: key %d mode %d chord %d",
          d.key, d.mode, d.chords[0]);
    free(x);
}

static void test_loudness_and_spectrum(void) {
    int64_t n;
    static const double amps[] = {0.5, 0.1, 0.02};
    for (int i = 0; i < 3; i++) {
        float *x = sine(997, amps[i], 10, &n);
        const musae_desc d = describe(x, n);
        /* BS.1770: one channel, -0.691 + 10 log10(K-weighted mean square); K(997 Hz) ~ +0.691 dB, so a sine of
         * amplitude A reads 20 log10(A) - 3.01 */
        const double want = 20 * log10(amps[i]) - 10 * log10(2.0);
        printf("loudness: 997 Hz sine, amplitude %.2f -> %.3f LUFS (analytic %.3f), true peak %.2f dBTP, window 3 "
               "%.3f LUFS\n", amps[i], d.lufs, want, d.true_peak_dbtp, g_win[3].lufs);
        CHECK(fabs(d.lufs - want) <= 0.3, "LUFS %g, expected %g", d.lufs, want);
        CHECK(fabs(g_win[3].lufs - want) <= 0.3, "window LUFS %g, expected %g", g_win[3].lufs, want);
        CHECK(fabs(d.true_peak_dbtp - 20 * log10(amps[i])) <= 0.2, "true peak %g, expected %g", d.true_peak_dbtp,
              20 * log10(amps[i]));
        CHECK(fabs(d.rms_db - want) <= 0.05, "rms %g dB, expected %g", d.rms_db, want); /* 20 log10(A / sqrt 2) */
        CHECK(d.loudness_range_lu < 0.5f, "a steady sine has a loudness range of %g LU", d.loudness_range_lu);
        free(x);
    }
    static const double freqs[] = {440, 1000, 3000};
    for (int i = 0; i < 3; i++) {
        float *x = sine(freqs[i], 0.5, 10, &n);
        const musae_desc d = describe(x, n);
        printf("spectrum: %.0f Hz sine -> centroid %.1f Hz, rolloff %.1f Hz, bandwidth %.1f Hz, flatness %.2e, zcr "
               "%.5f, f0 %.2f Hz (voiced %.2f), percussive %.3f\n", freqs[i], d.spectral_centroid_hz,
               d.spectral_rolloff_hz, d.spectral_bandwidth_hz, d.spectral_flatness, d.zcr, d.f0_median_hz,
               d.voiced_fraction, d.percussive_ratio);
        CHECK(fabs(d.spectral_centroid_hz / freqs[i] - 1) <= 0.02, "centroid %g for a %g Hz sine", d.spectral_centroid_hz, freqs[i]);
        CHECK(fabs(d.spectral_rolloff_hz - freqs[i]) <= 2.0 * SR / 4096, "rolloff %g for a %g Hz sine", d.spectral_rolloff_hz, freqs[i]);
        CHECK(d.spectral_flatness < 0.01f, "flatness %g of a sine", d.spectral_flatness);
        CHECK(fabs(d.zcr / (2 * freqs[i] / SR) - 1) <= 0.01, "zcr %g for a %g Hz sine", d.zcr, freqs[i]);
        CHECK(fabs(d.f0_median_hz / freqs[i] - 1) <= 0.01 && d.voiced_fraction > 0.9f, "f0 %g (voiced %g) for a %g Hz sine",
              d.f0_median_hz, d.voiced_fraction, freqs[i]);
        CHECK(d.percussive_ratio < 0.1f, "a steady sine is %g percussive", d.percussive_ratio);
        CHECK(nan_only_where_allowed(&d), "NaN in a field that has no NaN convention");
        free(x);
    }
    float *x = noise(0.3, 10, &n);
    musae_desc d = describe(x, n);
    printf("spectrum: white noise -> flatness %.3f, centroid %.0f Hz, voiced %.3f, percussive %.3f\n", d.spectral_flatness,
           d.spectral_centroid_hz, d.voiced_fraction, d.percussive_ratio);
    CHECK(d.spectral_flatness > 0.3f, "white noise flatness %g", d.spectral_flatness);
    CHECK(fabs(d.spectral_centroid_hz / (SR / 4.0) - 1) <= 0.05, "white noise centroid %g, expected ~%g", d.spectral_centroid_hz, SR / 4.0);
    CHECK(d.voiced_fraction < 0.1f && isnan(d.f0_median_hz) == (d.voiced_fraction == 0), "white noise voiced %g", d.voiced_fraction);
    free(x);
    x = click_track(120, 10, &n);
    d = describe(x, n);
    CHECK(d.percussive_ratio > 0.8f, "a click track is only %g percussive", d.percussive_ratio);
    free(x);
    /* silence: the floors, no NaN outside tempo/f0 */
    x = zeros(10 * SR);
    d = describe(x, 10 * SR);
    CHECK(d.lufs == -70 && d.rms_db == -120 && d.true_peak_dbtp == -120 && d.spectral_centroid_hz == 0 &&
              d.spectral_flatness == 1 && d.voiced_fraction == 0 && isnan(d.f0_median_hz) && d.percussive_ratio == 0,
          "silence: lufs %g rms %g tp %g centroid %g flatness %g", d.lufs, d.rms_db, d.true_peak_dbtp,
          d.spectral_centroid_hz, d.spectral_flatness);
    CHECK(nan_only_where_allowed(&d) && nan_only_where_allowed(&g_win[9]), "silence: a NaN outside tempo/f0");
    free(x);
}

static void test_windows(void) {
    CHECK(describe_n_windows(10 * SR, SR) == 10, "10 s -> %lld windows", (long long)describe_n_windows(10 * SR, SR));
    CHECK(describe_n_windows(10 * SR + SR * 4 / 10, SR) == 10, "10.4 s");
    CHECK(describe_n_windows(10 * SR + SR * 6 / 10, SR) == 11, "10.6 s");
    CHECK(describe_n_windows(SR / 3, SR) == 1 && describe_n_windows(1, SR) == 1, "short clips are one window");
    /* a clip of one sample is described without a crash or a stray NaN */
    float one = 0.5f;
    const musae_desc d = describe(&one, 1);
    CHECK(nan_only_where_allowed(&d) && nan_only_where_allowed(&g_win[0]), "one sample: a NaN outside tempo/f0");
    /* windows see their own part: a sine that changes frequency at 5 s */
    int64_t n = 10 * SR;
    float *x = zeros(n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.5 * sin(2 * M_PI * (i < 5 * SR ? 500.0 : 2000.0) * i / SR));
    describe(x, n);
    CHECK(fabs(g_win[1].spectral_centroid_hz / 500 - 1) < 0.02 && fabs(g_win[8].spectral_centroid_hz / 2000 - 1) < 0.02,
          "window centroids %g, %g (500, 2000 expected)", g_win[1].spectral_centroid_hz, g_win[8].spectral_centroid_hz);
    CHECK(fabs(g_win[2].f0_median_hz / 500 - 1) < 0.01 && fabs(g_win[7].f0_median_hz / 2000 - 1) < 0.01,
          "window f0 %g, %g (500, 2000 expected)", g_win[2].f0_median_hz, g_win[7].f0_median_hz);
    free(x);
}

/* ---- files and the command line --------------------------------------------------------------------------------- */

static void write_wav(const char *rel, const float *x, int64_t n, int rate) {
    char err[512];
    musae_audio_writer *w = musae_audio_writer_open(at(rel), rate, 1, MUSAE_AUDIO_FLOAT, err, sizeof err);
    if (!w || musae_audio_write(w, x, n, err, sizeof err) || musae_audio_writer_close(w, NULL, err, sizeof err))
        musae_fail("test setup: %s: %s", rel, err);
}

/* a 32-bit float WAV written by hand, so it may hold a NaN (musae's writer refuses them) */
static void write_raw_f32_wav(const char *rel, const float *x, uint32_t n, uint32_t rate) {
    FILE *f = fopen(at(rel), "wb");
    if (!f) musae_fail("test setup: cannot write %s", rel);
    const uint32_t data = n * 4, riff = 36 + data, fmt_len = 16, byte_rate = rate * 4;
    const uint16_t fmt = 3, ch = 1, align = 4, bits = 32;
    fwrite("RIFF", 1, 4, f), fwrite(&riff, 4, 1, f), fwrite("WAVEfmt ", 1, 8, f), fwrite(&fmt_len, 4, 1, f);
    fwrite(&fmt, 2, 1, f), fwrite(&ch, 2, 1, f), fwrite(&rate, 4, 1, f), fwrite(&byte_rate, 4, 1, f);
    fwrite(&align, 2, 1, f), fwrite(&bits, 2, 1, f), fwrite("data", 1, 4, f), fwrite(&data, 4, 1, f);
    fwrite(x, 4, n, f);
    fclose(f);
}

static void test_bad_input(void) {
    int64_t n;
    sh("mkdir -p bad");
    float *x = sine(440, 0.5, 12, &n);
    write_wav("bad/good.wav", x, n, SR); /* 12 s: one 10 s clip, a 2 s tail dropped */
    free(x);
    x = zeros(10 * SR);
    write_wav("bad/silence.wav", x, 10 * SR, SR);
    for (int64_t i = 0; i < 10 * SR; i++) x[i] = 0.25f;
    write_wav("bad/dc.wav", x, 10 * SR, SR);
    for (int64_t i = 0; i < 10 * SR; i++) x[i] = (float)fmax(-1.0, fmin(1.0, 3.0 * sin(2 * M_PI * 100 * i / SR)));
    write_wav("bad/clipped.wav", x, 10 * SR, SR);
    write_wav("bad/one_sample.wav", x, 1, SR);
    free(x);
    x = sine(440, 0.5, 25, &n);
    x[n - 100] = NAN; /* in the third clip: the first two are kept, as capture keeps them */
    write_raw_f32_wav("bad/nan.wav", x, (uint32_t)n, SR);
    free(x);
    x = noise(0.1, 130, &n); /* long: 13 clips, streamed */
    write_wav("bad/long.wav", x, n, SR);
    free(x);
    sh("echo 'not audio' > bad/junk.wav");

    CHECK(run("describe --audio bad -o bad.h5") == 0, "describe over bad input failed:\n%s", slurp("err.txt"));
    err_has("skipped clip bad/silence.wav#t=0,10: silent");
    err_has("skipped clip bad/dc.wav#t=0,10: constant (a DC offset of 0.25");
    err_has("skipped clip bad/clipped.wav#t=0,10: clipped");
    err_has("skipped bad/one_sample.wav: too short (0.000 s");
    err_has("bad/nan.wav: read error after");
    err_has("(2 clip(s) before it kept)");
    err_has("(frame 799900, channel 0) is NaN");
    err_has("skipped bad/junk.wav");
    musae_descriptors d;
    char err[1024];
    CHECK(musae_descriptors_read(at("bad.h5"), &d, err, sizeof err) == 0, "%s", err);
    if (!d.n_clips) return;
    CHECK(d.n_clips == 1 + 13 + 2, "%lld clips, expected 16 (good, long x13, nan x2)", (long long)d.n_clips);
    if (d.n_clips == 16) {
        CHECK(!strcmp(d.path[0], "bad/good.wav#t=0,10"), "clip 0 is %s", d.path[0]);
        CHECK(!strcmp(d.path[1], "bad/long.wav#t=0,10") && !strcmp(d.path[13], "bad/long.wav#t=120,130"), "long clips %s .. %s",
              d.path[1], d.path[13]);
        CHECK(!strcmp(d.path[14], "bad/nan.wav#t=0,10") && !strcmp(d.path[15], "bad/nan.wav#t=10,20"), "nan clips %s, %s",
              d.path[14], d.path[15]);
    }
    int ok = 1;
    for (int64_t i = 0; i < d.n_clips; i++) ok &= nan_only_where_allowed(&d.clip[i]);
    for (int64_t i = 0; i < d.n_windows; i++) ok &= nan_only_where_allowed(&d.window[i]);
    CHECK(ok, "a NaN outside tempo/f0 in the output");
    musae_descriptors_free(&d);

    /* nothing describable: exit 1 and say so */
    sh("mkdir -p allbad && cp bad/silence.wav bad/junk.wav allbad/");
    CHECK(run("describe --audio allbad -o allbad.h5") == 1, "all-bad input: exit %d", run("describe --audio allbad -o allbad.h5"));
    err_has("nothing to describe");
    CHECK(!dir_has("allbad.h5"), "a failed run left allbad.h5");
}

static void test_cli(void) {
    CHECK(run("describe --help") == 0, "--help");
    char *o = slurp("out.txt");
    CHECK_STR_CONTAINS(o, "usage: musae describe");
    free(o);
    CHECK(run("describe --audio x -o y --bogus") == 1, "unknown option: exit code");
    err_has("unknown option '--bogus'; see musae describe --help");
    CHECK(run("describe --audio") == 1, "missing value: exit code");
    err_has("--audio needs a value; see musae describe --help");
    CHECK(run("describe -o y.h5") == 1, "no source: exit code");
    err_has("give one of --audio and --acts; see musae describe --help");
    CHECK(run("describe --audio a --acts b -o y.h5") == 1, "two sources: exit code");
    err_has("give one of --audio and --acts");
    CHECK(run("describe --audio bad") == 1, "no -o: exit code");
    err_has("-o DESCRIPTORS.h5 is required; see musae describe --help");
    CHECK(run("describe --acts s.h5 --clip-seconds 5 -o y.h5") == 1, "--clip-seconds with --acts: exit code");
    err_has("apply to --audio only");
    CHECK(run("describe --audio bad --clip-seconds abc -o y.h5") == 1, "bad number: exit code");
    err_has("--clip-seconds");
    CHECK(run("describe --audio nowhere -o y.h5") == 1, "missing folder: exit code");
    err_has("nowhere: No such file or directory");
}

/* the h5 contract as h5dump sees it: every dataset, its type, shape and unit */
static void test_contract(void) {
    int64_t n;
    sh("mkdir -p good");
    float *x = click_track(120, 25, &n); /* 2 clips + a 5 s tail dropped */
    write_wav("good/clicks.wav", x, n, SR);
    free(x);
    x = sine(440, 0.3, 10.6, &n); /* 10.6 s with --min-seconds 0.5: a 10 s clip (10 windows) + a 0.6 s clip */
    write_wav("good/tone.wav", x, n, SR);
    free(x);
    CHECK(run("describe --audio good --min-seconds 0.5 -o d.h5") == 0, "describe good:\n%s", slurp("err.txt"));
    CHECK(sh("h5dump -H d.h5 > h.txt") == 0, "h5dump cannot read d.h5");
    char *h = slurp("h.txt");
    musae_descriptors d;
    char err[1024];
    CHECK(musae_descriptors_read(at("d.h5"), &d, err, sizeof err) == 0, "%s", err);
    /* clicks 0-10, 10-20, 20-25 (10 + 10 + 5 windows); tone 0-10, 10-10.6 (10 + 1) */
    CHECK(d.n_clips == 5, "%lld clips, expected 5", (long long)d.n_clips);
    CHECK(d.n_windows == 10 + 10 + 5 + 10 + 1, "%lld windows, expected 36", (long long)d.n_windows);
    char want[256];
    static const char *f32[] = {"tempo_bpm", "beat_confidence", "onset_rate_hz", "lufs", "loudness_range_lu",
                                "true_peak_dbtp", "key_confidence", "spectral_centroid_hz", "spectral_rolloff_hz",
                                "spectral_flatness", "spectral_bandwidth_hz", "zcr", "rms_db", "percussive_ratio",
                                "f0_median_hz", "voiced_fraction"};
    for (int g = 0; g < 2; g++) {
        const long long rows = g ? d.n_windows : d.n_clips;
        const char *grp = g ? "window" : "clip";
        for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++) {
            snprintf(want, sizeof want, "DATASET \"%s\" {\n         DATATYPE  H5T_IEEE_F32LE\n         DATASPACE  SIMPLE { ( %lld ) / ( %lld ) }\n         ATTRIBUTE \"unit\"",
                     f32[i], rows, rows);
            CHECK(strstr(h, want) != NULL, "/%s/%s: not f32 [%lld] with a unit", grp, f32[i], rows);
        }
        for (int i = 0; i < 2; i++) {
            snprintf(want, sizeof want, "DATASET \"%s\" {\n         DATATYPE  H5T_STD_I32LE\n         DATASPACE  SIMPLE { ( %lld ) / ( %lld ) }\n         ATTRIBUTE \"unit\"",
                     i ? "mode" : "key", rows, rows);
            CHECK(strstr(h, want) != NULL, "/%s/%s: not int32 [%lld] with a unit", grp, i ? "mode" : "key", rows);
        }
        snprintf(want, sizeof want, "DATASET \"chroma\" {\n         DATATYPE  H5T_IEEE_F32LE\n         DATASPACE  SIMPLE { ( %lld, 12 ) / ( %lld, 12 ) }", rows, rows);
        CHECK(strstr(h, want) != NULL, "/%s/chroma: not f32 [%lld, 12]", grp, rows);
        snprintf(want, sizeof want, "DATASET \"chords\" {\n         DATATYPE  H5T_STD_I32LE\n         DATASPACE  SIMPLE { ( %lld, 3 ) / ( %lld, 3 ) }", rows, rows);
        CHECK(strstr(h, want) != NULL, "/%s/chords: not int32 [%lld, 3]", grp, rows);
    }
    snprintf(want, sizeof want, "DATASET \"clip\" {\n         DATATYPE  H5T_STD_I32LE\n         DATASPACE  SIMPLE { ( %lld ) / ( %lld ) }",
             (long long)d.n_windows, (long long)d.n_windows);
    CHECK(strstr(h, want) != NULL, "/window/clip: not int32 [W]");
    snprintf(want, sizeof want, "DATASET \"start_s\" {\n         DATATYPE  H5T_IEEE_F32LE\n         DATASPACE  SIMPLE { ( %lld ) / ( %lld ) }",
             (long long)d.n_windows, (long long)d.n_windows);
    CHECK(strstr(h, want) != NULL, "/window/start_s: not f32 [W]");
    CHECK_STR_CONTAINS(h, "DATASET \"path\" {\n         DATATYPE  H5T_STRING {\n            STRSIZE H5T_VARIABLE;");
    free(h);
    if (d.n_clips == 5 && d.n_windows == 36) {
        CHECK(!strcmp(d.path[2], "good/clicks.wav#t=20,25") && !strcmp(d.path[4], "good/tone.wav#t=10,10.6"), "paths %s %s",
              d.path[2], d.path[4]);
        CHECK(d.window_clip[0] == 0 && d.window_clip[10] == 1 && d.window_clip[35] == 4 && d.window_start_s[24] == 4 &&
                  d.window_start_s[25] == 0, "window clip / start_s layout");
        CHECK(fabs(d.duration_s[4] - 0.6) < 1e-4, "duration %g", d.duration_s[4]);
        CHECK(fabs(d.clip[0].tempo_bpm / 120 - 1) <= 0.02, "clicks clip 0 tempo %g", d.clip[0].tempo_bpm);
    }
    musae_descriptors_free(&d);
    /* the reader names what is wrong */
    sh("echo nope > not.h5");
    CHECK(musae_descriptors_read(at("not.h5"), &d, err, sizeof err) == -1 && strstr(err, "not an HDF5 file"), "%s", err);
    /* the same bytes for one thread and two */
    CHECK(sh("OMP_NUM_THREADS=1 %s describe --audio good --min-seconds 0.5 -o d1.h5 2>/dev/null", bin()) == 0, "1 thread");
    CHECK(sh("OMP_NUM_THREADS=2 %s describe --audio good --min-seconds 0.5 -o d2.h5 2>/dev/null", bin()) == 0, "2 threads");
    CHECK(same_bytes("d1.h5", "d2.h5"), "1 and 2 threads wrote different files");
}

/* --acts: exactly the store's clips, in its order (not sorted), the same samples as --audio cut */
static void test_acts(void) {
    musae_store_spec spec = {.model = "test", .d_model = 4, .frame_rate = 50, .n_layers = 1, .layers = {0},
                             .dtype = MUSAE_F32, .dtype_source = "f32"};
    char name[512];
    /* clips of the files made by test_contract, in an order capture would never use, and one of a relative
     * name resolved through --audio-root */
    static const struct { const char *file; int64_t a, n; } clips[] = {
        {"good/tone.wav", 0, 10 * SR}, {"good/clicks.wav", 10 * SR, 10 * SR}, {"good/clicks.wav", 0, 10 * SR},
        {"good/tone.wav", 10 * SR, SR * 6 / 10}, {"good/clicks.wav", 20 * SR, 5 * SR}};
    musae_store_writer *w = musae_store_create(at("s.h5"), &spec);
    float acts[4 * 500] = {0};
    const float *a[1] = {acts};
    for (int i = 0; i < 5; i++) {
        capture_clip_name(clips[i].file, clips[i].a, clips[i].n, SR, name, sizeof name);
        musae_store_add_clip(w, name, 2, a);
    }
    musae_store_close_writer(w, 1);
    CHECK(run("describe --acts s.h5 -o acts.h5") == 0, "describe --acts:\n%s", slurp("err.txt"));
    musae_descriptors d, ref;
    char err[1024];
    CHECK(musae_descriptors_read(at("acts.h5"), &d, err, sizeof err) == 0, "%s", err);
    CHECK(musae_descriptors_read(at("d.h5"), &ref, err, sizeof err) == 0, "%s", err);
    CHECK(d.n_clips == 5, "%lld clips", (long long)d.n_clips);
    static const int ref_index[5] = {3, 1, 0, 4, 2}; /* where each store clip sits in the --audio run */
    for (int i = 0; i < 5 && d.n_clips == 5 && ref.n_clips == 5; i++) {
        capture_clip_name(clips[i].file, clips[i].a, clips[i].n, SR, name, sizeof name);
        CHECK(!strcmp(d.path[i], name), "clip %d is '%s', the store's is '%s'", i, d.path[i], name);
        CHECK(!strcmp(ref.path[ref_index[i]], name), "reference clip %d is '%s'", ref_index[i], ref.path[ref_index[i]]);
        CHECK(!memcmp(&d.clip[i], &ref.clip[ref_index[i]], sizeof(musae_desc)),
              "clip %d (%s): --acts and --audio descriptors differ (not the same samples?)", i, name);
    }
    musae_descriptors_free(&d), musae_descriptors_free(&ref);
    /* the same store read from another folder through --audio-root */
    CHECK(sh("mkdir -p elsewhere && cp s.h5 elsewhere/") == 0, "setup");
    CHECK(run("describe --acts elsewhere/s.h5 --audio-root %s -o acts2.h5", g_dir) == 0, "--audio-root:\n%s", slurp("err.txt"));
    CHECK(musae_descriptors_read(at("acts.h5"), &ref, err, sizeof err) == 0, "%s", err);
    CHECK(musae_descriptors_read(at("acts2.h5"), &d, err, sizeof err) == 0, "%s", err);
    CHECK(d.n_clips == ref.n_clips && d.n_clips && !memcmp(d.clip, ref.clip, (size_t)d.n_clips * sizeof *d.clip),
          "--audio-root gave other descriptors");
    musae_descriptors_free(&d), musae_descriptors_free(&ref);

    /* a store whose clip names no span, and one whose file is gone: exit 1 naming the clip */
    w = musae_store_create(at("gen.h5"), &spec);
    musae_store_add_clip(w, "prompt#item=0", 2, a);
    musae_store_close_writer(w, 1);
    CHECK(run("describe --acts gen.h5 -o g.h5") == 1, "generation-time store: exit code");
    err_has("clip 0 'prompt#item=0' names no audio span");
    w = musae_store_create(at("gone.h5"), &spec);
    musae_store_add_clip(w, "good/missing.wav#t=0,10", 2, a);
    musae_store_close_writer(w, 1);
    CHECK(run("describe --acts gone.h5 -o g.h5") == 1, "missing file: exit code");
    err_has("clip 0 'good/missing.wav#t=0,10': good/missing.wav");
    CHECK(!dir_has("g.h5"), "a failed run left g.h5");
}

/* ---- HPSS against the definition ---------------------------------------------------------------------------- */

static int cmp_f(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* median of v[(i-h .. i+h) ∩ [0, n)] for v[j·stride], by sorting the kernel (the middle, or the mean of the two) */
static float ref_median(const float *v, int64_t stride, int64_t n, int64_t i, int h) {
    float w[64];
    const int64_t a = i - h < 0 ? 0 : i - h, b = i + h + 1 > n ? n : i + h + 1;
    for (int64_t j = a; j < b; j++) w[j - a] = v[j * stride];
    const int64_t m = b - a;
    qsort(w, (size_t)m, sizeof *w, cmp_f);
    return m % 2 ? w[m / 2] : 0.5f * (w[m / 2 - 1] + w[m / 2]);
}

/* dsp_hpss's medians are a sorting network over lanes of sequences; docs/DESCRIBE.md defines the ratio by plain
 * medians of 17 frames and 31 bins (partial at the edges) up to 8 kHz. Same floats, same summation order: the
 * ratios must be equal, not close. Lengths: 3.3 s (frames not a multiple of the 8 lanes), 0.3 s (10 frames: no
 * kernel of 17 frames fits, every time median is a partial one) and 0.15 s (5 frames: fewer than the 8 lanes);
 * the signal has exact ties (silent stretches). */
static void test_hpss_reference(void) {
    const double secs[3] = {3.3, 0.3, 0.15};
    for (int t = 0; t < 3; t++) {
        int64_t n, nn;
        float *x = click_track(137, secs[t], &n), *z = noise(0.05, secs[t], &nn);
        for (int64_t i = 0; i < n; i++) x[i] += (i / 4000) % 3 ? z[i] + 0.3f * (float)sin(2 * M_PI * 440.0 * i / SR) : 0.0f;
        dsp_work *w = dsp_work_new();
        dsp_clip c = {.x = x, .n = n, .rate = SR};
        dsp_stft(w, &c);
        musae_desc clip;
        dsp_hpss(&c, &clip, g_win);
        const int64_t F = c.n_frames, B = (int64_t)(8000.0 * DSP_NFFT / SR) + 1;
        double ep_all = 0, eh_all = 0, ep[8] = {0}, eh[8] = {0};
        for (int64_t f = 0; f < F; f++) {
            double p_sum = 0, h_sum = 0;
            for (int64_t k = 0; k < B; k++) {
                const float H = ref_median(c.mag + k, DSP_BINS, F, f, 8), P = ref_median(c.mag + f * DSP_BINS, 1, B, k, 15);
                const double p2 = (double)P * P, h2 = (double)H * H, e = (double)c.mag[f * DSP_BINS + k] * c.mag[f * DSP_BINS + k];
                if (p2 + h2 > 0) p_sum += e * p2 / (p2 + h2), h_sum += e * h2 / (p2 + h2);
            }
            ep_all += p_sum, eh_all += h_sum, ep[c.frame_window[f]] += p_sum, eh[c.frame_window[f]] += h_sum;
        }
        const float want = (float)(ep_all / (ep_all + eh_all));
        CHECK(clip.percussive_ratio == want, "%.2f s: percussive_ratio %.9g, the plain medians give %.9g", secs[t],
              clip.percussive_ratio, want);
        for (int64_t k = 0; k < c.n_windows; k++)
            CHECK(g_win[k].percussive_ratio == (float)(ep[k] / (ep[k] + eh[k])), "%.2f s window %lld: %.9g, plain %.9g",
                  secs[t], (long long)k, g_win[k].percussive_ratio, ep[k] / (ep[k] + eh[k]));
        printf("hpss: %.2f s clip, %lld frames: percussive_ratio %.9g, plain medians %.9g\n", secs[t], (long long)F,
               clip.percussive_ratio, want);
        dsp_clip_free(&c);
        dsp_work_free(w);
        free(x), free(z);
    }
}

/* ---- true peak against libebur128 --------------------------------------------------------------------------- */

/* dsp_loudness computes libebur128's true peak itself (its filter, block by block, skipping blocks that cannot
 * raise the peak): every window's and the clip's true_peak_dbtp must equal what libebur128's own true-peak mode
 * reports, fed the same windows. The clip: a loud 8 kHz (fs/4) sine at 45° phase (inter-sample peaks 3 dB above
 * the samples) in the first second, noise bursts of falling level after (blocks both computed and skipped). */
static void test_true_peak_reference(void) {
    int64_t n, nn;
    float *x = sine(8000, 0.5, 4.4, &n), *z = noise(0.9, 4.4, &nn);
    for (int64_t i = 0; i < n; i++) {
        x[i] = i < SR ? 0.5f * (float)sin(2 * M_PI * 8000.0 * i / SR + M_PI / 4) : 0.0f;
        if (i >= SR && (i / 3000) % 2) x[i] = z[i] / (float)(1 + i / 9000);
    }
    musae_desc d = describe(x, n);
    ebur128_state *st = ebur128_init(1, SR, EBUR128_MODE_TRUE_PEAK);
    CHECK(st != NULL, "libebur128 state");
    const int64_t W = describe_n_windows(n, SR);
    int same = 1;
    for (int64_t w = 0; w < W && st; w++) {
        const int64_t a = w * SR, b = w == W - 1 ? n : (w + 1) * SR;
        double tp = 0;
        ebur128_add_frames_float(st, x + a, (size_t)(b - a));
        ebur128_prev_true_peak(st, 0, &tp);
        const float want = tp > 0 ? (float)(10.0 * log10(tp * tp)) : -120.0f;
        if (g_win[w].true_peak_dbtp != want) same = 0;
        CHECK(g_win[w].true_peak_dbtp == want, "window %lld: true peak %.9g dBTP, libebur128 %.9g", (long long)w,
              g_win[w].true_peak_dbtp, want);
    }
    double tp = 0;
    if (st) ebur128_true_peak(st, 0, &tp), ebur128_destroy(&st);
    const float want = (float)(10.0 * log10(tp * tp));
    CHECK(d.true_peak_dbtp == want, "clip: true peak %.9g dBTP, libebur128 %.9g", d.true_peak_dbtp, want);
    /* samples of the sine at ±0.5·sin(45°) = -9.03 dBFS; its true peak 0.5 = -6.02 dBTP */
    CHECK(d.true_peak_dbtp > -9.03f + 2.9f, "the fs/4 sine's inter-sample peaks: %.3f dBTP", d.true_peak_dbtp);
    printf("true peak: clip %.6f dBTP (libebur128 %.6f), %lld windows %s\n", d.true_peak_dbtp, want, (long long)W,
           same ? "equal" : "DIFFER");
    free(x), free(z);
}

int main(void) {
    test_tempo();
    test_key_and_chords();
    test_loudness_and_spectrum();
    test_windows();
    test_hpss_reference();
    test_true_peak_reference();
    scratch_open("describe");
    test_cli();
    test_bad_input();
    test_contract();
    test_acts();
    scratch_close();
    TEST_END();
}
