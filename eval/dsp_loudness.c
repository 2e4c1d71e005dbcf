/* Loudness (libebur128, EBU R128 / ITU-R BS.1770-4) of the mono clip: one state per clip in modes I, LRA and
 * true peak, fed one window at a time.
 *
 * Clip: integrated loudness (gated), loudness range (EBU Tech 3342, needs 3 s short-term blocks: 0 on shorter
 * clips), true peak (4x oversampled, over the clip). Window: the ungated loudness of exactly that window
 * (ebur128_loudness_window over its length), the true peak within it, and the clip's loudness range (a 1 s
 * window holds no 3 s block). The signal is the mono downmix measured as one channel: a stereo file with the
 * same signal in both channels reads 3.01 LU below a stereo meter. Silence reads the floors: -70 LUFS (the
 * absolute gate), -120 dBTP. */
#include <ebur128.h>
#include <math.h>

#include "eval/dsp.h"
#include "host/core/check.h"

static float lufs_or_floor(double l) { return isfinite(l) && l > -70.0 ? (float)l : -70.0f; }
static float dbtp(double peak) { return dsp_db(peak * peak, -120.0f); }

void dsp_loudness(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    ebur128_state *st = ebur128_init(1, (unsigned long)c->rate, EBUR128_MODE_I | EBUR128_MODE_LRA | EBUR128_MODE_TRUE_PEAK);
    MUSAE_ASSERT(st, "libebur128 could not create a state at %d Hz", c->rate);
    int64_t a, b;
    for (int64_t w = 0; w < c->n_windows; w++) {
        dsp_window_span(c->n, c->rate, w, &a, &b);
        MUSAE_ASSERT(b - a <= 3 * (int64_t)c->rate, "window of %lld samples", (long long)(b - a));
        MUSAE_ASSERT(ebur128_add_frames_float(st, c->x + a, (size_t)(b - a)) == EBUR128_SUCCESS, "ebur128_add_frames_float");
        double l = -HUGE_VAL, tp = 0;
        const unsigned long ms = (unsigned long)((b - a) * 1000 / c->rate);
        if (ebur128_loudness_window(st, ms, &l) != EBUR128_SUCCESS) l = -HUGE_VAL;
        if (ebur128_prev_true_peak(st, 0, &tp) != EBUR128_SUCCESS) tp = 0;
        win[w].lufs = lufs_or_floor(l);
        win[w].true_peak_dbtp = dbtp(tp);
    }
    double I = -HUGE_VAL, lra = 0, tp = 0;
    if (ebur128_loudness_global(st, &I) != EBUR128_SUCCESS) I = -HUGE_VAL;
    if (ebur128_loudness_range(st, &lra) != EBUR128_SUCCESS || !isfinite(lra)) lra = 0;
    if (ebur128_true_peak(st, 0, &tp) != EBUR128_SUCCESS) tp = 0;
    clip->lufs = lufs_or_floor(I);
    clip->loudness_range_lu = (float)lra;
    clip->true_peak_dbtp = dbtp(tp);
    for (int64_t w = 0; w < c->n_windows; w++) win[w].loudness_range_lu = clip->loudness_range_lu;
    ebur128_destroy(&st);
}
