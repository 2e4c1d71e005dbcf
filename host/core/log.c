#include "host/core/log.h"

#include <stdarg.h>
#include <strings.h>
#include <time.h>

static int g_level = -1; /* -1: not yet read from the environment */

static musae_log_level level_from_env(void) {
    const char *e = getenv("MUSAE_LOG");
    if (!e) return MUSAE_LOG_INFO;
    if (!strcasecmp(e, "error")) return MUSAE_LOG_ERROR;
    if (!strcasecmp(e, "warn")) return MUSAE_LOG_WARN;
    if (!strcasecmp(e, "debug")) return MUSAE_LOG_DEBUG;
    return MUSAE_LOG_INFO;
}

void musae_log_set_level(musae_log_level level) { g_level = (int)level; }

musae_log_level musae_log_get_level(void) {
    if (g_level < 0) g_level = (int)level_from_env();
    return (musae_log_level)g_level;
}

void musae_log(musae_log_level level, const char *fmt, ...) {
    if (level > musae_log_get_level()) return;
    if (level >= MUSAE_LOG_INFO && musae_rank() != 0) return;
    /* "musae: " then the level for all but info, as compilers do ("musae: warning: ..."): a log line must not
     * read like a verb's name ("musae info: ..." looked like the output of `musae info`). */
    static const char *names[] = {"error: ", "warning: ", "", "debug: "};
    if (musae_world() > 1) fprintf(stderr, "[rank %d] ", musae_rank());
    fprintf(stderr, "musae: %s", names[level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
double musae_now(void) { return clock_s(CLOCK_MONOTONIC); }
double musae_process_cpu(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }
double musae_thread_cpu(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }
