/* Internal to the activation store's files: store.c (HDF5 and the writer), store_read.c (the reader), store_lock.c
 * (the writer lock), store_stream.c (the shuffled stream) and store_join.c (the joined view). The contract is
 * store.h. */
#ifndef MUSAE_STORE_INT_H
#define MUSAE_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "host/core/check.h"
#include "host/io/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Who holds the writer lock of `store`, from "<store>.lock": 0 with its PID and host, or -1 (no lock, or one
 * that cannot be read). */
int musae_store_lock_holder(const char *store, long *pid, char *host, size_t cap);

/* The file to remove if this process exits before it is published (a store being created as
 * "<store>.creating"); NULL: none any more. One at a time. */
void musae_store_remove_at_exit(const char *path);

/* Rows [row0, row0 + n) of layer index li (not the layer number) in the storage dtype, into out. */
void musae_store_read_raw(musae_store *s, int li, int64_t row0, int64_t n, void *out);
/* n values of a storage dtype (f16 or f32) as f32. */
void musae_store_raw_to_f32(musae_dtype dt, const void *raw, size_t n, float *out);

/* For the other files that speak HDF5 (store_join.c): store.c's process-wide HDF5 lock (`path` names the file in
 * the messages of the calls under it), its one-line failure, the float16 type h5py reads as numpy float16, and
 * its attribute writer (hid_t obj and type as int64_t: n < 0 a scalar, else a 1-D array of n; an attribute of
 * that name is replaced). */
void musae_store_h5_enter(const char *path);
void musae_store_h5_leave(void);
MUSAE_NORETURN void musae_store_h5_failed(const char *expr);
int64_t musae_store_h5_f16_type(void);
void musae_store_h5_attr_write(int64_t obj, const char *name, int64_t type, int n, const void *data);

/* For store_read.c: the reason of the failed HDF5 call (the system error the file driver saw, else HDF5's innermost
 * message), rows [0, n) of a 1-D dataset d in memory type mem, the rows a 1-D dataset holds, and the rows per
 * chunk of a store of width d that does not say (hid_t as int64_t). */
void musae_store_h5_reason(char *out, size_t cap);
void musae_store_h5_read_1d(int64_t d, int64_t mem, int64_t n, void *out);
int64_t musae_store_h5_extent(int64_t d);
int64_t musae_store_default_chunk_rows(int d, musae_dtype dt);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STORE_INT_H */
