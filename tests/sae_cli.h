/* Helpers for tests that drive the musae binary in a scratch folder (g_dir): run a verb, run a shell command,
 * read a file back. */
#ifndef MUSAE_TEST_SAE_CLI_H
#define MUSAE_TEST_SAE_CLI_H

#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/check.h"
#include "test.h"

static char g_dir[512];
static inline const char *bin(void) {
    const char *e = getenv("MUSAE_BIN");
#ifdef MUSAE_BIN
    return e ? e : MUSAE_BIN;
#else
    return e ? e : "musae";
#endif
}

/* Runs "musae <args>" with stderr into g_dir/err.txt; returns the exit status. */
static inline int run(const char *fmt, ...) {
    char args[2048], cmd[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd %s && %s %s >out.txt 2>err.txt", g_dir, bin(), args);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* Runs a shell command in g_dir. */
static inline int sh(const char *cmd) {
    char full[2048];
    snprintf(full, sizeof full, "cd %s && %s", g_dir, cmd);
    return system(full);
}

static inline char *slurp(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return musae_xstrdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = musae_xmalloc((size_t)n + 1);
    s[fread(s, 1, (size_t)n, f)] = 0;
    fclose(f);
    return s;
}

/* Whether g_dir/name exists. */
static inline int dir_has(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    return access(path, F_OK) == 0;
}

/* Whether g_dir/a and g_dir/b hold the same bytes (both must exist). */
static inline int same_bytes(const char *a, const char *b) {
    char pa[1024], pb[1024];
    snprintf(pa, sizeof pa, "%s/%s", g_dir, a);
    snprintf(pb, sizeof pb, "%s/%s", g_dir, b);
    FILE *fa = fopen(pa, "rb"), *fb = fopen(pb, "rb");
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

#endif /* MUSAE_TEST_SAE_CLI_H */
