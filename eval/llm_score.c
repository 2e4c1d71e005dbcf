/* `musae score`: delphi's detection scoring of labels on audio (eval/llm_label.h, docs/LLM_LABEL.md).
 *
 * Per scored line of LABELS.jsonl: the positives are the feature's decile samples of FEATURES.h5 (/features/
 * quantile_clip, 5 clips from each of 10 deciles of clip max, 50 at most) less the exemplars the labeler was shown;
 * the negatives are up to --negatives clips where the feature never fires (no entry in /clip_feature), drawn with
 * Philox. All are shuffled together and sent --batch at a time (5, delphi's num_examples_per_scorer_prompt) with
 * the label; the model answers a list of 0/1, one per example. A batch whose answer is not such a list of the
 * right length is failed, as in delphi, and its examples left out of the metrics. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/labels_io.h"
#include "eval/llm_label.h"
#include "eval/stats.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/core/progress.h"

#define STREAM_NEGATIVES 0x5C0AEull /* counter feature·2^32 + i */
#define STREAM_SHUFFLE 0x5C0A5ull

static const char k_detect[] =
    "A feature of a neural network that models music has been described as below. You will hear {n} short music "
    "excerpts. For each excerpt, decide whether the feature, as described, is present in it. Answer with only a "
    "JSON list of {n} numbers, one per excerpt in order: 1 if the feature is present, 0 if not, e.g. {example}.\n\n"
    "Feature description: {label}";

typedef struct {
    int32_t clip;
    int positive;
    int answer;  /* 0/1; -1 when its batch failed */
    double prob; /* P(1) from the log-probs; NAN without */
} sample;

int llm_parse_detection(const char *text, int n, int *out) {
    const char *a = strchr(text, '[');
    const char *b = a ? strchr(a, ']') : NULL;
    if (!b) return -1;
    char *s = strndup(a, (size_t)(b - a + 1));
    cJSON *j = cJSON_Parse(s);
    free(s);
    int ok = cJSON_IsArray(j) && cJSON_GetArraySize(j) == n;
    for (int i = 0; ok && i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(j, i);
        ok = cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1);
        if (ok) out[i] = (int)v->valuedouble;
    }
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* "0" or "1" when a token is that digit with only spaces, brackets and commas around it; else -1. */
static int digit_token(const cJSON *tok) {
    if (!cJSON_IsString(tok)) return -1;
    int d = -1;
    for (const char *p = tok->valuestring; *p; p++) {
        if (*p == '0' || *p == '1') {
            if (d >= 0) return -1;
            d = *p - '0';
        } else if (!strchr(" []\n,", *p)) return -1;
    }
    return d;
}

/* P(1)/(P(0)+P(1)) over the top log-probs of each answer token (delphi's log_prob), into p[0..n); 0 when there
 * are exactly n answer tokens, else -1. */
static int answer_probs(const cJSON *logprobs, int n, double *p) {
    int k = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, logprobs) {
        const int d = digit_token(cJSON_GetObjectItemCaseSensitive(t, "token"));
        if (d < 0) continue;
        if (k == n) return -1;
        double p0 = 0, p1 = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(t, "top_logprobs")) {
            const int dd = digit_token(cJSON_GetObjectItemCaseSensitive(e, "token"));
            const cJSON *lp = cJSON_GetObjectItemCaseSensitive(e, "logprob");
            if (dd < 0 || !cJSON_IsNumber(lp)) continue;
            *(dd ? &p1 : &p0) += exp(lp->valuedouble);
        }
        p[k++] = p0 + p1 > 0 ? p1 / (p0 + p1) : d;
    }
    return k == n ? 0 : -1;
}

static char *subst_all(const char *tpl, const char *key, const char *val) {
    char *s = strdup(tpl);
    for (char *at; (at = strstr(s, key));) {
        const size_t n = strlen(s) - strlen(key) + strlen(val) + 1;
        char *t = musae_xmalloc(n);
        snprintf(t, n, "%.*s%s%s", (int)(at - s), s, val, at + strlen(key));
        free(s);
        s = t;
    }
    return s;
}

static int fires_in(const musae_features *F, int f, int64_t c) {
    int64_t lo = F->cf_indptr[c], hi = F->cf_indptr[c + 1];
    while (lo < hi) {
        const int64_t mid = (lo + hi) / 2;
        if (F->cf_feature[mid] < f) lo = mid + 1;
        else hi = mid;
    }
    return lo < F->cf_indptr[c + 1] && F->cf_feature[lo] == f;
}

static int named_in(const cJSON *names, const char *name) {
    const cJSON *n;
    cJSON_ArrayForEach(n, names) if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return 1;
    return 0;
}

typedef struct {
    int batch, n_pos, n_neg, no_logprobs;
} score_opts;

/* Scores one line; returns the detection object. */
static cJSON *score_feature(const llm_common *c, const score_opts *so, const llm_client_opts *co, excerpt_ctx *x,
                            int f, const cJSON *line, llm_stats *st) {
    const musae_features *F = &x->f;
    const cJSON *ev0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(line, "evidence"), 0);
    const cJSON *shown = cJSON_GetObjectItemCaseSensitive(ev0, "exemplars");
    sample *s = musae_xcalloc((size_t)(so->n_pos + so->n_neg + 1), sizeof(sample));
    int n = 0;
    for (int j = 0; j < FEATURES_PER_DECILE; j++) /* across the deciles first, so a smaller --positives spreads */
        for (int d = 0; d < FEATURES_DECILES && n < so->n_pos; d++) {
            const int32_t clip = F->quantile_clip[((int64_t)f * FEATURES_DECILES + d) * FEATURES_PER_DECILE + j];
            if (clip >= 0 && !named_in(shown, F->clip_path[clip])) s[n].clip = clip, s[n++].positive = 1;
        }
    int32_t *cand = musae_xmalloc(sizeof(int32_t) * (size_t)(F->C > 0 ? F->C : 1));
    int64_t nc = 0;
    for (int64_t k = 0; k < F->C; k++)
        if (!fires_in(F, f, k)) cand[nc++] = (int32_t)k;
    for (int64_t i = 0; i < nc && i < so->n_neg; i++) { /* partial Fisher-Yates */
        const uint64_t r = musae_philox(c->seed, STREAM_NEGATIVES, (uint64_t)f << 32 | (uint64_t)i).v[0];
        const int64_t k = i + (int64_t)(r % (uint64_t)(nc - i));
        const int32_t t = cand[i];
        cand[i] = cand[k], cand[k] = t;
        s[n].clip = cand[i], s[n++].positive = 0;
    }
    free(cand);
    for (int i = n - 1; i > 0; i--) {
        const int k = (int)(musae_philox(c->seed, STREAM_SHUFFLE, (uint64_t)f << 32 | (uint64_t)i).v[0] % (uint32_t)(i + 1));
        const sample t = s[i];
        s[i] = s[k], s[k] = t;
    }
    /* the excerpts; a clip without audio is left out */
    float **aud = musae_xcalloc((size_t)(n > 0 ? n : 1), sizeof(float *));
    int64_t *na = musae_xcalloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
    int m = 0;
    char err[1024];
    for (int i = 0; i < n; i++) {
        const int32_t peak = s[i].positive ? -1 : F->clip_frames[s[i].clip] / 2;
        if (llm_excerpt(x, f, s[i].clip, peak, c->seconds, c->audio_rate, &aud[m], &na[m], err, sizeof err)) {
            LOG_WARN("feature %d: %s", f, err);
            continue;
        }
        s[m++] = s[i];
    }
    n = m;
    /* the label as the model reads it */
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(line, "label");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(ev0, "description");
    char label[4096];
    if (cJSON_IsString(desc) && desc->valuestring[0])
        snprintf(label, sizeof label, "%s. %s", lab->valuestring, desc->valuestring);
    else snprintf(label, sizeof label, "%s", lab->valuestring);
    const int nb = (n + so->batch - 1) / so->batch;
    llm_call *calls = musae_xcalloc((size_t)(nb > 0 ? nb : 1), sizeof(llm_call));
    for (int b = 0; b < nb; b++) {
        const int i0 = b * so->batch, k = n - i0 < so->batch ? n - i0 : so->batch;
        char num[16], ex[64] = "[";
        snprintf(num, sizeof num, "%d", k);
        for (int i = 0; i < k; i++) strcat(ex, i ? (i % 2 ? ",0" : ",1") : "1");
        strcat(ex, "]");
        char *t1 = subst_all(k_detect, "{n}", num), *t2 = subst_all(t1, "{example}", ex);
        char *text = subst_all(t2, "{label}", label);
        cJSON *content = cJSON_CreateArray();
        llm_add_text(content, text);
        free(t1), free(t2), free(text);
        for (int i = 0; i < k; i++) {
            char cap[32];
            snprintf(cap, sizeof cap, "Excerpt %d:", i + 1);
            llm_add_text(content, cap);
            llm_add_audio(content, aud[i0 + i], na[i0 + i], c->audio_rate);
        }
        cJSON *body = llm_chat_body(c->model, content);
        if (!so->no_logprobs) {
            cJSON_AddTrueToObject(body, "logprobs");
            cJSON_AddNumberToObject(body, "top_logprobs", 5);
        }
        calls[b].body = cJSON_PrintUnformatted(body);
        cJSON_Delete(body);
    }
    for (int i = 0; i < n; i++) free(aud[i]);
    free(aud), free(na);
    if (llm_client_run(co, calls, nb, st, err, sizeof err)) musae_fail("%s", err);
    int failed = 0, all_probs = 1;
    char first_error[600] = "";
    for (int b = 0; b < nb; b++) {
        const int i0 = b * so->batch, k = n - i0 < so->batch ? n - i0 : so->batch;
        int ans[64];
        double p[64];
        const char *why = NULL;
        if (!calls[b].ok) why = calls[b].error;
        else if (llm_parse_detection(calls[b].content, k, ans)) why = "the answer is not a list of as many 0/1 as excerpts";
        if (why) {
            failed++;
            if (!first_error[0]) snprintf(first_error, sizeof first_error, "%s", why);
            for (int i = 0; i < k; i++) s[i0 + i].answer = -1, s[i0 + i].prob = NAN;
            continue;
        }
        const int have_p = calls[b].logprobs && answer_probs(calls[b].logprobs, k, p) == 0;
        all_probs &= have_p;
        for (int i = 0; i < k; i++) s[i0 + i].answer = ans[i], s[i0 + i].prob = have_p ? p[i] : NAN;
    }
    for (int b = 0; b < nb; b++) {
        free(calls[b].body);
        llm_call_clear(&calls[b]);
    }
    free(calls);
    /* the metrics over the answered examples */
    double tp = 0, fp = 0, tn = 0, fn = 0;
    int npos = 0, nneg = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].answer < 0) continue;
        npos += s[i].positive, nneg += !s[i].positive;
        if (s[i].positive) *(s[i].answer ? &tp : &fn) += 1;
        else *(s[i].answer ? &fp : &tn) += 1;
    }
    const double recall = npos ? tp / npos : NAN, tnr = nneg ? tn / nneg : NAN;
    const double precision = tp + fp > 0 ? tp / (tp + fp) : NAN;
    const double f1 = isfinite(precision) && isfinite(recall) ? (precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0) : NAN;
    double auroc = NAN;
    if (all_probs && !so->no_logprobs) { /* the answered examples' P(yes), positives against negatives */
        double *pos = musae_xmalloc(sizeof(double) * (size_t)(npos + 1));
        double *neg = musae_xmalloc(sizeof(double) * (size_t)(nneg + 1));
        int np = 0, nn = 0;
        for (int i = 0; i < n; i++)
            if (s[i].answer >= 0) *(s[i].positive ? &pos[np++] : &neg[nn++]) = s[i].prob;
        auroc = stats_auroc(pos, npos, neg, nneg);
        free(pos), free(neg);
    }
    free(s);
    cJSON *d = cJSON_CreateObject();
    labels_put_num(d, "balanced_accuracy", isfinite(recall) && isfinite(tnr) ? (recall + tnr) / 2 : NAN);
    labels_put_num(d, "precision", precision);
    labels_put_num(d, "recall", recall);
    labels_put_num(d, "f1", f1);
    labels_put_num(d, "auroc", auroc);
    cJSON_AddNumberToObject(d, "n_positive", npos);
    cJSON_AddNumberToObject(d, "n_negative", nneg);
    cJSON_AddNumberToObject(d, "n_batches", nb);
    cJSON_AddNumberToObject(d, "n_failed_batches", failed);
    if (first_error[0]) cJSON_AddStringToObject(d, "error", first_error);
    return d;
}

int llm_score_run(const llm_score_opts *o) {
    const llm_common c = o->c;
    const score_opts so = {o->batch, o->n_pos, o->n_neg, o->no_logprobs};
    const char *labels = o->labels, *features = o->features, *only = o->labeler, *out = o->out ? o->out : o->labels;
    const llm_client_opts co = o->client;
    char err[1024];
    cJSON *lines = labels_read(labels, 0, err, sizeof err);
    if (!lines) musae_fail("%s", err);
    excerpt_ctx x;
    if (excerpt_open(&x, features, c.sae, c.acts, err, sizeof err)) musae_fail("%s", err);
    int todo = 0;
    cJSON *l;
    cJSON_ArrayForEach(l, lines) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(l, "status");
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(l, "label");
        const double f = cJSON_GetObjectItemCaseSensitive(l, "feature")->valuedouble;
        if (only && strcmp(cJSON_GetObjectItemCaseSensitive(l, "labeler")->valuestring, only)) continue;
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok") || !cJSON_IsString(lab)) continue;
        if (f >= (double)x.f.M) musae_fail("%s: feature %.0f is out of range for %s (%lld latents)", labels, f, features,
                                          (long long)x.f.M);
        todo++;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) musae_fail("libcurl: global init failed");
    LOG_INFO("%s: scoring %d labels with %s at %s", labels, todo, c.model, co.url);
    llm_stats st = {0};
    musae_progress pr;
    musae_progress_init(&pr, "score", "labels", todo);
    cJSON_ArrayForEach(l, lines) {
        const cJSON *sts = cJSON_GetObjectItemCaseSensitive(l, "status");
        if (only && strcmp(cJSON_GetObjectItemCaseSensitive(l, "labeler")->valuestring, only)) continue;
        if (!cJSON_IsString(sts) || strcmp(sts->valuestring, "ok") ||
            !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(l, "label")))
            continue;
        const int f = (int)cJSON_GetObjectItemCaseSensitive(l, "feature")->valuedouble;
        cJSON *det = score_feature(&c, &so, &co, &x, f, l, &st);
        cJSON *scores = cJSON_GetObjectItemCaseSensitive(l, "scores");
        if (!cJSON_IsObject(scores)) {
            cJSON_DeleteItemFromObjectCaseSensitive(l, "scores");
            scores = cJSON_AddObjectToObject(l, "scores");
        }
        cJSON_DeleteItemFromObjectCaseSensitive(scores, "detection");
        cJSON_AddItemToObject(scores, "detection", det);
        cJSON *scorer = cJSON_GetObjectItemCaseSensitive(scores, "scorer");
        if (!cJSON_IsObject(scorer)) {
            cJSON_DeleteItemFromObjectCaseSensitive(scores, "scorer");
            scorer = cJSON_AddObjectToObject(scores, "scorer");
        }
        cJSON_DeleteItemFromObjectCaseSensitive(scorer, "llm");
        cJSON *who = cJSON_AddObjectToObject(scorer, "llm");
        cJSON_AddStringToObject(who, "endpoint", c.endpoint);
        cJSON_AddStringToObject(who, "model", c.model);
        char extra[256];
        snprintf(extra, sizeof extra, "%lld requests failed, %lld sent, %lld cached, %lld retries, tokens %lld+%lld",
                 (long long)st.failed, (long long)st.sent, (long long)st.cached, (long long)st.retries,
                 (long long)st.prompt_tokens, (long long)st.completion_tokens);
        musae_progress_add(&pr, 1, extra);
    }
    musae_progress_finish(&pr, NULL);
    const int rc = labels_write(out, lines, err, sizeof err);
    if (rc) LOG_ERROR("%s", err);
    else
        LOG_INFO("%s: %d labels scored; %lld requests sent, %lld answered from the cache, %lld retries, %lld failed; "
                 "tokens %lld prompt + %lld completion; cost %.6f (as reported by the server)",
                 out, todo, (long long)st.sent, (long long)st.cached, (long long)st.retries, (long long)st.failed,
                 (long long)st.prompt_tokens, (long long)st.completion_tokens, st.cost);
    cJSON_Delete(lines);
    excerpt_close(&x);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
