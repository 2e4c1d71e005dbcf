/* The int16 screen of analyze's encoder (eval/analyze_encode.h) for CPUs without AMX: pre-activations of a
 * block of rows against every latent, in exact integer arithmetic.
 *
 * Quantization. Each latent's row W_i gets the scale sw_i = max_j |W_ij| / Q and the integers
 * qw_ij = rint(W_ij · fl(1/sw_i)) (the nearest to W_ij / sw_i, up to that reciprocal's rounding: the bound uses
 * the errors as they are); each row of xc the same with its own sx. Q is the largest integer with d·Q² < 2³¹
 * (2047 at d 512, 1448 at d 1024), so Σ_j qx_j·qw_ij, and every partial sum of it, fits int32: vpmaddwd's pair
 * sums and the int32 adds (or VNNI's vpdpwssd, which adds without saturating) are exact, and the screen's integer
 * is the same on every ISA level. W̃_i = sw_i·qw_i and x̃ = sx·qx are what the screen multiplies; the screen value
 * is a_i = fma(float(S_i), sw_i·sx, b_i), at most 3·2⁻²⁴·Σ_j|W̃_ij x̃_j| + 2⁻²⁴·|b_i| from W̃_i·x̃ + b_i.
 *
 * Layout. Wq [Mp/16][dp/2][16][2] int16 (latents in blocks of 16, each block's inputs in pairs; Mp = M rounded up
 * to 32, dp = d rounded up to 2; padding zero), sw [Mp] (0 for padding); a block of R rows: xq [R][dp] int16
 * (rows past the block's zero), sx [R]. */
#ifndef MUSAE_ANALYZE_SCREEN_I16_H
#define MUSAE_ANALYZE_SCREEN_I16_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Q for rows of d inputs: the largest q <= 32767 with d·q² <= 2³¹ − 1. */
int analyze_i16_range(int64_t d);
/* Packs finite W [M, d] into Wq and sw (layout above); returns max_i ‖W̃_i − W_i‖₂, rounded up. */
double analyze_i16_pack(const float *W, int64_t M, int64_t d, int64_t Mp, int64_t dp, int Q, int16_t *Wq, float *sw);
/* Quantizes the finite rows xc [nr, d] (nr <= R) into xq [R][dp] and sx [R] (rows nr.. zero), and per row
 * nrm[3r..3r+2] = ‖xc‖₂, ‖x̃‖₂, ‖x̃ − xc‖₂, each rounded up. */
void analyze_i16_rows(const float *xc, int64_t nr, int64_t R, int64_t d, int64_t dp, int Q, int16_t *xq, float *sx,
                      double *nrm);
/* The kernels: AVX2 (vpmaddwd + vpaddd on ymm), AVX-512 VNNI (vpdpwssd on zmm), AVX-VNNI (vpdpwssd on ymm). */
typedef enum { ANALYZE_I16_AVX2 = 0, ANALYZE_I16_AVX512_VNNI, ANALYZE_I16_AVX_VNNI } analyze_i16_kernel;

/* out [R, Mp] (row stride Mp) = the screen of R rows (R a multiple of 8) against every latent, bias_p [Mp] added
 * (padding −inf, so it never ranks); and the rows' chunk maxima cmax [R, 16·G] (−inf on entry): chunk (g, lane)
 * holds the latents 16·v + lane of the 16-latent blocks v ≡ g (mod G). kernel: one the CPU has (the caller
 * checked). Every kernel gives the same bits. */
void analyze_i16_screen(analyze_i16_kernel kernel, const int16_t *Wq, const float *sw, const int16_t *xq, const float *sx,
                        int64_t R, int64_t dp, int64_t Mp, const float *bias_p, float *out, float *cmax, int64_t G);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_SCREEN_I16_H */
