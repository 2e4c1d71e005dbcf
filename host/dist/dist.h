/* One collective interface for multi-process runs, launched by the ordinary mpirun / srun.
 *
 * Without MPI in the build, or when the process was not started by a launcher, everything is a single
 * rank and every collective is a copy or a no-op, so callers never branch on "distributed or not".
 * CPU buffers go through MPI. GPU buffers go through NCCL (host/dist/nccl.cu): the NCCL unique id is
 * broadcast over MPI, and the comm runs on its own stream. MPI_CHECK names the failing call, the rank
 * and MPI's error string. Counts are always elements, never bytes (llm.c's zero.cuh confused the two). */
#ifndef MUSAE_DIST_H
#define MUSAE_DIST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MUSAE_DIST_SUM = 0, MUSAE_DIST_MAX = 1, MUSAE_DIST_MIN = 2 } musae_dist_op;

typedef struct {
    int rank, world;           /* global */
    int local_rank, local_world; /* on this node: picks the GPU */
    int mpi;                   /* 1 when MPI was initialised by us */
    const char *launcher;      /* "mpirun", "srun" or "none" */
} musae_dist;

/* Initialises MPI when the process was started by mpirun/srun (and MPI is built in), else single rank.
 * Sets the rank shown in log and error messages. */
void musae_dist_init(musae_dist *d, int *argc, char ***argv);
void musae_dist_finalize(musae_dist *d);

/* In-place all-reduce of CPU buffers (n elements). */
void musae_dist_allreduce_f32(const musae_dist *d, float *buf, size_t n, musae_dist_op op);
void musae_dist_allreduce_f64(const musae_dist *d, double *buf, size_t n, musae_dist_op op);
void musae_dist_allreduce_i64(const musae_dist *d, int64_t *buf, size_t n, musae_dist_op op);
/* recv[r * n + i] = send of rank r [i]: `n` elements of `elem` bytes each per rank. */
void musae_dist_allgather(const musae_dist *d, const void *send, void *recv, size_t n, size_t elem);
/* Root receives rank r's counts[r] elements (`elem` bytes each) packed in rank order into recv; `n` is this
 * rank's count (= counts[rank]). recv is only written on root. For sharded tensors of unequal slices. */
void musae_dist_gatherv(const musae_dist *d, const void *send, size_t n, void *recv, const size_t *counts, size_t elem,
                        int root);
/* bytes from root to everyone */
void musae_dist_broadcast(const musae_dist *d, void *buf, size_t bytes, int root);
void musae_dist_barrier(const musae_dist *d);
/* A barrier that keeps calling ok(arg) while it waits (about every 20 ms) and gives up as soon as that returns
 * nonzero, returning it; 0 once every rank arrived. A rank whose launcher died must not wait forever for peers
 * that will never come (OpenMPI's ranks outlive a SIGKILLed mpirun). */
int musae_dist_barrier_while(const musae_dist *d, int (*ok)(void *), void *arg);

/* The PIDs of the ranks on this host, [world] (malloc'd), 0 for this rank and for the ranks on other hosts: what a
 * rank's watch checks so that it stops when a peer on its host is gone. Collective: every rank calls it. */
pid_t *musae_dist_host_peers(const musae_dist *d);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DIST_H */
