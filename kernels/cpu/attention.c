/* Reference attention: scores in fp32, max-subtracted softmax, masks added as -FLT_MAX like HF's
 * additive finfo(float32).min masks (so a fully masked row becomes uniform, exactly as HF computes it). */
#include <float.h>
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p) {
    const int64_t B = p->batch, H = p->heads, TQ = p->tq, TK = p->tk, D = p->dh;
    MUSAE_ASSERT(B >= 0 && H > 0 && TQ >= 0 && TK > 0 && D > 0, "attention dims b%lld h%lld tq%lld tk%lld d%lld",
                 (long long)B, (long long)H, (long long)TQ, (long long)TK, (long long)D);
    MUSAE_ASSERT(!p->bias || p->bias_tk >= TK, "bias row stride %lld < tk %lld", (long long)p->bias_tk, (long long)TK);
#pragma omp parallel
    {
        float *s = musae_xmalloc((size_t)TK * sizeof(float));
#pragma omp for collapse(3) schedule(static)
        for (int64_t b = 0; b < B; b++)
            for (int64_t h = 0; h < H; h++)
                for (int64_t i = 0; i < TQ; i++) {
                    const float *qi = q + b * p->q_sb + i * p->q_st + h * D;
                    float mx = -INFINITY;
                    for (int64_t j = 0; j < TK; j++) {
                        const float *kj = k + b * p->k_sb + j * p->k_st + h * D;
                        float dot = 0;
                        for (int64_t d = 0; d < D; d++) dot += qi[d] * kj[d];
                        float sc = dot * p->scale;
                        if (p->bias) sc += p->bias[(h * TQ + i) * p->bias_tk + j];
                        int masked = (p->causal && j > i + p->q_pos0) || (p->key_mask && p->key_mask[b * TK + j] == 0.0f);
                        if (masked) sc += -FLT_MAX;
                        s[j] = sc;
                        if (sc > mx) mx = sc;
                    }
                    float sum = 0;
                    for (int64_t j = 0; j < TK; j++) {
                        s[j] = expf(s[j] - mx);
                        sum += s[j];
                    }
                    float inv = 1.0f / sum;
                    float *o = out + b * p->o_sb + i * p->o_st + h * D;
                    for (int64_t d = 0; d < D; d++) o[d] = 0;
                    for (int64_t j = 0; j < TK; j++) {
                        if (s[j] == 0.0f) continue;
                        const float *vj = v + b * p->v_sb + j * p->v_st + h * D;
                        float wj = s[j] * inv;
                        for (int64_t d = 0; d < D; d++) o[d] += wj * vj[d];
                    }
                }
        free(s);
    }
}
