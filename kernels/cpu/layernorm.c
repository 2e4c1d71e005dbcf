/* nn.LayerNorm over the last dim: biased variance, statistics in double so the reference is not the
 * weak link when the GPU (fp32 statistics) is compared against it. */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

/* Rows go four at a time so the four rows' double sums advance together: each sum is one chain of adds in
 * element order (a lone row waits an add's latency per element: ~2 % of a prefill), and interleaving rows
 * leaves every row's sequence, hence its bits, as it was. */
enum { RG = 4 };

void cpu_layernorm(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps) {
    const int64_t groups = (rows + RG - 1) / RG;
#pragma omp parallel for if (rows * dim > 65536)
    for (int64_t g = 0; g < groups; g++) {
        const int64_t r0 = g * RG, nr = rows - r0 < RG ? rows - r0 : RG;
        const float *xr[RG];
        double mean[RG] = {0}, var[RG] = {0};
        for (int q = 0; q < RG; q++) xr[q] = x + (r0 + (q < nr ? q : 0)) * dim; /* padding lanes repeat row r0 */
        for (int64_t i = 0; i < dim; i++)
            for (int q = 0; q < RG; q++) mean[q] += xr[q][i];
        for (int q = 0; q < RG; q++) mean[q] /= (double)dim;
        for (int64_t i = 0; i < dim; i++)
            for (int q = 0; q < RG; q++) {
                double d = xr[q][i] - mean[q];
                var[q] += d * d;
            }
        for (int q = 0; q < nr; q++) {
            const double v = var[q] / (double)dim;
            const float rstd = (float)(1.0 / sqrt(v + eps)), m = (float)mean[q];
            float *o = out + (r0 + q) * dim;
            for (int64_t i = 0; i < dim; i++) o[i] = (xr[q][i] - m) * rstd * w[i] + (b ? b[i] : 0.0f);
        }
    }
}
