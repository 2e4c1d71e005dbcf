/* Percussive share of the energy by median-filter HPSS (Fitzgerald 2010, as librosa.decompose.hpss): the
 * harmonic estimate H is the magnitude spectrogram median-filtered along time, the percussive estimate P the
 * same along frequency; soft Wiener masks P²/(P²+H²) and H²/(P²+H²) split each bin's energy |S|², and
 * percussive_ratio = E_P / (E_P + E_H) over the frames of a window or of the clip (0 for silence).
 * Kernels: DSP_HPSS_T frames (about 0.54 s) along time and DSP_HPSS_F bins (about 240 Hz) along frequency;
 * at the edges the median is over the part of the kernel inside the spectrogram. Only bins up to
 * DSP_HPSS_MAX_HZ take part (the medians are most of describe's time, and above 8 kHz music holds little of
 * the energy the ratio weighs). */
#include <stdlib.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define DSP_HPSS_T 17
#define DSP_HPSS_F 31
#define DSP_HPSS_MAX_HZ 8000.0

/* out[i] = median of x[(i-h .. i+h) ∩ [0, n)] for the strided sequence x[i·stride], kept as a sorted window
 * that gains one value and loses one per step (O(kernel) per output, not O(kernel log kernel); inside the
 * sequence the incoming value overwrites the outgoing one and shifts to its rank). */
static void median_filter(const float *x, int64_t n, int64_t stride, int h, float *out, int64_t out_stride,
                          float *buf) {
    int m = 0;
    const int64_t first = n < h + 1 ? n : h + 1;
    for (int64_t j = 0; j < first; j++) { /* window of position 0: x[0 .. h] */
        const float v = x[j * stride];
        int p = m;
        while (p > 0 && buf[p - 1] > v) buf[p] = buf[p - 1], p--;
        buf[p] = v, m++;
    }
    for (int64_t i = 0; i < n; i++) {
        out[i * out_stride] = m % 2 ? buf[m / 2] : 0.5f * (buf[m / 2 - 1] + buf[m / 2]);
        const int64_t drop = i - h, add = i + 1 + h;
        if (drop >= 0 && add < n) { /* the interior: the new value takes the old one's place and moves to its rank */
            const float v = x[drop * stride], u = x[add * stride];
            int p = 0;
            while (p < m - 1 && buf[p] != v) p++;
            while (p > 0 && buf[p - 1] > u) buf[p] = buf[p - 1], p--;
            while (p < m - 1 && buf[p + 1] < u) buf[p] = buf[p + 1], p++;
            buf[p] = u;
            continue;
        }
        if (drop >= 0) {
            const float v = x[drop * stride];
            int p = 0;
            while (p < m - 1 && buf[p] != v) p++; /* present: it was inserted when it entered */
            memmove(buf + p, buf + p + 1, (size_t)(m - p - 1) * sizeof *buf);
            m--;
        }
        if (add < n) {
            const float v = x[add * stride];
            int p = m;
            while (p > 0 && buf[p - 1] > v) buf[p] = buf[p - 1], p--;
            buf[p] = v, m++;
        }
    }
}

void dsp_hpss(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    const int64_t F = c->n_frames;
    int64_t B = (int64_t)(DSP_HPSS_MAX_HZ * DSP_NFFT / c->rate) + 1;
    if (B > DSP_BINS) B = DSP_BINS;
    /* the band as [B, F] so the time-direction medians read contiguous rows */
    float *S = musae_xmalloc((size_t)(F * B) * sizeof(float));
    for (int64_t f = 0; f < F; f++)
        for (int64_t k = 0; k < B; k++) S[k * F + f] = c->mag[f * DSP_BINS + k];
    float *H = musae_xmalloc((size_t)(F * B) * sizeof(float)); /* [B, F] */
    float *P = musae_xmalloc((size_t)(F * B) * sizeof(float)); /* [F, B] */
    float buf[DSP_HPSS_F + DSP_HPSS_T + 2];
    for (int64_t k = 0; k < B; k++) median_filter(S + k * F, F, 1, DSP_HPSS_T / 2, H + k * F, 1, buf);
    for (int64_t f = 0; f < F; f++) median_filter(c->mag + f * DSP_BINS, B, 1, DSP_HPSS_F / 2, P + f * B, 1, buf);
    double ep_all = 0, eh_all = 0;
    double *ep = musae_xcalloc((size_t)c->n_windows, sizeof(double)), *eh = musae_xcalloc((size_t)c->n_windows, sizeof(double));
    for (int64_t f = 0; f < F; f++) {
        double p_sum = 0, h_sum = 0;
        for (int64_t k = 0; k < B; k++) {
            const double p2 = (double)P[f * B + k] * P[f * B + k], h2 = (double)H[k * F + f] * H[k * F + f];
            const double e = (double)S[k * F + f] * S[k * F + f];
            if (p2 + h2 > 0) p_sum += e * p2 / (p2 + h2), h_sum += e * h2 / (p2 + h2);
        }
        ep_all += p_sum, eh_all += h_sum;
        ep[c->frame_window[f]] += p_sum, eh[c->frame_window[f]] += h_sum;
    }
    clip->percussive_ratio = ep_all + eh_all > 0 ? (float)(ep_all / (ep_all + eh_all)) : 0.0f;
    for (int64_t w = 0; w < c->n_windows; w++)
        win[w].percussive_ratio = ep[w] + eh[w] > 0 ? (float)(ep[w] / (ep[w] + eh[w])) : 0.0f;
    free(ep), free(eh), free(H), free(P), free(S);
}
