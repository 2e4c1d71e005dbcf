/* SAE loss: normalized MSE (FVU) plus the AuxK term, and their gradients with respect to x̂ and ê.
 * Sums are per row in double, then over rows in row order: the result does not depend on the thread count. */
#include <stdlib.h>

#include "host/core/check.h"
#include "kernels/cpu/sae_vec.h"
#include "kernels/sae_ops.h"

double sae_cpu_total_variance(const float *x, int64_t N, int64_t d) {
    double *mean = musae_xcalloc((size_t)d, sizeof(double));
    for (int64_t n = 0; n < N; n++)
        for (int64_t i = 0; i < d; i++) mean[i] += x[n * d + i];
    for (int64_t i = 0; i < d; i++) mean[i] /= (double)N;
    double *row = musae_xmalloc(sizeof(double) * (size_t)N + 8);
#pragma omp parallel for schedule(static) if (N * d > 65536)
    for (int64_t n = 0; n < N; n++) {
        double s = 0;
        for (int64_t i = 0; i < d; i++) {
            double c = x[n * d + i] - mean[i];
            s += c * c;
        }
        row[n] = s;
    }
    double tv = 0;
    for (int64_t n = 0; n < N; n++) tv += row[n];
    free(row);
    free(mean);
    return tv;
}

ISA_BODY void loss_row_body(const float *restrict x, const float *restrict xhat, const float *restrict ehat, int64_t d,
                            float gscale, float ascale, float *restrict g_xhat, float *restrict g_ehat, double *l2,
                            double *aux) {
    double s = 0, a = 0;
    for (int64_t i = 0; i < d; i++) {
        float e = x[i] - xhat[i];
        s += (double)e * e;
        g_xhat[i] = gscale * e;
        if (ehat) {
            float r = ehat[i] - e;
            a += (double)r * r;
            g_ehat[i] = ascale * r;
        }
    }
    *l2 = s;
    *aux = a;
}
MUSAE_ISA_DISPATCH(loss_row,
                   (const float *restrict x, const float *restrict xhat, const float *restrict ehat, int64_t d,
                    float gscale, float ascale, float *restrict g_xhat, float *restrict g_ehat, double *l2,
                    double *aux),
                   (x, xhat, ehat, d, gscale, ascale, g_xhat, g_ehat, l2, aux))

double sae_cpu_loss_grad(const float *x, const float *xhat, const float *ehat, int64_t N, int64_t d, double tv,
                         float aux_coef, float *g_xhat, float *g_ehat, double *aux_out) {
    MUSAE_ASSERT(tv > 0, "total variance %g: the batch is constant", tv);
    MUSAE_ASSERT(!ehat || g_ehat, "ehat without g_ehat");
    double *row = musae_xmalloc(sizeof(double) * (size_t)N * 2 + 16), *arow = row + N;
    const float gscale = (float)(-2.0 / tv), ascale = (float)(2.0 * aux_coef / tv);
#pragma omp parallel for schedule(static) if (N * d > 65536)
    for (int64_t n = 0; n < N; n++)
        loss_row(x + n * d, xhat + n * d, ehat ? ehat + n * d : NULL, d, gscale, ascale, g_xhat + n * d,
                 ehat ? g_ehat + n * d : NULL, &row[n], &arow[n]);
    double l2 = 0, aux = 0;
    for (int64_t n = 0; n < N; n++) {
        l2 += row[n];
        aux += arow[n];
    }
    free(row);
    *aux_out = ehat ? aux / tv : 0.0;
    return l2 / tv;
}
