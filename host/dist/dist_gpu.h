/* Which GPU a rank uses under mpirun / srun: one per local rank (docs/CAPTURE.md "Several processes").
 *
 * The rank's place on its node comes from the launcher's environment, readable before MPI or CUDA start:
 * OMPI_COMM_WORLD_LOCAL_RANK (OpenMPI's mpirun), SLURM_LOCALID (srun), MPI_LOCALRANKID (MPICH's Hydra); else the
 * rank within MPI_Comm_split_type(SHARED) when MPI is up (musae_dist.local_rank); else 0 (one process). A value
 * that is not a non-negative integer is skipped. The device is that local rank modulo the visible devices, so
 * 8 ranks on a node of 8 GPUs take one each, and more ranks than GPUs share them round-robin. */
#ifndef MUSAE_DIST_GPU_H
#define MUSAE_DIST_GPU_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The device index in [0, n_visible) for this process (-1 when n_visible <= 0); mpi_local: the rank within the
 * node from MPI, or -1 when unknown. `how` (may be NULL) receives the source, e.g. "SLURM_LOCALID=3". */
int musae_dist_gpu(int mpi_local, int n_visible, char *how, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DIST_GPU_H */
