/* Loudness (libebur128, EBU R128 / ITU-R BS.1770-4) of the mono clip: one state per clip in modes I and LRA,
 * fed one window at a time; the true peak is libebur128 1.2.6's own (below), computed here.
 *
 * Clip: integrated loudness (gated), loudness range (EBU Tech 3342, needs 3 s short-term blocks: 0 on shorter
 * clips), true peak (4x oversampled, over the clip). Window: the ungated loudness of exactly that window
 * (ebur128_loudness_window over its length), the true peak within it, and the clip's loudness range (a 1 s
 * window holds no 3 s block). The signal is the mono downmix measured as one channel: a stereo file with the
 * same signal in both channels reads 3.01 LU below a stereo meter. Silence reads the floors: -70 LUFS (the
 * absolute gate), -120 dBTP.
 *
 * True peak: libebur128's true-peak mode (interp_create(49, 4) and interp_process in its ebur128.c, for rates
 * below 96 kHz) is a 49-tap Hann-windowed sinc in four phases of at most 13 taps over a delay line carried
 * across calls, double accumulation in tap order, each output rounded to float; the peak is the largest |output|
 * or |sample|. That is most of its cost; here the same filter runs over blocks of samples (the same sums in the
 * same order, so the same numbers), and skips a block whose outputs cannot exceed the peak already found: each
 * phase's output is at most the sum of its |coefficients| times the block's largest |sample| within reach. */
#include <ebur128.h>
#include <math.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define TP_TAPS 49
#define TP_FACTOR 4
#define TP_DELAY ((TP_TAPS + TP_FACTOR - 1) / TP_FACTOR) /* 13: samples a phase reaches back */
#define TP_BLOCK 64

typedef struct {
    double coeff[TP_FACTOR][TP_DELAY];
    int index[TP_FACTOR][TP_DELAY]; /* how many samples back each tap reads */
    int count[TP_FACTOR];
    double l1; /* the largest sum of |coeff| over a phase */
} tp_filter;

/* libebur128 1.2.6's interp_create(49, 4, ·) */
static void tp_filter_init(tp_filter *fl) {
    memset(fl, 0, sizeof *fl);
    for (int j = 0; j < TP_TAPS; j++) {
        const double m = (double)j - (double)(TP_TAPS - 1) / 2.0;
        double c = 1.0;
        if (fabs(m) > 0.000001) c = sin(m * M_PI / TP_FACTOR) / (m * M_PI / TP_FACTOR);
        c *= 0.5 * (1 - cos(2 * M_PI * j / (TP_TAPS - 1)));
        if (fabs(c) > 0.000001) {
            const int f = j % TP_FACTOR, t = fl->count[f]++;
            fl->coeff[f][t] = c, fl->index[f][t] = j / TP_FACTOR;
        }
    }
    for (int f = 0; f < TP_FACTOR; f++) {
        double l1 = 0;
        for (int t = 0; t < fl->count[f]; t++) l1 += fabs(fl->coeff[f][t]);
        fl->l1 = l1 > fl->l1 ? l1 : fl->l1;
    }
}

/* The true peak (linear) of x[a, b), the delay line holding the samples before a (zeros before the clip). */
static double true_peak(const tp_filter *fl, const float *x, int64_t a, int64_t b) {
    double peak = 0;
    for (int64_t i = a; i < b; i++) peak = fabs((double)x[i]) > peak ? fabs((double)x[i]) : peak;
    float z[TP_DELAY - 1 + TP_BLOCK];
    double acc[TP_BLOCK];
    for (int64_t b0 = a; b0 < b; b0 += TP_BLOCK) {
        const int len = b - b0 < TP_BLOCK ? (int)(b - b0) : TP_BLOCK;
        float reach = 0; /* the largest |sample| any output of the block reads */
        for (int i = 0; i < TP_DELAY - 1 + len; i++) {
            const int64_t s = b0 - (TP_DELAY - 1) + i;
            z[i] = s >= 0 ? x[s] : 0.0f;
            reach = fabsf(z[i]) > reach ? fabsf(z[i]) : reach;
        }
        if ((double)reach * fl->l1 * (1 + 1e-6) <= peak) continue;
        for (int f = 0; f < TP_FACTOR; f++) {
            for (int i = 0; i < len; i++) acc[i] = 0.0;
            for (int t = 0; t < fl->count[f]; t++) {
                const double c = fl->coeff[f][t];
                const float *zt = z + TP_DELAY - 1 - fl->index[f][t];
                for (int i = 0; i < len; i++) acc[i] += (double)zt[i] * c;
            }
            for (int i = 0; i < len; i++) {
                const double v = fabs((double)(float)acc[i]);
                peak = v > peak ? v : peak;
            }
        }
    }
    return peak;
}

static float lufs_or_floor(double l) { return isfinite(l) && l > -70.0 ? (float)l : -70.0f; }
static float dbtp(double peak) { return dsp_db(peak * peak, -120.0f); }

void dsp_loudness(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    ebur128_state *st = ebur128_init(1, (unsigned long)c->rate, EBUR128_MODE_I | EBUR128_MODE_LRA);
    MUSAE_ASSERT(st, "libebur128 could not create a state at %d Hz", c->rate);
    tp_filter fl;
    tp_filter_init(&fl);
    double tp_clip = 0;
    int64_t a, b;
    for (int64_t w = 0; w < c->n_windows; w++) {
        dsp_window_span(c->n, c->rate, w, &a, &b);
        MUSAE_ASSERT(b - a <= 3 * (int64_t)c->rate, "window of %lld samples", (long long)(b - a));
        MUSAE_ASSERT(ebur128_add_frames_float(st, c->x + a, (size_t)(b - a)) == EBUR128_SUCCESS, "ebur128_add_frames_float");
        double l = -HUGE_VAL;
        const unsigned long ms = (unsigned long)((b - a) * 1000 / c->rate);
        if (ebur128_loudness_window(st, ms, &l) != EBUR128_SUCCESS) l = -HUGE_VAL;
        const double tp = true_peak(&fl, c->x, a, b);
        tp_clip = tp > tp_clip ? tp : tp_clip;
        win[w].lufs = lufs_or_floor(l);
        win[w].true_peak_dbtp = dbtp(tp);
    }
    double I = -HUGE_VAL, lra = 0;
    if (ebur128_loudness_global(st, &I) != EBUR128_SUCCESS) I = -HUGE_VAL;
    if (ebur128_loudness_range(st, &lra) != EBUR128_SUCCESS || !isfinite(lra)) lra = 0;
    clip->lufs = lufs_or_floor(I);
    clip->loudness_range_lu = (float)lra;
    clip->true_peak_dbtp = dbtp(tp_clip);
    for (int64_t w = 0; w < c->n_windows; w++) win[w].loudness_range_lu = clip->loudness_range_lu;
    ebur128_destroy(&st);
}
