/* One GPU per local rank (dist_gpu.h). */
#include "host/dist/dist_gpu.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* The variable's value when it is a non-negative integer, else -1. */
static int env_index(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    return errno || *end || v < 0 || v > 1 << 20 ? -1 : (int)v;
}

int musae_dist_gpu(int mpi_local, int n_visible, char *how, size_t n) {
    static const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    int local = -1;
    char src[96] = "no launcher: local rank 0";
    for (size_t i = 0; i < sizeof vars / sizeof vars[0] && local < 0; i++)
        if ((local = env_index(vars[i])) >= 0) snprintf(src, sizeof src, "%s=%d", vars[i], local);
    if (local < 0 && mpi_local >= 0) {
        local = mpi_local;
        snprintf(src, sizeof src, "MPI shared-memory local rank %d", local);
    }
    if (local < 0) local = 0;
    if (how) snprintf(how, n, "%s", src);
    return n_visible > 0 ? local % n_visible : -1;
}
