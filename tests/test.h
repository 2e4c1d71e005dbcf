/* Minimal test harness: CHECK counts failures and keeps going; every test program ends with
 * TEST_END(), which prints "N passed, N failed" and returns non-zero if anything failed. A test that
 * cannot run here (no GPU, no MPI launcher) calls TEST_SKIP("why"), which prints the reason and exits 77
 * (CTest's SKIP_RETURN_CODE). */
#ifndef MUSAE_TEST_H
#define MUSAE_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_test_pass = 0, g_test_fail = 0;

#define CHECK(cond, ...)                                                                                   \
    do {                                                                                                   \
        if (cond) {                                                                                        \
            g_test_pass++;                                                                                 \
        } else {                                                                                           \
            g_test_fail++;                                                                                 \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                               \
            fprintf(stderr, __VA_ARGS__);                                                                  \
            fputc('\n', stderr);                                                                           \
        }                                                                                                  \
    } while (0)

#define CHECK_STR_CONTAINS(hay, needle)                                                                    \
    CHECK(strstr((hay), (needle)) != NULL, "'%s' does not contain '%s'", (hay), (needle))

#define TEST_SKIP(...)                                                                                     \
    do {                                                                                                   \
        printf("SKIPPED: ");                                                                               \
        printf(__VA_ARGS__);                                                                               \
        printf("\n");                                                                                      \
        exit(77);                                                                                          \
    } while (0)

#define TEST_END()                                                                                         \
    do {                                                                                                   \
        printf("%d passed, %d failed\n", g_test_pass, g_test_fail);                                        \
        return g_test_fail ? 1 : 0;                                                                        \
    } while (0)

/* 1 in an AddressSanitizer build (gcc defines __SANITIZE_ADDRESS__, clang has __has_feature): the slow quality
 * tests then run a smaller pipeline without their bars, the sanitizer checking memory and the Release build
 * convergence. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_SANITIZED 1
#endif
#endif
#ifndef TEST_SANITIZED
#define TEST_SANITIZED 0
#endif

/* Path helpers: fixtures and a per-test scratch folder under the build tree. */
static inline const char *test_fixtures(void) {
    const char *e = getenv("MUSAE_FIXTURES");
#ifdef MUSAE_FIXTURES
    return e ? e : MUSAE_FIXTURES;
#else
    return e ? e : "tests/fixtures";
#endif
}
static inline const char *test_tmp(void) {
    const char *e = getenv("MUSAE_TEST_TMP");
    return e ? e : "/tmp";
}

/* Max |a-b| over n floats, and whether every value is finite in both. */
static inline double test_max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}

#endif /* MUSAE_TEST_H */
