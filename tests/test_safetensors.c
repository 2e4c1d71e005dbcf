/* safetensors reader and writer against bad and good input:
 *   (a) every file of tests/corpus/safetensors/bad is rejected with its own message (expected.tsv), naming the
 *       file, both through musae_st_open (mmap) and musae_st_parse (in memory), and by `musae info`;
 *   (b) the good files load, with dtype conversion checked exactly;
 *   (c) the writer round-trips every dtype, metadata, zero-size and rank-0 tensors, atomically;
 *   (d) a model written as 2 shards + index reads identically to the single file; index errors are specific;
 *   (e) `musae info` on files and folders, and on the committed tiny fixture model and its sharded copy. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/dtype.h"
#include "host/core/tensor.h"
#include "host/io/path.h"
#include "host/io/safetensors.h"
#include "test.h"

#ifndef MUSAE_CORPUS
#define MUSAE_CORPUS "tests/corpus"
#endif

static char g_err[1024];

/* ---- helpers ------------------------------------------------------------------------------------------- */

static void write_text(const char *path, const char *txt) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(txt, f);
    fclose(f);
}

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Runs `musae <args> 2>&1`; returns the exit status (-1 if it did not exit) and the output (malloc'd). */
static int run_musae(const char *args, char **out) {
    const char *bin = getenv("MUSAE_BIN");
#ifdef MUSAE_BIN
    if (!bin) bin = MUSAE_BIN;
#endif
    if (!bin) bin = "musae";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    if (!p) {
        perror("popen");
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 4096) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    int st = pclose(p);
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void mkdir_p(const char *d) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", d, d);
    if (system(cmd) != 0) {
        fprintf(stderr, "cannot create %s\n", d);
        exit(1);
    }
}

/* Runs fn in a child with stderr captured; checks that it exits non-zero with `needle` in its stderr. */
static void expect_death(void (*fn)(void *), void *arg, const char *needle, const char *what) {
    char path[4096];
    snprintf(path, sizeof path, "%s/st_death.%d.txt", test_tmp(), (int)getpid());
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(path, "w", stderr)) _exit(99);
        fn(arg);
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char *txt = musae_read_file(path, NULL, NULL, 0);
    CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "%s: expected a failure", what);
    CHECK(txt && strstr(txt, needle), "%s: stderr '%s' lacks '%s'", what, txt ? txt : "(none)", needle);
    free(txt);
    unlink(path);
}

/* ---- (a) the bad corpus ------------------------------------------------------------------------------- */

typedef struct {
    char file[128];
    char msg[512];
} bad_case;

static int load_expected(bad_case *cases, int max) {
    char *txt = musae_read_file(MUSAE_CORPUS "/safetensors/expected.tsv", NULL, NULL, 0);
    CHECK(txt != NULL, "cannot read %s", MUSAE_CORPUS "/safetensors/expected.tsv");
    if (!txt) return 0;
    int n = 0;
    for (char *line = strtok(txt, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !line[0]) continue;
        char *tab = strchr(line, '\t');
        CHECK(tab != NULL, "expected.tsv line without a tab: %s", line);
        if (!tab) continue;
        *tab = 0;
        snprintf(cases[n].file, sizeof cases[n].file, "%s", line);
        snprintf(cases[n].msg, sizeof cases[n].msg, "%s", tab + 1);
        n++;
    }
    free(txt);
    return n;
}

static void test_bad_corpus(void) {
    static bad_case cases[256];
    int n = load_expected(cases, 256);
    CHECK(n >= 14, "only %d malformed files in expected.tsv", n);

    /* every file in bad/ has an expectation (a new case cannot slip in untested) */
    DIR *d = opendir(MUSAE_CORPUS "/safetensors/bad");
    CHECK(d != NULL, "cannot list the bad corpus");
    int n_files = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        n_files++;
        int found = 0;
        for (int i = 0; i < n; i++) found |= !strcmp(cases[i].file, e->d_name);
        CHECK(found, "bad/%s has no line in expected.tsv", e->d_name);
    }
    if (d) closedir(d);
    CHECK(n_files == n, "%d files in bad/ but %d lines in expected.tsv", n_files, n);

    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/safetensors/bad/%s", MUSAE_CORPUS, cases[i].file);
        musae_st st;
        g_err[0] = 0;
        int rc = musae_st_open(&st, path, g_err, sizeof g_err);
        CHECK(rc != 0, "%s: opened, but it is malformed", cases[i].file);
        if (rc == 0) {
            musae_st_close(&st);
            continue;
        }
        CHECK(strstr(g_err, cases[i].msg) != NULL, "%s: message '%s' lacks '%s'", cases[i].file, g_err, cases[i].msg);
        CHECK(strstr(g_err, cases[i].file) != NULL, "%s: message '%s' does not name the file", cases[i].file, g_err);
        /* its own message: no other case's expectation matches it */
        for (int j = 0; j < n; j++)
            if (j != i)
                CHECK(strstr(g_err, cases[j].msg) == NULL, "%s: message '%s' also matches the case %s", cases[i].file,
                      g_err, cases[j].file);
        /* the in-memory parser (the fuzz target's entry) says the same */
        size_t sz = 0;
        char *buf = musae_read_file(path, &sz, NULL, 0);
        char err2[1024] = "";
        rc = musae_st_parse(&st, cases[i].file, (const uint8_t *)buf, sz, err2, sizeof err2);
        CHECK(rc != 0 && strstr(err2, cases[i].msg), "%s: musae_st_parse gave rc %d '%s'", cases[i].file, rc, err2);
        if (rc == 0) musae_st_close(&st);
        free(buf);
        /* and so does the CLI, with a non-zero exit */
        char args[4200], *out = NULL;
        snprintf(args, sizeof args, "info '%s'", path);
        int ex = run_musae(args, &out);
        CHECK(ex == 1, "musae info %s exited %d, a refusal exits 1", cases[i].file, ex);
        CHECK(strstr(out, cases[i].msg) && strstr(out, cases[i].file), "musae info %s printed '%s'", cases[i].file, out);
        free(out);
    }
    /* a truncated message buffer is still NUL-terminated and the call still fails */
    char tiny[8];
    musae_st st;
    CHECK(musae_st_open(&st, MUSAE_CORPUS "/safetensors/bad/truncated.safetensors", tiny, sizeof tiny) != 0, "tiny err");
    CHECK(strlen(tiny) == sizeof tiny - 1, "err truncated to its buffer");
    CHECK(musae_st_open(&st, "/nonexistent/x.safetensors", g_err, sizeof g_err) != 0, "missing file");
    CHECK_STR_CONTAINS(g_err, "/nonexistent/x.safetensors: cannot open");
    CHECK(musae_st_open(&st, MUSAE_CORPUS "/safetensors", g_err, sizeof g_err) != 0, "folder without a model");
    CHECK_STR_CONTAINS(g_err, "folder has neither model.safetensors nor model.safetensors.index.json");
    printf("bad corpus: %d files rejected, each with its own message\n", n);
}

/* ---- (b) good files ------------------------------------------------------------------------------------ */

static const float k_floats[6] = {1.0f, -2.0f, 0.5f, -0.25f, 3.0f, 1024.0f};
static const int32_t k_i32[6] = {1, -2, 3, -4, INT32_MAX, INT32_MIN};
static const int64_t k_i64[6] = {1, -2, 3, -4, 5, -6};

static musae_st open_good(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/safetensors/good/%s", MUSAE_CORPUS, name);
    musae_st st;
    int rc = musae_st_open(&st, path, g_err, sizeof g_err);
    CHECK(rc == 0, "%s: %s", name, g_err);
    if (rc) {
        fprintf(stderr, "cannot continue without %s\n", name);
        exit(1);
    }
    return st;
}

static void check_shape(musae_st *st, const char *name, const char *dtype, int rank, const int64_t *shape) {
    musae_st_tensor *t = musae_st_find(st, name);
    CHECK(t != NULL, "tensor %s missing", name);
    if (!t) return;
    CHECK(!strcmp(t->dtype, dtype), "%s: dtype %s, want %s", name, t->dtype, dtype);
    CHECK(t->rank == rank, "%s: rank %d, want %d", name, t->rank, rank);
    for (int i = 0; i < rank && i < t->rank; i++)
        CHECK(t->shape[i] == shape[i], "%s: shape[%d] = %lld, want %lld", name, i, (long long)t->shape[i],
              (long long)shape[i]);
}

static void test_good_files(void) {
    musae_st st = open_good("empty_header.safetensors");
    CHECK(st.n_tensors == 0 && st.n_meta == 0, "empty header: %d tensors %d meta", st.n_tensors, st.n_meta);
    CHECK(musae_st_find(&st, "anything") == NULL, "find in an empty file");
    musae_st_close(&st);

    st = open_good("zero_size.safetensors");
    CHECK(st.n_tensors == 4, "zero_size: %d tensors", st.n_tensors);
    check_shape(&st, "empty", "F32", 2, (int64_t[]){0, 3});
    check_shape(&st, "empty_end", "F16", 2, (int64_t[]){4, 0});
    check_shape(&st, "scalar", "F32", 0, NULL);
    int rank = -1;
    int64_t shape[MUSAE_ST_MAX_RANK];
    float *e = musae_st_load_any(&st, "empty", MUSAE_F32, &rank, shape);
    CHECK(e != NULL && rank == 2 && shape[0] == 0 && musae_st_numel(musae_st_find(&st, "empty")) == 0, "empty load");
    free(e);
    uint16_t *e16 = musae_st_load(&st, "empty_end", MUSAE_F32, 2, (int64_t[]){4, 0});
    free(e16);
    float *sc = musae_st_load(&st, "scalar", MUSAE_F32, 0, NULL);
    CHECK(sc[0] == 7.5f, "scalar %g", (double)sc[0]);
    free(sc);
    int64_t *big = musae_st_load(&st, "big", MUSAE_I64, 1, (int64_t[]){2});
    CHECK(big[0] == (int64_t)1 << 40 && big[1] == -((int64_t)1 << 40), "i64 2^40 exact");
    free(big);
    float *bigf = musae_st_load(&st, "big", MUSAE_F32, 1, (int64_t[]){2});
    CHECK(bigf[0] == ldexpf(1, 40) && bigf[1] == -ldexpf(1, 40), "i64 -> f32");
    free(bigf);
    CHECK(musae_st_report_unused(&st, "") == 0, "all tensors used");
    musae_st_close(&st);

    st = open_good("all_dtypes.safetensors");
    CHECK(st.n_tensors == 15, "all_dtypes: %d tensors", st.n_tensors);
    CHECK(st.files[0].data_off % 8 != 0, "all_dtypes is written unpadded so its data is unaligned (off %zu)",
          st.files[0].data_off);
    const int64_t s23[2] = {2, 3};
    const char *floats[] = {"f32", "f16", "bf16", "f64"}, *fdt[] = {"F32", "F16", "BF16", "F64"};
    for (int k = 0; k < 4; k++) {
        check_shape(&st, floats[k], fdt[k], 2, s23);
        float *f = musae_st_load(&st, floats[k], MUSAE_F32, 2, s23);
        uint16_t *h = musae_st_load(&st, floats[k], MUSAE_F16, 2, s23);
        uint16_t *b = musae_st_load(&st, floats[k], MUSAE_BF16, 2, s23);
        for (int i = 0; i < 6; i++) {
            CHECK(f[i] == k_floats[i], "%s[%d] -> f32 = %g, want %g", floats[k], i, (double)f[i], (double)k_floats[i]);
            CHECK(h[i] == musae_f32_to_f16(k_floats[i]), "%s[%d] -> f16 0x%04x", floats[k], i, h[i]);
            CHECK(b[i] == musae_f32_to_bf16(k_floats[i]), "%s[%d] -> bf16 0x%04x", floats[k], i, b[i]);
        }
        free(f), free(h), free(b);
    }
    check_shape(&st, "i32", "I32", 2, s23);
    int32_t *i32 = musae_st_load(&st, "i32", MUSAE_I32, 2, s23);
    int64_t *i32_64 = musae_st_load(&st, "i32", MUSAE_I64, 2, s23);
    float *i32_f = musae_st_load(&st, "i32", MUSAE_F32, 2, s23);
    for (int i = 0; i < 6; i++) {
        CHECK(i32[i] == k_i32[i], "i32[%d] = %d", i, i32[i]);
        CHECK(i32_64[i] == k_i32[i], "i32[%d] -> i64 = %lld", i, (long long)i32_64[i]);
        CHECK(i32_f[i] == (float)k_i32[i], "i32[%d] -> f32 = %g", i, (double)i32_f[i]);
    }
    free(i32), free(i32_64), free(i32_f);
    check_shape(&st, "i64", "I64", 2, s23);
    int64_t *i64 = musae_st_load(&st, "i64", MUSAE_I64, 2, s23);
    int32_t *i64_32 = musae_st_load(&st, "i64", MUSAE_I32, 2, s23);
    float *i64_f = musae_st_load(&st, "i64", MUSAE_F32, 2, s23);
    for (int i = 0; i < 6; i++) {
        CHECK(i64[i] == k_i64[i] && i64_32[i] == k_i64[i] && i64_f[i] == (float)k_i64[i], "i64[%d]", i);
    }
    free(i64), free(i64_32), free(i64_f);
    /* types musae parses and lists but does not load */
    const char *other[] = {"bool", "u8", "i8", "i16", "u16", "u32", "u64", "f8_e4m3", "f8_e5m2"};
    const size_t other_size[] = {1, 1, 1, 2, 2, 4, 8, 1, 1};
    for (int k = 0; k < 9; k++) {
        musae_st_tensor *t = musae_st_find(&st, other[k]);
        CHECK(t && t->rank == 1 && t->shape[0] == 2, "%s listed", other[k]);
        if (!t) continue;
        CHECK(musae_st_dtype_size(t->dtype) == other_size[k], "%s size", other[k]);
        CHECK(!musae_st_dtype_known(t->dtype), "%s must not count as loadable", t->dtype);
        CHECK(t->nbytes == 2 * other_size[k], "%s nbytes %zu", other[k], t->nbytes);
    }
    CHECK(musae_st_dtype_size("F12") == 0 && !musae_st_dtype_known("F12"), "unknown dtype");
    musae_st_close(&st);

    st = open_good("metadata.safetensors");
    CHECK(st.n_meta == 3, "metadata: %d entries", st.n_meta);
    CHECK(musae_st_meta(&st, "format") && !strcmp(musae_st_meta(&st, "format"), "pt"), "format");
    CHECK(musae_st_meta(&st, "note") && !strcmp(musae_st_meta(&st, "note"), "caf\xc3\xa9 \xe2\x9c\x93"), "utf-8 note");
    CHECK(musae_st_meta(&st, "empty") && !musae_st_meta(&st, "empty")[0], "empty value");
    CHECK(musae_st_meta(&st, "absent") == NULL, "absent key");
    musae_st_close(&st);
}

/* Loader misuse ends the process with a got/expected message (musae_fail); checked in a child. */
static void die_wrong_shape(void *arg) {
    musae_st st = open_good("all_dtypes.safetensors");
    free(musae_st_load(&st, "f32", MUSAE_F32, 2, (int64_t[]){3, 2}));
}
static void die_missing(void *arg) {
    musae_st st = open_good("all_dtypes.safetensors");
    free(musae_st_load(&st, "nope", MUSAE_F32, 1, (int64_t[]){1}));
}
static void die_unloadable(void *arg) {
    musae_st st = open_good("all_dtypes.safetensors");
    free(musae_st_load(&st, "u8", MUSAE_F32, 1, (int64_t[]){2}));
}

static void die_float_as_int(void *arg) {
    musae_st st = open_good("all_dtypes.safetensors");
    free(musae_st_load(&st, "f16", MUSAE_I64, 2, (int64_t[]){2, 3}));
}

static void test_load_errors(void) {
    expect_death(die_float_as_int, NULL, "tensor 'f16' holds F16 values; reading them as i64 is not supported",
                 "float read as int");
    expect_death(die_wrong_shape, NULL, "tensor 'f32' has shape [2, 3], expected [3, 2]", "wrong shape");
    expect_death(die_missing, NULL, "tensor 'nope' is missing", "missing tensor");
    expect_death(die_unloadable, NULL, "tensor 'u8' has dtype U8", "unloadable dtype");
}

/* ---- (c) writer round trip ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    musae_dtype dt;
    int rank;
    int64_t shape[4];
} wspec;

/* The model used by the round-trip and sharding tests: every dtype, odd sizes, zero-size and rank-0. */
static const wspec k_model[] = {
    {"decoder.embed.weight", MUSAE_F32, 2, {7, 5}},   {"decoder.ln.bias", MUSAE_F16, 1, {13}},
    {"decoder.ln.weight", MUSAE_BF16, 1, {13}},       {"decoder.proj.weight", MUSAE_F32, 3, {3, 4, 5}},
    {"codes", MUSAE_I64, 3, {1, 4, 9}},               {"lengths", MUSAE_I32, 1, {3}},
    {"empty", MUSAE_F32, 2, {0, 8}},                  {"step", MUSAE_I64, 0, {0}},
    {"z.last", MUSAE_F16, 4, {1, 2, 3, 1}},
};
#define N_MODEL ((int)(sizeof k_model / sizeof k_model[0]))

static size_t spec_bytes(const wspec *w) {
    size_t n = 1;
    for (int i = 0; i < w->rank; i++) n *= (size_t)w->shape[i];
    return n * musae_dtype_size(w->dt);
}

/* Deterministic content: byte pattern per tensor, kept finite for the float types. */
static void *spec_data(const wspec *w, int which) {
    size_t nb = spec_bytes(w), el = musae_dtype_size(w->dt), n = nb / el;
    uint8_t *d = malloc(nb ? nb : 1);
    for (size_t i = 0; i < n; i++) {
        float v = (float)((int)(i * 7 + (size_t)which * 3) % 23 - 11) * 0.125f;
        switch (w->dt) {
        case MUSAE_F32: memcpy(d + i * 4, &v, 4); break;
        case MUSAE_F16: {
            uint16_t h = musae_f32_to_f16(v);
            memcpy(d + i * 2, &h, 2);
        } break;
        case MUSAE_BF16: {
            uint16_t h = musae_f32_to_bf16(v);
            memcpy(d + i * 2, &h, 2);
        } break;
        case MUSAE_I32: {
            int32_t x = (int32_t)(i * 1000003u) - 5;
            memcpy(d + i * 4, &x, 4);
        } break;
        case MUSAE_I64: {
            int64_t x = ((int64_t)i << 35) - which;
            memcpy(d + i * 8, &x, 8);
        } break;
        default: break;
        }
    }
    return d;
}

static void add_spec(musae_st_writer *w, int k) {
    void *d = spec_data(&k_model[k], k);
    musae_st_writer_add(w, k_model[k].name, k_model[k].dt, k_model[k].rank, k_model[k].shape, d);
    free(d);
}

static int count_tmp_files(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    size_t L = strlen(prefix);
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, prefix, L) && strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

/* Every tensor of k_model is in st, with the dtype, shape and bytes it was written with. */
static void check_model(musae_st *st, const char *what) {
    static const char *dtn[] = {"F32", "F16", "BF16", "I32", "I64"};
    CHECK(st->n_tensors == N_MODEL, "%s: %d tensors", what, st->n_tensors);
    for (int k = 0; k < N_MODEL; k++) {
        musae_st_tensor *t = musae_st_find(st, k_model[k].name);
        CHECK(t != NULL, "%s: %s missing", what, k_model[k].name);
        if (!t) continue;
        CHECK(!strcmp(t->dtype, dtn[k_model[k].dt]), "%s: %s dtype %s", what, t->name, t->dtype);
        int ok = t->rank == k_model[k].rank;
        for (int i = 0; ok && i < t->rank; i++) ok = t->shape[i] == k_model[k].shape[i];
        CHECK(ok, "%s: %s shape", what, t->name);
        void *want = spec_data(&k_model[k], k);
        CHECK(t->nbytes == spec_bytes(&k_model[k]) && (t->nbytes == 0 || !memcmp(t->data, want, t->nbytes)),
              "%s: %s bytes differ", what, t->name);
        void *got = musae_st_load_any(st, t->name, k_model[k].dt, NULL, NULL);
        CHECK(t->nbytes == 0 || !memcmp(got, want, t->nbytes), "%s: %s loaded bytes differ", what, t->name);
        free(got), free(want);
    }
}

static void test_writer(void) {
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s/st_writer", test_tmp());
    mkdir_p(dir);
    snprintf(path, sizeof path, "%s/roundtrip.safetensors", dir);
    musae_st_writer *w = musae_st_writer_new();
    for (int k = 0; k < N_MODEL; k++) add_spec(w, k);
    musae_st_writer_meta(w, "format", "pt");
    musae_st_writer_meta(w, "note", "replaced below");
    musae_st_writer_meta(w, "note", "caf\xc3\xa9 \"quoted\" \\ back");
    CHECK(musae_st_writer_save(w, path, g_err, sizeof g_err) == 0, "save: %s", g_err);
    /* saving again over the existing file (the atomic rename path) gives the same bytes */
    size_t n1 = 0, n2 = 0;
    char *first = musae_read_file(path, &n1, NULL, 0);
    CHECK(musae_st_writer_save(w, path, g_err, sizeof g_err) == 0, "second save: %s", g_err);
    char *second = musae_read_file(path, &n2, NULL, 0);
    CHECK(first && second && n1 == n2 && !memcmp(first, second, n1), "re-save is byte-identical");
    free(first), free(second);
    CHECK(count_tmp_files(dir, "roundtrip") == 0, "a temp file was left behind");
    /* an unwritable destination fails with the path, leaves nothing */
    char bad[4300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", dir);
    CHECK(musae_st_writer_save(w, bad, g_err, sizeof g_err) != 0, "save into a missing folder");
    CHECK_STR_CONTAINS(g_err, "x.safetensors: cannot write");
    musae_st_writer_free(w);

    musae_st st;
    CHECK(musae_st_open(&st, path, g_err, sizeof g_err) == 0, "reopen: %s", g_err);
    CHECK(st.files[0].data_off % 8 == 0, "the writer pads the header so data is 8-aligned (%zu)", st.files[0].data_off);
    check_model(&st, "round trip");
    CHECK(st.n_meta == 2, "meta count %d", st.n_meta);
    CHECK(musae_st_meta(&st, "note") && !strcmp(musae_st_meta(&st, "note"), "caf\xc3\xa9 \"quoted\" \\ back"), "meta");
    musae_st_close(&st);

    /* an empty writer makes a valid empty file */
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    w = musae_st_writer_new();
    CHECK(musae_st_writer_save(w, path, g_err, sizeof g_err) == 0, "empty save: %s", g_err);
    musae_st_writer_free(w);
    CHECK(musae_st_open(&st, path, g_err, sizeof g_err) == 0 && st.n_tensors == 0, "empty reopen: %s", g_err);
    musae_st_close(&st);

    CHECK(musae_write_file_atomic(bad, "x", 1) != 0, "atomic write into a missing folder");
    CHECK(count_tmp_files(dir, "") == 0, "temp files left in %s", dir);
}

/* ---- (d) sharded checkpoints ----------------------------------------------------------------------------- */

#define SHARD1 "model-00001-of-00002.safetensors"
#define SHARD2 "model-00002-of-00002.safetensors"

/* Writes k_model into dir as the two shards (first half / second half) plus an index made of `map` lines. */
static void write_shards(const char *dir) {
    char p[4200];
    musae_st_writer *w1 = musae_st_writer_new(), *w2 = musae_st_writer_new();
    for (int k = 0; k < N_MODEL; k++) add_spec(k < N_MODEL / 2 ? w1 : w2, k);
    musae_st_writer_meta(w1, "format", "pt");
    musae_st_writer_meta(w2, "format", "pt");
    snprintf(p, sizeof p, "%s/" SHARD1, dir);
    CHECK(musae_st_writer_save(w1, p, g_err, sizeof g_err) == 0, "%s", g_err);
    snprintf(p, sizeof p, "%s/" SHARD2, dir);
    CHECK(musae_st_writer_save(w2, p, g_err, sizeof g_err) == 0, "%s", g_err);
    musae_st_writer_free(w1);
    musae_st_writer_free(w2);
}

/* The index as HF writes it; `extra` is spliced into weight_map verbatim (for the error cases), and the
 * entry of tensor `skip` is left out. `move` maps that tensor to the other shard. */
static void write_index(const char *dir, const char *extra, const char *skip, const char *move) {
    size_t cap = 1 << 14, n = 0;
    char *txt = malloc(cap);
    n += (size_t)snprintf(txt + n, cap - n, "{\n  \"metadata\": {\"total_size\": 1234},\n  \"weight_map\": {\n");
    int first = 1;
    for (int k = 0; k < N_MODEL; k++) {
        if (skip && !strcmp(skip, k_model[k].name)) continue;
        int in1 = k < N_MODEL / 2;
        if (move && !strcmp(move, k_model[k].name)) in1 = !in1;
        n += (size_t)snprintf(txt + n, cap - n, "%s    \"%s\": \"%s\"", first ? "" : ",\n", k_model[k].name,
                              in1 ? SHARD1 : SHARD2);
        first = 0;
    }
    if (extra) n += (size_t)snprintf(txt + n, cap - n, ",\n    %s", extra);
    snprintf(txt + n, cap - n, "\n  }\n}\n");
    char p[4200];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", dir);
    write_text(p, txt);
    free(txt);
}

static void expect_index_error(const char *dir, const char *needle, const char *what) {
    musae_st st;
    g_err[0] = 0;
    int rc = musae_st_open(&st, dir, g_err, sizeof g_err);
    CHECK(rc != 0, "%s: opened", what);
    if (rc == 0) {
        musae_st_close(&st);
        return;
    }
    CHECK(strstr(g_err, needle) != NULL, "%s: '%s' lacks '%s'", what, g_err, needle);
    CHECK(strstr(g_err, "model.safetensors.index.json") || strstr(g_err, "-of-0000"),
          "%s: '%s' names no file", what, g_err);
}

/* Both open the same tensors with the same dtype, shape and bytes. */
static void check_same(musae_st *a, musae_st *b, const char *what) {
    CHECK(a->n_tensors == b->n_tensors, "%s: %d vs %d tensors", what, a->n_tensors, b->n_tensors);
    for (int i = 0; i < a->n_tensors && i < b->n_tensors; i++) {
        const musae_st_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        int same = !strcmp(x->name, y->name) && !strcmp(x->dtype, y->dtype) && x->rank == y->rank &&
                   x->nbytes == y->nbytes && !memcmp(x->shape, y->shape, sizeof x->shape) &&
                   (x->nbytes == 0 || !memcmp(x->data, y->data, x->nbytes));
        CHECK(same, "%s: tensor %d (%s vs %s) differs", what, i, x->name, y->name);
    }
}

static void test_sharded(void) {
    char single[4096], sharded[4096], p[4200];
    snprintf(single, sizeof single, "%s/st_single", test_tmp());
    snprintf(sharded, sizeof sharded, "%s/st_sharded", test_tmp());
    mkdir_p(single);
    mkdir_p(sharded);
    musae_st_writer *w = musae_st_writer_new();
    for (int k = 0; k < N_MODEL; k++) add_spec(w, k);
    musae_st_writer_meta(w, "format", "pt");
    snprintf(p, sizeof p, "%s/model.safetensors", single);
    CHECK(musae_st_writer_save(w, p, g_err, sizeof g_err) == 0, "%s", g_err);
    musae_st_writer_free(w);
    write_shards(sharded);
    write_index(sharded, NULL, NULL, NULL);

    musae_st a, b, c;
    CHECK(musae_st_open(&a, single, g_err, sizeof g_err) == 0, "single folder: %s", g_err);
    CHECK(musae_st_open(&b, sharded, g_err, sizeof g_err) == 0, "sharded folder: %s", g_err);
    /* the index checks look every tensor up but leave none marked used */
    CHECK(musae_st_report_unused(&b, "decoder.") == 4, "unused report after the index checks");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", sharded);
    CHECK(musae_st_open(&c, p, g_err, sizeof g_err) == 0, "index path: %s", g_err);
    check_model(&a, "single");
    check_model(&b, "sharded");
    check_same(&a, &b, "single vs sharded");
    check_same(&b, &c, "folder vs index path");
    CHECK(a.n_files == 1 && b.n_files == 2, "file counts %d %d", a.n_files, b.n_files);
    CHECK(b.n_meta == 1 && !strcmp(musae_st_meta(&b, "format"), "pt"), "shard metadata merged once (%d)", b.n_meta);
    musae_st_tensor *t0 = musae_st_find(&b, k_model[0].name), *tl = musae_st_find(&b, k_model[N_MODEL - 1].name);
    CHECK(t0 && !strcmp(base_name(musae_st_file_of(&b, t0)), SHARD1), "first tensor in shard 1");
    CHECK(tl && !strcmp(base_name(musae_st_file_of(&b, tl)), SHARD2), "last tensor in shard 2");
    musae_st_close(&a), musae_st_close(&b), musae_st_close(&c);

    /* (e) musae info on the two folders lists the same tensors */
    char args[4300], *o1 = NULL, *o2 = NULL;
    snprintf(args, sizeof args, "info '%s'", single);
    CHECK(run_musae(args, &o1) == 0, "musae info single: %s", o1);
    snprintf(args, sizeof args, "info '%s'", sharded);
    CHECK(run_musae(args, &o2) == 0, "musae info sharded: %s", o2);
    for (int k = 0; k < N_MODEL; k++)
        CHECK(strstr(o1, k_model[k].name) && strstr(o2, k_model[k].name), "info lists %s", k_model[k].name);
    char *e1 = strstr(o1, " file(s)"), *e2 = strstr(o2, " file(s)");
    CHECK(e1 && e2 && e1 - o1 == e2 - o2 && !strncmp(o1, o2, (size_t)(e1 - o1 - 1)), "info outputs differ:\n%s\n%s", o1,
          o2);
    free(o1), free(o2);

    /* index errors, each with its own message */
    write_index(sharded, "\"ghost.weight\": \"" SHARD1 "\"", NULL, NULL);
    expect_index_error(sharded, "tensor 'ghost.weight' is listed in weight_map but missing from its shard " SHARD1,
                       "tensor missing from its shard");
    write_index(sharded, "\"ghost.weight\": \"model-00003-of-00003.safetensors\"", NULL, NULL);
    expect_index_error(sharded, "model-00003-of-00003.safetensors (named for tensor 'ghost.weight') cannot be opened",
                       "shard missing");
    write_index(sharded, NULL, NULL, "decoder.ln.bias");
    expect_index_error(sharded, "tensor 'decoder.ln.bias' is mapped to " SHARD2 " but found in", "tensor in the wrong shard");
    CHECK_STR_CONTAINS(g_err, "/" SHARD1);
    write_index(sharded, NULL, "lengths", NULL);
    expect_index_error(sharded, "tensor 'lengths' of shard", "tensor not in the index");
    CHECK_STR_CONTAINS(g_err, "is not listed in weight_map");
    write_index(sharded, "\"codes\": \"" SHARD2 "\"", NULL, NULL);
    expect_index_error(sharded, "tensor 'codes' is listed twice in weight_map", "listed twice");
    write_index(sharded, "\"x\": \"../" SHARD1 "\"", NULL, NULL);
    expect_index_error(sharded, "shard name '../" SHARD1 "' of tensor 'x' must be a plain file name", "path in index");
    write_index(sharded, "\"x\": 3", NULL, NULL);
    expect_index_error(sharded, "weight_map entry 'x' is not a file name", "non-string shard");
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", sharded);
    write_text(p, "{\"weight_map\": ");
    expect_index_error(sharded, "index is not valid JSON", "invalid index");
    write_text(p, "[]");
    expect_index_error(sharded, "index is not a JSON object", "array index");
    write_text(p, "{\"metadata\": {}}");
    expect_index_error(sharded, "missing \"weight_map\" object", "no weight_map");
    /* the same tensor in both shards */
    musae_st_writer *w3 = musae_st_writer_new();
    add_spec(w3, 0);
    snprintf(p, sizeof p, "%s/model-00003-of-00003.safetensors", sharded);
    CHECK(musae_st_writer_save(w3, p, g_err, sizeof g_err) == 0, "%s", g_err);
    musae_st_writer_free(w3);
    write_index(sharded, "\"w\": \"model-00003-of-00003.safetensors\"", NULL, NULL);
    expect_index_error(sharded, "tensor 'decoder.embed.weight' is defined in two shards", "duplicate across shards");
    /* a malformed shard is reported with the shard's own message */
    write_text(p, "garbage!");
    expect_index_error(sharded, "model-00003-of-00003.safetensors: not a safetensors file (it looks like a text file)", "malformed shard");
    write_index(sharded, NULL, NULL, NULL); /* leave a good copy behind for inspection */
}

/* ---- (e) musae info ------------------------------------------------------------------------------------ */

static void test_info_cli(void) {
    char args[4200], *out = NULL;
    snprintf(args, sizeof args, "info '%s/safetensors/good/all_dtypes.safetensors'", MUSAE_CORPUS);
    CHECK(run_musae(args, &out) == 0, "musae info all_dtypes: %s", out);
    CHECK_STR_CONTAINS(out, "15 tensors, 54 parameters");
    CHECK(strstr(out, "bf16") && strstr(out, "BF16") && strstr(out, "[2, 3]") && strstr(out, "F8_E5M2"), "%s", out);
    free(out);
    snprintf(args, sizeof args, "info '%s/safetensors/good/metadata.safetensors'", MUSAE_CORPUS);
    CHECK(run_musae(args, &out) == 0, "musae info metadata: %s", out);
    CHECK_STR_CONTAINS(out, "metadata format = pt");
    free(out);
    CHECK(run_musae("info /nonexistent/model", &out) == 1, "a missing path is refused (exit 1)");
    CHECK_STR_CONTAINS(out, "/nonexistent/model: cannot open");
    free(out);
    CHECK(run_musae("info", &out) == 1, "no PATH is refused (exit 1, one line)");
    CHECK_STR_CONTAINS(out, "a PATH is required; see musae info --help");
    free(out);
}

/* Parses `musae info` lines "  <name> <dtype> [shape]" into a sorted list of "name dtype shape" strings. */
static int info_tensors(const char *out, char ***lines) {
    int n = 0, cap = 64;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    for (const char *p = out; *p;) {
        const char *eol = strchr(p, '\n');
        size_t L = eol ? (size_t)(eol - p) : strlen(p);
        if (L > 2 && p[0] == ' ' && p[1] == ' ' && p[2] != ' ') {
            char *s = malloc(L + 1);
            size_t k = 0;
            for (size_t i = 2; i < L; i++) /* collapse the column padding */
                if (!(p[i] == ' ' && k && s[k - 1] == ' ')) s[k++] = p[i];
            s[k] = 0;
            if (n == cap) v = realloc(v, sizeof(char *) * (size_t)(cap *= 2));
            v[n++] = s;
        }
        p += L + (eol ? 1 : 0);
    }
    *lines = v;
    return n;
}

static void test_fixture_model(void) {
    char one[4096], two[4096], args[4300], *o1 = NULL, *o2 = NULL;
    snprintf(one, sizeof one, "%s/tiny-musicgen", test_fixtures());
    snprintf(two, sizeof two, "%s/tiny-musicgen-sharded", test_fixtures());
    snprintf(args, sizeof args, "info '%s'", one);
    CHECK(run_musae(args, &o1) == 0, "musae info %s: %s", one, o1);
    snprintf(args, sizeof args, "info '%s'", two);
    CHECK(run_musae(args, &o2) == 0, "musae info %s: %s", two, o2);
    CHECK_STR_CONTAINS(o1, "model_type: musicgen");
    CHECK_STR_CONTAINS(o2, "2 file(s)");
    char **l1, **l2;
    int n1 = info_tensors(o1, &l1), n2 = info_tensors(o2, &l2);
    CHECK(n1 > 0 && n1 == n2, "tiny-musicgen lists %d tensors, the sharded copy %d", n1, n2);
    for (int i = 0; i < n1 && i < n2; i++) CHECK(!strcmp(l1[i], l2[i]), "line %d: '%s' vs '%s'", i, l1[i], l2[i]);
    /* as many as the index's weight_map, each listed with its shape */
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", two);
    char *txt = musae_read_file(idx, NULL, NULL, 0);
    cJSON *root = txt ? cJSON_Parse(txt) : NULL;
    cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    CHECK(cJSON_IsObject(wm), "%s has a weight_map", idx);
    CHECK(cJSON_GetArraySize(wm) == n1, "weight_map lists %d, musae info %d", cJSON_GetArraySize(wm), n1);
    for (cJSON *e = wm ? wm->child : NULL; e; e = e->next) {
        int found = 0;
        size_t L = strlen(e->string);
        for (int i = 0; i < n1 && !found; i++) found = !strncmp(l1[i], e->string, L) && l1[i][L] == ' ';
        CHECK(found, "musae info does not list %s", e->string);
    }
    cJSON_Delete(root);
    free(txt);
    /* and in-process: byte-identical tensors */
    musae_st a, b;
    CHECK(musae_st_open(&a, one, g_err, sizeof g_err) == 0, "%s", g_err);
    CHECK(musae_st_open(&b, two, g_err, sizeof g_err) == 0, "%s", g_err);
    check_same(&a, &b, "tiny-musicgen vs sharded");
    CHECK(a.n_tensors == n1, "in-process %d tensors vs info %d", a.n_tensors, n1);
    musae_st_close(&a), musae_st_close(&b);
    for (int i = 0; i < n1; i++) free(l1[i]);
    for (int i = 0; i < n2; i++) free(l2[i]);
    free(l1), free(l2), free(o1), free(o2);
    printf("fixture model: %d tensors, single file and 2 shards agree\n", n1);
}

int main(void) {
    test_bad_corpus();
    test_good_files();
    test_load_errors();
    test_writer();
    test_sharded();
    test_info_cli();
    test_fixture_model();
    TEST_END();
}
