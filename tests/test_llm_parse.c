/* The LLM labeler's pieces that need no server: the strict label-answer parser (what is accepted, what is refused
 * and the reason), the detection-list parser, base64 against RFC 4648's test vectors, the in-memory WAV header and
 * samples, the endpoint URL, the cache key and an atomic cache round trip, and LABELS.jsonl's replace order. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>

#include "eval/labels_io.h"
#include "eval/llm_label.h"
#include "test.h"

static void label_ok(const char *text, const char *label) {
    char why[256] = "";
    cJSON *j = llm_parse_label(text, why, sizeof why);
    CHECK(j && !strcmp(cJSON_GetObjectItem(j, "label")->valuestring, label), "'%s' refused: %s", text, why);
    cJSON_Delete(j);
}

static void label_bad(const char *text, const char *reason) {
    char why[256] = "";
    cJSON *j = llm_parse_label(text, why, sizeof why);
    CHECK(!j, "'%s' accepted", text);
    CHECK_STR_CONTAINS(why, reason);
    cJSON_Delete(j);
}

int main(void) {
    const char *good = "{\"label\": \"bright strings\", \"confidence\": 0.8, \"description\": \"d\", \"concepts\": [\"a\"]}";
    label_ok(good, "bright strings");
    label_ok("  \n{\"label\":\"x\",\"confidence\":0,\"description\":\"\",\"concepts\":[],\"extra\":1}\n", "x");
    label_ok("```json\n{\"label\":\"fenced\",\"confidence\":1,\"description\":\"d\",\"concepts\":[\"c\"]}\n```", "fenced");
    label_ok("```\n{\"label\":\"plain fence\",\"confidence\":1,\"description\":\"d\",\"concepts\":[]}\n```", "plain fence");
    label_bad("These are guitars.", "not a JSON object");
    label_bad("Sure: {\"label\":\"x\",\"confidence\":0.5,\"description\":\"d\",\"concepts\":[]}", "not a JSON object");
    label_bad("{\"label\":\"x\",\"confidence\":0.5,\"description\":\"d\",\"concepts\":[]} and more", "not a JSON object");
    label_bad("[1, 2]", "not a JSON object");
    label_bad("{\"confidence\":0.5,\"description\":\"d\",\"concepts\":[]}", "\"label\"");
    label_bad("{\"label\":\"\",\"confidence\":0.5,\"description\":\"d\",\"concepts\":[]}", "\"label\"");
    label_bad("{\"label\":\"two\\nlines\",\"confidence\":0.5,\"description\":\"d\",\"concepts\":[]}", "one line");
    label_bad("{\"label\":\"x\",\"confidence\":1.5,\"description\":\"d\",\"concepts\":[]}", "\"confidence\"");
    label_bad("{\"label\":\"x\",\"confidence\":\"0.5\",\"description\":\"d\",\"concepts\":[]}", "\"confidence\"");
    label_bad("{\"label\":\"x\",\"confidence\":0.5,\"concepts\":[]}", "\"description\"");
    label_bad("{\"label\":\"x\",\"confidence\":0.5,\"description\":\"d\",\"concepts\":\"a\"}", "\"concepts\" is not");
    label_bad("{\"label\":\"x\",\"confidence\":0.5,\"description\":\"d\",\"concepts\":[\"a\", 3]}", "non-string");

    int a[8];
    CHECK(llm_parse_detection("[1,0,0,1,1]", 5, a) == 0 && a[0] == 1 && a[1] == 0 && a[4] == 1, "plain list");
    CHECK(llm_parse_detection("The answer: [0, 1, 0, 0, 1] done", 5, a) == 0 && a[1] == 1, "list inside prose");
    CHECK(llm_parse_detection("[1,0,1,1]", 5, a) == -1, "one short");
    CHECK(llm_parse_detection("[1,0,1,1,0,1]", 5, a) == -1, "one long");
    CHECK(llm_parse_detection("[1,0,2,1,0]", 5, a) == -1, "a 2");
    CHECK(llm_parse_detection("[1,0,\"1\",1,0]", 5, a) == -1, "a string");
    CHECK(llm_parse_detection("1,0,1,1,0", 5, a) == -1, "no brackets");

    static const char *b64[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},    {"foo", "Zm9v"},
                                   {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof b64 / sizeof b64[0]; i++) {
        char *s = llm_base64((const uint8_t *)b64[i][0], strlen(b64[i][0]));
        CHECK(!strcmp(s, b64[i][1]), "base64('%s') = '%s', expected '%s'", b64[i][0], s, b64[i][1]);
        free(s);
    }
    const float x[4] = {0.0f, 0.5f, -1.0f, 2.0f}; /* 2.0 clips to full scale */
    size_t len;
    uint8_t *w = llm_wav16(x, 4, 16000, &len);
    CHECK(len == 52 && !memcmp(w, "RIFF", 4) && !memcmp(w + 8, "WAVEfmt ", 8) && !memcmp(w + 36, "data", 4), "WAV layout");
    CHECK(w[4] == 44 && w[22] == 1 && w[24] == 0x80 && w[25] == 0x3E && w[34] == 16 && w[40] == 8, "WAV header fields");
    const int16_t want[4] = {0, 16384, -32767, 32767}; /* lrint(0.5 * 32767) = 16384 (ties to even) */
    for (int i = 0; i < 4; i++) {
        const int16_t got = (int16_t)(w[44 + 2 * i] | w[45 + 2 * i] << 8);
        CHECK(got == want[i], "sample %d: %d, expected %d", i, got, want[i]);
    }
    free(w);

    char url[256];
    llm_client_url("http://127.0.0.1:8000/v1", url, sizeof url);
    CHECK(!strcmp(url, "http://127.0.0.1:8000/v1/chat/completions"), "%s", url);
    llm_client_url("http://h/v1/chat/completions/", url, sizeof url);
    CHECK(!strcmp(url, "http://h/v1/chat/completions"), "%s", url);

    char k1[65], k2[65], k3[65], dir[1024], err[256];
    llm_cache_key("http://a/v1/chat/completions", "{}", k1);
    llm_cache_key("http://b/v1/chat/completions", "{}", k2);
    llm_cache_key("http://a/v1/chat/completions", "{ }", k3);
    CHECK(strlen(k1) == 64 && strcmp(k1, k2) && strcmp(k1, k3), "keys differ by URL and body");
    snprintf(dir, sizeof dir, "%s/test_llm_parse.cache", test_tmp());
    CHECK(llm_cache_put(dir, k1, "{\"choices\":[]}", err, sizeof err) == 0, "%s", err);
    char *got = llm_cache_get(dir, k1);
    CHECK(got && !strcmp(got, "{\"choices\":[]}"), "cache round trip");
    free(got);
    CHECK(llm_cache_get(dir, k2) == NULL, "a miss is NULL");

    /* LABELS.jsonl: another labeler's lines stay, this labeler's are replaced and sorted by feature */
    char path[1024];
    snprintf(path, sizeof path, "%s/test_llm_parse.jsonl", test_tmp());
    FILE *f = fopen(path, "w");
    fputs("{\"feature\":3,\"labeler\":\"dsp\",\"label\":\"d3\"}\n{\"feature\":1,\"labeler\":\"llm\",\"label\":\"old\"}\n", f);
    fclose(f);
    cJSON *lines = labels_read(path, 0, err, sizeof err);
    CHECK(lines && cJSON_GetArraySize(lines) == 2, "read 2 lines: %s", err);
    cJSON *mine = cJSON_Parse("[{\"feature\":9,\"labeler\":\"llm\"},{\"feature\":2,\"labeler\":\"llm\"}]");
    labels_replace(lines, "llm", mine);
    CHECK(labels_write(path, lines, err, sizeof err) == 0, "%s", err);
    cJSON_Delete(lines);
    lines = labels_read(path, 0, err, sizeof err);
    const int n = lines ? cJSON_GetArraySize(lines) : 0;
    CHECK(n == 3, "3 lines, got %d", n);
    const int order[3] = {3, 2, 9};
    for (int i = 0; i < n && i < 3; i++)
        CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(lines, i), "feature")->valueint == order[i], "line %d", i);
    cJSON_Delete(lines);
    f = fopen(path, "w");
    fputs("{\"feature\":1,\"labeler\":\"llm\"}\n{\"labeler\":\"llm\"}\n", f);
    fclose(f);
    CHECK(labels_read(path, 0, err, sizeof err) == NULL, "a line without a feature is refused");
    CHECK_STR_CONTAINS(err, "line 2");
    CHECK(labels_read("/nonexistent/x.jsonl", 0, err, sizeof err) == NULL, "missing file refused");
    lines = labels_read("/nonexistent/x.jsonl", 1, err, sizeof err);
    CHECK(lines && cJSON_GetArraySize(lines) == 0, "missing file is empty when allowed");
    cJSON_Delete(lines);
    TEST_END();
}
