/* tests/test_steer_run.c's own recomputation of musae steer's statistics, independent of eval/steer_stats.c
 * (Wilcoxon by enumerating every sign vector, BH by its definition, the Philox bootstrap with another sort), and its
 * reader of steer.jsonl's lines (through cli.h's slurp, relative to the test folder). */
#ifndef MUSAE_TEST_STEER_RUN_CHECK_H
#define MUSAE_TEST_STEER_RUN_CHECK_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "host/core/philox.h"

/* one-sided exact Wilcoxon p by enumerating the 2^m sign vectors of the nonzero |d| with average ranks */
static inline double wilcoxon_p(const double *d, int n) {
    double a[64], rk[64];
    int m = 0, pos[64];
    for (int i = 0; i < n; i++)
        if (d[i] != 0) pos[m] = d[i] > 0, a[m++] = fabs(d[i]);
    if (!m) return 1.0;
    for (int i = 0; i < m; i++) {
        int less = 0, eq = 0;
        for (int j = 0; j < m; j++) less += a[j] < a[i], eq += a[j] == a[i];
        rk[i] = less + (eq + 1) / 2.0;
    }
    double w = 0;
    for (int i = 0; i < m; i++) w += pos[i] ? rk[i] : 0;
    int64_t ge = 0;
    for (int64_t s = 0; s < ((int64_t)1 << m); s++) {
        double t = 0;
        for (int i = 0; i < m; i++) t += (s >> i & 1) ? rk[i] : 0;
        ge += t >= w - 1e-9;
    }
    return (double)ge / (double)((int64_t)1 << m);
}

static inline void bh(const double *p, int m, double *q) {
    for (int i = 0; i < m; i++) {
        q[i] = 1.0;
        for (int j = 0; j < m; j++) {
            if (p[j] < p[i]) continue;
            int rank = 0; /* p[j]'s 1-based place in ascending order, ties by index */
            for (int k = 0; k < m; k++) rank += p[k] < p[j] || (p[k] == p[j] && k <= j);
            const double v = p[j] * m / rank;
            if (v < q[i]) q[i] = v;
        }
    }
}

static inline void boot(const double *d, int n, int64_t nb, uint64_t seed, uint64_t stream, double *lo, double *hi) {
    double *bm = malloc(sizeof(double) * (size_t)nb);
    for (int64_t b = 0; b < nb; b++) {
        double t = 0;
        for (int i = 0; i < n; i++) {
            const uint32_t w =
                musae_philox(seed, stream, (uint64_t)b * (uint64_t)((n + 3) / 4) + (uint64_t)i / 4).v[i % 4];
            int j = (int)((double)((w >> 8) * (1.0f / 16777216.0f)) * n);
            t += d[j < n ? j : n - 1];
        }
        bm[b] = t / n;
    }
    for (int64_t i = 1; i < nb; i++) /* insertion sort: a different sort than the library's */
        for (int64_t j = i; j > 0 && bm[j - 1] > bm[j]; j--) {
            const double x = bm[j];
            bm[j] = bm[j - 1], bm[j - 1] = x;
        }
    *lo = bm[(int64_t)floor(0.025 * nb)];
    *hi = bm[(int64_t)ceil(0.975 * nb) - 1];
    free(bm);
}

static inline int near(double a, double b) { return fabs(a - b) <= 1e-9 * (1 + fabs(b)); }

/* lines of steer.jsonl */
static inline cJSON **read_lines(const char *rel, int *n) {
    char *s = slurp(rel);
    cJSON **l = NULL;
    *n = 0;
    for (char *p = s, *e; *p; p = e + 1) {
        e = strchr(p, '\n');
        if (!e) break;
        *e = 0;
        l = realloc(l, sizeof *l * (size_t)(*n + 1));
        l[(*n)++] = cJSON_Parse(p);
    }
    free(s);
    return l;
}

static inline double jnum(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}
static inline const char *js(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static inline const cJSON *find(cJSON **l, int n, const char *kind, int f, double a, int p, int s) {
    for (int i = 0; i < n; i++)
        if (!strcmp(js(l[i], "kind"), kind) && jnum(l[i], "prompt") == p && jnum(l[i], "seed") == s &&
            (f < 0 || (jnum(l[i], "feature") == f && jnum(l[i], "alpha") == a)))
            return l[i];
    return NULL;
}

#endif /* MUSAE_TEST_STEER_RUN_CHECK_H */
