/* T5LayerNorm: scale only, no mean subtraction, no bias; variance of the fp32 input. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_rmsnorm(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps) {
#pragma omp parallel for if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
        float rs = (float)(1.0 / sqrt(ss / (double)dim + eps));
        for (int64_t i = 0; i < dim; i++) o[i] = w[i] * (xr[i] * rs);
    }
}
