/* The top-k encoder of `musae analyze` on CPUs with AMX (Intel Sapphire Rapids and later): the same codes as
 * sae_model_infer, from a bf16 screen and an exact f32 rescore.
 *
 * A row's pre-activations are first computed in bf16 with fp32 accumulation (AMX tiles, ~10x the f32 FLOP rate
 * of the AVX-512 sgemm, which at d 512 and 8192 latents was two thirds of the whole analyze run). Every screened
 * value a_i is within a proven bound B of the f32 value p_i that the rescore computes (bf16 rounds each operand
 * by at most 2^-8 relative, the sums add at most d·2^-24 relative, Cauchy–Schwarz bounds Σ|W_ij·xc_j| by
 * max_i‖W_i‖·‖xc‖; the constant is in analyze_encode.c). So with θ a lower bound of the k-th largest a, no latent
 * with a_i < max(θ − 2B, −B) can be in the row's top-k of p (k latents have p ≥ θ − B > p_i, or p_i < 0);
 * the others are rescored in f32 and the top k of p (value descending, ties to the lower latent, p > 0 only) are
 * the row's codes: exactly the selection sae_model_infer makes from f32 pre-activations, up to f32
 * summation-order noise in p itself (which the sgemm path has too). Typically 1–2 k candidates per row are
 * rescored.
 *
 * A row's codes depend on that row alone (not on its neighbours in the block or the thread count). */
#ifndef MUSAE_ANALYZE_ENCODE_H
#define MUSAE_ANALYZE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/sae_ops.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct analyze_amx analyze_amx; /* an SAE's encoder packed for AMX */

/* The packed encoder of top-k SAE m, or NULL where this path does not apply: a batch-top-k SAE, a CPU
 * without AMX-BF16, the kernel refusing the AMX state, or MUSAE_ISA below avx512 (kernels/cpu/isa.h). */
analyze_amx *analyze_amx_init(const sae_model *m);
/* The same screen and rescore for any rows W [M, d] (finite) and bias (NULL: zeros), both kept by the caller
 * while the encoder lives: the top k (at most M) of W·x + bias per row x, value descending, ties to the lower
 * index; relu 1: only values > 0 (the encoder), 0: any value (decoder neighbours). NULL where AMX is absent. */
analyze_amx *analyze_amx_init_rows(const float *W, const float *bias, int64_t M, int64_t d, int k, int relu);
void analyze_amx_free(analyze_amx *a);
/* Codes of centred rows xc [n, d] (xc = x − b_dec): codes->ptr holds n + 1; idx/val grown with realloc (cap
 * follows). Rows sorted by value descending, ties to the lower latent. */
void analyze_amx_encode(const analyze_amx *a, const float *xc, int64_t n, sae_codes *codes);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_ENCODE_H */
