/* Audio in and out: the only place that includes sndfile.h and soxr.h.
 *
 * Reading streams: libsndfile decodes the file (WAV, FLAC, OGG/Vorbis, MP3 — whatever the installed
 * libsndfile reads) in blocks, channels are averaged to mono (sum in file order, then / channels, in float32:
 * what numpy's x.mean(axis=1) gives on float32 input), and libsoxr resamples to the requested rate with its
 * HQ recipe (python-soxr's default, soxr.resample(x, sr, 32000)) as a stream, so a one-hour file never sits
 * in memory. A file already at the requested rate is passed through untouched.
 *
 * Every failure is one line naming the file: missing, a directory, empty, not audio, truncated (fewer frames
 * than the header promises), a non-finite sample (with its time and channel), a start past the end.
 *
 * Writing: WAV 16-bit PCM (default), WAV 32-bit float, FLAC 16-bit or OGG Vorbis, through a temporary file renamed into
 * place on success, so a failed run never leaves a half-written file under the requested name. Integer
 * formats cannot hold |x| > 1: such samples are clipped to full scale and counted; the caller reports the
 * count and the peak (clipping is never silent). */
#ifndef MUSAE_AUDIO_H
#define MUSAE_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int sample_rate;  /* of the file */
    int channels;
    int64_t frames;   /* frames in the file at its own rate, as the decoder reports them */
    char format[96];  /* "WAV (Microsoft), Signed 16 bit PCM" */
    /* the span that will be read, in file frames */
    int64_t start_frame, span_frames;
    int64_t out_samples; /* samples the reader will return at the requested rate (exact) */
} musae_audio_info;

typedef struct musae_audio_reader musae_audio_reader;

/* Opens path to read mono float samples at `rate` Hz. start_s (>= 0) skips that much of the file;
 * duration_s > 0 reads at most that much (0: to the end). NULL on failure with the reason in err. */
musae_audio_reader *musae_audio_open(const char *path, int rate, double start_s, double duration_s, char *err,
                                     size_t errlen);
const musae_audio_info *musae_audio_reader_info(const musae_audio_reader *r);
/* Up to n samples into out: the count, 0 at the end, -1 with the reason in err. */
int64_t musae_audio_read(musae_audio_reader *r, float *out, int64_t n, char *err, size_t errlen);
void musae_audio_close(musae_audio_reader *r);

/* Whole span into one malloc'd array (tests, short clips). NULL with the reason in err. */
float *musae_audio_load(const char *path, int rate, double start_s, double duration_s, int64_t *n, char *err,
                        size_t errlen);

/* ---- resampling (what the reader uses; exposed for tests) ------------------------------------------------ */
typedef struct musae_resampler musae_resampler;
/* Mono float32 libsoxr stream with the HQ recipe. NULL with the reason in err. */
musae_resampler *musae_resampler_new(double in_rate, double out_rate, char *err, size_t errlen);
/* Feeds n_in samples (in == NULL, n_in == 0: end of input, flush the tail) and appends what is ready to
 * out; returns the count written (at most out_cap: pass cap >= n_in·out/in + 64 to never leave samples
 * behind, which the reader does). */
int64_t musae_resampler_process(musae_resampler *rs, const float *in, int64_t n_in, float *out, int64_t out_cap);
void musae_resampler_free(musae_resampler *rs);
/* Samples out of a complete input of n_in samples: floor(n_in·out/in + 0.5), libsoxr's own count. */
int64_t musae_resampled_length(int64_t n_in, double in_rate, double out_rate);

/* ---- writing -------------------------------------------------------------------------------------------- */
/* VORBIS: OGG Vorbis at libsndfile's default quality (lossy; listenable excerpts), samples clipped like PCM. */
typedef enum { MUSAE_AUDIO_PCM16 = 0, MUSAE_AUDIO_FLOAT = 1, MUSAE_AUDIO_FLAC = 2, MUSAE_AUDIO_VORBIS = 3 } musae_audio_format;

typedef struct {
    int64_t frames;
    int64_t clipped; /* samples beyond full scale, clipped (integer formats only) */
    float peak;      /* max |x| before clipping */
} musae_audio_write_stats;

typedef struct musae_audio_writer musae_audio_writer;
musae_audio_writer *musae_audio_writer_open(const char *path, int rate, int channels, musae_audio_format fmt,
                                            char *err, size_t errlen);
/* frames interleaved frames. A non-finite sample is an error (nothing sensible can be written). */
int musae_audio_write(musae_audio_writer *w, const float *x, int64_t frames, char *err, size_t errlen);
/* Finishes the file and renames it into place (0), or removes it and returns -1 with the reason. stats may
 * be NULL. The writer is freed either way. */
int musae_audio_writer_close(musae_audio_writer *w, musae_audio_write_stats *stats, char *err, size_t errlen);
/* Drops a writer without producing the file (error paths). */
void musae_audio_writer_abort(musae_audio_writer *w);
/* "1234 of 64000 samples (1.93%) were beyond full scale (peak 1.52 = +3.6 dBFS) and were clipped" or "". */
void musae_audio_clip_message(const musae_audio_write_stats *s, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_AUDIO_H */
