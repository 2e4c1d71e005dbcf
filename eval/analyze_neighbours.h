/* The decoder neighbours of every latent for `musae analyze` (docs/ANALYZE.md: /features/neighbors and
 * /features/neighbor_cos): the K latents whose unit decoder rows have the largest cosine with each latent's
 * (itself excluded), by cosine descending, ties to the lower latent; -1 / 0 padded when M - 1 < K. */
#ifndef MUSAE_ANALYZE_NEIGHBOURS_H
#define MUSAE_ANALYZE_NEIGHBOURS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* W_dec [M, d] (any row norms; a zero row has cosine 0 with everything); nb [M, K], cos [M, K]. */
void analyze_neighbours(const float *W_dec, int64_t M, int64_t d, int K, int32_t *nb, float *cos);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_NEIGHBOURS_H */
