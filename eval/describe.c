/* musae describe: the clip sources (a dataset through capture's walk and cutting, or a store's clip names),
 * the parallel batch analysis and the result table (describe.h). The descriptor families are eval/dsp_*.c. */
#include "eval/describe.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "eval/dsp.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/io/audio.h"
#include "host/io/store.h"

enum { BATCH_CLIPS = 64 };
#define BATCH_SAMPLES ((int64_t)1 << 25) /* 128 MiB of float samples per batch */

void describe_opts_defaults(describe_opts *o) {
    memset(o, 0, sizeof *o);
    o->clip_seconds = 10;
}

int64_t describe_n_windows(int64_t n, int rate) { return dsp_n_windows(n, rate); }

const char *describe_clip_problem(const float *x, int64_t n, char *buf, size_t cap) {
    float lo = x[0], hi = x[0];
    int64_t flat = 0;
    for (int64_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
        /* a flat top: two neighbours at full scale with the same sign */
        if (i > 0 && fabsf(x[i]) >= 0.999f && fabsf(x[i - 1]) >= 0.999f && (x[i] > 0) == (x[i - 1] > 0)) flat++;
    }
    const float peak = fmaxf(fabsf(lo), fabsf(hi));
    if (peak < 1e-5f) {
        snprintf(buf, cap, "silent (peak %.1f dBFS, below -100)", peak > 0 ? 20 * log10f(peak) : -INFINITY);
        return buf;
    }
    if (hi - lo < 1e-5f) {
        snprintf(buf, cap, "constant (a DC offset of %.4g and no signal)", 0.5 * (lo + hi));
        return buf;
    }
    if (flat * 100 >= n) {
        snprintf(buf, cap, "clipped (%.1f%% of its samples sit on flat tops at full scale: its loudness, peak and "
                 "spectrum would describe the clipping)", 100.0 * flat / n);
        return buf;
    }
    return NULL;
}

void describe_clip(const float *x, int64_t n, int rate, musae_desc *clip, musae_desc *win) {
    MUSAE_ASSERT(n >= 1 && rate > 0, "describe_clip: %lld samples at %d Hz", (long long)n, rate);
    dsp_work *w = dsp_work_new();
    dsp_clip c = {.x = x, .n = n, .rate = rate};
    dsp_stft(w, &c);
    memset(clip, 0, sizeof *clip);
    memset(win, 0, (size_t)c.n_windows * sizeof *win);
    dsp_spectral(&c, clip, win);
    dsp_hpss(&c, clip, win);
    dsp_chroma(&c, clip, win);
    dsp_tempo(&c, clip, win);
    dsp_loudness(&c, clip, win);
    dsp_pitch(&c, clip, win);
    dsp_clip_free(&c);
    dsp_work_free(w);
}

/* ---- the result table and the batch ------------------------------------------------------------------------ */

typedef struct {
    musae_descriptors d;
    int64_t cap_clips, cap_windows;
} table;

typedef struct {
    char *name;
    float *x;
    int64_t n;
    musae_desc clip;
    musae_desc *win;
} pending;

typedef struct {
    pending items[BATCH_CLIPS];
    int n;
    int64_t samples;
} batch;

static void table_add(table *t, pending *p) {
    musae_descriptors *d = &t->d;
    const int64_t W = dsp_n_windows(p->n, DESCRIBE_RATE);
    if (d->n_clips == t->cap_clips) {
        t->cap_clips = t->cap_clips ? 2 * t->cap_clips : 256;
        d->path = musae_xrealloc(d->path, (size_t)t->cap_clips * sizeof *d->path);
        d->duration_s = musae_xrealloc(d->duration_s, (size_t)t->cap_clips * sizeof *d->duration_s);
        d->clip = musae_xrealloc(d->clip, (size_t)t->cap_clips * sizeof *d->clip);
    }
    while (d->n_windows + W > t->cap_windows) {
        t->cap_windows = t->cap_windows ? 2 * t->cap_windows : 2048;
        d->window = musae_xrealloc(d->window, (size_t)t->cap_windows * sizeof *d->window);
        d->window_clip = musae_xrealloc(d->window_clip, (size_t)t->cap_windows * sizeof *d->window_clip);
        d->window_start_s = musae_xrealloc(d->window_start_s, (size_t)t->cap_windows * sizeof *d->window_start_s);
    }
    const int64_t c = d->n_clips++;
    d->path[c] = p->name; /* the table owns it now */
    p->name = NULL;
    d->duration_s[c] = (float)((double)p->n / DESCRIBE_RATE);
    d->clip[c] = p->clip;
    for (int64_t w = 0; w < W; w++) {
        d->window[d->n_windows] = p->win[w];
        d->window_clip[d->n_windows] = (int32_t)c;
        d->window_start_s[d->n_windows] = (float)w;
        d->n_windows++;
    }
}

/* Analyses the batch in parallel and moves its results into the table in batch order. */
static void batch_flush(batch *b, table *t, musae_progress *prog) {
    if (!b->n) return;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < b->n; i++) {
        pending *p = &b->items[i];
        p->win = musae_xmalloc((size_t)dsp_n_windows(p->n, DESCRIBE_RATE) * sizeof *p->win);
        describe_clip(p->x, p->n, DESCRIBE_RATE, &p->clip, p->win);
    }
    for (int i = 0; i < b->n; i++) {
        pending *p = &b->items[i];
        table_add(t, p);
        free(p->x), free(p->win);
    }
    musae_progress_add(prog, b->n, NULL);
    b->n = 0, b->samples = 0;
}

static void batch_push(batch *b, table *t, musae_progress *prog, const char *name, const float *x, int64_t n) {
    if (b->n == BATCH_CLIPS || (b->n && b->samples + n > BATCH_SAMPLES)) batch_flush(b, t, prog);
    pending *p = &b->items[b->n++];
    p->name = musae_xstrdup(name);
    p->x = musae_xmalloc((size_t)n * sizeof(float));
    memcpy(p->x, x, (size_t)n * sizeof(float));
    p->n = n;
    b->samples += n;
}

/* ---- --audio: capture's walk and cutting --------------------------------------------------------------------- */

static void run_audio(const describe_opts *o, table *t, describe_report *rep) {
    capture_dataset ds;
    char err[4096], why[512], name[8192];
    if (capture_dataset_load(o->audio, &ds, err, sizeof err)) musae_fail("--audio %s", err);
    const int64_t clip_samples = (int64_t)llround(o->clip_seconds * DESCRIBE_RATE);
    const double min_s = o->min_seconds > 0 ? o->min_seconds : o->clip_seconds;
    const int64_t min_samples = (int64_t)llround(min_s * DESCRIBE_RATE);
    /* the plan from the headers, for the progress total */
    int64_t planned = 0;
    for (int64_t i = 0; i < ds.n_files; i++) {
        musae_audio_reader *r = musae_audio_open(ds.files[i].path, DESCRIBE_RATE, 0, 0, err, sizeof err);
        if (!r) continue;
        planned += capture_plan_file(musae_audio_reader_info(r)->out_samples, clip_samples, min_samples, NULL, NULL, 0);
        musae_audio_close(r);
    }
    musae_progress prog;
    musae_progress_init(&prog, "describe", "clips", planned);
    batch *b = musae_xcalloc(1, sizeof *b);
    rep->files = ds.n_files;
    for (int64_t i = 0; i < ds.n_files; i++) {
        const char *path = ds.files[i].path;
        capture_clips *cl = capture_clips_open(path, DESCRIBE_RATE, clip_samples, min_samples, err, sizeof err);
        if (!cl) {
            LOG_WARN("describe: skipped %s", err);
            rep->files_skipped++;
            continue;
        }
        const float *x;
        int64_t start, n, kept = 0;
        while ((n = capture_clips_next(cl, &x, &start, err, sizeof err)) > 0) {
            capture_clip_name(path, start, n, DESCRIBE_RATE, name, sizeof name);
            if (describe_clip_problem(x, n, why, sizeof why)) {
                LOG_WARN("describe: skipped clip %s: %s", name, why);
                rep->clips_skipped++;
                continue;
            }
            batch_push(b, t, &prog, name, x, n);
            rep->audio_seconds += (double)n / DESCRIBE_RATE;
            kept++;
        }
        const int64_t pos = capture_clips_pos(cl);
        capture_clips_close(cl);
        if (n < 0) {
            LOG_WARN("describe: %s: read error after %.2f s (%lld clip(s) before it kept): %s", path,
                     (double)pos / DESCRIBE_RATE, (long long)kept, err);
            if (!kept) rep->files_skipped++;
        } else if (pos < min_samples) {
            LOG_WARN("describe: skipped %s: too short (%.3f s; clips need at least %g s, --min-seconds)", path,
                     (double)pos / DESCRIBE_RATE, min_s);
            rep->files_skipped++;
        }
    }
    batch_flush(b, t, &prog);
    musae_progress_finish(&prog, NULL);
    free(b);
    capture_dataset_free(&ds);
}

/* ---- --acts: the store's clips by name ----------------------------------------------------------------------- */

/* "dir/a.wav#t=10,20" -> file "dir/a.wav" and samples [a, b) at DESCRIBE_RATE; -1 when the name has no span. */
static int parse_clip_name(const char *name, char *file, size_t cap, int64_t *a, int64_t *b) {
    const char *h = strrchr(name, '#');
    if (!h || strncmp(h, "#t=", 3)) return -1;
    char *end;
    const double s = strtod(h + 3, &end);
    if (end == h + 3 || *end != ',') return -1;
    const char *p = end + 1;
    const double e = strtod(p, &end);
    if (end == p || *end || !(s >= 0) || !(e > s) || e > 1e7) return -1;
    snprintf(file, cap, "%.*s", (int)(h - name), name);
    /* names carry microseconds: the nearest sample is the one capture cut at */
    *a = llround(s * DESCRIBE_RATE), *b = llround(e * DESCRIBE_RATE);
    return *b > *a ? 0 : -1;
}

static void run_acts(const describe_opts *o, table *t, describe_report *rep) {
    char err[4096], file[8192], src[8192], why[512];
    musae_store *s = musae_store_open(o->acts, err, sizeof err);
    if (!s) musae_fail("--acts %s", err);
    const int64_t C = musae_store_get_info(s)->n_clips;
    char **names = musae_xmalloc((size_t)(C ? C : 1) * sizeof *names);
    for (int64_t i = 0; i < C; i++) names[i] = musae_store_clip_path(s, i);
    musae_store_close(s);
    if (C == 0) musae_fail("--acts %s: the store holds no clips", o->acts);

    musae_progress prog;
    musae_progress_init(&prog, "describe", "clips", C);
    batch *b = musae_xcalloc(1, sizeof *b);
    musae_audio_reader *r = NULL;
    char open_file[8192] = "";
    int64_t pos = 0; /* samples of open_file read so far */
    float *buf = NULL;
    int64_t buf_cap = 0;
    for (int64_t i = 0; i < C; i++) {
        int64_t a, e;
        if (parse_clip_name(names[i], file, sizeof file, &a, &e))
            musae_fail("--acts %s: clip %lld '%s' names no audio span (\"file#t=START,END\"; clips of a generation-time "
                       "capture have no source file)", o->acts, (long long)i, names[i]);
        if (o->audio_root && file[0] != '/') snprintf(src, sizeof src, "%s/%s", o->audio_root, file);
        else snprintf(src, sizeof src, "%s", file);
        /* capture read each file from its start as one stream: do the same, reopening only to go back */
        if (!r || strcmp(src, open_file) || a < pos) {
            if (r) musae_audio_close(r);
            r = musae_audio_open(src, DESCRIBE_RATE, 0, 0, err, sizeof err);
            if (!r)
                musae_fail("--acts %s: clip %lld '%s': %s%s", o->acts, (long long)i, names[i], err,
                           src[0] != '/' && !o->audio_root ? " (relative names are taken from the current folder, as "
                                                             "capture ran; --audio-root DIR names another)" : "");
            snprintf(open_file, sizeof open_file, "%s", src);
            pos = 0;
        }
        const int64_t n = e - a;
        if (n > buf_cap) buf_cap = n, buf = musae_xrealloc(buf, (size_t)n * sizeof(float));
        while (pos < a) { /* skip to the span */
            const int64_t k = musae_audio_read(r, buf, a - pos < n ? a - pos : n, err, sizeof err);
            if (k <= 0)
                musae_fail("--acts %s: clip %lld '%s': %s", o->acts, (long long)i, names[i],
                           k < 0 ? err : "the file ends before the clip starts");
            pos += k;
        }
        int64_t got = 0;
        while (got < n) {
            const int64_t k = musae_audio_read(r, buf + got, n - got, err, sizeof err);
            if (k <= 0)
                musae_fail("--acts %s: clip %lld '%s': %s", o->acts, (long long)i, names[i],
                           k < 0 ? err : "the file ends inside the clip (was it changed after the capture?)");
            got += k;
        }
        pos += n;
        if (describe_clip_problem(buf, n, why, sizeof why)) {
            LOG_WARN("describe: clip %lld %s: %s (described anyway: --acts keeps every clip of the store)", (long long)i,
                     names[i], why);
            rep->clips_warned++;
        }
        batch_push(b, t, &prog, names[i], buf, n);
        rep->audio_seconds += (double)n / DESCRIBE_RATE;
    }
    if (r) musae_audio_close(r);
    batch_flush(b, t, &prog);
    musae_progress_finish(&prog, NULL);
    free(b), free(buf);
    for (int64_t i = 0; i < C; i++) free(names[i]);
    free(names);
}

int describe_run(const describe_opts *o, describe_report *rep_out) {
    describe_report rep = {0};
    table t = {0};
    const double t0 = musae_now();
    if (!!o->audio == !!o->acts) musae_fail("give one of --audio and --acts");
    if (!o->out) musae_fail("-o DESCRIPTORS.h5 is required");
    snprintf(t.d.source, sizeof t.d.source, "%s", o->audio ? o->audio : o->acts);
    t.d.sample_rate = DESCRIBE_RATE;
    t.d.clip_seconds = o->audio ? o->clip_seconds : 0;
    t.d.window_seconds = 1;
    if (o->audio) run_audio(o, &t, &rep);
    else run_acts(o, &t, &rep);
    rep.clips = t.d.n_clips, rep.windows = t.d.n_windows;
    for (int64_t i = 0; o->acts && i < t.d.n_clips; i++) /* a store's clip length: its longest clip */
        t.d.clip_seconds = fmax(t.d.clip_seconds, t.d.duration_s[i]);
    rep.seconds = musae_now() - t0;
    if (t.d.n_clips == 0)
        musae_fail("--audio %s: nothing to describe: %lld file(s), %lld skipped, %lld clip(s) skipped (reasons above)",
                   o->audio, (long long)rep.files, (long long)rep.files_skipped, (long long)rep.clips_skipped);
    char err[4200];
    if (musae_descriptors_write(o->out, &t.d, err, sizeof err)) musae_fail("-o %s", err);
    LOG_INFO("describe: %lld clip(s), %lld window(s), %.1f s of audio in %.1f s (%.0fx real time) -> %s; skipped %lld "
             "file(s) and %lld clip(s)%s", (long long)rep.clips, (long long)rep.windows, rep.audio_seconds, rep.seconds,
             rep.audio_seconds / (rep.seconds > 0 ? rep.seconds : 1e-9), o->out, (long long)rep.files_skipped,
             (long long)rep.clips_skipped, rep.clips_warned ? "; clips described with a warning above" : "");
    musae_descriptors_free(&t.d);
    if (rep_out) *rep_out = rep;
    return 0;
}
