#include "host/core/progress.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/core/log.h"

void musae_format_duration(double s, char *buf, int n) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(buf, (size_t)n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, (size_t)n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, (size_t)n, "%ld:%02ld", t / 60, t % 60);
}

void musae_progress_init(musae_progress *p, const char *label, const char *unit, int64_t total) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    snprintf(p->unit, sizeof p->unit, "%s", unit);
    p->total = total;
    p->t_start = p->t_last = musae_now();
    p->tty = isatty(STDERR_FILENO);
    const char *e = getenv("MUSAE_PROGRESS_INTERVAL");
    p->interval = e ? atof(e) : 10.0;
    p->quiet = musae_rank() != 0 || musae_log_get_level() < MUSAE_LOG_INFO;
}

static void render(musae_progress *p, const char *extra, int final) {
    double now = musae_now(), el = now - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[24] = "", elapsed[24];
    musae_format_duration(el, elapsed, sizeof elapsed);
    if (p->total > 0 && !final) {
        double left = rate > 0 ? (double)(p->total - p->done) / rate : -1;
        char d[20];
        musae_format_duration(left, d, sizeof d);
        snprintf(eta, sizeof eta, " ETA %s", d);
    }
    char line[256];
    int off = 0;
    if (p->total > 0) {
        double f = (double)p->done / (double)p->total;
        if (f > 1) f = 1;
        if (p->tty) {
            int w = 24, fill = (int)(f * w);
            char bar[32];
            for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : (i == fill ? '>' : '.');
            bar[w] = 0;
            off = snprintf(line, sizeof line, "%s [%s] %3.0f%% %lld/%lld %s", p->label, bar, 100 * f,
                           (long long)p->done, (long long)p->total, p->unit);
        } else {
            off = snprintf(line, sizeof line, "%s %3.0f%% %lld/%lld %s", p->label, 100 * f, (long long)p->done,
                           (long long)p->total, p->unit);
        }
    } else {
        off = snprintf(line, sizeof line, "%s %lld %s", p->label, (long long)p->done, p->unit);
    }
    if (off < 0 || off >= (int)sizeof line) off = (int)sizeof line - 1;
    snprintf(line + off, sizeof line - (size_t)off, " | %.1f %s/s | %s%s%s%s", rate, p->unit, elapsed, eta,
             extra ? " | " : "", extra ? extra : "");
    if (p->tty) fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    else fprintf(stderr, "musae: %s\n", line); /* an info line (host/core/log.c) */
    fflush(stderr);
    p->t_last = now;
}

void musae_progress_add(musae_progress *p, int64_t n, const char *extra) {
    p->done += n;
    if (p->quiet) return;
    double now = musae_now();
    double gap = p->tty ? 0.1 : p->interval;
    if (now - p->t_last >= gap) render(p, extra, 0);
}

void musae_progress_finish(musae_progress *p, const char *extra) {
    if (p->quiet) return;
    render(p, extra, 1);
}
