/* bf16-weight linear layer, reference: the weights are widened to fp32 (exact: bf16 is the top half of an
 * fp32) and the fp32 linear runs on them, so the only difference from the fp32 model is the weight rounding
 * done once by f32_to_bf16. */
#include <stdlib.h>

#include "host/core/dtype.h"
#include "kernels/cpu/cpu_ops.h"

void cpu_linear_bf16w(float *y, const float *x, const uint16_t *w, const float *bias, int64_t m, int64_t n,
                      int64_t k, float beta) {
    MUSAE_ASSERT(m >= 0 && n >= 0 && k >= 0, "linear_bf16w dims %lld x %lld x %lld", (long long)m, (long long)n,
                 (long long)k);
    if (m > 8 && (beta == 0.0f || beta == 1.0f) && cpu_gemm_nt_fma_ok()) {
        /* cpu_linear's many-row path packs every weight panel anyway: widen straight into the panels (one
         * pass instead of a widening and then a transposing copy; the same values, so the same bits) */
        float *wp = musae_xmalloc((size_t)(n * k > 0 ? cpu_packed_floats(n, k) : 1) * sizeof(float));
        cpu_pack_weights_bf16(wp, w, n, k);
        /* the FMA kernels at every level, amx too: bf16 weights are not the LM's packed fp32 path (gemm_amx.c) */
        cpu_gemm_nt_fma_packed(m, n, k, x, k, wp, beta, y, n, 0);
        free(wp);
        if (bias) cpu_add_rows(y, bias, 1.0f, m, n); /* y += 1·bias: cpu_linear's bias add, the same bits */
        return;
    }
    float *wf = musae_xmalloc((size_t)(n * k > 0 ? n * k : 1) * sizeof(float));
    for (int64_t i = 0; i < n * k; i++) wf[i] = musae_bf16_to_f32(w[i]);
    cpu_linear(y, x, wf, bias, m, n, k, beta);
    free(wf);
}

void cpu_f32_to_bf16(uint16_t *out, const float *x, int64_t n) {
    MUSAE_ASSERT(n >= 0, "f32_to_bf16: n = %lld", (long long)n);
    for (int64_t i = 0; i < n; i++) out[i] = musae_f32_to_bf16(x[i]);
}
