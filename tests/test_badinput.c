/* Bad input through the musae binary (issue 13): each case must end in one line "musae: error: ..." that says
 * what is wrong, and exit 1 (never an assertion, an HDF5 abort, a hang or a silent wrong result). Every run has
 * a time limit, so a reader that blocks on a FIFO fails the test instead of hanging it. */
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "host/core/check.h"
#include "host/io/audio.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "test.h"

#include "cli.h"
#include "fixture_io.h"

/* A fixture path; valid until the 8th call after it. */
static const char *fx(const char *rel) {
    static char buf[8][1024];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", test_fixtures(), rel);
    return buf[i];
}

/* run() with a time limit of 120 s: a hang exits 124 (timeout's status). */
MUSAE_PRINTF(1, 2) static int run_limited(const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    return sh("MUSAE_LOG=info timeout 120 %s %s >out.txt 2>err.txt", bin(), args);
}

/* The last run exited 1 with one error line holding `needle`, and nothing from a check macro or HDF5. */
static void refused(int rc, const char *what, const char *needle) {
    CHECK(rc == 1, "%s: exit status %d, expected 1", what, rc);
    char *e = slurp("err.txt");
    int lines = 0;
    for (const char *p = e; (p = strstr(p, "musae: error: ")); p++) lines++;
    CHECK(lines == 1, "%s: %d error lines, expected 1:\n%s", what, lines, e);
    CHECK(strstr(e, needle) != NULL, "%s: stderr lacks '%s':\n%s", what, needle, e);
    CHECK(!strstr(e, "[musae]") && !strstr(e, "HDF5-DIAG"), "%s: a check failure or HDF5 trace:\n%s", what, e);
    free(e);
}
#define REFUSED(needle, ...) refused(run_limited(__VA_ARGS__), #__VA_ARGS__, needle)

static void write_wav(const char *rel, double seconds) {
    const int rate = 32000;
    const int64_t n = (int64_t)(seconds * rate);
    float *x = musae_xmalloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(0.3 * sin(2 * M_PI * 220.0 * (double)i / rate));
    fx_write_wav(at(rel), x, n, rate, 1, MUSAE_AUDIO_PCM16);
    free(x);
}

static void write_codes(const char *rel, musae_dtype dt, const void *c, int64_t B, int64_t K, int64_t F) {
    char err[1024];
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "codes", dt, 3, (int64_t[]){B, K, F}, c);
    MUSAE_ASSERT(musae_st_writer_save(w, at(rel), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
}

/* ---- files that are not what a verb reads ----------------------------------------------------------------- */

static void test_file_kinds(void) {
    const char *m = fx("tiny-musicgen");
    CHECK(sh("mkfifo pipe.safetensors") == 0, "mkfifo");
    REFUSED("pipe.safetensors: is a FIFO (named pipe), not a regular file", "info pipe.safetensors");
    REFUSED("pipe.safetensors: is a FIFO (named pipe), not a regular file", "decode --model %s pipe.safetensors -o x.wav", m);
    REFUSED("pipe.safetensors: is a FIFO", "forward --model %s --codes pipe.safetensors -o x.safetensors", m);
    write_wav("a.wav", 1.0);
    REFUSED("a.wav: not a safetensors file (it looks like a WAV audio file)", "info a.wav");
    CHECK(sh("printf 'hello, this is text\\n' > notes.txt") == 0, "text file");
    REFUSED("notes.txt: not a safetensors file (it looks like a text file)", "info notes.txt");
    CHECK(sh("printf 'hi\\n' > hi.txt && : > empty.safetensors") == 0, "short files");
    REFUSED("hi.txt: not a safetensors file (it looks like a text file)", "info hi.txt"); /* was "truncated" */
    REFUSED("empty.safetensors: is empty (0 bytes), not a safetensors file", "info empty.safetensors");
    REFUSED("s16.h5: not a safetensors file (it looks like an HDF5 file)", "decode --model %s s16.h5 -o y.wav", m);
    REFUSED("notes.txt: not an HDF5 file (it looks like a text file)",
            "train --acts notes.txt --layer 0 --k 2 --expansion 2 -o T");
    REFUSED("pipe.safetensors: is a FIFO (named pipe), not a regular file (expected an HDF5 activation store)",
            "train --acts pipe.safetensors --layer 0 --k 2 --expansion 2 -o T");
    REFUSED("a.wav: not a safetensors file (it looks like a WAV audio file)", "decode --model %s a.wav -o y.wav", m);
}

/* ---- outputs that would replace an input ---------------------------------------------------------------- */

static void test_output_is_input(void) {
    const char *m = fx("tiny-musicgen");
    write_wav("in.wav", 0.5);
    CHECK(sh("cp in.wav in.orig && ln -sf in.wav link.wav") == 0, "copies");
    REFUSED("-o in.wav is the input file: refusing to overwrite it", "encode --model %s in.wav -o in.wav", m);
    REFUSED("-o ./link.wav is the input file", "encode --model %s in.wav -o ./link.wav", m);
    CHECK(same_bytes("in.wav", "in.orig"), "the input is untouched");
    int64_t c[4 * 3] = {0};
    write_codes("c.safetensors", MUSAE_I64, c, 1, 4, 3);
    CHECK(sh("cp c.safetensors c.orig") == 0, "copy");
    REFUSED("-o c.safetensors is the codes file being decoded", "decode --model %s c.safetensors -o c.safetensors", m);
    CHECK(same_bytes("c.safetensors", "c.orig"), "the codes are untouched");
}

/* ---- one reader of the codes format ----------------------------------------------------------------------- */

static void test_codes_rule(void) {
    const char *m = fx("tiny-musicgen");
    int32_t c32[4 * 3] = {0};
    write_codes("c32.safetensors", MUSAE_I32, c32, 1, 4, 3);
    REFUSED("c32.safetensors: tensor 'codes' has dtype I32, expected I64", "decode --model %s c32.safetensors -o x.wav", m);
    REFUSED("c32.safetensors: tensor 'codes' has dtype I32, expected I64",
            "forward --model %s --codes c32.safetensors -o x.safetensors", m);
    int64_t c[4 * 3] = {0};
    c[5] = 2048;
    write_codes("range.safetensors", MUSAE_I64, c, 1, 4, 3);
    REFUSED("range.safetensors: codes[0, 1, 2] = 2048 is outside 0..2047", "decode --model %s range.safetensors -o x.wav", m);
    REFUSED("range.safetensors: codes[0, 1, 2] = 2048 is outside 0..2047",
            "forward --model %s --codes range.safetensors -o x.safetensors", m);
}

/* ---- SAE checkpoints ---------------------------------------------------------------------------------------- */

/* An SAE folder (cfg.json + sae.safetensors, sparsify's layout) of d 16, 32 latents, k 2; `poison` NaN/Inf goes
 * into W_dec[3, 5] when nonzero. */
static void write_sae(const char *dir, float poison) {
    CHECK(sh("mkdir -p '%s' && printf '{\"d_in\": 16, \"num_latents\": 32, \"k\": 2}' > '%s/cfg.json'", dir, dir) == 0,
          "cfg.json");
    float We[32 * 16], be[32] = {0}, Wd[32 * 16], bd[16] = {0};
    for (int i = 0; i < 32 * 16; i++) We[i] = Wd[i] = (float)((i * 37 % 17) - 8) / 32.0f;
    if (poison != 0) Wd[3 * 16 + 5] = poison;
    musae_st_writer *w = musae_st_writer_new();
    musae_st_writer_add(w, "encoder.weight", MUSAE_F32, 2, (int64_t[]){32, 16}, We);
    musae_st_writer_add(w, "encoder.bias", MUSAE_F32, 1, (int64_t[]){32}, be);
    musae_st_writer_add(w, "W_dec", MUSAE_F32, 2, (int64_t[]){32, 16}, Wd);
    musae_st_writer_add(w, "b_dec", MUSAE_F32, 1, (int64_t[]){16}, bd);
    char p[2048], err[1024];
    snprintf(p, sizeof p, "%s/sae.safetensors", dir);
    CHECK(musae_st_writer_save(w, at(p), err, sizeof err) == 0, "%s", err);
    musae_st_writer_free(w);
}

static void test_sae_files(void) {
    write_sae("nan_sae", NAN);
    REFUSED("nan_sae/sae.safetensors: tensor W_dec holds a non-finite value (nan at [3, 5])",
            "evaluate --sae nan_sae --acts s16.h5 --layer 0");
    REFUSED("tensor W_dec holds a non-finite value", "info nan_sae");
    write_sae("inf_sae", INFINITY);
    REFUSED("inf_sae/sae.safetensors: tensor W_dec holds a non-finite value (inf at [3, 5])",
            "evaluate --sae inf_sae --acts s16.h5 --layer 0");
    /* a folder with sae.safetensors but no cfg.json: say so, not "no model.safetensors" */
    write_sae("nocfg", 0);
    CHECK(sh("rm nocfg/cfg.json") == 0, "rm cfg.json");
    REFUSED("nocfg: no cfg.json (an SAE checkpoint is sae.safetensors + cfg.json", "info nocfg");
    /* evaluate's line is JSON whatever the path holds: quotes and backslashes escaped */
    write_sae("we\"ird\\sae", 0);
    CHECK(run("evaluate --sae 'we\"ird\\sae' --acts s16.h5 --layer 0 --split all") == 0, "evaluate a good SAE");
    char *out = slurp("out.txt");
    cJSON *j = cJSON_Parse(out);
    CHECK(j != NULL, "evaluate printed invalid JSON: %s", out);
    const cJSON *sae = cJSON_GetObjectItemCaseSensitive(j, "sae");
    CHECK(cJSON_IsString(sae) && !strcmp(sae->valuestring, "we\"ird\\sae"), "the path round-trips: %s", out);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "fvu")), "fvu is a number: %s", out);
    cJSON_Delete(j);
    free(out);
}

/* ---- musae train -------------------------------------------------------------------------------------------- */

/* A store of d 8 whose rows are all the same vector: no batch of it has any variance. */
static void write_constant_store(const char *rel) {
    musae_store_writer *w = fx_store_create(at(rel), "constant", 8, 0);
    float rows[100 * 8];
    for (int i = 0; i < 100 * 8; i++) rows[i] = (float)(i % 8) * 0.25f;
    const float *acts[1] = {rows};
    for (int c = 0; c < 20; c++) {
        char name[32];
        snprintf(name, sizeof name, "clip%d", c);
        musae_store_add_clip(w, name, 100, acts);
    }
    musae_store_close_writer(w, 1);
}

static void test_train(void) {
#define TR "train --acts s16.h5 --layer 0 --k 2 --expansion 2 --eval-tokens 256 --init-rows 256 "
    REFUSED("--batch 1: a step needs at least 2 rows", TR "--tokens 1000 --batch 1 -o B1");
    REFUSED("--tokens 1001 with --batch 100 leaves a last step of 1 row", TR "--tokens 1001 --batch 100 -o B2");
    CHECK(run(TR "--tokens 1000 --batch 2 -o B3") == 0, "--batch 2 trains");
    /* -o a file: refused before anything streams (it was an HDF5 abort in the reader thread) */
    CHECK(sh("echo keep > afile") == 0, "a file");
    REFUSED("-o afile: exists and is not a folder", TR "--tokens 1000 --batch 100 -o afile");
    char *kept = slurp("afile");
    CHECK(!strcmp(kept, "keep\n"), "the file is untouched: '%s'", kept);
    free(kept);
    REFUSED("afile/x: cannot create: Not a directory", TR "--tokens 1000 --batch 100 -o afile/x");
    /* a window larger than the store is the whole store (10^12 rows was an out-of-memory abort) */
    CHECK(run(TR "--tokens 1000 --batch 100 --shuffle-rows 1000000000000 -o W") == 0, "--shuffle-rows 10^12 trains");
    /* a store of identical rows: one line, exit 1, and no HDF5 abort from the reader thread */
    write_constant_store("const.h5");
    REFUSED("a batch of 100 rows has total variance 0 (every row the same)",
            "train --acts const.h5 --layer 0 --k 2 --expansion 2 --tokens 1000 --batch 100 --init-rows 100 -o C");
#undef TR
}

/* ---- generate ------------------------------------------------------------------------------------------------ */

static void test_generate(void) {
    const char *m = fx("tiny-musicgen");
    REFUSED("--frames and --seconds exclude each other", "generate --model %s --frames 10 --seconds 1 --codes-out x.safetensors", m);
    /* a model folder whose generation_config.json holds guidance_scale -3 (the rest links to the fixture) */
    CHECK(sh("mkdir -p gneg && ln -sf %s/* gneg/ && rm gneg/generation_config.json && "
             "printf '{\"guidance_scale\": -3, \"max_length\": 1500, \"do_sample\": true}' > gneg/generation_config.json", m) == 0,
          "gneg (setup)");
    REFUSED("gneg/generation_config.json: guidance_scale: -3 is outside 0..1000",
            "generate --model gneg --frames 2 --codes-out x.safetensors");
    CHECK(sh("printf '{\"top_p\": 0}' > gneg/generation_config.json") == 0, "top_p 0");
    REFUSED("gneg/generation_config.json: top_p: 0 is outside (0, 1]", "generate --model gneg --frames 2 --codes-out x.safetensors");
}

/* ---- capture ---------------------------------------------------------------------------------------------- */

#define CAP "capture --layers 1 --clip-seconds 1 --dtype f32 "

static int64_t store_clips(const char *rel) {
    char err[1024];
    musae_store *s = musae_store_open(at(rel), err, sizeof err);
    if (!s) return -1;
    const int64_t n = musae_store_get_info(s)->n_clips;
    musae_store_close(s);
    return n;
}

static void test_capture(void) {
    const char *m = fx("tiny-musicgen");
    CHECK(sh("mkdir -p d1 d2 && cp a.wav d1/a.wav && cp a.wav d2/b.wav") == 0, "audio (setup)");
    CHECK(run(CAP "--model %s --audio d1 -o st.h5", m) == 0, "capture d1");
    /* a copy of the model folder is the same model: its id differs only in the folder name */
    CHECK(sh("cp -r %s copied_model", m) == 0, "copy the model (setup)");
    CHECK(run(CAP "--model copied_model --audio d2 -o st.h5") == 0, "a copied model folder continues the store");
    CHECK(store_clips("st.h5") == 2, "both files captured: %lld clips", (long long)store_clips("st.h5"));
    /* ... and another model (other weights) still is refused */
    CHECK(sh("cp -r %s changed_model && echo ' ' >> changed_model/config.json", m) == 0, "changed model (setup)");
    REFUSED("refusing to mix models", CAP "--model changed_model --audio d2 -o st.h5");

    /* a store that cannot be written: the system's reason, not just "cannot open for writing" */
    CHECK(sh("mkdir -p d3 && cp a.wav d3/c.wav") == 0, "d3 (setup)");
    const int root = getuid() == 0;
    if (sh(root ? "chattr +i st.h5 2>/dev/null" : "chmod a-w st.h5") == 0) {
        REFUSED(root ? "st.h5: cannot open the activation store for writing: Operation not permitted"
                     : "st.h5: cannot open the activation store for writing: Permission denied",
                CAP "--model %s --audio d3 -o st.h5", m);
        sh(root ? "chattr -i st.h5" : "chmod u+w st.h5");
    } else {
        printf("not checked: a read-only store (root, and chattr +i is not supported here)\n");
    }

    /* an unreadable subfolder is skipped with the reason, as unreadable files are; the rest is captured. Root
     * reads any folder, so as root the capture runs as nobody (setpriv) in a folder nobody may write. */
    CHECK(sh("mkdir -p nb/walk/ok nb/walk/locked nb/only/locked && cp a.wav nb/walk/ok/ && cp a.wav nb/walk/locked/ && "
             "cp a.wav nb/only/locked/ && chmod 777 nb && chmod 000 nb/walk/locked nb/only/locked") == 0, "nb (setup)");
    const char *as = root ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
    /* as nobody, the binary, the fixture and nb/ must be reachable (a checkout under /root is not) */
    if (root && sh("%ssh -c 'test -x %s && test -r %s/model.safetensors && test -w nb && test ! -r nb/walk/locked'", as,
                   bin(), m) != 0) {
        printf("not checked: an unreadable subfolder (root reads every folder, and user nobody cannot reach the "
               "binary, the fixture or the scratch folder here)\n");
    } else {
        const int rc = sh("MUSAE_LOG=info timeout 120 %s%s " CAP "--model %s --audio nb/walk -o nb/walk.h5 >out.txt 2>err.txt",
                          as, bin(), m);
        CHECK(rc == 0, "a dataset with an unreadable subfolder is captured (status %d)", rc);
        err_has("nb/walk/locked: cannot read the folder: Permission denied");
        CHECK(store_clips("nb/walk.h5") == 1, "the readable file is captured: %lld clips", (long long)store_clips("nb/walk.h5"));
        /* and when every audio file is in unreadable folders, the error says so */
        refused(sh("MUSAE_LOG=info timeout 120 %s%s " CAP "--model %s --audio nb/only -o nb/only.h5 >out.txt 2>err.txt", as,
                   bin(), m),
                "capture of unreadable folders only",
                "nb/only: no audio files in the 1 folder(s) that could be read; 1 could not, e.g. nb/only/locked: cannot "
                "read the folder: Permission denied");
    }
    sh("chmod 755 nb/walk/locked nb/only/locked");

    /* the caption validator is the tokenizer's: an overlong '/' (0xC0 0xAF) is refused, not only bad bytes */
    FILE *f = fopen(at("caps.txt"), "w");
    fprintf(f, "d1/a.wav\tcalm \xc0\xaf piano\nd2/b.wav\tfine caption\n");
    fclose(f);
    CHECK(run(CAP "--model %s --audio caps.txt --captions -o caps.h5", m) == 0, "capture --captions");
    err_has("d1/a.wav: the caption on line 1 is not valid UTF-8 (byte 0xc0 at offset 5)");
    CHECK(store_clips("caps.h5") == 1, "the file with a valid caption is captured");
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    scratch_open("test_badinput");
    /* a small planted store for evaluate and train (its failure fails the test: nothing below can run) */
    CHECK(run("synth_acts -o s16.h5 --d 16 --concepts 8 --k-true 2 --rows 3000 --clip-frames 100") == 0,
          "synth_acts (setup)");
    test_file_kinds();
    test_output_is_input();
    test_codes_rule();
    test_sae_files();
    test_train();
    test_generate();
    test_capture();
    scratch_close();
    TEST_END();
}
