/* Chroma, key and chords (none of the packaged libraries has them).
 *
 * Chroma: every STFT bin between DSP_CHROMA_FMIN and DSP_CHROMA_FMAX gives its energy |S|² to pitch classes by
 * its frequency on the equal-tempered scale (A4 = 440 Hz, no tuning estimate): a bin at fractional MIDI pitch
 * m splits its energy between floor(m) and floor(m)+1 linearly in the distance, so a tone between two
 * semitones counts for both. Below ~100 Hz one 7.8 Hz bin spans more than a semitone, so bass notes count
 * through their harmonics only. Each frame is divided by its largest bin (librosa's norm=inf); a window's or
 * the clip's chroma is the mean over its non-silent frames.
 *
 * Key: Krumhansl–Schmuckler — the Pearson correlation of the chroma with the 24 rotations of the
 * Krumhansl–Kessler major and minor profiles; the best rotation is the key and mode, its r the confidence.
 *
 * Chords: each frame's chroma averaged over ±DSP_CHORD_SMOOTH frames (about ±0.13 s) is compared by cosine
 * with 24 binary triad templates (root, third, fifth); the best one is the frame's chord when its cosine
 * reaches DSP_CHORD_MIN_COS (a flat chroma scores 0.5 against every triad), else no chord. A window's or the
 * clip's chords are its three most frequent chord ids (ties to the lower id), -1 padded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define DSP_CHROMA_FMIN 100.0
#define DSP_CHROMA_FMAX 5000.0
#define DSP_CHORD_SMOOTH 4
#define DSP_CHORD_MIN_COS 0.6

static const double k_major[12] = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
static const double k_minor[12] = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17};

static double pearson(const double *a, const double *b, int n) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; i++) ma += a[i], mb += b[i];
    ma /= n, mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0.0;
}

void dsp_key(const float *chroma12, int32_t *key, int32_t *mode, float *confidence) {
    double c[12], spread = 0;
    for (int i = 0; i < 12; i++) c[i] = chroma12[i];
    for (int i = 1; i < 12; i++) spread = fmax(spread, fabs(c[i] - c[0]));
    *key = *mode = -1;
    *confidence = 0;
    if (!(spread > 1e-6)) return; /* flat chroma (silence, white noise at a distance): no key */
    double best = -2;
    for (int m = 0; m < 2; m++)
        for (int k = 0; k < 12; k++) {
            double prof[12];
            for (int i = 0; i < 12; i++) prof[i] = (m ? k_minor : k_major)[(i - k + 12) % 12];
            const double r = pearson(c, prof, 12);
            if (r > best) best = r, *key = k, *mode = m;
        }
    *confidence = (float)best;
}

/* The three most frequent chords among counts[0..24) (no-chord excluded), -1 padded. */
static void top_chords(const int64_t *counts, int32_t *out) {
    int64_t left[24];
    memcpy(left, counts, sizeof left);
    for (int j = 0; j < MUSAE_DESC_CHORDS; j++) {
        int best = -1;
        for (int i = 0; i < 24; i++)
            if (left[i] > 0 && (best < 0 || left[i] > left[best])) best = i;
        out[j] = best;
        if (best >= 0) left[best] = 0;
    }
}

void dsp_chroma(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    const int64_t F = c->n_frames, W = c->n_windows;
    /* bin -> (lower pitch class, its weight); the upper class gets 1 - weight */
    int lo_pc[DSP_BINS];
    float lo_w[DSP_BINS];
    for (int k = 0; k < DSP_BINS; k++) {
        const double f = (double)k * c->rate / DSP_NFFT;
        lo_pc[k] = -1;
        if (f < DSP_CHROMA_FMIN || f > DSP_CHROMA_FMAX) continue;
        const double m = 69.0 + 12.0 * log2(f / 440.0), fl = floor(m);
        lo_pc[k] = ((int)fl % 12 + 12) % 12;
        lo_w[k] = (float)(1.0 - (m - fl));
    }
    float *ch = musae_xcalloc((size_t)F * 12, sizeof(float)); /* per-frame max-normalised chroma */
    uint8_t *live = musae_xcalloc((size_t)F, 1);
    for (int64_t f = 0; f < F; f++) {
        if (c->frame_ms[f] < DSP_SILENT_MS) continue;
        const float *m = c->mag + f * DSP_BINS;
        double acc[12] = {0};
        for (int k = 0; k < DSP_BINS; k++) {
            if (lo_pc[k] < 0) continue;
            const double e = (double)m[k] * m[k];
            acc[lo_pc[k]] += e * lo_w[k];
            acc[(lo_pc[k] + 1) % 12] += e * (1.0 - lo_w[k]);
        }
        double mx = 0;
        for (int i = 0; i < 12; i++) mx = fmax(mx, acc[i]);
        if (!(mx > 0)) continue;
        for (int i = 0; i < 12; i++) ch[f * 12 + i] = (float)(acc[i] / mx);
        live[f] = 1;
    }

    double clip_sum[12] = {0};
    int64_t clip_n = 0;
    double *wsum = musae_xcalloc((size_t)W * 12, sizeof(double));
    int64_t *wn = musae_xcalloc((size_t)W, sizeof(int64_t));
    int64_t clip_counts[24] = {0};
    int64_t *wcounts = musae_xcalloc((size_t)W * 24, sizeof(int64_t));
    for (int64_t f = 0; f < F; f++) {
        if (!live[f]) continue;
        const int32_t w = c->frame_window[f];
        for (int i = 0; i < 12; i++) clip_sum[i] += ch[f * 12 + i], wsum[w * 12 + i] += ch[f * 12 + i];
        clip_n++, wn[w]++;
        /* the frame's chord from its smoothed chroma */
        double s[12] = {0}, norm = 0;
        for (int64_t g = f - DSP_CHORD_SMOOTH; g <= f + DSP_CHORD_SMOOTH; g++)
            if (g >= 0 && g < F && live[g])
                for (int i = 0; i < 12; i++) s[i] += ch[g * 12 + i];
        for (int i = 0; i < 12; i++) norm += s[i] * s[i];
        norm = sqrt(norm);
        int best = 0;
        double best_cos = -1;
        for (int id = 0; id < 24; id++) { /* strict >: a tie goes to the lower id */
            const int root = id % 12, third = id < 12 ? 4 : 3;
            const double cosv = (s[root] + s[(root + third) % 12] + s[(root + 7) % 12]) / (sqrt(3.0) * norm);
            if (cosv > best_cos) best = id, best_cos = cosv;
        }
        if (best_cos >= DSP_CHORD_MIN_COS) clip_counts[best]++, wcounts[w * 24 + best]++;
    }
    for (int i = 0; i < 12; i++) clip->chroma[i] = clip_n ? (float)(clip_sum[i] / clip_n) : 0.0f;
    dsp_key(clip->chroma, &clip->key, &clip->mode, &clip->key_confidence);
    top_chords(clip_counts, clip->chords);
    for (int64_t w = 0; w < W; w++) {
        for (int i = 0; i < 12; i++) win[w].chroma[i] = wn[w] ? (float)(wsum[w * 12 + i] / wn[w]) : 0.0f;
        dsp_key(win[w].chroma, &win[w].key, &win[w].mode, &win[w].key_confidence);
        top_chords(wcounts + w * 24, win[w].chords);
    }
    free(ch), free(live), free(wsum), free(wn), free(wcounts);
}
