/* The decoder neighbours of every latent for `musae analyze` (docs/ANALYZE.md: /features/neighbors and
 * /features/neighbor_cos): the K latents whose unit decoder rows have the largest cosine with each latent's
 * (itself excluded), by cosine descending, ties to the lower latent; -1 / 0 padded when M - 1 < K. */
#ifndef MUSAE_ANALYZE_NEIGHBOURS_H
#define MUSAE_ANALYZE_NEIGHBOURS_H

#include <stdint.h>

#include "eval/analyze_encode.h"

#ifdef __cplusplus
extern "C" {
#endif

/* W_dec [M, d] (any row norms; a zero row has cosine 0 with everything); nb [M, K], cos [M, K]. kind: the screen
 * to use (analyze_screen_choice(), the process's own), ANALYZE_SCREEN_AUTO for none (the f32 sgemm). Every screen
 * gives the top K of analyze_rescore's cosines (the same bits on every screen and ISA level); the sgemm ranks by
 * its own values, then rescores those where the CPU has AVX2. Returns how many rows an int16 screen could not
 * settle from its lists and rescored against every latent (0 for the others). */
int64_t analyze_neighbours(const float *W_dec, int64_t M, int64_t d, int K, analyze_screen_kind kind, int32_t *nb,
                           float *cos);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_NEIGHBOURS_H */
