/* Elementwise activations. GELU is the exact erf form (HF ACT2FN["gelu"], MusicGen's FFN); gelu_tanh is
 * HF's "gelu_new" (T5 v1.1 gated FFN). */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_gelu(float *out, const float *x, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void cpu_gelu_tanh(float *out, const float *x, int64_t n) {
    const float c = 0.7978845608028654f; /* sqrt(2/pi) */
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

void cpu_relu(float *out, const float *x, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_add(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void cpu_mul(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
}
