/* The exact side of analyze's screened encoder (eval/analyze_encode.h): gathering a row's candidates from its
 * screen, and their f32 rescore, in AVX-512 and AVX2 variants that return the same bits.
 *
 * The rescore's sum has one order on every ISA level: lane l (0..15) accumulates w_j·x_j for j ≡ l (mod 16) in
 * j order with fused multiply-adds (the AVX2 variant keeps lanes 0–7 and 8–15 in two registers), then the lanes
 * are added in a fixed tree (l + 8, l + 4, l + 2, l + 1), then the bias. Its error is at most (d/16 + 5)·2⁻²⁴ of
 * Σ|w_j·x_j| plus the bias addition's rounding, inside the (d + 2)·2⁻²⁴ that analyze_encode.c's bound allows for
 * any order. */
#ifndef MUSAE_ANALYZE_RESCORE_H
#define MUSAE_ANALYZE_RESCORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* p[q] = W_{ci[q]} · x + b[ci[q]] for q < n: W [·, d] rows, x [d]. avx512: the AVX-512 variant, else AVX2
 * (the caller checked the CPU; kernels/cpu/isa.h). */
void analyze_rescore(int avx512, const float *W, const float *b, int64_t d, const float *x, const int32_t *ci,
                     int64_t n, float *p);
/* The latents i < M with !(s[i] < lo) (a NaN is kept), in increasing order, into ci/cv (room for M + 16);
 * returns their count. s: room for M rounded up to 16. */
int64_t analyze_candidates(int avx512, const float *s, int64_t M, float lo, int32_t *ci, float *cv);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_RESCORE_H */
