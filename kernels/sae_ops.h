/* The top-k SAE's compute ops. kernels/cpu/sae_*.c hold the fp32 CPU reference (OpenBLAS + OpenMP), one op
 * per file; the CUDA trainer implements the same functions op by op and is tested against these.
 *
 * The model (sae/sae.h): with xc = x − b_dec,
 *   pre  = ReLU(W_enc xc + b_enc)                          [N, M]
 *   z    = top-k of each row of pre (or the top N·k of the whole batch: batch-top-k)
 *   x̂    = W_decᵀ z + b_dec
 * Codes are CSR (row n holds entries ptr[n]..ptr[n+1]); only strictly positive values are kept, so a row may
 * hold fewer than k entries (a zero contributes nothing to x̂ and ReLU'(0) = 0 passes no gradient).
 *
 * Every op is deterministic: each output element is produced by one thread in a fixed order, so results
 * depend only on the inputs and the OpenMP thread count (bit-identical resume relies on this). Ties in a
 * selection go to the lower latent index (and, across rows, to the lower row). */
#ifndef MUSAE_SAE_OPS_H
#define MUSAE_SAE_OPS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n_rows;
    int64_t cap;     /* entries idx/val can hold */
    int64_t *ptr;    /* [n_rows + 1] */
    int32_t *idx;    /* [cap] latent */
    float *val;      /* [cap] activation (> 0) */
} sae_codes;

/* Encoder, fused: pre-activations in tiles of rows × latents that stay in cache, each merged at once into a
 * running per-row top-k (and a per-row top-k_aux over the latents with dead[i] != 0, for AuxK). The [N, M]
 * matrix is never formed unless `pre` is given (batch-top-k needs it; then pre receives ReLU(W_enc xc +
 * b_enc) and k may be 0 to select nothing per row).
 *   xc [N, d], W_enc [M, d], b_enc [M]; codes->cap >= N·k, aux->cap >= N·k_aux (aux may be NULL when
 *   dead is NULL or k_aux == 0). Rows of codes are sorted by value, descending; rows of aux are in no
 *   particular (but deterministic) order. */
void sae_cpu_encode(const float *xc, const float *W_enc, const float *b_enc, int64_t N, int64_t d, int64_t M, int k,
                    const uint8_t *dead, int k_aux, sae_codes *codes, sae_codes *aux, float *pre);

/* Batch-top-k: the `total` largest positive entries of pre [N, M] (ties to the lower row, then latent),
 * as CSR codes (codes->cap >= total). Returns the smallest selected value (0 if none). */
float sae_cpu_batch_topk(const float *pre, int64_t N, int64_t M, int64_t total, sae_codes *codes);

/* out[n] = Σ val·W_dec[idx] (+ b_dec when b_dec is not NULL).  W_dec [M, d], out [N, d]. */
void sae_cpu_decode(const sae_codes *codes, const float *W_dec, const float *b_dec, int64_t d, float *out);

/* Σ_n ‖x_n − mean(x)‖² over the batch, in double (the FVU denominator). */
double sae_cpu_total_variance(const float *x, int64_t N, int64_t d);

/* The loss and its gradients with respect to the two decoder outputs:
 *   e     = x − x̂;  fvu = Σ e² / tv
 *   aux   = Σ (ê − e)² / tv     (e treated as a constant, as sparsify's e.detach())
 *   loss  = fvu + aux_coef · aux
 *   g_xhat = −2 e / tv;   g_ehat = 2 aux_coef (ê − e) / tv
 * ehat and g_ehat may be NULL (no dead latents). Returns fvu; *aux_out receives aux (0 without ehat). */
double sae_cpu_loss_grad(const float *x, const float *xhat, const float *ehat, int64_t N, int64_t d, double tv,
                         float aux_coef, float *g_xhat, float *g_ehat, double *aux_out);

/* Sparse backward through decode and encode, one pass per latent (latent-sorted entries, so every gradient
 * row is written by one thread, no atomics). For each entry (n, i, a) of codes (gradient g = g_xhat) and of
 * aux (g = g_ehat):
 *   dz        = <g[n], W_dec[i]>                    (the gradient of the pre-activation; ReLU' = 1 as a > 0)
 *   dW_dec[i] += a · g[n];   dW_enc[i] += dz · xc[n];   db_enc[i] += dz
 * and then db_dec = Σ_n g_xhat[n] − Σ_i db_enc[i] · W_enc[i]  (xc = x − b_dec feeds the encoder).
 * Every gradient is overwritten (rows of untouched latents become 0). aux/g_ehat may be NULL.
 * scratch: sae_cpu_backward_scratch_bytes(N, nnz, M) bytes. */
size_t sae_cpu_backward_scratch_bytes(int64_t N, int64_t nnz, int64_t M);
void sae_cpu_backward(const sae_codes *codes, const sae_codes *aux, const float *g_xhat, const float *g_ehat,
                      const float *xc, const float *W_enc, const float *W_dec, int64_t d, int64_t M, float *dW_enc,
                      float *db_enc, float *dW_dec, float *db_dec, void *scratch);

/* Adam (torch.optim.Adam semantics, step t counted from 1):
 *   m = m + (1−β1)(g − m);  v = β2 v + (1−β2) g²;  p −= lr/(1−β1^t) · m / (√v / √(1−β2^t) + eps) */
typedef struct {
    float lr, beta1, beta2, eps;
    int64_t t;
} sae_adam_hparams;
void sae_cpu_adam(float *p, const float *g, float *m, float *v, int64_t n, const sae_adam_hparams *h);

/* The decoder's constrained step, per row i of W_dec [M, d] (unit norm on entry):
 *   g_i −= <g_i, w_i> w_i   (remove the component that would only change the norm)
 *   Adam on w_i;  w_i /= ‖w_i‖.  g is modified in place. */
void sae_cpu_adam_decoder(float *W_dec, float *g, float *m, float *v, int64_t M, int64_t d, const sae_adam_hparams *h);

/* Rows of W [M, d] scaled to unit L2 norm (a zero row stays zero). */
void sae_cpu_normalize_rows(float *W, int64_t M, int64_t d);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_OPS_H */
