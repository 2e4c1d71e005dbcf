/* musae synth_acts — a store of synthetic activations with planted ground truth, for testing SAE training:
 * G random unit directions in d dimensions; each row is a non-negative combination of k_true distinct
 * directions drawn with power-law frequencies (p_g ∝ (g+1)^-a), coefficients uniform in [0.5, 1.5), plus
 * Gaussian noise of norm ~`noise`. The directions are stored in /truth/directions [G, d] (f32).
 * With --clip-concepts P the first P directions are clip-level instead: direction g < P is present in a whole
 * clip (every row of it, coefficient uniform in [0.5, 1.5) per row) with probability r_g, log-spaced over
 * --clip-rates LO,HI, and the k_true frame-level directions are drawn from the other G - P. The fraction of
 * clips each one was actually planted in goes to /truth/clip_rates [P] (f32): what `musae analyze` should
 * report as the clip rate of a feature that recovered it.
 * Options that make it look more like real activations (all off by default, which keeps the rows above bit for
 * bit): correlated pairs (a drawn direction 2i or 2i+1 brings its partner with probability --pair-prob),
 * log-normal coefficients (exp(σ·N(0,1) − σ²/2), mean 1), anisotropic noise (the standard deviation of
 * dimension j ∝ (j+1)^-A, the same total norm) and a mean offset (one random vector of norm --mean-offset added
 * to every row, as the large mean of a residual stream).
 * With --audio DIR each clip also gets a source file, DIR/clipNNNNNN.wav (32 kHz 16-bit, a sine at
 * 100 + 10·(c mod 700) Hz, so a listener, or a test, can tell clip c by its pitch), lasting the clip's rows at
 * 50 frames/s, and the clip is named "DIR/clipNNNNNN.wav#t=0,<seconds>" like a captured one: excerpts and the
 * labelers (docs/LLM_LABEL.md) then have audio to play. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/cli/cli.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/core/progress.h"
#include "host/io/audio.h"
#include "host/io/store.h"

const char verb_synth_acts_summary[] = "write a store of synthetic activations with planted sparse directions";

#define STREAM_DIRS 0x7D1Eull
#define STREAM_ROWS 0x7A05ull /* | layer << 32 */
#define STREAM_CLIPS 0xC11Bull /* clip-level presence: counter clip·P + g */

static void usage(FILE *f) {
    fprintf(f,
            "usage: musae synth_acts -o FILE [options]\n\n"
            "  --d D              dimension (default 256)\n"
            "  --concepts G       planted directions (default 1024)\n"
            "  --k-true K         directions per row (default 8)\n"
            "  --rows N           rows (default 300000)\n"
            "  --clip-frames F    rows per clip (default 256)\n"
            "  --layers L,..      layers to write, each with its own rows (default 0)\n"
            "  --freq-exponent A  power law of direction frequencies (default 0.5)\n"
            "  --noise S          noise norm per row (default 0.05)\n"
            "  --pair-prob P      a drawn direction 2i/2i+1 brings its partner with probability P (default 0)\n"
            "  --lognormal S      coefficients exp(S·N(0,1) - S²/2) instead of uniform [0.5, 1.5) (default off)\n"
            "  --noise-aniso A    noise std of dimension j ∝ (j+1)^-A, same total norm (default 0: isotropic)\n"
            "  --mean-offset M    add one random vector of norm M to every row (default 0)\n"
            "  --no-truth         do not store /truth/directions (a store that looks like a capture)\n"
            "  --dtype f16|f32    (default f16)\n"
            "  --nan-rows N       plant N rows holding a NaN (for testing bad input; default 0)\n"
            "  --clip-concepts P  the first P directions are present in whole clips (default 0)\n"
            "  --clip-rates LO,HI their clip rates, log-spaced from LO to HI (default 0.02,0.2)\n"
            "  --model NAME       the store's model attribute (default \"synthetic\")\n"
            "  --audio DIR        write a tone per clip to DIR/clipNNNNNN.wav and name the clips after them\n"
            "  --seed S           (default 0)\n");
}

static double gauss(uint64_t seed, uint64_t stream, uint64_t ctr) {
    musae_u32x4 r = musae_philox(seed, stream, ctr);
    double u1 = ((double)(r.v[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(r.v[1] >> 8) / 16777216.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* The clip's source audio for --audio: a sine at hz, 32 kHz 16-bit WAV. */
static void write_tone(const char *path, double hz, double seconds) {
    char err[512];
    const int64_t n = (int64_t)llround(seconds * 32000);
    float *x = musae_xmalloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.5 * sin(6.283185307179586 * hz * (double)i / 32000));
    musae_audio_writer *w = musae_audio_writer_open(path, 32000, 1, MUSAE_AUDIO_PCM16, err, sizeof err);
    if (!w || musae_audio_write(w, x, n, err, sizeof err) || musae_audio_writer_close(w, NULL, err, sizeof err))
        musae_fail("%s", err);
    free(x);
}

int verb_synth_acts(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *out = NULL, *audio_dir = NULL;
    int d = 256, G = 1024, kt = 8, clip = 256, nan_rows = 0, P = 0;
    double rate_lo = 0.02, rate_hi = 0.2;
    int64_t rows = 300000;
    double a = 0.5, noise = 0.05, pair_prob = 0, lognormal = 0, aniso = 0, offset = 0;
    int truth = 1;
    uint64_t seed = 0;
    musae_store_spec spec = {0};
    spec.model = "synthetic";
    spec.frame_rate = 50;
    spec.dtype = MUSAE_F16;
    spec.dtype_source = "f32";
    spec.n_layers = 1;
    enum { OPT_D = CLI_OPT_FIRST, OPT_CONCEPTS, OPT_K_TRUE, OPT_ROWS, OPT_CLIP, OPT_LAYERS, OPT_FREQ, OPT_NOISE,
           OPT_NAN_ROWS, OPT_CLIP_CONCEPTS, OPT_CLIP_RATES, OPT_SEED, OPT_MODEL, OPT_DTYPE, OPT_PAIR_PROB, OPT_LOGNORMAL,
           OPT_NOISE_ANISO, OPT_MEAN_OFFSET, OPT_NO_TRUTH, OPT_AUDIO };
    static const struct option opts[] = {
        {"d", required_argument, NULL, OPT_D},                   {"concepts", required_argument, NULL, OPT_CONCEPTS},
        {"k-true", required_argument, NULL, OPT_K_TRUE},         {"rows", required_argument, NULL, OPT_ROWS},
        {"clip-frames", required_argument, NULL, OPT_CLIP},      {"layers", required_argument, NULL, OPT_LAYERS},
        {"freq-exponent", required_argument, NULL, OPT_FREQ},    {"noise", required_argument, NULL, OPT_NOISE},
        {"nan-rows", required_argument, NULL, OPT_NAN_ROWS},     {"seed", required_argument, NULL, OPT_SEED},
        {"clip-concepts", required_argument, NULL, OPT_CLIP_CONCEPTS},
        {"clip-rates", required_argument, NULL, OPT_CLIP_RATES},
        {"pair-prob", required_argument, NULL, OPT_PAIR_PROB},   {"lognormal", required_argument, NULL, OPT_LOGNORMAL},
        {"noise-aniso", required_argument, NULL, OPT_NOISE_ANISO}, {"mean-offset", required_argument, NULL, OPT_MEAN_OFFSET},
        {"no-truth", no_argument, NULL, OPT_NO_TRUTH},
        {"model", required_argument, NULL, OPT_MODEL},           {"dtype", required_argument, NULL, OPT_DTYPE},
        {"audio", required_argument, NULL, OPT_AUDIO},           {0}};
    for (int c; (c = cli_getopt(argc, argv, "o:", opts)) != -1;) {
        const char *v = optarg;
        switch (c) {
        case 'o': out = v; break;
        case OPT_D: d = (int)cli_int("--d", v, 1, 1 << 16); break;
        case OPT_CONCEPTS: G = (int)cli_int("--concepts", v, 1, 1 << 20); break;
        case OPT_K_TRUE: kt = (int)cli_int("--k-true", v, 1, 1024); break;
        case OPT_ROWS: rows = cli_int("--rows", v, 1, INT32_MAX); break;
        case OPT_CLIP: clip = (int)cli_int("--clip-frames", v, 1, 1 << 24); break;
        case OPT_LAYERS: spec.n_layers = cli_int_list("--layers", v, spec.layers, MUSAE_STORE_MAX_LAYERS, 0, 1000); break;
        case OPT_FREQ: a = cli_double("--freq-exponent", v, 0, 10); break;
        case OPT_NOISE: noise = cli_double("--noise", v, 0, 1e6); break;
        case OPT_NAN_ROWS: nan_rows = (int)cli_int("--nan-rows", v, 0, INT32_MAX); break;
        case OPT_PAIR_PROB: pair_prob = cli_double("--pair-prob", v, 0, 1); break;
        case OPT_LOGNORMAL: lognormal = cli_double("--lognormal", v, 0, 10); break;
        case OPT_NOISE_ANISO: aniso = cli_double("--noise-aniso", v, 0, 10); break;
        case OPT_MEAN_OFFSET: offset = cli_double("--mean-offset", v, 0, 1e6); break;
        case OPT_NO_TRUTH: truth = 0; break;
        case OPT_CLIP_CONCEPTS: P = (int)cli_int("--clip-concepts", v, 0, 1024); break;
        case OPT_CLIP_RATES: {
            char *comma = strchr(v, ',');
            if (!comma) musae_fail("--clip-rates: expected LO,HI, got '%s'", v);
            *comma = 0;
            rate_lo = cli_double("--clip-rates", v, 1e-6, 1);
            rate_hi = cli_double("--clip-rates", comma + 1, rate_lo, 1);
            break;
        }
        case OPT_SEED: seed = (uint64_t)cli_int("--seed", v, 0, INT64_MAX); break;
        case OPT_MODEL: spec.model = v; break;
        case OPT_AUDIO: audio_dir = v; break;
        case OPT_DTYPE:
            if (!strcmp(v, "f16")) spec.dtype = MUSAE_F16;
            else if (!strcmp(v, "f32")) spec.dtype = MUSAE_F32;
            else musae_fail("--dtype: expected f16 or f32, got '%s'", v);
            break;
        }
    }
    if (optind < argc) cli_usage_fail(argv[0], "unexpected argument '%s'", argv[optind]);
    if (!out) cli_usage_fail(argv[0], "-o is required");
    if (kt > G - P) musae_fail("--k-true %d exceeds the %d frame-level directions (--concepts minus --clip-concepts)", kt, G - P);
    spec.d_model = d;

    float *dirs = musae_xmalloc(sizeof(float) * (size_t)G * (size_t)d);
    for (int g = 0; g < G; g++) {
        double nn = 0;
        for (int j = 0; j < d; j++) {
            double x = gauss(seed, STREAM_DIRS, (uint64_t)g * (uint64_t)d + (uint64_t)j);
            dirs[(size_t)g * d + j] = (float)x;
            nn += x * x;
        }
        for (int j = 0; j < d; j++) dirs[(size_t)g * d + j] = (float)(dirs[(size_t)g * d + j] / sqrt(nn));
    }
    /* noise std per dimension, and the mean offset (drawn after the directions in their stream) */
    double *sigma = musae_xmalloc(sizeof(double) * (size_t)d), *mu = musae_xcalloc((size_t)d, sizeof(double));
    double wsum = 0;
    for (int j = 0; j < d; j++) wsum += pow((double)(j + 1), -2 * aniso);
    for (int j = 0; j < d; j++)
        sigma[j] = aniso == 0 ? noise / sqrt((double)d) : noise * pow((double)(j + 1), -aniso) / sqrt(wsum);
    if (offset > 0) {
        double nn = 0;
        for (int j = 0; j < d; j++) {
            mu[j] = gauss(seed, STREAM_DIRS, (uint64_t)G * (uint64_t)d + (uint64_t)j);
            nn += mu[j] * mu[j];
        }
        for (int j = 0; j < d; j++) mu[j] *= offset / sqrt(nn);
    }
    double *cdf = musae_xmalloc(sizeof(double) * (size_t)G);
    double acc = 0;
    for (int g = 0; g < G; g++) cdf[g] = acc += g < P ? 0.0 : pow((double)(g + 1 - P), -a);
    for (int g = 0; g < G; g++) cdf[g] /= acc;
    const int64_t n_clips = (rows + clip - 1) / clip;
    double *rate = musae_xcalloc((size_t)P + 1, sizeof(double));
    float *realised = musae_xcalloc((size_t)P + 1, sizeof(float));
    uint8_t *present = musae_xcalloc((size_t)P + 1, 1);
    for (int g = 0; g < P; g++) rate[g] = P > 1 ? rate_lo * pow(rate_hi / rate_lo, (double)g / (P - 1)) : rate_lo;

    if (audio_dir && mkdir(audio_dir, 0755) && errno != EEXIST) musae_fail("%s: %s", audio_dir, strerror(errno));
    musae_store_writer *w = musae_store_create(out, &spec);
    int64_t shape[2] = {G, d};
    if (truth) musae_store_put_f32(w, "/truth/directions", 2, shape, dirs);
    for (int64_t c = 0; c < n_clips; c++)
        for (int g = 0; g < P; g++)
            realised[g] += musae_u32_to_unit(musae_philox(seed, STREAM_CLIPS, (uint64_t)(c * P + g)).v[0]) < rate[g];
    for (int g = 0; g < P; g++) realised[g] /= (float)n_clips;
    if (P > 0) {
        int64_t shape_p[1] = {P};
        musae_store_put_f32(w, "/truth/clip_rates", 1, shape_p, realised);
    }
    float *buf[MUSAE_STORE_MAX_LAYERS];
    for (int l = 0; l < spec.n_layers; l++) buf[l] = musae_xmalloc(sizeof(float) * (size_t)clip * (size_t)d);
    musae_progress pr;
    musae_progress_init(&pr, "synth_acts", "rows", rows);
    for (int64_t r0 = 0, c = 0; r0 < rows; r0 += clip, c++) {
        const int64_t nr = r0 + clip <= rows ? clip : rows - r0;
        for (int g = 0; g < P; g++)
            present[g] = musae_u32_to_unit(musae_philox(seed, STREAM_CLIPS, (uint64_t)(c * P + g)).v[0]) < rate[g];
        for (int l = 0; l < spec.n_layers; l++) {
            const uint64_t stream = STREAM_ROWS | ((uint64_t)spec.layers[l] << 32);
#pragma omp parallel for schedule(static)
            for (int64_t r = 0; r < nr; r++) {
                const uint64_t row = (uint64_t)(r0 + r), base = row * 4096;
                float *x = buf[l] + r * d;
                int picked[1024], n = 0;
                uint64_t ctr = base;
                while (n < kt) { /* distinct directions, drawn by frequency */
                    musae_u32x4 u = musae_philox(seed, stream, ctr++);
                    double p = musae_u32_to_unit(u.v[0]);
                    int lo = 0, hi = G - 1;
                    while (lo < hi) {
                        int mid = (lo + hi) / 2;
                        if (cdf[mid] > p) hi = mid;
                        else lo = mid + 1;
                    }
                    int dup = 0;
                    for (int q = 0; q < n; q++) dup |= picked[q] == lo;
                    if (dup) continue;
                    picked[n++] = lo;
                    const int partner = lo ^ 1;
                    if (pair_prob > 0 && n < kt && partner < G &&
                        musae_u32_to_unit(musae_philox(seed, stream, base + 3072 + (uint64_t)n).v[0]) < pair_prob) {
                        for (int q = 0; q < n; q++) dup |= picked[q] == partner;
                        if (!dup) picked[n++] = partner;
                    }
                }
                for (int j = 0; j < d; j++)
                    x[j] = (float)(mu[j] + sigma[j] * gauss(seed, stream, base + 2048 + (uint64_t)j));
                for (int q = 0; q < kt; q++) {
                    float coef = lognormal > 0 ? (float)exp(lognormal * gauss(seed, stream, base + 1024 + (uint64_t)q) -
                                                            0.5 * lognormal * lognormal)
                                               : 0.5f + musae_u32_to_unit(musae_philox(seed, stream, base + 1024 + (uint64_t)q).v[0]);
                    for (int j = 0; j < d; j++) x[j] += coef * dirs[(size_t)picked[q] * d + j];
                }
                for (int g = 0; g < P; g++) {
                    if (!present[g]) continue;
                    float coef = 0.5f + musae_u32_to_unit(musae_philox(seed, stream, base + 3072 + (uint64_t)g).v[0]);
                    for (int j = 0; j < d; j++) x[j] += coef * dirs[(size_t)g * d + j];
                }
                for (int i = 0; i < nan_rows; i++) /* evenly spread */
                    if ((int64_t)((i + 0.5) * (double)rows / nan_rows) == (int64_t)row) x[0] = NAN;
            }
        }
        char path[4200];
        if (audio_dir) {
            snprintf(path, sizeof path, "%s/clip%06lld.wav", audio_dir, (long long)c);
            write_tone(path, 100.0 + 10.0 * (double)(c % 700), nr / spec.frame_rate);
            const size_t used = strlen(path);
            snprintf(path + used, sizeof path - used, "#t=0,%.6f", nr / spec.frame_rate);
        } else snprintf(path, sizeof path, "synthetic/clip%06lld", (long long)c);
        musae_store_add_clip(w, path, nr, (const float *const *)buf);
        musae_progress_add(&pr, nr, NULL);
    }
    musae_progress_finish(&pr, NULL);
    musae_store_close_writer(w, 1);
    LOG_INFO("%s: %lld rows of d=%d, %d planted directions, k_true=%d", out, (long long)rows, d, G, kt);
    for (int l = 0; l < spec.n_layers; l++) free(buf[l]);
    free(dirs);
    free(cdf);
    free(rate);
    free(realised);
    free(present);
    free(sigma);
    free(mu);
    return 0;
}
