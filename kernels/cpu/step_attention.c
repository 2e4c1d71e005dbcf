/* step_ops->attention on the CPU: the ops.h attention (kernels/cpu/attention.c) with tk and q_pos0 taken
 * from the device position, so a decoding step computes exactly what mg_forward's t = 1 call computes. */
#include "host/core/check.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/step_cpu.h"

void cpu_step_attention(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p,
                        int64_t t_max, const int64_t *pos) {
    const int64_t at = *pos;
    MUSAE_ASSERT(p->tq == 1, "step attention takes one query per row (tq = %lld)", (long long)p->tq);
    MUSAE_ASSERT(at >= 0 && at < t_max, "step attention at position %lld of %lld", (long long)at, (long long)t_max);
    musae_attn_params a = *p;
    a.tk = at + 1;
    a.q_pos0 = at;
    a.causal = 1;
    a.bias = NULL;
    a.key_mask = NULL;
    cpu_attention(out, q, k, v, &a);
}
