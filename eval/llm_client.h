/* The client of an OpenAI-compatible chat-completions endpoint (docs/LLM_LABEL.md), for the LLM labeler and the
 * detection scorer: libcurl's multi interface with at most `parallel` requests in flight, retries with
 * exponential backoff on 429, 5xx, timeouts and broken connections (a Retry-After header in seconds wins when it
 * asks for longer), and a cache on disk of every answered request, keyed by the sha256 of the URL and the request
 * body, so a re-run or a resumed run sends nothing twice (eval/llm_cache.c).
 *
 * The API key goes only into the Authorization header of the requests: it is never logged, printed, cached or
 * part of the cache key. */
#ifndef MUSAE_LLM_CLIENT_H
#define MUSAE_LLM_CLIENT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char url[4096];          /* the chat-completions URL (llm_client_url) */
    const char *api_key;     /* NULL or "": no Authorization header */
    int parallel;            /* requests in flight at most (>= 1) */
    double timeout_s;        /* one attempt, connection to last byte */
    int retries;             /* further attempts after a retryable failure */
    double backoff_s;        /* the first wait; doubled per retry, at most 60 s */
    const char *cache_dir;   /* NULL: no cache */
} llm_client_opts;

/* One request and what came of it. */
typedef struct {
    char *body;              /* in: the request JSON (the caller's) */
    int ok;                  /* 1: HTTP 200 with choices[0].message.content a string */
    char *content;           /* that content (malloc'd) when ok */
    cJSON *logprobs;         /* choices[0].logprobs.content when the server sent it, else NULL (owned) */
    int64_t prompt_tokens, completion_tokens; /* usage as reported, -1 when not */
    double cost;             /* usage.cost when reported (OpenRouter), else -1 */
    int attempts;            /* requests sent for it (0 when answered from the cache) */
    int cached;              /* answered from the cache */
    char error[512];         /* when !ok: one line (HTTP status and the start of the body, or curl's reason) */
} llm_call;

/* A run's totals: requests sent (attempts), answered from the cache, retried, failed; tokens and cost as the
 * server reported them for the answers received in this run (not for cached ones). */
typedef struct {
    int64_t sent, cached, retries, failed;
    int64_t prompt_tokens, completion_tokens;
    double cost;
} llm_stats;

/* endpoint as the user gave it ("http://host:8000/v1" or the full ".../chat/completions") -> the URL to post to. */
void llm_client_url(const char *endpoint, char *url, size_t cap);
/* Runs every call (answers from the cache first), adding to st. 0, or -1 when curl cannot start (err). A failed
 * call is not an error of the run: it has ok = 0 and its reason. */
int llm_client_run(const llm_client_opts *o, llm_call *calls, int n, llm_stats *st, char *err, size_t errlen);
/* Frees what a run put in c (not c->body) and zeroes the results. */
void llm_call_clear(llm_call *c);

/* The cache (eval/llm_cache.c): <dir>/<sha256 of url NUL body>.json holds the server's response body, written
 * atomically (temporary file, fsync, rename). get: the body (malloc'd) or NULL. put: 0 or -1 (err). */
void llm_cache_key(const char *url, const char *body, char hex[65]);
char *llm_cache_get(const char *dir, const char *key);
int llm_cache_put(const char *dir, const char *key, const char *response, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LLM_CLIENT_H */
