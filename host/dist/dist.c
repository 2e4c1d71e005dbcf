#include "host/dist/dist.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"

#ifdef MUSAE_MPI
#include <mpi.h>

#define MPI_CHECK(expr)                                                                                    \
    do {                                                                                                   \
        int rc_ = (expr);                                                                                  \
        if (MUSAE_UNLIKELY(rc_ != MPI_SUCCESS)) {                                                          \
            char msg_[MPI_MAX_ERROR_STRING];                                                               \
            int len_ = 0;                                                                                  \
            MPI_Error_string(rc_, msg_, &len_);                                                            \
            musae_check_failed("MPI", #expr, __func__, __FILE__, __LINE__, msg_);                          \
        }                                                                                                  \
    } while (0)

static MPI_Op mpi_op(musae_dist_op op) {
    return op == MUSAE_DIST_SUM ? MPI_SUM : op == MUSAE_DIST_MAX ? MPI_MAX : MPI_MIN;
}
#endif

/* A process is part of a launch when the launcher left its size in the environment. */
static const char *detect_launcher(void) {
    const char *s;
    if ((s = getenv("OMPI_COMM_WORLD_SIZE")) || (s = getenv("PMI_SIZE")) || (s = getenv("PMIX_RANK")))
        return "mpirun";
    if ((s = getenv("SLURM_NTASKS")) && getenv("SLURM_PROCID")) return "srun";
    return NULL;
}

void musae_dist_init(musae_dist *d, int *argc, char ***argv) {
    memset(d, 0, sizeof *d);
    d->world = d->local_world = 1;
    d->launcher = "none";
    const char *launcher = detect_launcher();
    if (!launcher) return;
#ifdef MUSAE_MPI
    int inited = 0;
    MPI_CHECK(MPI_Initialized(&inited));
    if (!inited) {
        int provided = 0;
        MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
        d->mpi = 1;
    }
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    MPI_Comm local;
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local));
    MPI_CHECK(MPI_Comm_rank(local, &d->local_rank));
    MPI_CHECK(MPI_Comm_size(local, &d->local_world));
    MPI_CHECK(MPI_Comm_free(&local));
    d->launcher = launcher;
    musae_set_rank(d->rank, d->world);
    LOG_DEBUG("dist: rank %d of %d (local %d of %d) via %s", d->rank, d->world, d->local_rank, d->local_world,
              launcher);
#else
    (void)argc;
    (void)argv;
    const char *ws = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("SLURM_NTASKS");
    if (ws && atoi(ws) > 1)
        musae_fail("started by %s with %s processes, but this musae was built without MPI "
                   "(install libopenmpi-dev and reconfigure)", launcher, ws);
#endif
}

void musae_dist_finalize(musae_dist *d) {
#ifdef MUSAE_MPI
    if (d->mpi) {
        MPI_CHECK(MPI_Finalize());
        d->mpi = 0;
    }
#else
    (void)d;
#endif
}

#ifdef MUSAE_MPI
#define ACTIVE(d) ((d)->world > 1)
#endif

void musae_dist_allreduce_f32(const musae_dist *d, float *buf, size_t n, musae_dist_op op) {
#ifdef MUSAE_MPI
    if (!ACTIVE(d) || n == 0) return;
    MUSAE_ASSERT(n <= (size_t)INT32_MAX, "allreduce of %zu elements exceeds MPI's int count", n);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, mpi_op(op), MPI_COMM_WORLD));
#else
    (void)d, (void)buf, (void)n, (void)op;
#endif
}

void musae_dist_allreduce_f64(const musae_dist *d, double *buf, size_t n, musae_dist_op op) {
#ifdef MUSAE_MPI
    if (!ACTIVE(d) || n == 0) return;
    MUSAE_ASSERT(n <= (size_t)INT32_MAX, "allreduce of %zu elements exceeds MPI's int count", n);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, mpi_op(op), MPI_COMM_WORLD));
#else
    (void)d, (void)buf, (void)n, (void)op;
#endif
}

void musae_dist_allreduce_i64(const musae_dist *d, int64_t *buf, size_t n, musae_dist_op op) {
#ifdef MUSAE_MPI
    if (!ACTIVE(d) || n == 0) return;
    MUSAE_ASSERT(n <= (size_t)INT32_MAX, "allreduce of %zu elements exceeds MPI's int count", n);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, mpi_op(op), MPI_COMM_WORLD));
#else
    (void)d, (void)buf, (void)n, (void)op;
#endif
}

void musae_dist_allgather(const musae_dist *d, const void *send, void *recv, size_t n, size_t elem) {
    size_t bytes = n * elem;
#ifdef MUSAE_MPI
    if (ACTIVE(d)) {
        MUSAE_ASSERT(bytes <= (size_t)INT32_MAX, "allgather of %zu bytes per rank exceeds MPI's int count", bytes);
        MPI_CHECK(MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD));
        return;
    }
#endif
    (void)d;
    if (bytes && recv != send) memmove(recv, send, bytes);
}

void musae_dist_gatherv(const musae_dist *d, const void *send, size_t n, void *recv, const size_t *counts, size_t elem,
                        int root) {
#ifdef MUSAE_MPI
    if (ACTIVE(d)) {
        MUSAE_ASSERT(counts[d->rank] == n, "gatherv: rank %d sends %zu, counts say %zu", d->rank, n, counts[d->rank]);
        /* counts stay in elements (an MPI type of `elem` bytes), so int counts reach 2^31 elements, not bytes */
        MPI_Datatype t;
        MPI_CHECK(MPI_Type_contiguous((int)elem, MPI_BYTE, &t));
        MPI_CHECK(MPI_Type_commit(&t));
        int *cnt = musae_xmalloc(sizeof(int) * 2 * (size_t)d->world), *displ = cnt + d->world;
        size_t at = 0;
        for (int r = 0; r < d->world; r++) {
            MUSAE_ASSERT(counts[r] <= (size_t)INT32_MAX && at <= (size_t)INT32_MAX,
                         "gatherv of %zu elements at %zu exceeds MPI's int count", counts[r], at);
            cnt[r] = (int)counts[r];
            displ[r] = (int)at;
            at += counts[r];
        }
        MPI_CHECK(MPI_Gatherv(send, (int)n, t, recv, cnt, displ, t, root, MPI_COMM_WORLD));
        free(cnt);
        MPI_CHECK(MPI_Type_free(&t));
        return;
    }
#endif
    (void)d, (void)counts, (void)root;
    if (n && recv != send) memmove(recv, send, n * elem);
}

void musae_dist_broadcast(const musae_dist *d, void *buf, size_t bytes, int root) {
#ifdef MUSAE_MPI
    if (!ACTIVE(d) || bytes == 0) return;
    MUSAE_ASSERT(bytes <= (size_t)INT32_MAX, "broadcast of %zu bytes exceeds MPI's int count", bytes);
    MPI_CHECK(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD));
#else
    (void)d, (void)buf, (void)bytes, (void)root;
#endif
}

void musae_dist_barrier(const musae_dist *d) {
#ifdef MUSAE_MPI
    if (ACTIVE(d)) MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
#else
    (void)d;
#endif
}

int musae_dist_barrier_while(const musae_dist *d, int (*ok)(void *), void *arg) {
    int rc = ok(arg);
    if (rc) return rc;
#ifdef MUSAE_MPI
    if (!ACTIVE(d)) return 0;
    MPI_Request req;
    MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &req));
    for (int done = 0;;) {
        MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) return 0;
        if ((rc = ok(arg))) return rc; /* the request is abandoned: the caller exits */
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    }
#else
    (void)d;
    return 0;
#endif
}

pid_t *musae_dist_host_peers(const musae_dist *d) {
    typedef struct {
        char host[128];
        int64_t pid;
    } who;
    who me = {{0}, (int64_t)getpid()}, *all = musae_xcalloc((size_t)d->world, sizeof *all);
    gethostname(me.host, sizeof me.host - 1);
    musae_dist_allgather(d, &me, all, 1, sizeof me);
    pid_t *peers = musae_xcalloc((size_t)d->world, sizeof(pid_t));
    for (int r = 0; r < d->world; r++)
        if (r != d->rank && !strcmp(all[r].host, me.host)) peers[r] = (pid_t)all[r].pid;
    free(all);
    return peers;
}
