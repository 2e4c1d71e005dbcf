/* The top-k encoder of `musae analyze` on CPUs: the same codes as sae_model_infer, from a cheap screen of every
 * pre-activation and an exact f32 rescore of the few latents the screen cannot rule out.
 *
 * Two screens, one rescore:
 * - AMX (Intel Sapphire Rapids and later): bf16 operands, fp32 accumulation on the tiles (~10x the f32 FLOP rate
 *   of the AVX-512 sgemm, which at d 512 and 8192 latents was two thirds of the whole analyze run);
 * - int16 (every other CPU with AVX2; eval/analyze_screen_i16.c): each row of xc and each W_i quantized to int16
 *   with its own scale, multiplied exactly in int32 (vpmaddwd + vpaddd, or AVX-512 VNNI's vpdpwssd: 2x the f32
 *   FMA rate, or AVX-VNNI's vpdpwssd on ymm), the range chosen so that no sum of d products can overflow.
 * Every screened value a_i is within a proven bound B of the f32 value p_i that the rescore computes (Cauchy–Schwarz
 * with the operands' rounding errors as they are: ‖W̃_i − W_i‖·‖x̃‖ + ‖W_i‖·‖x̃ − xc‖, plus the fp32 sums' and
 * conversions' worst case; analyze_encode.c has the whole bound). So with θ a lower bound of the k-th largest a,
 * no latent with a_i < max(θ − 2B, −B) can be in the row's top-k of p (k latents have p ≥ θ − B > p_i, or p_i < 0);
 * the others are rescored in f32 and the top k of p (value descending, ties to the lower latent, p > 0 only) are
 * the row's codes: exactly the selection sae_model_infer makes from f32 pre-activations, up to f32
 * summation-order noise in p itself (which the sgemm path has too). Typically 1–3 k candidates per row are
 * rescored.
 *
 * The rescore sums each p_i in one fixed order (16 lanes, then a fixed tree) on every ISA level, and the candidate
 * sets always hold the top k of p, so every screen and level returns the same codes, bit for bit. A row's codes
 * depend on that row alone (not on its neighbours in the block or the thread count).
 *
 * Which screen: MUSAE_ANALYZE_SCREEN=auto (the default: AMX at the amx ISA level (kernels/cpu/isa.h), else
 * int16 where MUSAE_ISA is at least avx2 (with the CPU's best kernel: AVX-512 VNNI at the avx512 level, then
 * AVX-VNNI, then AVX2), else none: the sgemm), int16 (skip AMX), int16-avx2 (the plain AVX2 kernel, as a CPU
 * without either VNNI runs it) or off (always the sgemm); anything else is a one-line error. */
#ifndef MUSAE_ANALYZE_ENCODE_H
#define MUSAE_ANALYZE_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/sae_ops.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct analyze_screen analyze_screen; /* an encoder packed for its screen */

typedef enum {
    ANALYZE_SCREEN_AUTO = 0,        /* MUSAE_ANALYZE_SCREEN's choice (above) */
    ANALYZE_SCREEN_AMX,             /* bf16 on AMX tiles */
    ANALYZE_SCREEN_I16_AVX512_VNNI, /* int16, vpdpwssd on zmm (AVX-512 VNNI) */
    ANALYZE_SCREEN_I16_AVX2,        /* int16, vpmaddwd + vpaddd on ymm (also what AVX-512 CPUs without VNNI run) */
    ANALYZE_SCREEN_I16_AVX_VNNI,    /* int16, vpdpwssd on ymm (AVX-VNNI: AVX2 CPUs from Alder Lake, Sierra Forest) */
} analyze_screen_kind;

/* The packed encoder of SAE m (top-k, or batch-top-k by its threshold), or NULL where no screen applies:
 * MUSAE_ANALYZE_SCREEN=off, MUSAE_ISA below avx2 (kernels/cpu/isa.h), non-finite weights. */
analyze_screen *analyze_screen_init(const sae_model *m);
/* The same screen and rescore for any rows W [M, d] and bias (NULL: zeros), both kept by the caller while the
 * encoder lives: the top k (at most M) of W·x + bias per row x, value descending, ties to the lower index; relu 1:
 * only values > 0 (the encoder), 0: any value (decoder neighbours). kind: a screen, or AUTO; NULL where that
 * screen is not available (the CPU, MUSAE_ISA, or for AUTO MUSAE_ANALYZE_SCREEN). */
analyze_screen *analyze_screen_init_rows(const float *W, const float *bias, int64_t M, int64_t d, int k, int relu,
                                         analyze_screen_kind kind);
/* The same for a batch-top-k SAE's inference (thr > 0, its threshold): every latent whose f32 value W_i·x + b_i
 * is > thr, as sae_model_threshold_codes selects them from the sgemm's values (up to their summation order),
 * sorted like the top-k codes. NULL where the screen is not available or thr is not a positive number. */
analyze_screen *analyze_screen_init_threshold(const float *W, const float *bias, int64_t M, int64_t d, float thr,
                                              analyze_screen_kind kind);
analyze_screen_kind analyze_screen_kind_of(const analyze_screen *a);
/* The screen AUTO stands for in this process (AUTO itself: none, the sgemm). */
analyze_screen_kind analyze_screen_choice(void);
/* "AMX bf16", "int16 AVX-512 VNNI", "int16 AVX2", "int16 AVX-VNNI" */
const char *analyze_screen_name(analyze_screen_kind kind);
/* Whether kind is one of the int16 screens. */
int analyze_screen_is_i16(analyze_screen_kind kind);
void analyze_screen_free(analyze_screen *a);
/* Codes of centred rows xc [n, d] (xc = x − b_dec; finite): codes->ptr holds n + 1; idx/val grown with realloc
 * (cap follows). Rows sorted by value descending, ties to the lower latent. */
void analyze_screen_encode(const analyze_screen *a, const float *xc, int64_t n, sae_codes *codes);

/* A tile of an int16 screen (ANALYZE_SCREEN_I16_*), for the decoder neighbours' half matrix
 * (eval/analyze_neighbours.c): out [nr][nj rounded up to 32] = the screen of the rows x [nr, d] (finite, nr <= 256)
 * against the encoder's rows j0 .. j0 + nj − 1 (j0 a multiple of 32, nj <= 256), bias added, padding −inf.
 * Returns B with |out[r][c] − analyze_rescore's value of row j0 + c at x_r| <= B for every entry (the bound of
 * analyze_screen_encode, over these rows). ws: analyze_screen_tile_ws's scratch, one per thread (free() it); it
 * keeps the last rows quantized, found again by x and nr, so x must not change while ws lives. */
void *analyze_screen_tile_ws(const analyze_screen *a);
double analyze_screen_tile(const analyze_screen *a, void *ws, const float *x, int64_t nr, int64_t j0, int64_t nj,
                           float *out);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_ENCODE_H */
