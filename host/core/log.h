/* Leveled logging to stderr. The level comes from MUSAE_LOG (error|warn|info|debug; default info) or from
 * musae_log_set_level (the CLI's -v / -q). In multi-process runs only rank 0 logs at info and below unless
 * the message is a warning or an error (llm.c printf0). */
#ifndef MUSAE_LOG_H
#define MUSAE_LOG_H

#include "host/core/check.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MUSAE_LOG_ERROR = 0, MUSAE_LOG_WARN = 1, MUSAE_LOG_INFO = 2, MUSAE_LOG_DEBUG = 3 } musae_log_level;

void musae_log_set_level(musae_log_level level);
musae_log_level musae_log_get_level(void);
MUSAE_PRINTF(2, 3) void musae_log(musae_log_level level, const char *fmt, ...);

#define LOG_ERROR(...) musae_log(MUSAE_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...)  musae_log(MUSAE_LOG_WARN, __VA_ARGS__)
#define LOG_INFO(...)  musae_log(MUSAE_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) musae_log(MUSAE_LOG_DEBUG, __VA_ARGS__)

/* Monotonic seconds, for rates and timings. */
double musae_now(void);
/* CPU seconds of the whole process (every thread, user and system) and of the calling thread. */
double musae_process_cpu(void);
double musae_thread_cpu(void);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_LOG_H */
