/* Spectral shape (centroid, rolloff, flatness, bandwidth) from the magnitude spectrogram, and zero-crossing
 * rate and RMS from the samples. The per-frame definitions are librosa's (spectral_centroid, _bandwidth with
 * p = 2, _rolloff at 85 % of the magnitude, _flatness on the power with amin 1e-10); a window's or the clip's
 * value is the mean over its non-silent frames (silent frames have no shape: 0 Hz, flatness 1 when every
 * frame is silent). */
#include <math.h>
#include <stdlib.h>

#include "eval/dsp.h"
#include "host/core/check.h"

typedef struct {
    double centroid, rolloff, flatness, bandwidth;
    int64_t frames;
} shape_sum;

static void shape_put(const shape_sum *s, musae_desc *d) {
    if (s->frames == 0) {
        d->spectral_centroid_hz = d->spectral_rolloff_hz = d->spectral_bandwidth_hz = 0;
        d->spectral_flatness = 1;
        return;
    }
    d->spectral_centroid_hz = (float)(s->centroid / s->frames);
    d->spectral_rolloff_hz = (float)(s->rolloff / s->frames);
    d->spectral_flatness = (float)(s->flatness / s->frames);
    d->spectral_bandwidth_hz = (float)(s->bandwidth / s->frames);
}

/* zero crossings (sign(0) counted as positive, as librosa's zero_pos) and the sum of squares of x[a, b) */
static void time_stats(const float *x, int64_t a, int64_t b, int64_t *zc, double *ss) {
    int64_t z = 0;
    double s = 0;
    for (int64_t i = a; i < b; i++) {
        s += (double)x[i] * x[i];
        if (i > 0 && (x[i] >= 0) != (x[i - 1] >= 0)) z++;
    }
    *zc = z, *ss = s;
}

void dsp_spectral(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    const double df = (double)c->rate / DSP_NFFT;
    shape_sum all = {0};
    shape_sum *ws = musae_xcalloc((size_t)c->n_windows, sizeof *ws);
    for (int64_t f = 0; f < c->n_frames; f++) {
        if (c->frame_ms[f] < DSP_SILENT_MS) continue;
        const float *m = c->mag + f * DSP_BINS;
        double sm = 0, sfm = 0, log_p = 0, sp = 0;
        for (int k = 0; k < DSP_BINS; k++) {
            sm += m[k];
            sfm += k * df * m[k];
            const float p = fmaxf(m[k] * m[k], 1e-10f);
            log_p += logf(p); /* float log: the flatness needs 1e-6 relative, not 1e-15 */
            sp += p;
        }
        if (!(sm > 0)) continue;
        const double centroid = sfm / sm;
        double var = 0, cum = 0, rolloff = 0;
        int rolled = 0;
        for (int k = 0; k < DSP_BINS; k++) {
            const double d = k * df - centroid;
            var += m[k] * d * d;
            cum += m[k];
            if (!rolled && cum >= 0.85 * sm) rolloff = k * df, rolled = 1;
        }
        const double flat = exp(log_p / DSP_BINS) / (sp / DSP_BINS);
        const double bw = sqrt(var / sm);
        shape_sum *t[2] = {&all, &ws[c->frame_window[f]]};
        for (int i = 0; i < 2; i++) {
            t[i]->centroid += centroid, t[i]->rolloff += rolloff, t[i]->flatness += flat, t[i]->bandwidth += bw;
            t[i]->frames++;
        }
    }
    shape_put(&all, clip);
    for (int64_t w = 0; w < c->n_windows; w++) shape_put(&ws[w], &win[w]);
    free(ws);

    int64_t zc_all = 0;
    double ss_all = 0;
    for (int64_t w = 0; w < c->n_windows; w++) {
        int64_t a, b, zc;
        double ss;
        dsp_window_span(c->n, c->rate, w, &a, &b);
        time_stats(c->x, a, b, &zc, &ss);
        win[w].zcr = (float)zc / (float)(b - a);
        win[w].rms_db = dsp_db(ss / (double)(b - a), -120.0f);
        zc_all += zc, ss_all += ss;
    }
    clip->zcr = (float)zc_all / (float)c->n;
    clip->rms_db = dsp_db(ss_all / (double)c->n, -120.0f);
}
