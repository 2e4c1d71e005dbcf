/* The statistics of `musae steer` (docs/STEER.md "Statistics"): paired tests across prompts × seeds, the false
 * discovery rate across features, effect sizes with bootstrap intervals and a binomial interval for the share of
 * steerable features. Pure functions of their inputs (the bootstrap is Philox-seeded), so tests recompute them. */
#ifndef MUSAE_STEER_STATS_H
#define MUSAE_STEER_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t n;     /* pairs with a nonzero difference (Wilcoxon's zero rule drops the others) */
    double w_plus; /* sum of the ranks of |d| (ties get their average rank) over the positive d */
    double p;      /* one-sided P(W+ >= w_plus) when every sign is equally likely (H0: no gain); 1 when n = 0 */
    double r_rb;   /* matched-pairs rank-biserial correlation (W+ − W−) / (W+ + W−), 0 when n = 0 */
} steer_wilcoxon;

/* The signed-rank test of the paired differences d[0..n) (gain > 0 the alternative). The p-value is the exact
 * permutation distribution of the signs given the ranks (ties included: ranks are counted in halves) for up to
 * STEER_WILCOXON_EXACT nonzero pairs, else the normal approximation with the tie correction and a continuity
 * correction of 1/2. */
#define STEER_WILCOXON_EXACT 400
steer_wilcoxon steer_wilcoxon_test(const double *d, int64_t n);

/* Benjamini–Hochberg adjusted p-values (q) of p[0..m): q_(i) = min_{j >= i} min(1, p_(j)·m / j) in ascending order
 * of p (ties by index); NaN p-values are left out (q NaN) and m counts the others. */
void steer_bh(const double *p, int64_t m, double *q);

/* The mean of d[0..n) and its percentile bootstrap interval (level, e.g. 0.95) from n_boot resamples of the
 * pairs; resample b draws index i as floor(u·n) with u = musae_u32_to_unit(word i % 4 of musae_philox(seed,
 * stream, b·ceil(n/4) + i/4)). The interval is [the floor((1−level)/2·n_boot)-th,
 * the ceil((1+level)/2·n_boot)−1-th] of the sorted resample means (0-based). */
void steer_bootstrap_mean(const double *d, int64_t n, int64_t n_boot, double level, uint64_t seed, uint64_t stream,
                          double *mean, double *lo, double *hi);

/* Wilson's score interval of k successes in n trials at z (1.959964 for 95 %); [0, 1] when n = 0. */
void steer_wilson(int64_t k, int64_t n, double z, double *lo, double *hi);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STEER_STATS_H */
