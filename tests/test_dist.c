/* host/dist collectives. Run single-process (everything degenerates to copies) and under
 * `mpirun -np 2` (label mpi), where each rank checks the values the others contributed. */
#include "host/dist/dist.h"
#include "test.h"

int main(int argc, char **argv) {
    musae_dist d;
    musae_dist_init(&d, &argc, &argv);
    int expect_world = argc > 1 ? atoi(argv[1]) : 1;
    CHECK(d.world == expect_world, "world %d, expected %d (launcher %s)", d.world, expect_world, d.launcher);
    CHECK(d.rank >= 0 && d.rank < d.world, "rank %d", d.rank);

    float f[3] = {1.0f + d.rank, 2.0f, (float)d.rank};
    musae_dist_allreduce_f32(&d, f, 3, MUSAE_DIST_SUM);
    float w = (float)d.world, rsum = (float)(d.world * (d.world - 1) / 2);
    CHECK(f[0] == w + rsum && f[1] == 2.0f * w && f[2] == rsum, "f32 sum %g %g %g", f[0], f[1], f[2]);

    double g[2] = {(double)d.rank, -(double)d.rank};
    musae_dist_allreduce_f64(&d, g, 2, MUSAE_DIST_MAX);
    CHECK(g[0] == d.world - 1 && g[1] == 0, "f64 max %g %g", g[0], g[1]);

    int64_t c = 1000000000000LL + d.rank;
    musae_dist_allreduce_i64(&d, &c, 1, MUSAE_DIST_MIN);
    CHECK(c == 1000000000000LL, "i64 min %lld", (long long)c);

    int32_t mine[2] = {d.rank * 10, d.rank * 10 + 1};
    int32_t *all = calloc((size_t)d.world * 2, sizeof(int32_t));
    musae_dist_allgather(&d, mine, all, 2, sizeof(int32_t));
    for (int r = 0; r < d.world; r++)
        CHECK(all[2 * r] == r * 10 && all[2 * r + 1] == r * 10 + 1, "allgather slot %d: %d %d", r, all[2 * r],
              all[2 * r + 1]);
    free(all);

    char msg[16] = {0};
    if (d.rank == 0) snprintf(msg, sizeof msg, "from root");
    musae_dist_broadcast(&d, msg, sizeof msg, 0);
    CHECK(!strcmp(msg, "from root"), "broadcast got '%s'", msg);
    musae_dist_barrier(&d);

    int failed = g_test_fail;
    if (d.rank != 0 && !failed) {
        musae_dist_finalize(&d);
        return 0; /* rank 0 prints the summary */
    }
    musae_dist_finalize(&d);
    TEST_END();
}
