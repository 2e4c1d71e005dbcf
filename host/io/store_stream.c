/* The shuffled, prefetched stream over an activation store (store.h: musae_stream_*; docs/STORE.md,
 * "Streaming for training"): split by clip, windows of whole chunks in a Philox order, a prefetch thread. It
 * reads through store_read.c (store.h's reader), so it needs no hdf5.h. */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "host/io/store.h"
#include "host/io/store_int.h"

/* Philox streams of the reader (the seed is the caller's): */
#define STREAM_SPLIT 0x5350ull               /* clip c -> train/val, counter c */
#define STREAM_BLOCKS (1ull << 56)            /* | epoch: the order of chunks in an epoch */
#define STREAM_ROWS (2ull << 56)              /* | epoch << 24 | window: the order of rows in a window */

typedef struct {
    uint64_t seed, stream, ctr;
    musae_u32x4 buf;
    int left;
} rng_words;

static uint32_t rng_next(rng_words *r) {
    if (!r->left) {
        r->buf = musae_philox(r->seed, r->stream, r->ctr++);
        r->left = 4;
    }
    return r->buf.v[4 - r->left--];
}

/* Fisher–Yates with j = floor(u32 * (i+1) / 2^32): the same permutation on every machine. */
static void shuffle_i64(int64_t *a, int64_t n, uint64_t seed, uint64_t stream) {
    rng_words r = {seed, stream, 0, {{0, 0, 0, 0}}, 0};
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(((uint64_t)rng_next(&r) * (uint64_t)(i + 1)) >> 32);
        int64_t t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

typedef struct {
    void *raw[MUSAE_STORE_MAX_LAYERS]; /* [rows, H] storage dtype */
    int64_t *order;                    /* [rows] row within raw, in delivery order */
    int64_t rows, skipped, epoch, window, seq;
    int state;                         /* 0 free, 1 ready, 2 end of stream */
} window_slot;

struct musae_stream {
    musae_store *s;
    musae_stream_opts o;
    int li[MUSAE_STORE_MAX_LAYERS];    /* store layer index of each requested layer */
    int64_t C, n_blocks, blocks_per_window, split_rows, n_nonempty;
    int64_t *range_first;              /* [n_blocks + 1] into ranges */
    int64_t (*ranges)[2];              /* split rows of each block as [row0, n) */
    int64_t *nonempty;                 /* blocks with split rows, in store order */
    int64_t windows_per_epoch;
    void *blockbuf;                    /* one chunk of one layer */
    window_slot slot[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* consumer */
    int64_t seq;                       /* window sequence number being consumed */
    musae_stream_pos pos;
};

static int clip_in_val(uint64_t split_seed, int64_t c, double frac) {
    return musae_u32_to_unit(musae_philox(split_seed, STREAM_SPLIT, (uint64_t)c).v[0]) < frac;
}

int musae_store_clip_held_out(uint64_t split_seed, double val_fraction, int64_t n_clips, int64_t c) {
    if (clip_in_val(split_seed, c, val_fraction)) return 1;
    if (val_fraction <= 0 || n_clips < 2 || c != n_clips - 1) return 0;
    for (int64_t i = 0; i < n_clips; i++) /* none drawn: the last clip is held out */
        if (clip_in_val(split_seed, i, val_fraction)) return 0;
    return 1;
}

void musae_store_split_mask(const musae_store *s, musae_split split, double val_fraction, uint64_t split_seed,
                            uint8_t *mask) {
    const int64_t n = musae_store_get_info(s)->n_clips;
    for (int64_t c = 0; c < n; c++) {
        const int val = musae_store_clip_held_out(split_seed, val_fraction, n, c);
        mask[c] = split == MUSAE_SPLIT_ALL || (split == MUSAE_SPLIT_VAL) == val;
    }
}

static int row_nonfinite(musae_dtype dt, const void *raw, int64_t r, int d) {
    if (dt == MUSAE_F16) {
        const uint16_t *h = (const uint16_t *)raw + r * d;
        for (int i = 0; i < d; i++)
            if ((h[i] & 0x7c00u) == 0x7c00u) return 1;
    } else {
        const uint32_t *f = (const uint32_t *)raw + r * d;
        for (int i = 0; i < d; i++)
            if ((f[i] & 0x7f800000u) == 0x7f800000u) return 1;
    }
    return 0;
}

static int64_t clip_of_row(const musae_store_info *in, int64_t row) {
    int64_t lo = 0, hi = in->n_clips - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi + 1) / 2;
        if (in->clip_offset[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* Loads window `w` of epoch `e` into slot: the chunks, the non-finite filter, and the row order. */
static void load_window(musae_stream *st, window_slot *sl, int64_t e, int64_t w) {
    const musae_store_info *in = musae_store_get_info(st->s);
    const int d = in->d_model;
    const size_t esz = musae_dtype_size(in->dtype), rowb = (size_t)d * esz;
    int64_t *blocks = musae_xmalloc(sizeof(int64_t) * (size_t)st->n_nonempty);
    memcpy(blocks, st->nonempty, sizeof(int64_t) * (size_t)st->n_nonempty);
    if (st->o.shuffle) shuffle_i64(blocks, st->n_nonempty, st->o.seed, STREAM_BLOCKS | (uint64_t)e);
    int64_t b0 = w * st->blocks_per_window, b1 = b0 + st->blocks_per_window;
    if (b1 > st->n_nonempty) b1 = st->n_nonempty;
    int64_t rows = 0;
    for (int64_t bi = b0; bi < b1; bi++) {
        int64_t b = blocks[bi], r0 = b * st->C, nb = (r0 + st->C <= in->n_rows ? st->C : in->n_rows - r0);
        for (int l = 0; l < st->o.n_layers; l++) {
            musae_store_read_raw(st->s, st->li[l], r0, nb, st->blockbuf);
            int64_t at = rows;
            for (int64_t k = st->range_first[b]; k < st->range_first[b + 1]; k++) {
                memcpy((uint8_t *)sl->raw[l] + (size_t)at * rowb, (uint8_t *)st->blockbuf + (size_t)(st->ranges[k][0] - r0) * rowb,
                       (size_t)st->ranges[k][1] * rowb);
                at += st->ranges[k][1];
            }
        }
        /* remember the store row of each window row only through the ranges: needed for error messages */
        int64_t at = rows;
        for (int64_t k = st->range_first[b]; k < st->range_first[b + 1]; k++)
            for (int64_t r = 0; r < st->ranges[k][1]; r++) sl->order[at++] = st->ranges[k][0] + r;
        rows = at;
    }
    free(blocks);
    /* order[] holds store rows; turn it into window rows that pass the non-finite filter */
    int64_t kept = 0;
    for (int64_t r = 0; r < rows; r++) {
        int bad = 0;
        for (int l = 0; l < st->o.n_layers && !bad; l++) bad = row_nonfinite(in->dtype, sl->raw[l], r, d);
        if (bad && !st->o.skip_nonfinite) {
            int64_t row = sl->order[r], c = clip_of_row(in, row);
            char *p = musae_store_clip_path(st->s, c);
            musae_fail("%s: row %lld (clip %lld '%s', frame %lld) holds NaN/Inf; pass --skip-nonfinite to skip such "
                       "rows (they are counted)",
                       in->path, (long long)row, (long long)c, p, (long long)(row - in->clip_offset[c]));
        }
        if (!bad) sl->order[kept++] = r;
    }
    sl->skipped = rows - kept;
    sl->rows = kept;
    if (st->o.shuffle)
        shuffle_i64(sl->order, kept, st->o.seed, STREAM_ROWS | ((uint64_t)e << 24) | (uint64_t)w);
    sl->epoch = e;
    sl->window = w;
}

static void *producer(void *arg) {
    musae_stream *st = arg;
    int64_t e = st->o.start.epoch, w = st->o.start.window;
    for (int64_t seq = 0;; seq++) {
        window_slot *sl = &st->slot[seq & 1];
        pthread_mutex_lock(&st->mu);
        while (sl->state != 0 && !st->stop) pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
        if (st->stop) break;
        int end = 0;
        if (w >= st->windows_per_epoch) {
            if (!st->o.loop) end = 1;
            e++;
            w = 0;
        }
        if (!end) load_window(st, sl, e, w);
        sl->seq = seq;
        pthread_mutex_lock(&st->mu);
        sl->state = end ? 2 : 1;
        pthread_cond_broadcast(&st->cv);
        pthread_mutex_unlock(&st->mu);
        if (end) break;
        w++;
    }
    return NULL;
}

musae_stream *musae_stream_open(musae_store *s, const musae_stream_opts *o) {
    const musae_store_info *in = musae_store_get_info(s);
    musae_stream *st = musae_xcalloc(1, sizeof *st);
    st->s = s;
    st->o = *o;
    MUSAE_ASSERT(o->n_layers >= 1 && o->n_layers <= MUSAE_STORE_MAX_LAYERS, "%d layers", o->n_layers);
    for (int l = 0; l < o->n_layers; l++) {
        st->li[l] = musae_store_layer_index(s, o->layers[l]);
        if (st->li[l] < 0) {
            char have[512] = "";
            for (int i = 0; i < in->n_layers; i++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%d", i ? "," : "", in->layers[i]);
            musae_fail("%s: no layer %d in the store (it holds layers %s)", in->path, o->layers[l], have);
        }
    }
    /* which clips are in the split */
    uint8_t *in_split = musae_xcalloc((size_t)in->n_clips + 1, 1);
    musae_store_split_mask(s, o->split, o->val_fraction, o->split_seed, in_split);
    /* per chunk, the row ranges of the split (clips are contiguous and in row order) */
    st->C = in->chunk_rows;
    st->n_blocks = (in->n_rows + st->C - 1) / st->C;
    st->range_first = musae_xcalloc((size_t)st->n_blocks + 1, sizeof(int64_t));
    size_t cap = (size_t)st->n_blocks + (size_t)in->n_clips + 1;
    st->ranges = musae_xmalloc(cap * sizeof *st->ranges);
    st->nonempty = musae_xmalloc(sizeof(int64_t) * ((size_t)st->n_blocks + 1));
    int64_t nr = 0, c = 0;
    for (int64_t b = 0; b < st->n_blocks; b++) {
        int64_t r0 = b * st->C, r1 = r0 + st->C < in->n_rows ? r0 + st->C : in->n_rows, before = nr;
        st->range_first[b] = nr;
        while (c < in->n_clips && in->clip_offset[c + 1] <= r0) c++;
        for (int64_t cc = c; cc < in->n_clips && in->clip_offset[cc] < r1; cc++) {
            if (!in_split[cc]) continue;
            int64_t a = in->clip_offset[cc] > r0 ? in->clip_offset[cc] : r0;
            int64_t z = in->clip_offset[cc + 1] < r1 ? in->clip_offset[cc + 1] : r1;
            if (z <= a) continue;
            if (nr > before && st->ranges[nr - 1][0] + st->ranges[nr - 1][1] == a) st->ranges[nr - 1][1] += z - a;
            else {
                MUSAE_ASSERT((size_t)nr < cap, "range table overflow");
                st->ranges[nr][0] = a;
                st->ranges[nr][1] = z - a;
                nr++;
            }
            st->split_rows += z - a;
        }
        if (nr > before) st->nonempty[st->n_nonempty++] = b;
    }
    st->range_first[st->n_blocks] = nr;
    free(in_split);
    if (st->split_rows == 0)
        musae_fail("%s: the %s split is empty (%lld clips, val fraction %g)", in->path,
                   o->split == MUSAE_SPLIT_VAL ? "validation" : "training", (long long)in->n_clips, o->val_fraction);
    st->blocks_per_window = o->window_rows > st->C ? o->window_rows / st->C : 1;
    /* a window larger than the split is the whole split: that bounds the buffers by the store, whatever was asked */
    if (st->blocks_per_window > st->n_nonempty) st->blocks_per_window = st->n_nonempty;
    st->windows_per_epoch = (st->n_nonempty + st->blocks_per_window - 1) / st->blocks_per_window;
    const size_t rowb = (size_t)in->d_model * musae_dtype_size(in->dtype);
    const size_t wrows = (size_t)(st->blocks_per_window * st->C);
    /* two windows (the one read, the one consumed) per layer, plus the row order: refuse what the machine cannot
     * hold rather than let an allocation abort or the OOM killer end the run */
    const double need = 2.0 * (double)wrows * ((double)rowb * o->n_layers + sizeof(int64_t));
    const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGE_SIZE);
    if (phys > 0 && need > 0.8 * phys)
        musae_fail("%s: a shuffle window of %lld rows needs %.1f GiB (2 windows x %d layer(s) x %zu bytes a row), "
                   "more than 80%% of this machine's %.1f GiB: lower --shuffle-rows", in->path, (long long)wrows,
                   need / 1073741824.0, o->n_layers, rowb, phys / 1073741824.0);
    st->blockbuf = musae_xmalloc((size_t)st->C * rowb);
    for (int i = 0; i < 2; i++) {
        for (int l = 0; l < o->n_layers; l++) st->slot[i].raw[l] = musae_xmalloc(wrows * rowb);
        st->slot[i].order = musae_xmalloc(wrows * sizeof(int64_t));
    }
    st->pos = o->start;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    if (pthread_create(&st->thread, NULL, producer, st)) musae_fail("cannot start the prefetch thread");
    return st;
}

int64_t musae_stream_next(musae_stream *st, int64_t n, float *const *out) {
    const musae_store_info *in = musae_store_get_info(st->s);
    const int d = in->d_model;
    const size_t esz = musae_dtype_size(in->dtype);
    int64_t got = 0;
    while (got < n) {
        window_slot *sl = &st->slot[st->seq & 1];
        pthread_mutex_lock(&st->mu);
        while (sl->state == 0) pthread_cond_wait(&st->cv, &st->mu);
        pthread_mutex_unlock(&st->mu);
        if (sl->state == 2) break;
        st->pos.epoch = sl->epoch;
        st->pos.window = sl->window;
        int64_t take = sl->rows - st->pos.offset;
        if (take > n - got) take = n - got;
        for (int l = 0; l < st->o.n_layers; l++) {
            float *dst = out[l] + (size_t)got * d;
            const uint8_t *raw = sl->raw[l];
            const int64_t *ord = sl->order + st->pos.offset;
#pragma omp parallel for schedule(static) if (take * d > 65536)
            for (int64_t r = 0; r < take; r++)
                musae_store_raw_to_f32(in->dtype, raw + (size_t)ord[r] * d * esz, (size_t)d, dst + (size_t)r * d);
        }
        got += take;
        st->pos.offset += take;
        st->pos.delivered += take;
        if (st->pos.offset == sl->rows) { /* window done: hand the slot back to the producer */
            st->pos.skipped += sl->skipped;
            pthread_mutex_lock(&st->mu);
            sl->state = 0;
            pthread_cond_broadcast(&st->cv);
            pthread_mutex_unlock(&st->mu);
            st->seq++;
            st->pos.offset = 0;
            st->pos.window++;
            if (st->pos.window >= st->windows_per_epoch) {
                st->pos.window = 0;
                st->pos.epoch++;
            }
        }
    }
    return got;
}

musae_stream_pos musae_stream_tell(const musae_stream *st) { return st->pos; }
int64_t musae_stream_split_rows(const musae_stream *st) { return st->split_rows; }

void musae_stream_close(musae_stream *st) {
    if (!st) return;
    pthread_mutex_lock(&st->mu);
    st->stop = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->thread, NULL);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    for (int i = 0; i < 2; i++) {
        for (int l = 0; l < st->o.n_layers; l++) free(st->slot[i].raw[l]);
        free(st->slot[i].order);
    }
    free(st->blockbuf);
    free(st->range_first);
    free(st->ranges);
    free(st->nonempty);
    free(st);
}
