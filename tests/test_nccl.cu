/* NCCL all-reduce and all-gather over device buffers, one rank per GPU.
 *   test_nccl [WORLD]    WORLD: the number of ranks the launch must have made (default 1)
 * test_nccl 1 runs alone (a one-rank all-reduce is the identity: it checks the plumbing only);
 * `mpirun -np 2 test_nccl 2` (tests/gpu.cmake: test_nccl_mpi2) is the real check: each rank contributes
 * i + rank, so the sum 2i + 1 and the gathered rank-1 slice differ from anything one rank holds. A launch whose
 * processes did not join one world (each sees world 1) fails on WORLD rather than passing on identities.
 * Skips (77, with the reason) without a GPU or with fewer GPUs than ranks on the node; the ranks agree on the
 * skip first, so none is left waiting in NCCL's set-up for one that left. */
#include <cuda_runtime.h>

#include "host/dist/dist.h"
#include "host/dist/nccl.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "test.h"

int main(int argc, char **argv) {
    musae_dist d;
    musae_dist_init(&d, &argc, &argv);
    const int expect_world = argc > 1 ? atoi(argv[1]) : 1;
    if (d.world != expect_world) {
        fprintf(stderr, "FAIL: world %d, expected %d (launcher %s): the ranks did not join one world\n", d.world,
                expect_world, d.launcher);
        musae_dist_finalize(&d);
        return 1;
    }
    char why[256];
    int ndev = musae_cuda_device_count(why, sizeof why);
    if (ndev > 0 && ndev < d.local_world)
        snprintf(why, sizeof why, "%d ranks on this node but only %d GPU(s): one GPU per rank", d.local_world, ndev);
    const int usable = ndev > 0 && ndev >= d.local_world;
    int64_t all_usable = usable;
    musae_dist_allreduce_i64(&d, &all_usable, 1, MUSAE_DIST_MIN);
    if (!all_usable) {
        if (usable) snprintf(why, sizeof why, "another rank has no usable GPU");
        musae_dist_finalize(&d);
        TEST_SKIP("rank %d of %d: %s", d.rank, d.world, why);
    }
    musae_nccl *c = musae_nccl_init(&d);
    CHECK(musae_nccl_device(c) == d.local_rank, "rank %d (local %d) runs on GPU %d", d.rank, d.local_rank,
          musae_nccl_device(c));
    const size_t n = 1001;
    float *h = (float *)malloc(n * d.world * sizeof(float)), *dv = NULL, *dg = NULL;
    for (size_t i = 0; i < n; i++) h[i] = (float)(i + d.rank);
    CUDA_CHECK(cudaMalloc(&dv, n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dg, n * d.world * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(dv, h, n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(dg, 0xff, n * d.world * sizeof(float))); /* NaN: a slice nobody wrote fails */
    musae_nccl_allgather_f32(c, dv, dg, n);
    musae_nccl_allreduce_sum_f32(c, dv, n);
    musae_nccl_sync(c);
    CUDA_CHECK(cudaMemcpy(h, dv, n * sizeof(float), cudaMemcpyDeviceToHost));
    float rsum = (float)(d.world * (d.world - 1) / 2);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += h[i] != (float)(i * d.world) + rsum;
    CHECK(bad == 0, "%d all-reduced values wrong", bad);
    CUDA_CHECK(cudaMemcpy(h, dg, n * d.world * sizeof(float), cudaMemcpyDeviceToHost));
    bad = 0;
    for (int r = 0; r < d.world; r++)
        for (size_t i = 0; i < n; i++) bad += h[r * n + i] != (float)(i + r);
    CHECK(bad == 0, "%d all-gathered values wrong", bad);
    CUDA_CHECK(cudaFree(dv));
    CUDA_CHECK(cudaFree(dg));
    free(h);
    musae_nccl_free(c);
    musae_dist_finalize(&d);
    printf("rank %d of %d: ", d.rank, d.world);
    TEST_END();
}
