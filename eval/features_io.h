/* FEATURES.h5, what `musae analyze` writes about every feature of one SAE (docs/ANALYZE.md, a contract): the
 * one writer and the one reader. describe, label, dashboard, steer and excerpt read it through here.
 *
 * M latents, N = --top, C clips analysed (the split's clips holding at least one finite row), nnz entries of
 * the per-clip table. Every clip index below is a row of /clips (0..C-1), not the store's clip number.
 *   /features/n_active_frames int64 [M]    frames where the latent is > 0
 *   /features/frame_density   f64   [M]    n_active_frames / n_frames
 *   /features/clip_rate       f64   [M]    fraction of the C clips whose time-mean is > 0 (the paper's r_i)
 *   /features/max_act         f32   [M]    largest activation (steering's β)
 *   /features/mean_act        f32   [M]    mean over active frames (0 when none)
 *   /features/hist            int64 [M, 64] active values per bin of hist_edges
 *   /features/hist_edges      f32   [65]   log-spaced: bin b holds edges[b] <= v < edges[b+1]
 *   /features/top_clip        int32 [M, N] clips by their max, descending, ties to the lower clip; -1 padded
 *   /features/top_clip_max    f32   [M, N] that clip's max (0 padded)
 *   /features/top_clip_frame  int32 [M, N] frame of the peak in the clip (its first frame at the max; -1 padded)
 *   /features/quantile_clip   int32 [M, 10, 5] 5 clips per decile of clip max (decile 0 lowest); -1 padded
 *   /features/random_clip     int32 [M, 20] clips where the latent never fires, drawn with Philox; -1 padded
 *   /features/keep            uint8 [M]    min_rate <= clip_rate <= max_rate (attributes min_rate, max_rate)
 *   /features/dead            uint8 [M]    never fired in the analysed frames
 *   /features/neighbors       int32 [M, 8] latents with the nearest decoder directions (cosine, descending,
 *   /features/neighbor_cos    f32   [M, 8] ties to the lower latent; -1 / 0 padded)
 *   /clip_feature/indptr      int64 [C + 1]  CSR by clip: entries of clip c are indptr[c]..indptr[c+1]
 *   /clip_feature/feature     int32 [nnz]    latents whose time-mean over the clip is > 0, ascending
 *   /clip_feature/mean        f32   [nnz]    the time-mean over the clip's finite frames
 *   /clip_feature/max         f32   [nnz]    the max over the clip
 *   /clips/path               str   [C]      copied from the store ("file#t=a,b" for captured clips)
 *   /clips/n_frames           int32 [C]      the clip's rows in the store
 *   /clips/store_index        int64 [C]      the clip's index in the store
 *   root attributes: format "musae-features", format_version, sae, sae_sha256, acts, model, layer, d_model, k,
 *   num_latents, selection, threshold, split, val_fraction, split_seed, seed, top, frame_rate, n_frames,
 *   n_nonfinite_rows, n_clips_empty, musae_version, complete. */
#ifndef MUSAE_FEATURES_IO_H
#define MUSAE_FEATURES_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

enum { FEATURES_HIST_BINS = 64, FEATURES_DECILES = 10, FEATURES_PER_DECILE = 5, FEATURES_RANDOM = 20,
       FEATURES_NEIGHBORS = 8 };

typedef struct {
    int64_t M, N, C, nnz;
    /* /features */
    int64_t *n_active_frames;   /* [M] */
    double *frame_density;      /* [M] */
    double *clip_rate;          /* [M] */
    float *max_act, *mean_act;  /* [M] */
    int64_t *hist;              /* [M, 64] */
    float hist_edges[FEATURES_HIST_BINS + 1];
    int32_t *top_clip;          /* [M, N] */
    float *top_clip_max;        /* [M, N] */
    int32_t *top_clip_frame;    /* [M, N] */
    int32_t *quantile_clip;     /* [M, 10, 5] */
    int32_t *random_clip;       /* [M, 20] */
    uint8_t *keep, *dead;       /* [M] */
    int32_t *neighbors;         /* [M, 8] */
    float *neighbor_cos;        /* [M, 8] */
    double min_rate, max_rate;  /* attributes of /features/keep */
    /* /clip_feature */
    int64_t *cf_indptr;         /* [C + 1] */
    int32_t *cf_feature;        /* [nnz] */
    float *cf_mean, *cf_max;    /* [nnz] */
    /* /clips */
    char **clip_path;           /* [C] */
    int32_t *clip_frames;       /* [C] */
    int64_t *clip_store_index;  /* [C] */
    /* root attributes */
    char sae[4096], sae_sha256[65], acts[4096], model[256], selection[16], split[8], musae_version[32];
    int64_t layer, d_model, k;
    double threshold, val_fraction, frame_rate;
    uint64_t split_seed, seed;
    int64_t n_frames, n_nonfinite_rows, n_clips_empty;
    int64_t complete;
} musae_features;

/* Allocates every array (zeroed) for the sizes in f->M, N, C, nnz. */
void features_alloc(musae_features *f);
void features_free(musae_features *f);
/* Where the writer takes the per-clip table from when it is not in f->cf_* (musae analyze keeps it on disk):
 * read(ctx, e0, n, ...) fills entries [e0, e0 + n) in order; 0, or -1 with the reason in err. */
typedef struct {
    int (*read)(void *ctx, int64_t e0, int64_t n, int32_t *feature, float *mean, float *max, char *err, size_t errlen);
    void *ctx;
} features_cf_source;

/* Writes path atomically: path.partial, flushed, fsynced, renamed (a killed run leaves no file under path;
 * the next run overwrites the .partial). Sets complete = 1 in the file. The per-clip table comes from cf when
 * given (f->cf_feature/mean/max unused; f->cf_indptr still in f), else from f. 0, or -1 with the reason in err. */
int features_write(const char *path, const musae_features *f, const features_cf_source *cf, char *err, size_t errlen);
/* Reads and validates a whole file (every dataset's shape against M, N, C, nnz, the CSR's monotonicity and
 * ranges, complete == 1). 0, or -1 with a one-line reason naming the file and the dataset. */
int features_read(const char *path, musae_features *f, char *err, size_t errlen);
/* Whether path is an HDF5 file with format "musae-features" (for `musae info` dispatch). */
int features_is_file(const char *path);
/* The summary `musae info FEATURES.h5` prints: counts kept / dead / too rare / too common, density quantiles,
 * the 20 kept features with the largest max activation. */
void features_describe(const musae_features *f, const char *path, FILE *out);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_FEATURES_IO_H */
