/* Two-sample statistics for the dsp labeler (eval/label_dsp.c) and the scorers (eval/llm_score.c,
 * eval/clap_score.c): rank effect sizes with the Mann–Whitney U test, Fisher's exact test on 2x2 tables,
 * Benjamini–Hochberg q-values. Plain double-precision C, no state; every function is checked in
 * tests/test_stats.c against values computed independently (scipy 1.17.1, or by hand).
 *
 * Conventions follow scipy.stats so the two agree: AUROC = P(a > b) + P(a = b) / 2 over all pairs; Cliff's
 * delta = P(a > b) - P(a < b) = 2 AUROC - 1; p-values are two-sided. */
#ifndef MUSAE_STATS_H
#define MUSAE_STATS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double u;       /* Mann–Whitney U of sample a (pairs with a > b, ties counted 1/2) */
    double auroc;   /* u / (na nb) */
    double cliffs;  /* 2 auroc - 1 */
    double p;       /* two-sided */
    int exact;      /* 1: p from the exact null distribution; 0: normal approximation */
} stats_mwu;

/* The Mann–Whitney U test of a[na] against b[nb] (finite values; na, nb >= 1). As scipy.stats.mannwhitneyu
 * (method "auto", use_continuity True): exact when min(na, nb) <= 8 and there are no ties, else the normal
 * approximation with the tie-corrected variance and a 0.5 continuity correction. */
stats_mwu stats_mann_whitney(const double *a, int na, const double *b, int nb);

/* The same comparison with a weight per value of a (weights > 0; b unweighted): the weighted AUROC
 * Σ_i w_i (#{b_j < a_i} + #{b_j = a_i}/2) / (nb Σ w), Cliff's delta 2 auroc - 1, and a two-sided p from the
 * normal approximation with a's effective size n_eff = (Σ w)² / Σ w² in the U variance
 * (n_eff + nb + 1) / (12 n_eff nb) (no tie or continuity correction: it is an approximation either way).
 * u holds auroc * n_eff * nb. Equal weights give the unweighted AUROC. */
stats_mwu stats_weighted_auroc(const double *a, const double *w, int na, const double *b, int nb);

/* The AUROC alone, for the scorers (eval/llm_score.c, eval/clap_score.c): P(a > b) + P(a = b)/2 over all pairs,
 * the Mann–Whitney U / (na nb), in O((na + nb) log nb) and exact (the win count is a sum of halves); NaN when
 * either sample is empty or holds a NaN. */
double stats_auroc(const double *a, int64_t na, const double *b, int64_t nb);

/* Fisher's exact test of the 2x2 table [[a, b], [c, d]]: the two-sided p (the sum of the hypergeometric
 * probabilities of every table with the same margins no more likely than the observed one, with R's
 * relative tolerance 1e-7 on "no more likely"), from log-gamma. */
double stats_fisher_exact(long a, long b, long c, long d);

/* Benjamini–Hochberg: q[i] = min over the p-values ranked at or above p[i] of p_(r) n / r, capped at 1. */
void stats_bh(const double *p, double *q, size_t n);

/* The median of x[n] (n >= 1; the mean of the middle two when n is even); x is reordered. */
double stats_median(double *x, size_t n);
/* The weighted median: the smallest x whose cumulative weight reaches half the total (x and w reordered
 * together). */
double stats_weighted_median(double *x, double *w, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_STATS_H */
