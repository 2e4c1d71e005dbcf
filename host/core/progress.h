/* Progress of long work with rate and ETA. On a terminal (stderr is a TTY) it redraws one bar line at most
 * ten times a second; otherwise it writes a plain log line every `interval` seconds (default 10, or
 * MUSAE_PROGRESS_INTERVAL), so batch logs stay readable. Only rank 0 prints. */
#ifndef MUSAE_PROGRESS_H
#define MUSAE_PROGRESS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char label[48];
    char unit[16];
    int64_t total;      /* 0 = unknown: no bar and no ETA, only the count and the rate */
    int64_t done;
    double t_start;
    double t_last;      /* when we last printed */
    double interval;    /* seconds between log lines when not on a TTY */
    int tty;
    int quiet;
} musae_progress;

void musae_progress_init(musae_progress *p, const char *label, const char *unit, int64_t total);
/* Adds n units and prints if it is time; `extra` (may be NULL) is appended, e.g. "loss 0.123". */
void musae_progress_add(musae_progress *p, int64_t n, const char *extra);
/* Prints the final line (always) and ends the bar. */
void musae_progress_finish(musae_progress *p, const char *extra);
/* Formats seconds as h:mm:ss or m:ss into buf. */
void musae_format_duration(double seconds, char *buf, int n);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_PROGRESS_H */
