/* FEATURES.h5: the one writer and the one reader (features_io.h has the layout). */
#include "eval/features_io.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/h5.h"

#define FEATURES_FORMAT "musae-features"
#define FEATURES_FORMAT_VERSION 1

void features_alloc(musae_features *f) {
    const size_t M = (size_t)f->M, N = (size_t)f->N, C = (size_t)f->C, nnz = (size_t)f->nnz;
    f->n_active_frames = musae_xcalloc(M + 1, sizeof(int64_t));
    f->frame_density = musae_xcalloc(M + 1, sizeof(double));
    f->clip_rate = musae_xcalloc(M + 1, sizeof(double));
    f->max_act = musae_xcalloc(M + 1, sizeof(float));
    f->mean_act = musae_xcalloc(M + 1, sizeof(float));
    f->hist = musae_xcalloc(M * FEATURES_HIST_BINS + 1, sizeof(int64_t));
    f->top_clip = musae_xcalloc(M * N + 1, sizeof(int32_t));
    f->top_clip_max = musae_xcalloc(M * N + 1, sizeof(float));
    f->top_clip_frame = musae_xcalloc(M * N + 1, sizeof(int32_t));
    f->quantile_clip = musae_xcalloc(M * FEATURES_DECILES * FEATURES_PER_DECILE + 1, sizeof(int32_t));
    f->random_clip = musae_xcalloc(M * FEATURES_RANDOM + 1, sizeof(int32_t));
    f->keep = musae_xcalloc(M + 1, 1);
    f->dead = musae_xcalloc(M + 1, 1);
    f->neighbors = musae_xcalloc(M * FEATURES_NEIGHBORS + 1, sizeof(int32_t));
    f->neighbor_cos = musae_xcalloc(M * FEATURES_NEIGHBORS + 1, sizeof(float));
    f->cf_indptr = musae_xcalloc(C + 1, sizeof(int64_t));
    f->cf_feature = musae_xcalloc(nnz + 1, sizeof(int32_t));
    f->cf_mean = musae_xcalloc(nnz + 1, sizeof(float));
    f->cf_max = musae_xcalloc(nnz + 1, sizeof(float));
    f->clip_path = musae_xcalloc(C + 1, sizeof(char *));
    f->clip_frames = musae_xcalloc(C + 1, sizeof(int32_t));
    f->clip_store_index = musae_xcalloc(C + 1, sizeof(int64_t));
}

void features_free(musae_features *f) {
    void *arrays[] = {f->n_active_frames, f->frame_density, f->clip_rate, f->max_act, f->mean_act, f->hist,
                      f->top_clip, f->top_clip_max, f->top_clip_frame, f->quantile_clip, f->random_clip, f->keep,
                      f->dead, f->neighbors, f->neighbor_cos, f->cf_indptr, f->cf_feature, f->cf_mean, f->cf_max,
                      f->clip_frames, f->clip_store_index};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(arrays[i]);
    if (f->clip_path)
        for (int64_t c = 0; c < f->C; c++) free(f->clip_path[c]);
    free(f->clip_path);
    memset(f, 0, sizeof *f);
}

/* ---- writer ----------------------------------------------------------------------------------------------- */

static int fsync_path(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* The per-clip table, streamed from cf in pieces of 64Ki entries (under 2 MiB at once). */
static int write_cf_streamed(musae_h5 *h, const features_cf_source *cf, int64_t nnz, char *err, size_t errlen) {
    const int64_t piece = 1 << 16, shape[1] = {nnz};
    musae_h5_create_dataset(h, "/clip_feature/feature", MUSAE_H5_I32, 1, shape);
    musae_h5_create_dataset(h, "/clip_feature/mean", MUSAE_H5_F32, 1, shape);
    musae_h5_create_dataset(h, "/clip_feature/max", MUSAE_H5_F32, 1, shape);
    int32_t *feat = musae_xmalloc(sizeof(int32_t) * (size_t)piece);
    float *mean = musae_xmalloc(sizeof(float) * (size_t)piece), *mx = musae_xmalloc(sizeof(float) * (size_t)piece);
    int rc = 0;
    for (int64_t e0 = 0; e0 < nnz && !rc; e0 += piece) {
        const int64_t n = nnz - e0 < piece ? nnz - e0 : piece;
        rc = cf->read(cf->ctx, e0, n, feat, mean, mx, err, errlen);
        if (rc) break;
        musae_h5_write_rows(h, "/clip_feature/feature", MUSAE_H5_I32, e0, n, feat);
        musae_h5_write_rows(h, "/clip_feature/mean", MUSAE_H5_F32, e0, n, mean);
        musae_h5_write_rows(h, "/clip_feature/max", MUSAE_H5_F32, e0, n, mx);
    }
    free(feat);
    free(mean);
    free(mx);
    return rc;
}

int features_write(const char *path, const musae_features *f, const features_cf_source *cf, char *err, size_t errlen) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    musae_h5 *h = musae_h5_create(tmp, err, errlen);
    if (!h) return -1;
    const int64_t M = f->M, N = f->N, C = f->C, nnz = f->nnz;
    const int64_t sM[1] = {M}, sMN[2] = {M, N}, sMH[2] = {M, FEATURES_HIST_BINS}, sE[1] = {FEATURES_HIST_BINS + 1};
    const int64_t sQ[3] = {M, FEATURES_DECILES, FEATURES_PER_DECILE}, sR[2] = {M, FEATURES_RANDOM};
    const int64_t sNb[2] = {M, FEATURES_NEIGHBORS}, sC1[1] = {C + 1}, sZ[1] = {nnz}, sC[1] = {C};
    /* root attributes first: a reader of a .partial sees complete = 0 */
    musae_h5_attr_str(h, "/", "format", FEATURES_FORMAT);
    musae_h5_attr_i64(h, "/", "format_version", FEATURES_FORMAT_VERSION);
    musae_h5_attr_i64(h, "/", "complete", 0);
    musae_h5_write(h, "/features/n_active_frames", MUSAE_H5_I64, 1, sM, f->n_active_frames);
    musae_h5_write(h, "/features/frame_density", MUSAE_H5_F64, 1, sM, f->frame_density);
    musae_h5_write(h, "/features/clip_rate", MUSAE_H5_F64, 1, sM, f->clip_rate);
    musae_h5_write(h, "/features/max_act", MUSAE_H5_F32, 1, sM, f->max_act);
    musae_h5_write(h, "/features/mean_act", MUSAE_H5_F32, 1, sM, f->mean_act);
    musae_h5_write(h, "/features/hist", MUSAE_H5_I64, 2, sMH, f->hist);
    musae_h5_write(h, "/features/hist_edges", MUSAE_H5_F32, 1, sE, f->hist_edges);
    musae_h5_write(h, "/features/top_clip", MUSAE_H5_I32, 2, sMN, f->top_clip);
    musae_h5_write(h, "/features/top_clip_max", MUSAE_H5_F32, 2, sMN, f->top_clip_max);
    musae_h5_write(h, "/features/top_clip_frame", MUSAE_H5_I32, 2, sMN, f->top_clip_frame);
    musae_h5_write(h, "/features/quantile_clip", MUSAE_H5_I32, 3, sQ, f->quantile_clip);
    musae_h5_write(h, "/features/random_clip", MUSAE_H5_I32, 2, sR, f->random_clip);
    musae_h5_write(h, "/features/keep", MUSAE_H5_U8, 1, sM, f->keep);
    musae_h5_attr_f64(h, "/features/keep", "min_rate", f->min_rate);
    musae_h5_attr_f64(h, "/features/keep", "max_rate", f->max_rate);
    musae_h5_write(h, "/features/dead", MUSAE_H5_U8, 1, sM, f->dead);
    musae_h5_write(h, "/features/neighbors", MUSAE_H5_I32, 2, sNb, f->neighbors);
    musae_h5_write(h, "/features/neighbor_cos", MUSAE_H5_F32, 2, sNb, f->neighbor_cos);
    musae_h5_write(h, "/clip_feature/indptr", MUSAE_H5_I64, 1, sC1, f->cf_indptr);
    if (cf) {
        if (write_cf_streamed(h, cf, nnz, err, errlen)) {
            musae_h5_close(h, NULL, 0);
            unlink(tmp);
            return -1;
        }
    } else {
        musae_h5_write(h, "/clip_feature/feature", MUSAE_H5_I32, 1, sZ, f->cf_feature);
        musae_h5_write(h, "/clip_feature/mean", MUSAE_H5_F32, 1, sZ, f->cf_mean);
        musae_h5_write(h, "/clip_feature/max", MUSAE_H5_F32, 1, sZ, f->cf_max);
    }
    musae_h5_write_strings(h, "/clips/path", C, (const char *const *)f->clip_path);
    musae_h5_write(h, "/clips/n_frames", MUSAE_H5_I32, 1, sC, f->clip_frames);
    musae_h5_write(h, "/clips/store_index", MUSAE_H5_I64, 1, sC, f->clip_store_index);
    char s[32];
    musae_h5_attr_str(h, "/", "sae", f->sae);
    musae_h5_attr_str(h, "/", "sae_sha256", f->sae_sha256);
    musae_h5_attr_str(h, "/", "acts", f->acts);
    musae_h5_attr_str(h, "/", "model", f->model);
    musae_h5_attr_i64(h, "/", "layer", f->layer);
    musae_h5_attr_i64(h, "/", "d_model", f->d_model);
    musae_h5_attr_i64(h, "/", "k", f->k);
    musae_h5_attr_i64(h, "/", "num_latents", M);
    musae_h5_attr_str(h, "/", "selection", f->selection);
    musae_h5_attr_f64(h, "/", "threshold", f->threshold);
    musae_h5_attr_str(h, "/", "split", f->split);
    musae_h5_attr_f64(h, "/", "val_fraction", f->val_fraction);
    snprintf(s, sizeof s, "%" PRIu64, f->split_seed); /* u64 seeds as decimal strings, as musae.json has them */
    musae_h5_attr_str(h, "/", "split_seed", s);
    snprintf(s, sizeof s, "%" PRIu64, f->seed);
    musae_h5_attr_str(h, "/", "seed", s);
    musae_h5_attr_i64(h, "/", "top", N);
    musae_h5_attr_f64(h, "/", "frame_rate", f->frame_rate);
    musae_h5_attr_i64(h, "/", "n_frames", f->n_frames);
    musae_h5_attr_i64(h, "/", "n_nonfinite_rows", f->n_nonfinite_rows);
    musae_h5_attr_i64(h, "/", "n_clips_empty", f->n_clips_empty);
    musae_h5_attr_str(h, "/", "musae_version", MUSAE_VERSION);
    musae_h5_attr_i64(h, "/", "complete", 1);
    if (musae_h5_close(h, err, errlen)) {
        unlink(tmp);
        return -1;
    }
    if (fsync_path(tmp) || rename(tmp, path)) {
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    fsync_path(slash ? dir : "."); /* the rename itself durable */
    return 0;
}

/* ---- reader ----------------------------------------------------------------------------------------------- */

int features_is_file(const char *path) {
    char err[512], fmt[64];
    musae_h5 *h = musae_h5_open(path, err, sizeof err);
    if (!h) return 0;
    int ok = musae_h5_get_str(h, "/", "format", fmt, sizeof fmt, err, sizeof err) == 0 && !strcmp(fmt, FEATURES_FORMAT);
    musae_h5_close(h, NULL, 0);
    return ok;
}

#define TRY(expr)                                                                                          \
    do {                                                                                                   \
        if ((expr) != 0) goto fail;                                                                        \
    } while (0)

/* A u64 seed stored as a decimal string. */
static int get_u64(musae_h5 *h, const char *key, uint64_t *out, char *err, size_t errlen) {
    char s[64];
    if (musae_h5_get_str(h, "/", key, s, sizeof s, err, errlen)) return -1;
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 10);
    if (errno || *end || !s[0]) {
        snprintf(err, errlen, "%s: attribute '%s' = '%s' is not an unsigned integer", musae_h5_path(h), key, s);
        return -1;
    }
    return 0;
}

/* The checks a reader needs beyond shapes: indices in range, the CSR monotone. */
static int check_ranges(const musae_features *f, const char *path, char *err, size_t errlen) {
    const char *bad = NULL;
    if (f->cf_indptr[0] != 0 || f->cf_indptr[f->C] != f->nnz) bad = "/clip_feature/indptr does not span [0, nnz]";
    for (int64_t c = 0; !bad && c < f->C; c++)
        if (f->cf_indptr[c + 1] < f->cf_indptr[c]) bad = "/clip_feature/indptr decreases";
    for (int64_t e = 0; !bad && e < f->nnz; e++)
        if (f->cf_feature[e] < 0 || f->cf_feature[e] >= f->M) bad = "/clip_feature/feature out of range";
    for (int64_t i = 0; !bad && i < f->M * f->N; i++)
        if (f->top_clip[i] < -1 || f->top_clip[i] >= f->C) bad = "/features/top_clip out of range";
    for (int64_t i = 0; !bad && i < f->M * FEATURES_DECILES * FEATURES_PER_DECILE; i++)
        if (f->quantile_clip[i] < -1 || f->quantile_clip[i] >= f->C) bad = "/features/quantile_clip out of range";
    for (int64_t i = 0; !bad && i < f->M * FEATURES_RANDOM; i++)
        if (f->random_clip[i] < -1 || f->random_clip[i] >= f->C) bad = "/features/random_clip out of range";
    for (int64_t i = 0; !bad && i < f->M * FEATURES_NEIGHBORS; i++)
        if (f->neighbors[i] < -1 || f->neighbors[i] >= f->M) bad = "/features/neighbors out of range";
    if (bad) snprintf(err, errlen, "%s: %s", path, bad);
    return bad ? -1 : 0;
}

int features_read(const char *path, musae_features *f, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    err[0] = 0;
    musae_h5 *h = musae_h5_open(path, err, errlen);
    if (!h) return -1;
    char fmt[64];
    int64_t version, sh[3];
    if (musae_h5_get_str(h, "/", "format", fmt, sizeof fmt, err, errlen) || strcmp(fmt, FEATURES_FORMAT)) {
        snprintf(err, errlen, "%s: not a FEATURES file (root attribute format is not \"%s\")", path, FEATURES_FORMAT);
        musae_h5_close(h, NULL, 0);
        return -1;
    }
    TRY(musae_h5_get_i64(h, "/", "format_version", &version, err, errlen));
    if (version != FEATURES_FORMAT_VERSION) {
        snprintf(err, errlen, "%s: format_version %lld, this musae reads %d", path, (long long)version,
                 FEATURES_FORMAT_VERSION);
        goto fail;
    }
    TRY(musae_h5_get_i64(h, "/", "complete", &f->complete, err, errlen));
    if (f->complete != 1) {
        snprintf(err, errlen, "%s: complete = %lld (an unfinished write; run musae analyze again)", path,
                 (long long)f->complete);
        goto fail;
    }
    TRY(musae_h5_get_i64(h, "/", "num_latents", &f->M, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "top", &f->N, err, errlen));
    if (musae_h5_shape(h, "/clips/n_frames", sh, 1, err, errlen) != 1) goto fail;
    f->C = sh[0];
    if (musae_h5_shape(h, "/clip_feature/feature", sh, 1, err, errlen) != 1) goto fail;
    f->nnz = sh[0];
    if (f->M <= 0 || f->N <= 0) {
        snprintf(err, errlen, "%s: num_latents %lld / top %lld not positive", path, (long long)f->M, (long long)f->N);
        goto fail;
    }
    features_alloc(f);
    const int64_t M = f->M, N = f->N, C = f->C, nnz = f->nnz;
    const int64_t sM[1] = {M}, sMN[2] = {M, N}, sMH[2] = {M, FEATURES_HIST_BINS}, sE[1] = {FEATURES_HIST_BINS + 1};
    const int64_t sQ[3] = {M, FEATURES_DECILES, FEATURES_PER_DECILE}, sR[2] = {M, FEATURES_RANDOM};
    const int64_t sNb[2] = {M, FEATURES_NEIGHBORS}, sC1[1] = {C + 1}, sZ[1] = {nnz}, sC[1] = {C};
    TRY(musae_h5_read(h, "/features/n_active_frames", MUSAE_H5_I64, 1, sM, f->n_active_frames, err, errlen));
    TRY(musae_h5_read(h, "/features/frame_density", MUSAE_H5_F64, 1, sM, f->frame_density, err, errlen));
    TRY(musae_h5_read(h, "/features/clip_rate", MUSAE_H5_F64, 1, sM, f->clip_rate, err, errlen));
    TRY(musae_h5_read(h, "/features/max_act", MUSAE_H5_F32, 1, sM, f->max_act, err, errlen));
    TRY(musae_h5_read(h, "/features/mean_act", MUSAE_H5_F32, 1, sM, f->mean_act, err, errlen));
    TRY(musae_h5_read(h, "/features/hist", MUSAE_H5_I64, 2, sMH, f->hist, err, errlen));
    TRY(musae_h5_read(h, "/features/hist_edges", MUSAE_H5_F32, 1, sE, f->hist_edges, err, errlen));
    TRY(musae_h5_read(h, "/features/top_clip", MUSAE_H5_I32, 2, sMN, f->top_clip, err, errlen));
    TRY(musae_h5_read(h, "/features/top_clip_max", MUSAE_H5_F32, 2, sMN, f->top_clip_max, err, errlen));
    TRY(musae_h5_read(h, "/features/top_clip_frame", MUSAE_H5_I32, 2, sMN, f->top_clip_frame, err, errlen));
    TRY(musae_h5_read(h, "/features/quantile_clip", MUSAE_H5_I32, 3, sQ, f->quantile_clip, err, errlen));
    TRY(musae_h5_read(h, "/features/random_clip", MUSAE_H5_I32, 2, sR, f->random_clip, err, errlen));
    TRY(musae_h5_read(h, "/features/keep", MUSAE_H5_U8, 1, sM, f->keep, err, errlen));
    TRY(musae_h5_get_f64(h, "/features/keep", "min_rate", &f->min_rate, err, errlen));
    TRY(musae_h5_get_f64(h, "/features/keep", "max_rate", &f->max_rate, err, errlen));
    TRY(musae_h5_read(h, "/features/dead", MUSAE_H5_U8, 1, sM, f->dead, err, errlen));
    TRY(musae_h5_read(h, "/features/neighbors", MUSAE_H5_I32, 2, sNb, f->neighbors, err, errlen));
    TRY(musae_h5_read(h, "/features/neighbor_cos", MUSAE_H5_F32, 2, sNb, f->neighbor_cos, err, errlen));
    TRY(musae_h5_read(h, "/clip_feature/indptr", MUSAE_H5_I64, 1, sC1, f->cf_indptr, err, errlen));
    TRY(musae_h5_read(h, "/clip_feature/feature", MUSAE_H5_I32, 1, sZ, f->cf_feature, err, errlen));
    TRY(musae_h5_read(h, "/clip_feature/mean", MUSAE_H5_F32, 1, sZ, f->cf_mean, err, errlen));
    TRY(musae_h5_read(h, "/clip_feature/max", MUSAE_H5_F32, 1, sZ, f->cf_max, err, errlen));
    TRY(musae_h5_read(h, "/clips/n_frames", MUSAE_H5_I32, 1, sC, f->clip_frames, err, errlen));
    TRY(musae_h5_read(h, "/clips/store_index", MUSAE_H5_I64, 1, sC, f->clip_store_index, err, errlen));
    free(f->clip_path);
    f->clip_path = musae_h5_read_strings(h, "/clips/path", C, err, errlen);
    if (!f->clip_path) goto fail;
    TRY(musae_h5_get_str(h, "/", "sae", f->sae, sizeof f->sae, err, errlen));
    TRY(musae_h5_get_str(h, "/", "sae_sha256", f->sae_sha256, sizeof f->sae_sha256, err, errlen));
    TRY(musae_h5_get_str(h, "/", "acts", f->acts, sizeof f->acts, err, errlen));
    TRY(musae_h5_get_str(h, "/", "model", f->model, sizeof f->model, err, errlen));
    TRY(musae_h5_get_str(h, "/", "selection", f->selection, sizeof f->selection, err, errlen));
    TRY(musae_h5_get_str(h, "/", "split", f->split, sizeof f->split, err, errlen));
    TRY(musae_h5_get_str(h, "/", "musae_version", f->musae_version, sizeof f->musae_version, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "layer", &f->layer, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "d_model", &f->d_model, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "k", &f->k, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "n_frames", &f->n_frames, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "n_nonfinite_rows", &f->n_nonfinite_rows, err, errlen));
    TRY(musae_h5_get_i64(h, "/", "n_clips_empty", &f->n_clips_empty, err, errlen));
    TRY(musae_h5_get_f64(h, "/", "threshold", &f->threshold, err, errlen));
    TRY(musae_h5_get_f64(h, "/", "val_fraction", &f->val_fraction, err, errlen));
    TRY(musae_h5_get_f64(h, "/", "frame_rate", &f->frame_rate, err, errlen));
    TRY(get_u64(h, "split_seed", &f->split_seed, err, errlen));
    TRY(get_u64(h, "seed", &f->seed, err, errlen));
    TRY(check_ranges(f, path, err, errlen));
    musae_h5_close(h, NULL, 0);
    return 0;
fail:
    musae_h5_close(h, NULL, 0);
    features_free(f);
    return -1;
}

/* ---- summary ---------------------------------------------------------------------------------------------- */

static int cmp_f64(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void features_describe(const musae_features *f, const char *path, FILE *out) {
    const int64_t M = f->M;
    int64_t kept = 0, dead = 0, rare = 0, common = 0;
    for (int64_t i = 0; i < M; i++) {
        kept += f->keep[i];
        dead += f->dead[i];
        rare += !f->dead[i] && f->clip_rate[i] < f->min_rate;
        common += f->clip_rate[i] > f->max_rate;
    }
    fprintf(out, "FEATURES %s (musae %s)\n", path, f->musae_version);
    fprintf(out, "sae        %s (sha256 %.16s...)\nacts       %s (%s, layer %lld, d_model %lld)\n", f->sae,
            f->sae_sha256, f->acts, f->model, (long long)f->layer, (long long)f->d_model);
    fprintf(out, "latents    %lld, k %lld (%s)\n", (long long)M, (long long)f->k, f->selection);
    fprintf(out, "split      %s: %lld clips, %lld frames (%.2f h at %g frames/s); %lld non-finite rows skipped, "
                 "%lld clips without a finite row\n",
            f->split, (long long)f->C, (long long)f->n_frames, (double)f->n_frames / f->frame_rate / 3600.0,
            f->frame_rate, (long long)f->n_nonfinite_rows, (long long)f->n_clips_empty);
    fprintf(out, "kept       %lld (%.1f%%) with clip rate in [%g, %g]\n", (long long)kept, 100.0 * kept / M,
            f->min_rate, f->max_rate);
    fprintf(out, "dead       %lld (never fired)\ntoo rare   %lld (fired, clip rate < %g)\ntoo common %lld (clip "
                 "rate > %g)\n",
            (long long)dead, (long long)rare, f->min_rate, (long long)common, f->max_rate);
    double *dens = musae_xmalloc(sizeof(double) * (size_t)(M + 1));
    memcpy(dens, f->frame_density, sizeof(double) * (size_t)M);
    qsort(dens, (size_t)M, sizeof(double), cmp_f64);
    const double qs[] = {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0};
    fprintf(out, "frame density quantiles:");
    for (int q = 0; q < 7; q++) fprintf(out, " q%g %.3g", qs[q] * 100, dens[(int64_t)floor(qs[q] * (double)(M - 1))]);
    fprintf(out, "\n");
    free(dens);
    /* the 20 kept features with the largest max activation (ties to the lower latent) */
    int64_t best[20];
    int nb = 0;
    for (int64_t i = 0; i < M; i++) {
        if (!f->keep[i]) continue;
        int at = nb < 20 ? nb++ : 20;
        while (at > 0 && f->max_act[best[at - 1]] < f->max_act[i]) {
            if (at < 20) best[at] = best[at - 1];
            at--;
        }
        if (at < 20) best[at] = i;
    }
    fprintf(out, "top kept features by max activation:\n  %8s %10s %10s %10s  %s\n", "feature", "max_act", "clip_rate",
            "density", "top clip");
    for (int j = 0; j < nb; j++) {
        const int64_t i = best[j];
        const int32_t c = f->top_clip[i * f->N];
        fprintf(out, "  %8lld %10.4g %10.4f %10.3g  %s\n", (long long)i, f->max_act[i], f->clip_rate[i],
                f->frame_density[i], c >= 0 ? f->clip_path[c] : "-");
    }
}
