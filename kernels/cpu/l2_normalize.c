/* torch.nn.functional.normalize(x, dim=-1) row by row: x / max(‖x‖₂, 1e-12) (CLAP's embeddings). The sum
 * of squares accumulates in double, so the reference is not the weak link against the GPU's fp32 sum. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_l2_normalize(float *out, const float *x, int64_t rows, int64_t dim) {
    MUSAE_ASSERT(rows >= 0 && dim >= 1, "l2_normalize: %lld x %lld", (long long)rows, (long long)dim);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        const float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
        for (int64_t i = 0; i < dim; i++) out[r * dim + i] = xr[i] * inv;
    }
}
