/* The SAE trainer on one GPU (sae/sae_gpu.cu; built only with MUSAE_CUDA), and the feed that streams batches
 * from an activation store into device memory behind it.
 *
 * The GPU trainer is sae_trainer (sae/sae.h) step for step: the same recipe (input scale, dead counters and
 * AuxK, lr schedule, Adam with the decoder's parallel-gradient removal and renorm, the batch-top-k threshold
 * EMA, step/tokens counters), built from the kernels of kernels/cuda/sae_cuda.cuh. Weight init, checkpoints and
 * the exact-resume state stay on the CPU side: init a sae_trainer as usual, sae_gpu_trainer_load_from_cpu, train,
 * and sae_gpu_trainer_store_to_cpu before sae_save / sae_state_save.
 *
 * A step enqueues its work on the trainer's stream and returns without waiting for the GPU. Statistics are
 * copied to pinned host memory at the end of each step and read on demand (sae_gpu_trainer_stats), which
 * waits only for that step: read step s−1's while step s runs, and the GPU never idles for the host.
 *
 * Precision: MUSAE_F32 is the reference-matching mode (fp32 masters, pedantic fp32 GEMM, fp32 gathers);
 * MUSAE_BF16 feeds the encoder GEMM and the sparse gathers from bf16 shadows of xc, W_enc, W_dec and the
 * gradients (fp32 accumulation, fp32 masters and Adam state; docs/CUDA_SAE.md).
 *
 * Streams are passed as void* (a cudaStream_t), so C callers need no CUDA header. */
#ifndef MUSAE_SAE_GPU_H
#define MUSAE_SAE_GPU_H

#include <stdint.h>

#include "host/core/dtype.h"
#include "host/io/store.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sae_gpu_trainer sae_gpu_trainer; /* opaque: device buffers, cuBLAS handle, events */

/* Allocates a trainer for batches of up to `batch` rows on the current device. stream: the stream to enqueue
 * on (NULL: the trainer creates and owns one); trainers that share a feed share its compute stream.
 * Weights are zero until sae_gpu_trainer_load_from_cpu. */
sae_gpu_trainer *sae_gpu_trainer_init(const sae_config *cfg, int64_t batch, musae_dtype precision, void *stream);
void sae_gpu_trainer_free(sae_gpu_trainer *g);
void *sae_gpu_trainer_stream(const sae_gpu_trainer *g);
/* Bytes of device memory the trainer holds. */
size_t sae_gpu_trainer_device_bytes(const sae_gpu_trainer *g);

/* Weights, gradients, Adam moments, dead counters, step, tokens, scale and threshold from/to a CPU trainer
 * with the same config (the batch capacities may differ). Both wait for the GPU; bitwise exact copies. */
void sae_gpu_trainer_load_from_cpu(sae_gpu_trainer *g, const sae_trainer *t);
void sae_gpu_trainer_store_to_cpu(sae_gpu_trainer *g, sae_trainer *t);

/* One step on raw rows x [n, d] (n <= batch), as sae_trainer_step. x is device memory (read by work on the
 * trainer's stream: the caller orders its writes before, e.g. with sae_gpu_feed_next) or host memory (copied
 * before this returns, so the caller may reuse it at once; pinned host memory makes this wait for the GPU to
 * reach the step: use the feed, or device memory, to overlap). */
void sae_gpu_trainer_step(sae_gpu_trainer *g, const float *x, int64_t n);
/* Statistics of step `step` (0-based, as sae_trainer's step counter before that step); waits for that step
 * only. Returns 0, or -1 when the step has not been enqueued or is older than the last SAE_GPU_STATS_RING
 * steps. */
enum { SAE_GPU_STATS_RING = 8 };
int sae_gpu_trainer_stats(sae_gpu_trainer *g, int64_t step, sae_step_stats *out);
/* Steps enqueued so far (the counter a CPU trainer would show). */
int64_t sae_gpu_trainer_steps(const sae_gpu_trainer *g);
/* Waits for every step enqueued. */
void sae_gpu_trainer_sync(sae_gpu_trainer *g);

/* ---- data parallel over NCCL (MUSAE_NCCL builds) --------------------------------------------------------------
 * sae/sae_dist.h's SAE_DIST_DATA on GPUs: every rank passes the same global batch to sae_gpu_trainer_step (e.g.
 * each reads the same stream through its own feed) and trains rows [r·n/P, (r+1)·n/P) of it; the FVU's
 * denominator is the whole batch's total variance (each rank computes it over all n rows, the same bits as one
 * process), and the gradients, the fired-latent mask and the statistics are summed over ranks with one grouped
 * NCCL all-reduce between the backward and Adam, ordered by events (no host synchronisation). The weights stay
 * replicated: every rank applies Adam to the same summed gradients. Per-row top-k only (batch-top-k needs the
 * global selection of sae_dist.c, not written for the GPU). Summed in NCCL's order, so the weights equal a single
 * GPU's up to fp32 summation order. Not yet run on GPUs (GPU verification pending).
 * nccl: from musae_nccl_init (host/dist/nccl.h) on this trainer's device; rank/world as in musae_dist. */
typedef struct musae_nccl musae_nccl;
void sae_gpu_trainer_set_data_parallel(sae_gpu_trainer *g, musae_nccl *nccl, int rank, int world);

/* ---- streaming: store → reader thread → pinned double buffer → copy stream → device double buffer ------------
 * Batch i is read by a thread (sae/sae_feed.h) into pinned slot i % n_slots, copied on a copy stream into
 * device buffer i % 2, and the compute stream waits for that copy with an event; the copy of batch i+2 into the
 * same device buffer waits for the compute stream to be done with batch i. So the GPU trains on batch i while
 * batch i+1 is copied and batch i+2 is read. */
typedef struct sae_gpu_feed sae_gpu_feed;

/* st: as sae_feed_open (owned by the caller, read only by the feed's thread). compute_stream: the stream the
 * trainers run on. */
sae_gpu_feed *sae_gpu_feed_open(musae_stream *st, int n_layers, int d, int64_t batch, int64_t total_rows,
                                void *compute_stream);
/* The next batch: dev[l] (device, [rows, d] f32, layer l of the stream) is ready for work enqueued afterwards on
 * the compute stream and stays valid for work enqueued before the next call. pos (may be NULL): the stream
 * position after this batch (for exact-resume state). Returns rows, 0 when the schedule is done. */
int64_t sae_gpu_feed_next(sae_gpu_feed *f, const float **dev, musae_stream_pos *pos);
typedef struct {
    int64_t batches;
    double gpu_wait_s;   /* the compute stream stalled waiting for a batch's copy (device event time) */
    double host_wait_s;  /* the calling thread blocked for a batch in host memory (includes run-ahead throttle) */
    double read_s;       /* the reader thread in musae_stream_next */
} sae_gpu_feed_stats;
/* Waits for the compute stream, so every batch's wait is counted. */
sae_gpu_feed_stats sae_gpu_feed_get_stats(sae_gpu_feed *f);
/* Waits for both streams and stops the reader: close the feed before freeing the trainer that owns the compute
 * stream, and before closing the musae_stream. */
void sae_gpu_feed_close(sae_gpu_feed *f);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_GPU_H */
