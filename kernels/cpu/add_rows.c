/* One vector added to many rows: the residual-stream steering hook of model/musicgen. The product is
 * stored before the add so no compiler contracts it into an FMA (ISO C mode already forbids contraction
 * across statements); the CUDA kernel uses __fmul_rn + __fadd_rn for the same rounding. */
#include "kernels/cpu/cpu_ops.h"

void cpu_add_rows(float *x, const float *v, float alpha, int64_t rows, int64_t dim) {
    MUSAE_ASSERT(rows >= 0 && dim > 0, "add_rows dims %lld x %lld", (long long)rows, (long long)dim);
#pragma omp parallel for if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim;
        for (int64_t i = 0; i < dim; i++) {
            const float d = alpha * v[i];
            xr[i] += d;
        }
    }
}
