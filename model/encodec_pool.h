/* Work buffers that EnCodec's encoders and decodes give back for the next one to reuse.
 *
 * Every encoder (capture builds one per clip) and every decode needs ~100 MB of device buffers per finite
 * stack (the windows' activations). Fresh buffers cost their first touch: the kernel zeroes each page on
 * its first write (about a tenth of the CPU samples of an encode on the CPU table, more under memory
 * pressure). The pool keeps freed buffers, keyed by their exact size (the same chunk size asks for the
 * same sizes clip after clip), up to ENCODEC_POOL_MAX_BYTES in all, dropping the least recently returned
 * first. Thread-safe: capture's EnCodec thread and a decode may share one codec. */
#ifndef MUSAE_ENCODEC_POOL_H
#define MUSAE_ENCODEC_POOL_H

#include <stddef.h>

#include "kernels/ops.h"

#define ENCODEC_POOL_MAX_BYTES ((size_t)1 << 30)

typedef struct encodec_pool encodec_pool;

encodec_pool *encodec_pool_new(const musae_ops *ops);
/* A buffer of exactly `bytes` (its contents are whatever the last user left: callers write before reading),
 * from the pool when one of that size is there, else from ops->alloc. */
void *encodec_pool_get(encodec_pool *p, size_t bytes);
/* Gives back a buffer that encodec_pool_get returned for `bytes` (NULL is ignored). */
void encodec_pool_put(encodec_pool *p, void *buf, size_t bytes);
/* Frees the pool and every buffer in it (all buffers must have been given back). */
void encodec_pool_free(encodec_pool *p);

#endif /* MUSAE_ENCODEC_POOL_H */
