#include "model/clap_audio_fe.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/json.h"

/* librosa / HF "slaney" mel scale: linear below 1 kHz, logarithmic above */
static double hz_to_mel(double f) {
    const double logstep = 27.0 / log(6.4);
    return f >= 1000.0 ? 15.0 + log(f / 1000.0) * logstep : 3.0 * f / 200.0;
}
static double mel_to_hz(double m) {
    const double logstep = log(6.4) / 27.0;
    return m >= 15.0 ? 1000.0 * exp(logstep * (m - 15.0)) : 200.0 * m / 3.0;
}

/* np.linspace(a, b, n)[i]: arange·step + start, the last one exactly b */
static double linspace(double a, double b, int64_t n, int64_t i) {
    return i == n - 1 ? b : (double)i * ((b - a) / (double)(n - 1)) + a;
}

/* audio_utils.mel_filter_bank(norm="slaney", mel_scale="slaney"), stored [n_mels, n_bins] */
static void build_mel_bank(musae_clap_fe *fe) {
    const int nb = fe->n_fft / 2 + 1, nm = fe->n_mels;
    double *ff = musae_xmalloc((size_t)(nm + 2) * sizeof *ff);
    const double m0 = hz_to_mel(fe->fmin), m1 = hz_to_mel(fe->fmax);
    for (int i = 0; i < nm + 2; i++) ff[i] = mel_to_hz(linspace(m0, m1, nm + 2, i));
    fe->mel = musae_xcalloc((size_t)nm * nb, sizeof *fe->mel);
    for (int k = 0; k < nb; k++) {
        const double fk = linspace(0.0, (double)(fe->sampling_rate / 2), nb, k); /* sr // 2, as HF */
        for (int i = 0; i < nm; i++) {
            const double down = -(ff[i] - fk) / (ff[i + 1] - ff[i]);
            const double up = (ff[i + 2] - fk) / (ff[i + 2] - ff[i + 1]);
            const double w = fmax(0.0, fmin(down, up));
            fe->mel[(size_t)i * nb + k] = w * (2.0 / (ff[i + 2] - ff[i]));
        }
    }
    free(ff);
}

/* One numeric field of the config: present, a number, within [lo, hi], an integer when asked. */
static int num_field(const cJSON *root, const char *path, const char *key, double lo, double hi, int integer,
                     double *out, char *err, size_t errlen) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        (integer && v->valuedouble != floor(v->valuedouble))) {
        snprintf(err, errlen, "%s: %s: expected %s in [%g, %g]", path, key, integer ? "an integer" : "a number", lo,
                 hi);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

int musae_clap_fe_open(musae_clap_fe *fe, const char *dir, char *err, size_t errlen) {
    memset(fe, 0, sizeof *fe);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    cJSON *root;
    if (musae_json_read_object(path, 0, &root, err, errlen)) return -1;
    int rc = -1;
    double sr, n_fft, hop, n_mels, fmin_, fmax_, secs;
    if (num_field(root, path, "sampling_rate", 1000, 384000, 1, &sr, err, errlen) ||
        num_field(root, path, "fft_window_size", 16, 65536, 1, &n_fft, err, errlen) ||
        num_field(root, path, "hop_length", 1, 65536, 1, &hop, err, errlen) ||
        num_field(root, path, "feature_size", 1, 1024, 1, &n_mels, err, errlen) ||
        num_field(root, path, "frequency_min", 0, sr / 2, 0, &fmin_, err, errlen) ||
        num_field(root, path, "frequency_max", fmin_, sr / 2, 0, &fmax_, err, errlen) ||
        num_field(root, path, "max_length_s", 0.01, 3600, 0, &secs, err, errlen))
        goto done;
    if ((int)n_fft % 2) {
        snprintf(err, errlen, "%s: fft_window_size: %d is odd (HF's centred frames assume an even window)", path,
                 (int)n_fft);
        goto done;
    }
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "truncation");
    if (!cJSON_IsString(tr) || strcmp(tr->valuestring, "rand_trunc")) {
        snprintf(err, errlen, "%s: truncation: \"%s\" is not supported (only \"rand_trunc\", the non-fusion path of "
                 "clap-htsat-unfused and the larger_clap_* checkpoints)", path,
                 cJSON_IsString(tr) ? tr->valuestring : "?");
        goto done;
    }
    const cJSON *pad = cJSON_GetObjectItemCaseSensitive(root, "padding");
    const char *ps = cJSON_IsString(pad) ? pad->valuestring : "repeatpad"; /* HF's default */
    fe->padding = !strcmp(ps, "repeatpad") ? CLAP_PAD_REPEATPAD : !strcmp(ps, "repeat") ? CLAP_PAD_REPEAT
                                                                                         : CLAP_PAD_ZEROS;
    fe->sampling_rate = (int)sr;
    fe->n_fft = (int)n_fft;
    fe->hop = (int)hop;
    fe->n_mels = (int)n_mels;
    fe->fmin = fmin_;
    fe->fmax = fmax_;
    /* HF: nb_max_samples = max_length_s * sampling_rate (an int in every checkpoint) */
    fe->max_samples = (int64_t)(secs * sr);
    if (fe->max_samples <= fe->n_fft / 2) {
        snprintf(err, errlen, "%s: max_length_s: %g s is shorter than half a window", path, secs);
        goto done;
    }
    fe->frames = fe->max_samples / fe->hop + 1;
    fe->window = musae_xmalloc((size_t)fe->n_fft * sizeof *fe->window);
    for (int i = 0; i < fe->n_fft; i++) fe->window[i] = 0.5 - 0.5 * cos(2.0 * M_PI * i / fe->n_fft);
    build_mel_bank(fe);
    double *in = fftw_malloc((size_t)fe->n_fft * sizeof *in);
    fftw_complex *out = fftw_malloc((size_t)(fe->n_fft / 2 + 1) * sizeof *out);
    fe->plan = fftw_plan_dft_r2c_1d(fe->n_fft, in, out, FFTW_ESTIMATE); /* ESTIMATE: the same plan every run */
    fftw_free(in);
    fftw_free(out);
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) musae_clap_fe_close(fe);
    return rc;
}

void musae_clap_fe_close(musae_clap_fe *fe) {
    if (fe->plan) fftw_destroy_plan(fe->plan);
    free(fe->window);
    free(fe->mel);
    memset(fe, 0, sizeof *fe);
}

void musae_clap_fe_features(const musae_clap_fe *fe, const float *x, int64_t n, float *out) {
    MUSAE_ASSERT(n >= 1, "CLAP features of %lld samples", (long long)n);
    const int64_t L = fe->max_samples, half = fe->n_fft / 2, nb = fe->n_fft / 2 + 1;
    /* the 10 s signal (float64, as HF promotes it), then reflect padding by half a window each side */
    double *sig = musae_xmalloc((size_t)(L + 2 * half) * sizeof *sig), *s = sig + half;
    if (n >= L) {
        for (int64_t i = 0; i < L; i++) s[i] = x[i];
    } else {
        const int64_t reps = fe->padding == CLAP_PAD_REPEATPAD ? L / n : fe->padding == CLAP_PAD_REPEAT ? L / n + 1 : 1;
        const int64_t filled = reps * n < L ? reps * n : L;
        for (int64_t i = 0; i < L; i++) s[i] = i < filled ? x[i % n] : 0.0;
    }
    for (int64_t i = 1; i <= half; i++) {
        s[-i] = s[i];
        s[L - 1 + i] = s[L - 1 - i];
    }
#pragma omp parallel
    {
        double *buf = fftw_malloc((size_t)fe->n_fft * sizeof *buf);
        fftw_complex *spec = fftw_malloc((size_t)nb * sizeof *spec);
        double *pw = musae_xmalloc((size_t)nb * sizeof *pw);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < fe->frames; t++) {
            const double *fr = sig + t * fe->hop;
            for (int i = 0; i < fe->n_fft; i++) buf[i] = fr[i] * fe->window[i];
            fftw_execute_dft_r2c(fe->plan, buf, spec);
            for (int64_t k = 0; k < nb; k++) {
                /* HF stores the spectrum as complex64, then takes |.| in float64 */
                const double re = (float)spec[k][0], im = (float)spec[k][1];
                const double a = hypot(re, im);
                pw[k] = a * a;
            }
            for (int m = 0; m < fe->n_mels; m++) {
                const double *w = fe->mel + (size_t)m * nb;
                double acc = 0.0;
                for (int64_t k = 0; k < nb; k++) acc += w[k] * pw[k];
                out[t * fe->n_mels + m] = (float)(10.0 * log10(fmax(acc, 1e-10)));
            }
        }
        free(pw);
        fftw_free(spec);
        fftw_free(buf);
    }
    free(sig);
}
