/* `musae label --labeler llm` (eval/llm_label.h, docs/LLM_LABEL.md). */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/labels_io.h"
#include "eval/llm_label.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/core/progress.h"
#include "host/core/sha256.h"

#define STREAM_EXEMPLARS 0x11AB5ull /* Philox stream of the exemplar shuffle, counter feature·64 + i */

enum { MAX_EXEMPLARS = LLM_LABEL_MAX_EXEMPLARS };

/* music-sae's instructions (wave2_anchors.md §4.3), asking for docs/LABELS.md's fields. {n} is the number of
 * excerpts and {how} how they are given. */
static const char k_prompt[] =
    "You will hear {n} short music excerpts, {how}. Each is a moment where one feature of a neural network that "
    "models music is strongly active. Find the musical concept they share: a genre, an instrument, a playing or "
    "production technique, a rhythm, a harmony, a timbre, a mood, or something subtler. Describe the shared "
    "concept, not the individual excerpts, and do not pad the answer.\n"
    "Answer with only a JSON object with these keys:\n"
    "  \"label\": a name for the concept, a few words;\n"
    "  \"confidence\": a number from 0 to 1, how sure you are that the excerpts share it;\n"
    "  \"description\": one or two sentences describing the concept;\n"
    "  \"concepts\": a list of short strings naming the musical concepts you hear in all of them.";

static char *subst(const char *tpl, const char *key, const char *val) {
    const char *p = strstr(tpl, key);
    if (!p) return strdup(tpl);
    const size_t n = strlen(tpl) - strlen(key) + strlen(val) + 1;
    char *s = musae_xmalloc(n);
    snprintf(s, n, "%.*s%s%s", (int)(p - tpl), tpl, val, p + strlen(key));
    return s;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) musae_fail("--prompt-file: %s: cannot open", path);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char chunk[4096];
    for (size_t k; (k = fread(chunk, 1, sizeof chunk, f)) > 0;) fwrite(chunk, 1, k, m);
    fclose(f);
    fclose(m);
    if (!len) musae_fail("--prompt-file: %s: empty", path);
    return buf;
}

/* ---- answers --------------------------------------------------------------------------------------------- */

cJSON *llm_parse_label(const char *text, char *why, size_t n) {
    /* one optional ``` fence (with or without "json") around the object, nothing else */
    const char *s = text;
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') s++;
    size_t len = strlen(s);
    while (len && strchr(" \n\r\t", s[len - 1])) len--;
    char *body = strndup(s, len);
    if (!strncmp(body, "```", 3) && len >= 6 && !strcmp(body + len - 3, "```")) {
        char *nl = strchr(body, '\n');
        body[len - 3] = 0;
        if (nl) memmove(body, nl + 1, strlen(nl + 1) + 1);
        else body[0] = 0;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(body, &end, 0);
    if (j && end) {
        while (*end && strchr(" \n\r\t", *end)) end++;
        if (*end) cJSON_Delete(j), j = NULL;
    }
    free(body);
    const char *bad = NULL;
    if (!cJSON_IsObject(j)) bad = "the answer is not a JSON object";
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(j, "label");
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(j, "confidence");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(j, "description");
    const cJSON *conc = cJSON_GetObjectItemCaseSensitive(j, "concepts");
    if (!bad && (!cJSON_IsString(label) || !label->valuestring[0])) bad = "\"label\" is not a non-empty string";
    if (!bad && (strchr(label->valuestring, '\n') || strlen(label->valuestring) > 200))
        bad = "\"label\" is not one line of at most 200 bytes";
    if (!bad && (!cJSON_IsNumber(conf) || !(conf->valuedouble >= 0 && conf->valuedouble <= 1)))
        bad = "\"confidence\" is not a number in [0, 1]";
    if (!bad && !cJSON_IsString(desc)) bad = "\"description\" is not a string";
    if (!bad && !cJSON_IsArray(conc)) bad = "\"concepts\" is not an array";
    const cJSON *c;
    if (!bad) cJSON_ArrayForEach(c, conc) if (!cJSON_IsString(c)) bad = "\"concepts\" holds a non-string";
    if (bad) {
        snprintf(why, n, "%s", bad);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* ---- one feature ----------------------------------------------------------------------------------------- */

typedef struct {
    int feature;
    int n_shown, n_held;
    int32_t shown[MAX_EXEMPLARS], held[MAX_EXEMPLARS]; /* rows of /clips */
    cJSON *req;          /* the first request, kept to build the retry */
    char *body[2];       /* first request, retry */
    char prompt_sha[65];
    char error[600];     /* set when the feature failed before asking */
    llm_call call[2];
} job;

/* The exemplars of f: its top clips, shuffled; the last 20 % held out. */
static void pick_exemplars(const musae_features *F, int f, int want, uint64_t seed, job *j) {
    int32_t v[MAX_EXEMPLARS];
    int n = 0;
    for (int64_t t = 0; t < F->N && n < want; t++)
        if (F->top_clip[(int64_t)f * F->N + t] >= 0) v[n++] = F->top_clip[(int64_t)f * F->N + t];
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        const int k = (int)(musae_philox(seed, STREAM_EXEMPLARS, (uint64_t)f * 64 + (uint64_t)i).v[0] % (uint32_t)(i + 1));
        const int32_t t = v[i];
        v[i] = v[k], v[k] = t;
    }
    j->n_held = n / 5;
    j->n_shown = n - j->n_held;
    memcpy(j->shown, v, sizeof(int32_t) * (size_t)j->n_shown);
    memcpy(j->held, v + j->n_shown, sizeof(int32_t) * (size_t)j->n_held);
}

static int clip_peak(const musae_features *F, int f, int32_t clip) {
    for (int64_t t = 0; t < F->N; t++)
        if (F->top_clip[(int64_t)f * F->N + t] == clip) return F->top_clip_frame[(int64_t)f * F->N + t];
    return -1;
}

static cJSON *schema(void) {
    cJSON *rf = cJSON_CreateObject();
    cJSON_AddStringToObject(rf, "type", "json_schema");
    cJSON *js = cJSON_AddObjectToObject(rf, "json_schema");
    cJSON_AddStringToObject(js, "name", "feature_label");
    cJSON *s = cJSON_AddObjectToObject(js, "schema");
    cJSON_AddStringToObject(s, "type", "object");
    cJSON *p = cJSON_AddObjectToObject(s, "properties");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "label"), "type", "string");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "confidence"), "type", "number");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "description"), "type", "string");
    cJSON *c = cJSON_AddObjectToObject(p, "concepts");
    cJSON_AddStringToObject(c, "type", "array");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "items"), "type", "string");
    const char *req[] = {"label", "confidence", "description", "concepts"};
    cJSON_AddItemToObject(s, "required", cJSON_CreateStringArray(req, 4));
    return rf;
}

/* Builds j's first request; 0, or -1 with j->error (no exemplar audio at all). */
static int build_request(const llm_label_opts *o, excerpt_ctx *x, const char *tpl, job *j) {
    const musae_features *F = &x->f;
    char err[1024];
    float *aud[MAX_EXEMPLARS] = {0};
    int64_t na[MAX_EXEMPLARS] = {0};
    int kept = 0;
    for (int i = 0; i < j->n_shown; i++) {
        const int rc = llm_excerpt(x, j->feature, j->shown[i], clip_peak(F, j->feature, j->shown[i]), o->c.seconds,
                                   o->c.audio_rate, &aud[i], &na[i], err, sizeof err);
        if (rc) {
            LOG_WARN("feature %d: %s", j->feature, err);
            aud[i] = NULL;
            if (rc < 0) snprintf(j->error, sizeof j->error, "excerpt: %s", err);
        } else kept++;
    }
    if (!kept) {
        if (!j->error[0]) snprintf(j->error, sizeof j->error, "no exemplar has audio (%s)", err);
        return -1;
    }
    j->error[0] = 0;
    char num[32];
    snprintf(num, sizeof num, "%d", kept);
    char *t1 = subst(tpl, "{n}", num);
    char *text = subst(t1, "{how}", o->one_audio ? "concatenated into one recording with half a second of silence "
                                                   "between them"
                                                 : "given one after another as separate audio inputs");
    free(t1);
    musae_sha256 h;
    musae_sha256_init(&h);
    musae_sha256_update(&h, text, strlen(text));
    musae_sha256_hex(&h, j->prompt_sha);
    cJSON *content = cJSON_CreateArray();
    llm_add_text(content, text);
    free(text);
    if (o->one_audio) {
        const int64_t gap = o->c.audio_rate / 2;
        int64_t total = 0;
        for (int i = 0; i < j->n_shown; i++)
            if (aud[i]) total += na[i] + (total ? gap : 0);
        float *all = musae_xcalloc((size_t)total, sizeof(float));
        int64_t at = 0;
        for (int i = 0; i < j->n_shown; i++)
            if (aud[i]) {
                if (at) at += gap;
                memcpy(all + at, aud[i], sizeof(float) * (size_t)na[i]);
                at += na[i];
            }
        llm_add_audio(content, all, total, o->c.audio_rate);
        free(all);
    } else {
        int k = 0;
        for (int i = 0; i < j->n_shown; i++)
            if (aud[i]) {
                char cap[32];
                snprintf(cap, sizeof cap, "Excerpt %d:", ++k);
                llm_add_text(content, cap);
                llm_add_audio(content, aud[i], na[i], o->c.audio_rate);
            }
    }
    /* the clips that could not be read are not claimed as shown */
    int w = 0;
    for (int i = 0; i < j->n_shown; i++)
        if (aud[i]) j->shown[w++] = j->shown[i];
    j->n_shown = w;
    for (int i = 0; i < MAX_EXEMPLARS; i++) free(aud[i]);
    j->req = llm_chat_body(o->c.model, content);
    if (!o->no_schema) cJSON_AddItemToObject(j->req, "response_format", schema());
    j->body[0] = cJSON_PrintUnformatted(j->req);
    return 0;
}

/* The retry of a malformed answer: the conversation so far and the reason. */
static char *retry_body(const job *j, const char *answer, const char *why) {
    cJSON *r = cJSON_Duplicate(j->req, 1);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(r, "messages");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "role", "assistant");
    cJSON_AddStringToObject(a, "content", answer);
    cJSON_AddItemToArray(msgs, a);
    char text[512];
    snprintf(text, sizeof text,
             "That answer cannot be used: %s. Answer again with only the JSON object with the keys label, "
             "confidence, description and concepts.",
             why);
    cJSON *u = cJSON_CreateObject();
    cJSON_AddStringToObject(u, "role", "user");
    cJSON_AddStringToObject(u, "content", text);
    cJSON_AddItemToArray(msgs, u);
    char *s = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return s;
}

static cJSON *clip_names(const musae_features *F, const int32_t *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(F->clip_path[v[i]]));
    return a;
}

static void add_tokens(cJSON *ev, const llm_call *c, int n) {
    int64_t p = 0, q = 0;
    int have_p = 0, have_q = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].prompt_tokens >= 0) p += c[i].prompt_tokens, have_p = 1;
        if (c[i].completion_tokens >= 0) q += c[i].completion_tokens, have_q = 1;
    }
    cJSON *t = cJSON_AddObjectToObject(ev, "tokens");
    if (have_p) cJSON_AddNumberToObject(t, "prompt", (double)p);
    else cJSON_AddNullToObject(t, "prompt");
    if (have_q) cJSON_AddNumberToObject(t, "completion", (double)q);
    else cJSON_AddNullToObject(t, "completion");
}

/* The LABELS line of a finished job (docs/LABELS.md). */
static cJSON *make_line(const llm_label_opts *o, const musae_features *F, const job *j, const cJSON *answer,
                        const char *error, const char *raw, int n_calls) {
    cJSON *l = cJSON_CreateObject();
    cJSON_AddNumberToObject(l, "feature", j->feature);
    cJSON_AddStringToObject(l, "labeler", "llm");
    if (answer) {
        cJSON_AddStringToObject(l, "label", cJSON_GetObjectItemCaseSensitive(answer, "label")->valuestring);
        cJSON_AddNumberToObject(l, "score", cJSON_GetObjectItemCaseSensitive(answer, "confidence")->valuedouble);
        cJSON_AddStringToObject(l, "status", "ok");
    } else {
        cJSON_AddNullToObject(l, "label");
        cJSON_AddNullToObject(l, "score");
        cJSON_AddStringToObject(l, "status", "failed");
        cJSON_AddStringToObject(l, "error", error);
        if (raw) cJSON_AddStringToObject(l, "raw", raw);
        else cJSON_AddNullToObject(l, "raw");
    }
    cJSON *evs = cJSON_AddArrayToObject(l, "evidence");
    cJSON *ev = cJSON_CreateObject();
    if (answer) {
        cJSON_AddStringToObject(ev, "description", cJSON_GetObjectItemCaseSensitive(answer, "description")->valuestring);
        cJSON_AddItemToObject(ev, "concepts", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(answer, "concepts"), 1));
        cJSON_AddNumberToObject(ev, "confidence", cJSON_GetObjectItemCaseSensitive(answer, "confidence")->valuedouble);
    }
    cJSON_AddItemToObject(ev, "exemplars", clip_names(F, j->shown, j->n_shown));
    cJSON_AddItemToObject(ev, "held_out", clip_names(F, j->held, j->n_held));
    if (j->prompt_sha[0]) cJSON_AddStringToObject(ev, "prompt_sha256", j->prompt_sha);
    else cJSON_AddNullToObject(ev, "prompt_sha256");
    add_tokens(ev, j->call, n_calls);
    cJSON_AddItemToArray(evs, ev);
    cJSON *src = cJSON_AddObjectToObject(l, "source");
    cJSON_AddStringToObject(src, "features", o->features);
    char sae[4200];
    snprintf(sae, sizeof sae, "%s:%.16s", F->sae, F->sae_sha256);
    cJSON_AddStringToObject(src, "sae", sae);
    cJSON_AddStringToObject(src, "endpoint", o->c.endpoint);
    cJSON_AddStringToObject(src, "model", o->c.model);
    cJSON_AddStringToObject(l, "musae_version", MUSAE_VERSION);
    return l;
}

static int in_list(const int *v, int n, int f) {
    for (int i = 0; i < n; i++)
        if (v[i] == f) return 1;
    return 0;
}

int llm_label_run(const llm_label_opts *o) {
    char err[1024];
    const llm_client_opts co = o->client;
    char *tpl = o->prompt_file ? read_text(o->prompt_file) : strdup(k_prompt);
    cJSON *lines = labels_read(o->out, 1, err, sizeof err);
    if (!lines) musae_fail("%s", err);
    excerpt_ctx x;
    if (excerpt_open(&x, o->features, o->c.sae, o->c.acts, err, sizeof err)) musae_fail("%s", err);
    const musae_features *F = &x.f;
    int *feats = musae_xmalloc(sizeof(int) * (size_t)(F->M > 0 ? F->M : 1));
    int nf = 0;
    for (int64_t f = 0; f < F->M; f++)
        if (F->keep[f] && !F->dead[f] && (!o->n_only || in_list(o->only, o->n_only, (int)f)) &&
            (!o->max_features || nf < o->max_features))
            feats[nf++] = (int)f;
    const int want = o->exemplars < F->N ? o->exemplars : (int)F->N;
    LOG_INFO("%s: labelling %d features with %s at %s (%d exemplars each, %d shown)", o->features, nf, o->c.model,
             co.url, want, want - want / 5);
    if (curl_global_init(CURL_GLOBAL_DEFAULT)) musae_fail("libcurl: global init failed");
    cJSON *mine = cJSON_CreateArray();
    llm_stats st = {0};
    int64_t failed = 0;
    musae_progress pr;
    musae_progress_init(&pr, "label", "features", nf);
    const int chunk = co.parallel * 2;
    job *jobs = musae_xcalloc((size_t)chunk, sizeof(job));
    llm_call *calls = musae_xcalloc((size_t)chunk, sizeof(llm_call));
    int *idx = musae_xmalloc(sizeof(int) * (size_t)chunk);
    for (int c0 = 0; c0 < nf; c0 += chunk) {
        const int nc = nf - c0 < chunk ? nf - c0 : chunk;
        int nq = 0;
        for (int i = 0; i < nc; i++) {
            job *j = &jobs[i];
            memset(j, 0, sizeof *j);
            j->feature = feats[c0 + i];
            pick_exemplars(F, j->feature, want, o->c.seed, j);
            if (!j->n_shown) snprintf(j->error, sizeof j->error, "no top clips");
            else if (build_request(o, &x, tpl, j) == 0) {
                calls[nq].body = j->body[0];
                idx[nq++] = i;
            }
        }
        if (llm_client_run(&co, calls, nq, &st, err, sizeof err)) musae_fail("%s", err);
        /* the answers; malformed ones asked again once */
        int nr = 0;
        int *ridx = musae_xmalloc(sizeof(int) * (size_t)(nq > 0 ? nq : 1)); /* the job of each retry */
        char why[256];
        for (int q = 0; q < nq; q++) {
            job *j = &jobs[idx[q]];
            j->call[0] = calls[q];
            memset(&calls[q], 0, sizeof calls[q]);
            if (!j->call[0].ok) continue;
            cJSON *a = llm_parse_label(j->call[0].content, why, sizeof why);
            if (a) {
                cJSON_Delete(a);
                continue;
            }
            LOG_INFO("feature %d: %s; asking again", j->feature, why);
            j->body[1] = retry_body(j, j->call[0].content, why);
            calls[nr].body = j->body[1]; /* nr <= q: calls[q] was taken above */
            ridx[nr++] = idx[q];
        }
        if (nr && llm_client_run(&co, calls, nr, &st, err, sizeof err)) musae_fail("%s", err);
        for (int r = 0; r < nr; r++) {
            jobs[ridx[r]].call[1] = calls[r];
            memset(&calls[r], 0, sizeof calls[r]);
        }
        free(ridx);
        /* the lines */
        for (int i = 0; i < nc; i++) {
            job *j = &jobs[i];
            cJSON *line;
            if (j->error[0]) line = make_line(o, F, j, NULL, j->error, NULL, 0);
            else {
                const int last = j->body[1] ? 1 : 0;
                const llm_call *c = &j->call[last];
                cJSON *a = c->ok ? llm_parse_label(c->content, why, sizeof why) : NULL;
                if (a) line = make_line(o, F, j, a, NULL, NULL, last + 1);
                else if (!c->ok) line = make_line(o, F, j, NULL, c->error, NULL, last + 1);
                else {
                    char e[400];
                    snprintf(e, sizeof e, "malformed answer after the retry: %s", why);
                    line = make_line(o, F, j, NULL, e, c->content, last + 1);
                }
                cJSON_Delete(a);
            }
            if (strcmp(cJSON_GetObjectItemCaseSensitive(line, "status")->valuestring, "ok")) {
                failed++;
                LOG_WARN("feature %d: failed: %s", j->feature, cJSON_GetObjectItemCaseSensitive(line, "error")->valuestring);
            }
            cJSON_AddItemToArray(mine, line);
            for (int k = 0; k < 2; k++) {
                llm_call_clear(&j->call[k]);
                free(j->body[k]);
            }
            cJSON_Delete(j->req);
        }
        char extra[256];
        snprintf(extra, sizeof extra, "%lld failed, %lld sent, %lld cached, %lld retries, tokens %lld+%lld%s",
                 (long long)failed, (long long)st.sent, (long long)st.cached, (long long)st.retries,
                 (long long)st.prompt_tokens, (long long)st.completion_tokens, st.cost > 0 ? ", cost reported" : "");
        musae_progress_add(&pr, nc, extra);
    }
    musae_progress_finish(&pr, NULL);
    labels_replace(lines, "llm", mine);
    const int rc = labels_write(o->out, lines, err, sizeof err);
    if (rc) LOG_ERROR("%s", err);
    else
        LOG_INFO("%s: %d features labelled, %lld failed; %lld requests sent, %lld answered from the cache, %lld "
                 "retries; tokens %lld prompt + %lld completion; cost %.6f (as reported by the server)",
                 o->out, nf, (long long)failed, (long long)st.sent, (long long)st.cached, (long long)st.retries,
                 (long long)st.prompt_tokens, (long long)st.completion_tokens, st.cost);
    cJSON_Delete(lines);
    free(jobs), free(calls), free(idx), free(feats), free(tpl);
    excerpt_close(&x);
    curl_global_cleanup();
    return rc ? 1 : 0;
}
