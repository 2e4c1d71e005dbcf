/* What the LLM labeler and the detection scorer share (docs/LLM_LABEL.md): their endpoint options, excerpts as
 * WAV `input_audio` parts (plain base64, no data: prefix), and the request's skeleton. */
#ifndef MUSAE_LLM_REQUEST_H
#define MUSAE_LLM_REQUEST_H

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/excerpt.h"
#include "eval/llm_client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The options both verbs take. */
typedef struct {
    const char *endpoint, *model, *key_env, *cache, *sae, *acts;
    int parallel, retries, no_cache, audio_rate;
    double timeout_s, backoff_s, seconds;
    uint64_t seed;
} llm_common;

enum { LLM_OPT_ENDPOINT = 300, LLM_OPT_MODEL, LLM_OPT_KEY_ENV, LLM_OPT_PARALLEL, LLM_OPT_TIMEOUT, LLM_OPT_RETRIES,
       LLM_OPT_BACKOFF, LLM_OPT_CACHE, LLM_OPT_NO_CACHE, LLM_OPT_AUDIO_RATE, LLM_OPT_SECONDS, LLM_OPT_SEED,
       LLM_OPT_SAE, LLM_OPT_ACTS, LLM_OPT_LAST };
#define LLM_COMMON_OPTIONS                                                                                    \
    {"endpoint", required_argument, NULL, LLM_OPT_ENDPOINT}, {"llm-model", required_argument, NULL, LLM_OPT_MODEL}, \
        {"api-key-env", required_argument, NULL, LLM_OPT_KEY_ENV},                                            \
        {"parallel", required_argument, NULL, LLM_OPT_PARALLEL},                                              \
        {"timeout", required_argument, NULL, LLM_OPT_TIMEOUT}, {"retries", required_argument, NULL, LLM_OPT_RETRIES}, \
        {"backoff", required_argument, NULL, LLM_OPT_BACKOFF}, {"cache", required_argument, NULL, LLM_OPT_CACHE},   \
        {"no-cache", no_argument, NULL, LLM_OPT_NO_CACHE},                                                    \
        {"audio-rate", required_argument, NULL, LLM_OPT_AUDIO_RATE},                                          \
        {"seconds", required_argument, NULL, LLM_OPT_SECONDS}, {"seed", required_argument, NULL, LLM_OPT_SEED},    \
        {"sae", required_argument, NULL, LLM_OPT_SAE}, {"acts", required_argument, NULL, LLM_OPT_ACTS}
#define LLM_COMMON_USAGE                                                                                      \
    "  --endpoint URL       the server's OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (required;\n" \
    "                       /chat/completions is appended unless the URL ends with it)\n"                    \
    "  --llm-model NAME     the model name the server knows (required)\n"                                    \
    "  --api-key-env VAR    send the key held in environment variable VAR as a Bearer token (never logged)\n" \
    "  --parallel P         requests in flight at most (default 4)\n"                                        \
    "  --timeout S          seconds one attempt may take (default 300)\n"                                    \
    "  --retries R          further attempts on 429, 5xx, timeouts and broken connections (default 4)\n"     \
    "  --backoff S          the first wait before a retry, doubled each time, at most 60 s; a longer\n"      \
    "                       Retry-After wins (default 2)\n"                                                  \
    "  --cache DIR          answered requests, keyed by their sha256 (default OUT.llmcache)\n"               \
    "  --no-cache           neither read nor write the cache\n"                                              \
    "  --audio-rate HZ      sample rate of the WAV sent (default 16000)\n"                                   \
    "  --seconds S          excerpt length around the peak (default 10; the whole clip when shorter)\n"      \
    "  --seed S             shuffles (default 0)\n"                                                          \
    "  --sae DIR, --acts S  the SAE and the store, when moved since musae analyze\n"

void llm_common_defaults(llm_common *c);
/* host/cli/llm_cli.c parses LLM_COMMON_OPTIONS into an llm_common (a bad value is a usage failure), checks the
 * required ones and resolves the client options: the cache defaults to <out>.llmcache, and the key is read from
 * the environment there (a named but unset or empty variable is refused). */
/* Standard base64 of n bytes (malloc'd, NUL-terminated). */
char *llm_base64(const uint8_t *p, size_t n);
/* Mono samples -> a 16-bit PCM WAV file in memory (malloc'd, *len bytes); samples beyond full scale clip. */
uint8_t *llm_wav16(const float *x, int64_t n, int rate, size_t *len);
/* The excerpt of `feature` in clip `clip` around peak_frame (-1: the clip's first maximum), at `rate` Hz: 0 and
 * *x (malloc'd, *n), 1 skipped (err names the file), -1 failed (err). */
int llm_excerpt(excerpt_ctx *x, int feature, int64_t clip, int32_t peak_frame, double seconds, int rate, float **out,
                int64_t *n, char *err, size_t errlen);
/* Appends {"type":"input_audio","input_audio":{"data":<base64 WAV>,"format":"wav"}} to the content array. */
void llm_add_audio(cJSON *content, const float *x, int64_t n, int rate);
/* Appends {"type":"text","text":text}. */
void llm_add_text(cJSON *content, const char *text);
/* {"model": model, "temperature": 0, "messages": [{"role":"user","content": content}]} (content consumed). */
cJSON *llm_chat_body(const char *model, cJSON *content);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LLM_REQUEST_H */
