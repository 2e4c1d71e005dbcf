/* Activation capture: audio files → clips → EnCodec codes → teacher-forced MusicGen → the residual stream of
 * chosen layers → the HDF5 activation store (host/io/store.h, the contract of ARCHITECTURE.md). Also the
 * pieces `musae evaluate --model` (eval/spliced.h) and generation-time capture reuse: the dataset walk, the
 * clip plan, the model identity.
 *
 * Dataset. A folder is walked recursively; files whose extension is an audio one (capture_is_audio_name)
 * are taken, in byte-wise sorted order of their full paths, so the order is the same on every machine and
 * every run. Anything else is a list file: one path per line, optionally a tab and a caption; relative
 * paths are relative to the list file's folder; blank lines and lines starting with '#' are skipped; the
 * order is the list's. A single audio file is a one-file dataset.
 *
 * Clips. A file is read as one stream (downmix + libsoxr to 32 kHz, host/io/audio.h) and cut into clips of
 * clip_frames · hop samples (10 s = 500 frames = 320000 samples): clip c holds samples [c·S, (c+1)·S) of
 * the resampled file. A tail shorter than S becomes a clip of its own only if it is at least min_seconds
 * long; a file shorter than that is skipped ("too short"). Nothing is ever padded: padding would put
 * frames of silence the music never had into the store. A clip's name in /clips/path is the file's path
 * with a media-fragment suffix "#t=START,END" in seconds ("a/b.wav#t=10,20"), which is what makes a capture
 * resumable: a clip whose name is in the store is complete.
 *
 * Rows. Each clip is encoded on its own (EnCodec, F = ceil(samples / hop) frames), its codes are delayed
 * (model/delay.h) and run through the decoder teacher-forced; READ hooks copy the residual stream after
 * each chosen layer at positions 1..F: the row of frame t is position t + 1, the BOS position 0 and the
 * K - 1 trailing positions are dropped (ARCHITECTURE.md, "Frame alignment"). The rows are bit-identical to
 * `musae forward`'s hidden.<L>[b, t + 1] for the same codes (tests/test_capture.c).
 *
 * Pipeline and memory. Four threads connected by bounded queues: a reader (decode, resample, cut), an encoder
 * (EnCodec; its LSTM recurrence is serial, so it overlaps the LM of the previous clip), the LM thread (T5 for
 * captions, the decoder over batches of clips of equal length) and a writer (float16 conversion, HDF5, one
 * commit per clip). Memory is a few batches of clips whatever the dataset
 * size; the store is written in plan order, so what a killed run committed is a prefix of the plan and a
 * resumed run continues exactly where it stopped. */
#ifndef MUSAE_CAPTURE_H
#define MUSAE_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "host/core/dtype.h"
#include "host/dist/dist.h"
#include "host/io/store.h"
#include "kernels/ops.h"
#include "model/musicgen.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dataset ---------------------------------------------------------------------------------------------- */

typedef struct {
    char *path;     /* as it will be opened and named in the store */
    char *caption;  /* list files only; NULL without */
    int line;       /* line in the list file (0 for a folder walk) */
} capture_file;

typedef struct {
    capture_file *files;
    int64_t n_files;
    int64_t n_not_audio;   /* files under a folder skipped for their extension */
    int64_t n_dirs;        /* folders walked */
    char **bad_dirs;       /* subfolders that could not be read, skipped ... */
    char **bad_dir_why;    /* ... for this reason (capture warns with both) */
    int64_t n_bad_dirs;
    int from_list;
    char source[4096];
} capture_dataset;

/* Whether a file name ends in an audio extension libsndfile reads (wav, flac, ogg, oga, opus, mp3, aif,
 * aiff, aifc, au, snd, caf, w64, rf64; any case). */
int capture_is_audio_name(const char *name);
/* Loads a folder, a list file or a single audio file. 0, or -1 with a one-line reason in err (missing, no
 * audio files under a folder, an unreadable top folder, an empty list, an unreadable list). A subfolder that
 * cannot be read is skipped and recorded in bad_dirs, as unreadable files are skipped. Duplicate paths in a list are an error
 * (the second would be taken as already captured). */
int capture_dataset_load(const char *src, capture_dataset *ds, char *err, size_t errlen);
void capture_dataset_free(capture_dataset *ds);

/* "a/b.wav#t=10,20": the name of the clip of `n` samples starting at sample `start` at `rate` Hz. */
void capture_clip_name(const char *path, int64_t start, int64_t n, int rate, char *out, size_t cap);

/* Clips of one file of `samples` samples (at the codec's rate). Returns the count (0: too short); starts
 * and lengths go to the arrays when given (cap entries). */
int64_t capture_plan_file(int64_t samples, int64_t clip_samples, int64_t min_samples, int64_t *start, int64_t *len,
                          int64_t cap);

/* Cuts one file into clips as it streams (bounded memory, any length). */
typedef struct capture_clips capture_clips;
/* NULL with the reader's one-line reason (naming the file) in err. */
capture_clips *capture_clips_open(const char *path, int rate, int64_t clip_samples, int64_t min_samples, char *err,
                                  size_t errlen);
/* The next clip: its length (clip_samples, or a last tail >= min_samples), 0 at the end, -1 on a read error
 * (err). *x (valid until the next call) gets the samples and *start the index of its first sample. */
int64_t capture_clips_next(capture_clips *c, const float **x, int64_t *start, char *err, size_t errlen);
int64_t capture_clips_pos(const capture_clips *c); /* samples read so far */
void capture_clips_close(capture_clips *c);

/* ---- model identity ----------------------------------------------------------------------------------------- */

/* The name a store and an SAE record for a model folder: "<name>:<16 hex digits>". name is ORG/NAME for a
 * Hugging Face cache path (models--ORG--NAME/...), else the folder's base name; the digits are an FNV-1a
 * fingerprint of config.json and, per tensor, its name, dtype, shape and first and last 64 bytes, so two
 * folders holding different weights get different identities at the cost of a few pages read. Identities are
 * compared by the digits only (musae_store_same_model), so a copied or renamed folder is the same model. */
void capture_model_id(const char *dir, char *out, size_t cap);

/* What a capture store's clips were cut with (/capture/params): clip and shortest-tail length in samples at
 * `rate`, and whether they were text-conditioned (their captions then in /clips/caption). 0, or -1 when the
 * store was not written by musae capture. */
typedef struct {
    int64_t clip_samples, min_samples;
    int captions, rate;
} capture_params;
int capture_store_params(musae_store *s, capture_params *p);

/* ---- capture ---------------------------------------------------------------------------------------------- */

typedef struct {
    const char *model_dir, *audio, *out;
    int n_layers;
    int layers[MUSAE_STORE_MAX_LAYERS];
    double clip_seconds;   /* 10 */
    double min_seconds;    /* shortest clip kept (a tail or a short file); <= 0: clip_seconds */
    int captions;          /* condition on the list's captions through T5 (else unconditional) */
    int batch;             /* clips per decoder forward (default 1) */
    musae_dtype dtype;     /* MUSAE_F16 (default) or MUSAE_F32 */
    int64_t max_clips;     /* stop after this many new clips (0 = no limit); the store stays incomplete */
    int threads;           /* 1: no reader/writer threads (everything on the calling thread) */
    const musae_ops *ops;  /* the table EnCodec, T5 and the LM run on (default the CPU) */
    musae_precision prec;  /* of the LM weights (default fp32) */
    const musae_dist *dist; /* the ranks of an mpirun/srun launch (NULL: one process); several, or an existing
                              * "<out>.shards/", make the store sharded (eval/capture_shard.h) */
} capture_opts;

void capture_opts_defaults(capture_opts *o);

typedef struct {
    int64_t files, files_skipped;
    int64_t clips_planned, clips_present, clips_written, frames_written;
    int64_t tails_dropped;       /* tails shorter than min_seconds */
    double tail_seconds_dropped;
    double seconds;              /* wall time of the capture loop */
    double t_read, t_encode, t_text, t_lm, t_write; /* seconds spent in each stage (its own thread) */
    double cpu_read, cpu_encode, cpu_lm, cpu_write; /* CPU seconds of each stage's own thread (OpenMP workers
                                                       not counted: with OMP_NUM_THREADS=1 that is all of it) */
    double cpu_loop;             /* CPU seconds of the whole process (every thread) over the capture loop */
    int complete;                /* every planned clip is in the store */
} capture_report;

/* Runs a capture (creating or continuing o->out), prints progress and a summary (with the skipped files and
 * why), and fills rep (may be NULL). Bad input is a musae_fail with a one-line reason. Returns 0. */
int capture_run(const capture_opts *o, capture_report *rep);

/* ---- generation-time capture (musae generate --capture-layers L --acts FILE) --------------------------- */

typedef struct capture_gen capture_gen;
/* Prepares READ hooks on the conditional branch for B items and `steps` generation steps at the given
 * layers; the store `acts` is created at once (it must not exist), so a bad path fails before generating. */
capture_gen *capture_gen_begin(const char *acts, const char *model_dir, const mg_model *m, const int *layers,
                               int n_layers, int64_t B, int64_t steps, musae_dtype dtype);
const mg_hook *capture_gen_hooks(const capture_gen *g, int *n_hooks);
/* After mg_generate returned F frames: writes one clip per item, named "<name>#item=<b>", rows of frames
 * 0..F-1 (sequence positions 1..F, as in a teacher-forced capture), closes the store and frees g. */
void capture_gen_finish(capture_gen *g, const char *name, int64_t F);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CAPTURE_H */
