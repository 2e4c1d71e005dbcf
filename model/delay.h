/* MusicGen's codebook delay pattern (HF build_delay_pattern_mask / apply_delay_pattern_mask, mono).
 *
 * Teacher forcing: F frames of K codebooks become T = F + K sequence steps. Step 0 is BOS for every
 * codebook, codebook k of frame t sits at step t + 1 + k, and BOS (= vocab size, 2048) fills every other
 * slot (ARCHITECTURE.md, "Delayed sequence").
 *
 * Generation runs N forward steps (HF max_new_tokens; step s feeds sequence position s and produces
 * position s + 1), so the sequence has max_length = N + 1 positions. HF applies the delay only when
 * max_length >= 2K - 1: then position j of codebook k is generated iff k < j < max_length - K + 1 + k and
 * F = N - (K - 1) frames come out. Below that ("short case", N <= 5 for K = 4) there is no delay at all:
 * every codebook of frame t is generated at step t and F = N. */
#ifndef MUSAE_DELAY_H
#define MUSAE_DELAY_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* codes [B, K, F] → delayed [B, K, F + K] */
void mg_delay_codes(const int64_t *codes, int64_t B, int64_t K, int64_t F, int64_t bos, int64_t *delayed);
/* delayed [B, K, F + K] → codes [B, K, F] (the inverse; BOS slots are dropped) */
void mg_undelay_codes(const int64_t *delayed, int64_t B, int64_t K, int64_t F, int64_t *codes);

/* The generation plan of N = steps forward steps. */
typedef struct {
    int64_t K;
    int64_t steps;      /* N */
    int64_t max_length; /* N + 1 sequence positions, position 0 = BOS */
    int delayed;        /* max_length >= 2K - 1 */
    int64_t frames;     /* F: N - (K - 1) with the delay, N without */
} mg_delay_plan;

mg_delay_plan mg_delay_plan_steps(int64_t K, int64_t steps);
/* The plan that yields `frames` frames: N = F + K - 1 when that reaches the delayed regime, else N = F
 * (the short case: F < K - 1). F = K - 1 .. 2K - 3 can only come from the delayed regime, which needs
 * N = F + K - 1 >= 2K - 2, so every F >= 1 maps to exactly one N. */
mg_delay_plan mg_delay_plan_frames(int64_t K, int64_t frames);
/* Whether the token generated for codebook k at sequence position j (1 <= j < max_length) is kept; a
 * position that is not free holds BOS. */
int mg_delay_free(const mg_delay_plan *p, int64_t k, int64_t j);
/* Sequence position of frame t of codebook k. */
int64_t mg_delay_pos(const mg_delay_plan *p, int64_t k, int64_t t);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_DELAY_H */
