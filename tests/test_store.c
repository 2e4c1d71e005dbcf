/* The HDF5 activation store: round trip, f16 overflow, a writer killed by SIGKILL mid-write (the file opens and
 * holds every committed clip), append after the kill, the shuffled stream (deterministic, one pass covers the
 * split exactly, exact resume, clip-level split), non-finite rows, bad input, and h5dump reading it. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/store.h"
#include "test.h"

enum { D = 12 };

/* Value of element j of row t of clip c at layer l: exact in f16 (multiples of 1/8 below 2048). */
static float val_of(int l, int64_t c, int64_t t, int j) { return (float)(((c * 7 + t * 3 + j + l * 5) % 512) - 256) / 8.0f; }
static int64_t frames_of(int64_t c) { return 5 + (c * 37) % 91; }

static void make_clip(int n_layers, int64_t c, float **bufs) {
    for (int l = 0; l < n_layers; l++)
        for (int64_t t = 0; t < frames_of(c); t++)
            for (int j = 0; j < D; j++) bufs[l][t * D + j] = val_of(l, c, t, j);
}

static musae_store_spec spec_of(musae_dtype dt) {
    musae_store_spec s = {0};
    s.model = "test/model";
    s.d_model = D;
    s.frame_rate = 50;
    s.n_layers = 2;
    s.layers[0] = 3;
    s.layers[1] = 7;
    s.dtype = dt;
    s.chunk_rows = 64;
    s.dtype_source = "f32";
    return s;
}

static void path_in_tmp(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/test_store_%d_%s", test_tmp(), (int)getpid(), name);
    unlink(buf);
}

/* Every committed clip of the store holds exactly what make_clip wrote. */
static int verify_store(const char *path, int64_t *clips_out) {
    char err[512];
    musae_store *s = musae_store_open(path, err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        return 0;
    }
    const musae_store_info *in = musae_store_get_info(s);
    int ok = in->d_model == D && in->n_layers == 2 && in->layers[0] == 3 && in->layers[1] == 7 &&
             !strcmp(in->model, "test/model") && in->frame_rate == 50;
    float *rows = malloc(sizeof(float) * 128 * D);
    int32_t clip[128], t[128];
    for (int64_t c = 0; c < in->n_clips && ok; c++) {
        int64_t nf = frames_of(c);
        ok &= in->clip_frames[c] == nf;
        char *p = musae_store_clip_path(s, c);
        char want[64];
        snprintf(want, sizeof want, "clips/%05lld.wav", (long long)c);
        ok &= !strcmp(p, want);
        free(p);
        musae_store_read_frames(s, in->clip_offset[c], nf, clip, t);
        for (int l = 0; l < 2; l++) {
            musae_store_read_rows(s, in->layers[l], in->clip_offset[c], nf, rows);
            for (int64_t r = 0; r < nf; r++) {
                ok &= clip[r] == c && t[r] == r;
                for (int j = 0; j < D; j++) ok &= rows[r * D + j] == val_of(l, c, r, j);
            }
        }
    }
    *clips_out = in->n_clips;
    free(rows);
    musae_store_close(s);
    return ok;
}

static void write_clips(musae_store_writer *w, int64_t c0, int64_t c1) {
    float *bufs[2] = {malloc(sizeof(float) * 128 * D), malloc(sizeof(float) * 128 * D)};
    for (int64_t c = c0; c < c1; c++) {
        make_clip(2, c, bufs);
        char p[64];
        snprintf(p, sizeof p, "clips/%05lld.wav", (long long)c);
        musae_store_add_clip(w, p, frames_of(c), (const float *const *)bufs);
    }
    free(bufs[0]);
    free(bufs[1]);
}

static void test_round_trip(musae_dtype dt) {
    char path[512];
    path_in_tmp(path, sizeof path, dt == MUSAE_F16 ? "rt16.h5" : "rt32.h5");
    musae_store_spec sp = spec_of(dt);
    musae_store_writer *w = musae_store_create(path, &sp);
    write_clips(w, 0, 20);
    CHECK(musae_store_writer_has_clip(w, "clips/00007.wav") && !musae_store_writer_has_clip(w, "clips/x.wav"),
          "clip lookup");
    musae_store_close_writer(w, 1);
    int64_t clips = 0;
    CHECK(verify_store(path, &clips), "%s store round trip", musae_dtype_name(dt));
    CHECK(clips == 20, "%lld clips", (long long)clips);
    char err[512];
    musae_store *s = musae_store_open(path, err, sizeof err);
    CHECK(s && musae_store_get_info(s)->complete == 1 && musae_store_get_info(s)->dtype == dt, "complete flag and dtype");
    musae_store_close(s);
    unlink(path);
}

/* Runs fn in a child; returns its exit status (or 128 + signal). */
static int in_child(void (*fn)(const char *), const char *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 2);
        fn(arg);
        _exit(0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void overflow_child(const char *path) {
    musae_store_spec sp = spec_of(MUSAE_F16);
    musae_store_writer *w = musae_store_append(path, &sp);
    float *bufs[2] = {calloc(128 * D, sizeof(float)), calloc(128 * D, sizeof(float))};
    bufs[1][5] = 70000.0f; /* beyond f16 */
    musae_store_add_clip(w, "clips/overflow.wav", 10, (const float *const *)bufs);
}

static void test_overflow(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "ovf.h5");
    musae_store_spec sp = spec_of(MUSAE_F16);
    musae_store_writer *w = musae_store_create(path, &sp);
    write_clips(w, 0, 3);
    musae_store_close_writer(w, 0);
    CHECK(in_child(overflow_child, path) == 1, "an f16 overflow must fail the writer");
    int64_t clips = 0;
    CHECK(verify_store(path, &clips) && clips == 3, "the store keeps its committed clips after a refused clip");
    unlink(path);
}

/* The child writes clips forever and reports each committed clip on a pipe; the parent kills it with
 * SIGKILL at some point while it writes. */
static int g_pipe_w = -1;
static void writer_child(const char *path) {
    musae_store_spec sp = spec_of(MUSAE_F16);
    struct stat sb;
    musae_store_writer *w = stat(path, &sb) == 0 ? musae_store_append(path, &sp) : musae_store_create(path, &sp);
    for (int64_t c = musae_store_writer_clips(w);; c++) {
        write_clips(w, c, c + 1);
        int64_t n = c + 1;
        if (write(g_pipe_w, &n, sizeof n) != sizeof n) _exit(3);
    }
}

static void test_kill(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "kill.h5");
    int64_t committed = 0;
    for (int round = 0; round < 3; round++) {
        int fds[2];
        if (pipe(fds)) abort();
        g_pipe_w = fds[1];
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            writer_child(path);
            _exit(0);
        }
        close(fds[1]);
        int64_t n = 0, target = committed + 15 + 7 * round;
        while (n < target && read(fds[0], &n, sizeof n) == sizeof n) {}
        if (round == 1) usleep(300); /* land somewhere else inside the next clip */
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        while (read(fds[0], &n, sizeof n) == sizeof n) {} /* clips committed before the kill landed */
        close(fds[0]);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "round %d: the writer was killed", round);
        int64_t clips = 0;
        CHECK(verify_store(path, &clips), "round %d: the killed writer's store opens and every committed clip is intact",
              round);
        CHECK(clips >= n && clips <= n + 1, "round %d: %lld clips in the file, %lld reported committed", round,
              (long long)clips, (long long)n);
        committed = clips;
    }
    /* append after the kills, then finish */
    musae_store_spec sp = spec_of(MUSAE_F16);
    musae_store_writer *w = musae_store_append(path, &sp);
    CHECK(musae_store_writer_clips(w) == committed && musae_store_writer_has_clip(w, "clips/00003.wav"),
          "append continues after %lld clips", (long long)committed);
    write_clips(w, committed, committed + 5);
    musae_store_close_writer(w, 1);
    int64_t clips = 0;
    CHECK(verify_store(path, &clips) && clips == committed + 5, "the appended store is complete and intact");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "h5dump -H %s >/dev/null 2>&1", path);
    if (system("command -v h5dump >/dev/null 2>&1") == 0) CHECK(system(cmd) == 0, "h5dump reads the killed+appended store");
    unlink(path);
}

/* The fingerprint a resumed training run checks: equal for the same contents, different for another store of
 * the same size and for the same store with a clip more. */
static uint64_t fingerprint_of(const char *path) {
    char err[512];
    musae_store *s = musae_store_open(path, err, sizeof err);
    MUSAE_ASSERT(s, "%s", err);
    const uint64_t h = musae_store_fingerprint(s);
    musae_store_close(s);
    return h;
}

static void test_fingerprint(void) {
    char a[512], b[512];
    path_in_tmp(a, sizeof a, "fp_a.h5");
    path_in_tmp(b, sizeof b, "fp_b.h5");
    musae_store_spec sp = spec_of(MUSAE_F16);
    musae_store_writer *w = musae_store_create(a, &sp);
    write_clips(w, 0, 6);
    musae_store_close_writer(w, 1);
    w = musae_store_create(b, &sp);
    write_clips(w, 0, 6);
    musae_store_close_writer(w, 1);
    const uint64_t ha = fingerprint_of(a);
    CHECK(ha == fingerprint_of(b) && ha == fingerprint_of(a), "the same contents, the same fingerprint");
    unlink(b);
    w = musae_store_create(b, &sp);
    float *bufs[2] = {malloc(sizeof(float) * 128 * D), malloc(sizeof(float) * 128 * D)};
    for (int64_t c = 0; c < 6; c++) { /* the same clip table, one value of the last clip changed */
        make_clip(2, c, bufs);
        if (c == 5) bufs[1][3] += 1;
        char p[64];
        snprintf(p, sizeof p, "clips/%05lld.wav", (long long)c);
        musae_store_add_clip(w, p, frames_of(c), (const float *const *)bufs);
    }
    musae_store_close_writer(w, 1);
    CHECK(fingerprint_of(b) != ha, "another store of the same size differs");
    w = musae_store_append(a, &sp);
    write_clips(w, 6, 7);
    musae_store_close_writer(w, 1);
    CHECK(fingerprint_of(a) != ha, "a clip more differs");
    free(bufs[0]);
    free(bufs[1]);
    unlink(a);
    unlink(b);
}

/* A failed clip through musae_store_try_add_clip returns its reason instead of exiting (a pipeline thread must
 * not exit under its siblings); the store keeps its committed clips. */
static void test_try_add(void) {
    char path[512];
    path_in_tmp(path, sizeof path, "try.h5");
    musae_store_spec sp = spec_of(MUSAE_F16);
    musae_store_writer *w = musae_store_create(path, &sp);
    write_clips(w, 0, 3);
    float *bufs[2] = {calloc(128 * D, sizeof(float)), calloc(128 * D, sizeof(float))};
    bufs[0][7] = 1e6f; /* beyond f16 */
    char err[1400] = "";
    CHECK(musae_store_try_add_clip(w, "clips/big.wav", NULL, 10, (const float *const *)bufs, err, sizeof err) == -1,
          "an f16 overflow fails the clip");
    CHECK(strstr(err, "clip 'clips/big.wav', layer 3: 1 values beyond the float16 range") != NULL, "reason: %s", err);
    CHECK(musae_store_try_add_clip(w, "clips/ok.wav", NULL, 10, (const float *const *)bufs, err, sizeof err) == -1 &&
              strstr(err, "the writer failed before"), "and the writer is spent: %s", err);
    free(bufs[0]);
    free(bufs[1]);
    int64_t clips = 0;
    CHECK(verify_store(path, &clips) && clips == 3, "the store keeps its 3 committed clips");
    musae_store_discard_writer(w); /* spent: freed without another HDF5 call (capture exits instead) */
    unlink(path);
}

/* ---- stream ------------------------------------------------------------------------------------------------ */

/* An f32 store whose row r holds r in column 0 (exact), for stream bookkeeping. */
static void make_index_store(const char *path, int64_t n_clips, int nan_row) {
    musae_store_spec sp = spec_of(MUSAE_F32);
    sp.n_layers = 1;
    sp.layers[0] = 3;
    sp.chunk_rows = 16;
    musae_store_writer *w = musae_store_create(path, &sp);
    float *buf = malloc(sizeof(float) * 128 * D);
    int64_t row = 0;
    for (int64_t c = 0; c < n_clips; c++) {
        for (int64_t t = 0; t < frames_of(c); t++, row++)
            for (int j = 0; j < D; j++) buf[t * D + j] = j == 0 ? (float)row : (row == nan_row && j == 3 ? NAN : 1.0f);
        char p[64];
        snprintf(p, sizeof p, "c%lld", (long long)c);
        const float *b[1] = {buf};
        musae_store_add_clip(w, p, frames_of(c), b);
    }
    musae_store_close_writer(w, 1);
    free(buf);
}

static musae_stream_opts stream_opts(musae_split split, uint64_t seed, int loop) {
    musae_stream_opts o = {0};
    o.split = split;
    o.val_fraction = 0.2;
    o.seed = seed;
    o.shuffle = 1;
    o.window_rows = 100;
    o.loop = loop;
    o.n_layers = 1;
    o.layers[0] = 3;
    return o;
}

static int64_t drain(musae_store *s, musae_stream_opts o, int64_t max, float *ids) {
    musae_stream *st = musae_stream_open(s, &o);
    float *buf = malloc(sizeof(float) * 37 * D);
    int64_t got = 0;
    while (got < max) {
        int64_t want = max - got < 37 ? max - got : 37;
        int64_t n = musae_stream_next(st, want, &buf);
        for (int64_t r = 0; r < n; r++) ids[got + r] = buf[r * D];
        got += n;
        if (n < want) break;
    }
    free(buf);
    musae_stream_close(st);
    return got;
}

static void test_stream(void) {
    char path[512], err[512];
    path_in_tmp(path, sizeof path, "stream.h5");
    make_index_store(path, 40, -1);
    musae_store *s = musae_store_open(path, err, sizeof err);
    const musae_store_info *in = musae_store_get_info(s);
    const int64_t N = in->n_rows;
    float *a = malloc(sizeof(float) * N * 4), *b = malloc(sizeof(float) * N * 4);
    int64_t n_train = drain(s, stream_opts(MUSAE_SPLIT_TRAIN, 1, 0), N, a);
    int64_t n_val = drain(s, stream_opts(MUSAE_SPLIT_VAL, 1, 0), N, b);
    CHECK(n_train + n_val == N && n_val > 0 && n_train > 0, "train %lld + val %lld rows = %lld", (long long)n_train,
          (long long)n_val, (long long)N);
    uint8_t *seen = calloc((size_t)N, 1);
    int dup = 0;
    for (int64_t i = 0; i < n_train; i++) dup += seen[(int64_t)a[i]]++ != 0;
    for (int64_t i = 0; i < n_val; i++) dup += seen[(int64_t)b[i]]++ != 0;
    CHECK(dup == 0, "train and val partition the rows (%d seen twice)", dup);
    /* split by clip: every clip is wholly in one split */
    int mixed = 0;
    uint8_t *is_val = calloc((size_t)N, 1);
    for (int64_t i = 0; i < n_val; i++) is_val[(int64_t)b[i]] = 1;
    for (int64_t c = 0; c < in->n_clips; c++)
        for (int64_t r = in->clip_offset[c]; r < in->clip_offset[c + 1]; r++) mixed += is_val[r] != is_val[in->clip_offset[c]];
    CHECK(mixed == 0, "%d rows split away from their clip", mixed);
    /* shuffled: not in store order */
    int in_order = 1;
    for (int64_t i = 1; i < n_train; i++) in_order &= a[i] > a[i - 1];
    CHECK(!in_order, "the training stream is shuffled");
    /* deterministic per seed, different across seeds; epochs differ */
    const int64_t L = n_train * 3 + 11;
    float *c1 = malloc(sizeof(float) * L), *c2 = malloc(sizeof(float) * L), *c3 = malloc(sizeof(float) * L);
    drain(s, stream_opts(MUSAE_SPLIT_TRAIN, 5, 1), L, c1);
    drain(s, stream_opts(MUSAE_SPLIT_TRAIN, 5, 1), L, c2);
    drain(s, stream_opts(MUSAE_SPLIT_TRAIN, 6, 1), L, c3);
    CHECK(!memcmp(c1, c2, sizeof(float) * L), "same seed, same stream");
    CHECK(memcmp(c1, c3, sizeof(float) * L), "another seed, another stream");
    CHECK(memcmp(c1, c1 + n_train, sizeof(float) * n_train), "each epoch has its own order");
    memset(seen, 0, (size_t)N);
    for (int64_t i = n_train; i < 2 * n_train; i++) seen[(int64_t)c1[i]]++;
    int once = 1;
    for (int64_t i = 0; i < n_train; i++) once &= seen[(int64_t)a[i]] == 1;
    CHECK(once, "the second epoch covers the training rows exactly once");
    /* exact resume from any position */
    const int64_t cuts[3] = {1, 57, n_train + 5};
    for (int i = 0; i < 3; i++) {
        musae_stream_opts o = stream_opts(MUSAE_SPLIT_TRAIN, 5, 1);
        musae_stream *st = musae_stream_open(s, &o);
        float *buf = malloc(sizeof(float) * (size_t)cuts[i] * D);
        musae_stream_next(st, cuts[i], &buf);
        o.start = musae_stream_tell(st);
        musae_stream_close(st);
        CHECK(o.start.delivered == cuts[i], "position counts delivered rows");
        int64_t rest = L - cuts[i];
        float *r = malloc(sizeof(float) * (size_t)rest);
        drain(s, o, rest, r);
        CHECK(!memcmp(r, c1 + cuts[i], sizeof(float) * (size_t)rest), "resumed at %lld: the same rows follow", (long long)cuts[i]);
        free(r);
        free(buf);
    }
    free(a), free(b), free(c1), free(c2), free(c3), free(seen), free(is_val);
    musae_store_close(s);
    unlink(path);
}

static char g_nan_path[512];
static void nan_child(const char *path) {
    char err[512];
    musae_store *s = musae_store_open(path, err, sizeof err);
    float ids[4096];
    drain(s, stream_opts(MUSAE_SPLIT_ALL, 1, 0), 4096, ids);
}

static void test_nonfinite(void) {
    path_in_tmp(g_nan_path, sizeof g_nan_path, "nan.h5");
    make_index_store(g_nan_path, 10, 77);
    char err[512];
    musae_store *s = musae_store_open(g_nan_path, err, sizeof err);
    const int64_t N = musae_store_get_info(s)->n_rows;
    musae_stream_opts o = stream_opts(MUSAE_SPLIT_ALL, 1, 0);
    o.skip_nonfinite = 1;
    musae_stream *st = musae_stream_open(s, &o);
    float *buf = malloc(sizeof(float) * (size_t)N * D);
    int64_t got = musae_stream_next(st, N, &buf);
    int has77 = 0;
    for (int64_t r = 0; r < got; r++) has77 |= buf[r * D] == 77.0f;
    musae_stream_pos p = musae_stream_tell(st);
    CHECK(got == N - 1 && !has77 && p.skipped == 1, "the NaN row is skipped and counted (got %lld of %lld, skipped %lld)",
          (long long)got, (long long)N, (long long)p.skipped);
    musae_stream_close(st);
    musae_store_close(s);
    free(buf);
    CHECK(in_child(nan_child, g_nan_path) == 1, "without --skip-nonfinite a NaN row is fatal");
    unlink(g_nan_path);
}

static void test_bad_input(void) {
    char path[512], cut[600], err[512];
    path_in_tmp(path, sizeof path, "bad.h5");
    make_index_store(path, 30, -1);
    struct stat sb;
    stat(path, &sb);
    snprintf(cut, sizeof cut, "%s.cut", path);
    FILE *f = fopen(path, "rb"), *g = fopen(cut, "wb");
    char *bytes = malloc((size_t)sb.st_size);
    size_t n = fread(bytes, 1, (size_t)sb.st_size, f);
    fwrite(bytes, 1, n / 2, g);
    fclose(f);
    fclose(g);
    CHECK(musae_store_open(cut, err, sizeof err) == NULL, "a truncated store is refused");
    CHECK_STR_CONTAINS(err, "cut");
    CHECK(musae_store_open("/nonexistent/acts.h5", err, sizeof err) == NULL, "a missing file is refused");
    g = fopen(cut, "wb");
    fputs("not hdf5", g);
    fclose(g);
    CHECK(musae_store_open(cut, err, sizeof err) == NULL, "a non-HDF5 file is refused");
    CHECK_STR_CONTAINS(err, "not an HDF5 file");
    free(bytes);
    unlink(cut);
    unlink(path);
}

/* The store read by HDF5's own tool (scripts/install-deps.sh installs it: hdf5-tools); without h5dump this fails. */
static void test_h5dump(void) {
    CHECK(system("command -v h5dump >/dev/null 2>&1") == 0, "h5dump is not installed (scripts/install-deps.sh)");
    char path[512], cmd[1400];
    path_in_tmp(path, sizeof path, "dump.h5");
    musae_store_spec sp = spec_of(MUSAE_F16);
    musae_store_writer *w = musae_store_create(path, &sp);
    write_clips(w, 0, 2);
    musae_store_close_writer(w, 1);
    /* row 1 of clip 0, layer 7: val_of(1, 0, 1, j) = (3 + j + 5 - 256) / 8 → -31 for j = 0 */
    snprintf(cmd, sizeof cmd, "h5dump -d /layers/7/acts -s 1,0 -c 1,1 %s | grep -q -- '-31'", path);
    CHECK(system(cmd) == 0, "h5dump prints the f16 values");
    snprintf(cmd, sizeof cmd, "h5dump -d /clips/path %s | grep -q 'clips/00001.wav'", path);
    CHECK(system(cmd) == 0, "h5dump prints the clip paths");
    unlink(path);
}

int main(void) {
    test_round_trip(MUSAE_F16);
    test_round_trip(MUSAE_F32);
    test_overflow();
    test_kill();
    test_fingerprint();
    test_try_add();
    test_stream();
    test_nonfinite();
    test_bad_input();
    test_h5dump();
    TEST_END();
}
