/* Tempo, beat confidence and onset rate (aubio 0.4.9: new_aubio_tempo / new_aubio_onset, method "default",
 * buffer DSP_AUBIO_BUF; tempo hop DSP_TEMPO_HOP = 8 ms at 32 kHz, onset hop DSP_ONSET_HOP = 16 ms; the last hop
 * is zero-padded).
 *
 * Beats are read from aubio's last-beat time changing (aubio_tempo_get_last; last_beat below), not from the
 * do() output: aubio signals a beat through the output's fractional position, which is 0 for a beat falling
 * exactly on a hop, and it blanks beats that fall in a silent hop (the gaps of a click track) while still
 * tracking them.
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
 * are above DSP_ONSET_GATE_DB. Onset rate: onsets per second of the clip or window.
 *
 * One spectrum for both: aubio_tempo_do and aubio_onset_do each run a phase vocoder whose atan2 of every bin
 * (the phase) neither specflux nor hfc reads, and the onset object's 1024-sample frames at its 512 hop are
 * exactly the tempo object's frames at every other 256 hop. So the two loops are rebuilt here from aubio's
 * public parts, as aubio 0.4.9's tempo.c and onset.c run them: one magnitude per 256 hop, made as
 * aubio_pvoc_do makes it (the sliding 1024 buffer, "hanningz" window, fvec_shift, aubio_fft_do_complex,
 * aubio_fft_get_norm: the same numbers), feeds specflux + peak picker + aubio_beattracking for the tempo, and
 * on odd hops a copy through cvec_logmag(1) + hfc + peak picker for the onsets, with the defaults
 * new_aubio_onset("default") sets (threshold 0.058, delay 4.3 hops, minimum interval 50 ms). Same beats, bpm,
 * confidence and onsets as the two objects; a third of the FFTs and none of the atan2. */
/* peak picker, beat tracker and fft_do_complex are aubio's AUBIO_UNSTABLE API (exported by libaubio 0.4.9) */
#define AUBIO_UNSTABLE 1
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
/* aubio 0.4.9's constants: tempo.c (peak-picking threshold 0.3, silence -90 dB, ~5.8 s of detection function
 * in four steps) and onset.c's defaults for "default" = hfc */
#define AUBIO_TEMPO_THRESHOLD 0.3f
#define AUBIO_TEMPO_SILENCE -90.0f
#define AUBIO_ONSET_THRESHOLD 0.058f
#define AUBIO_ONSET_DELAY ((uint_t)(4.3 * DSP_ONSET_HOP))

static float aubio_round(float x) { return floorf((float)(x + .5)); } /* aubio_priv.h's ROUND */

/* aubio_tempo_t's loop state (tempo.c) */
typedef struct {
    aubio_specdesc_t *od;
    aubio_peakpicker_t *pp;
    aubio_beattracking_t *bt;
    fvec_t *of, *dfframe, *out, *onset;
    sint_t blockpos;
    uint_t winlen, step, total_frames, last_beat;
} tempo_state;

/* aubio_onset_t's loop state (onset.c) with compression on and whitening off */
typedef struct {
    aubio_specdesc_t *od;
    aubio_peakpicker_t *pp;
    cvec_t *grain;
    fvec_t *desc;
    uint_t minioi, delay, total_frames, last_onset;
} onset_state;

/* aubio_tempo_do after its aubio_pvoc_do: grain is the hop's magnitude, in its 256 samples */
static void tempo_step(tempo_state *o, const cvec_t *grain, const fvec_t *in) {
    aubio_specdesc_do(o->od, grain, o->of);
    if (o->blockpos == (sint_t)o->step - 1) {
        aubio_beattracking_do(o->bt, o->dfframe, o->out);
        memmove(o->dfframe->data, o->dfframe->data + o->step, (o->winlen - o->step) * sizeof(smpl_t));
        memset(o->dfframe->data + o->winlen - o->step, 0, o->step * sizeof(smpl_t));
        o->blockpos = -1;
    }
    o->blockpos++;
    aubio_peakpicker_do(o->pp, o->of, o->onset);
    o->dfframe->data[o->winlen - o->step + o->blockpos] = aubio_peakpicker_get_thresholded_input(o->pp)->data[0];
    for (uint_t i = 1; i < o->out->data[0]; i++)
        if (o->blockpos == floorf(o->out->data[i])) { /* this hop holds a predicted beat */
            smpl_t frac = o->out->data[i] - floorf(o->out->data[i]);
            if (aubio_silence_detection(in, AUBIO_TEMPO_SILENCE) == 1) frac = 0;
            o->last_beat = o->total_frames + (uint_t)aubio_round(frac * DSP_TEMPO_HOP);
        }
    o->total_frames += DSP_TEMPO_HOP;
}

/* aubio_onset_do after its aubio_pvoc_do, with silence -inf (never silent); returns its onset output */
static smpl_t onset_step(onset_state *o, const cvec_t *grain) {
    memcpy(o->grain->norm, grain->norm, grain->length * sizeof(smpl_t));
    cvec_logmag(o->grain, 1.0f);
    aubio_specdesc_do(o->od, o->grain, o->desc);
    fvec_t isonset_v = {.length = 1, .data = (smpl_t[1]){0}};
    aubio_peakpicker_do(o->pp, o->desc, &isonset_v);
    smpl_t isonset = isonset_v.data[0];
    if (isonset > 0) {
        const uint_t new_onset = o->total_frames + (uint_t)aubio_round(isonset * DSP_ONSET_HOP);
        if (o->last_onset + o->minioi < new_onset) {
            if (o->last_onset > 0 && o->delay > new_onset) isonset = 0;
            else o->last_onset = o->delay > new_onset ? o->delay : new_onset;
        } else {
            isonset = 0;
        }
    } else if (o->total_frames <= o->delay && (o->total_frames == 0 || o->last_onset + o->minioi < o->total_frames)) {
        isonset = (smpl_t)(o->delay / DSP_ONSET_HOP); /* the stream's first non-silent hop */
        o->last_onset = o->total_frames + o->delay;
    }
    o->total_frames += DSP_ONSET_HOP;
    return isonset;
}

/* mean square of x[t - 1024, t + 1024) ∩ the clip, in dB */
static double level_db(const dsp_clip *c, int64_t t) {
    const int64_t a = t - 1024 < 0 ? 0 : t - 1024, b = t + 1024 > c->n ? c->n : t + 1024;
    double ss = 0;
    for (int64_t i = a; i < b; i++) ss += (double)c->x[i] * c->x[i];
    return b > a ? dsp_db(ss / (double)(b - a), -200.0f) : -200.0;
}

void dsp_tempo(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    const int64_t W = c->n_windows;
    tempo_state t = {.winlen = aubio_next_power_of_two((uint_t)(5.8 * c->rate / DSP_TEMPO_HOP))};
    if (t.winlen < 4) t.winlen = 4;
    t.step = t.winlen / 4;
    onset_state o = {.delay = AUBIO_ONSET_DELAY, .minioi = (uint_t)aubio_round((smpl_t)(50. / 1000.) * c->rate)};
    aubio_fft_t *fft;
#pragma omp critical(musae_fftw)
    {
        fft = new_aubio_fft(DSP_AUBIO_BUF);
        t.od = new_aubio_specdesc("specflux", DSP_AUBIO_BUF);
        t.bt = new_aubio_beattracking(t.winlen, DSP_TEMPO_HOP, (uint_t)c->rate);
        o.od = new_aubio_specdesc("hfc", DSP_AUBIO_BUF);
    }
    t.pp = new_aubio_peakpicker(), o.pp = new_aubio_peakpicker();
    t.of = new_fvec(1), t.dfframe = new_fvec(t.winlen), t.out = new_fvec(t.step), t.onset = new_fvec(1);
    o.grain = new_cvec(DSP_AUBIO_BUF), o.desc = new_fvec(1);
    fvec_t *in = new_fvec(DSP_TEMPO_HOP), *frame = new_fvec(DSP_AUBIO_BUF), *spec = new_fvec(DSP_AUBIO_BUF);
    fvec_t *hann = new_aubio_window("hanningz", DSP_AUBIO_BUF);
    cvec_t *grain = new_cvec(DSP_AUBIO_BUF);
    MUSAE_ASSERT(fft && t.od && t.bt && o.od && t.pp && o.pp && t.of && t.dfframe && t.out && t.onset && o.grain &&
                 o.desc && in && frame && spec && hann && grain, "aubio could not create its tempo/onset parts");
    aubio_peakpicker_set_threshold(t.pp, AUBIO_TEMPO_THRESHOLD);
    aubio_peakpicker_set_threshold(o.pp, AUBIO_ONSET_THRESHOLD);
    float *buf = musae_xcalloc(DSP_AUBIO_BUF, sizeof(float)); /* the phase vocoder's last 1024 samples */
    uint_t last_beat = 0;
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
        /* aubio_pvoc_do's magnitude */
        memmove(buf, buf + DSP_TEMPO_HOP, (DSP_AUBIO_BUF - DSP_TEMPO_HOP) * sizeof(float));
        memcpy(buf + DSP_AUBIO_BUF - DSP_TEMPO_HOP, in->data, DSP_TEMPO_HOP * sizeof(float));
        memcpy(frame->data, buf, DSP_AUBIO_BUF * sizeof(float));
        fvec_weight(frame, hann);
        fvec_shift(frame);
        aubio_fft_do_complex(fft, frame, spec);
        aubio_fft_get_norm(spec, grain);
        tempo_step(&t, grain, in);
        /* the onset hop ends with this tempo hop: its frame is the same 1024 samples */
        const smpl_t onset = j % per_onset == per_onset - 1 ? onset_step(&o, grain) : 0;
        if (t.last_beat != last_beat) {
            last_beat = t.last_beat;
            beats[n_beats++] = (float)last_beat / (float)c->rate;
        }
        if (onset != 0 && level_db(c, (int64_t)(o.last_onset - o.delay)) > DSP_ONSET_GATE_DB) {
            int64_t ow = (int64_t)(o.last_onset - o.delay) / c->rate;
            ow = ow < 0 ? 0 : ow >= W ? W - 1 : ow;
            w_onsets[ow]++, n_onsets++;
        }
        /* the hop that reaches the window's end: read aubio's running estimates */
        while (w < W && s0 + DSP_TEMPO_HOP >= w_b) {
            const float bpm = aubio_beattracking_get_bpm(t.bt), conf = aubio_beattracking_get_confidence(t.bt);
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
    const float conf = aubio_beattracking_get_confidence(t.bt);
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
    free(beats), free(w_onsets), free(buf);
#pragma omp critical(musae_fftw)
    {
        del_aubio_fft(fft);
        del_aubio_specdesc(t.od), del_aubio_specdesc(o.od);
        del_aubio_beattracking(t.bt);
    }
    del_aubio_peakpicker(t.pp), del_aubio_peakpicker(o.pp);
    del_fvec(t.of), del_fvec(t.dfframe), del_fvec(t.out), del_fvec(t.onset), del_fvec(o.desc), del_cvec(o.grain);
    del_fvec(in), del_fvec(frame), del_fvec(spec), del_fvec(hann), del_cvec(grain);
}
