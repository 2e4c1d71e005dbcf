/* CLAP's audio front end against HF ClapFeatureExtractor (transformers 5.24; goldens from
 * tools/reference/make_clap.py): the tiny model's config (16 kHz, 1 s, fft 256, hop 160, 16 mels) on a
 * repeat-padded, an exact and a longer clip (musae keeps the first second; the golden is HF's features of
 * that crop), and the real checkpoints' config (48 kHz, 10 s, fft 1024, hop 480, 64 mels, 50-14000 Hz) on a
 * 0.5 s clip repeat-padded to 10 s. Then refusals of broken preprocessor_config.json files.
 *
 * Tolerance: both sides compute in float64 and round the dB value to float32 once; what remains is FFT
 * round-off (~1e-12 relative in power, ~1e-11 dB) and a float32 rounding that may land one ulp apart, so
 * |musae - HF| <= 2 ulp of float32 at 128 dB = 2^-16. */
#include <unistd.h>

#include "host/io/safetensors.h"
#include "model/clap_audio_fe.h"
#include "test.h"

#define TOL (1.0 / 65536.0)

static void test_tiny(void) {
    char dir[1024], path[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/tiny-clap", test_fixtures());
    snprintf(path, sizeof path, "%s/golden/clap_tiny.safetensors", test_fixtures());
    musae_clap_fe fe;
    CHECK(musae_clap_fe_open(&fe, dir, err, sizeof err) == 0, "open: %s", err);
    musae_st st;
    CHECK(musae_st_open(&st, path, err, sizeof err) == 0, "golden: %s", err);
    CHECK(fe.frames == 101 && fe.n_mels == 16 && fe.max_samples == 16000, "tiny config %lld x %d",
          (long long)fe.frames, fe.n_mels);
    const int64_t fshape[4] = {3, 1, 101, 16};
    float *want = musae_st_load(&st, "input_features", MUSAE_F32, 4, fshape);
    float *got = malloc(101 * 16 * sizeof *got);
    for (int c = 0; c < 3; c++) {
        char name[16];
        snprintf(name, sizeof name, "wave%d", c);
        int rank;
        int64_t shape[8];
        float *x = musae_st_load_any(&st, name, MUSAE_F32, &rank, shape);
        CHECK(x && rank == 1, "%s", name);
        if (!x) continue;
        musae_clap_fe_features(&fe, x, shape[0], got);
        const double d = test_max_abs_diff(got, want + c * 101 * 16, 101 * 16);
        CHECK(d <= TOL, "clip %d (%lld samples): max |musae - HF| = %.3g dB", c, (long long)shape[0], d);
        printf("tiny clip %d (%lld samples): max |musae - HF| = %.3g dB\n", c, (long long)shape[0], d);
        free(x);
    }
    free(got);
    free(want);
    musae_st_close(&st);
    musae_clap_fe_close(&fe);
}

static void write_text(const char *path, const char *txt) {
    FILE *f = fopen(path, "wb");
    fputs(txt, f);
    fclose(f);
}

/* The real front end: written as laion/larger_clap_music's preprocessor_config.json has it. */
static void test_48k(const char *tmp) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/preprocessor_config.json", tmp);
    write_text(path, "{\"feature_extractor_type\": \"ClapFeatureExtractor\", \"feature_size\": 64, "
                     "\"fft_window_size\": 1024, \"frequency_max\": 14000, \"frequency_min\": 50, \"hop_length\": 480, "
                     "\"max_length_s\": 10, \"padding\": \"repeatpad\", \"sampling_rate\": 48000, \"top_db\": null, "
                     "\"truncation\": \"rand_trunc\"}");
    musae_clap_fe fe;
    CHECK(musae_clap_fe_open(&fe, tmp, err, sizeof err) == 0, "open 48k: %s", err);
    CHECK(fe.frames == 1001 && fe.max_samples == 480000, "48k config");
    snprintf(path, sizeof path, "%s/golden/clap_fe48k.safetensors", test_fixtures());
    musae_st st;
    CHECK(musae_st_open(&st, path, err, sizeof err) == 0, "golden: %s", err);
    int rank;
    int64_t shape[8];
    float *x = musae_st_load_any(&st, "wave", MUSAE_F32, &rank, shape);
    const int64_t wshape[2] = {251, 64};
    float *want = musae_st_load(&st, "features_every4", MUSAE_F32, 2, wshape);
    float *got = malloc(1001 * 64 * sizeof *got);
    musae_clap_fe_features(&fe, x, shape[0], got);
    double d = 0;
    for (int r = 0; r < 251; r++) {
        const double dr = test_max_abs_diff(got + (size_t)r * 4 * 64, want + r * 64, 64);
        if (dr > d) d = dr;
    }
    CHECK(d <= TOL, "48 kHz: max |musae - HF| = %.3g dB", d);
    printf("48 kHz, 10 s, 64 mels: max |musae - HF| = %.3g dB over 251 frames\n", d);
    free(got);
    free(want);
    free(x);
    musae_st_close(&st);
    musae_clap_fe_close(&fe);
}

static void refuse(const char *tmp, const char *json, const char *msg) {
    char path[1024], err[512] = "";
    snprintf(path, sizeof path, "%s/preprocessor_config.json", tmp);
    write_text(path, json);
    musae_clap_fe fe;
    CHECK(musae_clap_fe_open(&fe, tmp, err, sizeof err) == -1, "accepted %s", json);
    CHECK_STR_CONTAINS(err, msg);
}

static void test_refusals(const char *tmp) {
    char err[512] = "";
    musae_clap_fe fe;
    CHECK(musae_clap_fe_open(&fe, "/nonexistent-clap", err, sizeof err) == -1, "missing folder");
    CHECK_STR_CONTAINS(err, "/nonexistent-clap/preprocessor_config.json: cannot read");
#define BASE "\"feature_size\": 64, \"fft_window_size\": 1024, \"frequency_max\": 14000, \"frequency_min\": 50, " \
             "\"hop_length\": 480, \"max_length_s\": 10, \"sampling_rate\": 48000"
    refuse(tmp, "[]", "preprocessor_config.json: not a JSON object");
    refuse(tmp, "{" BASE ", \"truncation\": \"fusion\"}", "truncation: \"fusion\" is not supported");
    refuse(tmp, "{\"feature_size\": 64, \"truncation\": \"rand_trunc\"}", "sampling_rate: expected an integer");
    refuse(tmp,
           "{\"feature_size\": 64, \"fft_window_size\": 1024, \"frequency_max\": 14000, \"frequency_min\": 50, "
           "\"hop_length\": 0, \"max_length_s\": 10, \"sampling_rate\": 48000, \"truncation\": \"rand_trunc\"}",
           "hop_length: expected an integer in [1, 65536]");
    refuse(tmp,
           "{\"feature_size\": 64, \"fft_window_size\": 1024, \"frequency_max\": 30000, \"frequency_min\": 50, "
           "\"hop_length\": 480, \"max_length_s\": 10, \"sampling_rate\": 48000, \"truncation\": \"rand_trunc\"}",
           "frequency_max: expected a number in [50, 24000]");
#undef BASE
}

int main(void) {
    char tmp[512], cmd[600];
    snprintf(tmp, sizeof tmp, "%s/clap_fe_%d", test_tmp(), (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp);
    CHECK(system(cmd) == 0, "mkdir");
    test_tiny();
    test_48k(tmp);
    test_refusals(tmp);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    TEST_END();
}
