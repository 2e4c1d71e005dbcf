/* Activation capture: the capture run (reader, EnCodec, LM and writer threads; resume and shard checks). The
 * dataset walk, clip cutting and model identity are capture_dataset.c; generation-time capture is capture_gen.c.
 * See capture.h. */
#include "eval/capture.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/core/queue.h"
#include "host/core/utf8.h"
#include "host/io/audio.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "eval/capture_int.h"
#include "eval/capture_shard.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_device.h"
#include "model/delay.h"
#include "model/encodec.h"
#include "model/text_cond.h"

/* ---- the capture run --------------------------------------------------------------------------------------- */

void capture_opts_defaults(capture_opts *o) {
    memset(o, 0, sizeof *o);
    o->clip_seconds = 10.0;
    o->batch = 1;
    o->dtype = MUSAE_F16;
    o->ops = musae_ops_cpu();
    o->prec = MUSAE_PREC_FP32;
}

/* What the planning pass learns about a file. */
typedef struct {
    int64_t samples;   /* at the codec's rate; -1 = skipped */
    int64_t n_clips;   /* planned */
    int64_t pending;   /* of those, not yet in the store */
    musae_clip_source src; /* the file's identity (src.file malloc'd; NULL when it cannot be resolved) */
    const char *base;  /* what its clips are named after: the path the store already knows it by, else its own */
    int64_t ord0;      /* the place of its first pending clip among all pending clips (the split across ranks) */
    int64_t clip0;     /* the place of its first clip in the plan (the order of a sharded store's join) */
} file_plan;

typedef struct {
    char *path;
    char *reason;
} skip_entry;

typedef struct {
    skip_entry *items;
    int64_t n, cap;
    pthread_mutex_t mu;
} skip_list;

static void skip_add(skip_list *s, const char *path, const char *fmt, ...) MUSAE_PRINTF(3, 4);
static void skip_add(skip_list *s, const char *path, const char *fmt, ...) {
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        s->items = musae_xrealloc(s->items, (size_t)s->cap * sizeof *s->items);
    }
    s->items[s->n++] = (skip_entry){musae_xstrdup(path), musae_xstrdup(buf)};
    pthread_mutex_unlock(&s->mu);
}

/* A clip on its way from the reader to the compute thread. */
typedef struct {
    int end;           /* the end-of-stream marker */
    int64_t file;
    char *name;
    const char *caption;
    float *x;          /* [n] samples (reader → encoder) */
    int64_t n;
    int64_t *codes;    /* [K, F] (encoder → LM) */
    int64_t F;
} clip_job;

/* A forward's worth of clips on its way to the writer. */
typedef struct {
    int end;
    int nb;                    /* clips */
    char **names;              /* [nb] */
    const char **captions;     /* [nb] into the dataset (NULL: unconditional) */
    int64_t *files;            /* [nb] dataset index of each clip's file */
    int64_t F;                 /* frames of every clip in the batch */
    float **dst;               /* [n_layers] host [nb, F + 1, H] (position 0 unused) */
} clip_batch;

typedef struct {
    const capture_opts *o;
    const capture_dataset *ds;
    file_plan *plan;
    int rate, hop;
    int64_t clip_samples, min_samples;
    int64_t K, H;
    mg_model lm;
    encodec codec;
    musae_text_cond tc;
    int have_tc;
    musae_store_writer *w;
    pthread_mutex_t store_mu;  /* has_clip (reader) against add_clip (writer) */
    atomic_int failed;         /* the writer failed (fail_msg): the reader stops, the rest drains */
    atomic_int watch_stop;     /* the pipeline is done: watch_main returns */
    char fail_msg[1400];
    /* A GPU table is driven from one host thread at a time (kernels/cuda/ops_cuda.h: one stream, one scratch
     * buffer), so the EnCodec and LM threads take turns on it; their overlap is a CPU-table matter (the
     * encoder's serial LSTM leaves cores idle there). */
    pthread_mutex_t dev_mu;
    int dev_shared;
    musae_queue jobs, coded, results;
    skip_list skips;
    int64_t to_do;             /* clips the reader will hand over */
    int64_t lo, hi;            /* this rank's pending clips [lo, hi), by their place among all pending ones */
    capture_shards *sh;        /* a sharded capture's shards and watch, else NULL */
    const char *store;         /* the file this process writes: -o, or its shard */
    /* stage timings and counters (each written by one thread) */
    double t_read, t_encode, t_text, t_lm, t_write;
    double cpu_read, cpu_encode, cpu_lm, cpu_write; /* CPU seconds of each stage's own thread */
    int64_t written, frames;
    musae_progress pg;
} capture_ctx;

/* Whether a clip of a file is stored: by the file's canonical path and the clip's fragment. */
static int store_has(capture_ctx *c, const file_plan *p, const char *name) {
    pthread_mutex_lock(&c->store_mu);
    int r = p->src.file ? musae_store_writer_has_source_clip(c->w, p->src.file, name) : musae_store_writer_has_clip(c->w, name);
    pthread_mutex_unlock(&c->store_mu);
    return r;
}

/* Reader: streams every file with clips pending and hands over the pending clips in order. */
static void *reader_main(void *arg) {
    capture_ctx *c = arg;
    char err[1024], name[8192];
    int64_t handed = 0;
    for (int64_t fi = 0; fi < c->ds->n_files && handed < c->to_do && !atomic_load(&c->failed); fi++) {
        const file_plan *p = &c->plan[fi];
        if (p->samples < 0 || p->pending == 0 || p->ord0 + p->pending <= c->lo) continue;
        if (p->ord0 >= c->hi) break; /* the rest is other ranks' */
        const capture_file *f = &c->ds->files[fi];
        int64_t ord = p->ord0;
        double t0 = musae_now();
        capture_clips *cl = capture_clips_open(f->path, c->rate, c->clip_samples, c->min_samples, err, sizeof err);
        if (!cl) {
            skip_add(&c->skips, f->path, "%s", err);
            c->t_read += musae_now() - t0;
            continue;
        }
        int64_t n_clips = 0, start, n = 0;
        const float *x;
        while (handed < c->to_do && !atomic_load(&c->failed) &&
               (n = capture_clips_next(cl, &x, &start, err, sizeof err)) > 0) {
            n_clips++;
            capture_clip_name(p->base, start, n, c->rate, name, sizeof name);
            if (store_has(c, p, name)) continue;
            if (ord++ < c->lo) continue; /* an earlier rank's */
            if (ord > c->hi) break;
            clip_job *j = musae_xcalloc(1, sizeof *j);
            j->file = fi;
            j->name = musae_xstrdup(name);
            j->caption = f->caption;
            j->x = musae_xmalloc((size_t)n * sizeof(float));
            memcpy(j->x, x, (size_t)n * sizeof(float));
            j->n = n;
            c->t_read += musae_now() - t0;
            musae_queue_put(&c->jobs, j); /* blocking here is the compute thread's time, not reading */
            t0 = musae_now();
            handed++;
        }
        if (n < 0)
            skip_add(&c->skips, f->path, "read error after %.2f s (the clips before it are kept): %s",
                     (double)capture_clips_pos(cl) / c->rate, err);
        else if (handed < c->to_do && !atomic_load(&c->failed) && n_clips != p->n_clips && ord <= c->hi)
            LOG_WARN("%s: gave %lld clip(s); its header announced %.2f s = %lld clip(s)", f->path, (long long)n_clips,
                     (double)p->samples / c->rate, (long long)p->n_clips);
        capture_clips_close(cl);
        c->t_read += musae_now() - t0;
    }
    c->cpu_read = musae_thread_cpu();
    clip_job *end = musae_xcalloc(1, sizeof *end);
    end->end = 1;
    musae_queue_put(&c->jobs, end);
    return NULL;
}

/* The T5 states of the last caption seen (clips of one file follow each other and share it). */
typedef struct {
    const char *caption; /* the caption the cache holds */
    musae_text_states ts;
} text_cache;

static void compute_batch(capture_ctx *c, clip_job **jobs, int nb, mg_state *st, int64_t *st_key, text_cache *tcache) {
    const int64_t K = c->K, H = c->H, V = c->lm.V;
    double t0;
    const int64_t F = jobs[0]->F, T = F + K;
    int64_t *codes = musae_xmalloc((size_t)(nb * K * F) * sizeof(int64_t));
    for (int b = 0; b < nb; b++) {
        MUSAE_ASSERT(jobs[b]->F == F, "clips of one batch have %lld and %lld frames", (long long)F, (long long)jobs[b]->F);
        memcpy(codes + b * K * F, jobs[b]->codes, (size_t)(K * F) * sizeof(int64_t));
        free(jobs[b]->codes);
        jobs[b]->codes = NULL;
    }
    int64_t *delayed = musae_xmalloc((size_t)(nb * K * T) * sizeof(int64_t));
    mg_delay_codes(codes, nb, K, F, V, delayed);
    free(codes);

    /* the state is reused while the batch shape stays (full clips); tails get their own */
    const int64_t key = (int64_t)nb * 1000003 + T;
    if (*st_key != key) {
        if (*st_key) mg_state_free(st, &c->lm);
        mg_state_opts so = {.batch = nb, .n_cond = nb, .t_max = T, .t_call = T, .incremental = 0, .logits = 0};
        mg_state_init(st, &c->lm, &so);
        *st_key = key;
    }
    if (c->o->captions) {
        t0 = musae_now();
        int64_t Smax = 1;
        musae_text_states *per = musae_xcalloc((size_t)nb, sizeof *per);
        for (int b = 0; b < nb; b++) {
            /* clips of one file share a caption: T5 runs once per file, each caption on its own, so a clip's
             * conditioning does not depend on what else is in its batch */
            if (!tcache->caption || strcmp(tcache->caption, jobs[b]->caption)) {
                musae_text_states_free(&tcache->ts);
                char err[512];
                const char *pr = jobs[b]->caption;
                int rc = musae_text_cond_prompts(&c->tc, 1, &pr, 0, &tcache->ts, err, sizeof err);
                MUSAE_ASSERT(rc == 0, "caption checked in planning failed later: %s", err);
                tcache->caption = jobs[b]->caption;
            }
            per[b].len = tcache->ts.len;
            per[b].states = musae_xmalloc((size_t)(tcache->ts.len * H) * sizeof(float));
            per[b].mask = musae_xmalloc((size_t)tcache->ts.len * sizeof(int64_t));
            memcpy(per[b].states, tcache->ts.states, (size_t)(tcache->ts.len * H) * sizeof(float));
            memcpy(per[b].mask, tcache->ts.mask, (size_t)tcache->ts.len * sizeof(int64_t));
            if (per[b].len > Smax) Smax = per[b].len;
        }
        float *states = musae_xcalloc((size_t)(nb * Smax * H), sizeof(float));
        float *mask = musae_xcalloc((size_t)(nb * Smax), sizeof(float));
        for (int b = 0; b < nb; b++) {
            memcpy(states + b * Smax * H, per[b].states, (size_t)(per[b].len * H) * sizeof(float));
            for (int64_t i = 0; i < per[b].len; i++) mask[b * Smax + i] = (float)per[b].mask[i];
            musae_text_states_free(&per[b]);
        }
        free(per);
        mg_state_set_text(st, &c->lm, states, mask, Smax);
        free(states);
        free(mask);
        c->t_text += musae_now() - t0;
    }

    t0 = musae_now();
    const int nl = c->o->n_layers;
    clip_batch *out = musae_xcalloc(1, sizeof *out);
    out->nb = nb;
    out->F = F;
    out->names = musae_xcalloc((size_t)nb, sizeof(char *));
    out->captions = musae_xcalloc((size_t)nb, sizeof(char *));
    out->files = musae_xcalloc((size_t)nb, sizeof(int64_t));
    out->dst = musae_xcalloc((size_t)nl, sizeof(float *));
    mg_hook hooks[MUSAE_STORE_MAX_LAYERS];
    for (int l = 0; l < nl; l++) {
        out->dst[l] = musae_xmalloc((size_t)(nb * (F + 1) * H) * sizeof(float));
        hooks[l] = (mg_hook){.kind = MG_HOOK_READ, .layer = c->o->layers[l], .branch = MG_BRANCH_COND,
                             .pos_begin = 1, .pos_end = F + 1, .dst = out->dst[l], .dst_t = F + 1};
    }
    mg_forward(&c->lm, st, delayed, T, hooks, nl, 0);
    free(delayed);
    c->t_lm += musae_now() - t0;
    for (int b = 0; b < nb; b++) {
        out->names[b] = jobs[b]->name;
        out->captions[b] = c->o->captions ? jobs[b]->caption : NULL;
        out->files[b] = jobs[b]->file;
        jobs[b]->name = NULL;
        free(jobs[b]);
    }
    musae_queue_put(&c->results, out);
}

/* A pipeline thread that drives the GPU works on this rank's device (chosen by local rank under mpirun/srun,
 * host/dist/dist_gpu.h): CUDA's current device belongs to each host thread, and a new one starts on device 0. */
static void bind_device(const capture_ctx *c) {
    char why[256];
    if (c->dev_shared && musae_cuda_bind_thread(why, sizeof why))
        musae_fail("capture: a pipeline thread cannot use the selected GPU: %s", why);
}

/* EnCodec on its own thread: the encoder's LSTM recurrence is serial, so the LM of the previous clips uses the
 * cores it leaves idle. On the CPU table the clips of one length already waiting (up to ENCODE_BATCH, never
 * waiting for more) are encoded together: their LSTM recurrences share each pass over the weights, which
 * bounds the recurrence, and each clip's codes are bitwise those it gets alone (encodec_encode_batch), so
 * where a batch is cut changes nothing. A GPU table encodes one clip per turn on the device. */
enum { ENCODE_BATCH = 4 };

static void *encoder_main(void *arg) {
    capture_ctx *c = arg;
    bind_device(c);
    const int bmax = c->o->ops->device == MUSAE_DEVICE_CPU ? ENCODE_BATCH : 1;
    for (;;) {
        clip_job *js[ENCODE_BATCH];
        int nb = 0;
        js[nb++] = musae_queue_get(&c->jobs, 0);
        for (clip_job *nx; !js[0]->end && nb < bmax && (nx = musae_queue_peek_now(&c->jobs)) && !nx->end && nx->n == js[0]->n;)
            js[nb++] = musae_queue_get(&c->jobs, 0); /* the one consumer: the item peeked */
        if (!js[0]->end) {
            if (c->dev_shared) pthread_mutex_lock(&c->dev_mu);
            const double t0 = musae_now(), c0 = musae_thread_cpu();
            const float *x[ENCODE_BATCH];
            int64_t n[ENCODE_BATCH], *codes[ENCODE_BATCH], F[ENCODE_BATCH];
            for (int b = 0; b < nb; b++) x[b] = js[b]->x, n[b] = js[b]->n;
            encodec_encode_batch(&c->codec, nb, x, n, codes, F, NULL);
            c->t_encode += musae_now() - t0;
            c->cpu_encode += musae_thread_cpu() - c0;
            if (c->dev_shared) pthread_mutex_unlock(&c->dev_mu);
            for (int b = 0; b < nb; b++) {
                js[b]->codes = codes[b];
                js[b]->F = F[b];
                free(js[b]->x);
                js[b]->x = NULL;
            }
        }
        const int end = js[0]->end; /* once handed over, a job belongs to the LM thread */
        for (int b = 0; b < nb; b++) musae_queue_put(&c->coded, js[b]);
        if (end) return NULL;
    }
}

static void *compute_main(void *arg) {
    capture_ctx *c = arg;
    bind_device(c);
    const int bmax = c->o->batch;
    clip_job **jobs = musae_xcalloc((size_t)bmax, sizeof *jobs);
    mg_state st;
    int64_t st_key = 0;
    text_cache tcache = {0};
    for (;;) {
        clip_job *j = musae_queue_get(&c->coded, 0);
        if (j->end) {
            free(j);
            break;
        }
        int nb = 0;
        jobs[nb++] = j;
        /* A clip's rows must not depend on what else shares its forward (a resumed run cuts batches elsewhere).
         * The decoder runs every product per item (mg_linear_items), so a clip in a batch of whole clips gets
         * the bits it gets alone. A batch holds clips of one length, so tails run alone; captioned clips run
         * one per forward because a batch pads the text states to its longest caption, which would change
         * the cross-attention's products. */
        const int batchable = !c->o->captions && j->n == c->clip_samples;
        while (batchable && nb < bmax) {
            clip_job *nx = musae_queue_get(&c->coded, 1);
            if (nx->end || nx->n != c->clip_samples) break;
            jobs[nb++] = musae_queue_get(&c->coded, 0);
        }
        if (c->dev_shared) pthread_mutex_lock(&c->dev_mu);
        compute_batch(c, jobs, nb, &st, &st_key, &tcache);
        if (c->dev_shared) pthread_mutex_unlock(&c->dev_mu);
    }
    if (st_key) mg_state_free(&st, &c->lm);
    musae_text_states_free(&tcache.ts);
    c->cpu_lm = musae_thread_cpu();
    free(jobs);
    clip_batch *end = musae_xcalloc(1, sizeof *end);
    end->end = 1;
    musae_queue_put(&c->results, end);
    return NULL;
}

static void *writer_main(void *arg) {
    capture_ctx *c = arg;
    const int nl = c->o->n_layers;
    const int64_t H = c->H;
    for (;;) {
        clip_batch *b = musae_queue_get(&c->results, 0);
        if (b->end) {
            free(b);
            break;
        }
        for (int i = 0; i < b->nb; i++) {
            const float *acts[MUSAE_STORE_MAX_LAYERS];
            for (int l = 0; l < nl; l++) acts[l] = b->dst[l] + ((int64_t)i * (b->F + 1) + 1) * H;
            const double t0 = musae_now(), c0 = musae_thread_cpu();
            if (atomic_load(&c->failed)) { /* drain the pipeline: nothing more reaches the store */
                free(b->names[i]);
                continue;
            }
            pthread_mutex_lock(&c->store_mu);
            /* a rank whose launcher or peer died writes nothing more (a resumed run may be capturing this clip) */
            if (c->sh && capture_shard_alive(c->sh)) {
                snprintf(c->fail_msg, sizeof c->fail_msg, "%s", c->sh->why);
                pthread_mutex_unlock(&c->store_mu);
                atomic_store(&c->failed, 1);
                free(b->names[i]);
                continue;
            }
            const file_plan *p = &c->plan[b->files[i]];
            /* the file's identity (none for a file that could not be stat'ed) and the clip's caption */
            musae_clip_source src = p->src.file ? p->src : (musae_clip_source){"", -1, 0, NULL};
            src.caption = b->captions[i];
            const int rc = musae_store_try_add_clip(c->w, b->names[i], &src, b->F, acts, c->fail_msg,
                                                    sizeof c->fail_msg);
            pthread_mutex_unlock(&c->store_mu);
            if (rc) {
                atomic_store(&c->failed, 1);
                free(b->names[i]);
                continue;
            }
            c->t_write += musae_now() - t0;
            c->cpu_write += musae_thread_cpu() - c0;
            c->written++;
            c->frames += b->F;
            char extra[96];
            const double el = musae_now() - c->pg.t_start;
            snprintf(extra, sizeof extra, "%.0f frames/s", el > 0 ? (double)c->frames / el : 0.0);
            musae_progress_add(&c->pg, 1, extra);
            free(b->names[i]);
        }
        for (int l = 0; l < nl; l++) free(b->dst[l]);
        free(b->dst);
        free(b->names);
        free(b->captions);
        free(b->files);
        free(b);
    }
    return NULL;
}

/* The watch of a sharded capture between commits. Once the launcher is gone, Open MPI's PMIx client ends the rank
 * about a second later (measured: 0.9-1.0 s after the parent changed, exit status 195), which would leave its
 * shard lock behind; a commit cycle (a batch of clips through EnCodec and the LM) can take longer than that. So a
 * thread looks every 50 ms, and a rank whose launcher or peer died stops at once with exit 1 (musae_fail_now:
 * exit() from this thread, beside the running pipeline, crashed in its handlers), removing its locks. It holds
 * store_mu while it looks and stops, so no commit is in progress: the store stays as of its last commit, as when
 * the writer stops it. */
static void *watch_main(void *arg) {
    capture_ctx *c = arg;
    while (!atomic_load(&c->watch_stop)) {
        usleep(50000);
        pthread_mutex_lock(&c->store_mu);
        if (capture_shard_alive(c->sh)) musae_fail_now("%s", c->sh->why);
        pthread_mutex_unlock(&c->store_mu);
    }
    return NULL;
}

/* Resolves every file's identity (plan[i].src) and finds the files that are another's under another spelling
 * (a symlink, "a//b.wav"): dup[i] is the first of them in dataset order, else -1. */
typedef struct {
    const char *file;
    int64_t i;
} file_key;
static int cmp_file_key(const void *a, const void *b) {
    const file_key *x = a, *y = b;
    const int c = strcmp(x->file, y->file);
    return c ? c : (x->i > y->i) - (x->i < y->i);
}
static int64_t *same_files(const capture_dataset *ds, file_plan *plan) {
    int64_t *dup = musae_xmalloc(sizeof(int64_t) * (size_t)(ds->n_files + 1));
    file_key *k = musae_xmalloc(sizeof *k * (size_t)(ds->n_files + 1));
    int64_t n = 0;
    for (int64_t i = 0; i < ds->n_files; i++) {
        dup[i] = -1;
        if (musae_clip_source_of(ds->files[i].path, &plan[i].src) == 0) k[n++] = (file_key){plan[i].src.file, i};
        else plan[i].src.file = NULL; /* unreadable: the audio reader says why */
    }
    qsort(k, (size_t)n, sizeof *k, cmp_file_key);
    for (int64_t j = 1; j < n; j++)
        if (!strcmp(k[j].file, k[j - 1].file)) dup[k[j].i] = dup[k[j - 1].i] >= 0 ? dup[k[j - 1].i] : k[j - 1].i;
    free(k);
    return dup;
}

/* The place in the plan of the clip `name` of the (canonical) source file `file`, or -1 (capture_plan_pos): the
 * file's first clip's place plus the clip's index, from the start its fragment "#t=START,END" names. */
typedef struct {
    const capture_ctx *c;
    file_key *by_file; /* planned files by canonical path */
    int64_t n;
} plan_index;
static int64_t plan_pos(void *ctx, const char *file, const char *name) {
    const plan_index *ix = ctx;
    const capture_ctx *c = ix->c;
    const char *frag = strrchr(name, '#');
    if (!file[0] || !frag || strncmp(frag, "#t=", 3)) return -1;
    const int64_t start = llround(strtod(frag + 3, NULL) * c->rate), k = start / c->clip_samples;
    const file_key want = {file, -1};
    int64_t a = 0, b = ix->n; /* the first entry >= file */
    while (a < b) {
        const int64_t m = (a + b) / 2;
        if (strcmp(ix->by_file[m].file, want.file) < 0) a = m + 1;
        else b = m;
    }
    if (a == ix->n || strcmp(ix->by_file[a].file, file) || start % c->clip_samples) return -1;
    const file_plan *p = &c->plan[ix->by_file[a].i];
    return k < p->n_clips ? p->clip0 + k : -1;
}

static plan_index plan_index_of(const capture_ctx *c) {
    plan_index ix = {c, musae_xmalloc(sizeof(file_key) * (size_t)(c->ds->n_files + 1)), 0};
    for (int64_t fi = 0; fi < c->ds->n_files; fi++)
        if (c->plan[fi].samples >= 0 && c->plan[fi].src.file) ix.by_file[ix.n++] = (file_key){c->plan[fi].src.file, fi};
    qsort(ix.by_file, (size_t)ix.n, sizeof *ix.by_file, cmp_file_key);
    return ix;
}

int capture_run(const capture_opts *o, capture_report *rep) {
    char err[1024];
    capture_ctx *c = musae_xcalloc(1, sizeof *c);
    c->o = o;
    if (o->n_layers < 1) musae_fail("--layers: at least one layer");
    if (o->batch < 1) musae_fail("--batch must be at least 1");
    if (o->dtype != MUSAE_F16 && o->dtype != MUSAE_F32) musae_fail("--dtype: f16 or f32");

    /* model: config, decoder, codec (and T5 for captions) from one open checkpoint */
    musae_model_config cfg;
    if (musae_config_load(&cfg, o->model_dir, err, sizeof err)) musae_fail("%s", err);
    if (!cfg.has_audio)
        musae_fail("%s/config.json has no audio_encoder: capture needs a full MusicGen folder (decoder + EnCodec)",
                   o->model_dir);
    if (encodec_config_supported(&cfg.audio, err, sizeof err)) musae_fail("%s/config.json: %s", o->model_dir, err);
    if (o->captions && !cfg.has_text)
        musae_fail("--captions: %s/config.json has no text_encoder", o->model_dir);
    c->rate = cfg.audio.sampling_rate;
    c->hop = cfg.audio.hop_length;
    const int64_t K = cfg.decoder.num_codebooks, n_layers_model = cfg.decoder.num_hidden_layers;
    for (int i = 0; i < o->n_layers; i++)
        if (o->layers[i] < 0 || o->layers[i] >= n_layers_model)
            musae_fail("--layers: layer %d does not exist (%s has layers 0..%lld)", o->layers[i], o->model_dir,
                       (long long)n_layers_model - 1);
    const int64_t clip_frames = llround(o->clip_seconds * cfg.audio.frame_rate);
    if (clip_frames < 1 || fabs((double)clip_frames - o->clip_seconds * cfg.audio.frame_rate) > 1e-6)
        musae_fail("--clip-seconds %g is not a whole number of frames (%d per second)", o->clip_seconds,
                   cfg.audio.frame_rate);
    if (clip_frames + K > cfg.decoder.max_position_embeddings)
        musae_fail("--clip-seconds %g: %lld frames need %lld decoder positions; the model has %d (at most %.2f s)",
                   o->clip_seconds, (long long)clip_frames, (long long)(clip_frames + K),
                   cfg.decoder.max_position_embeddings,
                   (double)(cfg.decoder.max_position_embeddings - K) / cfg.audio.frame_rate);
    c->clip_samples = clip_frames * c->hop;
    const double min_s = o->min_seconds > 0 ? o->min_seconds : o->clip_seconds;
    if (min_s > o->clip_seconds) musae_fail("--min-seconds %g exceeds --clip-seconds %g", min_s, o->clip_seconds);
    c->min_samples = (int64_t)ceil(min_s * c->rate - 1e-6);
    if (c->min_samples < 1) c->min_samples = 1;

    capture_dataset ds;
    if (capture_dataset_load(o->audio, &ds, err, sizeof err)) musae_fail("--audio: %s", err);
    c->ds = &ds;
    if (o->captions && !ds.from_list)
        musae_fail("--captions needs a list file (path<TAB>caption per line); %s is a %s", o->audio,
                   ds.n_dirs ? "folder" : "single file");

    musae_st st;
    if (musae_st_open(&st, o->model_dir, err, sizeof err)) musae_fail("%s", err);
    mg_load_from(&c->lm, &st, &cfg, o->ops, o->prec);
    encodec_load_st(&c->codec, &cfg.audio, &st, "audio_encoder.", o->ops);
    c->dev_shared = o->ops->device != MUSAE_DEVICE_CPU;
    if (c->codec.n_q != K)
        musae_fail("%s: EnCodec gives %d codebooks, the decoder takes %lld", o->model_dir, c->codec.n_q, (long long)K);
    if (o->captions) {
        if (musae_text_cond_load(&c->tc, o->model_dir, &st, &cfg, o->ops, err, sizeof err)) musae_fail("%s", err);
        c->have_tc = 1;
    }
    musae_st_close(&st);
    c->K = K;
    c->H = c->lm.H;

    /* the store: continue it, or create it */
    char model_id[512];
    capture_model_id(o->model_dir, model_id, sizeof model_id);
    const float params[P_N] = {[P_CLIP_SAMPLES] = (float)c->clip_samples, [P_MIN_SAMPLES] = (float)c->min_samples,
                               [P_CAPTIONS] = (float)(o->captions != 0), [P_RATE] = (float)c->rate};
    musae_store_spec spec = {.model = model_id, .d_model = (int)c->H, .frame_rate = cfg.audio.frame_rate,
                             .n_layers = o->n_layers, .dtype = o->dtype, .dtype_source = "f32"};
    /* the arithmetic of the LM's products, which the store records and a continuation must match: the CPU's fp32
     * products differ between hosts with AMX and without (kernels/cpu/isa.h), bf16 weights and the GPU differ
     * from both */
    const int on_cpu = o->ops == musae_ops_cpu(), fp32 = o->prec == MUSAE_PREC_FP32;
    const char *arith = on_cpu ? (fp32 ? cpu_gemm_arith() : "cpu-bf16w") : fp32 ? "cuda-fp32" : "cuda-bf16";
    spec.cpu_arith = arith;
    memcpy(spec.layers, o->layers, sizeof(int) * (size_t)o->n_layers);
    spec.captions = o->captions != 0; /* /clips/caption: what each clip was conditioned on */
    /* the clip settings are in the store from its first moment, so a failed first commit leaves no store that
     * a next run could not continue */
    spec.extra_name = "/capture/params";
    spec.extra_rank = 1;
    spec.extra_shape = (const int64_t[]){P_N};
    spec.extra_data = params;
    /* several ranks (or a store that is sharded already): this process writes its own shard */
    capture_shards sh;
    c->store = o->out;
    if (capture_sharded(o->out, o->dist)) {
        static const musae_dist one = {.world = 1, .local_world = 1, .launcher = "none"};
        capture_resume_check rc = {model_id, o, (int)c->H, params, arith};
        capture_shards_begin(&sh, o->out, o->dist ? o->dist : &one, capture_check_shard, &rc);
        c->sh = &sh;
        c->store = sh.mine;
    }
    /* the writer lock first: another writer's file is not ours to judge (HDF5 refuses to open it meanwhile) */
    musae_store_lock(c->store);
    struct stat sb;
    /* an empty file is what a failed creation of an older musae left: musae_store_create replaces it */
    const int created = stat(c->store, &sb) != 0 || (S_ISREG(sb.st_mode) && sb.st_size == 0);
    if (!created) {
        if (!c->sh) capture_check_resumable(c->store, model_id, o, (int)c->H, params, arith);
        c->w = musae_store_append(c->store, &spec);
    } else {
        c->w = musae_store_create(c->store, &spec);
    }
    if (c->sh) capture_shards_note(c->sh, c->w); /* a clip in any shard is present */

    /* plan: every file's length from its header, what is already in the store, what is skipped */
    pthread_mutex_init(&c->skips.mu, NULL);
    if (ds.n_bad_dirs) LOG_WARN("capture: %lld folder(s) could not be read, their files are skipped:", (long long)ds.n_bad_dirs);
    for (int64_t i = 0; i < ds.n_bad_dirs; i++) LOG_WARN("  %s: %s", ds.bad_dirs[i], ds.bad_dir_why[i]);
    pthread_mutex_init(&c->store_mu, NULL);
    pthread_mutex_init(&c->dev_mu, NULL);
    c->plan = musae_xcalloc((size_t)ds.n_files, sizeof *c->plan);
    int64_t planned = 0, present = 0, tails = 0;
    double tail_s = 0;
    musae_progress scan;
    musae_progress_init(&scan, "scan", "files", ds.n_files);
    scan.quiet |= ds.n_files <= 1000; /* a bar only where reading the headers takes a while */
    char name[8192];
    int64_t *dup_of = same_files(&ds, c->plan), respelled = 0;
    int64_t *plen = NULL, n_pend = 0, cap_pend = 0; /* the duration of each pending clip, in plan order */
    for (int64_t fi = 0; fi < ds.n_files; fi++) {
        const capture_file *f = &ds.files[fi];
        file_plan *p = &c->plan[fi];
        p->samples = -1;
        p->base = f->path;
        musae_progress_add(&scan, 1, NULL);
        if (dup_of[fi] >= 0) {
            skip_add(&c->skips, f->path, "the same file as %s (a symlink or another spelling of its path)",
                     ds.files[dup_of[fi]].path);
            continue;
        }
        /* a file the store has clips of, under whatever spelling: continue it under the name it has there */
        musae_clip_source have;
        const char *as;
        if (p->src.file && musae_store_writer_source(c->w, p->src.file, &have, &as)) {
            if (have.size != p->src.size || have.mtime_ns != p->src.mtime_ns) {
                skip_add(&c->skips, f->path, "changed since it was captured as %s (size or modification time "
                         "differ): its clips in %s are the old file's; capture the new one into another store", as,
                         o->out);
                continue;
            }
            if (strcmp(as, f->path) && respelled++ < 5)
                LOG_INFO("capture: %s is already in %s as %s (the same file)", f->path, o->out, as);
            p->base = as;
        }
        if (o->captions && !f->caption) {
            skip_add(&c->skips, f->path, "no caption (line %d of the list has no tab and caption)", f->line);
            continue;
        }
        const int64_t bad_at = o->captions ? musae_utf8_invalid_at(f->caption, strlen(f->caption)) : -1;
        if (bad_at >= 0) {
            skip_add(&c->skips, f->path, "the caption on line %d is not valid UTF-8 (byte 0x%02x at offset %lld)",
                     f->line, (unsigned char)f->caption[bad_at], (long long)bad_at);
            continue;
        }
        musae_audio_reader *r = musae_audio_open(f->path, c->rate, 0, 0, err, sizeof err);
        if (!r) {
            skip_add(&c->skips, f->path, "%s", err);
            continue;
        }
        const int64_t n = musae_audio_reader_info(r)->out_samples;
        musae_audio_close(r);
        const int64_t nc = capture_plan_file(n, c->clip_samples, c->min_samples, NULL, NULL, 0);
        if (nc == 0) {
            skip_add(&c->skips, f->path, "too short: %.2f s, clips need at least %g s (--min-seconds)",
                     (double)n / c->rate, min_s);
            continue;
        }
        p->samples = n;
        p->n_clips = nc;
        p->clip0 = planned;
        p->ord0 = n_pend;
        int64_t covered = 0;
        for (int64_t k = 0; k < nc; k++) {
            const int64_t s0 = k * c->clip_samples, len = n - s0 < c->clip_samples ? n - s0 : c->clip_samples;
            covered += len;
            capture_clip_name(p->base, s0, len, c->rate, name, sizeof name);
            if (p->src.file ? musae_store_writer_has_source_clip(c->w, p->src.file, name)
                            : musae_store_writer_has_clip(c->w, name))
                present++;
            else {
                p->pending++;
                if (n_pend == cap_pend) plen = musae_xrealloc(plen, sizeof(int64_t) * (size_t)(cap_pend = 2 * cap_pend + 64));
                plen[n_pend++] = len;
            }
        }
        if (covered < n) tails++, tail_s += (double)(n - covered) / c->rate;
        planned += nc;
    }
    musae_progress_finish(&scan, NULL);
    free(dup_of);
    if (respelled)
        LOG_INFO("capture: %lld file(s) already captured under another spelling of their path: their clips are not "
                 "captured again", (long long)respelled);
    int64_t pending = planned - present;
    char lstr[512];
    capture_layers_str(o->layers, o->n_layers, lstr, sizeof lstr);
    c->to_do = o->max_clips > 0 && o->max_clips < pending ? o->max_clips : pending;
    c->lo = 0, c->hi = c->to_do;
    if (c->sh) {
        capture_shards_split(c->sh->dist, plen, c->to_do, &c->lo, &c->hi);
        LOG_INFO("capture: rank %d of %d captures pending clips [%lld, %lld) of %lld into %s", c->sh->dist->rank,
                 c->sh->dist->world, (long long)c->lo, (long long)c->hi, (long long)c->to_do, c->store);
    }
    free(plen);
    LOG_INFO("capture: %lld file(s) (%lld skipped), %lld clip(s) of %g s planned: %lld already in %s, %lld to "
             "capture%s; layers %s, %s, %s", (long long)ds.n_files, (long long)c->skips.n, (long long)planned,
             o->clip_seconds, (long long)present, o->out, (long long)c->to_do,
             c->to_do < pending ? " (--max-clips)" : "", lstr,
             o->captions ? "text-conditioned" : "unconditional", musae_dtype_name(o->dtype));

    if (o->captions && o->batch > 1)
        LOG_INFO("capture: --captions runs one clip per forward (--batch %d applies to unconditional capture)", o->batch);
    /* run */
    musae_queue_init(&c->jobs, ENCODE_BATCH); /* room for a batch to wait while the encoder runs the last one */
    musae_queue_init(&c->coded, 2 * o->batch + 1);
    musae_queue_init(&c->results, 2);
    c->to_do = c->hi - c->lo;
    musae_progress_init(&c->pg, "capture", "clips", c->to_do);
    const double t0 = musae_now(), cpu0 = musae_process_cpu();
    pthread_t th_r, th_e, th_c, th_w, th_watch;
    if (pthread_create(&th_r, NULL, reader_main, c) || pthread_create(&th_e, NULL, encoder_main, c) ||
        pthread_create(&th_c, NULL, compute_main, c) || pthread_create(&th_w, NULL, writer_main, c) ||
        (c->sh && pthread_create(&th_watch, NULL, watch_main, c)))
        musae_fail("cannot start the capture threads");
    pthread_join(th_r, NULL);
    pthread_join(th_e, NULL);
    pthread_join(th_c, NULL);
    pthread_join(th_w, NULL);
    if (c->sh) {
        atomic_store(&c->watch_stop, 1);
        pthread_join(th_watch, NULL);
    }
    /* every thread has stopped: the store stays as of its last commit (it is not closed: closing flushes) */
    if (atomic_load(&c->failed)) musae_fail("%s", c->fail_msg);
    const double wall = musae_now() - t0, cpu_loop = musae_process_cpu() - cpu0;
    char extra[160];
    snprintf(extra, sizeof extra, "%.0f frames/s", wall > 0 ? (double)c->frames / wall : 0.0);
    if (c->to_do > 0) musae_progress_finish(&c->pg, extra);

    int complete = present + c->written == planned;
    int64_t n_rows = musae_store_writer_rows(c->w), n_clips = musae_store_writer_clips(c->w);
    /* a shard is complete when its rank captured its whole range */
    musae_store_close_writer(c->w, c->sh ? c->written == c->to_do : complete);
    if (c->sh && created && n_clips == 0 && planned > 0) unlink(c->store); /* a rank that had nothing to do */
    if (c->sh && planned > 0) {
        plan_index ix = plan_index_of(c);
        complete = capture_shards_finish(c->sh, c->written, present, planned, plan_pos, &ix);
        free(ix.by_file);
        if (c->sh->dist->rank == 0) {
            musae_store *js = musae_store_open(o->out, err, sizeof err);
            if (!js) musae_fail("%s", err);
            n_rows = musae_store_get_info(js)->n_rows, n_clips = musae_store_get_info(js)->n_clips;
            musae_store_close(js);
        }
    }

    /* summary */
    const double audio_h = (double)c->frames / cfg.audio.frame_rate / 3600.0;
    LOG_INFO("capture: wrote %lld clip(s), %lld frames (%.3f h of audio) in %.2f s: %.2f clips/s, %.0f frames/s; "
             "%s now holds %lld clips, %lld rows%s", (long long)c->written, (long long)c->frames, audio_h, wall,
             wall > 0 ? c->written / wall : 0.0, wall > 0 ? c->frames / wall : 0.0,
             c->sh && c->sh->dist->rank != 0 ? c->store : o->out, (long long)n_clips,
             (long long)n_rows, complete ? "" : " (incomplete: run the same command again to continue)");
    if (c->written > 0)
        LOG_INFO("capture: stage time (each stage on its own thread): read+resample %.2f s, EnCodec %.2f s, T5 %.2f s, "
                 "LM %.2f s, store write %.2f s; busy share of the wall time: EnCodec %.0f%%, T5+LM %.0f%%, store "
                 "write %.1f%%", c->t_read, c->t_encode, c->t_text, c->t_lm, c->t_write, 100 * c->t_encode / wall,
                 100 * (c->t_text + c->t_lm) / wall, 100 * c->t_write / wall);
    if (tails) LOG_INFO("capture: %lld file tail(s) shorter than %g s dropped (%.1f s in all)", (long long)tails, min_s, tail_s);
    if (ds.n_not_audio) LOG_INFO("capture: %lld file(s) without an audio extension ignored", (long long)ds.n_not_audio);
    if (c->skips.n) {
        LOG_WARN("capture: %lld file(s) skipped:", (long long)c->skips.n);
        for (int64_t i = 0; i < c->skips.n; i++) {
            if (i == 50 && musae_log_get_level() < MUSAE_LOG_DEBUG) {
                LOG_WARN("  ... and %lld more (MUSAE_LOG=debug lists all)", (long long)(c->skips.n - 50));
                break;
            }
            const skip_entry *e = &c->skips.items[i];
            /* the audio reader's messages start with the path already */
            if (!strncmp(e->reason, e->path, strlen(e->path))) LOG_WARN("  %s", e->reason);
            else LOG_WARN("  %s: %s", e->path, e->reason);
        }
    }
    if (rep) {
        *rep = (capture_report){
            .files = ds.n_files, .files_skipped = c->skips.n, .clips_planned = planned, .clips_present = present,
            .clips_written = c->written, .frames_written = c->frames, .tails_dropped = tails,
            .tail_seconds_dropped = tail_s, .seconds = wall, .t_read = c->t_read, .t_encode = c->t_encode,
            .t_text = c->t_text, .t_lm = c->t_lm, .t_write = c->t_write, .cpu_read = c->cpu_read,
            .cpu_encode = c->cpu_encode, .cpu_lm = c->cpu_lm, .cpu_write = c->cpu_write, .cpu_loop = cpu_loop,
            .complete = complete};
    }

    if (planned == 0) { /* every file was skipped: say so, and leave no empty store behind */
        if (created) unlink(c->store);
        musae_store_unlock(c->store);
        if (c->sh) musae_store_unlock(o->out);
        musae_fail("--audio %s: nothing to capture, all %lld file(s) were skipped (reasons above)", o->audio,
                   (long long)ds.n_files);
    }
    musae_store_unlock(c->store);
    if (c->sh) capture_shards_free(c->sh);
    for (int64_t i = 0; i < c->skips.n; i++) free(c->skips.items[i].path), free(c->skips.items[i].reason);
    free(c->skips.items);
    pthread_mutex_destroy(&c->skips.mu);
    pthread_mutex_destroy(&c->store_mu);
    pthread_mutex_destroy(&c->dev_mu);
    musae_queue_free(&c->jobs);
    musae_queue_free(&c->coded);
    musae_queue_free(&c->results);
    for (int64_t i = 0; i < ds.n_files; i++) free((char *)c->plan[i].src.file);
    free(c->plan);
    if (c->have_tc) musae_text_cond_free(&c->tc);
    encodec_free(&c->codec);
    mg_free(&c->lm);
    capture_dataset_free(&ds);
    free(c);
    return 0;
}
