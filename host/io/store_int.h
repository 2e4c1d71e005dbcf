/* Internal to the activation store's files: store.c (HDF5 and the writer), store_read.c (the reader), store_lock.c
 * (the writer lock), store_stream.c (the shuffled stream) and store_join.c (the joined view); their HDF5 layer is
 * store_h5.h. The contract is store.h. */
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

/* The rows per chunk of a store of width d whose file does not say (store.c's default, for store_read.c). */
int64_t musae_store_default_chunk_rows(int d, musae_dtype dt);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STORE_INT_H */
