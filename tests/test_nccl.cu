/* NCCL all-reduce and all-gather over device buffers: one process (world 1) or one rank per GPU under
 * mpirun. Skips without a GPU, or when there are fewer GPUs than ranks. */
#include <cuda_runtime.h>

#include "host/dist/dist.h"
#include "host/dist/nccl.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "test.h"

int main(int argc, char **argv) {
    musae_dist d;
    musae_dist_init(&d, &argc, &argv);
    char why[256];
    int ndev = musae_cuda_device_count(why, sizeof why);
    if (ndev == 0) TEST_SKIP("%s", why);
    if (ndev < d.local_world) TEST_SKIP("%d ranks on this node but only %d GPU(s)", d.local_world, ndev);
    musae_nccl *c = musae_nccl_init(&d);
    const size_t n = 1001;
    float *h = (float *)malloc(n * d.world * sizeof(float)), *dv = NULL, *dg = NULL;
    for (size_t i = 0; i < n; i++) h[i] = (float)(i + d.rank);
    CUDA_CHECK(cudaMalloc(&dv, n * sizeof(float)));
    CUDA_CHECK(cudaMalloc(&dg, n * d.world * sizeof(float)));
    CUDA_CHECK(cudaMemcpy(dv, h, n * sizeof(float), cudaMemcpyHostToDevice));
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
    TEST_END();
}
