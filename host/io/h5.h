/* Plain HDF5 files of whole datasets and attributes, for the file contracts other than the activation store
 * (FEATURES.h5, docs/ANALYZE.md). With the store's files (store.c, store_read.c, store_join.c) and
 * descriptors_io.c these are the only files that include hdf5.h.
 *
 * A writer creates a new file (truncating one of that name), writes whole datasets (parent groups made on the
 * way: "/features/max_act") and attributes on the root or on a dataset, and closes it. The file uses the
 * earliest format (superblock v0) so every h5py and h5dump reads it. Atomic replacement is the caller's job
 * (write to a temporary name, musae_h5_close, rename).
 *
 * A reader opens a file read-only; every read names the dataset, checks its rank, shape and type class and
 * fails with a one-line reason naming the file and the dataset (never an HDF5 stack dump).
 *
 * Thread safety: serial HDF5 is not thread-safe, so every call here and in store.c holds one process-wide
 * recursive lock (musae_h5_lock), which callers may also hold around a sequence of calls. */
#ifndef MUSAE_H5_H
#define MUSAE_H5_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void musae_h5_lock(void);
void musae_h5_unlock(void);

typedef enum { MUSAE_H5_U8 = 0, MUSAE_H5_I32, MUSAE_H5_I64, MUSAE_H5_F32, MUSAE_H5_F64 } musae_h5_type;
size_t musae_h5_type_size(musae_h5_type t);

typedef struct musae_h5 musae_h5;

/* ---- writer ----------------------------------------------------------------------------------------------- */
/* Creates (truncates) path for writing; NULL with the reason in err. */
musae_h5 *musae_h5_create(const char *path, char *err, size_t errlen);
/* A dataset of the given rank (1..3) and shape from data (C order, element type t). Zero-sized dims are fine. */
void musae_h5_write(musae_h5 *h, const char *name, musae_h5_type t, int rank, const int64_t *shape, const void *data);
/* A dataset created empty (shape as above), then filled by rows along dim 0 with musae_h5_write_rows: for data
 * streamed from elsewhere that never sits in memory whole. */
void musae_h5_create_dataset(musae_h5 *h, const char *name, musae_h5_type t, int rank, const int64_t *shape);
void musae_h5_write_rows(musae_h5 *h, const char *name, musae_h5_type t, int64_t row0, int64_t n, const void *data);
/* A 1-D dataset of n variable-length UTF-8 strings (h5py reads str). */
void musae_h5_write_strings(musae_h5 *h, const char *name, int64_t n, const char *const *s);
/* Attributes on object `obj` ("/" for the root, or a dataset written before). Strings are variable-length
 * UTF-8; numbers are scalars. */
void musae_h5_attr_str(musae_h5 *h, const char *obj, const char *key, const char *value);
void musae_h5_attr_i64(musae_h5 *h, const char *obj, const char *key, int64_t value);
void musae_h5_attr_f64(musae_h5 *h, const char *obj, const char *key, double value);
/* Flushes and closes; 0, or -1 with the reason (a full disk) in err. The handle is freed either way. */
int musae_h5_close(musae_h5 *h, char *err, size_t errlen);

/* ---- reader ----------------------------------------------------------------------------------------------- */
/* Opens path read-only; NULL with the reason in err (missing, not HDF5). */
musae_h5 *musae_h5_open(const char *path, char *err, size_t errlen);
/* Whether the object exists. */
int musae_h5_has(musae_h5 *h, const char *name);
/* Rank and shape of a dataset: the rank, or -1 when it is missing (err says so). */
int musae_h5_shape(musae_h5 *h, const char *name, int64_t *shape, int max_rank, char *err, size_t errlen);
/* Reads a whole dataset into out (converted to t by HDF5, which must be the same class: integer or float),
 * after checking rank and shape (shape[i] < 0 accepts any extent). 0, or -1 with the reason in err. */
int musae_h5_read(musae_h5 *h, const char *name, musae_h5_type t, int rank, const int64_t *shape, void *out,
                  char *err, size_t errlen);
/* Rows [row0, row0 + n) along dim 0 of a dataset of rank 1..3 (already shape-checked by the caller). */
int musae_h5_read_rows(musae_h5 *h, const char *name, musae_h5_type t, int64_t row0, int64_t n, void *out, char *err,
                       size_t errlen);
/* A 1-D string dataset of n entries: malloc'd array of malloc'd strings (free each, then the array). */
char **musae_h5_read_strings(musae_h5 *h, const char *name, int64_t n, char *err, size_t errlen);
/* Attributes: 0, or -1 (missing or of the wrong kind) with the reason in err. */
int musae_h5_get_str(musae_h5 *h, const char *obj, const char *key, char *out, size_t cap, char *err, size_t errlen);
int musae_h5_get_i64(musae_h5 *h, const char *obj, const char *key, int64_t *out, char *err, size_t errlen);
int musae_h5_get_f64(musae_h5 *h, const char *obj, const char *key, double *out, char *err, size_t errlen);
const char *musae_h5_path(const musae_h5 *h);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_H5_H */
