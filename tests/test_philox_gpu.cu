/* Philox on the GPU draws exactly the CPU's numbers (bit equality: same integer arithmetic, same
 * float conversion). Skips without a GPU. */
#include <stdint.h>

#include "host/core/philox.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/philox_fill.cuh"
#include "test.h"

int main(void) {
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("%s", why);
    const int64_t n = 1000003; /* odd: exercises the partial last block */
    float *d = NULL;
    CUDA_CHECK(cudaMalloc(&d, (size_t)(n + 4) * sizeof(float)));
    CUDA_CHECK(cudaMemset(d, 0xff, (size_t)(n + 4) * sizeof(float)));
    philox_uniform_fill(d, n, 0x123456789abcdefull, 7, 0);
    float *h = (float *)malloc((size_t)(n + 4) * sizeof(float));
    CUDA_CHECK(cudaMemcpy(h, d, (size_t)(n + 4) * sizeof(float), cudaMemcpyDeviceToHost));
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        musae_u32x4 r = musae_philox(0x123456789abcdefull, 7, (uint64_t)(i / 4));
        if (h[i] != musae_u32_to_unit(r.v[i % 4])) bad++;
    }
    CHECK(bad == 0, "%lld of %lld GPU draws differ from the CPU", (long long)bad, (long long)n);
    uint32_t guard;
    memcpy(&guard, &h[n], 4);
    CHECK(guard == 0xffffffffu, "guard bytes after the output were overwritten");
    /* KAT on the device path too: counter {0,0,0,0}, key {0,0} */
    musae_u32x4 z = musae_philox(0, 0, 0);
    CHECK(z.v[0] == 0x6627e8d5u, "host KAT");
    free(h);
    CUDA_CHECK(cudaFree(d));
    TEST_END();
}
