/* NCCL collectives over GPU buffers, on a dedicated communication stream. The communicator is created from
 * a unique id that rank 0 makes and broadcasts over MPI (host/dist/dist.h), so launch stays mpirun/srun.
 * Ordering with compute is by events (no host synchronisation): musae_nccl_wait_for(compute stream) before
 * a collective, musae_nccl_signal(compute stream) after it. Counts are elements. */
#ifndef MUSAE_NCCL_H
#define MUSAE_NCCL_H

#include <stddef.h>

#include "host/dist/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct musae_nccl musae_nccl; /* opaque: ncclComm_t, the comm stream and an event */

/* Selects GPU d->local_rank % device_count and builds the communicator over all ranks of d. */
musae_nccl *musae_nccl_init(const musae_dist *d);
void musae_nccl_free(musae_nccl *c);
int musae_nccl_device(const musae_nccl *c);
/* The comm stream waits for work queued so far on compute_stream (a cudaStream_t, passed as void*). */
void musae_nccl_wait_for(musae_nccl *c, void *compute_stream);
/* compute_stream waits for the collectives queued so far on the comm stream. */
void musae_nccl_signal(musae_nccl *c, void *compute_stream);
/* In-place sum over ranks of n floats on the device (group several calls with start/end). */
void musae_nccl_group_start(void);
void musae_nccl_group_end(void);
void musae_nccl_allreduce_sum_f32(musae_nccl *c, float *dev, size_t n);
/* recv[r * n + i] = rank r's send[i], n floats per rank, device buffers. */
void musae_nccl_allgather_f32(musae_nccl *c, const float *send, float *recv, size_t n);
void musae_nccl_sync(musae_nccl *c);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_NCCL_H */
