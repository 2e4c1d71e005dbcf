/* EnCodec's encoder (model/encodec.h): the front stack's windows, the LSTM, the back stack and the residual
 * vector quantizer, one clip or several in lockstep. */
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "model/encodec.h"
#include "model/encodec_pool.h"
#include "model/encodec_stream.h"

/* ---- encoder ---------------------------------------------------------------------------------------------- */

struct encodec_encoder {
    const encodec *m;
    encodec_stream front, back;
    encodec_lstm_state lstm;
    int64_t chunk;
    float *frames, *emb;       /* device [2·chunk, lstm dim], [chunk, dim] */
    int64_t pending;           /* rows of frames waiting for the LSTM */
    float *resid, *dist_dev;   /* device [chunk, dim], [chunk, codebook_size] */
    float *resid_h, *dist_h;   /* host copies */
    int64_t *codes;            /* host [frames, n_q] while encoding, [n_q, frames] after finish */
    float *emb_keep;           /* host [frames, dim] (keep_embeddings) */
    int64_t n_frames, cap_frames;
    int keep, finished;
};

encodec_encoder *encodec_encoder_new(const encodec *m, int chunk_frames, int keep_embeddings) {
    encodec_encoder *e = musae_xcalloc(1, sizeof *e);
    e->m = m;
    e->chunk = chunk_frames > 0 ? chunk_frames : ENCODEC_DEFAULT_CHUNK_FRAMES;
    e->keep = keep_embeddings;
    encodec_stream_init(&e->front, m, &m->enc_front, e->chunk);
    encodec_stream_init(&e->back, m, &m->enc_back, e->chunk);
    encodec_lstm_init(&e->lstm, m, &m->enc_lstm, 2 * e->chunk);
    e->frames = encodec_pool_get(m->pool, (size_t)(2 * e->chunk * m->enc_lstm.dim) * sizeof(float));
    e->emb = encodec_pool_get(m->pool, (size_t)(e->chunk * m->dim) * sizeof(float));
    e->resid = encodec_pool_get(m->pool, (size_t)(e->chunk * m->dim) * sizeof(float));
    e->dist_dev = encodec_pool_get(m->pool, (size_t)(e->chunk * m->codebook_size) * sizeof(float));
    e->resid_h = musae_xmalloc((size_t)(e->chunk * m->dim) * sizeof(float));
    e->dist_h = musae_xmalloc((size_t)(e->chunk * m->codebook_size) * sizeof(float));
    return e;
}

/* Residual vector quantization of n embedding rows (HF EncodecResidualVectorQuantizer.encode): per
 * codebook, the nearest code by squared L2 (ties to the lower index, as torch's max), subtract, repeat.
 * ‖r‖² is the same for every code of a row, so only ‖E‖² − 2 r·E is compared. */
static void rvq_encode(encodec_encoder *e, int64_t n) {
    const encodec *m = e->m;
    const musae_ops *ops = m->ops;
    const int64_t S = m->codebook_size, D = m->dim;
    if (e->n_frames + n > e->cap_frames) {
        e->cap_frames = max64(2 * e->cap_frames, e->n_frames + n);
        e->codes = musae_xrealloc(e->codes, (size_t)(e->cap_frames * m->n_q) * sizeof(int64_t));
        if (e->keep) e->emb_keep = musae_xrealloc(e->emb_keep, (size_t)(e->cap_frames * D) * sizeof(float));
    }
    ops->download(e->resid_h, e->emb, (size_t)(n * D) * sizeof(float));
    if (e->keep) memcpy(e->emb_keep + e->n_frames * D, e->resid_h, (size_t)(n * D) * sizeof(float));
    for (int q = 0; q < m->n_q; q++) {
        const float *E = m->codebooks_host + (size_t)q * S * D, *sq = m->codebook_sq + (size_t)q * S;
        ops->upload(e->resid, e->resid_h, (size_t)(n * D) * sizeof(float));
        ops->gemm(0, 1, n, S, D, 1.0f, e->resid, D, m->codebooks + (size_t)q * S * D, D, 0.0f, e->dist_dev, S);
        ops->download(e->dist_h, e->dist_dev, (size_t)(n * S) * sizeof(float));
        for (int64_t f = 0; f < n; f++) {
            const float *dot = e->dist_h + f * S;
            int64_t best = 0;
            float bd = sq[0] - 2.0f * dot[0];
            for (int64_t c = 1; c < S; c++) {
                float d = sq[c] - 2.0f * dot[c];
                if (d < bd) bd = d, best = c;
            }
            e->codes[(e->n_frames + f) * m->n_q + q] = best;
            float *r = e->resid_h + f * D;
            for (int64_t j = 0; j < D; j++) r[j] -= E[best * D + j];
        }
    }
    e->n_frames += n;
}

/* The front's windows are collected until a chunk's worth is waiting (or the input ended) and the LSTM runs
 * over all of them at once: each LSTM call ends with the wavefront's follower alone for a block, so fewer,
 * longer calls leave the second thread idle less (10 s: two calls instead of three).
 *
 * n encoders of inputs pushed alike (the same lengths, the same pieces) run in lockstep: the windows and the
 * LSTM calls depend on the lengths alone, so every encoder pulls the same rows at the same time, and the
 * LSTM runs once for all of them (encodec_lstm_run_batch: each gets its own bits). Everything else runs per
 * encoder, in the order one encoder alone runs it. */
static void encoder_drain(encodec_encoder *const *es, int n) {
    encodec_encoder *e = es[0];
    const musae_ops *ops = e->m->ops;
    const int64_t dim = e->m->enc_lstm.dim;
    for (;;) {
        int64_t k = 0, ran = 0, any = 0;
        if (e->pending < e->chunk) /* room for a window of up to chunk rows */
            for (int b = 0; b < n; b++) {
                const int64_t kb = encodec_stream_pull(&es[b]->front, es[b]->frames + es[b]->pending * dim);
                MUSAE_ASSERT(b == 0 || kb == k, "encodec: encoders in lockstep pulled %lld and %lld rows", (long long)k,
                             (long long)kb);
                k = kb;
                es[b]->pending += kb;
            }
        const int front_done = encodec_stream_done(&e->front);
        if (e->pending >= e->chunk || (front_done && e->pending > 0)) {
            const float *y[ENCODEC_BATCH_MAX];
            if (n == 1) {
                y[0] = encodec_lstm_run(&e->lstm, ops, e->frames, e->pending);
            } else {
                encodec_lstm_state *st[ENCODEC_BATCH_MAX];
                const float *x[ENCODEC_BATCH_MAX];
                for (int b = 0; b < n; b++) st[b] = &es[b]->lstm, x[b] = es[b]->frames;
                encodec_lstm_run_batch(st, n, ops, x, e->pending, y);
            }
            for (int b = 0; b < n; b++) {
                encodec_stream_push(&es[b]->back, y[b], es[b]->pending, 0);
                es[b]->pending = 0;
            }
            ran = 1;
        } else if (front_done && e->back.total < 0) {
            for (int b = 0; b < n; b++) encodec_stream_end(&es[b]->back);
        }
        for (int b = 0; b < n; b++) {
            int64_t j;
            while ((j = encodec_stream_pull(&es[b]->back, es[b]->emb)) > 0) {
                rvq_encode(es[b], j);
                any = 1;
            }
        }
        if (k == 0 && !ran && !any) break;
    }
}

/* Pushes n samples of x[b] into encoder b (all the same n). */
static void encoders_push(encodec_encoder *const *es, int nb, const float *const *x, int64_t n) {
    /* pieces of about one window, so the input buffer never holds much more than a window */
    const int64_t piece = es[0]->chunk * es[0]->m->hop;
    for (int64_t off = 0; off < n; off += piece) {
        for (int b = 0; b < nb; b++) {
            MUSAE_ASSERT(!es[b]->finished, "encodec_encoder_push after finish");
            encodec_stream_push(&es[b]->front, x[b] + off, min64(piece, n - off), 1);
        }
        encoder_drain(es, nb);
    }
}

static void encoders_finish(encodec_encoder *const *es, int nb) {
    for (int b = 0; b < nb; b++) {
        MUSAE_ASSERT(!es[b]->finished, "encodec_encoder_finish twice");
        MUSAE_ASSERT(es[b]->front.in_first + es[b]->front.in_n > 0, "encodec: no samples to encode");
        encodec_stream_end(&es[b]->front);
    }
    encoder_drain(es, nb);
    for (int b = 0; b < nb; b++) {
        encodec_encoder *e = es[b];
        MUSAE_ASSERT(encodec_stream_done(&e->front) && encodec_stream_done(&e->back),
                     "encodec: encoder streams not drained");
        /* [frames, n_q] → [n_q, frames] */
        const int64_t F = e->n_frames, Q = e->m->n_q;
        int64_t *t = musae_xmalloc((size_t)(F * Q > 0 ? F * Q : 1) * sizeof(int64_t));
        for (int64_t f = 0; f < F; f++)
            for (int64_t q = 0; q < Q; q++) t[q * F + f] = e->codes[f * Q + q];
        free(e->codes);
        e->codes = t;
        e->finished = 1;
    }
}

void encodec_encoder_push(encodec_encoder *e, const float *x, int64_t n) { encoders_push(&e, 1, &x, n); }

void encodec_encoder_finish(encodec_encoder *e) { encoders_finish(&e, 1); }

int64_t encodec_encoder_frames(const encodec_encoder *e) { return e->n_frames; }
const int64_t *encodec_encoder_codes(const encodec_encoder *e) {
    MUSAE_ASSERT(e->finished, "encodec_encoder_codes before finish");
    return e->codes;
}
const float *encodec_encoder_embeddings(const encodec_encoder *e) { return e->emb_keep; }

void encodec_encoder_free(encodec_encoder *e) {
    if (!e) return;
    encodec_stream_free(&e->front);
    encodec_stream_free(&e->back);
    encodec_lstm_free(&e->lstm, e->m);
    const encodec *m = e->m;
    encodec_pool_put(m->pool, e->frames, (size_t)(2 * e->chunk * m->enc_lstm.dim) * sizeof(float));
    encodec_pool_put(m->pool, e->emb, (size_t)(e->chunk * m->dim) * sizeof(float));
    encodec_pool_put(m->pool, e->resid, (size_t)(e->chunk * m->dim) * sizeof(float));
    encodec_pool_put(m->pool, e->dist_dev, (size_t)(e->chunk * m->codebook_size) * sizeof(float));
    free(e->resid_h);
    free(e->dist_h);
    free(e->codes);
    free(e->emb_keep);
    free(e);
}

int64_t *encodec_encode(const encodec *m, const float *x, int64_t n, int64_t *frames) {
    encodec_encoder *e = encodec_encoder_new(m, 0, 0);
    encodec_encoder_push(e, x, n);
    encodec_encoder_finish(e);
    *frames = e->n_frames;
    int64_t *codes = e->codes;
    e->codes = NULL;
    encodec_encoder_free(e);
    return codes;
}

void encodec_encode_batch(const encodec *m, int nb, const float *const *x, const int64_t *n, int64_t **codes,
                          int64_t *frames, float **emb) {
    const int cap = m->ops->device == MUSAE_DEVICE_CPU ? ENCODEC_BATCH_MAX : 1;
    char *taken = musae_xcalloc((size_t)(nb > 0 ? nb : 1), 1);
    for (int i = 0; i < nb; i++) {
        if (taken[i]) continue;
        /* clip i and the next clips of its length, up to the cap */
        int idx[ENCODEC_BATCH_MAX], g = 0;
        for (int j = i; j < nb && g < cap; j++)
            if (!taken[j] && n[j] == n[i]) idx[g++] = j, taken[j] = 1;
        encodec_encoder *es[ENCODEC_BATCH_MAX] = {0};
        const float *xs[ENCODEC_BATCH_MAX];
        for (int b = 0; b < g; b++) {
            es[b] = encodec_encoder_new(m, 0, emb != NULL);
            xs[b] = x[idx[b]];
            /* the front stacks run one after another on this thread: one window's activations serve them all */
            es[b]->front.w = es[0]->front.w;
        }
        encoders_push(es, g, xs, n[i]);
        encoders_finish(es, g);
        for (int b = g - 1; b >= 0; b--) {
            encodec_encoder *e = es[b];
            codes[idx[b]] = e->codes;
            frames[idx[b]] = e->n_frames;
            e->codes = NULL;
            if (emb) emb[idx[b]] = e->emb_keep, e->emb_keep = NULL;
            encodec_encoder_free(e);
        }
    }
    free(taken);
}
