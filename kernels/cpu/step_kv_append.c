/* step_ops->kv_append on the CPU: one step's K/V rows into the cache at the device position. */
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/step_cpu.h"

void cpu_step_kv_append(float *cache, const float *src, int64_t rows, int64_t width, int64_t row_stride,
                        const int64_t *pos) {
    const int64_t p = *pos;
    MUSAE_ASSERT(p >= 0 && (p + 1) * width <= row_stride, "K/V append at position %lld past the cache", (long long)p);
    for (int64_t r = 0; r < rows; r++)
        memcpy(cache + r * row_stride + p * width, src + r * width, (size_t)width * sizeof(float));
}
