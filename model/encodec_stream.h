/* EnCodec's building blocks for its encoder and decoder pipelines (internal to model/encodec*.c): a finite
 * stack's windowed stream and the LSTM with its residual.
 *
 * A stream runs one finite stack (model/encodec.h: encodec_stack) over input pushed in pieces: each pull
 * computes the next output rows the input so far determines (at most chunk) from a window aligned to the
 * stack's total stride that reaches far enough for every kept row to see what it sees in one pass, so the
 * rows equal the one-pass rows. The LSTM runs rows pushed through it with its state carried. */
#ifndef MUSAE_ENCODEC_STREAM_H
#define MUSAE_ENCODEC_STREAM_H

#include <stdint.h>

#include "model/encodec.h"

#define ENCODEC_DEFAULT_CHUNK_FRAMES 200

static inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Scratch for running a stack: three device buffers of `cap` floats each. */
typedef struct {
    float *buf[3];
    int64_t cap;
} encodec_scratch;

typedef struct {
    const encodec *m;
    const encodec_stack *s;
    float *in;                     /* device [in_cap, c_in]: input rows [in_first, in_first + in_n) */
    int64_t in_first, in_n, in_cap;
    int64_t total;                 /* input rows in all; -1 while more may come */
    int64_t next_out;              /* first output row not produced yet */
    int64_t chunk;                 /* output rows per window at most */
    int64_t min_rows;              /* stack_min_rows */
    encodec_scratch own;           /* the window's activations (a pull's result is copied out of them) */
    encodec_scratch *w;            /* &own, or another stream's when streams take turns (one thread) */
} encodec_stream;

/* Output rows of a stack over L input rows. */
int64_t encodec_stack_len(const encodec_stack *s, int64_t L);

void encodec_stream_init(encodec_stream *st, const encodec *m, const encodec_stack *s, int64_t chunk_out);
void encodec_stream_free(encodec_stream *st);
/* Appends n rows (host or device memory). */
void encodec_stream_push(encodec_stream *st, const float *x, int64_t n, int from_host);
/* No more input: the next pulls reach the true end. */
void encodec_stream_end(encodec_stream *st);
/* The input ended and every output row was pulled. */
int encodec_stream_done(const encodec_stream *st);
/* Computes the next output rows the buffered input determines (at most chunk) into out (device,
 * [rows, c_out]); returns the count, 0 when nothing new can be computed yet. */
int64_t encodec_stream_pull(encodec_stream *st, float *out);

/* ---- LSTM with residual (EncodecLSTM: y = lstm(x) + x, zero initial state) ------------------------------------ */

typedef struct {
    const encodec_lstm *l;
    float *h[ENCODEC_MAX_LSTM], *c[ENCODEC_MAX_LSTM];    /* device [dim] state per layer */
    float *out[ENCODEC_MAX_LSTM], *work[ENCODEC_MAX_LSTM]; /* device [chunk, dim], [block, 4·dim] per layer */
    int64_t chunk, block;                                 /* block: steps per ops->lstm call */
} encodec_lstm_state;

void encodec_lstm_init(encodec_lstm_state *s, const encodec *m, const encodec_lstm *l, int64_t chunk);
void encodec_lstm_free(encodec_lstm_state *s, const encodec *m);
/* x [t, dim] (device) → the rows' output, valid until the next call. */
const float *encodec_lstm_run(encodec_lstm_state *s, const musae_ops *ops, const float *x, int64_t t);
/* The same for nb independent sequences of one LSTM, t rows each, on the CPU table: y[b] gets what
 * encodec_lstm_run(s[b], ops, x[b], t) returns, bit for bit, while the recurrences share each pass over
 * W_hh (kernels/cpu/lstm.c cpu_lstm_batch). */
void encodec_lstm_run_batch(encodec_lstm_state *const *s, int nb, const musae_ops *ops, const float *const *x,
                            int64_t t, const float **y);

#endif /* MUSAE_ENCODEC_STREAM_H */
