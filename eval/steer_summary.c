/* musae steer: summary.json from steer.jsonl alone (docs/STEER.md "Statistics"), so a continued run and a test
 * recompute it from the same lines. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/steer_run.h"
#include "eval/steer_stats.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/descriptors_io.h"

typedef struct {
    int kind; /* 0 baseline, 1 passthrough, 2 steered, 3 random, 4 other */
    int fi;   /* index of the feature in the study (-1) */
    int ai;   /* index of α (-1) */
    int64_t prompt, seed;
    double act_target, code_diff;
    int na;              /* entries of act (and of the CLAP arrays) */
    double *act;         /* [na], na >= the study's features (checked) */
    double desc[MUSAE_DESC_N_F32]; /* NaN where null / absent */
    int has_desc;
    int has_clap;
    double *clap_label;  /* [nf] NaN where null */
    double *clap_ex;     /* [nf] */
    double clap_lt, clap_et, clap_dist;
} rec;

/* the CLAP measures compared across clips: the label alignment and the exemplar alignment */
enum { CM_LABEL = 0, CM_EX, CM_N };
static const char *const k_cm[CM_N] = {"clap_label", "clap_exemplars"};
static double cm_target(const rec *x, int m) { return m == CM_LABEL ? x->clap_lt : x->clap_et; }
static double cm_of(const rec *x, int m, int fi) {
    if (!x->has_clap) return NAN;
    return m == CM_LABEL ? x->clap_label[fi] : x->clap_ex[fi];
}

static const char *const k_kinds[] = {"baseline", "passthrough", "steered", "random", "other"};

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* o[k] as a non-negative integer below 2^63 (so the conversion is defined); refuses anything else. */
static int64_t count_field(const cJSON *o, const char *k, const char *path, int64_t line) {
    const double v = num(o, k);
    if (!(v >= 0 && v < 9223372036854775808.0 && v == floor(v)))
        musae_fail("%s: line %lld: %s: not a non-negative integer", path, (long long)line, k);
    return (int64_t)v;
}

/* z-scored descriptor distance of a clip to its baseline: sqrt(mean over usable fields of ((x − b)/σ)²), σ the
 * population standard deviation of the field over the baseline clips; usable: σ finite and > 0, x and b finite. */
static double desc_dist(const rec *x, const rec *b, const double *sd) {
    if (!x->has_desc || !b->has_desc) return NAN;
    double s = 0;
    int n = 0;
    for (int i = 0; i < MUSAE_DESC_N_F32; i++)
        if (isfinite(sd[i]) && sd[i] > 0 && isfinite(x->desc[i]) && isfinite(b->desc[i])) {
            const double z = (x->desc[i] - b->desc[i]) / sd[i];
            s += z * z;
            n++;
        }
    return n ? sqrt(s / n) : NAN;
}

static const rec *find_base(const rec *r, int64_t n, int64_t prompt, int64_t seed) {
    for (int64_t e = 0; e < n; e++)
        if (r[e].kind == 0 && r[e].prompt == prompt && r[e].seed == seed) return &r[e];
    return NULL;
}

static cJSON *ci_pair(double lo, double hi) {
    cJSON *a = cJSON_CreateArray();
    cJSON_AddItemToArray(a, cJSON_CreateNumber(lo));
    cJSON_AddItemToArray(a, cJSON_CreateNumber(hi));
    return a;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static double arr_num(const cJSON *a, int i) {
    const cJSON *v = cJSON_GetArrayItem(a, i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* One comparison of paired differences d[0..m): the mean gain with its bootstrap CI and the one-sided Wilcoxon test,
 * as parent[key]; the test's p for BH. */
static steer_wilcoxon add_test(cJSON *parent, const char *key, const double *d, int64_t m, const steer_run_opts *o,
                               uint64_t stream, double *mean_out) {
    const steer_wilcoxon w = steer_wilcoxon_test(d, m);
    double mean, lo, hi;
    steer_bootstrap_mean(d, m, o->n_boot, 0.95, o->random_seed, stream, &mean, &lo, &hi);
    cJSON *v = cJSON_AddObjectToObject(parent, key);
    add_num(v, "gain_mean", mean);
    cJSON_AddItemToObject(v, "gain_ci95", ci_pair(lo, hi));
    cJSON_AddNumberToObject(v, "n_nonzero", (double)w.n);
    cJSON_AddNumberToObject(v, "w_plus", w.w_plus);
    cJSON_AddNumberToObject(v, "rank_biserial", w.r_rb);
    cJSON_AddNumberToObject(v, "p", w.p);
    if (mean_out) *mean_out = mean;
    return w;
}

/* The random draws of the steered clip x (same feature, α, prompt, seed): their count, and the mean over them of
 * act_target and of each CLAP measure's target (NaN when a draw lacks it). */
static int random_mean(const rec *r, int64_t n, const rec *x, double *act, double *cm) {
    int c = 0;
    *act = 0;
    for (int m = 0; m < CM_N; m++) cm[m] = 0;
    for (int64_t g = 0; g < n; g++)
        if (r[g].kind == 3 && r[g].fi == x->fi && r[g].ai == x->ai && r[g].prompt == x->prompt && r[g].seed == x->seed) {
            *act += r[g].act_target;
            for (int m = 0; m < CM_N; m++) cm[m] += r[g].has_clap ? cm_target(&r[g], m) : NAN;
            c++;
        }
    if (c) {
        *act /= c;
        for (int m = 0; m < CM_N; m++) cm[m] /= c;
    }
    return c;
}

/* study.json's CLAP keys (clap identity, labels file, label texts), copied into summary.json; NULL without CLAP */
static cJSON *study_clap(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/study.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) musae_fail("%s: cannot be read: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    const ssize_t got = getline(&line, &cap, f);
    fclose(f);
    cJSON *j = got > 0 ? cJSON_Parse(line) : NULL;
    free(line);
    if (!j) musae_fail("%s: not JSON", path);
    cJSON *out = NULL;
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "clap"))) {
        out = cJSON_CreateObject();
        static const char *const keep[] = {"clap", "labels", "label"};
        for (int i = 0; i < 3; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, keep[i]);
            cJSON_AddItemToObject(out, i == 0 ? "model" : keep[i], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        }
    }
    cJSON_Delete(j);
    return out;
}

void steer_summarize(const steer_run_opts *o, const char *sae_sha256, int layer) {
    char path[4200];
    snprintf(path, sizeof path, "%s/steer.jsonl", o->out_dir);
    FILE *f = fopen(path, "rb");
    if (!f) musae_fail("%s: cannot be read: %s", path, strerror(errno));
    rec *r = NULL;
    int64_t n = 0;
    int64_t feat[STEER_RUN_MAX];
    int nf = 0, any_clap = 0;
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (!j) musae_fail("%s: line %lld is not JSON", path, (long long)n + 1);
        r = musae_xrealloc(r, (size_t)(n + 1) * sizeof *r);
        rec *x = &r[n++];
        memset(x, 0, sizeof *x);
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kind");
        x->kind = -1;
        for (int i = 0; i < 5; i++)
            if (cJSON_IsString(k) && !strcmp(k->valuestring, k_kinds[i])) x->kind = i;
        if (x->kind < 0) musae_fail("%s: line %lld has no known kind", path, (long long)n);
        x->fi = x->ai = -1;
        const cJSON *fj = cJSON_GetObjectItemCaseSensitive(j, "feature");
        const double fv = cJSON_IsNumber(fj) ? (double)count_field(j, "feature", path, n) : NAN;
        if (!isnan(fv)) {
            for (int i = 0; i < nf; i++)
                if (feat[i] == (int64_t)fv) x->fi = i;
            if (x->fi < 0) {
                if (nf == STEER_RUN_MAX)
                    musae_fail("%s: line %lld: feature: more than %d distinct features", path, (long long)n,
                               STEER_RUN_MAX);
                feat[x->fi = nf++] = (int64_t)fv;
            }
            const double a = num(j, "alpha");
            for (int i = 0; i < o->n_alpha; i++)
                if (o->alpha[i] == a) x->ai = i;
        }
        x->prompt = count_field(j, "prompt", path, n);
        x->seed = count_field(j, "seed", path, n);
        x->act_target = num(j, "act_target");
        x->code_diff = num(j, "code_diff");
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(j, "act");
        const int na = cJSON_GetArraySize(act);
        x->na = na;
        x->act = musae_xmalloc((size_t)(na > 0 ? na : 1) * sizeof(double));
        for (int i = 0; i < na; i++) x->act[i] = cJSON_GetArrayItem(act, i)->valuedouble;
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "desc");
        x->has_desc = cJSON_IsObject(d);
        for (int i = 0; i < MUSAE_DESC_N_F32; i++)
            x->desc[i] = x->has_desc ? num(d, musae_desc_f32_names[i]) : NAN;
        const cJSON *cj = cJSON_GetObjectItemCaseSensitive(j, "clap");
        x->has_clap = cJSON_IsObject(cj);
        any_clap |= x->has_clap;
        x->clap_label = musae_xmalloc((size_t)(na > 0 ? na : 1) * sizeof(double));
        x->clap_ex = musae_xmalloc((size_t)(na > 0 ? na : 1) * sizeof(double));
        for (int i = 0; i < na; i++) {
            x->clap_label[i] = arr_num(cJSON_GetObjectItemCaseSensitive(cj, "label"), i);
            x->clap_ex[i] = arr_num(cJSON_GetObjectItemCaseSensitive(cj, "exemplars"), i);
        }
        x->clap_lt = x->has_clap ? num(cj, "label_target") : NAN;
        x->clap_et = x->has_clap ? num(cj, "exemplars_target") : NAN;
        x->clap_dist = x->has_clap ? num(cj, "dist") : NAN;
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
    /* every line's per-feature arrays (act, clap label/exemplars) are indexed by the study's features */
    for (int64_t e = 0; e < n; e++)
        if (r[e].na < nf)
            musae_fail("%s: line %lld: act: %d entries, but the file names %d studied features", path,
                       (long long)e + 1, r[e].na, nf);

    /* the baselines: σ of every descriptor over them, and the baseline of each (prompt, seed) */
    double sd[MUSAE_DESC_N_F32];
    for (int i = 0; i < MUSAE_DESC_N_F32; i++) {
        double s = 0, s2 = 0;
        int64_t c = 0;
        for (int64_t e = 0; e < n; e++)
            if (r[e].kind == 0 && r[e].has_desc && isfinite(r[e].desc[i])) s += r[e].desc[i], c++;
        const double mu = c ? s / (double)c : NAN;
        for (int64_t e = 0; e < n; e++)
            if (r[e].kind == 0 && r[e].has_desc && isfinite(r[e].desc[i]))
                s2 += (r[e].desc[i] - mu) * (r[e].desc[i] - mu);
        sd[i] = c ? sqrt(s2 / (double)c) : NAN;
    }

    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "format", "musae-steer-summary");
    cJSON_AddStringToObject(out, "model", o->model_dir);
    cJSON_AddStringToObject(out, "sae", o->sae_dir);
    cJSON_AddStringToObject(out, "sae_sha256", sae_sha256);
    cJSON_AddStringToObject(out, "features_file", o->features);
    cJSON_AddNumberToObject(out, "layer", layer);
    cJSON_AddNumberToObject(out, "fdr", o->fdr);
    cJSON_AddNumberToObject(out, "n_boot", (double)o->n_boot);
    cJSON_AddNumberToObject(out, "bootstrap_seed", (double)o->random_seed);
    cJSON_AddNumberToObject(out, "random_draws", (double)o->random_draws);
    cJSON_AddNumberToObject(out, "clips", (double)n);
    cJSON *sc = study_clap(o->out_dir);
    if (sc) cJSON_AddItemToObject(out, "clap", sc);
    else cJSON_AddNullToObject(out, "clap");
    cJSON_AddStringToObject(out, "curve_distortion", any_clap ? "clap_dist" : "desc_dist");
    cJSON *per_alpha = cJSON_AddArrayToObject(out, "per_alpha");
    cJSON *curve = cJSON_AddArrayToObject(out, "curve");

    double *d_base = musae_xmalloc((size_t)(n + 1) * sizeof(double)),
           *d_rand = musae_xmalloc((size_t)(n + 1) * sizeof(double));
    double *d_other = musae_xmalloc((size_t)(n + 1) * sizeof(double));
    double *cb[CM_N], *cr[CM_N], *pc[CM_N][2], *qc[CM_N][2];
    for (int m = 0; m < CM_N; m++) {
        cb[m] = musae_xmalloc((size_t)(n + 1) * sizeof(double));
        cr[m] = musae_xmalloc((size_t)(n + 1) * sizeof(double));
        for (int c = 0; c < 2; c++) {
            pc[m][c] = musae_xmalloc((size_t)(nf + 1) * sizeof(double));
            qc[m][c] = musae_xmalloc((size_t)(nf + 1) * sizeof(double));
        }
    }
    double *dist = musae_xmalloc((size_t)(n + 1) * sizeof(double));
    double *p_base = musae_xmalloc((size_t)(nf + 1) * sizeof(double)),
           *p_rand = musae_xmalloc((size_t)(nf + 1) * sizeof(double));
    double *q_base = musae_xmalloc((size_t)(nf + 1) * sizeof(double)),
           *q_rand = musae_xmalloc((size_t)(nf + 1) * sizeof(double));
    for (int ai = 0; ai < o->n_alpha; ai++) {
        cJSON *pa = cJSON_CreateObject();
        cJSON_AddItemToArray(per_alpha, pa);
        cJSON_AddNumberToObject(pa, "alpha", o->alpha[ai]);
        cJSON *fl = cJSON_AddArrayToObject(pa, "features");
        double mean_b[STEER_RUN_MAX];
        /* the tests, then BH across the features of this α */
        for (int fi = 0; fi < nf; fi++) {
            int64_t m = 0, mo = 0, dn[MUSAE_DESC_N_F32] = {0}, mc[CM_N] = {0}, mr[CM_N] = {0}, md = 0;
            double ds[MUSAE_DESC_N_F32] = {0};
            int draws = 0;
            for (int64_t e = 0; e < n; e++) {
                const rec *x = &r[e];
                if (x->kind != 2 || x->fi != fi || x->ai != ai) continue;
                const rec *b = find_base(r, n, x->prompt, x->seed), *ot = NULL;
                for (int64_t g = 0; g < n; g++)
                    if (r[g].kind == 4 && r[g].fi == fi && r[g].ai == ai && r[g].prompt == x->prompt &&
                        r[g].seed == x->seed)
                        ot = &r[g];
                double ra, rc[CM_N];
                draws = random_mean(r, n, x, &ra, rc);
                if (!b || !draws)
                    musae_fail("%s: clip of feature %lld, prompt %lld, seed %lld lacks its baseline or random "
                               "control",
                               path, (long long)feat[fi], (long long)x->prompt, (long long)x->seed);
                d_base[m] = x->act_target - b->act[fi];
                if (x->has_desc && b->has_desc)
                    for (int i = 0; i < MUSAE_DESC_N_F32; i++)
                        if (isfinite(x->desc[i]) && isfinite(b->desc[i])) ds[i] += x->desc[i] - b->desc[i], dn[i]++;
                d_rand[m] = x->act_target - ra;
                m++;
                if (ot) d_other[mo++] = x->act_target - ot->act_target;
                /* the CLAP gains, over the pairs where the measure exists (a feature without a label has none) */
                for (int c = 0; c < CM_N; c++) {
                    const double t = x->has_clap ? cm_target(x, c) : NAN, bb = cm_of(b, c, fi);
                    if (isfinite(t) && isfinite(bb)) cb[c][mc[c]++] = t - bb;
                    if (isfinite(t) && isfinite(rc[c])) cr[c][mr[c]++] = t - rc[c];
                }
                if (isfinite(x->clap_dist)) dist[md++] = x->clap_dist;
            }
            const steer_wilcoxon wb = steer_wilcoxon_test(d_base, m), wr = steer_wilcoxon_test(d_rand, m);
            p_base[fi] = wb.p, p_rand[fi] = wr.p;
            cJSON *fj = cJSON_CreateObject();
            cJSON_AddItemToArray(fl, fj);
            cJSON_AddNumberToObject(fj, "feature", (double)feat[fi]);
            cJSON_AddNumberToObject(fj, "n_pairs", (double)m);
            cJSON_AddNumberToObject(fj, "random_draws", draws);
            const uint64_t stream = ((uint64_t)ai << 40) | ((uint64_t)feat[fi] << 2);
            /* what the steering does to the music: each descriptor's mean change from the twin baseline */
            cJSON *dd = cJSON_AddObjectToObject(fj, "desc_delta_mean");
            for (int i = 0; i < MUSAE_DESC_N_F32; i++)
                add_num(dd, musae_desc_f32_names[i], dn[i] ? ds[i] / (double)dn[i] : NAN);
            add_test(fj, "vs_baseline", d_base, m, o, stream, &mean_b[fi]);
            add_test(fj, "vs_random", d_rand, m, o, stream | 1, NULL);
            if (mo) {
                double mean, lo, hi;
                steer_bootstrap_mean(d_other, mo, o->n_boot, 0.95, o->random_seed, stream | 2, &mean, &lo, &hi);
                cJSON *vo = cJSON_AddObjectToObject(fj, "vs_other");
                add_num(vo, "gain_mean", mean);
                cJSON_AddItemToObject(vo, "gain_ci95", ci_pair(lo, hi));
            }
            /* CLAP: alignment gains vs the baseline and vs the mean of the random draws, and the distortion */
            for (int c = 0; c < CM_N; c++) {
                pc[c][0][fi] = pc[c][1][fi] = NAN;
                if (!any_clap || (!mc[c] && !mr[c])) {
                    cJSON_AddNullToObject(fj, k_cm[c]);
                    continue;
                }
                cJSON *cm = cJSON_AddObjectToObject(fj, k_cm[c]);
                cJSON_AddNumberToObject(cm, "n_pairs", (double)mc[c]);
                const uint64_t cs = stream | ((uint64_t)(c + 1) << 56);
                pc[c][0][fi] = add_test(cm, "vs_baseline", cb[c], mc[c], o, cs, NULL).p;
                pc[c][1][fi] = add_test(cm, "vs_random", cr[c], mr[c], o, cs | 1, NULL).p;
            }
            if (md) {
                double mean, lo, hi;
                steer_bootstrap_mean(dist, md, o->n_boot, 0.95, o->random_seed,
                                     stream | ((uint64_t)(CM_N + 1) << 56), &mean, &lo, &hi);
                cJSON *cd = cJSON_AddObjectToObject(fj, "clap_dist");
                add_num(cd, "mean", mean);
                cJSON_AddItemToObject(cd, "ci95", ci_pair(lo, hi));
            } else {
                cJSON_AddNullToObject(fj, "clap_dist");
            }
        }
        steer_bh(p_base, nf, q_base);
        steer_bh(p_rand, nf, q_rand);
        for (int c = 0; c < CM_N; c++) steer_bh(pc[c][0], nf, qc[c][0]), steer_bh(pc[c][1], nf, qc[c][1]);
        int64_t k = 0, rising = 0, kc[CM_N] = {0}, nc[CM_N] = {0};
        for (int fi = 0; fi < nf; fi++) {
            cJSON *fj = cJSON_GetArrayItem(fl, fi);
            add_num(cJSON_GetObjectItem(fj, "vs_baseline"), "q", q_base[fi]);
            add_num(cJSON_GetObjectItem(fj, "vs_random"), "q", q_rand[fi]);
            const int st = q_base[fi] <= o->fdr && q_rand[fi] <= o->fdr;
            cJSON_AddBoolToObject(fj, "steerable", st);
            k += st;
            rising += mean_b[fi] > 0;
            for (int c = 0; c < CM_N; c++) {
                cJSON *cm = cJSON_GetObjectItem(fj, k_cm[c]);
                if (!cJSON_IsObject(cm)) continue;
                add_num(cJSON_GetObjectItem(cm, "vs_baseline"), "q", qc[c][0][fi]);
                add_num(cJSON_GetObjectItem(cm, "vs_random"), "q", qc[c][1][fi]);
                const int s2 = qc[c][0][fi] <= o->fdr && qc[c][1][fi] <= o->fdr;
                cJSON_AddBoolToObject(cm, "steerable", s2);
                kc[c] += s2, nc[c]++;
            }
        }
        double lo, hi;
        steer_wilson(k, nf, 1.959963984540054, &lo, &hi);
        cJSON_AddNumberToObject(pa, "n_features", nf);
        cJSON_AddNumberToObject(pa, "n_steerable", (double)k);
        add_num(pa, "steerable_fraction", nf ? (double)k / nf : NAN);
        cJSON_AddItemToObject(pa, "steerable_ci95_wilson", ci_pair(lo, hi));
        add_num(pa, "rising_fraction", nf ? (double)rising / nf : NAN);
        /* the same share with the CLAP alignment as the measure, over the features that have it */
        for (int c = 0; c < CM_N; c++) {
            if (!any_clap) {
                cJSON_AddNullToObject(pa, k_cm[c]);
                continue;
            }
            cJSON *cm = cJSON_AddObjectToObject(pa, k_cm[c]);
            steer_wilson(kc[c], nc[c], 1.959963984540054, &lo, &hi);
            cJSON_AddNumberToObject(cm, "n_features", (double)nc[c]);
            cJSON_AddNumberToObject(cm, "n_steerable", (double)kc[c]);
            add_num(cm, "steerable_fraction", nc[c] ? (double)kc[c] / (double)nc[c] : NAN);
            cJSON_AddItemToObject(cm, "steerable_ci95_wilson", ci_pair(lo, hi));
        }
    }
    /* gain vs distortion over α, per kind (every random draw a clip of its own); the passthrough is one point */
    for (int kind = 1; kind <= 4; kind++)
        for (int ai = kind == 1 ? -1 : 0; ai < (kind == 1 ? 0 : o->n_alpha); ai++) {
            double g = 0, cd = 0, dd = 0, cdist = 0, cg[CM_N] = {0};
            int64_t c = 0, cdd = 0, ccd = 0, ncg[CM_N] = {0};
            for (int64_t e = 0; e < n; e++) {
                const rec *x = &r[e];
                if (x->kind != kind || x->ai != ai) continue;
                const rec *b = find_base(r, n, x->prompt, x->seed);
                if (!b) continue;
                if (kind != 1) g += x->act_target - b->act[x->fi];
                cd += x->code_diff;
                const double dist_d = desc_dist(x, b, sd);
                if (isfinite(dist_d)) dd += dist_d, cdd++;
                if (isfinite(x->clap_dist)) cdist += x->clap_dist, ccd++;
                for (int m = 0; kind != 1 && m < CM_N; m++) {
                    const double t = x->has_clap ? cm_target(x, m) : NAN, bb = cm_of(b, m, x->fi);
                    if (isfinite(t) && isfinite(bb)) cg[m] += t - bb, ncg[m]++;
                }
                c++;
            }
            if (!c) continue;
            cJSON *pt = cJSON_CreateObject();
            cJSON_AddItemToArray(curve, pt);
            cJSON_AddStringToObject(pt, "kind", k_kinds[kind]);
            cJSON_AddNumberToObject(pt, "alpha", ai >= 0 ? o->alpha[ai] : 0.0);
            cJSON_AddNumberToObject(pt, "clips", (double)c);
            if (kind != 1) cJSON_AddNumberToObject(pt, "gain_mean", g / (double)c);
            else cJSON_AddNullToObject(pt, "gain_mean");
            cJSON_AddNumberToObject(pt, "code_diff_mean", cd / (double)c);
            add_num(pt, "desc_dist_mean", cdd ? dd / (double)cdd : NAN);
            add_num(pt, "clap_dist_mean", ccd ? cdist / (double)ccd : NAN);
            add_num(pt, "clap_label_gain_mean", ncg[CM_LABEL] ? cg[CM_LABEL] / (double)ncg[CM_LABEL] : NAN);
            add_num(pt, "clap_exemplars_gain_mean", ncg[CM_EX] ? cg[CM_EX] / (double)ncg[CM_EX] : NAN);
            /* the distortion axis: CLAP distance to the baseline when measured, else the descriptor distance */
            add_num(pt, "distortion", any_clap ? (ccd ? cdist / (double)ccd : NAN) : (cdd ? dd / (double)cdd : NAN));
        }
    free(d_base), free(d_rand), free(d_other), free(p_base), free(p_rand), free(q_base), free(q_rand), free(dist);
    for (int m = 0; m < CM_N; m++) {
        free(cb[m]), free(cr[m]);
        for (int c = 0; c < 2; c++) free(pc[m][c]), free(qc[m][c]);
    }
    for (int64_t e = 0; e < n; e++) free(r[e].act), free(r[e].clap_label), free(r[e].clap_ex);
    free(r);

    char tmp[4300], fin[4200];
    snprintf(fin, sizeof fin, "%s/summary.json", o->out_dir);
    snprintf(tmp, sizeof tmp, "%s.partial", fin);
    char *s = cJSON_Print(out);
    FILE *w = fopen(tmp, "wb");
    if (!w || fprintf(w, "%s\n", s) < 0 || fflush(w) || fsync(fileno(w)) || fclose(w) || rename(tmp, fin))
        musae_fail("%s: cannot be written: %s", fin, strerror(errno));
    cJSON_free(s);
    cJSON_Delete(out);
    LOG_INFO("wrote %s", fin);
}
