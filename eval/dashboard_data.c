/* The dashboard's inputs besides FEATURES.h5: LABELS.jsonl (docs/LABELS.md; read through eval/labels_io, its one
 * reader) and a steering folder's steer.jsonl (docs/DASHBOARD.md). Lines are kept whole as cJSON objects: the
 * pages show every key a labeler wrote, so a labeler that adds evidence keys needs no change here. dashboard.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dashboard.h"
#include "eval/labels_io.h"
#include "host/core/check.h"
#include "host/io/json.h"

/* An integer-valued number in [0, M), or -1. */
static int64_t feature_of(const cJSON *o, int64_t M) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "feature");
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble >= (double)M)
        return -1;
    return (int64_t)v->valuedouble;
}

typedef struct {
    dash_labels *L;
    int64_t M, cap;
    const char *path;
} label_ctx;

/* A line that labels_each read (an object with an integer feature and a string labeler), checked against this
 * FEATURES file and kept. */
static int add_label(void *vctx, cJSON *o, long line, char *err, size_t errlen) {
    label_ctx *c = vctx;
    const char *path = c->path;
    dash_labels *L = c->L;
    const int64_t f = feature_of(o, c->M);
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(o, "labeler");
    const char *why = f < 0 ? "feature: not an integer latent index of this FEATURES file"
                      : !cJSON_IsString(lab) || !lab->valuestring[0] ? "labeler: not a non-empty string"
                                                                      : NULL;
    if (why) {
        snprintf(err, errlen, "%s: line %ld: %s", c->path, line, why);
        cJSON_Delete(o);
        return -1;
    }
    int k = 0;
    while (k < L->n_labelers && strcmp(L->labelers[k], lab->valuestring)) k++;
    if (k == L->n_labelers) {
        if (k == DASH_MAX_LABELERS) {
            snprintf(err, errlen, "%s: line %lld: more than %d labelers", path, (long long)line, DASH_MAX_LABELERS);
            cJSON_Delete(o);
            return -1;
        }
        L->labelers[L->n_labelers++] = musae_xstrdup(lab->valuestring);
    }
    if (L->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        L->v = musae_xrealloc(L->v, sizeof *L->v * (size_t)c->cap);
    }
    L->v[L->n++] = (dash_label){.feature = (int32_t)f, .labeler = k, .line = o};
    return 0;
}

/* Stable sort by feature (insertion order kept within a feature): a counting sort over M. */
static void sort_by_feature(dash_label *v, int64_t n, int64_t M) {
    if (n == 0) return; /* no labels: v may be NULL, and memcpy(NULL, ..., 0) is undefined */
    int64_t *start = musae_xcalloc((size_t)M + 1, sizeof *start);
    for (int64_t i = 0; i < n; i++) start[v[i].feature + 1]++;
    for (int64_t f = 0; f < M; f++) start[f + 1] += start[f];
    dash_label *out = musae_xmalloc(sizeof *out * (size_t)n);
    for (int64_t i = 0; i < n; i++) out[start[v[i].feature]++] = v[i];
    memcpy(v, out, sizeof *out * (size_t)n);
    free(out);
    free(start);
}

int dash_labels_read(dash_labels *L, const char *const *files, int n_files, int64_t M, char *err, size_t errlen) {
    memset(L, 0, sizeof *L);
    label_ctx c = {.L = L, .M = M};
    for (int i = 0; i < n_files; i++) {
        c.path = files[i];
        if (labels_each(files[i], 0, add_label, &c, err, errlen)) {
            dash_labels_free(L);
            return -1;
        }
    }
    sort_by_feature(L->v, L->n, M);
    return 0;
}

void dash_labels_free(dash_labels *L) {
    for (int64_t i = 0; i < L->n; i++) cJSON_Delete(L->v[i].line);
    for (int k = 0; k < L->n_labelers; k++) free(L->labelers[k]);
    free(L->v);
    memset(L, 0, sizeof *L);
}

void dash_labels_range(const dash_labels *L, int32_t f, int64_t *i0, int64_t *i1) {
    int64_t lo = 0, hi = L->n;
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (L->v[mid].feature < f) lo = mid + 1;
        else hi = mid;
    }
    *i0 = lo;
    while (hi < L->n && L->v[hi].feature == f) hi++;
    *i1 = hi;
}

/* ---- a musae steer folder: study.json and steer.jsonl ---------------------------------------------------- */
typedef struct {
    dash_steers *S;
    const char *dir, *path; /* the folder, its steer.jsonl */
    int64_t M, cap;
} steer_ctx;

static const char *const k_steer_kinds[] = {"baseline", "passthrough", "steered", "random", "other"};

/* an integer below 2^63 in magnitude, so converting it to int64_t is defined */
static int is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9223372036854775808.0;
}

static int add_steer(void *vctx, cJSON *o, long line, char *err, size_t errlen) {
    steer_ctx *c = vctx;
    dash_steers *S = c->S;
    const cJSON *alpha = cJSON_GetObjectItemCaseSensitive(o, "alpha"), *kind = cJSON_GetObjectItemCaseSensitive(o, "kind"),
                *audio = cJSON_GetObjectItemCaseSensitive(o, "audio"), *prompt = cJSON_GetObjectItemCaseSensitive(o, "prompt"),
                *seed = cJSON_GetObjectItemCaseSensitive(o, "seed"), *draw = cJSON_GetObjectItemCaseSensitive(o, "draw");
    int k = -1;
    for (int i = 0; i < 5 && cJSON_IsString(kind); i++)
        if (!strcmp(kind->valuestring, k_steer_kinds[i])) k = i;
    const int64_t f = k >= 2 ? feature_of(o, c->M) : -1;
    int fi = -1;
    for (int i = 0; i < S->nf && f >= 0; i++)
        if (S->feat[i] == f) fi = i;
    const char *why = NULL;
    if (k < 0) why = "kind: not one of baseline, passthrough, steered, random, other";
    else if (k >= 2 && fi < 0) why = "feature: not a studied latent (study.json features) of this FEATURES file";
    else if (!cJSON_IsNumber(alpha) || !isfinite(alpha->valuedouble)) why = "alpha: not a finite number";
    else if (!is_int(prompt) || !is_int(seed)) why = "prompt, seed: not integers";
    else if (k == 3 && draw && (!is_int(draw) || draw->valuedouble < 0 || draw->valuedouble > INT32_MAX))
        why = "draw: not a non-negative integer";
    else if (!cJSON_IsNull(audio) && (!cJSON_IsString(audio) || !audio->valuestring[0]))
        why = "audio: neither a non-empty string nor null";
    if (why) {
        snprintf(err, errlen, "%s: line %ld: %s", c->path, line, why);
        cJSON_Delete(o);
        return -1;
    }
    if (S->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        S->v = musae_xrealloc(S->v, sizeof *S->v * (size_t)c->cap);
    }
    dash_steer *s = &S->v[S->n++];
    memset(s, 0, sizeof *s);
    s->feature = (int32_t)f;
    s->fi = fi;
    s->seq = S->n - 1;
    s->alpha = alpha->valuedouble;
    s->prompt = (int64_t)prompt->valuedouble;
    s->seed = (int64_t)seed->valuedouble;
    s->draw = k == 3 ? (draw ? (int)draw->valuedouble : 0) : -1; /* a line without `draw`: the single draw 0 */
    snprintf(s->kind, sizeof s->kind, "%s", kind->valuestring);
    if (cJSON_IsString(audio)) {
        s->wav = audio->valuestring;
        const size_t n = strlen(c->dir) + strlen(s->wav) + 2;
        s->src = musae_xmalloc(n);
        if (s->wav[0] == '/') snprintf(s->src, n, "%s", s->wav);
        else snprintf(s->src, n, "%s/%s", c->dir, s->wav);
    }
    s->line = o;
    return 0;
}

static int cmp_steer(const void *a, const void *b) {
    const dash_steer *x = a, *y = b;
    if (x->feature != y->feature) return x->feature < y->feature ? -1 : 1;
    if (x->alpha != y->alpha) return x->alpha < y->alpha ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* DIR/study.json's `features`: which latent each index of a line's `act` and `clap` arrays is */
static int read_study(dash_steers *S, const char *dir, char *err, size_t errlen) {
    char path[4200];
    snprintf(path, sizeof path, "%s/study.json", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read: %s (not a musae steer folder?)", path, strerror(errno));
        return -1;
    }
    char *s = NULL;
    size_t cap = 0;
    const ssize_t got = getline(&s, &cap, f);
    fclose(f);
    cJSON *j = got > 0 ? cJSON_Parse(s) : NULL;
    free(s);
    const cJSON *fa = cJSON_GetObjectItemCaseSensitive(j, "features");
    int ok = cJSON_IsArray(fa) && cJSON_GetArraySize(fa) > 0;
    if (ok) {
        S->nf = cJSON_GetArraySize(fa);
        S->feat = musae_xmalloc((size_t)S->nf * sizeof(int64_t));
        for (int i = 0; i < S->nf && ok; i++) {
            const cJSON *v = cJSON_GetArrayItem(fa, i);
            ok = is_int(v);
            S->feat[i] = ok ? (int64_t)v->valuedouble : -1;
        }
    }
    cJSON_Delete(j);
    if (!ok) snprintf(err, errlen, "%s: features: not a non-empty array of latent indices", path);
    return ok ? 0 : -1;
}

int dash_steer_read(dash_steers *S, const char *dir, int64_t M, char *err, size_t errlen) {
    memset(S, 0, sizeof *S);
    char path[4200];
    snprintf(path, sizeof path, "%s/steer.jsonl", dir);
    steer_ctx c = {.S = S, .dir = dir, .path = path, .M = M};
    if (read_study(S, dir, err, errlen) || musae_jsonl_each(path, 0, add_steer, &c, err, errlen)) {
        dash_steer_free(S);
        return -1;
    }
    qsort(S->v, (size_t)S->n, sizeof *S->v, cmp_steer);
    return 0;
}

const dash_steer *dash_steer_find(const dash_steers *S, const char *kind, int32_t feature, double alpha,
                                  int64_t prompt, int64_t seed) {
    const int base = !strcmp(kind, "baseline");
    for (int64_t i = 0; i < S->n; i++) {
        const dash_steer *s = &S->v[i];
        if (!strcmp(s->kind, kind) && s->prompt == prompt && s->seed == seed && s->draw <= 0 &&
            (base || (s->feature == feature && s->alpha == alpha)))
            return s;
    }
    return NULL;
}

void dash_steer_free(dash_steers *S) {
    for (int64_t i = 0; i < S->n; i++) {
        free(S->v[i].src);
        cJSON_Delete(S->v[i].line);
    }
    free(S->v);
    free(S->feat);
    memset(S, 0, sizeof *S);
}
