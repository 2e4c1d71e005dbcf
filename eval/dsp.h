/* The descriptor families of `musae describe`, one file each (eval/dsp_*.c), over one clip of mono float
 * samples. Internal to eval/describe.c; the contract of what they produce is docs/DESCRIBE.md.
 *
 * A clip is analysed in three passes over shared state (dsp_clip):
 *   1. dsp_stft: a Hann STFT (FFTW, DSP_NFFT points, hop DSP_HOP, frames centred at f·hop with zero
 *      padding, as librosa's center=True) into a magnitude spectrogram, with the mean square of each frame.
 *   2. per-frame tracks from the spectrogram (spectral shape, HPSS energies, chroma and chords) and from the
 *      samples (aubio tempo/onsets/pitch, libebur128), each family filling its fields of every window row and
 *      of the clip row.
 * Windows: window w covers [w, w+1) s of the clip; a last partial window is kept when it holds at least half
 * a second, and a shorter tail joins the window before it, so the windows partition the clip (a clip shorter
 * than half a second is one window). A frame belongs to the window holding its centre. Clip values aggregate the same tracks over the
 * whole clip (not over the windows), so a clip value is never a mean of window values.
 *
 * Thread use: each OpenMP thread owns a dsp_work (FFTW plan and buffers). FFTW's planner is not thread-safe
 * and aubio plans FFTW transforms in its constructors, so every plan creation or destruction, ours or
 * aubio's (new_aubio_* / del_aubio_*), runs inside `#pragma omp critical(musae_fftw)`. */
#ifndef MUSAE_DSP_H
#define MUSAE_DSP_H

#include <stdint.h>

#include "host/io/descriptors_io.h"

#define DSP_NFFT 4096                /* 128 ms at 32 kHz: 7.8 Hz bins, enough for pitch classes above 100 Hz */
#define DSP_HOP 1024                 /* 32 ms */
#define DSP_BINS (DSP_NFFT / 2 + 1)
#define DSP_SILENT_MS 1e-10f         /* a frame whose (windowed) mean square is below this (-100 dBFS) is silent */

typedef struct dsp_work dsp_work;

/* The clip being described and the tracks shared between families. */
typedef struct {
    const float *x;        /* [n] mono samples at rate */
    int64_t n;
    int rate;
    int64_t n_frames;      /* STFT frames: 1 + n / DSP_HOP */
    float *mag;            /* [n_frames, DSP_BINS] magnitude spectrogram */
    float *frame_ms;       /* [n_frames] mean square of the Hann-windowed frame (normalised by sum w^2) */
    int64_t n_windows;
    int32_t *frame_window; /* [n_frames] the window holding the frame's centre */
} dsp_clip;

/* Windows of a clip of n >= 1 samples at rate (one when the clip is shorter than 1.5 s). */
int64_t dsp_n_windows(int64_t n, int rate);
/* Samples [*a, *b) of window w (the last one runs to the clip's end). */
void dsp_window_span(int64_t n, int rate, int64_t w, int64_t *a, int64_t *b);

dsp_work *dsp_work_new(void);
void dsp_work_free(dsp_work *w);

/* Fills c->mag, c->frame_ms, c->frame_window (allocated here, freed by dsp_clip_free). */
void dsp_stft(dsp_work *w, dsp_clip *c);
void dsp_clip_free(dsp_clip *c);

/* Each family fills its fields of clip and of win[0 .. c->n_windows). */
void dsp_spectral(const dsp_clip *c, musae_desc *clip, musae_desc *win);   /* centroid, rolloff, flatness,
                                                                              bandwidth, zcr, rms_db */
void dsp_hpss(const dsp_clip *c, musae_desc *clip, musae_desc *win);       /* percussive_ratio */
void dsp_chroma(const dsp_clip *c, musae_desc *clip, musae_desc *win);     /* chroma, key, mode,
                                                                              key_confidence, chords */
void dsp_tempo(const dsp_clip *c, musae_desc *clip, musae_desc *win);      /* tempo_bpm, beat_confidence,
                                                                              onset_rate_hz (aubio) */
void dsp_loudness(const dsp_clip *c, musae_desc *clip, musae_desc *win);   /* lufs, loudness_range_lu,
                                                                              true_peak_dbtp (libebur128) */
void dsp_pitch(const dsp_clip *c, musae_desc *clip, musae_desc *win);      /* f0_median_hz, voiced_fraction
                                                                              (aubio yinfast) */

/* ---- small shared pieces ------------------------------------------------------------------------------------ */

/* Krumhansl–Kessler key of a 12-bin chroma: key 0..11 and mode 0/1 with the Pearson r as confidence, or
 * key = mode = -1 and confidence 0 when the chroma is flat (all equal, e.g. silence). */
void dsp_key(const float *chroma12, int32_t *key, int32_t *mode, float *confidence);
/* Median of x[0..n) (n >= 1); x is reordered. */
float dsp_median(float *x, int64_t n);
/* 10·log10(ms) floored at floor_db (so silence is a number, not -inf). */
float dsp_db(double ms, float floor_db);

#endif /* MUSAE_DSP_H */
