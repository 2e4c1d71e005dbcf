/* EnCodec's finite stacks (one pass over a window), their windowed streams and the LSTM with its residual
 * (model/encodec_stream.h): what the encoder (model/encodec_encode.c) and the decoder (model/encodec.c) run. */
#include "model/encodec_stream.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "kernels/cpu/cpu_ops.h"
#include "model/encodec_pool.h"
/* ---- finite stacks: lengths, receptive fields, one run over a window ---------------------------------------- */

/* HF EncodecConv1d._get_extra_padding_for_conv1d, in exact integers. HF computes it with a float32 tensor
 * division, which is exact while the length is below 2^24 rows (8.7 minutes at 32 kHz); beyond that HF's
 * own result can be off by a frame, ours stays the mathematical one. */
static int64_t conv_extra(const encodec_conv *c, int64_t L) {
    int64_t keff = (int64_t)(c->k - 1) * c->dilation + 1, total = keff - c->stride;
    int64_t n = ceil_div(L - keff + total, c->stride);
    return n * c->stride + keff - total - L;
}

static int64_t conv_len(const encodec_conv *c, int64_t L) {
    int64_t keff = (int64_t)(c->k - 1) * c->dilation + 1;
    return (L + c->pad_left + c->pad_right + conv_extra(c, L) - keff) / c->stride + 1;
}

int64_t encodec_stack_len(const encodec_stack *s, int64_t L) {
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        if (l->kind == ENCODEC_CONV) L = conv_len(&l->conv, L);
        else if (l->kind == ENCODEC_CONVT) L *= l->convt.stride;
    }
    return L;
}

/* Input rows [*lo, *hi] the outputs [*lo, *hi] read (away from the signal's edges). */
static void conv_need(const encodec_conv *c, int64_t *lo, int64_t *hi) {
    int64_t keff = (int64_t)(c->k - 1) * c->dilation + 1;
    *lo = *lo * c->stride - c->pad_left;
    *hi = *hi * c->stride - c->pad_left + keff - 1;
}

static void stack_need(const encodec_stack *s, int64_t *lo, int64_t *hi) {
    for (int i = s->n - 1; i >= 0; i--) {
        const encodec_layer *l = &s->layers[i];
        if (l->kind == ENCODEC_CONV) conv_need(&l->conv, lo, hi);
        else if (l->kind == ENCODEC_CONVT) {
            const encodec_convt *t = &l->convt;
            *lo = ceil_div(*lo + t->crop_left - t->k + 1, t->stride);
            *hi = floor_div(*hi + t->crop_left, t->stride);
        } else if (l->kind == ENCODEC_RES) {
            conv_need(&l->res.conv2, lo, hi); /* k 1: the residual's own rows are inside conv1's reach */
            conv_need(&l->res.conv1, lo, hi);
        }
    }
}

/* Input rows a window must span so that no reflect-padded layer in it sees a signal shorter than its
 * padding. HF pads such short signals differently (_pad1d appends zeros first); that is right for a short
 * whole signal, but inside a short window that ends at the signal's end it would change the true right
 * edge. Each layer's length stays >= its k_eff > its largest padding when the stack's input has this many. */
static int64_t stack_min_rows(const encodec_stack *s) {
    int64_t scale_num = 1, scale_den = 1, need = 1; /* input rows per row at the current layer: num / den */
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        const encodec_conv *cs[3] = {NULL, NULL, NULL};
        if (l->kind == ENCODEC_CONV) cs[0] = &l->conv;
        else if (l->kind == ENCODEC_RES) cs[0] = &l->res.conv1, cs[1] = &l->res.conv2, cs[2] = &l->res.shortcut;
        for (int j = 0; j < 3; j++)
            if (cs[j] && cs[j]->k) {
                int64_t keff = (int64_t)(cs[j]->k - 1) * cs[j]->dilation + 1;
                need = max64(need, ceil_div(keff * scale_num, scale_den));
            }
        if (l->kind == ENCODEC_CONV) scale_num *= l->conv.stride;
        else if (l->kind == ENCODEC_CONVT) scale_den *= l->convt.stride;
    }
    return need + s->down;
}

/* Largest intermediate (rows × channels) of a stack over n input rows. */
static int64_t stack_peak(const encodec_stack *s, int64_t L) {
    int64_t peak = L * s->c_in, C = s->c_in;
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        if (l->kind == ENCODEC_CONV) L = conv_len(&l->conv, L), C = l->conv.c_out;
        else if (l->kind == ENCODEC_CONVT) L *= l->convt.stride, C = l->convt.c_out;
        peak = max64(peak, L * C);
    }
    return peak;
}

static void scratch_reserve(encodec_pool *pool, encodec_scratch *w, int64_t cap) {
    if (cap <= w->cap) return;
    for (int i = 0; i < 3; i++) {
        encodec_pool_put(pool, w->buf[i], (size_t)w->cap * sizeof(float));
        w->buf[i] = encodec_pool_get(pool, (size_t)cap * sizeof(float));
    }
    w->cap = cap;
}

static void scratch_free(encodec_pool *pool, encodec_scratch *w) {
    for (int i = 0; i < 3; i++) encodec_pool_put(pool, w->buf[i], (size_t)w->cap * sizeof(float));
    memset(w, 0, sizeof *w);
}

/* One EncodecConv1d over x [L, c_in] → out [conv_len, c_out]: reflect (or zero) padding split as HF, plus the
 * extra right padding that completes the last frame. accumulate adds into out; elu applies an ELU after. */
static void run_conv(const encodec *m, const encodec_conv *c, const float *x, int64_t L, float *out, int accumulate,
                     int elu) {
    const musae_ops *ops = m->ops;
    int64_t extra = conv_extra(c, L);
    musae_conv1d_params p = {.t_in = L, .t_out = conv_len(c, L), .c_in = c->c_in, .c_out = c->c_out, .k = c->k,
                             .stride = c->stride, .dilation = c->dilation, .pad_left = c->pad_left,
                             .pad_right = c->pad_right + (int)extra, .reflect = m->reflect, .accumulate = accumulate,
                             .elu = elu};
    if (!m->reflect || L > max64(p.pad_left, p.pad_right)) {
        ops->conv1d(out, x, c->w, c->b, &p);
        return;
    }
    /* HF _pad1d on an input no longer than the padding: append zeros until reflection is possible, reflect,
     * then cut the appended length off the end. Only very short signals get here; build it on the host. */
    const int64_t C = c->c_in, maxpad = max64(p.pad_left, p.pad_right), ext = maxpad - L + 1, L2 = L + ext;
    const int64_t rows = p.pad_left + L2 + p.pad_right - ext;
    float *h = musae_xcalloc((size_t)(L2 * C), sizeof(float)), *hp = musae_xmalloc((size_t)(rows * C) * sizeof(float));
    ops->download(h, x, (size_t)(L * C) * sizeof(float));
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = i - p.pad_left;
        r = r < 0 ? -r : r >= L2 ? 2 * (L2 - 1) - r : r;
        memcpy(hp + i * C, h + r * C, (size_t)C * sizeof(float));
    }
    float *dp = ops->alloc((size_t)(rows * C) * sizeof(float));
    ops->upload(dp, hp, (size_t)(rows * C) * sizeof(float));
    p.t_in = rows;
    p.pad_left = p.pad_right = 0;
    ops->conv1d(out, dp, c->w, c->b, &p);
    ops->free(dp);
    free(h);
    free(hp);
}

/* The lowest-numbered scratch buffer that is neither a nor b (-1 stands for none). */
static int free_buf(int a, int b) { return a != 0 && b != 0 ? 0 : a != 1 && b != 1 ? 1 : 2; }

/* Runs the stack on x [L, c_in] (device) exactly as HF runs it on a whole signal of L rows. Returns the
 * output (one of the scratch buffers) and its row count in *n_out. */
static const float *stack_run(const encodec *m, const encodec_stack *s, const float *x, int64_t L, encodec_scratch *w,
                              int64_t *n_out) {
    const musae_ops *ops = m->ops;
    scratch_reserve(m->pool, w, stack_peak(s, L));
    const float *cur = x;
    int own = -1; /* which scratch buffer cur is, -1 for the caller's input */
    int64_t C = s->c_in;
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        switch (l->kind) {
        case ENCODEC_ELU: {
            int d = own >= 0 ? own : 0;
            ops->elu(w->buf[d], cur, L * C);
            cur = w->buf[own = d];
            break;
        }
        case ENCODEC_CONV: {
            int d = free_buf(own, own);
            run_conv(m, &l->conv, cur, L, w->buf[d], 0, 0);
            L = conv_len(&l->conv, L);
            C = l->conv.c_out;
            cur = w->buf[own = d];
            break;
        }
        case ENCODEC_CONVT: {
            const encodec_convt *t = &l->convt;
            int d = free_buf(own, own);
            musae_convt1d_params p = {.t_in = L, .t_out = L * t->stride, .c_in = t->c_in, .c_out = t->c_out,
                                      .k = t->k, .stride = t->stride, .crop_left = t->crop_left};
            ops->conv_transpose1d(w->buf[d], cur, t->w, t->b, &p);
            L *= t->stride;
            C = t->c_out;
            cur = w->buf[own = d];
            break;
        }
        case ENCODEC_RES: {
            /* y = shortcut(x) + conv2(elu(conv1(elu(x)))), shortcut = identity unless use_conv_shortcut */
            const encodec_resblock *r = &l->res;
            int a = free_buf(own, own), b = free_buf(own, a);
            ops->elu(w->buf[a], cur, L * C);
            run_conv(m, &r->conv1, w->buf[a], L, w->buf[b], 0, 1);
            if (r->shortcut.w) {
                run_conv(m, &r->shortcut, cur, L, w->buf[a], 0, 0);
            } else if (own < 0) {
                ops->copy(w->buf[a], cur, (size_t)(L * C) * sizeof(float));
            } else {
                a = own; /* add the block's output onto x in place */
            }
            /* an ELU next (the front's ELU before each downsampling conv) runs in conv2's pass */
            const int elu_next = i + 1 < s->n && s->layers[i + 1].kind == ENCODEC_ELU;
            run_conv(m, &r->conv2, w->buf[b], L, w->buf[a], 1, elu_next);
            cur = w->buf[own = a];
            i += elu_next;
            break;
        }
        }
    }
    *n_out = L;
    return cur;
}

/* ---- windowed stream over one stack ------------------------------------------------------------------------ */

void encodec_stream_init(encodec_stream *st, const encodec *m, const encodec_stack *s, int64_t chunk_out) {
    memset(st, 0, sizeof *st);
    st->m = m;
    st->s = s;
    st->total = -1;
    st->chunk = chunk_out;
    st->min_rows = stack_min_rows(s);
    st->w = &st->own;
}

void encodec_stream_free(encodec_stream *st) {
    encodec_pool_put(st->m->pool, st->in, (size_t)(st->in_cap * st->s->c_in) * sizeof(float));
    scratch_free(st->m->pool, &st->own);
}

void encodec_stream_push(encodec_stream *st, const float *x, int64_t n, int from_host) {
    const musae_ops *ops = st->m->ops;
    const int64_t C = st->s->c_in;
    MUSAE_ASSERT(st->total < 0, "encodec: push after the end of the input");
    if (st->in_n + n > st->in_cap) {
        int64_t cap = max64(2 * st->in_cap, st->in_n + n);
        float *in = encodec_pool_get(st->m->pool, (size_t)(cap * C) * sizeof(float));
        if (st->in_n) ops->copy(in, st->in, (size_t)(st->in_n * C) * sizeof(float));
        encodec_pool_put(st->m->pool, st->in, (size_t)(st->in_cap * C) * sizeof(float));
        st->in = in;
        st->in_cap = cap;
    }
    float *dst = st->in + st->in_n * C;
    if (from_host) ops->upload(dst, x, (size_t)(n * C) * sizeof(float));
    else ops->copy(dst, x, (size_t)(n * C) * sizeof(float));
    st->in_n += n;
}

void encodec_stream_end(encodec_stream *st) { st->total = st->in_first + st->in_n; }

int encodec_stream_done(const encodec_stream *st) { return st->total >= 0 && st->next_out == encodec_stack_len(st->s, st->total); }

/* Drops input rows before `keep` (they are read by no future window). The rows move down in steps no longer
 * than the shift, so no copy overlaps itself. */
static void stream_discard(encodec_stream *st, int64_t keep) {
    int64_t drop = min64(keep - st->in_first, st->in_n);
    if (drop <= 0) return;
    const int64_t C = st->s->c_in, left = st->in_n - drop;
    for (int64_t off = 0; off < left; off += drop) {
        int64_t n = min64(drop, left - off);
        st->m->ops->copy(st->in + off * C, st->in + (drop + off) * C, (size_t)(n * C) * sizeof(float));
    }
    st->in_first += drop;
    st->in_n = left;
}

int64_t encodec_stream_pull(encodec_stream *st, float *out) {
    const encodec_stack *s = st->s;
    const int64_t avail = st->in_first + st->in_n;
    int64_t n_out = -1, o1;
    if (st->total >= 0) {
        n_out = encodec_stack_len(s, st->total);
        o1 = min64(n_out, st->next_out + st->chunk);
    } else {
        /* the largest o1 whose last row's inputs are all here: the reach is monotone in the row */
        int64_t lo = st->next_out, hi = st->next_out + st->chunk;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo + 1) / 2, a = mid - 1, b = mid - 1;
            stack_need(s, &a, &b);
            if (b < avail) lo = mid;
            else hi = mid - 1;
        }
        o1 = lo;
    }
    if (o1 <= st->next_out) return 0;
    int64_t a = st->next_out, b = o1 - 1;
    stack_need(s, &a, &b);
    /* a window starting on a multiple of the stack's total stride keeps every layer's rows in phase */
    int64_t ws = a <= 0 ? 0 : a / s->down * s->down;
    int64_t we = st->total >= 0 && (o1 == n_out || b + 1 >= st->total) ? st->total : b + 1;
    if (we == st->total && we - ws < st->min_rows) ws = max64(0, floor_div(we - st->min_rows, s->down) * s->down);
    MUSAE_ASSERT(ws >= st->in_first && we <= avail && we > ws, "encodec: window [%lld, %lld) outside the buffer [%lld, %lld)",
                 (long long)ws, (long long)we, (long long)st->in_first, (long long)avail);
    int64_t n_w;
    const float *y = stack_run(st->m, s, st->in + (ws - st->in_first) * s->c_in, we - ws, st->w, &n_w);
    int64_t wo = ws / s->down * s->up;
    MUSAE_ASSERT(o1 - wo <= n_w, "encodec: window of %lld rows gave %lld outputs, need %lld", (long long)(we - ws),
                 (long long)n_w, (long long)(o1 - wo));
    st->m->ops->copy(out, y + (st->next_out - wo) * s->c_out, (size_t)((o1 - st->next_out) * s->c_out) * sizeof(float));
    int64_t produced = o1 - st->next_out;
    st->next_out = o1;
    a = b = o1;
    stack_need(s, &a, &b);
    /* keep what the next window reads, and enough to stretch a window that ends at the true end to min_rows */
    int64_t keep = min64(a, st->in_first + st->in_n - st->min_rows);
    stream_discard(st, keep <= 0 ? 0 : floor_div(keep, s->down) * s->down);
    return produced;
}

/* ---- LSTM with residual (EncodecLSTM: y = lstm(x) + x, zero initial state) -------------------------------- */

/* The recurrence is serial in time and bound by reading W_hh (16 MB for the 32 kHz codec) once per step, so
 * splitting one step's product over threads needs a barrier per step, which collapses whenever the machine
 * has fewer free cores than threads (kernels/cpu/lstm.c). The layers are a wavefront instead: on the CPU
 * table each layer runs in blocks of LSTM_BLOCK steps (its input GEMM and its recurrence, one ops->lstm call
 * per block), and layer l's block b needs only layer l - 1's block b. With two threads, layer 0 runs on one
 * and layer 1 follows a block behind on the other: one hand-off per block (a counter and a condition
 * variable), and only the follower ever waits, asleep. The blocks are the same whatever the thread count (one thread
 * runs them in the same (block, layer) order), so the bits are too. Other tables run whole chunks. Several
 * sequences of one length (a batched encode) run the same wavefront, each block one cpu_lstm_batch call for
 * all of them: the same blocks, and each sequence's bits, as alone. */
/* A block's input GEMM packs all of W_ih again: 40 rows cost 1.6x the per-row time of 200 (20 rows 2.1x),
 * while the follower's lag, one block, grows with the size; 20-40 give the same wall time, 40 less CPU. */
enum { LSTM_BLOCK = 40 };

void encodec_lstm_init(encodec_lstm_state *s, const encodec *m, const encodec_lstm *l, int64_t chunk) {
    const musae_ops *ops = m->ops;
    memset(s, 0, sizeof *s);
    s->l = l;
    s->chunk = chunk;
    s->block = ops->device == MUSAE_DEVICE_CPU ? min64(LSTM_BLOCK, chunk) : chunk;
    float *zero = musae_xcalloc((size_t)l->dim, sizeof(float));
    for (int i = 0; i < l->n_layers; i++) {
        s->h[i] = encodec_pool_get(m->pool, (size_t)l->dim * sizeof(float));
        s->c[i] = encodec_pool_get(m->pool, (size_t)l->dim * sizeof(float));
        ops->upload(s->h[i], zero, (size_t)l->dim * sizeof(float));
        ops->upload(s->c[i], zero, (size_t)l->dim * sizeof(float));
        s->out[i] = encodec_pool_get(m->pool, (size_t)(chunk * l->dim) * sizeof(float));
        s->work[i] = encodec_pool_get(m->pool, (size_t)(s->block * 4 * l->dim) * sizeof(float));
    }
    free(zero);
}

void encodec_lstm_free(encodec_lstm_state *s, const encodec *m) {
    const int64_t d = s->l->dim;
    for (int i = 0; i < s->l->n_layers; i++) {
        encodec_pool_put(m->pool, s->h[i], (size_t)d * sizeof(float));
        encodec_pool_put(m->pool, s->c[i], (size_t)d * sizeof(float));
        encodec_pool_put(m->pool, s->out[i], (size_t)(s->chunk * d) * sizeof(float));
        encodec_pool_put(m->pool, s->work[i], (size_t)(s->block * 4 * d) * sizeof(float));
    }
}

/* Layer i over steps [t0, t1) of the nb sequences x[b]: one ops->lstm call for one sequence, one
 * cpu_lstm_batch call (the same bits per sequence) for several. */
static void lstm_block(encodec_lstm_state *const *s, int nb, const musae_ops *ops, const float *const *x, int i,
                       int64_t t0, int64_t t1) {
    const encodec_lstm *l = s[0]->l;
    const int64_t d = l->dim;
    float *out[ENCODEC_BATCH_MAX], *h[ENCODEC_BATCH_MAX], *c[ENCODEC_BATCH_MAX], *work[ENCODEC_BATCH_MAX];
    const float *in[ENCODEC_BATCH_MAX];
    for (int b = 0; b < nb; b++) {
        in[b] = (i ? s[b]->out[i - 1] : x[b]) + t0 * d;
        out[b] = s[b]->out[i] + t0 * d;
        h[b] = s[b]->h[i], c[b] = s[b]->c[i], work[b] = s[b]->work[i];
    }
    if (nb == 1)
        ops->lstm(out[0], in[0], t1 - t0, d, d, l->w_ih[i], l->w_hh[i], l->b_ih[i], l->b_hh[i], h[0], c[0], work[0]);
    else
        cpu_lstm_batch(nb, out, in, t1 - t0, d, d, l->w_ih[i], l->w_hh[i], l->b_ih[i], l->b_hh[i], h, c, work);
}

/* The wavefront over nb sequences of t rows each; y[b] gets sequence b's output (valid until the next call). */
static void lstm_run_n(encodec_lstm_state *const *s, int nb, const musae_ops *ops, const float *const *x, int64_t t,
                       const float **y) {
    MUSAE_ASSERT(nb >= 1 && nb <= ENCODEC_BATCH_MAX, "lstm: %d sequences", nb);
    MUSAE_ASSERT(nb == 1 || ops->device == MUSAE_DEVICE_CPU, "lstm: %d sequences at once on a non-CPU table", nb);
    const encodec_lstm *l = s[0]->l;
    for (int b = 0; b < nb; b++)
        MUSAE_ASSERT(s[b]->l == l && s[b]->block == s[0]->block && t <= s[b]->chunk,
                     "lstm: sequence %d of %lld rows does not match the batch (chunk %lld)", b, (long long)t,
                     (long long)s[b]->chunk);
    const int L = l->n_layers;
    const int64_t block = s[0]->block, n_blk = (t + block - 1) / block;
    /* blocks finished per layer; a follower that finds its block not ready sleeps on `ready` (spinning
     * would take the core from the very thread it waits for when the machine is busy) */
    int done[ENCODEC_MAX_LSTM] = {0};
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
    /* thread j runs the layers i ≡ j (mod team size), blocks in order; a team of one runs them all */
#pragma omp parallel num_threads(2) if (L > 1 && n_blk > 1 && ops->device == MUSAE_DEVICE_CPU)
    {
        const int nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t b = 0; b < n_blk; b++)
            for (int i = me; i < L; i += nt) {
                if (i > 0 && __atomic_load_n(&done[i - 1], __ATOMIC_ACQUIRE) <= b) {
                    pthread_mutex_lock(&mu);
                    while (__atomic_load_n(&done[i - 1], __ATOMIC_ACQUIRE) <= b) pthread_cond_wait(&ready, &mu);
                    pthread_mutex_unlock(&mu);
                }
                lstm_block(s, nb, ops, x, i, b * block, min64(t, (b + 1) * block));
                if (nt > 1) {
                    pthread_mutex_lock(&mu); /* under the lock: a follower between its check and its wait */
                    __atomic_store_n(&done[i], (int)b + 1, __ATOMIC_RELEASE);
                    pthread_cond_broadcast(&ready);
                    pthread_mutex_unlock(&mu);
                } else {
                    done[i] = (int)b + 1;
                }
            }
    }
    pthread_cond_destroy(&ready);
    pthread_mutex_destroy(&mu);
    for (int b = 0; b < nb; b++) {
        float *o = s[b]->out[L - 1];
        ops->add(o, o, x[b], t * l->dim);
        y[b] = o;
    }
}

const float *encodec_lstm_run(encodec_lstm_state *s, const musae_ops *ops, const float *x, int64_t t) {
    const float *y;
    lstm_run_n(&s, 1, ops, &x, t, &y);
    return y;
}

void encodec_lstm_run_batch(encodec_lstm_state *const *s, int nb, const musae_ops *ops, const float *const *x,
                            int64_t t, const float **y) {
    lstm_run_n(s, nb, ops, x, t, y);
}
