/* The chat-completions client (eval/llm_client.h): curl multi, retries, cache. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/llm_client.h"
#include "host/core/check.h"
#include "host/core/log.h"

void llm_client_url(const char *endpoint, char *url, size_t cap) {
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/') n--;
    const char *tail = "/chat/completions";
    const size_t tl = strlen(tail);
    if (n >= tl && !strncmp(endpoint + n - tl, tail, tl)) snprintf(url, cap, "%.*s", (int)n, endpoint);
    else snprintf(url, cap, "%.*s%s", (int)n, endpoint, tail);
}

void llm_call_clear(llm_call *c) {
    free(c->content);
    cJSON_Delete(c->logprobs);
    char *body = c->body;
    memset(c, 0, sizeof *c);
    c->body = body;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* One transfer in flight. */
typedef struct {
    CURL *h;
    int call;            /* index into calls */
    char *buf;           /* the response body so far */
    size_t len, cap;
    double retry_after;  /* from the header, seconds; 0 when none */
} xfer;

static size_t on_body(char *p, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    const size_t n = sz * nm;
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 65536;
        while (cap < x->len + n + 1) cap *= 2;
        char *b = realloc(x->buf, cap);
        if (!b) return 0;
        x->buf = b;
        x->cap = cap;
    }
    memcpy(x->buf + x->len, p, n);
    x->len += n;
    x->buf[x->len] = 0;
    return n;
}

static size_t on_header(char *p, size_t sz, size_t nm, void *ud) {
    xfer *x = ud;
    const size_t n = sz * nm;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && !strncasecmp(p, name, sizeof name - 1)) {
        char v[64];
        snprintf(v, sizeof v, "%.*s", (int)(n - (sizeof name - 1)), p + sizeof name - 1);
        char *end;
        const double s = strtod(v, &end);
        /* delta-seconds only; an HTTP-date falls back to the backoff */
        if (end != v && isfinite(s) && s >= 0) x->retry_after = s < 600 ? s : 600;
    }
    return n;
}

/* Fills c from a 200 response body; 0, or -1 with c->error when it is not a chat completion. */
static int take_response(llm_call *c, const char *body) {
    cJSON *j = cJSON_Parse(body);
    const cJSON *ch = j ? cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0) : NULL;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    if (!cJSON_IsString(content)) {
        snprintf(c->error, sizeof c->error, "HTTP 200 but not a chat completion (no choices[0].message.content): %.160s",
                 body);
        for (char *q = c->error; *q; q++)
            if (*q == '\n' || *q == '\r') *q = ' ';
        cJSON_Delete(j);
        return -1;
    }
    c->content = strdup(content->valuestring);
    const cJSON *lp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "logprobs"), "content");
    c->logprobs = cJSON_IsArray(lp) ? cJSON_Duplicate(lp, 1) : NULL;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "usage");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(u, "cost");
    c->prompt_tokens = cJSON_IsNumber(pt) ? (int64_t)pt->valuedouble : -1;
    c->completion_tokens = cJSON_IsNumber(ct) ? (int64_t)ct->valuedouble : -1;
    c->cost = cJSON_IsNumber(cost) ? cost->valuedouble : -1;
    c->ok = 1;
    cJSON_Delete(j);
    return 0;
}

/* A server could echo the request's headers in an error body: the key never reaches an error text. */
static void scrub(char *text, const char *key) {
    if (!key || !key[0]) return;
    const size_t n = strlen(key);
    for (char *p; (p = strstr(text, key));) memset(p, '*', n);
}

static void count(llm_stats *st, const llm_call *c) {
    if (!c->ok) {
        st->failed++;
        return;
    }
    if (c->prompt_tokens > 0) st->prompt_tokens += c->prompt_tokens;
    if (c->completion_tokens > 0) st->completion_tokens += c->completion_tokens;
    if (c->cost > 0) st->cost += c->cost;
}

int llm_client_run(const llm_client_opts *o, llm_call *calls, int n, llm_stats *st, char *err, size_t errlen) {
    MUSAE_ASSERT(o->parallel >= 1, "parallel %d", o->parallel);
    /* the cache first: what was answered before is not sent again */
    char (*keys)[65] = musae_xmalloc(sizeof *keys * (size_t)(n > 0 ? n : 1));
    double *due = musae_xcalloc((size_t)(n > 0 ? n : 1), sizeof(double)); /* when the next attempt may start */
    int *state = musae_xcalloc((size_t)(n > 0 ? n : 1), sizeof(int));     /* 0 waiting, 1 in flight, 2 done */
    int left = 0;
    for (int i = 0; i < n; i++) {
        llm_call_clear(&calls[i]);
        llm_cache_key(o->url, calls[i].body, keys[i]);
        char *hit = o->cache_dir ? llm_cache_get(o->cache_dir, keys[i]) : NULL;
        if (hit && take_response(&calls[i], hit) == 0) {
            calls[i].cached = 1; /* its tokens and cost were spent by an earlier run: not counted in st */
            st->cached++;
            state[i] = 2;
        } else {
            calls[i].error[0] = 0;
            left++;
        }
        free(hit);
    }
    CURLM *m = left ? curl_multi_init() : NULL;
    if (left && !m) {
        snprintf(err, errlen, "curl_multi_init failed");
        free(keys), free(due), free(state);
        return -1;
    }
    xfer *xs = musae_xcalloc((size_t)o->parallel, sizeof(xfer));
    char auth[4200] = "";
    if (o->api_key && o->api_key[0]) snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->api_key);
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (auth[0]) hdr = curl_slist_append(hdr, auth);
    memset(auth, 0, sizeof auth); /* curl keeps its own copy */
    int in_flight = 0, next = 0;
    while (left > 0) {
        const double t = now_s();
        /* start what is due, in order, up to `parallel` */
        for (int slot = 0; slot < o->parallel && in_flight < o->parallel; slot++) {
            if (xs[slot].h) continue;
            int pick = -1;
            for (int k = 0; k < n && pick < 0; k++) {
                const int i = (next + k) % n;
                if (state[i] == 0 && due[i] <= t) pick = i;
            }
            if (pick < 0) break;
            next = (pick + 1) % n;
            xfer *x = &xs[slot];
            x->h = curl_easy_init();
            x->call = pick;
            x->len = 0;
            x->retry_after = 0;
            if (x->buf) x->buf[0] = 0;
            curl_easy_setopt(x->h, CURLOPT_URL, o->url);
            curl_easy_setopt(x->h, CURLOPT_HTTPHEADER, hdr);
            curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, calls[pick].body);
            curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(calls[pick].body));
            curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body);
            curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x);
            curl_easy_setopt(x->h, CURLOPT_HEADERFUNCTION, on_header);
            curl_easy_setopt(x->h, CURLOPT_HEADERDATA, x);
            curl_easy_setopt(x->h, CURLOPT_TIMEOUT_MS, (long)(o->timeout_s * 1000));
            curl_easy_setopt(x->h, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(x->h, CURLOPT_PRIVATE, x);
            curl_multi_add_handle(m, x->h);
            calls[pick].attempts++;
            st->sent++;
            state[pick] = 1;
            in_flight++;
        }
        int running = 0;
        curl_multi_perform(m, &running);
        CURLMsg *msg;
        int q;
        while ((msg = curl_multi_info_read(m, &q))) {
            if (msg->msg != CURLMSG_DONE) continue;
            xfer *x = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            llm_call *c = &calls[x->call];
            long code = 0;
            curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
            const CURLcode res = msg->data.result;
            int retry = 0;
            if (res != CURLE_OK) {
                snprintf(c->error, sizeof c->error, "%s (attempt %d)", curl_easy_strerror(res), c->attempts);
                retry = 1;
            } else if (code == 200) {
                const char *body = x->buf ? x->buf : "";
                if (take_response(c, body) == 0 && o->cache_dir && llm_cache_put(o->cache_dir, keys[x->call], body, err, errlen))
                    LOG_WARN("%s", err); /* the answer stands; a re-run asks again */
            } else {
                snprintf(c->error, sizeof c->error, "HTTP %ld: %.200s", code, x->buf ? x->buf : "");
                for (char *p = c->error; *p; p++)
                    if (*p == '\n' || *p == '\r') *p = ' ';
                retry = code == 429 || code >= 500;
            }
            scrub(c->error, o->api_key);
            if (retry && c->attempts <= o->retries) {
                double wait = o->backoff_s * pow(2.0, c->attempts - 1);
                if (wait > 60) wait = 60;
                if (x->retry_after > wait) wait = x->retry_after;
                LOG_INFO("request %d: %s; retrying in %.1f s", x->call, c->error, wait);
                due[x->call] = now_s() + wait;
                state[x->call] = 0;
                st->retries++;
            } else {
                state[x->call] = 2;
                left--;
                count(st, c);
            }
            curl_multi_remove_handle(m, x->h);
            curl_easy_cleanup(x->h);
            x->h = NULL;
            in_flight--;
        }
        if (left <= 0) break;
        /* sleep until a transfer has news or the next retry is due */
        double wait_ms = 1000;
        const double t2 = now_s();
        for (int i = 0; i < n; i++)
            if (state[i] == 0) {
                const double w = (due[i] - t2) * 1000;
                if (w < wait_ms) wait_ms = w < 0 ? 0 : w;
            }
        if (in_flight == o->parallel && wait_ms < 1000) wait_ms = 1000; /* no slot to start it in anyway */
        curl_multi_poll(m, NULL, 0, (int)wait_ms, NULL);
    }
    curl_slist_free_all(hdr);
    for (int s = 0; s < o->parallel; s++) free(xs[s].buf);
    free(xs);
    if (m) curl_multi_cleanup(m);
    free(keys), free(due), free(state);
    return 0;
}
