/* The bounded FIFO between pipeline threads (queue.h). */
#include "host/core/queue.h"

#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

void musae_queue_init(musae_queue *q, int cap) {
    memset(q, 0, sizeof *q);
    q->items = musae_xcalloc((size_t)cap, sizeof(void *));
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
}
void musae_queue_free(musae_queue *q) {
    free(q->items);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
}
void musae_queue_put(musae_queue *q, void *it) {
    pthread_mutex_lock(&q->mu);
    double t0 = musae_now();
    while (q->n == q->cap) pthread_cond_wait(&q->not_full, &q->mu);
    q->wait_put += musae_now() - t0;
    q->items[(q->head + q->n++) % q->cap] = it;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}
void *musae_queue_get(musae_queue *q, int peek) {
    pthread_mutex_lock(&q->mu);
    double t0 = musae_now();
    while (q->n == 0) pthread_cond_wait(&q->not_empty, &q->mu);
    q->wait_get += musae_now() - t0;
    void *it = q->items[q->head];
    if (!peek) {
        q->head = (q->head + 1) % q->cap;
        q->n--;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return it;
}

void *musae_queue_peek_now(musae_queue *q) {
    pthread_mutex_lock(&q->mu);
    void *it = q->n ? q->items[q->head] : NULL;
    pthread_mutex_unlock(&q->mu);
    return it;
}
