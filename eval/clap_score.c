/* CLAP scores of labels (eval/clap_score.h). */
#include "eval/clap_score.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/clap_clips.h"
#include "eval/features_io.h"
#include "eval/labels_io.h"
#include "eval/stats.h"
#include "host/core/check.h"
#include "host/core/log.h"

/* the object o[k], made (replacing a non-object) when missing */
static cJSON *object_at(cJSON *o, const char *k) {
    cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsObject(x)) return x;
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    return cJSON_AddObjectToObject(o, k);
}

static int scored(const cJSON *l, const char *only) {
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(l, "status");
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(l, "label");
    if (only && strcmp(cJSON_GetObjectItemCaseSensitive(l, "labeler")->valuestring, only)) return 0;
    return cJSON_IsString(st) && !strcmp(st->valuestring, "ok") && cJSON_IsString(lab);
}

static char *fill(const char *tpl, const char *label) {
    const char *at = strstr(tpl, "{label}");
    const size_t n = strlen(tpl) + strlen(label) + 1;
    char *s = musae_xmalloc(n);
    if (at) snprintf(s, n, "%.*s%s%s", (int)(at - tpl), tpl, label, at + 7);
    else snprintf(s, n, "%s", tpl);
    return s;
}

void clap_score_opts_defaults(clap_score_opts *o) {
    memset(o, 0, sizeof *o);
    o->tpl = "{label}";
    o->batch = 8;
}

int clap_score_run(const clap_score_opts *o) {
    const char *features = o->features, *labels = o->labels, *out = o->out ? o->out : o->labels, *only = o->only;
    const char *tpl = o->tpl;
    const int batch = o->batch;
    MUSAE_ASSERT(o->clap && features && labels && tpl && batch > 0 && o->ops, "options");
    char err[4600];
    cJSON *lines = labels_read(labels, 0, err, sizeof err);
    if (!lines) musae_fail("%s", err);
    musae_features f;
    if (features_read(features, &f, err, sizeof err)) musae_fail("%s", err);
    char sae[4200];
    snprintf(sae, sizeof sae, "%s:%.16s", f.sae, f.sae_sha256);
    /* every scored line must be of this SAE and in range, before any work */
    int64_t n_lines = 0, ln = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, lines) {
        ln++;
        if (!scored(l, only)) continue;
        const double feat = cJSON_GetObjectItemCaseSensitive(l, "feature")->valuedouble;
        if (feat >= (double)f.M)
            musae_fail("%s: line %lld: feature %.0f is out of range for %s (%lld latents)", labels, (long long)ln, feat,
                       features, (long long)f.M);
        const cJSON *src_sae = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(l, "source"), "sae");
        if (cJSON_IsString(src_sae) && strcmp(src_sae->valuestring, sae))
            musae_fail("%s: line %lld: labels of SAE %s, but %s was computed from %s", labels, (long long)ln,
                       src_sae->valuestring, features, sae);
        n_lines++;
    }
    const char *acts = o->acts ? o->acts : f.acts;
    if (clap_clips_check_store(&f, features, acts, err, sizeof err)) musae_fail("%s", err);
    clap_judge j;
    if (clap_judge_open(&j, o->clap, o->ops, err, sizeof err)) musae_fail("%s", err);
    const int64_t D = j.m.cfg.proj_dim;

    /* the labels' texts and the clips they are scored on: top, decile and random clips of their features */
    char **texts = musae_xmalloc((size_t)(n_lines + 1) * sizeof *texts);
    int64_t *need = musae_xmalloc((size_t)(f.C + 1) * sizeof *need), n_need = 0;
    int64_t *row_of = musae_xmalloc((size_t)(f.C + 1) * sizeof *row_of);
    for (int64_t c = 0; c < f.C; c++) row_of[c] = -1;
    const int64_t per = f.N + FEATURES_DECILES * FEATURES_PER_DECILE + FEATURES_RANDOM;
    int64_t k = 0;
    cJSON_ArrayForEach(l, lines) {
        if (!scored(l, only)) continue;
        texts[k++] = fill(tpl, cJSON_GetObjectItemCaseSensitive(l, "label")->valuestring);
        const int64_t m = (int64_t)cJSON_GetObjectItemCaseSensitive(l, "feature")->valuedouble;
        for (int64_t i = 0; i < per; i++) {
            const int64_t q = i - f.N, r = q - FEATURES_DECILES * FEATURES_PER_DECILE;
            const int32_t c = i < f.N ? f.top_clip[m * f.N + i]
                              : r < 0 ? f.quantile_clip[m * FEATURES_DECILES * FEATURES_PER_DECILE + q]
                                      : f.random_clip[m * FEATURES_RANDOM + r];
            if (c >= 0 && row_of[c] < 0) row_of[c] = n_need, need[n_need++] = c;
        }
    }
    float *temb = musae_xmalloc((size_t)(n_lines * D + 1) * sizeof *temb);
    char what[4200];
    snprintf(what, sizeof what, "%s labels", labels);
    if (clap_judge_texts(&j, (const char *const *)texts, n_lines, what, temb, err, sizeof err)) musae_fail("%s", err);
    char cache[4600];
    if (o->cache) snprintf(cache, sizeof cache, "%s", o->cache);
    else clap_clips_default_cache(&j, features, cache, sizeof cache);
    LOG_INFO("%s: scoring %lld label(s) with %s on %lld clip(s)", labels, (long long)n_lines, j.identity,
             (long long)n_need);
    float *aemb = musae_xmalloc((size_t)(n_need * D + 1) * sizeof *aemb);
    clap_clip_stats st;
    if (clap_clips_embed(&j, &f, acts, need, n_need, cache, batch, aemb, &st, err, sizeof err)) musae_fail("%s", err);

    /* rows of aemb: the exemplars (top clips), the decile samples (positives), the random clips (negatives) */
    int64_t *top_rows = musae_xmalloc((size_t)(f.N + 1) * sizeof *top_rows);
    int64_t dec[FEATURES_DECILES * FEATURES_PER_DECILE], rnd[FEATURES_RANDOM];
    double pos[FEATURES_DECILES * FEATURES_PER_DECILE], neg[FEATURES_RANDOM];
    k = 0;
    cJSON *ll;
    cJSON_ArrayForEach(ll, lines) {
        if (!scored(ll, only)) continue;
        const int64_t m = (int64_t)cJSON_GetObjectItemCaseSensitive(ll, "feature")->valuedouble;
        const float *t = temb + k++ * D;
        int64_t nt = 0, nq = 0, nr = 0;
        for (int64_t i = 0; i < f.N; i++)
            if (f.top_clip[m * f.N + i] >= 0) top_rows[nt++] = row_of[f.top_clip[m * f.N + i]];
        for (int64_t i = 0; i < FEATURES_DECILES * FEATURES_PER_DECILE; i++) {
            const int32_t c = f.quantile_clip[m * FEATURES_DECILES * FEATURES_PER_DECILE + i];
            if (c >= 0) dec[nq++] = row_of[c];
        }
        for (int64_t i = 0; i < FEATURES_RANDOM; i++)
            if (f.random_clip[m * FEATURES_RANDOM + i] >= 0) rnd[nr++] = row_of[f.random_clip[m * FEATURES_RANDOM + i]];
        for (int64_t i = 0; i < nq; i++) pos[i] = clap_mean_sim(t, aemb, dec + i, 1, D);
        for (int64_t i = 0; i < nr; i++) neg[i] = clap_mean_sim(t, aemb, rnd + i, 1, D);
        const double align = clap_mean_sim(t, aemb, top_rows, nt, D);
        const double contrast = align - clap_mean_sim(t, aemb, rnd, nr, D);
        cJSON *sc = object_at(ll, "scores");
        labels_put_num(sc, "clap_alignment", align);
        labels_put_num(sc, "clap_contrast", contrast);
        labels_put_num(sc, "clap_detection_auroc", stats_auroc(pos, nq, neg, nr));
        labels_put_num(sc, "clap_n_exemplars", (double)nt);
        labels_put_num(sc, "clap_n_positive", (double)nq);
        labels_put_num(sc, "clap_n_negative", (double)nr);
        cJSON *who = object_at(sc, "scorer");
        cJSON_DeleteItemFromObjectCaseSensitive(who, "clap");
        cJSON_AddStringToObject(who, "clap", j.identity);
    }
    if (labels_write(out, lines, err, sizeof err)) musae_fail("%s", err);
    LOG_INFO("wrote %s: %lld line(s) scored by CLAP", out, (long long)n_lines);

    for (int64_t i = 0; i < n_lines; i++) free(texts[i]);
    free(texts), free(need), free(row_of), free(temb), free(aemb), free(top_rows);
    cJSON_Delete(lines);
    clap_judge_close(&j);
    features_free(&f);
    return 0;
}
