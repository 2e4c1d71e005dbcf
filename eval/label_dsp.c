/* The dsp labeler (label_dsp.h): descriptor tests per feature, Benjamini–Hochberg, labels in words, LABELS.jsonl. */
#include "eval/label_dsp.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/features_io.h"
#include "eval/labels_io.h"
#include "eval/stats.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/descriptors_io.h"
#include "host/io/safetensors.h"

/* Fewer clips than this on either side: no test (a rank test of 2 against 2 cannot reach q <= 0.05 anyway). */
enum { MIN_CLIPS = 3 };

/* The continuous descriptors, in words. One entry per MUSAE_DESC_F32_FIELDS field (checked below). */
typedef struct {
    const char *name, *unit, *higher, *lower;
    size_t offset;
    int decimals; /* of the medians in a label */
} continuous_desc;

#define C_DESC(n, unit, hi, lo, dec) {#n, unit, hi, lo, offsetof(musae_desc, n), dec}
static const continuous_desc k_continuous[] = {
    C_DESC(tempo_bpm, "BPM", "fast tempo", "slow tempo", 0),
    C_DESC(beat_confidence, "", "steady beat", "weak beat", 2),
    C_DESC(onset_rate_hz, "onsets/s", "dense onsets", "sparse onsets", 1),
    C_DESC(lufs, "LUFS", "loud", "quiet", 1),
    C_DESC(loudness_range_lu, "LU", "wide dynamics", "narrow dynamics", 1),
    C_DESC(true_peak_dbtp, "dBTP", "high peaks", "low peaks", 1),
    C_DESC(key_confidence, "", "clear key", "ambiguous key", 2),
    C_DESC(spectral_centroid_hz, "Hz", "bright", "dark", 0),
    C_DESC(spectral_rolloff_hz, "Hz", "high rolloff", "low rolloff", 0),
    C_DESC(spectral_flatness, "", "noisy", "tonal", 3),
    C_DESC(spectral_bandwidth_hz, "Hz", "wide-band", "narrow-band", 0),
    C_DESC(zcr, "", "high zero-crossing rate", "low zero-crossing rate", 3),
    C_DESC(rms_db, "dBFS", "high energy", "low energy", 1),
    C_DESC(percussive_ratio, "", "percussive", "harmonic", 2),
    C_DESC(f0_median_hz, "Hz", "high pitch", "low pitch", 0),
    C_DESC(voiced_fraction, "", "pitched", "unpitched", 2),
};
#undef C_DESC
enum { N_CONT = (int)(sizeof k_continuous / sizeof k_continuous[0]) };
_Static_assert((int)N_CONT == (int)MUSAE_DESC_N_F32, "one word entry per descriptor field");

enum { CAT_KEY, CAT_MODE, CAT_CHORDS, N_CAT };
static const char *const k_cat_name[N_CAT] = {"key", "mode", "chords"};
static const char *const k_pitch[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};

/* One test of one feature. */
typedef struct {
    int kind;      /* 0 continuous, 1 categorical */
    int desc;      /* index into k_continuous, or CAT_* */
    int weighted;  /* continuous: 1 = activation-weighted firing clips */
    int value;     /* categorical: key*2+mode (key), mode, chord id */
    int n_top, n_random;
    stats_mwu mw;  /* continuous */
    double median_top, median_random;
    double share_top, share_random, odds_ratio; /* categorical */
    double p, q, strength;
} dsp_test;

typedef struct {
    dsp_test *t;
    int n, cap;
    int n_top, n_random; /* clips available (before NaN removal) */
} feature_tests;

static void push(feature_tests *ft, const dsp_test *t) {
    if (ft->n == ft->cap) {
        ft->cap = ft->cap ? 2 * ft->cap : 32;
        ft->t = musae_xrealloc(ft->t, sizeof(dsp_test) * (size_t)ft->cap);
    }
    ft->t[ft->n++] = *t;
}

static float field(const musae_desc *d, const continuous_desc *c) {
    return *(const float *)((const char *)d + c->offset);
}

/* Whether clip descriptor d holds categorical value v of descriptor cat. */
static int has_value(const musae_desc *d, int cat, int v) {
    switch (cat) {
    case CAT_KEY: return d->key >= 0 && d->mode >= 0 && d->key * 2 + d->mode == v;
    case CAT_MODE: return d->mode == v;
    default:
        for (int i = 0; i < MUSAE_DESC_CHORDS; i++)
            if (d->chords[i] == v) return 1;
        return 0;
    }
}
static int n_values(int cat) { return cat == CAT_KEY ? 24 : cat == CAT_MODE ? 2 : MUSAE_DESC_NO_CHORD; }

static void value_words(int cat, int v, char *out, size_t n) {
    switch (cat) {
    case CAT_KEY: snprintf(out, n, "%s %s", k_pitch[v / 2], v % 2 ? "minor" : "major"); break;
    case CAT_MODE: snprintf(out, n, "%s mode", v ? "minor" : "major"); break;
    default: snprintf(out, n, "%s %s chord", k_pitch[v % 12], v >= 12 ? "minor" : "major"); break;
    }
}

/* Every test of one feature: top (and firing, weighted) clips against the random non-firing ones. top and rnd
 * hold descriptor rows; fire/w the firing clips' rows and time-mean activations. */
static void feature_run(const musae_desc *const *top, int nt, const musae_desc *const *rnd, int nr,
                        const musae_desc *const *fire, const float *w, int nf, feature_tests *ft) {
    ft->n_top = nt, ft->n_random = nr;
    if (nt < MIN_CLIPS || nr < MIN_CLIPS) return;
    const int nmax = nt > nf ? nt : nf;
    double *a = musae_xmalloc(sizeof(double) * (size_t)nmax), *aw = musae_xmalloc(sizeof(double) * (size_t)nmax);
    double *b = musae_xmalloc(sizeof(double) * (size_t)nr), *tmp = musae_xmalloc(sizeof(double) * (size_t)(nmax + nr));
    for (int c = 0; c < N_CONT; c++) {
        const continuous_desc *cd = &k_continuous[c];
        int na = 0, nb = 0;
        for (int j = 0; j < nr; j++)
            if (isfinite(field(rnd[j], cd))) b[nb++] = field(rnd[j], cd);
        if (nb < MIN_CLIPS) continue;
        memcpy(tmp, b, sizeof(double) * (size_t)nb);
        const double med_r = stats_median(tmp, (size_t)nb);
        for (int i = 0; i < nt; i++)
            if (isfinite(field(top[i], cd))) a[na++] = field(top[i], cd);
        if (na >= MIN_CLIPS) {
            dsp_test t = {.kind = 0, .desc = c, .n_top = na, .n_random = nb, .median_random = med_r};
            t.mw = stats_mann_whitney(a, na, b, nb);
            memcpy(tmp, a, sizeof(double) * (size_t)na);
            t.median_top = stats_median(tmp, (size_t)na);
            t.p = t.mw.p, t.strength = fabs(t.mw.cliffs);
            push(ft, &t);
        }
        na = 0;
        for (int i = 0; i < nf; i++)
            if (isfinite(field(fire[i], cd)) && w[i] > 0) a[na] = field(fire[i], cd), aw[na++] = w[i];
        if (na >= MIN_CLIPS) {
            dsp_test t = {.kind = 0, .desc = c, .weighted = 1, .n_top = na, .n_random = nb, .median_random = med_r};
            t.mw = stats_weighted_auroc(a, aw, na, b, nb);
            t.median_top = stats_weighted_median(a, aw, (size_t)na);
            t.p = t.mw.p, t.strength = fabs(t.mw.cliffs);
            push(ft, &t);
        }
    }
    for (int cat = 0; cat < N_CAT; cat++)
        for (int v = 0; v < n_values(cat); v++) {
            long in_top = 0, in_rnd = 0;
            for (int i = 0; i < nt; i++) in_top += has_value(top[i], cat, v);
            if (!in_top) continue; /* only values the top clips hold can label them */
            for (int j = 0; j < nr; j++) in_rnd += has_value(rnd[j], cat, v);
            dsp_test t = {.kind = 1, .desc = cat, .value = v, .n_top = nt, .n_random = nr};
            t.share_top = (double)in_top / nt, t.share_random = (double)in_rnd / nr;
            const double bc = (double)(nt - in_top) * in_rnd;
            t.odds_ratio = bc > 0 ? (double)in_top * (nr - in_rnd) / bc : NAN;
            t.p = stats_fisher_exact(in_top, nt - in_top, in_rnd, nr - in_rnd);
            t.strength = t.share_top - t.share_random;
            push(ft, &t);
        }
    free(a), free(aw), free(b), free(tmp);
}

/* ---- words and JSON ------------------------------------------------------------------------------------------- */

/* A significant test points the label's way: a continuous one either way, a categorical one only when enriched. */
static int usable(const dsp_test *t, double q) { return t->q <= q && (t->kind == 0 || t->strength > 0); }

/* Strongest first; equal strengths (several descriptors separating perfectly: a faster click track also has more
 * onsets and zero crossings) go to continuous before categorical, then to the descriptor listed first in
 * k_continuous (rhythm, loudness, tonality, timbre: the more musical word), top before weighted. Not to the
 * smaller p: between perfect separations p only says which descriptor has more tied values. */
static int cmp_strength(const void *x, const void *y) {
    const dsp_test *a = *(dsp_test *const *)x, *b = *(dsp_test *const *)y;
    if (a->strength != b->strength) return a->strength < b->strength ? 1 : -1;
    if (a->kind != b->kind) return a->kind - b->kind;
    if (a->desc != b->desc) return a->desc - b->desc;
    if (a->weighted != b->weighted) return a->weighted - b->weighted;
    return a->value - b->value;
}

static void term_words(const dsp_test *t, int detailed, char *out, size_t n) {
    if (t->kind == 1) {
        char v[64];
        value_words(t->desc, t->value, v, sizeof v);
        if (detailed)
            snprintf(out, n, "%s (%.0f %% of top clips vs %.0f %%)", v, 100 * t->share_top, 100 * t->share_random);
        else
            snprintf(out, n, "%s", v);
        return;
    }
    const continuous_desc *cd = &k_continuous[t->desc];
    const int up = t->mw.auroc >= 0.5;
    const char *w = up ? cd->higher : cd->lower;
    if (!detailed) {
        snprintf(out, n, "%s", w);
        return;
    }
    snprintf(out, n, "%s (median %.*f%s%s vs %.*f, AUROC %.2f)", w, cd->decimals, t->median_top, *cd->unit ? " " : "",
             cd->unit, cd->decimals, t->median_random, up ? t->mw.auroc : 1 - t->mw.auroc);
}

static cJSON *evidence_item(const dsp_test *t) {
    cJSON *e = cJSON_CreateObject();
    if (t->kind == 0) {
        const continuous_desc *cd = &k_continuous[t->desc];
        cJSON_AddStringToObject(e, "descriptor", cd->name);
        cJSON_AddStringToObject(e, "kind", "continuous");
        cJSON_AddStringToObject(e, "unit", cd->unit);
        cJSON_AddStringToObject(e, "direction", t->mw.auroc >= 0.5 ? "higher" : "lower");
        cJSON_AddStringToObject(e, "weighting", t->weighted ? "activation" : "top");
        labels_put_num(e, "auroc", t->mw.auroc);
        labels_put_num(e, "cliffs_delta", t->mw.cliffs);
        labels_put_num(e, "median_top", t->median_top);
        labels_put_num(e, "median_random", t->median_random);
        labels_put_num(e, "median_shift", t->median_top - t->median_random);
    } else {
        char v[64];
        value_words(t->desc, t->value, v, sizeof v);
        cJSON_AddStringToObject(e, "descriptor", k_cat_name[t->desc]);
        cJSON_AddStringToObject(e, "kind", "categorical");
        cJSON_AddStringToObject(e, "value", v);
        labels_put_num(e, "share_top", t->share_top);
        labels_put_num(e, "share_random", t->share_random);
        labels_put_num(e, "odds_ratio", t->odds_ratio);
    }
    cJSON_AddNumberToObject(e, "n_top", t->n_top);
    cJSON_AddNumberToObject(e, "n_random", t->n_random);
    labels_put_num(e, "p", t->p);
    labels_put_num(e, "q", t->q);
    return e;
}

/* The line of one feature. */
static cJSON *feature_line(int feature, const feature_tests *ft, const label_dsp_opts *o, cJSON *source) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "feature", feature);
    cJSON_AddStringToObject(j, "labeler", "dsp");
    dsp_test **sig = musae_xmalloc(sizeof(dsp_test *) * (size_t)(ft->n + 1));
    int ns = 0;
    for (int i = 0; i < ft->n; i++)
        if (usable(&ft->t[i], o->q)) sig[ns++] = &ft->t[i];
    qsort(sig, (size_t)ns, sizeof *sig, cmp_strength);
    if (!ns) {
        char why[160];
        if (ft->n_top < MIN_CLIPS || ft->n_random < MIN_CLIPS)
            snprintf(why, sizeof why, "no descriptor differs (too few clips to compare: %d top, %d random)", ft->n_top,
                     ft->n_random);
        else
            snprintf(why, sizeof why, "no descriptor differs");
        cJSON_AddStringToObject(j, "label", why);
        cJSON_AddNumberToObject(j, "score", 0);
        cJSON_AddStringToObject(j, "status", "no_signal");
    } else {
        /* terms: the strongest test of each descriptor, strongest first */
        char label[1024] = "";
        int used[N_CONT + N_CAT] = {0}, terms = 0;
        double score = NAN;
        for (int i = 0; i < ns && terms < o->max_terms; i++) {
            const int slot = sig[i]->kind ? N_CONT + sig[i]->desc : sig[i]->desc;
            if (used[slot]) continue;
            used[slot] = 1;
            char w[256];
            term_words(sig[i], terms == 0, w, sizeof w);
            snprintf(label + strlen(label), sizeof label - strlen(label), "%s%s", terms ? ", " : "", w);
            terms++;
        }
        for (int i = 0; i < ns && isnan(score); i++)
            if (sig[i]->kind == 0) score = fmax(sig[i]->mw.auroc, 1 - sig[i]->mw.auroc);
        if (isnan(score)) score = sig[0]->share_top;
        cJSON_AddStringToObject(j, "label", label);
        labels_put_num(j, "score", score);
        cJSON_AddStringToObject(j, "status", "ok");
    }
    cJSON *ev = cJSON_AddArrayToObject(j, "evidence");
    for (int i = 0; i < ns; i++) cJSON_AddItemToArray(ev, evidence_item(sig[i]));
    cJSON_AddItemToObject(j, "source", cJSON_Duplicate(source, 1));
    cJSON_AddStringToObject(j, "musae_version", MUSAE_VERSION);
    free(sig);
    return j;
}

/* ---- files ---------------------------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    int64_t index;
} named;
static int cmp_named(const void *x, const void *y) { return strcmp(((const named *)x)->path, ((const named *)y)->path); }

void label_dsp_opts_defaults(label_dsp_opts *o) {
    memset(o, 0, sizeof *o);
    o->q = 0.05;
    o->max_terms = 3;
}

int label_dsp_run(const label_dsp_opts *o) {
    const double t0 = musae_now();
    char err[2048];
    musae_features f;
    musae_descriptors d;
    if (features_read(o->features, &f, err, sizeof err)) musae_fail("%s", err);
    if (musae_descriptors_read(o->descriptors, &d, err, sizeof err)) musae_fail("%s", err);
    /* an existing output that is not LABELS.jsonl stops the run before the work */
    cJSON *lines = labels_read(o->out, 1, err, sizeof err);
    if (!lines) musae_fail("%s (not replacing it)", err);

    /* FEATURES.h5 clip -> DESCRIPTORS.h5 row, by name */
    named *byname = musae_xmalloc(sizeof(named) * (size_t)(d.n_clips + 1));
    for (int64_t i = 0; i < d.n_clips; i++) byname[i] = (named){d.path[i], i};
    qsort(byname, (size_t)d.n_clips, sizeof(named), cmp_named);
    int64_t *row = musae_xmalloc(sizeof(int64_t) * (size_t)(f.C + 1));
    for (int64_t c = 0; c < f.C; c++) {
        const named key = {f.clip_path[c], 0};
        const named *hit = bsearch(&key, byname, (size_t)d.n_clips, sizeof(named), cmp_named);
        if (!hit)
            musae_fail("%s and %s do not describe the same clips: clip '%s' of %s is not in %s (%lld clips); run "
                       "musae describe --acts on the store %s was computed from (%s)",
                       o->features, o->descriptors, f.clip_path[c], o->features, o->descriptors,
                       (long long)d.n_clips, o->features, f.acts);
        row[c] = hit->index;
    }
    free(byname);

    /* the per-clip table by feature: the clips each feature fires on, with its time-mean */
    int64_t *start = musae_xcalloc((size_t)f.M + 1, sizeof(int64_t));
    for (int64_t e = 0; e < f.nnz; e++) start[f.cf_feature[e] + 1]++;
    for (int64_t m = 0; m < f.M; m++) start[m + 1] += start[m];
    int64_t *fill = musae_xmalloc(sizeof(int64_t) * (size_t)(f.M + 1));
    memcpy(fill, start, sizeof(int64_t) * (size_t)f.M);
    const musae_desc **fire = musae_xmalloc(sizeof(void *) * (size_t)(f.nnz + 1));
    float *fire_w = musae_xmalloc(sizeof(float) * (size_t)(f.nnz + 1));
    for (int64_t c = 0; c < f.C; c++)
        for (int64_t e = f.cf_indptr[c]; e < f.cf_indptr[c + 1]; e++) {
            const int64_t at = fill[f.cf_feature[e]]++;
            fire[at] = &d.clip[row[c]], fire_w[at] = f.cf_mean[e];
        }
    free(fill);

    int64_t n_kept = 0;
    for (int64_t m = 0; m < f.M; m++) n_kept += f.keep[m] != 0;
    int *kept = musae_xmalloc(sizeof(int) * (size_t)(n_kept + 1));
    n_kept = 0;
    for (int64_t m = 0; m < f.M; m++)
        if (f.keep[m]) kept[n_kept++] = (int)m;
    feature_tests *ft = musae_xcalloc((size_t)n_kept + 1, sizeof(feature_tests));
#pragma omp parallel for schedule(dynamic, 4)
    for (int64_t i = 0; i < n_kept; i++) {
        const int m = kept[i];
        const musae_desc **top = musae_xmalloc(sizeof(void *) * (size_t)(f.N + 1)), *rnd[FEATURES_RANDOM];
        int nt = 0, nr = 0;
        for (int64_t k = 0; k < f.N; k++) {
            const int32_t c = f.top_clip[(int64_t)m * f.N + k];
            if (c >= 0) top[nt++] = &d.clip[row[c]];
        }
        for (int k = 0; k < FEATURES_RANDOM; k++) {
            const int32_t c = f.random_clip[(int64_t)m * FEATURES_RANDOM + k];
            if (c >= 0) rnd[nr++] = &d.clip[row[c]];
        }
        feature_run(top, nt, rnd, nr, fire + start[m], fire_w + start[m], (int)(start[m + 1] - start[m]), &ft[i]);
        free(top);
    }

    /* Benjamini–Hochberg over every test of every feature */
    size_t n_tests = 0;
    for (int64_t i = 0; i < n_kept; i++) n_tests += (size_t)ft[i].n;
    double *p = musae_xmalloc(sizeof(double) * (n_tests + 1)), *q = musae_xmalloc(sizeof(double) * (n_tests + 1));
    size_t k = 0;
    for (int64_t i = 0; i < n_kept; i++)
        for (int j = 0; j < ft[i].n; j++) p[k++] = ft[i].t[j].p;
    stats_bh(p, q, n_tests);
    k = 0;
    for (int64_t i = 0; i < n_kept; i++)
        for (int j = 0; j < ft[i].n; j++) ft[i].t[j].q = q[k++];

    cJSON *source = cJSON_CreateObject();
    cJSON_AddStringToObject(source, "features", o->features);
    char sae[4200];
    snprintf(sae, sizeof sae, "%s:%.16s", f.sae, f.sae_sha256);
    cJSON_AddStringToObject(source, "sae", sae);
    cJSON_AddStringToObject(source, "descriptors", o->descriptors);
    cJSON *mine = cJSON_CreateArray();
    int64_t n_labelled = 0;
    for (int64_t i = 0; i < n_kept; i++) {
        cJSON *j = feature_line(kept[i], &ft[i], o, source);
        n_labelled += !strcmp(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "ok");
        cJSON_AddItemToArray(mine, j);
    }
    labels_replace(lines, "dsp", mine);
    if (labels_write(o->out, lines, err, sizeof err)) musae_fail("%s", err);
    LOG_INFO("label dsp: %lld kept features, %lld labelled, %lld without a significant descriptor; %zu tests, "
             "BH q <= %g; %s in %.1f s",
             (long long)n_kept, (long long)n_labelled, (long long)(n_kept - n_labelled), n_tests, o->q, o->out,
             musae_now() - t0);
    cJSON_Delete(source);
    cJSON_Delete(lines);
    free(p), free(q);
    for (int64_t i = 0; i < n_kept; i++) free(ft[i].t);
    free(ft), free(kept), free(fire), free(fire_w), free(start), free(row);
    musae_descriptors_free(&d);
    features_free(&f);
    return 0;
}
