/* The compute ops every model is written against. Model code never branches on the backend: it calls
 * ops->layernorm(...). The CPU table (kernels/cpu/, OpenBLAS + OpenMP, fp32) is the reference; the CUDA
 * table (kernels/cuda/) has the same signatures and must agree op by op (tests/test_ops).
 *
 * Conventions: row-major, fp32 on this interface; pointers are on the table's device; `out` may alias the
 * first input for elementwise ops (stated per op). Sizes are int64 (B*T*D overflows int). */
#ifndef MUSAE_OPS_H
#define MUSAE_OPS_H

#include <stdint.h>

#include "host/core/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Scaled dot-product attention over one or more heads with strided rows:
 *   q[b, i, h, :] = q + b*q_sb + i*q_st + h*dh      (likewise k, v, out; heads are contiguous in a row)
 *   score[i, j]   = scale * <q_i, k_j> + bias[h, i, j] (if bias) ; masked entries get -FLT_MAX added, as
 *                   HF's additive finfo.min masks do, so a fully masked row becomes a uniform softmax.
 *   masks: causal (key j visible to query i iff j <= i + q_pos0, with q_pos0 the absolute position of query 0
 *          and keys indexed from absolute position 0), and key_mask[b*tk + j] == 0 hides key j.
 *   out[b, i, h, :] = softmax_j(score) · v */
typedef struct {
    int64_t batch, heads, tq, tk, dh;
    int64_t q_sb, q_st, k_sb, k_st, v_sb, v_st, o_sb, o_st;
    float scale;
    int causal;
    int64_t q_pos0;
    const float *bias;     /* [heads, tq, bias_tk] or NULL (T5 relative position bias) */
    int64_t bias_tk;       /* row stride of bias (>= tk) */
    const float *key_mask; /* [batch, tk] with 1 = attend, 0 = masked; or NULL */
} musae_attn_params;

/* Conv1d over time-major activations (EnCodec's SEANet; rows are time steps, channels contiguous).
 *   x [t_in, c_in] is conceptually padded with pad_left rows before and pad_right rows after: "reflect" as
 *   torch.nn.functional.pad(mode="reflect") (each pad must be < t_in), or zeros. With xp the padded input,
 *   out[t, co] (+)= bias[co] + Σ_j Σ_ci w[co, j, ci] · xp[t·stride + j·dilation, ci]     for t < t_out
 *   w is [c_out, k, c_in]: PyTorch's [c_out, c_in, k] with the last two axes swapped (done at load), so the
 *   taps of one output row read contiguous input rows. bias may be NULL. accumulate=1 adds into out (the
 *   residual sum of a ResNet block), 0 overwrites. out must not alias x. */
typedef struct {
    int64_t t_in, t_out, c_in, c_out;
    int k, stride, dilation;
    int pad_left, pad_right;
    int reflect;    /* 1: reflect padding, 0: zeros */
    int accumulate; /* 1: out += conv(x), 0: out = conv(x) */
    int elu;        /* 1: then out = elu(out) (nn.ELU, alpha 1), as ops->elu in place would */
} musae_conv1d_params;

/* ConvTranspose1d over time-major activations, cropped:
 *   full[q·stride + j, co] += Σ_ci x[q, ci] · W[ci, co, j]   (PyTorch layout W [c_in, c_out, k]), + bias[co]
 *   out[p, co] = full[p + crop_left, co]                     for p < t_out
 *   k must be a multiple of stride. w is the polyphase layout [stride, c_out, k/stride, c_in]:
 *   w[r, co, m, ci] = W[ci, co, r + (k/stride - 1 - m)·stride], so output phase r of row q reads the
 *   contiguous input rows q-(k/stride-1) .. q (done at load). out must not alias x. */
typedef struct {
    int64_t t_in, t_out, c_in, c_out;
    int k, stride, crop_left;
} musae_convt1d_params;

/* Storage precision of a model's large weight matrices (activations and accumulation are fp32 either way). */
typedef enum { MUSAE_PREC_FP32 = 0, MUSAE_PREC_BF16 = 1 } musae_precision;

typedef struct musae_ops {
    const char *name;
    musae_device device;

    /* Memory on the table's device. Model code allocates every buffer through these, so the same code
     * runs on any backend; upload/download copy from/to host memory; sync waits for queued work. */
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* device to device */
    void (*sync)(void);

    /* C[M,N] = alpha * op(A) op(B) + beta * C, op(X) = X or Xᵀ; leading dimensions as BLAS (row-major). */
    void (*gemm)(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                 const float *b, int64_t ldb, float beta, float *c, int64_t ldc);
    /* nn.Linear: y[M,N] = x[M,K] · w[N,K]ᵀ + bias[N] (bias may be NULL); beta=1 accumulates into y. */
    void (*linear)(float *y, const float *x, const float *w, const float *bias, int64_t m, int64_t n, int64_t k,
                   float beta);
    /* Weights packed once (NULL where a backend has none; kernels/cpu/cpu_ops.h gives the CPU's layout):
     * packed_floats(N, K) is the size of an [N, K] weight in the packed layout, or 0 where packing does not
     * pay here (the weights then stay rows); pack_weights fills it from fp32 rows (row stride lds, host memory)
     * and returns 1 when every value was finite, 0 otherwise (a load's check, made while packing);
     * linear_packed is linear without bias (gelu 0) or linear_gelu (gelu 1, beta 0) on it, y's rows ldy apart,
     * with the bits of those ops on the unpacked weight. */
    int64_t (*packed_floats)(int64_t n, int64_t k);
    int (*pack_weights)(float *dst, const float *src, int64_t lds, int64_t n, int64_t k);
    void (*linear_packed)(float *y, int64_t ldy, const float *x, const float *wp, int64_t m, int64_t n, int64_t k,
                          float beta, int gelu);
    /* y[M,N] = gelu(x[M,K] · w[N,K]ᵀ) (exact erf GELU): nn.Linear without bias and the activation after it, with
     * the bits of linear then gelu. NULL where a backend has no fused form (the caller runs the two ops). */
    void (*linear_gelu)(float *y, const float *x, const float *w, int64_t m, int64_t n, int64_t k);
    /* out[r,:] = (x[r,:] - mean) / sqrt(var + eps) * w + b  (biased variance; out may alias x) */
    void (*layernorm)(float *out, const float *x, const float *w, const float *b, int64_t rows, int64_t dim, float eps);
    /* out[r,:] = x[r,:] / sqrt(mean(x²) + eps) * w   (T5; out may alias x) */
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t rows, int64_t dim, float eps);
    /* elementwise, out may alias x: exact erf GELU, tanh GELU ("gelu_new"), ReLU */
    void (*gelu)(float *out, const float *x, int64_t n);
    void (*gelu_tanh)(float *out, const float *x, int64_t n);
    void (*relu)(float *out, const float *x, int64_t n);
    /* out = a + b, out = a * b (out may alias a or b) */
    void (*add)(float *out, const float *a, const float *b, int64_t n);
    void (*mul)(float *out, const float *a, const float *b, int64_t n);
    /* out[r,:] (+)= table[ids[r], :] for r < n; accumulate=0 overwrites. ids checked against rows. */
    void (*embedding)(float *out, const float *table, int64_t rows, int64_t dim, const int64_t *ids, int64_t n,
                      int accumulate);
    /* x[r,:] += alpha * v[:] for r < rows (rows contiguous): one vector into many rows (steering hooks).
     * alpha * v[i] is rounded before the add (no fused multiply-add), so alpha = 1 adds v exactly. */
    void (*add_rows)(float *x, const float *v, float alpha, int64_t rows, int64_t dim);
    void (*attention)(float *out, const float *q, const float *k, const float *v, const musae_attn_params *p);
    /* out = x > 0 ? x : exp(x) - 1 (nn.ELU, alpha 1; out may alias x) */
    void (*elu)(float *out, const float *x, int64_t n);
    void (*conv1d)(float *out, const float *x, const float *w, const float *bias, const musae_conv1d_params *p);
    void (*conv_transpose1d)(float *out, const float *x, const float *w, const float *bias,
                             const musae_convt1d_params *p);
    /* One nn.LSTM layer (gate order i, f, g, o) over t steps of x [t, d_in] → out [t, hidden]:
     *   gates = W_ih x_t + b_ih + W_hh h + b_hh; c = σ(f)·c + σ(i)·tanh(g); h = σ(o)·tanh(c); out_t = h
     * w_ih [4·hidden, d_in], w_hh [4·hidden, hidden], biases [4·hidden]. h and c [hidden] hold the state on
     * entry and are updated, so a long sequence can be fed in pieces. work holds t·4·hidden floats. out must
     * not alias x. */
    void (*lstm)(float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
                 const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work);
    /* Residual add fused with the LayerNorm after it (pre-norm blocks): x[r,:] += res[r,:] (x is updated, with
     * the same fp32 add as `add`), then out[r,:] = layernorm(x[r,:]) as above. out must not alias x or res. */
    void (*add_layernorm)(float *x, const float *res, float *out, const float *w, const float *b, int64_t rows,
                          int64_t dim, float eps);
    /* nn.Linear with bf16 weights (raw bf16 bits, e.g. from f32_to_bf16): y[M,N] = x[M,K] · w[N,K]ᵀ + bias[N]
     * with fp32 x, y and accumulation; beta=1 accumulates into y. The CPU widens w to fp32 exactly; the GPU
     * may round x to bf16 as well (large M), so it is held to the FlashAttention rule: error <= 2x that of a
     * naive bf16-x reference (tests/test_ops_gpu). */
    void (*linear_bf16w)(float *y, const float *x, const uint16_t *w, const float *bias, int64_t m, int64_t n,
                         int64_t k, float beta);
    /* out[i] = bf16(x[i]), round to nearest even (musae_f32_to_bf16): weight conversion at load. */
    void (*f32_to_bf16)(uint16_t *out, const float *x, int64_t n);
    /* out = tanh(x) elementwise (out may alias x): the BERT/RoBERTa pooler */
    void (*tanh)(float *out, const float *x, int64_t n);
    /* out[r,:] = x[r,:] / max(‖x[r,:]‖₂, 1e-12), F.normalize's rule (out may alias x): CLAP embeddings */
    void (*l2_normalize)(float *out, const float *x, int64_t rows, int64_t dim);
} musae_ops;

/* The CPU reference table (always present). */
const musae_ops *musae_ops_cpu(void);
/* The CUDA table (kernels/cuda/ops_cuda.h has its knobs), or NULL when musae was built without CUDA or no
 * device is usable (musae_cuda_device_count() says why). */
const musae_ops *musae_ops_cuda(void);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_OPS_H */
