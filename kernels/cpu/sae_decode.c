/* SAE decoder: x̂[n] = Σ_j val·W_dec[idx] (+ b_dec), a gather of k rows per token (O(N·k·d), not O(N·M·d)). */
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/sae_vec.h"
#include "kernels/sae_ops.h"

ISA_BODY void decode_row_body(float *restrict out, const int32_t *idx, const float *val, int64_t cnt,
                              const float *restrict W_dec, const float *restrict b_dec, int64_t d) {
    if (b_dec) memcpy(out, b_dec, sizeof(float) * (size_t)d);
    else memset(out, 0, sizeof(float) * (size_t)d);
    for (int64_t e = 0; e < cnt; e++) {
        const float a = val[e], *restrict w = W_dec + (int64_t)idx[e] * d;
        for (int64_t i = 0; i < d; i++) out[i] += a * w[i];
    }
}
MUSAE_ISA_DISPATCH(decode_row,
                   (float *restrict out, const int32_t *idx, const float *val, int64_t cnt, const float *restrict W_dec,
                    const float *restrict b_dec, int64_t d),
                   (out, idx, val, cnt, W_dec, b_dec, d))

void sae_cpu_decode(const sae_codes *codes, const float *W_dec, const float *b_dec, int64_t d, float *out) {
    const int64_t N = codes->n_rows;
#pragma omp parallel for schedule(static) if (codes->ptr[N] * d > 65536)
    for (int64_t n = 0; n < N; n++)
        decode_row(out + n * d, codes->idx + codes->ptr[n], codes->val + codes->ptr[n], codes->ptr[n + 1] - codes->ptr[n],
                   W_dec, b_dec, d);
}
