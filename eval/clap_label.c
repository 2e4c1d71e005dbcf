/* The CLAP labeler (eval/clap_label.h). */
#include "eval/clap_label.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/clap_clips.h"
#include "eval/clap_vocab.h"
#include "eval/features_io.h"
#include "eval/labels_io.h"
#include "host/core/check.h"
#include "host/core/log.h"

/* template with every "{tag}" replaced by tag (malloc'd) */
static char *fill(const char *tpl, const char *key, const char *val) {
    size_t cap = strlen(tpl) + 1, len = 0;
    for (const char *p = strstr(tpl, key); p; p = strstr(p + 1, key)) cap += strlen(val);
    char *out = musae_xmalloc(cap);
    for (const char *p = tpl; *p;) {
        if (!strncmp(p, key, strlen(key))) {
            memcpy(out + len, val, strlen(val));
            len += strlen(val), p += strlen(key);
        } else out[len++] = *p++;
    }
    out[len] = 0;
    return out;
}

typedef struct {
    double top, random, contrast;
    int64_t tag;
} tag_score;

static int by_contrast(const void *a, const void *b) {
    const tag_score *x = a, *y = b;
    if (x->contrast != y->contrast) return x->contrast < y->contrast ? 1 : -1;
    return (x->tag > y->tag) - (x->tag < y->tag);
}

/* the valid (>= 0) entries of a row of clip indices */
static int64_t valid_rows(const int32_t *v, int64_t n, int64_t *out) {
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (v[i] >= 0) out[k++] = v[i];
    return k;
}

void clap_label_opts_defaults(clap_label_opts *o) {
    memset(o, 0, sizeof *o);
    o->tpl = CLAP_LABEL_TEMPLATE;
    o->n_tags = 5;
    o->batch = 8;
}

int clap_label_run(const clap_label_opts *o) {
    const char *features = o->features, *vocab_spec = o->vocab, *out = o->out, *tpl = o->tpl;
    const int n_tags = o->n_tags, batch = o->batch;
    MUSAE_ASSERT(o->clap && features && vocab_spec && out && tpl && n_tags > 0 && batch > 0 && o->ops, "options");
    char err[4600];
    clap_vocab v;
    if (clap_vocab_load(vocab_spec, &v, err, sizeof err)) musae_fail("%s", err);
    musae_features f;
    if (features_read(features, &f, err, sizeof err)) musae_fail("%s", err);
    const char *acts = o->acts ? o->acts : f.acts;
    if (clap_clips_check_store(&f, features, acts, err, sizeof err)) musae_fail("%s", err);
    /* an existing output that is not LABELS.jsonl stops the run before the work */
    cJSON *lines = labels_read(out, 1, err, sizeof err);
    if (!lines) musae_fail("%s (not replacing it)", err);
    clap_judge j;
    if (clap_judge_open(&j, o->clap, o->ops, err, sizeof err)) musae_fail("%s", err);
    const int64_t D = j.m.cfg.proj_dim, T = v.n;

    /* the tags' prompts */
    char **prompts = musae_xmalloc((size_t)T * sizeof *prompts);
    for (int64_t t = 0; t < T; t++) prompts[t] = fill(tpl, "{tag}", v.tag[t]);
    float *temb = musae_xmalloc((size_t)(T * D) * sizeof *temb);
    char what[4200];
    snprintf(what, sizeof what, "--vocab %s", vocab_spec);
    if (clap_judge_texts(&j, (const char *const *)prompts, T, what, temb, err, sizeof err)) musae_fail("%s", err);

    /* every clip a kept feature needs, embedded once */
    int64_t n_kept = 0;
    for (int64_t m = 0; m < f.M; m++) n_kept += f.keep[m] != 0;
    int64_t *need = musae_xmalloc((size_t)(f.C + 1) * sizeof *need), n_need = 0;
    int64_t *row_of = musae_xmalloc((size_t)(f.C + 1) * sizeof *row_of); /* clip -> row of aemb, -1 */
    for (int64_t c = 0; c < f.C; c++) row_of[c] = -1;
    for (int64_t m = 0; m < f.M; m++) {
        if (!f.keep[m]) continue;
        for (int64_t i = 0; i < f.N + FEATURES_RANDOM; i++) {
            const int32_t c = i < f.N ? f.top_clip[m * f.N + i] : f.random_clip[m * FEATURES_RANDOM + i - f.N];
            if (c >= 0 && row_of[c] < 0) row_of[c] = n_need, need[n_need++] = c;
        }
    }
    char cache[4600];
    if (o->cache) snprintf(cache, sizeof cache, "%s", o->cache);
    else clap_clips_default_cache(&j, features, cache, sizeof cache);
    LOG_INFO("%s: %lld kept feature(s), %lld tag(s) from %s, %lld clip(s) to embed with %s", features,
             (long long)n_kept, (long long)T, vocab_spec, (long long)n_need, j.identity);
    float *aemb = musae_xmalloc((size_t)(n_need * D + 1) * sizeof *aemb);
    clap_clip_stats st;
    if (clap_clips_embed(&j, &f, acts, need, n_need, cache, batch, aemb, &st, err, sizeof err)) musae_fail("%s", err);

    /* per kept feature: every tag's two means, ranked */
    char sae[4200];
    snprintf(sae, sizeof sae, "%s:%.16s", f.sae, f.sae_sha256);
    cJSON *mine = cJSON_CreateArray();
    tag_score *ts = musae_xmalloc((size_t)T * sizeof *ts);
    int64_t rnd[FEATURES_RANDOM], *top_rows = musae_xmalloc((size_t)(f.N + 1) * sizeof *top_rows);
    int64_t n_ok = 0;
    for (int64_t m = 0; m < f.M; m++) {
        if (!f.keep[m]) continue;
        const int64_t nt = valid_rows(f.top_clip + m * f.N, f.N, top_rows);
        const int64_t nr = valid_rows(f.random_clip + m * FEATURES_RANDOM, FEATURES_RANDOM, rnd);
        for (int64_t i = 0; i < nt; i++) top_rows[i] = row_of[top_rows[i]];
        for (int64_t i = 0; i < nr; i++) rnd[i] = row_of[rnd[i]];
        for (int64_t t = 0; t < T; t++) {
            ts[t].top = clap_mean_sim(temb + t * D, aemb, top_rows, nt, D);
            ts[t].random = clap_mean_sim(temb + t * D, aemb, rnd, nr, D);
            ts[t].contrast = nr ? ts[t].top - ts[t].random : 0; /* no random clips: no_signal, nothing ranked */
            ts[t].tag = t;
        }
        qsort(ts, (size_t)T, sizeof *ts, by_contrast);
        const int ok = nt > 0 && nr > 0 && ts[0].contrast > 0;
        n_ok += ok;
        cJSON *l = cJSON_CreateObject();
        cJSON_AddNumberToObject(l, "feature", (double)m);
        cJSON_AddStringToObject(l, "labeler", "clap");
        if (ok) {
            cJSON_AddStringToObject(l, "label", v.tag[ts[0].tag]);
            cJSON_AddNumberToObject(l, "score", ts[0].contrast);
        } else {
            cJSON_AddNullToObject(l, "label");
            cJSON_AddNullToObject(l, "score");
        }
        cJSON_AddStringToObject(l, "status", ok ? "ok" : "no_signal");
        cJSON *ev = cJSON_AddArrayToObject(l, "evidence");
        for (int64_t i = 0; nr && i < n_tags && i < T; i++) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "tag", v.tag[ts[i].tag]);
            cJSON_AddStringToObject(e, "vocab", v.vocab[ts[i].tag]);
            labels_put_num(e, "sim_top", ts[i].top);
            labels_put_num(e, "sim_random", ts[i].random);
            labels_put_num(e, "contrast", ts[i].contrast);
            cJSON_AddNumberToObject(e, "n_top", (double)nt);
            cJSON_AddNumberToObject(e, "n_random", (double)nr);
            cJSON_AddItemToArray(ev, e);
        }
        cJSON *src = cJSON_AddObjectToObject(l, "source");
        cJSON_AddStringToObject(src, "features", features);
        cJSON_AddStringToObject(src, "sae", sae);
        cJSON_AddStringToObject(src, "clap", j.identity);
        cJSON_AddStringToObject(src, "vocab", vocab_spec);
        cJSON_AddStringToObject(src, "template", tpl);
        cJSON_AddStringToObject(l, "musae_version", MUSAE_VERSION);
        cJSON_AddItemToArray(mine, l);
    }
    labels_replace(lines, "clap", mine);
    if (labels_write(out, lines, err, sizeof err)) musae_fail("%s", err);
    LOG_INFO("wrote %s: %lld clap line(s), %lld labelled, %lld no_signal", out, (long long)n_kept, (long long)n_ok,
             (long long)(n_kept - n_ok));

    free(top_rows);
    cJSON_Delete(lines);
    for (int64_t t = 0; t < T; t++) free(prompts[t]);
    free(prompts), free(temb), free(need), free(row_of), free(aemb), free(ts);
    clap_judge_close(&j);
    features_free(&f);
    clap_vocab_free(&v);
    return 0;
}
