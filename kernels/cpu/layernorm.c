/* nn.LayerNorm over the last dim: biased variance, statistics in double so the reference is not the
 * weak link when the GPU (fp32 statistics) is compared against it. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_layernorm(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps) {
#pragma omp parallel for if (rows * dim > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *o = out + r * dim;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < dim; i++) mean += xr[i];
        mean /= (double)dim;
        for (int64_t i = 0; i < dim; i++) {
            double d = xr[i] - mean;
            var += d * d;
        }
        var /= (double)dim;
        float rstd = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
        for (int64_t i = 0; i < dim; i++) o[i] = (xr[i] - m) * rstd * w[i] + (b ? b[i] : 0.0f);
    }
}
