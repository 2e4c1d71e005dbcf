#include "host/core/check.h"

#include <stdarg.h>

static int g_rank = 0;
static int g_world = 1;

void musae_set_rank(int rank, int world) {
    g_rank = rank;
    g_world = world;
}
int musae_rank(void) { return g_rank; }
int musae_world(void) { return g_world; }

static void print_rank_prefix(void) {
    if (g_world > 1) fprintf(stderr, "[rank %d/%d] ", g_rank, g_world);
}

void musae_check_failed(const char *kind, const char *expr, const char *func, const char *file, int line,
                        const char *reason) {
    fflush(stdout);
    print_rank_prefix();
    fprintf(stderr, "[musae] %s check failed: %s in %s at %s:%d: %s\n", kind, expr, func, file, line,
            reason ? reason : "(no reason)");
    abort();
}

void musae_assert_failed(const char *expr, const char *func, const char *file, int line, int unused,
                         const char *fmt, ...) {
    (void)unused;
    fflush(stdout);
    print_rank_prefix();
    fprintf(stderr, "[musae] assertion failed: %s in %s at %s:%d: ", expr, func, file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* "musae: error: <message>" on stderr, after whatever stdout holds */
static void print_fail(const char *fmt, va_list ap) {
    fflush(stdout);
    print_rank_prefix();
    fputs("musae: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void musae_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_fail(fmt, ap);
    va_end(ap);
    exit(1);
}

void musae_fail_now(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    print_fail(fmt, ap);
    va_end(ap);
    quick_exit(1);
}

void *musae_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        char why[64];
        snprintf(why, sizeof why, "out of memory allocating %zu bytes", n);
        musae_check_failed("alloc", "malloc", __func__, __FILE__, __LINE__, why);
    }
    return p;
}

void *musae_xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        char why[80];
        snprintf(why, sizeof why, "out of memory allocating %zu x %zu bytes", count, size);
        musae_check_failed("alloc", "calloc", __func__, __FILE__, __LINE__, why);
    }
    return p;
}

void *musae_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        char why[64];
        snprintf(why, sizeof why, "out of memory reallocating to %zu bytes", n);
        musae_check_failed("alloc", "realloc", __func__, __FILE__, __LINE__, why);
    }
    return q;
}

char *musae_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = musae_xmalloc(n);
    memcpy(d, s, n);
    return d;
}
