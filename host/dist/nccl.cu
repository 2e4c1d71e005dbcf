#ifdef MUSAE_NCCL
#include <nccl.h>

#include "host/core/log.h"
#include "host/dist/nccl.h"
#include "host/core/cuda_check.h"

#define NCCL_CHECK(expr)                                                                                   \
    do {                                                                                                   \
        ncclResult_t r_ = (expr);                                                                          \
        MUSAE_CHECK_GEN("NCCL", #expr, r_ != ncclSuccess, ncclGetErrorString(r_));                         \
    } while (0)

struct musae_nccl {
    ncclComm_t comm;
    cudaStream_t stream;
    cudaEvent_t event;
    int device;
};

musae_nccl *musae_nccl_init(const musae_dist *d) {
    int ndev = 0;
    CUDA_CHECK(cudaGetDeviceCount(&ndev));
    MUSAE_ASSERT(ndev > 0, "NCCL needs a GPU");
    musae_nccl *c = (musae_nccl *)musae_xcalloc(1, sizeof *c);
    c->device = d->local_rank % ndev;
    if (d->local_world > ndev)
        LOG_WARN("%d ranks on this node share %d GPU(s): ranks will share devices", d->local_world, ndev);
    CUDA_CHECK(cudaSetDevice(c->device));
    ncclUniqueId id;
    if (d->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    musae_dist_broadcast(d, &id, sizeof id, 0);
    NCCL_CHECK(ncclCommInitRank(&c->comm, d->world, id, d->rank));
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&c->event, cudaEventDisableTiming));
    return c;
}

void musae_nccl_free(musae_nccl *c) {
    if (!c) return;
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    NCCL_CHECK(ncclCommDestroy(c->comm));
    CUDA_CHECK(cudaEventDestroy(c->event));
    CUDA_CHECK(cudaStreamDestroy(c->stream));
    free(c);
}

int musae_nccl_device(const musae_nccl *c) { return c->device; }

void musae_nccl_wait_for(musae_nccl *c, void *compute_stream) {
    CUDA_CHECK(cudaEventRecord(c->event, (cudaStream_t)compute_stream));
    CUDA_CHECK(cudaStreamWaitEvent(c->stream, c->event, 0));
}

void musae_nccl_signal(musae_nccl *c, void *compute_stream) {
    CUDA_CHECK(cudaEventRecord(c->event, c->stream));
    CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)compute_stream, c->event, 0));
}

void musae_nccl_group_start(void) { NCCL_CHECK(ncclGroupStart()); }
void musae_nccl_group_end(void) { NCCL_CHECK(ncclGroupEnd()); }

void musae_nccl_allreduce_sum_f32(musae_nccl *c, float *dev, size_t n) {
    NCCL_CHECK(ncclAllReduce(dev, dev, n, ncclFloat32, ncclSum, c->comm, c->stream));
}

void musae_nccl_allgather_f32(musae_nccl *c, const float *send, float *recv, size_t n) {
    NCCL_CHECK(ncclAllGather(send, recv, n, ncclFloat32, c->comm, c->stream));
}

void musae_nccl_sync(musae_nccl *c) { CUDA_CHECK(cudaStreamSynchronize(c->stream)); }
#endif /* MUSAE_NCCL */
