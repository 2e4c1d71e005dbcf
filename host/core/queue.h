/* A bounded FIFO of pointers between threads (capture's reader, EnCodec, LM and writer stages): put blocks while
 * it is full, get while it is empty; the seconds each side spent blocked are kept, for the stage report. */
#ifndef MUSAE_QUEUE_H
#define MUSAE_QUEUE_H

#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    void **items; /* [cap], a ring from head */
    int cap, head, n;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    double wait_put, wait_get; /* seconds blocked */
} musae_queue;

void musae_queue_init(musae_queue *q, int cap);
void musae_queue_free(musae_queue *q);
void musae_queue_put(musae_queue *q, void *it);
/* Blocks for the next item; with peek the item stays in the queue. */
void *musae_queue_get(musae_queue *q, int peek);
/* The head item without blocking: NULL while the queue is empty. */
void *musae_queue_peek_now(musae_queue *q);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_QUEUE_H */
