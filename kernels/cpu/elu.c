/* nn.ELU (alpha 1): x > 0 ? x : exp(x) - 1. EnCodec applies it before almost every convolution, so it runs
 * over every activation of the codec several times; the libm expm1f call per element cost as much as the
 * convolutions themselves, so this file evaluates expm1 with a branch-free polynomial the compiler turns
 * into SIMD code. Accuracy: within 2 float32 ulps of expm1 over (-inf, 0] (tests/test_encodec_ops.c). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

/* expm1(x) for x <= 0. Two regimes, both computed and blended without branches:
 *   |x| < 0.25: the Taylor series to x^9 (cancellation-free; error below 1e-9 relative)
 *   otherwise : exp(x) - 1 with exp by range reduction x = n·ln2 + r, |r| <= ln2/2, a degree-7 polynomial
 *               for exp(r) and the exponent bits for 2^n; exp(x) >= 0.77 is not small there, so the
 *               subtraction of 1 loses no relative accuracy that matters. */
static inline float expm1_neg(float x) {
    float xc = x < -87.0f ? -87.0f : x; /* exp(-87) is a normal float; ELU is -1 to float precision there */
    /* round to nearest with the 1.5·2^23 trick: SSE2 has no round instruction, this vectorizes anywhere */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693145751953125f - n * 1.42860682030941723e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    float big = p * scale - 1.0f;
    float t = x * (1.0f / 362880.0f) + 1.0f / 40320.0f;
    t = t * x + 1.0f / 5040.0f;
    t = t * x + 1.0f / 720.0f;
    t = t * x + 1.0f / 120.0f;
    t = t * x + 1.0f / 24.0f;
    t = t * x + 1.0f / 6.0f;
    t = t * x + 0.5f;
    float small = x + x * x * t;
    return x > -0.25f ? small : big;
}

void cpu_elu(float *out, const float *x, int64_t n) {
    MUSAE_ASSERT(n >= 0, "elu: n = %lld", (long long)n);
#pragma omp parallel for simd if (n > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float m = expm1_neg(v < 0.0f ? v : 0.0f);
        out[i] = v <= 0.0f ? m : v; /* NaN stays NaN, as in torch */
    }
}
