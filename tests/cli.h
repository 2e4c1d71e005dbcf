/* Helpers for tests that drive the musae binary in a scratch folder (g_dir): make and remove the folder, run a
 * verb, run a shell command, read a file back, compare files. */
#ifndef MUSAE_TEST_CLI_H
#define MUSAE_TEST_CLI_H

#include <stdarg.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/path.h"
#include "host/io/safetensors.h"
#include "test.h"

static char g_dir[1024];
static inline const char *bin(void) {
    const char *e = getenv("MUSAE_BIN");
#ifdef MUSAE_BIN
    return e ? e : MUSAE_BIN;
#else
    return e ? e : "musae";
#endif
}

/* Exit status of a system() call: the program's, or 128 + the signal that ended it. */
static inline int exit_status(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0); }

/* Runs "musae <args>" in g_dir, stdout into out.txt and stderr into err.txt, at log level info (the tests read
 * info lines, whatever MUSAE_LOG the caller has); returns the exit status. */
MUSAE_PRINTF(1, 2) static inline int run(const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && MUSAE_LOG=info %s %s >out.txt 2>err.txt", g_dir, bin(), args);
    return exit_status(system(cmd));
}

/* Runs a shell command in g_dir; returns its exit status. */
MUSAE_PRINTF(1, 2) static inline int sh(const char *fmt, ...) {
    char c[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c, sizeof c, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s", g_dir, c);
    return exit_status(system(cmd));
}

#ifdef MUSAE_MPIEXEC
/* "mpirun -np <np> --oversubscribe musae": np ranks, even on CI's two cores. */
static inline const char *mpi_prefix_np(int np) {
    static char p[1100];
    snprintf(p, sizeof p, "%s -np %d --oversubscribe %s", MUSAE_MPIEXEC, np, bin());
    return p;
}
static inline const char *mpi_prefix(void) { return mpi_prefix_np(2); }

/* Runs "mpirun -np <np> musae <args>" in g_dir as run() does; returns mpirun's exit status. OpenMPI's dlclose'd
 * plugins defeat LeakSanitizer in launched runs only, so leak checks are off for the ranks. */
MUSAE_PRINTF(2, 3) static inline int run_mpi_np(int np, const char *fmt, ...) {
    char args[4096], cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && MUSAE_LOG=info ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 %s %s >out.txt 2>err.txt",
             g_dir, mpi_prefix_np(np), args);
    return exit_status(system(cmd));
}
/* run_mpi_np with 2 ranks. */
#define run_mpi(...) run_mpi_np(2, __VA_ARGS__)
#endif

/* g_dir/rel; valid until the 8th call after it. */
static inline const char *at(const char *rel) {
    static char buf[8][2048];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, rel);
    return buf[i];
}

/* Makes g_dir = test_tmp()/<name>_<pid>, empty; the test fails (exit 1) when it cannot be made. */
static inline void scratch_open(const char *name) {
    snprintf(g_dir, sizeof g_dir, "%s/%s_%d", test_tmp(), name, (int)getpid());
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", g_dir, g_dir);
    if (system(cmd)) {
        fprintf(stderr, "FAIL: setup: cannot create %s\n", g_dir);
        exit(1);
    }
}

/* Removes g_dir when every check passed; a failed test's files stay there to be looked at. */
static inline void scratch_close(void) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_test_fail == 0 && system(cmd)) fprintf(stderr, "could not remove %s\n", g_dir);
    if (g_test_fail) fprintf(stderr, "the test's files are kept in %s\n", g_dir);
}

/* The whole of g_dir/rel as a string ("" when it cannot be read); free() it. */
static inline char *slurp(const char *rel) {
    char *s = musae_read_file(at(rel), NULL, NULL, 0);
    return s ? s : musae_xstrdup("");
}

/* The int64 codes [B, K, F] of tensor `name` in the safetensors file at path (generate's --codes-out, a golden
 * file): malloc'd, their count in *n and their dims in shape (each when not NULL); NULL with a failed check when
 * the file or the tensor is missing or not of rank 3. */
static inline int64_t *read_codes(const char *path, const char *name, int64_t *n, int64_t shape[3]) {
    char err[512];
    musae_st st;
    if (n) *n = 0;
    if (musae_st_open(&st, path, err, sizeof err)) {
        CHECK(0, "%s", err);
        return NULL;
    }
    int rank;
    int64_t dims[8];
    int64_t *c = musae_st_load_any(&st, name, MUSAE_I64, &rank, dims);
    CHECK(c && rank == 3, "%s: no %s [B, K, F]", path, name);
    if (c && rank == 3) {
        if (n) *n = dims[0] * dims[1] * dims[2];
        if (shape) shape[0] = dims[0], shape[1] = dims[1], shape[2] = dims[2];
    }
    musae_st_close(&st);
    return c;
}

/* A setup step that is itself musae (synth_acts making the stores, ...) failed: the test FAILS (exit 1) with the
 * step's stderr and keeps g_dir, rather than skipping, so a broken verb cannot hide behind a skip. */
static inline void setup_failed(const char *what) {
    char *e = slurp("err.txt");
    fprintf(stderr, "FAIL: setup: %s\n%s\nthe test's files are kept in %s\n", what, e, g_dir);
    free(e);
    exit(1);
}

/* Starts "<prefix> <args>" (prefix: bin() or mpi_prefix()) in g_dir in the background, stdout dropped, stderr
 * into kill_err.txt, and waits up to wait_s seconds for g_dir/state to exist (a run's first saved state).
 * Returns the run's pid: the caller signals it and collects it with wait_exit. */
static inline pid_t start_and_wait_for(const char *prefix, const char *args, const char *state, double wait_s) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cd %s && exec %s %s >/dev/null 2>kill_err.txt", g_dir, prefix, args);
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    for (double t = 0; t < wait_s && access(at(state), F_OK) != 0; t += 2e-4) usleep(200);
    return pid;
}

/* Waits for a run started by start_and_wait_for; its exit status. */
static inline int wait_exit(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return exit_status(st);
}

/* Checks that the last run's stderr contains `what`. */
static inline void err_has(const char *what) {
    char *e = slurp("err.txt");
    CHECK(strstr(e, what) != NULL, "stderr lacks '%s':\n%s", what, e);
    free(e);
}

/* Whether g_dir/name exists. */
static inline int dir_has(const char *name) { return access(at(name), F_OK) == 0; }

/* Whether g_dir/a and g_dir/b hold the same bytes (both must exist). */
static inline int same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(at(a), "rb"), *fb = fopen(at(b), "rb");
    int same = fa && fb;
    while (same) {
        const int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

/* Drops the tokens_per_s field (wall-clock timing) from every metrics.jsonl line, in place. */
static inline void drop_rates(char *s) {
    char *w = s;
    for (const char *r = s; *r;) {
        if (!strncmp(r, ",\"tokens_per_s\":", 16)) {
            while (*r && *r != '}') r++;
            continue;
        }
        *w++ = *r++;
    }
    *w = 0;
}

/* The number after the first "key": in a JSON text; NAN when absent. */
static inline double json_number(const char *json, const char *key) {
    char pat[80];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p) return NAN;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t') p++;
    return atof(p);
}

/* A number from the SAE checkpoint g_dir/dir/musae.json: a top-level field or one of final_metrics; NAN when
 * missing. */
static inline double ckpt_number(const char *dir, const char *key) {
    char name[600];
    snprintf(name, sizeof name, "%s/musae.json", dir);
    char *j = slurp(name);
    const double v = json_number(j, key);
    free(j);
    return v;
}

#endif /* MUSAE_TEST_CLI_H */
