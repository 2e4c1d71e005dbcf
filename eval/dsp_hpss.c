/* Percussive share of the energy by median-filter HPSS (Fitzgerald 2010, as librosa.decompose.hpss): the
 * harmonic estimate H is the magnitude spectrogram median-filtered along time, the percussive estimate P the
 * same along frequency; soft Wiener masks P²/(P²+H²) and H²/(P²+H²) split each bin's energy |S|², and
 * percussive_ratio = E_P / (E_P + E_H) over the frames of a window or of the clip (0 for silence).
 * Kernels: DSP_HPSS_T frames (about 0.74 s) along time and DSP_HPSS_F bins (about 320 Hz) along frequency,
 * librosa's default spans at its default resolution; at the edges the median is over the part of the kernel
 * inside the spectrogram. */
#include <stdlib.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define DSP_HPSS_T 23
#define DSP_HPSS_F 41

/* out[i] = median of x[(i-h .. i+h) ∩ [0, n)] for the strided sequence x[i·stride], kept as a sorted window
 * that gains one value and loses one per step (O(kernel) per output, not O(kernel log kernel)). */
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
    const int64_t F = c->n_frames, B = DSP_BINS;
    float *H = musae_xmalloc((size_t)(F * B) * sizeof(float));
    float *P = musae_xmalloc((size_t)(F * B) * sizeof(float));
    float buf[DSP_HPSS_F + DSP_HPSS_T + 2];
    for (int64_t k = 0; k < B; k++) median_filter(c->mag + k, F, B, DSP_HPSS_T / 2, H + k, B, buf);
    for (int64_t f = 0; f < F; f++) median_filter(c->mag + f * B, B, 1, DSP_HPSS_F / 2, P + f * B, 1, buf);
    double ep_all = 0, eh_all = 0;
    double *ep = musae_xcalloc((size_t)c->n_windows, sizeof(double)), *eh = musae_xcalloc((size_t)c->n_windows, sizeof(double));
    for (int64_t f = 0; f < F; f++) {
        double p_sum = 0, h_sum = 0;
        for (int64_t k = 0; k < B; k++) {
            const double p2 = (double)P[f * B + k] * P[f * B + k], h2 = (double)H[f * B + k] * H[f * B + k];
            const double e = (double)c->mag[f * B + k] * c->mag[f * B + k];
            if (p2 + h2 > 0) p_sum += e * p2 / (p2 + h2), h_sum += e * h2 / (p2 + h2);
        }
        ep_all += p_sum, eh_all += h_sum;
        ep[c->frame_window[f]] += p_sum, eh[c->frame_window[f]] += h_sum;
    }
    clip->percussive_ratio = ep_all + eh_all > 0 ? (float)(ep_all / (ep_all + eh_all)) : 0.0f;
    for (int64_t w = 0; w < c->n_windows; w++)
        win[w].percussive_ratio = ep[w] + eh[w] > 0 ? (float)(ep[w] / (ep[w] + eh[w])) : 0.0f;
    free(ep), free(eh), free(H), free(P);
}
