/* The top-k SAE's compute ops on the GPU, op by op the twins of kernels/sae_ops.h (read that header first: the
 * model, the CSR codes and every op's semantics are defined there and hold here unchanged, including ties
 * to the lower latent index and "strictly positive values only").
 *
 * Conventions (all ops):
 *  - Every pointer is device memory unless its comment says host. sae_codes carries device pointers; its
 *    n_rows and cap are host integers, and the number of entries is ptr[n_rows] on the device (no op reads
 *    it back: a training step runs without a host synchronisation).
 *  - Every launcher takes the stream it enqueues on, asserts its preconditions (always on) and checks each
 *    launch. Ops that need temporary memory take `scratch` of at least *_scratch_bytes(...) bytes
 *    (256-byte aligned; cudaMalloc'd memory is).
 *  - Deterministic: no floating-point atomics anywhere; every sum is taken in a fixed order (latent-sorted
 *    backward, fixed reduction trees), so two runs on the same GPU give the same bits.
 *  - bf16 is stored as uint16_t bit patterns (host/core/dtype.h converts identically on both sides).
 *    Masters are fp32; bf16 "shadows" (W_enc, W_dec, xc, gradients) only feed the bandwidth- and
 *    GEMM-bound reads, and the Adam kernels refresh the weight shadows in the same pass.
 *
 * Tested against the CPU reference in tests/test_sae_gpu.cu; benchmarked in bench/sae_gpu_bench.cu. */
#ifndef MUSAE_SAE_CUDA_CUH
#define MUSAE_SAE_CUDA_CUH

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "host/core/dtype.h"
#include "kernels/sae_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    SAE_CUDA_K_MAX = 4096,  /* k and k_aux per row (smem lists); tuned for k <= 256 */
    SAE_CUDA_D_MAX = 8192   /* d for the row-per-block kernels (decode, backward, decoder Adam) */
};

/* ---- encoder (kernels/cuda/sae_encode.cu) ------------------------------------------------------------------
 * pre = ReLU(W_enc xc + b_enc), per-row top-k into `codes`, and the per-row top-k_aux among latents with
 * dead[i] != 0 into `aux` (as sae_cpu_encode).
 *   gemm_t  MUSAE_F32: xc, W_enc are float (cuBLAS fp32, pedantic: no TF32) — matches the CPU selection
 *           exactly wherever the pre-activations are separated by more than fp32 summation-order noise;
 *           MUSAE_BF16: xc, W_enc are bf16 shadows (uint16_t), fp32 accumulation and fp32 pre-activations.
 *   pre     NULL: fused path. The GEMM runs in tiles of rows × latents sized to `scratch`; each tile is
 *           reduced at once (bias, ReLU, candidates above the row's running k-th key) into per-row sorted
 *           lists kept in scratch, so the [N, M] matrix never exists. Non-NULL: unfused path (batch-top-k,
 *           tests): pre [N, M] receives ReLU(W_enc xc + b_enc) and the same selection runs over it; k may
 *           be 0 (select nothing per row).
 *   blas    the caller's handle, in host pointer mode; its stream is set to `stream`.
 * codes->cap >= N·k; aux->cap >= N·k_aux when dead && k_aux > 0 (aux may be NULL otherwise; when given
 * without dead it receives N empty rows). Rows are sorted by value descending (ties: lower latent first).
 * scratch_bytes: the size actually passed; sae_cuda_encode_scratch_bytes gives the recommended size (the
 * fused path's tile shrinks to what fits, down to sae_cuda_encode_scratch_min). */
size_t sae_cuda_encode_scratch_bytes(int64_t N, int64_t M, int k, int k_aux);
size_t sae_cuda_encode_scratch_min(int64_t N, int64_t M, int k, int k_aux);
/* The fused path's GEMM tile (*rows × *cols) for that scratch (k_aux = 0 when AuxK is off). */
void sae_cuda_encode_tiling(int64_t N, int64_t M, int k, int k_aux, size_t scratch_bytes, int64_t *rows,
                            int64_t *cols);
void sae_cuda_encode(cublasHandle_t blas, musae_dtype gemm_t, const void *xc, const void *W_enc,
                     const float *b_enc, int64_t N, int64_t d, int64_t M, int k, const uint8_t *dead, int k_aux,
                     sae_codes *codes, sae_codes *aux, float *pre, void *scratch, size_t scratch_bytes,
                     cudaStream_t stream);

/* ---- batch-top-k (kernels/cuda/sae_batch_topk.cu) ------------------------------------------------------------
 * The `total` largest positive entries of pre [N, M] (ties to the lower row, then latent), CSR with each row
 * in latent order (as sae_cpu_batch_topk). *min_sel (device, may be NULL) receives the smallest selected
 * value (0 if none). codes->cap >= total. */
size_t sae_cuda_batch_topk_scratch_bytes(int64_t N, int64_t M);
void sae_cuda_batch_topk(const float *pre, int64_t N, int64_t M, int64_t total, sae_codes *codes, float *min_sel,
                         void *scratch, cudaStream_t stream);

/* ---- decoder (kernels/cuda/sae_decode.cu) --------------------------------------------------------------------
 * out[n] = Σ val·W_dec[idx] (+ b_dec when not NULL), fp32 accumulation in CSR order. w_t MUSAE_F32: W_dec is
 * float (bit-identical to sae_cpu_decode); MUSAE_BF16: W_dec is the bf16 shadow. */
void sae_cuda_decode(const sae_codes *codes, musae_dtype w_t, const void *W_dec, const float *b_dec, int64_t d,
                     float *out, cudaStream_t stream);

/* ---- loss (kernels/cuda/sae_loss.cu) -------------------------------------------------------------------------
 * *tv (device double) = Σ_n ‖x_n − mean(x)‖² in double. */
size_t sae_cuda_total_variance_scratch_bytes(int64_t N, int64_t d);
void sae_cuda_total_variance(const float *x, int64_t N, int64_t d, double *tv, void *scratch, cudaStream_t stream);

/* As sae_cpu_loss_grad, with tv read on the device: g_xhat = −2e/tv, g_ehat = 2·aux_coef·(ê − e)/tv
 * (bit-identical to the CPU), *fvu and *aux (device doubles) the normalised sums. ehat/g_ehat may be NULL;
 * g_xhat_bf16/g_ehat_bf16 (may be NULL) receive bf16 copies of the gradients for sae_cuda_backward's bf16 path. */
size_t sae_cuda_loss_grad_scratch_bytes(int64_t N);
void sae_cuda_loss_grad(const float *x, const float *xhat, const float *ehat, int64_t N, int64_t d, const double *tv,
                        float aux_coef, float *g_xhat, float *g_ehat, uint16_t *g_xhat_bf16, uint16_t *g_ehat_bf16,
                        double *fvu, double *aux, void *scratch, cudaStream_t stream);

/* ---- sparse backward (kernels/cuda/sae_backward.cu) ----------------------------------------------------------
 * As sae_cpu_backward. Entries of codes and aux are sorted by latent (stable CUB radix sort: main entries by
 * token, then aux by token); each latent's entries are cut into chunks of at most `chunk` entries (one block
 * each, so a latent that fires on half the batch does not serialise the kernel); a latent with one chunk
 * writes its gradient rows directly, a latent with several writes partial rows that a second kernel sums in
 * chunk order. db_dec = Σ_n g_xhat[n] − Σ_i db_enc[i]·W_enc[i] from fixed-order partial column sums.
 * act_t: the dtype of g_xhat, g_ehat and xc (MUSAE_F32, or MUSAE_BF16 shadows: half the gathered bytes).
 * W_enc and W_dec are the fp32 masters. Every gradient is overwritten. */
size_t sae_cuda_backward_scratch_bytes(int64_t N, int64_t cap_codes, int64_t cap_aux, int64_t d, int64_t M);
void sae_cuda_backward(const sae_codes *codes, const sae_codes *aux, musae_dtype act_t, const void *g_xhat,
                       const void *g_ehat, const void *xc, const float *W_enc, const float *W_dec, int64_t d,
                       int64_t M, float *dW_enc, float *db_enc, float *dW_dec, float *db_dec, void *scratch,
                       size_t scratch_bytes, cudaStream_t stream);

/* ---- optimizer (kernels/cuda/sae_adam.cu) --------------------------------------------------------------------
 * sae_cuda_adam: as sae_cpu_adam, bit-identical (same operations, no contraction). p_bf16 (may be NULL)
 * receives bf16(p) after the step (the encoder's GEMM shadow), in the same pass. */
void sae_cuda_adam(float *p, const float *g, float *m, float *v, int64_t n, const sae_adam_hparams *h,
                   uint16_t *p_bf16, cudaStream_t stream);

/* As sae_cpu_adam_decoder, one block per row in one pass over W_dec, g, m, v: remove the gradient component
 * parallel to the row, Adam, renormalise; g is updated in place; W_dec_bf16 (may be NULL) receives the bf16
 * shadow of the new rows. Sums use a fixed tree (not the CPU's order: equal within fp32 rounding). */
void sae_cuda_adam_decoder(float *W_dec, float *g, float *m, float *v, int64_t M, int64_t d,
                           const sae_adam_hparams *h, uint16_t *W_dec_bf16, cudaStream_t stream);

/* Rows of W [M, d] scaled to unit L2 norm (a zero row stays zero), as sae_cpu_normalize_rows. */
void sae_cuda_normalize_rows(float *W, int64_t M, int64_t d, cudaStream_t stream);

/* ---- small helpers (kernels/cuda/sae_center.cu) --------------------------------------------------------------
 * x_out = s·x; xc = s·x − b_dec (as sae_trainer_step); xc_bf16 (may be NULL) = bf16(xc). x_out may be NULL. */
void sae_cuda_center(const float *x, float s, const float *b_dec, int64_t N, int64_t d, float *x_out, float *xc,
                     uint16_t *xc_bf16, cudaStream_t stream);
/* dst = bf16(src), round to nearest even (musae_f32_to_bf16). */
void sae_cuda_to_bf16(const float *src, int64_t n, uint16_t *dst, cudaStream_t stream);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAE_CUDA_CUH */
