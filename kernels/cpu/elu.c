/* nn.ELU (alpha 1): x > 0 ? x : exp(x) - 1. EnCodec applies it before almost every convolution, so it runs
 * over every activation of the codec several times: a libm expm1f call per element cost about as much as
 * the convolutions, so it is evaluated with the SIMD expm1 of vec_math.h (within 2 ulps of expm1;
 * tests/test_encodec_ops.c). Large arrays are split over the OpenMP team in blocks of 64 Ki elements
 * (elementwise, so the bits do not depend on the split): OpenBLAS runs single-threaded inside our own
 * team (gemm.c), so there is one pool and no second one to spin against; small arrays stay on one thread. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_math.h"

enum { ELU_BLOCK = 1 << 16 }; /* elements; a multiple of 16 */

VM_INLINE f32x16 elu16(f32x16 v) {
    f32x16 m = v_expm1_neg(v_min(v, V16(0.0f)));
    return v_select(v <= V16(0.0f), m, v); /* NaN compares false: stays NaN, as in torch */
}

ISA_BODY void elu_range_body(float *out, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) v_store(out + i, elu16(v_load(x + i)));
    if (i < n) {
        float t[16] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        v_store(t, elu16(v_load(t)));
        memcpy(out + i, t, (size_t)(n - i) * sizeof(float));
    }
}
MUSAE_ISA_DISPATCH(elu_range, (float *out, const float *x, int64_t n), (out, x, n))

void cpu_elu_serial(float *out, const float *x, int64_t n) { elu_range(out, x, n); }

void cpu_elu(float *out, const float *x, int64_t n) {
    MUSAE_ASSERT(n >= 0, "elu: n = %lld", (long long)n);
    const int64_t blocks = (n + ELU_BLOCK - 1) / ELU_BLOCK;
#pragma omp parallel for schedule(dynamic, 1) if (blocks >= 8)
    for (int64_t b = 0; b < blocks; b++) {
        const int64_t i0 = b * ELU_BLOCK, m = n - i0 < ELU_BLOCK ? n - i0 : ELU_BLOCK;
        elu_range(out + i0, x + i0, m);
    }
}
