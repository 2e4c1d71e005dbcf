/* step_ops->capture on the CPU: residual rows into their slot of the READ ring. */
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/step_cpu.h"

void cpu_step_capture(float *ring, const float *x, int64_t rows, int64_t dim, int64_t slots, const int64_t *pos) {
    MUSAE_ASSERT(*pos >= 0 && slots >= 1, "capture at position %lld into %lld slots", (long long)*pos, (long long)slots);
    memcpy(ring + (*pos % slots) * rows * dim, x, (size_t)(rows * dim) * sizeof(float));
}
