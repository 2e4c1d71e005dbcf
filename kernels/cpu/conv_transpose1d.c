/* ConvTranspose1d over time-major activations, polyphase, through OpenBLAS.
 *
 * With J = k / stride taps per phase, the full (uncropped) output row q·s + r is
 *   Σ_{u < J} x[q - u] · W[:, :, r + u·s]
 * so phase r of the output is an ordinary GEMM per tap u over the input rows, written straight into every
 * s-th output row (ldc = s·c_out): no col2im buffer and no scatter. Rows of x outside [0, t_in) contribute
 * nothing, which each GEMM handles by restricting its row range. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

void cpu_conv_transpose1d(float *out, const float *x, const float *w, const float *bias,
                          const musae_convt1d_params *p) {
    const int64_t ci = p->c_in, co = p->c_out, s = p->stride, k = p->k;
    MUSAE_ASSERT(p->t_in > 0 && ci > 0 && co > 0 && s > 0 && k > 0 && k % s == 0 && p->crop_left >= 0 &&
                     p->t_out >= 0,
                 "conv_transpose1d: bad parameters t_in %lld c_in %lld c_out %lld k %lld stride %lld crop %d",
                 (long long)p->t_in, (long long)ci, (long long)co, (long long)k, (long long)s, p->crop_left);
    const int64_t J = k / s, full = (p->t_in - 1) * s + k;
    MUSAE_ASSERT(p->crop_left + p->t_out <= full, "conv_transpose1d: rows %d..%lld past the full output of %lld",
                 p->crop_left, (long long)(p->crop_left + p->t_out), (long long)full);

    for (int64_t t = 0; t < p->t_out; t++) {
        if (bias) memcpy(out + t * co, bias, (size_t)co * sizeof(float));
        else memset(out + t * co, 0, (size_t)co * sizeof(float));
    }
    for (int64_t r = 0; r < s; r++) {
        /* output rows of this phase: p = q·s + r - crop_left in [0, t_out) */
        int64_t q_lo = floor_div(p->crop_left - r + s - 1, s);
        int64_t q_hi = floor_div(p->t_out - 1 + p->crop_left - r, s); /* inclusive */
        for (int64_t m = 0; m < J; m++) {
            int64_t u = J - 1 - m; /* the tap r + u·s reads x[q - u] */
            int64_t a = q_lo > u ? q_lo : u, b = q_hi < p->t_in - 1 + u ? q_hi : p->t_in - 1 + u;
            if (a > b) continue;
            cpu_gemm(0, 1, b - a + 1, co, ci, 1.0f, x + (a - u) * ci, ci, w + (r * co * J + m) * ci, J * ci, 1.0f,
                     out + (a * s + r - p->crop_left) * co, s * co);
        }
    }
}
