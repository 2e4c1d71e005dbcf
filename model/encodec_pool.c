/* EnCodec's pool of work buffers (model/encodec_pool.h). A short list searched linearly: an encoder and a
 * decode hold a few dozen buffers, so the list stays short and a lookup costs nothing next to the work. */
#include "model/encodec_pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"

enum { POOL_SLOTS = 96 };

struct encodec_pool {
    const musae_ops *ops;
    pthread_mutex_t mu;
    int n;                            /* slots in use, oldest first */
    void *buf[POOL_SLOTS];
    size_t bytes[POOL_SLOTS];
    size_t total;                     /* bytes held */
};

encodec_pool *encodec_pool_new(const musae_ops *ops) {
    encodec_pool *p = musae_xcalloc(1, sizeof *p);
    p->ops = ops;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

/* Removes slot i (the caller holds the lock). */
static void *take(encodec_pool *p, int i) {
    void *b = p->buf[i];
    p->total -= p->bytes[i];
    memmove(p->buf + i, p->buf + i + 1, (size_t)(p->n - i - 1) * sizeof p->buf[0]);
    memmove(p->bytes + i, p->bytes + i + 1, (size_t)(p->n - i - 1) * sizeof p->bytes[0]);
    p->n--;
    return b;
}

void *encodec_pool_get(encodec_pool *p, size_t bytes) {
    void *b = NULL;
    pthread_mutex_lock(&p->mu);
    for (int i = p->n - 1; i >= 0 && !b; i--) /* the most recently returned of that size */
        if (p->bytes[i] == bytes) b = take(p, i);
    pthread_mutex_unlock(&p->mu);
    return b ? b : p->ops->alloc(bytes);
}

void encodec_pool_put(encodec_pool *p, void *buf, size_t bytes) {
    if (!buf) return;
    if (bytes > ENCODEC_POOL_MAX_BYTES) {
        p->ops->free(buf);
        return;
    }
    void *drop[POOL_SLOTS + 1];
    int nd = 0;
    pthread_mutex_lock(&p->mu);
    while (p->n > 0 && (p->n == POOL_SLOTS || p->total + bytes > ENCODEC_POOL_MAX_BYTES)) drop[nd++] = take(p, 0);
    p->buf[p->n] = buf;
    p->bytes[p->n++] = bytes;
    p->total += bytes;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < nd; i++) p->ops->free(drop[i]); /* outside the lock: freeing device memory can wait */
}

void encodec_pool_free(encodec_pool *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) p->ops->free(p->buf[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
