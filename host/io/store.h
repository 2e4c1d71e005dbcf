/* The HDF5 activation store (ARCHITECTURE.md, contract) and its shuffled, prefetched reader.
 *
 * Layout (one file, serial HDF5, readable by h5py and h5dump; docs/STORE.md):
 *   /layers/<L>/acts   [N, H] f16 (default) or f32, chunked along N (chunk = [C, H]); attr dtype_source
 *   /frames/clip       [N] int32     which clip each row is
 *   /frames/t          [N] int32     which frame of its clip
 *   /clips/path        [n_clips] variable-length UTF-8 strings
 *   /clips/n_frames    [n_clips] int32
 *   /clips/offset      [n_clips] int64   first row of the clip
 *   /truth/...         optional f32 datasets (synthetic stores: /truth/directions [G, H])
 *   root attrs: model (str), d_model (int32), frame_rate (f64), layers (int32[]), musae_version (str),
 *               complete (int32 0/1), n_rows (int64), n_clips (int64)
 *
 * Crash safety without SWMR (HDF5 1.10): the writer keeps every dirty metadata entry in memory (metadata
 * cache evictions disabled) and writes them only in musae_store_commit (H5Fflush), after the committed
 * counts n_rows / n_clips have been updated. Between commits only raw chunk data reaches the file, and
 * only at addresses the last flushed metadata does not reference, so a writer killed at any point except
 * inside the flush itself leaves the file exactly as of the last commit. The writer commits after every
 * clip. Readers trust n_rows / n_clips, never the dataset extents. A store opened for append is cut back to
 * its committed counts and continues.
 *
 * Thread safety: the serial HDF5 library is not thread-safe, so every function here that touches HDF5
 * holds one process-wide lock; the prefetch thread and the caller may use the store concurrently. */
#ifndef MUSAE_STORE_H
#define MUSAE_STORE_H

#include <stdint.h>
#include <stdio.h>

#include "host/core/dtype.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MUSAE_STORE_MAX_LAYERS 64

/* ---- writer ----------------------------------------------------------------------------------------------- */

typedef struct {
    const char *model;          /* root attr "model", e.g. "facebook/musicgen-small" */
    int d_model;                /* H */
    double frame_rate;          /* 50 for MusicGen */
    int n_layers;
    int layers[MUSAE_STORE_MAX_LAYERS];
    musae_dtype dtype;          /* MUSAE_F16 (default) or MUSAE_F32 */
    int64_t chunk_rows;         /* C; 0 = rows per ~1 MiB chunk */
    const char *dtype_source;   /* what the activations were computed in ("f32"); attr on each acts dataset */
} musae_store_spec;

typedef struct musae_store_writer musae_store_writer;

/* Creates a new store (fails with a one-line reason if path exists). */
musae_store_writer *musae_store_create(const char *path, const musae_store_spec *spec);
/* Opens an existing store to continue it; spec must match what it holds (model, d_model, layers, dtype), and
 * rows past the committed count (a killed writer's tail) are discarded. */
musae_store_writer *musae_store_append(const char *path, const musae_store_spec *spec);
/* Adds one clip: acts[l] is [n_frames, H] f32 for spec.layers[l]. f16 stores count values that overflow
 * f16 (|x| > 65504) and fail loudly, naming the clip and layer, before anything of the clip is committed.
 * Non-finite source values are counted and stored as they are (the trainer decides what to do with them).
 * The clip is committed (durable against a kill) when this returns. */
void musae_store_add_clip(musae_store_writer *w, const char *clip_path, int64_t n_frames, const float *const *acts);
/* Writes an extra f32 dataset (e.g. "/truth/directions"), creating parent groups; committed at once. */
void musae_store_put_f32(musae_store_writer *w, const char *name, int rank, const int64_t *shape, const float *data);
int64_t musae_store_writer_rows(const musae_store_writer *w);
int64_t musae_store_writer_clips(const musae_store_writer *w);
/* Whether a clip with this path is already stored (for resumable capture). */
int musae_store_writer_has_clip(const musae_store_writer *w, const char *clip_path);
int64_t musae_store_writer_nonfinite(const musae_store_writer *w);
/* Commits, sets complete = `complete`, closes and frees. */
void musae_store_close_writer(musae_store_writer *w, int complete);

/* ---- reader ----------------------------------------------------------------------------------------------- */

typedef struct {
    char path[4096];
    char model[256];
    char musae_version[32];
    int d_model;
    double frame_rate;
    int n_layers;
    int layers[MUSAE_STORE_MAX_LAYERS];
    int complete;
    musae_dtype dtype;
    int64_t n_rows, n_clips, chunk_rows;
    int64_t *clip_offset;  /* [n_clips] */
    int32_t *clip_frames;  /* [n_clips] */
} musae_store_info;

typedef struct musae_store musae_store;

/* Opens and validates a store (attributes, ranks, dtypes, chunking, counts consistent across datasets).
 * Returns NULL with a one-line reason in err. */
musae_store *musae_store_open(const char *path, char *err, size_t errlen);
const musae_store_info *musae_store_get_info(const musae_store *s);
/* Index of layer L in info.layers, or -1. */
int musae_store_layer_index(const musae_store *s, int layer);
/* Reads rows [row0, row0+n) of a layer as f32 into out [n, H]. */
void musae_store_read_rows(musae_store *s, int layer, int64_t row0, int64_t n, float *out);
/* Path of clip i (malloc'd). */
char *musae_store_clip_path(musae_store *s, int64_t i);
/* Reads /frames/clip and /frames/t for rows [row0, row0+n). */
void musae_store_read_frames(musae_store *s, int64_t row0, int64_t n, int32_t *clip, int32_t *t);
/* An optional f32 dataset (e.g. "/truth/directions"): malloc'd data with rank/shape filled, or NULL. */
float *musae_store_get_f32(musae_store *s, const char *name, int *rank, int64_t *shape);
void musae_store_close(musae_store *s);
/* Whether the file starts with the HDF5 signature (for `musae info` dispatch). */
int musae_store_is_hdf5(const char *path);
/* Whether two model ids (the store's "model" attribute, an SAE's musae.json "model") name the same model. Ids
 * written by capture are "<name>:<16 hex digits>", the name from the folder (for people) and the digits a hash of
 * config.json and the weights: only the hashes are compared, so a copied or renamed model folder is the same
 * model. Other ids (synth_acts' "synthetic") compare whole. */
int musae_store_same_model(const char *a, const char *b);
/* Prints a summary for `musae info`: attributes, layers, rows, clips, hours, chunking, extra datasets. */
void musae_store_describe(musae_store *s, FILE *out);

/* ---- shuffled stream -------------------------------------------------------------------------------------- */

/* Train/validation split by clip: clip c is in validation when a Philox draw keyed by (split_seed, c) falls
 * below val_fraction (at least one clip when val_fraction > 0 and the store has two or more). */
typedef enum { MUSAE_SPLIT_TRAIN = 0, MUSAE_SPLIT_VAL = 1, MUSAE_SPLIT_ALL = 2 } musae_split;

/* Where a stream is: resuming at a position delivers exactly the rows an uninterrupted stream would. */
typedef struct {
    int64_t epoch;      /* passes over the split so far */
    int64_t window;     /* window index within the epoch */
    int64_t offset;     /* rows of that window already delivered */
    int64_t delivered;  /* rows delivered in all */
    int64_t skipped;    /* non-finite rows skipped in the windows delivered completely */
} musae_stream_pos;

typedef struct {
    musae_split split;
    double val_fraction;       /* 0.05 */
    uint64_t split_seed;       /* 0 */
    uint64_t seed;             /* order of windows and rows */
    int shuffle;               /* 1: random chunk order + shuffle within windows; 0: store order */
    int64_t window_rows;       /* the shuffle buffer: rows per window (rounded to whole chunks, >= 1 chunk) */
    int loop;                  /* 1: endless epochs (training); 0: one pass, then musae_stream_next returns short */
    int n_layers;
    int layers[MUSAE_STORE_MAX_LAYERS];
    int skip_nonfinite;        /* 1: skip rows with NaN/Inf (counted); 0: fail naming the row and clip */
    musae_stream_pos start;    /* zeros = from the beginning */
} musae_stream_opts;

typedef struct musae_stream musae_stream;

/* Opens a stream with a prefetch thread that loads window w+1 while window w is being consumed. Memory is
 * two windows of raw rows (window_rows x H x dtype size x n_layers each), whatever the store's size. */
musae_stream *musae_stream_open(musae_store *s, const musae_stream_opts *o);
/* Delivers up to n rows: out[l] is [n, H] f32 for opts.layers[l]. Returns the rows delivered (less than n
 * only at the end of a one-pass stream). */
int64_t musae_stream_next(musae_stream *st, int64_t n, float *const *out);
musae_stream_pos musae_stream_tell(const musae_stream *st);
/* Rows in the stream's split (one epoch). */
int64_t musae_stream_split_rows(const musae_stream *st);
void musae_stream_close(musae_stream *st);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STORE_H */
