/* Token choice from one row of scores, as HF's generate does it for MusicGen:
 *   CFG        scores = uncond + (cond - uncond) · g               (fp32, before any warper)
 *   greedy     the first index of the maximum (torch.argmax)
 *   sampling   TemperatureLogitsWarper (scores / T), TopKLogitsWarper (keep scores >= the k-th largest, ties
 *              included), TopPLogitsWarper (drop the tokens whose ascending cumulative probability is
 *              <= 1 - p, always keeping the most likely), then one categorical draw.
 *
 * Randomness (reproducible by the CUDA sampler): the draw for batch item b, codebook k at generation step
 * s is the uniform u = musae_u32_to_unit(word k % 4 of musae_philox(seed, stream = b (0 with same_draws),
 * counter = s · ceil(K/4) + k / 4)) in [0, 1). The candidates (after top-k and top-p) are ordered by
 * score, descending, ties by index ascending; their probabilities p_i = exp(s_i - s_max) / Σ are computed
 * in double (exp = musae_exp_neg of kernels/sample_rule.h, which the GPU computes to the same bits); the token is the first candidate whose cumulative probability exceeds u · Σ p (the last one
 * if rounding leaves none). */
#ifndef MUSAE_SAMPLING_H
#define MUSAE_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int greedy;        /* argmax; the fields below are ignored */
    float temperature; /* > 0; 1 = off */
    int top_k;         /* 0 = off */
    float top_p;       /* (0, 1]; 1 = off */
    uint64_t seed;
    int same_draws;    /* every item draws from stream 0 (as item 0, i.e. as a batch of one with this seed), not
                          stream b: items of one batch that differ only in a steering vector get paired draws */
} mg_sampler;

/* out = uncond + (cond - uncond) · g, elementwise over n (out may alias either input). */
void mg_cfg_combine(float *out, const float *cond, const float *uncond, float g, int64_t n);
/* First index of the maximum of x[0..n). */
int64_t mg_argmax(const float *x, int64_t n);
/* The uniform draw of (item b, codebook k of K, step s) described above. */
float mg_sample_uniform(uint64_t seed, int64_t b, int64_t k, int64_t K, int64_t step);
/* One token from scores [n] with the warpers of s and the uniform u; work holds mg_sample_work_bytes(n).
 * Thread-safe (no shared state), so rows can be sampled in parallel. */
int64_t mg_sample_row(const float *scores, int64_t n, const mg_sampler *s, float u, void *work);
/* Bytes of work mg_sample_row needs for rows of n scores. */
size_t mg_sample_work_bytes(int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_SAMPLING_H */
