/* Internal to the activation store's files that speak HDF5 (store.c, store_read.c, store_join.c): the HDF5 layer of
 * store_h5.c. Every call into HDF5 happens between store_h5_lock and store_h5_unlock (serial HDF5 is not
 * thread-safe; the lock is host/io/h5.h's process-wide recursive one) and goes through H5_CHECK, so a failure is
 * one line naming the file and HDF5's reason ("No space left on device"). */
#ifndef MUSAE_STORE_H5_H
#define MUSAE_STORE_H5_H

#include <hdf5.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "host/core/check.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Takes the lock; `path` names the file in the messages of the calls under it. A writer's lock also says how many
 * clips its store keeps committed (*committed, read when a call fails), so the message can say so. */
void store_h5_lock(const char *path);
void store_h5_lock_writer(const char *path, const int64_t *committed);
void store_h5_unlock(void);

/* The failure of the HDF5 call `expr` under the lock; the reason of the failed call (the system error the file
 * driver saw, else HDF5's innermost message). */
MUSAE_NORETURN void store_h5_fail(const char *expr);
void store_h5_reason(char *out, size_t cap);
#define H5_CHECK(expr)                                                                                     \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY((expr) < 0)) store_h5_fail(#expr);                                              \
    } while (0)

/* A store failure: musae_fail, or between store_h5_soft_begin and store_h5_soft_end the message copied into the
 * caller's buffer and a longjmp to jb (a pipeline thread must not exit the process under its siblings' feet).
 * soft_begin returns the lock depth to give back to store_h5_soft_unwind after the jump, which releases the
 * holds taken since. */
MUSAE_NORETURN MUSAE_PRINTF(1, 2) void store_fail(const char *fmt, ...);
int store_h5_soft_begin(jmp_buf *jb, char *err, size_t cap);
void store_h5_soft_end(void);
void store_h5_soft_unwind(int depth);

/* The IEEE binary16 file type exactly as h5py's numpy float16 (the caller closes it). */
hid_t store_h5_f16_type(void);
/* Attributes: n < 0 a scalar, else a 1-D array of n (an attribute of that name is replaced); update overwrites
 * an existing fixed-size one in place; str writes variable-length UTF-8 (h5py reads a str). */
void store_h5_attr_write(hid_t obj, const char *name, hid_t type, int n, const void *data);
void store_h5_attr_update(hid_t obj, const char *name, hid_t type, const void *data);
void store_h5_attr_str(hid_t obj, const char *name, const char *s);
/* A chunked 1-D or 2-D dataset of 0 rows, unlimited along dim 0 (dims[1] fixed); grown and written by
 * store_h5_append_rows (rows [row0, row0 + n) from buf in memory type mem; width 0 for 1-D). */
hid_t store_h5_make_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims, const hsize_t *chunk);
void store_h5_append_rows(hid_t d, hid_t mem, int64_t row0, int64_t n, hsize_t width, const void *buf);
/* The writer's file access (metadata cache evictions off, superblock v0: store.h's crash-safety note). */
hid_t store_h5_writer_fapl(void);
/* Rows [0, n) of a 1-D dataset in memory type mem; the rows a 1-D dataset holds. */
void store_h5_read_1d(hid_t d, hid_t mem, int64_t n, void *out);
int64_t store_h5_extent(hid_t d);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STORE_H5_H */
