/* eval/steer_stats against values computed another way:
 *   - Wilcoxon's exact one-sided p (with zeros and ties) equals the enumeration of all 2^n sign vectors (n = 14);
 *     the rank-biserial correlation equals (W+ − W−)/(W+ + W−); no nonzero difference gives p = 1;
 *   - past STEER_WILCOXON_EXACT pairs the normal approximation is within 2e-3 of the exact tail that the DP gives for
 *     the same ranks just below the limit (the approximation's known accuracy at n ~ 400);
 *   - Benjamini–Hochberg equals R's p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.2), "BH") = 0.025 0.05 0.05 0.025 0.2,
 *     and a NaN p-value is left out;
 *   - Wilson's interval equals the score formula evaluated in Python (z = 1.959964): (0.107791, 0.603222) for 3 of
 *     10, and [0, 0.277533] for 0 of 10;
 *   - the bootstrap CI of a constant is that constant, and of 0/1 data lies inside [0, 1] around the mean. */
#include <math.h>
#include <stdlib.h>

#include "eval/steer_stats.h"
#include "host/core/philox.h"
#include "test.h"

static double brute_p(const double *d, int n) {
    double a[32], rk[32], w = 0;
    int m = 0, pos[32];
    for (int i = 0; i < n; i++)
        if (d[i] != 0) pos[m] = d[i] > 0, a[m++] = fabs(d[i]);
    for (int i = 0; i < m; i++) {
        int less = 0, eq = 0;
        for (int j = 0; j < m; j++) less += a[j] < a[i], eq += a[j] == a[i];
        rk[i] = less + (eq + 1) / 2.0;
        w += pos[i] ? rk[i] : 0;
    }
    long ge = 0;
    for (long s = 0; s < (1L << m); s++) {
        double t = 0;
        for (int i = 0; i < m; i++) t += (s >> i & 1) ? rk[i] : 0;
        ge += t >= w - 1e-9;
    }
    return (double)ge / (double)(1L << m);
}

int main(void) {
    /* ties (|d| = 1 three times, 2.5 twice) and a zero */
    const double d[15] = {1, -1, 1, 2.5, -2.5, 0, 3, 4, -0.5, 6, 7, 8, -9, 10, 11};
    const steer_wilcoxon w = steer_wilcoxon_test(d, 15);
    const double bp = brute_p(d, 15);
    CHECK(w.n == 14, "nonzero pairs %lld", (long long)w.n);
    CHECK(fabs(w.p - bp) < 1e-12, "exact p %.15g, enumeration %.15g", w.p, bp);
    CHECK(fabs(w.r_rb - (2 * w.w_plus - 105) / 105) < 1e-12, "rank-biserial %.15g with W+ %g", w.r_rb, w.w_plus);
    const double z[3] = {0, 0, 0};
    CHECK(steer_wilcoxon_test(z, 3).p == 1 && steer_wilcoxon_test(z, 3).n == 0, "all-zero differences");

    /* the normal branch against the exact DP for the same data one pair short of the limit */
    enum { N = STEER_WILCOXON_EXACT + 1 };
    double *big = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) {
        const uint32_t r = musae_philox(3, 0, (uint64_t)i).v[0];
        big[i] = ((r & 1) ? 1.0 : -0.8) * (1 + (r >> 1) % 50); /* a small drift, many ties */
    }
    const steer_wilcoxon approx = steer_wilcoxon_test(big, N), exact = steer_wilcoxon_test(big + 1, N - 1);
    CHECK(approx.n == N && exact.n == N - 1, "branch sizes");
    CHECK(fabs(approx.p - exact.p) < 2e-3 + 0.05 * exact.p, "normal p %.6g vs exact p %.6g of one pair fewer", approx.p,
          exact.p);
    free(big);

    const double p[5] = {0.01, 0.04, 0.03, 0.005, 0.2}, want[5] = {0.025, 0.05, 0.05, 0.025, 0.2};
    double q[5];
    steer_bh(p, 5, q);
    for (int i = 0; i < 5; i++) CHECK(fabs(q[i] - want[i]) < 1e-12, "BH q[%d] %.15g, R gives %g", i, q[i], want[i]);
    const double pn[3] = {0.01, NAN, 0.02};
    steer_bh(pn, 3, q);
    CHECK(isnan(q[1]) && fabs(q[0] - 0.02) < 1e-12 && fabs(q[2] - 0.02) < 1e-12, "BH with a NaN: %g %g %g", q[0], q[1],
          q[2]);

    double lo, hi;
    steer_wilson(3, 10, 1.959963984540054, &lo, &hi);
    CHECK(fabs(lo - 0.1077913) < 1e-6 && fabs(hi - 0.603222) < 1e-6, "Wilson 3/10: [%.6f, %.6f]", lo, hi);
    steer_wilson(0, 10, 1.959963984540054, &lo, &hi);
    CHECK(lo == 0 && fabs(hi - 0.2775328) < 1e-6, "Wilson 0/10: [%.6f, %.6f]", lo, hi);

    double c[7] = {2, 2, 2, 2, 2, 2, 2}, m;
    steer_bootstrap_mean(c, 7, 500, 0.95, 1, 2, &m, &lo, &hi);
    CHECK(m == 2 && lo == 2 && hi == 2, "constant: %g [%g, %g]", m, lo, hi);
    double b01[20];
    for (int i = 0; i < 20; i++) b01[i] = i % 4 == 0;
    steer_bootstrap_mean(b01, 20, 2000, 0.95, 1, 2, &m, &lo, &hi);
    CHECK(m == 0.25 && lo >= 0 && lo < 0.25 && hi > 0.25 && hi <= 1, "0/1 data: %g [%g, %g]", m, lo, hi);
    TEST_END();
}
