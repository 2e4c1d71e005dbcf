/* T5 tokenizer against HF transformers 5.24 (golden/t5.safetensors: 79 prompts of every kind, including
 * special-token look-alikes and a 650-character prompt; golden/t5_extra_tokens.safetensors: truncation and
 * batch padding), then bad input: invalid UTF-8, no prompts, missing or broken tokenizer files. */
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/io/safetensors.h"
#include "host/core/utf8.h"
#include "host/io/path.h"
#include "model/t5_tokenizer.h"
#include "golden.h"
#include "test.h"

#define MAX_PROMPTS 128

/* The "text" strings of t5_prompts.json, decoded with their JSON escapes. cJSON cannot be used: one prompt
 * holds U+0000, which a NUL-terminated valuestring would cut. */
static int read_prompts(const char *path, char **texts, size_t *lens) {
    char *buf = musae_read_file(path, NULL, NULL, 0);
    if (!buf) return -1;
    int count = 0;
    const char *key = "\"text\": \"";
    for (const char *p = strstr(buf, key); p && count < MAX_PROMPTS; p = strstr(p, key)) {
        p += strlen(key);
        char *out = malloc(strlen(p) + 1);
        size_t o = 0;
        while (*p && *p != '"') {
            if (*p != '\\') {
                out[o++] = *p++;
                continue;
            }
            p++;
            char e = *p++;
            if (e == 'n') out[o++] = '\n';
            else if (e == 't') out[o++] = '\t';
            else if (e == 'r') out[o++] = '\r';
            else if (e == 'b') out[o++] = '\b';
            else if (e == 'f') out[o++] = '\f';
            else if (e != 'u') out[o++] = e; /* \" \\ \/ */
            else {
                unsigned cp = (unsigned)strtoul((char[5]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p[0] == '\\' && p[1] == 'u') {
                    unsigned lo = (unsigned)strtoul((char[5]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
                if (cp < 0x80) out[o++] = (char)cp;
                else if (cp < 0x800) out[o++] = (char)(0xC0 | cp >> 6), out[o++] = (char)(0x80 | (cp & 0x3F));
                else if (cp < 0x10000)
                    out[o++] = (char)(0xE0 | cp >> 12), out[o++] = (char)(0x80 | (cp >> 6 & 0x3F)),
                    out[o++] = (char)(0x80 | (cp & 0x3F));
                else
                    out[o++] = (char)(0xF0 | cp >> 18), out[o++] = (char)(0x80 | (cp >> 12 & 0x3F)),
                    out[o++] = (char)(0x80 | (cp >> 6 & 0x3F)), out[o++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        out[o] = 0;
        texts[count] = out;
        lens[count++] = o;
    }
    free(buf);
    return count;
}

static int64_t *load_i64(musae_st *st, const char *name, int64_t *shape) {
    int rank;
    return musae_st_load_any(st, name, MUSAE_I64, &rank, shape);
}

static void test_golden_prompts(const musae_t5_tokenizer *tok, const char *fx) {
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/golden/t5_prompts.json", fx);
    char *texts[MAX_PROMPTS];
    size_t lens[MAX_PROMPTS];
    int n = read_prompts(path, texts, lens);
    musae_st st;
    if (golden_open(&st, "t5.safetensors")) return;
    int64_t ishape[2], lshape[1];
    int64_t *ids = load_i64(&st, "ids", ishape), *lengths = load_i64(&st, "lengths", lshape);
    CHECK(n == ishape[0] && n >= 50, "%d prompts in the json, %" PRId64 " rows of ids", n, ishape[0]);
    int equal = 0, with_unk = 0, cjk_emoji = 0;
    for (int p = 0; p < n && p < ishape[0]; p++) {
        int64_t *got, ng;
        char what[32];
        snprintf(what, sizeof what, "prompt %d", p);
        if (musae_t5_tokenize(tok, texts[p], lens[p], 0, what, &got, &ng, err, sizeof err)) {
            CHECK(0, "prompt %d: %s", p, err);
            continue;
        }
        int same = ng == lengths[p] && !memcmp(got, ids + p * ishape[1], (size_t)ng * sizeof *got);
        CHECK(same, "prompt %d (%.40s): %" PRId64 " ids, HF %" PRId64, p, texts[p], ng, lengths[p]);
        if (!same)
            for (int64_t i = 0; i < ng && i < lengths[p]; i++)
                if (got[i] != ids[p * ishape[1] + i]) {
                    fprintf(stderr, "  first difference at %" PRId64 ": %" PRId64 " vs HF %" PRId64 "\n", i, got[i],
                            ids[p * ishape[1] + i]);
                    break;
                }
        equal += same;
        for (int64_t i = 0; i < ng; i++) with_unk += got[i] == tok->unk_id && (i == 0 || got[i - 1] != tok->unk_id);
        for (size_t i = 0; i < lens[p]; i++) cjk_emoji += (unsigned char)texts[p][i] >= 0xE3;
        free(got);
        free(texts[p]);
    }
    printf("tokenizer: %d of %d golden prompts identical to HF (%d <unk> runs, %d bytes of CJK/emoji)\n", equal, n,
           with_unk, cjk_emoji);
    free(ids), free(lengths);
    musae_st_close(&st);
}

static void test_truncation_and_batch(const musae_t5_tokenizer *tok) {
    char err[512];
    musae_st st;
    if (golden_open(&st, "t5_extra_tokens.safetensors")) return;
    CHECK(tok->model_max_length == 512, "model_max_length %" PRId64, tok->model_max_length);
    /* the 2562-character prompt of golden_t5.py: 967 ids untruncated (HF MusicGen keeps them all) */
    const char *unit = "dreamy lo-fi hip hop beat with warm vinyl crackle, mellow rhodes chords, soft boom bap drums, "
                       "a deep round bass line and rain sounds in the background, perfect for studying at night; ";
    char *long_text = malloc(strlen(unit) * 14 + 1);
    long_text[0] = 0;
    for (int i = 0; i < 14; i++) strcat(long_text, unit);
    int64_t shape[2], *want = load_i64(&st, "trunc_long", shape), *got, n;
    CHECK(musae_t5_tokenize(tok, long_text, strlen(long_text), 0, "long", &got, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 967, "untruncated long prompt: %" PRId64 " ids, HF 967", n);
    CHECK(!memcmp(got, want, 511 * sizeof *got), "untruncated long prompt: first 511 ids differ from HF's");
    free(got);
    CHECK(musae_t5_tokenize(tok, long_text, strlen(long_text), tok->model_max_length, "long", &got, &n, err,
                            sizeof err) == 0, "%s", err);
    CHECK(n == shape[0] && !memcmp(got, want, (size_t)n * sizeof *got), "truncated at 512: %" PRId64 " ids", n);
    free(got), free(want), free(long_text);

    want = load_i64(&st, "trunc8", shape);
    const char *prompt = "90s rock song with loud guitars and heavy drums";
    CHECK(musae_t5_tokenize(tok, prompt, strlen(prompt), 8, "p", &got, &n, err, sizeof err) == 0, "%s", err);
    CHECK(n == 8 && !memcmp(got, want, 8 * sizeof *got), "truncation to 8 differs from HF");
    free(got), free(want);

    /* padding=True: right padded with <pad> to the longest, mask 1 on real tokens; "" is [</s>] */
    const char *batch[3] = {"calm piano", "", "80s pop track with bassy drums and synth \xF0\x9F\x8E\xB8"};
    musae_t5_tokens b;
    CHECK(musae_t5_tokenize_batch(tok, 3, batch, 0, &b, err, sizeof err) == 0, "%s", err);
    int64_t *wi = load_i64(&st, "batch.input_ids", shape), s2[2], *wm = load_i64(&st, "batch.attention_mask", s2);
    CHECK(b.batch == shape[0] && b.len == shape[1], "batch %" PRId64 "x%" PRId64 ", HF %" PRId64 "x%" PRId64, b.batch,
          b.len, shape[0], shape[1]);
    if (b.batch == shape[0] && b.len == shape[1]) {
        CHECK(!memcmp(b.ids, wi, (size_t)(b.batch * b.len) * sizeof *wi), "batch ids differ from HF");
        CHECK(!memcmp(b.mask, wm, (size_t)(b.batch * b.len) * sizeof *wm), "batch mask differs from HF");
    }
    musae_t5_tokens_free(&b);
    free(wi), free(wm);
    musae_st_close(&st);
}

static void test_bad_input(const musae_t5_tokenizer *tok, const char *fx) {
    char err[512];
    int64_t *ids = NULL, n;
    /* invalid UTF-8 is an error naming the offset, never a silent replacement */
    static const struct {
        const char *s;
        int64_t at;
    } bad[] = {
        {"rock \xff song", 5},          /* byte that never occurs */
        {"caf\xc3", 3},                 /* sequence cut by the end */
        {"caf\xc3(", 3},                /* continuation byte missing */
        {"\xc0\xaf", 0},                /* overlong '/' */
        {"ab\xed\xa0\x80", 2},          /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 0},        /* > U+10FFFF */
        {"x\x80", 1},                   /* stray continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(musae_utf8_invalid_at(bad[i].s, strlen(bad[i].s)) == bad[i].at, "case %zu: at %" PRId64, i,
              musae_utf8_invalid_at(bad[i].s, strlen(bad[i].s)));
        err[0] = 0;
        CHECK(musae_t5_tokenize(tok, bad[i].s, strlen(bad[i].s), 0, "prompt 1", &ids, &n, err, sizeof err) == -1,
              "case %zu accepted", i);
        CHECK_STR_CONTAINS(err, "prompt 1: not valid UTF-8");
    }
    const char *good = "\xc3\xa9\xe9\x9f\xb3\xf0\x9f\x8e\xb8\xf4\x8f\xbf\xbf";
    CHECK(musae_utf8_invalid_at(good, strlen(good)) == -1, "valid text rejected");
    const char *batch[2] = {"fine", "bro\xffken"};
    musae_t5_tokens b;
    CHECK(musae_t5_tokenize_batch(tok, 2, batch, 0, &b, err, sizeof err) == -1, "bad batch accepted");
    CHECK_STR_CONTAINS(err, "prompt 2");
    CHECK(musae_t5_tokenize_batch(tok, 0, batch, 0, &b, err, sizeof err) == -1, "zero prompts accepted");
    CHECK_STR_CONTAINS(err, "no prompts");

    /* a folder without spiece.model, and one whose spiece.model is not a SentencePiece model */
    musae_t5_tokenizer t2;
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/t5_tok_%d", test_tmp(), (int)getpid());
    mkdir(dir, 0755);
    CHECK(musae_t5_tokenizer_open(&t2, dir, err, sizeof err) == -1, "missing spiece.model accepted");
    CHECK_STR_CONTAINS(err, "spiece.model");
    snprintf(path, sizeof path, "%s/spiece.model", dir);
    FILE *f = fopen(path, "wb");
    fputs("not a model", f);
    fclose(f);
    CHECK(musae_t5_tokenizer_open(&t2, dir, err, sizeof err) == -1, "garbage spiece.model accepted");
    CHECK_STR_CONTAINS(err, "spiece.model");
    remove(path);
    /* a good model with a broken tokenizer_config.json */
    char src[1024];
    snprintf(src, sizeof src, "%s/tiny-musicgen/spiece.model", fx);
    FILE *in = fopen(src, "rb"), *out = fopen(path, "wb");
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, k, out);
    fclose(in), fclose(out);
    snprintf(src, sizeof src, "%s/tokenizer_config.json", dir);
    f = fopen(src, "wb");
    fputs("{\"model_max_length\": \"many\"}", f);
    fclose(f);
    CHECK(musae_t5_tokenizer_open(&t2, dir, err, sizeof err) == -1, "bad tokenizer_config.json accepted");
    CHECK_STR_CONTAINS(err, "model_max_length");
    remove(src);
    /* without tokenizer_config.json: HF defaults (no length limit, 100 extra ids) */
    CHECK(musae_t5_tokenizer_open(&t2, dir, err, sizeof err) == 0, "%s", err);
    CHECK(t2.model_max_length == 0 && t2.n_extra_ids == 100, "defaults %" PRId64 " %d", t2.model_max_length,
          t2.n_extra_ids);
    musae_t5_tokenizer_close(&t2);
    remove(path);
    rmdir(dir);
}

int main(void) {
    const char *fx = test_fixtures();
    char dir[1024], err[512];
    snprintf(dir, sizeof dir, "%s/tiny-musicgen", fx);
    musae_t5_tokenizer tok;
    if (musae_t5_tokenizer_open(&tok, dir, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    CHECK(tok.n_pieces == 1000 && tok.pad_id == 0 && tok.eos_id == 1 && tok.unk_id == 2, "pieces %d ids %d %d %d",
          tok.n_pieces, tok.pad_id, tok.eos_id, tok.unk_id);
    CHECK(musae_t5_tokenizer_n_ids(&tok) == 1100, "%" PRId64 " ids", musae_t5_tokenizer_n_ids(&tok));
    test_golden_prompts(&tok, fx);
    test_truncation_and_batch(&tok);
    test_bad_input(&tok, fx);
    musae_t5_tokenizer_close(&tok);
    TEST_END();
}
