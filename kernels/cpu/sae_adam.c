/* Adam for the SAE (torch.optim.Adam's update, eps 6.25e-10 by default in the recipe), and the decoder's
 * constrained variant: remove the gradient component parallel to each unit-norm row, step, renormalize. */
#include <math.h>

#include "host/core/check.h"
#include "kernels/cpu/sae_vec.h"
#include "kernels/sae_ops.h"

typedef struct {
    float b1c, b2c;       /* 1 − β1, 1 − β2 */
    float beta2;
    float step_size;      /* lr / (1 − β1^t) */
    float bc2_sqrt;       /* √(1 − β2^t) */
    float eps;
} adam_consts;

static adam_consts consts(const sae_adam_hparams *h) {
    MUSAE_ASSERT(h->t >= 1, "Adam step %lld (counts from 1)", (long long)h->t);
    /* the bias corrections in double, as torch computes them in Python floats */
    double bc1 = 1.0 - pow((double)h->beta1, (double)h->t), bc2 = 1.0 - pow((double)h->beta2, (double)h->t);
    adam_consts c = {1.0f - h->beta1, 1.0f - h->beta2, h->beta2, (float)(h->lr / bc1), (float)sqrt(bc2), h->eps};
    return c;
}

ISA_BODY void adam_span_body(float *restrict p, const float *restrict g, float *restrict m, float *restrict v,
                             int64_t n, adam_consts c) {
    for (int64_t i = 0; i < n; i++) {
        m[i] += c.b1c * (g[i] - m[i]);
        v[i] = c.beta2 * v[i] + c.b2c * g[i] * g[i];
        float denom = sqrtf(v[i]) / c.bc2_sqrt + c.eps;
        p[i] -= c.step_size * (m[i] / denom);
    }
}
MUSAE_ISA_DISPATCH(adam_span,
                   (float *restrict p, const float *restrict g, float *restrict m, float *restrict v, int64_t n,
                    adam_consts c),
                   (p, g, m, v, n, c))

void sae_cpu_adam(float *p, const float *g, float *m, float *v, int64_t n, const sae_adam_hparams *h) {
    const adam_consts c = consts(h);
    const int64_t span = 4096;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i0 = 0; i0 < n; i0 += span)
        adam_span(p + i0, g + i0, m + i0, v + i0, i0 + span <= n ? span : n - i0, c);
}

ISA_BODY void decoder_row_body(float *restrict w, float *restrict g, float *restrict m, float *restrict v, int64_t d,
                               adam_consts c) {
    const float par = sae_dot_body(g, w, d);
    for (int64_t j = 0; j < d; j++) g[j] -= par * w[j];
    adam_span_body(w, g, m, v, d, c);
    const float norm = sqrtf(sae_dot_body(w, w, d));
    if (norm > 0.0f)
        for (int64_t j = 0; j < d; j++) w[j] /= norm;
}
MUSAE_ISA_DISPATCH(decoder_row,
                   (float *restrict w, float *restrict g, float *restrict m, float *restrict v, int64_t d,
                    adam_consts c),
                   (w, g, m, v, d, c))

void sae_cpu_adam_decoder(float *W_dec, float *g, float *m, float *v, int64_t M, int64_t d, const sae_adam_hparams *h) {
    const adam_consts c = consts(h);
#pragma omp parallel for schedule(static) if (M * d > 65536)
    for (int64_t i = 0; i < M; i++) decoder_row(W_dec + i * d, g + i * d, m + i * d, v + i * d, d, c);
}

ISA_BODY void normalize_row_body(float *restrict w, int64_t d) {
    const float norm = sqrtf(sae_dot_body(w, w, d));
    if (norm > 0.0f)
        for (int64_t j = 0; j < d; j++) w[j] /= norm;
}
MUSAE_ISA_DISPATCH(normalize_row, (float *restrict w, int64_t d), (w, d))

void sae_cpu_normalize_rows(float *W, int64_t M, int64_t d) {
#pragma omp parallel for schedule(static) if (M * d > 65536)
    for (int64_t i = 0; i < M; i++) normalize_row(W + i * d, d);
}
