/* Elementwise activations. GELU is the exact erf form (HF ACT2FN["gelu"], MusicGen's FFN); gelu_tanh is
 * HF's "gelu_new" (T5 v1.1 gated FFN). */
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_math.h"

/* gelu(x) = x/2 · (1 + erf(z)), z = x/√2, vectorized: a libm erff call per element was a twentieth of a
 * teacher-forced MusicGen forward. 1 + erf(z) is formed with relative accuracy from erfc(|z|) (Numerical
 * Recipes' Chebyshev fit, fractional error < 1.2e-7): erfc(-z) for z < 0, 2 - erfc(z) otherwise, so the
 * negative tail does not cancel (the plain fp32 formula is off by 5% of gelu at x = -5). Relative error
 * below 2e-6 for x > -5 and 7e-6 for x > -8, absolute error below 4e-7 everywhere (tests/test_ops.c). */
VM_INLINE f32x16 gelu16(f32x16 x) {
    const f32x16 z = x * V16(0.70710678118654752f);
    const f32x16 az = v_select(z < V16(0.0f), -z, z);
    const f32x16 t = V16(1.0f) / (V16(1.0f) + V16(0.5f) * az);
    f32x16 p = V16(0.17087277f);
    p = p * t + V16(-0.82215223f);
    p = p * t + V16(1.48851587f);
    p = p * t + V16(-1.13520398f);
    p = p * t + V16(0.27886807f);
    p = p * t + V16(-0.18628806f);
    p = p * t + V16(0.09678418f);
    p = p * t + V16(0.37409196f);
    p = p * t + V16(1.00002368f);
    const f32x16 erfc = t * v_exp(v_max(t * p - az * az - V16(1.26551223f), V16(-87.0f)));
    return V16(0.5f) * x * v_select(z < V16(0.0f), erfc, V16(2.0f) - erfc); /* NaN stays NaN */
}

ISA_BODY void gelu_range_body(float *out, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) v_store(out + i, gelu16(v_load(x + i)));
    if (i < n) {
        float t[16] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        v_store(t, gelu16(v_load(t)));
        memcpy(out + i, t, (size_t)(n - i) * sizeof(float));
    }
}
MUSAE_ISA_DISPATCH(gelu_range, (float *out, const float *x, int64_t n), (out, x, n))

void cpu_gelu_range(float *out, const float *x, int64_t n) { gelu_range(out, x, n); }

void cpu_gelu(float *out, const float *x, int64_t n) {
    enum { CHUNK = 16384 };
    const int64_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 4)
    for (int64_t c = 0; c < chunks; c++) {
        const int64_t i0 = c * CHUNK;
        gelu_range(out + i0, x + i0, i0 + CHUNK <= n ? CHUNK : n - i0);
    }
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
