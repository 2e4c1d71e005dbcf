/* Statistics of musae steer. See steer_stats.h. */
#include "eval/steer_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/philox.h"

typedef struct {
    double a;
    int64_t i;
} keyed;

static int by_a(const void *x, const void *y) {
    const keyed *p = x, *q = y;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return p->i < q->i ? -1 : p->i > q->i;
}

steer_wilcoxon steer_wilcoxon_test(const double *d, int64_t n) {
    steer_wilcoxon r = {0, 0, 1.0, 0};
    keyed *k = musae_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(keyed));
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (d[i] != 0 && !isnan(d[i])) k[m++] = (keyed){fabs(d[i]), i};
    r.n = m;
    if (m == 0) {
        free(k);
        return r;
    }
    qsort(k, (size_t)m, sizeof *k, by_a);
    /* twice the average rank, an integer: tied |d| at 0-based sorted places a..b share rank (a + b)/2 + 1 */
    int64_t *r2 = musae_xmalloc((size_t)m * sizeof(int64_t));
    double tie = 0; /* Σ (t³ − t) over tie groups */
    int64_t w2 = 0, total2 = 0;
    for (int64_t a = 0; a < m;) {
        int64_t b = a;
        while (b + 1 < m && k[b + 1].a == k[a].a) b++;
        const double t = (double)(b - a + 1);
        tie += t * t * t - t;
        for (int64_t j = a; j <= b; j++) {
            r2[j] = a + b + 2;
            total2 += r2[j];
            if (d[k[j].i] > 0) w2 += r2[j];
        }
        a = b + 1;
    }
    r.w_plus = (double)w2 / 2;
    const double w_minus = (double)(total2 - w2) / 2;
    r.r_rb = (r.w_plus - w_minus) / (r.w_plus + w_minus);
    if (m <= STEER_WILCOXON_EXACT) {
        /* count[s] = sign assignments whose positive ranks sum (in halves) to s; in doubles scaled by 2^-j each step
         * so the counts stay probabilities */
        double *pr = musae_xcalloc((size_t)total2 + 1, sizeof(double));
        pr[0] = 1.0;
        int64_t top = 0;
        for (int64_t j = 0; j < m; j++) {
            for (int64_t s = top; s >= 0; s--)
                if (pr[s] != 0) {
                    pr[s + r2[j]] += 0.5 * pr[s];
                    pr[s] *= 0.5;
                }
            top += r2[j];
        }
        double p = 0;
        for (int64_t s = w2; s <= total2; s++) p += pr[s];
        r.p = p > 1 ? 1 : p;
        free(pr);
    } else {
        const double mu = (double)m * (m + 1) / 4;
        const double var = (double)m * (m + 1) * (2 * m + 1) / 24 - tie / 48;
        const double z = (r.w_plus - mu - 0.5) / sqrt(var);
        r.p = 0.5 * erfc(z / sqrt(2.0));
    }
    free(r2);
    free(k);
    return r;
}

void steer_bh(const double *p, int64_t m, double *q) {
    keyed *k = musae_xmalloc((size_t)(m > 0 ? m : 1) * sizeof(keyed));
    int64_t n = 0;
    for (int64_t i = 0; i < m; i++) {
        q[i] = NAN;
        if (!isnan(p[i])) k[n++] = (keyed){p[i], i};
    }
    qsort(k, (size_t)n, sizeof *k, by_a);
    double run = 1.0;
    for (int64_t j = n - 1; j >= 0; j--) {
        const double v = k[j].a * (double)n / (double)(j + 1);
        if (v < run) run = v;
        q[k[j].i] = run;
    }
    free(k);
}

static int by_double(const void *x, const void *y) {
    const double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

void steer_bootstrap_mean(const double *d, int64_t n, int64_t n_boot, double level, uint64_t seed, uint64_t stream,
                          double *mean, double *lo, double *hi) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += d[i];
    *mean = n ? s / (double)n : NAN;
    if (n == 0 || n_boot < 1) {
        *lo = *hi = *mean;
        return;
    }
    double *bm = musae_xmalloc((size_t)n_boot * sizeof(double));
    const uint64_t per = (uint64_t)(n + 3) / 4;
    for (int64_t b = 0; b < n_boot; b++) {
        double t = 0;
        musae_u32x4 w = {{0, 0, 0, 0}};
        for (int64_t i = 0; i < n; i++) {
            if (i % 4 == 0) w = musae_philox(seed, stream, (uint64_t)b * per + (uint64_t)i / 4);
            int64_t j = (int64_t)((double)musae_u32_to_unit(w.v[i % 4]) * (double)n);
            if (j >= n) j = n - 1;
            t += d[j];
        }
        bm[b] = t / (double)n;
    }
    qsort(bm, (size_t)n_boot, sizeof *bm, by_double);
    int64_t a = (int64_t)floor((1 - level) / 2 * (double)n_boot),
            z = (int64_t)ceil((1 + level) / 2 * (double)n_boot) - 1;
    if (z >= n_boot) z = n_boot - 1;
    if (a < 0) a = 0;
    *lo = bm[a];
    *hi = bm[z];
    free(bm);
}

void steer_wilson(int64_t k, int64_t n, double z, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double p = (double)k / (double)n, z2 = z * z, den = 1 + z2 / (double)n;
    const double c = (p + z2 / (2.0 * (double)n)) / den;
    const double h = z * sqrt(p * (1 - p) / (double)n + z2 / (4.0 * (double)n * (double)n)) / den;
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}
