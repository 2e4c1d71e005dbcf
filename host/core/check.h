/* Error checks that never vanish: every failure prints the failing expression, the function, file:line and
 * a reason, then aborts the process (exit code 1). Library code in musae does not try to recover from a
 * broken invariant; inputs from users are validated separately and reported with musae_fail (a one-line
 * reason naming the file and the field) before anything can reach an assert.
 *
 * One generator, many checkers (aesthetics.md §6.11):
 *   MUSAE_ASSERT(cond, fmt, ...)   shapes, dtypes, alignment; always on (unlike assert under NDEBUG)
 *   ERRNO_CHECK(expr)              expr < 0 (or NULL for pointer calls through ERRNO_CHECK_PTR) → strerror
 *   H5_CHECK(expr)                 negative herr_t / hid_t (host/io/h5_check.h and store.c: host/io owns HDF5)
 *   CUDA_CHECK (host/core/cuda_check.h), CUBLAS_CHECK / NCCL_CHECK / MPI_CHECK live next to the code that may
 *   include their headers (kernels/cuda/cuda_common.cuh, host/dist/), built on musae_check_failed below. */
#ifndef MUSAE_CHECK_H
#define MUSAE_CHECK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MUSAE_NORETURN __attribute__((noreturn))
#define MUSAE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MUSAE_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define MUSAE_NORETURN
#define MUSAE_PRINTF(a, b)
#define MUSAE_UNLIKELY(x) (x)
#endif

/* Prints "[musae] <kind> failed: <expr> in <func> at <file>:<line>: <reason>" (with the MPI rank when there
 * is more than one) and aborts. */
MUSAE_NORETURN void musae_check_failed(const char *kind, const char *expr, const char *func, const char *file,
                                       int line, const char *reason);
MUSAE_NORETURN MUSAE_PRINTF(6, 7) void musae_assert_failed(const char *expr, const char *func, const char *file,
                                                           int line, int unused, const char *fmt, ...);

/* User-facing failure: prints "musae: error: <message>" and exits 1. Use for bad input (files, flags). */
MUSAE_NORETURN MUSAE_PRINTF(1, 2) void musae_fail(const char *fmt, ...);
/* The same message, then quick_exit(1): for a thread that must end the process while other threads still run
 * (exit's handlers and destructors would free what they use). Only at_quick_exit handlers run (the store's
 * locks and half-made files are removed there too, host/io/store_lock.c); nothing is flushed or closed. */
MUSAE_NORETURN MUSAE_PRINTF(1, 2) void musae_fail_now(const char *fmt, ...);

/* The process rank shown in messages (set by host/dist; 0 and hidden when single-process). */
void musae_set_rank(int rank, int world);
int musae_rank(void);
int musae_world(void);

#define MUSAE_CHECK_GEN(kind, expr, failed, reason)                                                        \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY(failed)) musae_check_failed(kind, expr, __func__, __FILE__, __LINE__, reason); \
    } while (0)

#define MUSAE_ASSERT(cond, ...)                                                                            \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY(!(cond))) musae_assert_failed(#cond, __func__, __FILE__, __LINE__, 0, __VA_ARGS__); \
    } while (0)

#define ERRNO_CHECK(expr)                                                                                  \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY((expr) < 0)) musae_check_failed("errno", #expr, __func__, __FILE__, __LINE__,  \
                                                           strerror(errno));                               \
    } while (0)

#define ERRNO_CHECK_PTR(expr)                                                                              \
    do {                                                                                                   \
        if (MUSAE_UNLIKELY((expr) == NULL)) musae_check_failed("errno", #expr, __func__, __FILE__,        \
                                                               __LINE__, strerror(errno));                 \
    } while (0)

/* Allocation that aborts with the size on failure; xcalloc zeroes. Freed with free(). */
void *musae_xmalloc(size_t n);
void *musae_xcalloc(size_t count, size_t size);
void *musae_xrealloc(void *p, size_t n);
char *musae_xstrdup(const char *s);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CHECK_H */
