/* The STFT every spectral family reads, the window layout, and small helpers (dsp.h). */
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

struct dsp_work {
    fftwf_plan plan;
    float *in;            /* [DSP_NFFT] */
    fftwf_complex *out;   /* [DSP_BINS] */
    float win[DSP_NFFT];  /* periodic Hann (librosa's get_window("hann", n, fftbins=True)) */
    double win_ss;        /* sum of win^2 */
};

int64_t dsp_n_windows(int64_t n, int rate) {
    const int64_t full = n / rate, rest = n % rate, w = full + (2 * rest >= rate ? 1 : 0);
    return w > 0 ? w : 1; /* a clip shorter than half a second is one window */
}

void dsp_window_span(int64_t n, int rate, int64_t w, int64_t *a, int64_t *b) {
    *a = w * rate;
    /* the last window also takes a tail too short to be a window of its own, so windows partition the clip */
    *b = w == dsp_n_windows(n, rate) - 1 ? n : (w + 1) * rate;
}

dsp_work *dsp_work_new(void) {
    dsp_work *w = musae_xcalloc(1, sizeof *w);
    w->in = fftwf_malloc(sizeof(float) * DSP_NFFT);
    w->out = fftwf_malloc(sizeof(fftwf_complex) * DSP_BINS);
    MUSAE_ASSERT(w->in && w->out, "fftwf_malloc failed");
#pragma omp critical(musae_fftw)
    w->plan = fftwf_plan_dft_r2c_1d(DSP_NFFT, w->in, w->out, FFTW_ESTIMATE);
    MUSAE_ASSERT(w->plan, "FFTW could not plan a %d-point transform", DSP_NFFT);
    w->win_ss = 0;
    for (int i = 0; i < DSP_NFFT; i++) {
        w->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / DSP_NFFT));
        w->win_ss += (double)w->win[i] * w->win[i];
    }
    return w;
}

void dsp_work_free(dsp_work *w) {
    if (!w) return;
#pragma omp critical(musae_fftw)
    fftwf_destroy_plan(w->plan);
    fftwf_free(w->in);
    fftwf_free(w->out);
    free(w);
}

void dsp_stft(dsp_work *w, dsp_clip *c) {
    const int64_t F = 1 + c->n / DSP_HOP;
    c->n_frames = F;
    c->mag = musae_xmalloc((size_t)F * DSP_BINS * sizeof(float));
    c->frame_ms = musae_xmalloc((size_t)F * sizeof(float));
    c->frame_window = musae_xmalloc((size_t)F * sizeof(int32_t));
    c->n_windows = dsp_n_windows(c->n, c->rate);
    for (int64_t f = 0; f < F; f++) {
        /* frame f is centred on sample f·hop; samples outside the clip are zeros */
        const int64_t s0 = f * DSP_HOP - DSP_NFFT / 2;
        double ss = 0;
        for (int i = 0; i < DSP_NFFT; i++) {
            const int64_t s = s0 + i;
            const float v = s >= 0 && s < c->n ? c->x[s] * w->win[i] : 0.0f;
            w->in[i] = v;
            ss += (double)v * v;
        }
        c->frame_ms[f] = (float)(ss / w->win_ss);
        fftwf_execute_dft_r2c(w->plan, w->in, w->out);
        float *m = c->mag + f * DSP_BINS;
        for (int k = 0; k < DSP_BINS; k++) m[k] = hypotf(w->out[k][0], w->out[k][1]);
        /* the window holding the centre; a centre in a dropped short tail joins the last window */
        int64_t win = f * DSP_HOP / c->rate;
        if (win >= c->n_windows) win = c->n_windows - 1;
        c->frame_window[f] = (int32_t)win;
    }
}

void dsp_clip_free(dsp_clip *c) {
    free(c->mag), free(c->frame_ms), free(c->frame_window);
    c->mag = NULL, c->frame_ms = NULL, c->frame_window = NULL;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

float dsp_median(float *x, int64_t n) {
    qsort(x, (size_t)n, sizeof *x, cmp_float);
    return n % 2 ? x[n / 2] : 0.5f * (x[n / 2 - 1] + x[n / 2]);
}

float dsp_db(double ms, float floor_db) {
    if (!(ms > 0)) return floor_db;
    const double db = 10.0 * log10(ms);
    return db < floor_db ? floor_db : (float)db;
}
