/* host/dist/dist_gpu.h: the GPU of a rank from its launcher's environment, on the CPU (no GPU needed): each
 * launcher's variable, their precedence, MPI's local rank as the fallback, round-robin beyond the device count,
 * malformed values skipped, no device. */
#include <stdlib.h>
#include <string.h>

#include "host/dist/dist_gpu.h"
#include "test.h"

static void clear(void) {
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK");
    unsetenv("SLURM_LOCALID");
    unsetenv("MPI_LOCALRANKID");
}

static void expect(int mpi_local, int n_visible, int want, const char *want_how) {
    char how[128];
    const int got = musae_dist_gpu(mpi_local, n_visible, how, sizeof how);
    CHECK(got == want && !strcmp(how, want_how), "mpi_local %d, %d devices: got %d (%s), want %d (%s)", mpi_local,
          n_visible, got, how, want, want_how);
}

int main(void) {
    clear();
    expect(-1, 4, 0, "no launcher: local rank 0");
    expect(-1, 0, -1, "no launcher: local rank 0");
    expect(2, 2, 0, "MPI shared-memory local rank 2");
    expect(3, 8, 3, "MPI shared-memory local rank 3");
    /* 16 ranks on a node of 8 GPUs (OpenMPI): two per device, round-robin */
    for (int r = 0; r < 16; r++) {
        char v[16], how[64];
        snprintf(v, sizeof v, "%d", r);
        setenv("OMPI_COMM_WORLD_LOCAL_RANK", v, 1);
        snprintf(how, sizeof how, "OMPI_COMM_WORLD_LOCAL_RANK=%d", r);
        expect(7 - r % 8, 8, r % 8, how); /* the environment wins over MPI's rank */
    }
    clear();
    setenv("SLURM_LOCALID", "5", 1);
    expect(-1, 4, 1, "SLURM_LOCALID=5");
    expect(0, 1, 0, "SLURM_LOCALID=5");
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "2", 1); /* mpirun inside an allocation: OpenMPI's own variable first */
    expect(-1, 4, 2, "OMPI_COMM_WORLD_LOCAL_RANK=2");
    clear();
    setenv("MPI_LOCALRANKID", "3", 1);
    expect(-1, 2, 1, "MPI_LOCALRANKID=3");
    /* malformed values are skipped, down to the next source */
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x1", 1);
    setenv("SLURM_LOCALID", "-2", 1);
    expect(-1, 8, 3, "MPI_LOCALRANKID=3");
    setenv("MPI_LOCALRANKID", "", 1);
    expect(6, 4, 2, "MPI shared-memory local rank 6");
    clear();
    TEST_END();
}
