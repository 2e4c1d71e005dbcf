/* eval/stats.h against values computed elsewhere: scipy 1.17.1 (stats.mannwhitneyu with its defaults,
 * stats.fisher_exact, stats.false_discovery_control, stats.norm.sf), the script being
 *
 *   from scipy import stats
 *   stats.mannwhitneyu(a, b)            # -> statistic (U of a), pvalue, for the samples below
 *   stats.fisher_exact(table)           # -> odds ratio, pvalue
 *   stats.false_discovery_control(p)    # Benjamini-Hochberg
 *
 * and cases derived by hand (noted at each). Tolerances: exact distributions (the Mann–Whitney exact null,
 * the hypergeometric sums) agree to 1e-12 relative (both sum the same terms in double); the normal tails to
 * 1e-9 relative (erfc here, scipy's ndtr there: both near double precision at these z). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/stats.h"
#include "test.h"

static int rel_close(double got, double want, double tol) { return fabs(got - want) <= tol * fabs(want); }

static void check_mwu(const char *what, const double *a, int na, const double *b, int nb, double u, double p,
                      int exact, double tol) {
    const stats_mwu r = stats_mann_whitney(a, na, b, nb);
    CHECK(r.u == u, "%s: U %.17g, scipy %.17g", what, r.u, u);
    CHECK(fabs(r.auroc - u / ((double)na * nb)) < 1e-15 && fabs(r.cliffs - (2 * r.auroc - 1)) < 1e-15,
          "%s: auroc %g cliffs %g", what, r.auroc, r.cliffs);
    CHECK(rel_close(r.p, p, tol), "%s: p %.17g, scipy %.17g", what, r.p, p);
    CHECK(r.exact == exact, "%s: exact %d, scipy's method %d", what, r.exact, exact);
}

static void test_mann_whitney(void) {
    /* ties, both sizes > 8: normal approximation with tie correction and continuity */
    const double ta[] = {1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10}, tb[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    check_mwu("ties", ta, 11, tb, 12, 34.5, 0.05573219287495945, 0, 1e-9);
    /* no ties, 5 vs 7: exact */
    const double ea[] = {1.5, 2.5, 7, 8.2, 9}, eb[] = {3, 4, 5.5, 6, 10, 11, 12};
    check_mwu("exact", ea, 5, eb, 7, 12, 0.4318181818181819, 1, 1e-12);
    /* 20 above 20: normal approximation */
    double sa[20], sb[20];
    for (int i = 0; i < 20; i++) sa[i] = 20 + i, sb[i] = i;
    check_mwu("separated", sa, 20, sb, 20, 400, 6.795615128173358e-08, 0, 1e-9);
    /* by hand: 3 above 9, no ties: U = 27 is the one most extreme of C(12, 3) = 220 rankings, p = 2 / 220 */
    const double ha[] = {10, 11, 12}, hb[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    check_mwu("3 above 9", ha, 3, hb, 9, 27, 2.0 / 220, 1, 1e-12);
    check_mwu("3 above 9 (scipy)", ha, 3, hb, 9, 27, 0.00909090909090909, 1, 1e-12);
    /* by hand: one value between two: U = 1 of {0, 1, 2}, P(U >= 1) = 2/3, two-sided capped at 1 */
    const double ma[] = {2}, mb[] = {1, 3};
    check_mwu("1 between 2", ma, 1, mb, 2, 1, 1.0, 1, 1e-12);
    /* every value equal: AUROC 1/2 and p 1 (the variance is 0) */
    const double za[] = {4, 4, 4, 4, 4, 4, 4, 4, 4}, zb[] = {4, 4, 4, 4, 4, 4, 4, 4, 4};
    const stats_mwu z = stats_mann_whitney(za, 9, zb, 9);
    CHECK(z.auroc == 0.5 && z.p == 1, "all equal: auroc %g p %g", z.auroc, z.p);
}

static void test_weighted(void) {
    /* equal weights: the unweighted AUROC (ties counted 1/2) */
    const double ta[] = {1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10}, tb[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    double w[11];
    for (int i = 0; i < 11; i++) w[i] = 2.5;
    const stats_mwu r = stats_weighted_auroc(ta, w, 11, tb, 12);
    CHECK(fabs(r.auroc - 34.5 / 132) < 1e-15, "equal weights: auroc %.17g, want %.17g", r.auroc, 34.5 / 132);
    /* by hand: a = {2 (weight 3), 0 (weight 1)}, b = {1}: AUROC (3 + 0) / 4 = 0.75, n_eff = 16 / 10 = 1.6,
     * sd = sqrt(3.6 / 19.2), p = 2 norm.sf(0.25 / sd) = 0.5637028616507731 (scipy) */
    const double a[] = {2, 0}, wa[] = {3, 1}, b[] = {1};
    const stats_mwu h = stats_weighted_auroc(a, wa, 2, b, 1);
    CHECK(h.auroc == 0.75 && h.cliffs == 0.5, "hand case: auroc %g cliffs %g", h.auroc, h.cliffs);
    CHECK(rel_close(h.p, 0.5637028616507731, 1e-9), "hand case: p %.17g", h.p);
}

/* stats_auroc: scipy's U / (na nb) on the ties case, both ways round; the plain count over all pairs on samples
 * with many ties (equal to the bit: both are exact sums of halves); NaN for an empty sample or a NaN value. */
static void test_auroc(void) {
    const double ta[] = {1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10}, tb[] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    CHECK(stats_auroc(ta, 11, tb, 12) == 34.5 / 132, "ties: %.17g", stats_auroc(ta, 11, tb, 12));
    CHECK(stats_auroc(tb, 12, ta, 11) == (132 - 34.5) / 132, "ties, reversed: %.17g", stats_auroc(tb, 12, ta, 11));
    enum { NA = 37, NB = 53 };
    double a[NA], b[NB];
    for (int i = 0; i < NA; i++) a[i] = (double)((i * 7919) % 13) * 0.25;
    for (int j = 0; j < NB; j++) b[j] = (double)((j * 104729) % 11) * 0.25 - 0.5;
    double wins = 0;
    for (int i = 0; i < NA; i++)
        for (int j = 0; j < NB; j++) wins += a[i] > b[j] ? 1.0 : a[i] == b[j] ? 0.5 : 0.0;
    CHECK(stats_auroc(a, NA, b, NB) == wins / ((double)NA * NB), "pair count: %.17g, want %.17g",
          stats_auroc(a, NA, b, NB), wins / ((double)NA * NB));
    CHECK(isnan(stats_auroc(a, 0, b, NB)) && isnan(stats_auroc(a, NA, b, 0)), "an empty sample is not NaN");
    b[5] = NAN;
    CHECK(isnan(stats_auroc(a, NA, b, NB)) && isnan(stats_auroc(b, NB, a, NA)), "a NaN value is not NaN");
}

static void test_fisher(void) {
    static const struct {
        long t[4];
        double p;
    } c[] = {
        {{8, 2, 1, 5}, 0.034965034965034975},   {{3, 17, 12, 8}, 0.007911693673651405},
        {{20, 0, 2, 18}, 3.351553382989278e-09}, {{5, 5, 5, 5}, 1.0},
        {{1, 9, 11, 3}, 0.0027594561852200836},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const double p = stats_fisher_exact(c[i].t[0], c[i].t[1], c[i].t[2], c[i].t[3]);
        CHECK(rel_close(p, c[i].p, 1e-12), "fisher [[%ld,%ld],[%ld,%ld]]: p %.17g, scipy %.17g", c[i].t[0], c[i].t[1],
              c[i].t[2], c[i].t[3], p, c[i].p);
    }
    /* by hand: [[2, 0], [0, 2]]: the tables with these margins are a = 0, 1, 2 with probabilities 1/6, 4/6, 1/6;
     * the two as likely as the observed one sum to 1/3 */
    CHECK(rel_close(stats_fisher_exact(2, 0, 0, 2), 1.0 / 3, 1e-12), "fisher 2x2 identity: %.17g",
          stats_fisher_exact(2, 0, 0, 2));
}

static void test_bh(void) {
    const double p[] = {0.01, 0.04, 0.03, 0.005, 0.5, 0.04}, want[] = {0.03, 0.048, 0.048, 0.03, 0.5, 0.048};
    double q[6];
    stats_bh(p, q, 6);
    for (int i = 0; i < 6; i++) CHECK(rel_close(q[i], want[i], 1e-12), "bh q[%d] %.17g, scipy %.17g", i, q[i], want[i]);
    /* by hand: one test keeps its p; large p's are capped at 1 */
    const double one = 0.2, big[] = {0.9, 0.95};
    double q1, qb[2];
    stats_bh(&one, &q1, 1);
    stats_bh(big, qb, 2);
    CHECK(q1 == 0.2 && qb[0] == 0.95 && qb[1] == 0.95, "bh small cases: %g, %g %g", q1, qb[0], qb[1]);
}

static void test_medians(void) {
    double odd[] = {5, 1, 3}, even[] = {4, 1, 3, 2};
    CHECK(stats_median(odd, 3) == 3 && stats_median(even, 4) == 2.5, "medians");
    /* by hand: weights 1, 1, 5 on 1, 2, 3: half the total (3.5) is first reached at 3 */
    double x[] = {2, 3, 1}, w[] = {1, 5, 1};
    CHECK(stats_weighted_median(x, w, 3) == 3, "weighted median");
    double x2[] = {1, 2, 3, 4}, w2[] = {1, 1, 1, 1};
    CHECK(stats_weighted_median(x2, w2, 4) == 2, "weighted median, even: the lower middle");
}

int main(void) {
    test_mann_whitney();
    test_weighted();
    test_auroc();
    test_fisher();
    test_bh();
    test_medians();
    TEST_END();
}
