/* musae dashboard's generator: escaping of hostile text (HTML, URL, script data), the PNG encoder read back
 * through zlib, and a whole site over a store whose clips come from files named with a space, a quote and
 * non-ASCII letters, one of them removed after the analysis: every feature has a page and a row in the index
 * data (which parses as JSON and carries the labels verbatim), a <script> label reaches no page as markup, the
 * removed source is a marked gap while the others have an OGG player and a spectrogram that exist, steering audio
 * is copied and URL-encoded, a rerun reuses every excerpt, and bad input is refused with exit 1 and a message
 * naming the file and the field. The browser-side checks are tests/dashboard_browser.sh. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/stat.h>
#include <zlib.h>

#include "cli.h"
#include "fixture_io.h"
#include "eval/dashboard_int.h"
#include "eval/features_io.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"

enum { D = 8, M = 24, K = 3, LAYER = 3, FRAMES = 100, RATE = 32000 };
static const char *k_clips[4] = {"audio/é b'c.wav#t=0,2", "audio/é b'c.wav#t=2,4", "audio/plain.wav#t=0,2",
                                 "audio/gone.wav#t=0,2"};
static const char *k_hostile = "<script>alert('x')</script> & \"q\"";

static int small_int(uint64_t seed, uint64_t i, int lo, int hi) {
    return lo + (int)(musae_philox(seed, 0xD5, i).v[0] % (uint32_t)(hi - lo + 1));
}

static void write_wav(const char *path, double seconds, double hz) {
    const int64_t n = (int64_t)(seconds * RATE);
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.4 * sin(6.283185307179586 * hz * (double)i / RATE));
    fx_write_wav(path, x, n, RATE, 1, MUSAE_AUDIO_PCM16);
    free(x);
}

/* The store (4 clips of small-integer rows), the audio behind it and a top-k SAE, as tests/test_excerpt.c. */
static void make_fixture(void) {
    mkdir(at("audio"), 0755);
    write_wav(at("audio/é b'c.wav"), 4, 330);
    write_wav(at("audio/plain.wav"), 2, 440);
    write_wav(at("audio/gone.wav"), 2, 550);
    musae_store_writer *w = fx_store_create(at("s.h5"), "test/model", D, LAYER);
    float *x = malloc(sizeof(float) * FRAMES * D);
    for (int c = 0; c < 4; c++) {
        for (int i = 0; i < FRAMES * D; i++) x[i] = (float)small_int(2, (uint64_t)(c * 100000 + i), -3, 3);
        const float *acts[1] = {x};
        musae_store_add_clip(w, k_clips[c], FRAMES, acts);
    }
    musae_store_close_writer(w, 1);
    free(x);
    static float W_enc[M * D], b_enc[M], W_dec[M * D], b_dec[D];
    for (int i = 0; i < M * D; i++) W_enc[i] = (float)small_int(11, (uint64_t)i, -2, 2);
    for (int i = 0; i < M; i++) b_enc[i] = (float)small_int(11, 10000 + (uint64_t)i, -3, 1);
    for (int j = 0; j < D; j++) b_dec[j] = (float)small_int(11, 20000 + (uint64_t)j, -1, 1);
    for (int i = 0; i < M * D; i++) W_dec[i] = (float)small_int(13, (uint64_t)i, -5, 5) + 0.25f;
    fx_write_sae(at("sae"), M, D, K, LAYER, W_enc, b_enc, W_dec, b_dec,
                 "\"selection\": \"topk\", \"final_metrics\": {\"fvu\": 0.125}");
    if (run("analyze --sae sae --acts s.h5 --split all --top 4 -o f.h5")) setup_failed("musae analyze");
}

static void check_escaping(void) {
    dash_buf b = {0};
    db_html(&b, "<a href=\"x\">'&'</a>");
    CHECK(!strcmp(b.p, "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"), "html: %s", b.p);
    db_free(&b);
    db_url(&b, "a b/é'\"#?%.ogg");
    CHECK(!strcmp(b.p, "a%20b/%C3%A9%27%22%23%3F%25.ogg"), "url: %s", b.p);
    db_free(&b);
    db_js_string(&b, "</script>\"\\\n\xE2\x80\xA8é");
    CHECK(!strcmp(b.p, "\"\\u003c/script\\u003e\\\"\\\\\\u000a\\u2028é\""), "js: %s", b.p);
    cJSON *j = cJSON_Parse(b.p);
    CHECK(cJSON_IsString(j) && !strcmp(j->valuestring, "</script>\"\\\n\xE2\x80\xA8é"), "the JS string is not the JSON of the text");
    cJSON_Delete(j);
    db_free(&b);
    db_js_number(&b, NAN);
    db_put(&b, ",");
    db_js_number(&b, INFINITY);
    db_put(&b, ",");
    db_js_number(&b, 0.25);
    CHECK(!strcmp(b.p, "null,null,0.25"), "numbers: %s", b.p);
    db_free(&b);
}

/* A PNG written by dash_png_write, taken apart chunk by chunk: signature, CRCs, IHDR, inflated pixels. */
static void check_png(void) {
    enum { W = 5, H = 3 };
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 37 + 11);
    char err[600];
    CHECK(dash_png_write(at("t.png"), rgb, W, H, err, sizeof err) == 0, "%s", err);
    FILE *f = fopen(at("t.png"), "rb");
    uint8_t buf[4096];
    const size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    CHECK(n > 8 && !memcmp(buf, sig, 8), "PNG signature");
    size_t p = 8;
    int seen_ihdr = 0, seen_iend = 0, crc_bad = 0;
    uint8_t raw[(W * 3 + 1) * H + 16];
    uLongf raw_n = sizeof raw;
    while (p + 12 <= n) {
        const uint32_t len = (uint32_t)buf[p] << 24 | buf[p + 1] << 16 | buf[p + 2] << 8 | buf[p + 3];
        const uint8_t *type = buf + p + 4, *data = buf + p + 8;
        const uint8_t *c = data + len;
        const uint32_t crc = (uint32_t)c[0] << 24 | c[1] << 16 | c[2] << 8 | c[3];
        crc_bad += crc != (uint32_t)crc32(crc32(0, type, 4), data, len);
        if (!memcmp(type, "IHDR", 4))
            seen_ihdr = len == 13 && data[3] == W && data[7] == H && data[8] == 8 && data[9] == 2;
        if (!memcmp(type, "IDAT", 4)) CHECK(uncompress(raw, &raw_n, data, len) == Z_OK, "IDAT does not inflate");
        if (!memcmp(type, "IEND", 4)) seen_iend = 1;
        p += 12 + len;
    }
    CHECK(seen_ihdr && seen_iend && crc_bad == 0, "IHDR %d IEND %d bad CRCs %d", seen_ihdr, seen_iend, crc_bad);
    int px_bad = raw_n != (uLongf)(W * 3 + 1) * H;
    for (int y = 0; !px_bad && y < H; y++)
        px_bad = raw[y * (W * 3 + 1)] != 0 || memcmp(raw + y * (W * 3 + 1) + 1, rgb + y * W * 3, W * 3);
    CHECK(!px_bad, "the inflated rows are not the pixels with filter 0");
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* Every src="../audio/X" of a feature page names a file of the site. */
static void check_srcs(const char *site, const char *page, int *n_audio) {
    *n_audio = 0;
    for (const char *p = page; (p = strstr(p, "src=\"../audio/"));) {
        p += strlen("src=\"../");
        const char *q = strchr(p, '"');
        char rel[1200];
        snprintf(rel, sizeof rel, "%s/%.*s", site, (int)(q - p), p);
        CHECK(access(at(rel), R_OK) == 0, "%s: the page links a missing file", rel);
        *n_audio += strstr(rel, ".ogg") != NULL;
    }
}

/* musae report on the bundled tiny model: every step runs, the site is written; the same command again skips
 * train, analyze and describe and cuts no excerpt; a missing option is refused. */
static void check_report(void) {
    mkdir(at("rep_audio"), 0755);
    write_wav(at("rep_audio/tone a.wav"), 3, 330);
    write_wav(at("rep_audio/tone b.wav"), 3, 660);
    char cmd[3000];
    snprintf(cmd, sizeof cmd,
             "report --model %s/tiny-musicgen --audio rep_audio --layer 1 --clip-seconds 1 --k 4 --expansion 2 "
             "--tokens 4000 --split all --max-rate 0.9 --seconds 0.5 -o rep",
             test_fixtures());
    CHECK(run("%s", cmd) == 0, "report failed");
    char *log = slurp("err.txt");
    CHECK(strstr(log, "report: analyze\n") && strstr(log, "report: describe\n"), "report's first run: %s", log);
    free(log);
    CHECK(access(at("rep/site/index.html"), R_OK) == 0 && access(at("rep/site/features/f0.html"), R_OK) == 0 &&
              access(at("rep/descriptors.h5"), R_OK) == 0,
          "report wrote no site or descriptors");
    CHECK(run("%s", cmd) == 0, "report (again) failed");
    log = slurp("err.txt");
    CHECK(strstr(log, "train: skipped") && strstr(log, "analyze: skipped") && strstr(log, "describe: skipped") &&
              strstr(log, "; 0 excerpts cut,"),
          "the second report redid work: %s", log);
    free(log);
    CHECK(run("report --audio rep_audio --layer 1 -o rep2") == 1, "report without --model accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "--model, --audio, --layer and -o are required; see musae report --help");
    free(log);
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    scratch_open("test_dashboard");
    check_escaping();
    check_png();
    make_fixture();
    musae_features f;
    char err[600];
    if (features_read(at("f.h5"), &f, err, sizeof err)) setup_failed(err);
    /* a latent firing in gone.wav's clip (store clip 3) and in another one */
    int gone = -1;
    for (int i = 0; i < M && gone < 0; i++) {
        int in_gone = 0, n = 0;
        for (int r = 0; r < f.N; r++) {
            const int32_t c = f.top_clip[i * f.N + r];
            if (c < 0) continue;
            n++;
            in_gone |= f.clip_store_index[c] == 3;
        }
        if (in_gone && n >= 2) gone = i;
    }
    CHECK(gone >= 0, "no latent fires in gone.wav's clip and another");
    const int hostile_f = gone >= 0 ? gone : 0;
    FILE *lf = fopen(at("L.jsonl"), "w");
    for (int i = 0; i < M; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "feature", i);
        cJSON_AddStringToObject(o, "labeler", "dsp");
        cJSON_AddStringToObject(o, "label", i == hostile_f ? k_hostile : "ünïcode label");
        cJSON_AddNumberToObject(o, "score", 0.5 + i / 100.0);
        cJSON_AddStringToObject(o, "status", "ok");
        cJSON *ev = cJSON_AddArrayToObject(o, "evidence");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "descriptor", "<img src=x onerror=alert(1)>");
        cJSON_AddItemToArray(ev, e);
        char *s = cJSON_PrintUnformatted(o);
        fprintf(lf, "%s\n", s);
        free(s);
        cJSON_Delete(o);
    }
    fprintf(lf, "{\"feature\": 1, \"labeler\": \"llm\", \"label\": null, \"score\": null, \"status\": \"failed\", "
                "\"error\": \"HTTP 500 <b>\", \"evidence\": []}\n");
    fclose(lf);
    /* a musae steer folder (docs/STEER.md): study.json's features, a baseline and a steered clip of one prompt and seed */
    CHECK(sh("mkdir -p 'st dir' && cp audio/plain.wav 'st dir/base é.wav' && printf '{\"features\":[%d]}\\n' > "
             "'st dir/study.json' && printf '%%s\\n' "
             "'{\"id\": \"b\", \"kind\": \"baseline\", \"feature\": null, \"alpha\": 0, \"prompt\": 0, \"seed\": 4, "
             "\"audio\": \"base é.wav\", \"act\": [0.1], \"code_diff\": 0, \"clap\": {\"label\": [0.2], \"exemplars\": "
             "[null], \"dist\": 0}}' "
             "'{\"id\": \"s\", \"kind\": \"steered\", \"feature\": %d, \"alpha\": 1, \"prompt\": 0, \"seed\": 4, "
             "\"audio\": \"nothere.wav\", \"act\": [0.35], \"code_diff\": 0.5, \"clap\": {\"label\": [0.5], "
             "\"exemplars\": [null], \"dist\": 0.125}}' "
             "> 'st dir/steer.jsonl'",
             hostile_f, hostile_f) == 0,
          "cannot write the steer folder");
    CHECK(sh("rm audio/gone.wav") == 0, "rm failed");
    const char *site = "site é 'q'";
    CHECK(run("dashboard --features f.h5 --labels L.jsonl --steer 'st dir' --top 4 --per-decile 1 --seconds 0.5 -o \"%s\"",
              site) == 0,
          "dashboard failed");
    char rel[1200];
    /* the index data: JSON after the assignment, one row per latent, labels verbatim, no raw '<' in the file */
    snprintf(rel, sizeof rel, "%s/data/index.js", site);
    char *js = slurp(rel);
    const char *pre = "window.MUSAE_INDEX=";
    CHECK(!strncmp(js, pre, strlen(pre)), "index.js does not start with the assignment");
    CHECK(strchr(js, '<') == NULL, "index.js holds a raw '<'");
    char *end = strrchr(js, ';');
    if (end) *end = 0;
    cJSON *idx = cJSON_Parse(js + (strncmp(js, pre, strlen(pre)) ? 0 : strlen(pre)));
    free(js);
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(idx, "rows"), *labs = cJSON_GetObjectItemCaseSensitive(idx, "labelers");
    CHECK(cJSON_GetArraySize(rows) == M, "index rows: %d, want %d", cJSON_GetArraySize(rows), M);
    CHECK(cJSON_GetArraySize(labs) == 2 && !strcmp(cJSON_GetArrayItem(labs, 0)->valuestring, "dsp") &&
              !strcmp(cJSON_GetArrayItem(labs, 1)->valuestring, "llm"),
          "labelers: dsp, llm in file order");
    const cJSON *row = cJSON_GetArrayItem(rows, hostile_f);
    const cJSON *best = cJSON_GetArrayItem(row, 5);
    CHECK(cJSON_GetArrayItem(row, 0)->valueint == hostile_f && cJSON_IsString(cJSON_GetArrayItem(best, 0)) &&
              !strcmp(cJSON_GetArrayItem(best, 0)->valuestring, k_hostile),
          "the index row of %d lacks its label verbatim", hostile_f);
    CHECK(!strcmp(cJSON_GetArrayItem(row, 1)->valuestring, dash_status(&f, hostile_f)), "the index row's status");
    CHECK(fabs(cJSON_GetArrayItem(row, 2)->valuedouble - f.clip_rate[hostile_f]) <= 1e-6 * fmax(1, f.clip_rate[hostile_f]),
          "clip rate in the index %g, file %g", cJSON_GetArrayItem(row, 2)->valuedouble, f.clip_rate[hostile_f]);
    CHECK(cJSON_IsNull(cJSON_GetArrayItem(cJSON_GetArrayItem(rows, 1), 6)), "a failed llm line is no best label");
    cJSON_Delete(idx);
    /* every feature has a page; the hostile one shows its label as text only */
    int pages = 0;
    for (int i = 0; i < M; i++) {
        snprintf(rel, sizeof rel, "%s/features/f%d.html", site, i);
        pages += access(at(rel), R_OK) == 0;
    }
    CHECK(pages == M, "%d feature pages, want %d", pages, M);
    snprintf(rel, sizeof rel, "%s/features/f%d.html", site, hostile_f);
    char *page = slurp(rel);
    CHECK(count(page, "<script") == 1 && strstr(page, "<script src=\"../player.js\">"), "a page runs more than player.js");
    CHECK_STR_CONTAINS(page, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
    CHECK_STR_CONTAINS(page, "&lt;img src=x onerror=alert(1)&gt;");
    CHECK(strstr(page, "<img src=x") == NULL, "evidence reached the page as markup");
    /* the removed source: a marked gap naming it; the others a player whose files exist */
    CHECK_STR_CONTAINS(page, "<div class=\"gap\">no audio: audio/gone.wav: source of clip &#39;audio/gone.wav#t=0,2&#39; is missing");
    CHECK_STR_CONTAINS(page, "é b&#39;c.wav#t=");
    int n_audio = 0;
    check_srcs(site, page, &n_audio);
    CHECK(n_audio >= 1 + 1, "%d OGG players (top clips elsewhere and the steering baseline)", n_audio);
    CHECK(count(page, "<img class=\"spec\"") >= 1, "no spectrogram on the page");
    /* steering: the baseline copied under its own (URL-encoded) name, the missing one a gap, the delta shown */
    CHECK_STR_CONTAINS(page, "src=\"../steer/s0_base%20%C3%A9.wav\"");
    CHECK_STR_CONTAINS(page, "st dir/nothere.wav is missing");
    CHECK_STR_CONTAINS(page, "<td>activation</td><td>0.35 (Δ +0.25)");
    CHECK_STR_CONTAINS(page, "<td>CLAP label</td><td>0.5 (Δ +0.3)");
    CHECK_STR_CONTAINS(page, "<td>CLAP distance</td><td>0.125</td>");
    CHECK_STR_CONTAINS(page, "prompt 0, seed 4");
    free(page);
    snprintf(rel, sizeof rel, "%s/steer/s0_base é.wav", site);
    CHECK(access(at(rel), R_OK) == 0, "the steering audio was not copied");
    snprintf(rel, sizeof rel, "%s/summary.html", site);
    page = slurp(rel);
    CHECK_STR_CONTAINS(page, "final_metrics.fvu</td><td>0.125");
    CHECK_STR_CONTAINS(page, "<td>llm</td><td>0</td><td>0</td><td>1</td>");
    free(page);
    char *log = slurp("err.txt");
    CHECK(strstr(log, "; 0 excerpts cut,") == NULL && strstr(log, "feature pages in") != NULL, "first run: %s", log);
    free(log);
    /* a rerun cuts nothing again */
    CHECK(run("dashboard --features f.h5 --labels L.jsonl --top 4 --per-decile 1 --seconds 0.5 -o \"%s\"", site) == 0,
          "rerun failed");
    log = slurp("err.txt");
    CHECK(strstr(log, "; 0 excerpts cut,") != NULL, "the rerun cut excerpts again: %s", log);
    free(log);
    /* the same site over another FEATURES file: nothing of the old analysis is reused */
    CHECK(sh("cp f.h5 f2.h5") == 0, "cp failed");
    CHECK(run("dashboard --features f2.h5 --top 4 --per-decile 1 --seconds 0.5 -o \"%s\"", site) == 0, "run on f2 failed");
    log = slurp("err.txt");
    CHECK(strstr(log, "; 0 excerpts cut,") == NULL, "another FEATURES file reused the old excerpts: %s", log);
    free(log);
    /* refusals: exit 1 and one line naming the file and the field */
    CHECK(run("dashboard -o x") == 1, "missing --features accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "--features and -o are required; see musae dashboard --help");
    free(log);
    CHECK(sh("printf '{\"feature\": 0, \"labeler\": \"dsp\"}\\n{\"feature\": 999, \"labeler\": \"dsp\"}\\n' > bad.jsonl") == 0, "setup");
    CHECK(run("dashboard --features f.h5 --labels bad.jsonl -o y") == 1, "a feature out of range was accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "bad.jsonl: line 2: feature: not an integer latent index");
    free(log);
    CHECK(sh("mkdir -p badst && echo '{\"feature\": 0, \"alpha\": 1, \"kind\": \"sideways\", \"prompt\": 0, "
             "\"seed\": 0, \"audio\": \"a.wav\"}' > badst/steer.jsonl") == 0, "setup");
    CHECK(run("dashboard --features f.h5 --steer badst -o y") == 1, "a steer folder without study.json was accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "badst/study.json: cannot read");
    free(log);
    CHECK(sh("echo '{\"features\": [0]}' > badst/study.json") == 0, "setup");
    CHECK(run("dashboard --features f.h5 --steer badst -o y") == 1, "a bad steer kind was accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "badst/steer.jsonl: line 1: kind: not one of baseline, passthrough, steered, random, other");
    free(log);
    /* numbers a double holds but an integer does not: refused, not converted (undefined behaviour) */
    CHECK(sh("echo '{\"kind\": \"baseline\", \"alpha\": 0, \"prompt\": 0, \"seed\": 1e300, \"audio\": null}' "
             "> badst/steer.jsonl") == 0, "setup");
    CHECK(run("dashboard --features f.h5 --steer badst -o y") == 1, "a seed of 1e300 was accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "badst/steer.jsonl: line 1: prompt, seed: not integers");
    free(log);
    CHECK(sh("echo '{\"kind\": \"random\", \"feature\": 0, \"alpha\": 1, \"prompt\": 0, \"seed\": 0, "
             "\"draw\": 1e12, \"audio\": null}' > badst/steer.jsonl") == 0, "setup");
    CHECK(run("dashboard --features f.h5 --steer badst -o y") == 1, "a draw of 1e12 was accepted");
    log = slurp("err.txt");
    CHECK_STR_CONTAINS(log, "badst/steer.jsonl: line 1: draw: not a non-negative integer");
    free(log);
    CHECK(run("dashboard --features s.h5 -o y") == 1, "a store was taken for a FEATURES file");
    CHECK(run("dashboard --features f.h5 -o y --frobnicate") == 1, "an unknown option was accepted");
    features_free(&f);
    check_report();
    scratch_close();
    TEST_END();
}
