/* Two-sample statistics (stats.h). */
#include "eval/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"

static int cmp_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Two-sided normal tail 2 P(Z > z) for z >= 0. */
static double two_sided_normal(double z) { return fmin(1.0, erfc(z / sqrt(2.0))); }

/* P(U >= u) under the null for sizes m, n without ties: the coefficients of the Gaussian binomial
 * [m + n choose m]_q = Π_{i=1..m} (1 - q^(n+i)) / (1 - q^i), each count of the C(m+n, m) rankings with
 * U = k. Products and divisions by (1 - q^i) keep integer counts exact in doubles up to 2^53. */
static double exact_sf(int m, int n, double u) {
    if (m > n) {
        const int t = m;
        m = n, n = t;
    }
    const int top = m * n;
    double *c = musae_xcalloc((size_t)top + 1, sizeof(double));
    c[0] = 1;
    for (int i = 1; i <= m; i++) {
        for (int k = top; k >= n + i; k--) c[k] -= c[k - (n + i)]; /* × (1 - q^(n+i)) */
        for (int k = i; k <= top; k++) c[k] += c[k - i];           /* ÷ (1 - q^i) */
    }
    double total = 0, tail = 0;
    for (int k = 0; k <= top; k++) {
        total += c[k];
        if (k >= u) tail += c[k];
    }
    free(c);
    return tail / total;
}

stats_mwu stats_mann_whitney(const double *a, int na, const double *b, int nb) {
    MUSAE_ASSERT(na >= 1 && nb >= 1, "mann_whitney: empty sample (%d, %d)", na, nb);
    const int n = na + nb;
    /* ranks of the pooled sample, ties to their mean rank */
    typedef struct {
        double v;
        int from_a;
    } item;
    item *it = musae_xmalloc(sizeof(item) * (size_t)n);
    for (int i = 0; i < na; i++) it[i] = (item){a[i], 1};
    for (int j = 0; j < nb; j++) it[na + j] = (item){b[j], 0};
    qsort(it, (size_t)n, sizeof(item), cmp_double); /* v is the first member */
    double rank_a = 0, tie_term = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && it[j].v == it[i].v) j++;
        const double t = j - i, mean_rank = (i + 1 + j) / 2.0;
        for (int k = i; k < j; k++)
            if (it[k].from_a) rank_a += mean_rank;
        tie_term += t * t * t - t;
        i = j;
    }
    free(it);
    stats_mwu r = {0};
    r.u = rank_a - na * (na + 1.0) / 2;
    r.auroc = r.u / ((double)na * nb);
    r.cliffs = 2 * r.auroc - 1;
    const double u_big = fmax(r.u, (double)na * nb - r.u);
    if ((na <= 8 || nb <= 8) && tie_term == 0) {
        r.exact = 1;
        r.p = fmin(1.0, 2 * exact_sf(na, nb, u_big));
        return r;
    }
    const double var = (double)na * nb / 12.0 * ((n + 1.0) - tie_term / ((double)n * (n - 1.0)));
    if (!(var > 0)) { /* every value equal: nothing differs */
        r.p = 1;
        return r;
    }
    const double z = (u_big - (double)na * nb / 2 - 0.5) / sqrt(var);
    r.p = z > 0 ? two_sided_normal(z) : 1.0;
    return r;
}

/* #{s_j < x} + #{s_j = x}/2 over the nb sorted values s (two binary searches): x's wins against s. */
static double wins_against(const double *s, int64_t nb, double x) {
    int64_t lo = 0, hi = nb;
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (s[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    const int64_t below = lo;
    hi = nb;
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (s[mid] <= x) lo = mid + 1;
        else hi = mid;
    }
    return (double)below + 0.5 * (double)(lo - below);
}

static double *sorted_copy(const double *b, int64_t nb) {
    double *s = musae_xmalloc(sizeof(double) * (size_t)(nb + 1));
    memcpy(s, b, sizeof(double) * (size_t)nb);
    qsort(s, (size_t)nb, sizeof(double), cmp_double);
    return s;
}

stats_mwu stats_weighted_auroc(const double *a, const double *w, int na, const double *b, int nb) {
    MUSAE_ASSERT(na >= 1 && nb >= 1, "weighted_auroc: empty sample (%d, %d)", na, nb);
    double *s = sorted_copy(b, nb);
    double sw = 0, sw2 = 0, acc = 0;
    for (int i = 0; i < na; i++) {
        acc += w[i] * wins_against(s, nb, a[i]);
        sw += w[i], sw2 += w[i] * w[i];
    }
    free(s);
    stats_mwu r = {0};
    const double n_eff = sw * sw / sw2;
    r.auroc = acc / (sw * nb);
    r.cliffs = 2 * r.auroc - 1;
    r.u = r.auroc * n_eff * nb;
    const double sd = sqrt((n_eff + nb + 1) / (12.0 * n_eff * nb));
    r.p = two_sided_normal(fabs(r.auroc - 0.5) / sd);
    return r;
}

double stats_auroc(const double *a, int64_t na, const double *b, int64_t nb) {
    if (na == 0 || nb == 0) return NAN;
    for (int64_t i = 0; i < na; i++)
        if (isnan(a[i])) return NAN;
    for (int64_t j = 0; j < nb; j++)
        if (isnan(b[j])) return NAN;
    double *s = sorted_copy(b, nb), wins = 0;
    for (int64_t i = 0; i < na; i++) wins += wins_against(s, nb, a[i]);
    free(s);
    return wins / ((double)na * (double)nb);
}

/* log of the hypergeometric probability of k successes in a draw of n from N holding K successes */
static double log_hyper(long k, long N, long K, long n) {
    return lgamma(K + 1.0) - lgamma(k + 1.0) - lgamma(K - k + 1.0) + lgamma(N - K + 1.0) - lgamma(n - k + 1.0) -
           lgamma(N - K - n + k + 1.0) - (lgamma(N + 1.0) - lgamma(n + 1.0) - lgamma(N - n + 1.0));
}

double stats_fisher_exact(long a, long b, long c, long d) {
    MUSAE_ASSERT(a >= 0 && b >= 0 && c >= 0 && d >= 0, "fisher_exact: negative cell");
    const long N = a + b + c + d, K = a + c, n = a + b; /* row 1 is the draw, column 1 the successes */
    const long lo = n - (N - K) > 0 ? n - (N - K) : 0, hi = n < K ? n : K;
    const double l_obs = log_hyper(a, N, K, n);
    double p = 0;
    for (long k = lo; k <= hi; k++) {
        const double l = log_hyper(k, N, K, n);
        if (l <= l_obs + log1p(1e-7)) p += exp(l);
    }
    return fmin(1.0, p);
}

typedef struct {
    double p;
    size_t i;
} ranked;
static int cmp_ranked(const void *x, const void *y) {
    const ranked *a = x, *b = y;
    if (a->p != b->p) return (a->p > b->p) - (a->p < b->p);
    return (a->i > b->i) - (a->i < b->i);
}

void stats_bh(const double *p, double *q, size_t n) {
    if (!n) return;
    ranked *r = musae_xmalloc(sizeof(ranked) * n);
    for (size_t i = 0; i < n; i++) r[i] = (ranked){p[i], i};
    qsort(r, n, sizeof(ranked), cmp_ranked);
    double run = 1.0;
    for (size_t k = n; k-- > 0;) { /* from the largest p down: the running minimum of p n / rank */
        run = fmin(run, r[k].p * (double)n / (double)(k + 1));
        q[r[k].i] = run;
    }
    free(r);
}

double stats_median(double *x, size_t n) {
    MUSAE_ASSERT(n >= 1, "median of nothing");
    qsort(x, n, sizeof(double), cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

typedef struct {
    double x, w;
} weighted;

double stats_weighted_median(double *x, double *w, size_t n) {
    MUSAE_ASSERT(n >= 1, "weighted median of nothing");
    weighted *v = musae_xmalloc(sizeof(weighted) * n);
    double total = 0;
    for (size_t i = 0; i < n; i++) v[i] = (weighted){x[i], w[i]}, total += w[i];
    qsort(v, n, sizeof(weighted), cmp_double); /* x is the first member */
    double acc = 0, m = v[n - 1].x;
    for (size_t i = 0; i < n; i++) {
        acc += v[i].w;
        if (acc >= 0.5 * total) {
            m = v[i].x;
            break;
        }
    }
    for (size_t i = 0; i < n; i++) x[i] = v[i].x, w[i] = v[i].w;
    free(v);
    return m;
}
