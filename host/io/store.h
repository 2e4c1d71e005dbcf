/* The HDF5 activation store (ARCHITECTURE.md, contract) and its shuffled, prefetched reader.
 *
 * Layout (one file, serial HDF5, readable by h5py and h5dump; docs/STORE.md):
 *   /layers/<L>/acts   [N, H] f16 (default) or f32, chunked along N (chunk = [C, H]); attr dtype_source
 *   /frames/clip       [N] int32     which clip each row is
 *   /frames/t          [N] int32     which frame of its clip
 *   /clips/path        [n_clips] variable-length UTF-8 strings
 *   /clips/n_frames    [n_clips] int32
 *   /clips/offset      [n_clips] int64   first row of the clip
 *   /clips/file        [n_clips] variable-length UTF-8: canonical path of the clip's source file ("" none)
 *   /clips/file_size, /clips/file_mtime_ns  [n_clips] int64: that file's size and mtime when captured
 *   /truth/...         optional f32 datasets (synthetic stores: /truth/directions [G, H])
 *   root attrs: model (str), d_model (int32), frame_rate (f64), layers (int32[]), musae_version (str),
 *               complete (int32 0/1), n_rows (int64), n_clips (int64); cpu_arith (str, optional: a capture's
 *               arithmetic of its rows, CPU or GPU)
 *
 * Crash safety without SWMR (HDF5 1.10): the writer keeps every dirty metadata entry in memory (metadata
 * cache evictions disabled) and writes them only in a commit: one H5Fflush of the chunks and extents under
 * the old counts, then one of the counts n_rows / n_clips alone. Between commits only raw chunk data reaches
 * the file, and only at addresses the last flushed metadata does not reference, so a writer killed at any
 * point except inside a flush leaves the file exactly as of the last commit (a kill inside a flush: see
 * docs/STORE.md, "Known gap"). The writer commits after every
 * clip. Readers trust n_rows / n_clips, never the dataset extents. A store opened for append is cut back to
 * its committed counts and continues. Before each flush the writer reserves (fallocate) every block the flush
 * can write, so a full disk fails before anything is written; HDF5's flush at exit is off, so a failed writer
 * leaves the file as a kill does. One writer at a time: "<store>.lock" (musae_store_lock).
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
    const char *cpu_arith;      /* root attr "cpu_arith": the arithmetic of the model's products: cpu_gemm_arith()
                                 * ("fma-fp32", "amx-bf16x3", ...), "cpu-bf16w", "cuda-fp32", "cuda-bf16";
                                 * NULL: not written */
    int captions;               /* 1: keep each clip's text condition in /clips/caption (musae capture --captions) */
    /* optional: one f32 dataset written with the empty store, so it is there from the store's first moment
     * (musae capture's /capture/params) */
    const char *extra_name;
    int extra_rank;
    const int64_t *extra_shape;
    const float *extra_data;
} musae_store_spec;

typedef struct musae_store_writer musae_store_writer;

/* The file a clip was cut from, as /clips/file, /clips/file_size and /clips/file_mtime_ns record it: a clip is
 * keyed by its file's canonical path (realpath) and its name's fragment ("#t=0,10"), so the same file under
 * another spelling (a//b.wav, an absolute path, a symlink) is the same clip; size and mtime tell whether the
 * file changed since. */
typedef struct {
    const char *file;    /* canonical path */
    int64_t size;        /* bytes */
    int64_t mtime_ns;    /* modification time, ns since the epoch */
    const char *caption; /* the clip's text condition for a store with spec.captions (NULL: ""); not part of the
                          * file's identity */
} musae_clip_source;

/* The identity of the file at path now: 0 (src->file malloc'd) or -1 with errno. */
int musae_clip_source_of(const char *path, musae_clip_source *src);

/* The writer lock: "<store>.lock" beside the store, made with O_CREAT|O_EXCL and holding "PID HOST". A second
 * writer fails with "<store> is in use by PID <pid> on <host>"; a lock whose PID is dead on this host (a
 * killed writer) is taken over. Counted per process (create/append take it too, close releases it); removed
 * at exit, also on musae_fail. Readers neither take nor check it. */
void musae_store_lock(const char *store);
void musae_store_unlock(const char *store);

/* Creates a new store (fails with a one-line reason if path exists; an empty file, left by a failed
 * creation of an older musae, is replaced). The store is built as "<path>.creating" and renamed into place
 * after its first commit, so a failed creation leaves nothing at path. Takes the writer lock.
 * Every failure of a writer (a full disk included) is a one-line musae_fail naming the file and the reason;
 * the file then stays as of its last commit. */
musae_store_writer *musae_store_create(const char *path, const musae_store_spec *spec);
/* Opens an existing store to continue it; spec must match what it holds (model, d_model, layers, dtype), and
 * rows past the committed count (a killed writer's tail) are discarded. Takes the writer lock. */
musae_store_writer *musae_store_append(const char *path, const musae_store_spec *spec);
/* Adds one clip: acts[l] is [n_frames, H] f32 for spec.layers[l]. f16 stores count values that overflow
 * f16 (|x| > 65504) and fail loudly, naming the clip and layer, before anything of the clip is committed.
 * Non-finite source values are counted and stored as they are (the trainer decides what to do with them).
 * The clip is committed (durable against a kill) when this returns. */
void musae_store_add_clip(musae_store_writer *w, const char *clip_path, int64_t n_frames, const float *const *acts);
/* The same, for a pipeline thread: a failure (a full disk, an f16 overflow) returns -1 with the one-line reason
 * in err instead of exiting. The writer is then spent: the caller stops its pipeline and exits through
 * musae_fail without closing it, which leaves the file as of its last commit. */
int musae_store_try_add_clip(musae_store_writer *w, const char *clip_path, const musae_clip_source *src, int64_t n_frames,
                             const float *const *acts, char *err, size_t errlen);
/* Frees a spent writer (one whose musae_store_try_add_clip failed) without another HDF5 call, and removes its lock
 * file: for a caller that goes on living (a test); capture exits instead. */
void musae_store_discard_writer(musae_store_writer *w);
/* Writes an extra f32 dataset (e.g. "/truth/directions"), creating parent groups; committed at once. */
void musae_store_put_f32(musae_store_writer *w, const char *name, int rank, const int64_t *shape, const float *data);
int64_t musae_store_writer_rows(const musae_store_writer *w);
int64_t musae_store_writer_clips(const musae_store_writer *w);
/* Whether a clip with this path is already stored (for resumable capture). */
int musae_store_writer_has_clip(const musae_store_writer *w, const char *clip_path);
int64_t musae_store_writer_nonfinite(const musae_store_writer *w);
/* Whether the store holds clips of the (canonical) source file: 1 with the size and mtime it had then and the
 * name its clips got, up to '#' (*name valid while the writer is), else 0. */
int musae_store_writer_source(const musae_store_writer *w, const char *file, musae_clip_source *have, const char **name);
/* Whether the clip of that source file with the fragment of clip_name ("...#t=0,10") is stored, or a clip of
 * that very name without a source file (one an older store holds whose name no longer resolves). */
int musae_store_writer_has_source_clip(const musae_store_writer *w, const char *file, const char *clip_name);
/* The identity of a clip another file of the same store holds (a shard beside this one: docs/STORE.md, sharded
 * stores), from musae_store_clip_ids. */
typedef struct {
    char *name;     /* /clips/path */
    char *file;     /* /clips/file ("" none) */
    int64_t size, mtime_ns;
    char *caption;  /* /clips/caption, NULL when the store keeps none */
} musae_clip_id;
/* Counts that clip as present (has_clip, has_source_clip, source) without writing anything: a sharded capture
 * skips the clips that any shard holds. */
void musae_store_writer_note_clip(musae_store_writer *w, const musae_clip_id *id);
/* Commits, sets complete = `complete`, closes and frees. */
void musae_store_close_writer(musae_store_writer *w, int complete);

/* ---- reader ----------------------------------------------------------------------------------------------- */

typedef struct {
    char path[4096];
    char model[256];
    char musae_version[32];
    char cpu_arith[32]; /* "" when the store has no such attribute */
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
/* Caption of clip i (malloc'd; "" for a clip captured without one), or NULL when the store keeps none. */
char *musae_store_clip_caption(musae_store *s, int64_t i);
/* Name, source file and caption of every committed clip ([n_clips], malloc'd; musae_clip_ids_free). */
musae_clip_id *musae_store_clip_ids(musae_store *s);
void musae_clip_ids_free(musae_clip_id *ids, int64_t n);
/* Reads /frames/clip and /frames/t for rows [row0, row0+n). */
void musae_store_read_frames(musae_store *s, int64_t row0, int64_t n, int32_t *clip, int32_t *t);
/* An optional f32 dataset (e.g. "/truth/directions"): malloc'd data with rank/shape filled, or NULL. */
float *musae_store_get_f32(musae_store *s, const char *name, int *rank, int64_t *shape);
/* A 64-bit fingerprint of what a store holds: model, shape, layers, dtype, the committed counts, the clip
 * table (frames and names of every clip) and the first and last 64 rows of every layer. Another store, or
 * this one with clips added, gets another (the trainer's resume check). */
uint64_t musae_store_fingerprint(musae_store *s);
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

/* ---- sharded stores ---------------------------------------------------------------------------------------- */

/* Clips [clip0, clip0 + n_clips) of shard `shard`. */
typedef struct {
    int shard;
    int64_t clip0, n_clips;
} musae_store_segment;
/* Writes `path` as the joined view of a sharded store (docs/STORE.md): one file that reads as one store with
 * the usual layout, whose clips are the segments' in order. /layers/<L>/acts and /frames/t are HDF5 virtual
 * datasets over the shards (files under path's folder, named relative to it, so the whole moves together);
 * /frames/clip and /clips/... are real copies with global indices; root attrs as a store's plus chunk_rows (the
 * shards') and shards (their count). Built as "<path>.joining" and renamed into place. */
void musae_store_join(const char *path, const char *const *shards, int n_shards, const musae_store_segment *segs,
                      int n_segs, int complete);

/* ---- shuffled stream -------------------------------------------------------------------------------------- */

/* Train/validation split by clip: clip c is in validation when a Philox draw keyed by (split_seed, c) falls
 * below val_fraction (at least one clip when val_fraction > 0 and the store has two or more). */
typedef enum { MUSAE_SPLIT_TRAIN = 0, MUSAE_SPLIT_VAL = 1, MUSAE_SPLIT_ALL = 2 } musae_split;
/* Whether clip c of n_clips is held out (the validation split) for this split seed and fraction: a Philox draw
 * per clip; when no clip is drawn, the last one (of at least two) is, so a held-out split is never empty. */
int musae_store_clip_held_out(uint64_t split_seed, double val_fraction, int64_t n_clips, int64_t c);

/* Which clips a split holds, by the rule above: mask[c] = 1 for each clip c (of n_clips) in it. */
void musae_store_split_mask(const musae_store *s, musae_split split, double val_fraction, uint64_t split_seed,
                            uint8_t *mask);

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
