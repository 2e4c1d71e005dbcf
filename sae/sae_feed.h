/* A reader thread that fills a ring of host batch buffers from an activation stream (host/io/store.h) ahead of
 * the trainer: while the consumer trains on batch i, the thread reads batch i+1 into the next slot.
 *
 * The batch schedule is the run loop's: batches of `batch` rows until `total_rows` rows have been delivered
 * (the last one shorter), so a consumer sees exactly the rows it would get from musae_stream_next with the same
 * requests. Each batch carries the stream position after it, for exact-resume state (the stream itself runs
 * ahead of the consumer and its own musae_stream_tell would name rows not yet trained on).
 *
 * Slots are allocated through an allocator so the GPU trainer can use pinned memory (sae/sae_gpu.h); a slot
 * returns to the thread only when the consumer releases it, which sae_gpu does from a CUDA host callback once
 * the copy out of the slot has finished. Release is therefore safe from any thread. Pure C, no CUDA. */
#ifndef MUSAE_SAE_FEED_H
#define MUSAE_SAE_FEED_H

#include <stddef.h>
#include <stdint.h>

#include "host/io/store.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { SAE_FEED_MAX_SLOTS = 8 };

typedef struct {
    void *(*alloc)(size_t bytes, void *ctx); /* NULL: musae_xmalloc / free */
    void (*free)(void *p, void *ctx);
    void *ctx;
} sae_feed_allocator;

typedef struct {
    int slot;
    int64_t rows;           /* 0: the schedule is done (or a one-pass stream ended) */
    float *const *x;        /* x[l]: [rows, d] f32 for the stream's layer l; valid until released */
    musae_stream_pos pos;   /* the stream position after this batch */
    int64_t index;          /* batch number, from 0 */
} sae_feed_batch;

typedef struct sae_feed sae_feed;

/* Starts the thread. st stays owned by the caller and must outlive the feed; nobody else may read it meanwhile.
 * n_layers/d: the stream's layers and width; n_slots in [2, SAE_FEED_MAX_SLOTS] (2 = double buffer). */
sae_feed *sae_feed_open(musae_stream *st, int n_layers, int d, int64_t batch, int64_t total_rows, int n_slots,
                        const sae_feed_allocator *alloc);
/* Blocks until the next batch is read (in order); returns 1 with *b filled, or 0 once the schedule is done
 * (b->rows = 0). Each returned slot must be released exactly once. Single consumer. */
int sae_feed_next(sae_feed *f, sae_feed_batch *b);
/* Gives a slot back to the reader. Any thread (a CUDA host callback included: it only locks and signals). */
void sae_feed_release(sae_feed *f, int slot);
/* Seconds the consumer spent blocked in sae_feed_next, and the reader thread spent in musae_stream_next. */
double sae_feed_wait_seconds(const sae_feed *f);
double sae_feed_read_seconds(const sae_feed *f);
/* Stops the thread (it finishes the batch it is reading) and frees the slots. Slots still held by the consumer
 * are freed too: release or stop using them first. */
void sae_feed_close(sae_feed *f);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_FEED_H */
