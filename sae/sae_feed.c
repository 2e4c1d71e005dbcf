/* The batch reader thread and its slot ring (sae/sae_feed.h).
 *
 * Slot states move FREE → (reader) READY → (consumer) HELD → (release) FREE. The reader fills slots in batch
 * order i % n_slots and the consumer takes them in the same order, so order needs no bookkeeping beyond the
 * two counters. One mutex and one condition variable guard the states; the reads themselves run unlocked. */
#include "sae/sae_feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

enum { SLOT_FREE = 0, SLOT_READY = 1, SLOT_HELD = 2 };

typedef struct {
    int state;
    float *x[MUSAE_STORE_MAX_LAYERS];
    int64_t rows, index;
    musae_stream_pos pos;
} feed_slot;

struct sae_feed {
    musae_stream *st;
    int n_layers, d, n_slots;
    int64_t batch, total_rows;
    sae_feed_allocator alloc;
    feed_slot slot[SAE_FEED_MAX_SLOTS];
    int64_t next_read, next_take; /* batch numbers */
    int stop, done;               /* done: the reader delivered its end marker and left */
    double wait_s, read_s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

static void *feed_alloc(const sae_feed *f, size_t bytes) {
    return f->alloc.alloc ? f->alloc.alloc(bytes, f->alloc.ctx) : musae_xmalloc(bytes);
}
static void feed_free(const sae_feed *f, void *p) {
    if (f->alloc.free) f->alloc.free(p, f->alloc.ctx);
    else free(p);
}

static void *reader_main(void *arg) {
    sae_feed *f = arg;
    int64_t delivered = 0;
    for (int64_t i = 0;; i++) {
        feed_slot *s = &f->slot[i % f->n_slots];
        pthread_mutex_lock(&f->mu);
        while (s->state != SLOT_FREE && !f->stop) pthread_cond_wait(&f->cv, &f->mu);
        const int stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop) break;
        int64_t want = f->total_rows - delivered < f->batch ? f->total_rows - delivered : f->batch;
        int64_t got = 0;
        double t0 = musae_now();
        if (want > 0) got = musae_stream_next(f->st, want, s->x);
        double t1 = musae_now();
        delivered += got;
        pthread_mutex_lock(&f->mu);
        s->rows = got;
        s->index = i;
        s->pos = musae_stream_tell(f->st);
        s->state = SLOT_READY;
        f->next_read = i + 1;
        f->read_s += t1 - t0;
        /* an empty batch is the end marker; a short one (one-pass stream ran out) is the last with rows */
        if (got == 0) f->done = 1;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (got == 0 || got < want) {
            if (got > 0) { /* still owe the consumer the end marker: after the short batch, an empty one */
                feed_slot *e = &f->slot[(i + 1) % f->n_slots];
                pthread_mutex_lock(&f->mu);
                while (e->state != SLOT_FREE && !f->stop) pthread_cond_wait(&f->cv, &f->mu);
                if (!f->stop) {
                    e->rows = 0;
                    e->index = i + 1;
                    e->pos = s->pos;
                    e->state = SLOT_READY;
                    f->next_read = i + 2;
                }
                f->done = 1;
                pthread_cond_broadcast(&f->cv);
                pthread_mutex_unlock(&f->mu);
            }
            break;
        }
    }
    return NULL;
}

sae_feed *sae_feed_open(musae_stream *st, int n_layers, int d, int64_t batch, int64_t total_rows, int n_slots,
                        const sae_feed_allocator *alloc) {
    MUSAE_ASSERT(st && n_layers >= 1 && n_layers <= MUSAE_STORE_MAX_LAYERS && d >= 1, "n_layers %d d %d", n_layers, d);
    MUSAE_ASSERT(batch >= 1 && total_rows >= 0, "batch %lld total %lld", (long long)batch, (long long)total_rows);
    MUSAE_ASSERT(n_slots >= 2 && n_slots <= SAE_FEED_MAX_SLOTS, "%d slots", n_slots);
    sae_feed *f = musae_xcalloc(1, sizeof *f);
    f->st = st;
    f->n_layers = n_layers;
    f->d = d;
    f->n_slots = n_slots;
    f->batch = batch;
    f->total_rows = total_rows;
    if (alloc) f->alloc = *alloc;
    for (int s = 0; s < n_slots; s++)
        for (int l = 0; l < n_layers; l++) f->slot[s].x[l] = feed_alloc(f, sizeof(float) * (size_t)batch * (size_t)d);
    MUSAE_ASSERT(pthread_mutex_init(&f->mu, NULL) == 0, "mutex");
    MUSAE_ASSERT(pthread_cond_init(&f->cv, NULL) == 0, "condition variable");
    int rc = pthread_create(&f->thread, NULL, reader_main, f);
    MUSAE_ASSERT(rc == 0, "cannot start the batch reader thread: %s", strerror(rc));
    return f;
}

int sae_feed_next(sae_feed *f, sae_feed_batch *b) {
    memset(b, 0, sizeof *b);
    feed_slot *s = &f->slot[f->next_take % f->n_slots];
    double t0 = musae_now();
    pthread_mutex_lock(&f->mu);
    while (s->state != SLOT_READY) {
        if (f->done && f->next_take >= f->next_read) { /* called again after the end marker */
            pthread_mutex_unlock(&f->mu);
            return 0;
        }
        pthread_cond_wait(&f->cv, &f->mu);
    }
    MUSAE_ASSERT(s->index == f->next_take, "feed slot holds batch %lld, expected %lld", (long long)s->index,
                 (long long)f->next_take);
    s->state = SLOT_HELD;
    f->wait_s += musae_now() - t0;
    pthread_mutex_unlock(&f->mu);
    b->slot = (int)(f->next_take % f->n_slots);
    b->rows = s->rows;
    b->x = s->x;
    b->pos = s->pos;
    b->index = s->index;
    f->next_take++;
    if (s->rows == 0) { /* the end marker holds no data: give it straight back */
        sae_feed_release(f, b->slot);
        return 0;
    }
    return 1;
}

void sae_feed_release(sae_feed *f, int slot) {
    MUSAE_ASSERT(slot >= 0 && slot < f->n_slots, "slot %d of %d", slot, f->n_slots);
    pthread_mutex_lock(&f->mu);
    MUSAE_ASSERT(f->slot[slot].state == SLOT_HELD, "release of feed slot %d that the consumer does not hold", slot);
    f->slot[slot].state = SLOT_FREE;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

double sae_feed_wait_seconds(const sae_feed *f) {
    pthread_mutex_lock((pthread_mutex_t *)&f->mu);
    double s = f->wait_s;
    pthread_mutex_unlock((pthread_mutex_t *)&f->mu);
    return s;
}

double sae_feed_read_seconds(const sae_feed *f) {
    pthread_mutex_lock((pthread_mutex_t *)&f->mu);
    double s = f->read_s;
    pthread_mutex_unlock((pthread_mutex_t *)&f->mu);
    return s;
}

void sae_feed_close(sae_feed *f) {
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    MUSAE_ASSERT(pthread_join(f->thread, NULL) == 0, "join the batch reader thread");
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    for (int s = 0; s < f->n_slots; s++)
        for (int l = 0; l < f->n_layers; l++) feed_free(f, f->slot[s].x[l]);
    free(f);
}
