/* CLAP's RoBERTa tokenizer against HF transformers 5.24 (golden/clap_tokens.json: 230 strings, from
 * tools/reference/make_clap.py: contractions, whitespace runs of every Unicode kind, letters and numbers of
 * many scripts, combining marks, emoji with ZWJ and flags, special-token strings with <mask>'s lstrip, U+0000,
 * texts past 77 tokens, the empty string), then bad input: invalid UTF-8, missing or broken files. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include "host/io/path.h"
#include "model/clap_tokenizer.h"
#include "test.h"

static void write_text(const char *path, const char *txt) {
    FILE *f = fopen(path, "wb");
    fputs(txt, f);
    fclose(f);
}

static void test_golden(const musae_clap_tokenizer *t) {
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/clap_tokens.json", test_fixtures());
    char *txt = musae_read_file(path, NULL, NULL, 0);
    CHECK(txt != NULL, "missing fixture %s (tools/reference/make_clap.py)", path);
    if (!txt) return;
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    const cJSON *cases = cJSON_GetObjectItemCaseSensitive(root, "cases");
    const int n_cases = cJSON_GetArraySize(cases);
    CHECK(n_cases >= 200, "%d golden strings", n_cases);
    const int64_t pad = (int64_t)cJSON_GetObjectItemCaseSensitive(root, "pad_id")->valuedouble;
    CHECK(pad == musae_clap_tokenizer_pad_id(t), "pad id %lld", (long long)musae_clap_tokenizer_pad_id(t));
    int n_same = 0, n_truncated = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cases) {
        const char *hex = cJSON_GetObjectItemCaseSensitive(c, "utf8")->valuestring;
        const size_t len = strlen(hex) / 2;
        char *bytes = malloc(len + 1);
        for (size_t i = 0; i < len; i++) bytes[i] = (char)strtol((char[3]){hex[2 * i], hex[2 * i + 1], 0}, NULL, 16);
        const cJSON *want = cJSON_GetObjectItemCaseSensitive(c, "ids");
        const int n_want = cJSON_GetArraySize(want);
        int64_t ids[MUSAE_CLAP_TEXT_LEN], mask[MUSAE_CLAP_TEXT_LEN], n_real = 0;
        char err[256] = "";
        const int rc = musae_clap_tokenize(t, bytes, len, "golden", ids, mask, &n_real, err, sizeof err);
        int same = rc == 0, first_diff = -1;
        for (int i = 0; i < MUSAE_CLAP_TEXT_LEN && same; i++) {
            const int64_t w = i < n_want ? (int64_t)cJSON_GetArrayItem(want, i)->valuedouble : pad;
            if (ids[i] != w || mask[i] != (i < n_want)) same = 0, first_diff = i;
        }
        n_same += same;
        n_truncated += n_real > MUSAE_CLAP_TEXT_LEN;
        if (!same) {
            fprintf(stderr, "  differs at %d: \"%s\" (%s)\n    got ", first_diff,
                    cJSON_GetObjectItemCaseSensitive(c, "text")->valuestring, err);
            for (int i = 0; i < MUSAE_CLAP_TEXT_LEN && mask[i]; i++) fprintf(stderr, "%lld ", (long long)ids[i]);
            fprintf(stderr, "\n    HF  ");
            for (int i = 0; i < n_want; i++) fprintf(stderr, "%d ", (int)cJSON_GetArrayItem(want, i)->valuedouble);
            fprintf(stderr, "\n");
        }
        free(bytes);
    }
    CHECK(n_same == n_cases, "%d of %d strings tokenized as HF does", n_same, n_cases);
    CHECK(n_truncated >= 3, "only %d golden strings exercise truncation", n_truncated);
    printf("tokenizer: %d/%d golden strings identical to HF (%d truncated to 77)\n", n_same, n_cases, n_truncated);
    cJSON_Delete(root);
}

static void test_bad_input(const musae_clap_tokenizer *t) {
    int64_t ids[MUSAE_CLAP_TEXT_LEN], mask[MUSAE_CLAP_TEXT_LEN];
    char err[256] = "";
    const char bad[] = "ok \xC3\x28 no";
    CHECK(musae_clap_tokenize(t, bad, sizeof bad - 1, "text 2", ids, mask, NULL, err, sizeof err) == -1, "invalid UTF-8");
    CHECK_STR_CONTAINS(err, "text 2: invalid UTF-8 at byte 3");
}

/* Broken folders: each refusal names the file and what is wrong. */
static void test_bad_files(void) {
    char dir[512], path[640], err[512];
    snprintf(dir, sizeof dir, "%s/clap_tok_bad_%d", test_tmp(), (int)getpid());
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    CHECK(system(path) == 0, "mkdir");
    err[0] = 0;
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "empty folder");
    CHECK_STR_CONTAINS(err, "vocab.json: cannot read");

    snprintf(path, sizeof path, "%s/vocab.json", dir);
    write_text(path, "[1, 2]");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "vocab not an object");
    CHECK_STR_CONTAINS(err, "vocab.json: not a JSON object");
    write_text(path, "{\"<s>\": 0, \"a\": \"x\"}");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "string id");
    CHECK_STR_CONTAINS(err, "token \"a\": the id is not an integer");
    write_text(path, "{\"<s>\": 0, \"a\": 1}");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "no byte alphabet");
    CHECK_STR_CONTAINS(err, "not a byte-level BPE vocabulary");

    /* a real vocabulary with broken merges */
    char src[1024];
    snprintf(src, sizeof src, "cp %s/tiny-clap/vocab.json %s/vocab.json", test_fixtures(), dir);
    CHECK(system(src) == 0, "copy vocab");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "no merges.txt");
    CHECK_STR_CONTAINS(err, "merges.txt: cannot read");
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_text(path, "#version: 0.2\nt h\nthree parts here\n");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "3-part merge");
    CHECK_STR_CONTAINS(err, "merges.txt: line 3: expected two symbols");
    write_text(path, "#version: 0.2\nq z\n");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "merge result missing");
    CHECK_STR_CONTAINS(err, "line 2: the merged symbol \"qz\" is not in vocab.json");
    write_text(path, "#version: 0.2\nt h\n");
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    write_text(path, "{\"added_tokens\": 3}");
    CHECK(musae_clap_tokenizer_open(dir, err, sizeof err) == NULL, "added_tokens not an array");
    CHECK_STR_CONTAINS(err, "tokenizer.json: added_tokens: expected an array");
    unlink(path);
    musae_clap_tokenizer *t = musae_clap_tokenizer_open(dir, err, sizeof err);
    CHECK(t != NULL, "vocab.json + merges.txt alone is a complete tokenizer: %s", err);
    musae_clap_tokenizer_close(t);
    snprintf(path, sizeof path, "rm -rf %s", dir);
    CHECK(system(path) == 0, "cleanup");
}

int main(void) {
    char dir[1024], err[512] = "";
    snprintf(dir, sizeof dir, "%s/tiny-clap", test_fixtures());
    musae_clap_tokenizer *t = musae_clap_tokenizer_open(dir, err, sizeof err);
    CHECK(t != NULL, "open %s: %s", dir, err);
    if (t) {
        CHECK(musae_clap_tokenizer_n_ids(t) == 580, "n_ids %lld", (long long)musae_clap_tokenizer_n_ids(t));
        test_golden(t);
        test_bad_input(t);
        musae_clap_tokenizer_close(t);
    }
    test_bad_files();
    TEST_END();
}
