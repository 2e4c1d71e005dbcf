/* Tempo, beat confidence and onset rate (aubio 0.4.9: new_aubio_tempo / new_aubio_onset, method "default",
 * buffer DSP_AUBIO_BUF; tempo hop DSP_TEMPO_HOP = 8 ms at 32 kHz, onset hop DSP_ONSET_HOP = 16 ms; the last hop
 * is zero-padded).
 *
 * Beats are read from aubio_tempo_get_last changing, not from the do() output: aubio signals a beat through
 * the output's fractional position, which is 0 for a beat falling exactly on a hop, and it blanks beats that
 * fall in a silent hop (the gaps of a click track) while still tracking them.
 *
 * Clip tempo: aubio places beats on whole hops, so one interval is quantised to 8 ms (2 % at 150 BPM); the
 * intervals alternate between the two hops around the true period, and their mean is not quantised. So the
 * tempo is 60 / the mean of the intervals within 10 % of their median (the median drops a late lock-in and
 * missed beats). NaN ("no beat", never 0) when aubio reports fewer than three beats or the clip has fewer
 * than two onsets (aubio marks the first non-silent hop of a stream as an onset, so a steady tone has one;
 * its tracker predicts beats even then). Clip beat confidence: aubio's confidence after the last hop (its own
 * unbounded scale; 0 until its tracker has settled on a period, so 0 does not mean "no beat").
 * Window tempo and confidence: aubio's running estimates (get_bpm, get_confidence) after the hop that ends
 * the window, under the same rule with the onsets counted in the window (NaN / 0 otherwise). aubio needs about
 * three seconds before its first estimate; that estimate is computed from everything before it, so the
 * earlier windows that have onsets take it too.
 * Onsets: aubio's "default" (hfc) detector with its own silence check off (it tests the hop in which the
 * peak is picked, which for a click is already silent); an onset counts when the 2048 samples around it
 * are above DSP_ONSET_GATE_DB. Onset rate: onsets per second of the clip or window. */
#include <aubio/aubio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define DSP_AUBIO_BUF 1024
#define DSP_TEMPO_HOP 256
#define DSP_ONSET_HOP 512 /* a multiple of DSP_TEMPO_HOP: the onset detector gets every other pair of hops */
#define DSP_ONSET_GATE_DB -70.0

/* mean square of x[t - 1024, t + 1024) ∩ the clip, in dB */
static double level_db(const dsp_clip *c, int64_t t) {
    const int64_t a = t - 1024 < 0 ? 0 : t - 1024, b = t + 1024 > c->n ? c->n : t + 1024;
    double ss = 0;
    for (int64_t i = a; i < b; i++) ss += (double)c->x[i] * c->x[i];
    return b > a ? dsp_db(ss / (double)(b - a), -200.0f) : -200.0;
}

void dsp_tempo(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    const int64_t W = c->n_windows;
    aubio_tempo_t *tempo;
    aubio_onset_t *onset;
    fvec_t *in = new_fvec(DSP_TEMPO_HOP), *in_o = new_fvec(DSP_ONSET_HOP), *out_t = new_fvec(1), *out_o = new_fvec(1);
#pragma omp critical(musae_fftw)
    {
        tempo = new_aubio_tempo("default", DSP_AUBIO_BUF, DSP_TEMPO_HOP, (uint_t)c->rate);
        onset = new_aubio_onset("default", DSP_AUBIO_BUF, DSP_ONSET_HOP, (uint_t)c->rate);
    }
    MUSAE_ASSERT(tempo && onset && in && in_o && out_t && out_o, "aubio could not create its tempo/onset objects");
    aubio_onset_set_silence(onset, -INFINITY); /* aubio tests level < silence: nothing is below -inf */
    uint_t last_beat = aubio_tempo_get_last(tempo);
    const int per_onset = DSP_ONSET_HOP / DSP_TEMPO_HOP;
    const int64_t hops = (c->n + DSP_ONSET_HOP - 1) / DSP_ONSET_HOP * per_onset; /* whole onset hops */
    float *beats = musae_xmalloc((size_t)(hops + 1) * sizeof(float));
    int64_t n_beats = 0, n_onsets = 0;
    int64_t *w_onsets = musae_xcalloc((size_t)W, sizeof(int64_t));
    int64_t w = 0, w_a, w_b;
    dsp_window_span(c->n, c->rate, 0, &w_a, &w_b);
    for (int64_t j = 0; j < hops; j++) {
        const int64_t s0 = j * DSP_TEMPO_HOP;
        for (int i = 0; i < DSP_TEMPO_HOP; i++) in->data[i] = s0 + i < c->n ? c->x[s0 + i] : 0.0f;
        aubio_tempo_do(tempo, in, out_t);
        memcpy(in_o->data + (j % per_onset) * DSP_TEMPO_HOP, in->data, DSP_TEMPO_HOP * sizeof(float));
        out_o->data[0] = 0;
        if (j % per_onset == per_onset - 1) aubio_onset_do(onset, in_o, out_o);
        if (aubio_tempo_get_last(tempo) != last_beat) {
            last_beat = aubio_tempo_get_last(tempo);
            beats[n_beats++] = aubio_tempo_get_last_s(tempo);
        }
        if (out_o->data[0] != 0 && level_db(c, (int64_t)aubio_onset_get_last(onset)) > DSP_ONSET_GATE_DB) {
            int64_t ow = (int64_t)aubio_onset_get_last(onset) / c->rate;
            ow = ow < 0 ? 0 : ow >= W ? W - 1 : ow;
            w_onsets[ow]++, n_onsets++;
        }
        /* the hop that reaches the window's end: read aubio's running estimates */
        while (w < W && s0 + DSP_TEMPO_HOP >= w_b) {
            const float bpm = aubio_tempo_get_bpm(tempo), conf = aubio_tempo_get_confidence(tempo);
            const int ok = n_beats >= 3 && bpm > 0 && w_onsets[w] >= 1;
            win[w].tempo_bpm = ok ? bpm : NAN;
            win[w].beat_confidence = ok ? conf : 0.0f;
            if (++w < W) dsp_window_span(c->n, c->rate, w, &w_a, &w_b);
        }
    }
    /* aubio's first estimate looks back over everything before it (its history is ~8 s), so it describes the
     * windows before it too: they take it where they have onsets */
    int64_t first = 0;
    while (first < W && isnan(win[first].tempo_bpm)) first++;
    for (int64_t k = 0; k < first && first < W; k++)
        if (w_onsets[k] >= 1) win[k].tempo_bpm = win[first].tempo_bpm, win[k].beat_confidence = win[first].beat_confidence;
    for (int64_t k = 0; k < W; k++) {
        dsp_window_span(c->n, c->rate, k, &w_a, &w_b);
        win[k].onset_rate_hz = (float)((double)w_onsets[k] * c->rate / (double)(w_b - w_a));
    }
    clip->onset_rate_hz = (float)((double)n_onsets * c->rate / (double)c->n);
    const float conf = aubio_tempo_get_confidence(tempo);
    if (n_beats >= 3 && n_onsets >= 2) {
        float *ibi = musae_xmalloc((size_t)n_beats * sizeof(float)), *sorted = musae_xmalloc((size_t)n_beats * sizeof(float));
        for (int64_t i = 1; i < n_beats; i++) ibi[i - 1] = sorted[i - 1] = beats[i] - beats[i - 1];
        const float med = dsp_median(sorted, n_beats - 1);
        double sum = 0;
        int64_t k = 0;
        for (int64_t i = 0; i < n_beats - 1; i++)
            if (fabsf(ibi[i] - med) <= 0.1f * med) sum += ibi[i], k++;
        clip->tempo_bpm = med > 0 && k ? (float)(60.0 * k / sum) : NAN;
        clip->beat_confidence = med > 0 ? conf : 0.0f;
        free(ibi), free(sorted);
    } else {
        clip->tempo_bpm = NAN;
        clip->beat_confidence = 0;
    }
    free(beats), free(w_onsets);
#pragma omp critical(musae_fftw)
    {
        del_aubio_tempo(tempo);
        del_aubio_onset(onset);
    }
    del_fvec(in), del_fvec(in_o), del_fvec(out_t), del_fvec(out_o);
}
