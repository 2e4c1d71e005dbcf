/* The T5 encoder as MusicGen uses it (HF T5EncoderModel, modeling_t5.py, transformers 5.24), fp32:
 *
 *   x    = embed[ids]                                   no scaling
 *   bias = rel_bias[bucket(j - i), h]                   [heads, S, S], from block 0, reused by every block
 *   per block:
 *     x += O · softmax_j(Q_i·K_j + bias[h,i,j] + mask_j) V     Q,K,V = rmsnorm(x) W_q,k,v; NO 1/sqrt(d_kv);
 *                                                           masked (padding) keys get -FLT_MAX (finfo.min)
 *     x += wo · act(wi · rmsnorm(x))                    relu (t5-base, feed_forward_proj "relu"), or
 *     x += wo · (gelu_tanh(wi_0 · n) * (wi_1 · n))      gated-gelu (T5 v1.1: HF maps it to "gelu_new")
 *   out  = rmsnorm_final(x)                             rmsnorm(x) = w * x / sqrt(mean(x²) + eps)
 *
 * Padded query rows are computed like real ones (HF does the same; MusicGen zeroes them after the
 * projection). Weights live on the device of the op table given at load (fp32 always: T5 runs once per
 * prompt batch, its weights are a small part of the model), and every op of the encoder runs there. */
#ifndef MUSAE_T5_H
#define MUSAE_T5_H

#include <stdint.h>

#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float *attn_norm;      /* [d_model]          layer.0.layer_norm */
    float *q, *k, *v;      /* [inner, d_model]   inner = num_heads * d_kv (may differ from d_model) */
    float *o;              /* [d_model, inner] */
    float *ff_norm;        /* [d_model]          layer.1.layer_norm */
    float *wi;             /* [d_ff, d_model]    wi (relu) or wi_0 (gated: goes through the activation) */
    float *wi_gate;        /* [d_ff, d_model]    wi_1 (gated only, the linear factor); NULL otherwise */
    float *wo;             /* [d_model, d_ff] */
} musae_t5_block;

/* Every pointer is on ops' device except rel_bias (host: the [heads, S, S] bias is built on the host per
 * call, then uploaded). */
typedef struct {
    musae_t5_config cfg;
    const musae_ops *ops;
    int64_t inner;           /* num_heads * d_kv */
    float *embed;            /* [vocab_size, d_model]  shared.weight (= encoder.embed_tokens.weight, tied) */
    float *rel_bias;         /* [num_buckets, num_heads] block 0's relative_attention_bias (host) */
    musae_t5_block *blocks;  /* [num_layers] */
    float *final_norm;       /* [d_model] */
} musae_t5;

/* Loads `prefix`shared.weight (or the tied `prefix`encoder.embed_tokens.weight) and
 * `prefix`encoder.{block.*,final_layer_norm}.* checked against cfg; a missing tensor, a wrong shape or a
 * tensor under `prefix` that the encoder does not use is a musae_fail naming it. */
void musae_t5_load(musae_t5 *m, musae_st *st, const char *prefix, const musae_t5_config *cfg, const musae_ops *ops);
void musae_t5_free(musae_t5 *m);

/* ids, mask [B, S] (mask 1 = real token; NULL = all real) → out [B, S, d_model] (last_hidden_state).
 * block_out: NULL, or num_layers buffers [B, S, d_model] receiving the residual stream after each block
 * (before the final norm), for reference checks. All arguments are host memory; the work runs on the
 * table the weights were loaded with. */
void musae_t5_encode(const musae_t5 *m, const int64_t *ids, const int64_t *mask, int64_t B, int64_t S, float *out,
                     float *const *block_out);

/* HF T5Attention._relative_position_bucket, bidirectional: the bucket of rel = key_pos - query_pos.
 * Computed in float32 in the order torch does, so bucket edges fall where HF's do. */
int musae_t5_bucket(int64_t rel, int num_buckets, int max_distance);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_T5_H */
