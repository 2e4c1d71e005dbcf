/* Pitch (aubio 0.4.9 "yinfast": YIN with the difference function by FFT, the same f0 as "yin" at FFT cost;
 * "yinfft" reports a confidence of 0 on every frame in 0.4.9, so it cannot tell voiced from unvoiced. Buffer
 * DSP_PITCH_BUF, hop DSP_PITCH_HOP, in Hz, silence gate -60 dB): a frame is voiced when aubio gives a
 * positive f0 with confidence (1 - the YIN minimum) at least DSP_PITCH_MIN_CONF. f0_median_hz is the
 * median f0 of the voiced frames of the clip or window (NaN when none is voiced), voiced_fraction the share
 * of its frames that are voiced. A frame belongs to the window holding the start of its hop. */
#include <aubio/aubio.h>
#include <math.h>
#include <stdlib.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define DSP_PITCH_BUF 1024 /* lags up to 512: f0 down to 62.5 Hz */
#define DSP_PITCH_HOP 512
#define DSP_PITCH_MIN_CONF 0.8f

void dsp_pitch(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    const int64_t W = c->n_windows, hops = (c->n + DSP_PITCH_HOP - 1) / DSP_PITCH_HOP;
    aubio_pitch_t *p;
#pragma omp critical(musae_fftw)
    p = new_aubio_pitch("yinfast", DSP_PITCH_BUF, DSP_PITCH_HOP, (uint_t)c->rate);
    MUSAE_ASSERT(p, "aubio could not create its yinfast pitch object");
    aubio_pitch_set_unit(p, "Hz");
    aubio_pitch_set_silence(p, -60.0f);
    fvec_t *in = new_fvec(DSP_PITCH_HOP), *out = new_fvec(1);
    float *f0 = musae_xmalloc((size_t)hops * sizeof(float));  /* voiced f0 of each hop, NaN if unvoiced */
    int32_t *fw = musae_xmalloc((size_t)hops * sizeof(int32_t));
    int64_t *w_hops = musae_xcalloc((size_t)W, sizeof(int64_t));
    for (int64_t j = 0; j < hops; j++) {
        const int64_t s0 = j * DSP_PITCH_HOP;
        for (int i = 0; i < DSP_PITCH_HOP; i++) in->data[i] = s0 + i < c->n ? c->x[s0 + i] : 0.0f;
        aubio_pitch_do(p, in, out);
        const float hz = out->data[0], conf = aubio_pitch_get_confidence(p);
        f0[j] = hz > 0 && conf >= DSP_PITCH_MIN_CONF && isfinite(hz) ? hz : NAN;
        int64_t w = s0 / c->rate;
        fw[j] = (int32_t)(w < W ? w : W - 1);
        w_hops[fw[j]]++;
    }
#pragma omp critical(musae_fftw)
    del_aubio_pitch(p);
    del_fvec(in), del_fvec(out);

    float *v = musae_xmalloc((size_t)hops * sizeof(float));
    int64_t nv = 0;
    for (int64_t j = 0; j < hops; j++)
        if (!isnan(f0[j])) v[nv++] = f0[j];
    clip->voiced_fraction = (float)nv / (float)hops;
    clip->f0_median_hz = nv ? dsp_median(v, nv) : NAN;
    for (int64_t w = 0, j = 0; w < W; w++) { /* fw is non-decreasing: each window's hops are one run */
        int64_t m = 0;
        for (; j < hops && fw[j] == w; j++)
            if (!isnan(f0[j])) v[m++] = f0[j];
        win[w].voiced_fraction = w_hops[w] ? (float)m / (float)w_hops[w] : 0.0f;
        win[w].f0_median_hz = m ? dsp_median(v, m) : NAN;
    }
    free(f0), free(fw), free(w_hops), free(v);
}
