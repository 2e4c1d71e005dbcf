/* safetensors: read (mmap, single file or sharded through model.safetensors.index.json) and write.
 *
 * File layout: u64 little-endian N, then N bytes of JSON header
 *   { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str} }
 * then the data section; offsets are relative to its start.
 *
 * The reader trusts nothing: header length against file size, JSON shape, known dtypes, shape products
 * (overflow included), shape x dtype size == byte span, spans inside the data section, no overlaps, no
 * gaps or trailing bytes (the rule of the reference implementation), unique names, string-only metadata.
 * Every rejection is one message naming the file, the tensor and what is wrong. */
#ifndef MUSAE_SAFETENSORS_H
#define MUSAE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "host/core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MUSAE_ST_MAX_RANK 8

typedef struct {
    char *name;
    char dtype[12];                    /* as written in the header: "F32", "BF16", "I64", ... */
    int rank;
    int64_t shape[MUSAE_ST_MAX_RANK];
    const uint8_t *data;               /* inside the mmapped file; not necessarily aligned */
    size_t nbytes;
    int file;                          /* index into musae_st.files */
    int used;                          /* set by lookups, for the "unused tensors" report */
} musae_st_tensor;

typedef struct {
    char *path;
    uint8_t *map;
    size_t size;
    size_t data_off; /* 8 + header length */
} musae_st_file;

typedef struct {
    char *path;                 /* what was opened (file, index or folder) */
    int n_files;
    musae_st_file *files;
    int n_tensors;
    musae_st_tensor *tensors;   /* sorted by name */
    int n_meta;
    char **meta_keys, **meta_values;
} musae_st;

/* Opens a .safetensors file, a model.safetensors.index.json, or a folder holding either. Returns 0, or -1
 * with a one-line reason in err (which names the file and, where relevant, the tensor). */
int musae_st_open(musae_st *st, const char *path, char *err, size_t errlen);
/* Parses one in-memory file image (no mmap); the same validation. Used by the fuzz target. The buffer must
 * outlive st. */
int musae_st_parse(musae_st *st, const char *name, const uint8_t *buf, size_t size, char *err, size_t errlen);
void musae_st_close(musae_st *st);

/* Lookup by exact name (marks it used); NULL if absent. */
musae_st_tensor *musae_st_find(musae_st *st, const char *name);
/* Whether dtype string can be converted to t on load (F64 and all of F32/F16/BF16/I32/I64). */
int musae_st_dtype_known(const char *dtype);
size_t musae_st_dtype_size(const char *dtype); /* 0 if unknown */
/* Copies the tensor into dst as `dt`, converting (floats via f32, ints exactly). Aborts on an impossible
 * conversion. Tensors of 2 MiB and more are read by the OpenMP threads in 1 MiB blocks, each block's file
 * pages mapped in one call (MADV_POPULATE_READ); the bytes written do not depend on the thread count. */
void musae_st_read(const musae_st *st, const musae_st_tensor *t, void *dst, musae_dtype dt);
/* musae_st_read that also returns the first flat index of a non-finite value in dst when dt is F32 (checked
 * block by block while the block is in cache), or -1 (always -1 for other dt). */
int64_t musae_st_read_checked(const musae_st *st, const musae_st_tensor *t, void *dst, musae_dtype dt);
/* The first index of a non-finite value in x[0, n), or -1: the check musae_st_read_checked makes, for a
 * tensor used where it lies in a mapping (its pages are mapped as it goes, by the OpenMP threads). */
int64_t musae_f32_first_nonfinite(const float *x, size_t n);
/* Starts reading the file pages of every tensor whose name begins with prefix into the page cache
 * (MADV_WILLNEED), so a loader walking them in its own order finds them there, or at least finds the disk
 * busy with them, on a cold cache. */
void musae_st_prefetch(const musae_st *st, const char *prefix);
/* musae_fail unless t (tensor `name`) has exactly `rank` dims `shape`: "<file>: tensor '<name>' has shape [got],
 * expected [want]". */
void musae_st_check_shape(const musae_st *st, const musae_st_tensor *t, const char *name, int rank,
                          const int64_t *shape);
/* Finds `name`, checks its shape (got/expected in the message, musae_fail on mismatch or absence) and
 * returns a malloc'd copy converted to dt. */
void *musae_st_load(musae_st *st, const char *name, musae_dtype dt, int rank, const int64_t *shape);
/* Like musae_st_load but any shape; fills rank/shape. NULL if the tensor is absent. */
void *musae_st_load_any(musae_st *st, const char *name, musae_dtype dt, int *rank, int64_t *shape);
const char *musae_st_meta(const musae_st *st, const char *key);
/* Names of tensors starting with prefix that no lookup touched; returns the count and logs each. */
int musae_st_report_unused(const musae_st *st, const char *prefix);
int64_t musae_st_numel(const musae_st_tensor *t);
const char *musae_st_file_of(const musae_st *st, const musae_st_tensor *t);

/* ---- writer: collects (name, dtype, shape, pointer) and writes atomically (temp file, fsync, rename) ---- */
typedef struct musae_st_writer musae_st_writer;
musae_st_writer *musae_st_writer_new(void);
/* data is copied at add time, so the caller may free it afterwards. */
void musae_st_writer_add(musae_st_writer *w, const char *name, musae_dtype dt, int rank, const int64_t *shape,
                         const void *data);
void musae_st_writer_meta(musae_st_writer *w, const char *key, const char *value);
/* Returns 0, or -1 with the reason in err. */
int musae_st_writer_save(musae_st_writer *w, const char *path, char *err, size_t errlen);
/* The file's bytes in memory (malloc'd, *size of them): what musae_st_writer_save writes. */
uint8_t *musae_st_writer_image(const musae_st_writer *w, size_t *size);
void musae_st_writer_free(musae_st_writer *w);

/* Writes data to path atomically: path.tmp.<pid>, fsync, rename, fsync of the folder. 0 or -1 (errno set). */
int musae_write_file_atomic(const char *path, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAFETENSORS_H */
