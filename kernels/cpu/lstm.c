/* One nn.LSTM layer (PyTorch gate order i, f, g, o). The input projection of all t steps is one GEMM;
 * only the recurrent product W_hh·h is sequential, one GEMV per step (W_hh, 16 MB for EnCodec's 1024-wide
 * LSTM, stays in the last-level cache across the steps of a layer). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

static inline float sigmoidf(float v) { return 1.0f / (1.0f + expf(-v)); }

void cpu_lstm(float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
              const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work) {
    MUSAE_ASSERT(t >= 0 && d_in > 0 && hidden > 0 && 4 * hidden <= INT32_MAX, "lstm: t %lld d_in %lld hidden %lld",
                 (long long)t, (long long)d_in, (long long)hidden);
    MUSAE_ASSERT(out != x, "lstm: out must not alias x");
    const int64_t H = hidden, G = 4 * hidden;
    if (t == 0) return;
    cpu_gemm(0, 1, t, G, d_in, 1.0f, x, d_in, w_ih, d_in, 0.0f, work, G);
#pragma omp parallel for if (t * G > 65536) schedule(static)
    for (int64_t s = 0; s < t; s++)
        for (int64_t j = 0; j < G; j++) work[s * G + j] += b_ih[j] + b_hh[j];
    for (int64_t s = 0; s < t; s++) {
        float *g = work + s * G;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)G, (int)H, 1.0f, w_hh, (int)H, h, 1, 1.0f, g, 1);
        float *o = out + s * H;
        for (int64_t j = 0; j < H; j++) {
            float ig = sigmoidf(g[j]), fg = sigmoidf(g[H + j]), gg = tanhf(g[2 * H + j]), og = sigmoidf(g[3 * H + j]);
            c[j] = fg * c[j] + ig * gg;
            o[j] = og * tanhf(c[j]);
        }
        memcpy(h, o, (size_t)H * sizeof(float));
    }
}
