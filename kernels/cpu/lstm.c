/* One nn.LSTM layer (PyTorch gate order i, f, g, o), for one sequence (cpu_lstm) or several that share the
 * weights (cpu_lstm_batch).
 *
 * The input projection of all t steps is one OpenBLAS GEMM. The recurrence is the sequential part: each
 * step reads all of W_hh (16 MB for EnCodec's 1024-wide LSTM, which stays in the last-level cache through
 * a layer's steps) for one matrix-vector product and then the pointwise cell update. It runs on one
 * thread: a BLAS GEMV per step paid a thread-pool wake-up per step, and an OpenMP team with a barrier per
 * step collapsed (5-25x slower) whenever the machine had fewer free cores than threads, while one thread
 * streams W_hh at about 35 GB/s here (0.45 ms per step). That stream is the cost, so several independent
 * sequences (capture's clips) step together and share each load of W_hh: up to four hidden vectors per
 * pass over a row, at the same per-sequence arithmetic, so each sequence gets the bits it gets alone. Four
 * make the pass compute-bound rather than memory-bound (a multiply and an add per weight and sequence: no
 * FMA, which would change the bits): 0.28 ms per sequence-step at hidden 1024 against 0.66 alone, here. */
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/vec_math.h"

/* g[r] += W[r, :] · h for the rows r in [r0, r1) of one gate block; four rows share each load of h. */
ISA_BODY void gate_rows_body(const float *w, const float *h, float *g, int64_t r0, int64_t r1, int64_t H) {
    const int64_t Hv = H / 16 * 16;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const float *w0 = w + r * H, *w1 = w0 + H, *w2 = w1 + H, *w3 = w2 + H;
        f32x16 a0 = V16(0.0f), a1 = V16(0.0f), a2 = V16(0.0f), a3 = V16(0.0f);
        for (int64_t j = 0; j < Hv; j += 16) {
            f32x16 hv = v_load(h + j);
            a0 += v_load(w0 + j) * hv;
            a1 += v_load(w1 + j) * hv;
            a2 += v_load(w2 + j) * hv;
            a3 += v_load(w3 + j) * hv;
        }
        float s[4] = {0, 0, 0, 0};
        for (int l = 0; l < 16; l++) s[0] += a0[l], s[1] += a1[l], s[2] += a2[l], s[3] += a3[l];
        for (int64_t j = Hv; j < H; j++) s[0] += w0[j] * h[j], s[1] += w1[j] * h[j], s[2] += w2[j] * h[j], s[3] += w3[j] * h[j];
        g[r] += s[0], g[r + 1] += s[1], g[r + 2] += s[2], g[r + 3] += s[3];
    }
    for (; r < r1; r++) {
        const float *w0 = w + r * H;
        f32x16 a0 = V16(0.0f);
        for (int64_t j = 0; j < Hv; j += 16) a0 += v_load(w0 + j) * v_load(h + j);
        float s = 0;
        for (int l = 0; l < 16; l++) s += a0[l];
        for (int64_t j = Hv; j < H; j++) s += w0[j] * h[j];
        g[r] += s;
    }
}
MUSAE_ISA_DISPATCH(gate_rows, (const float *w, const float *h, float *g, int64_t r0, int64_t r1, int64_t H),
                   (w, h, g, r0, r1, H))

/* gate_rows for nc (1..4, a constant after inlining) hidden vectors h[b] into their own gates g[b]: each row
 * of W is loaded once for all of them. Every (row, vector) pair sums exactly as gate_rows_body does: one
 * 16-lane partial sum over the columns in order, the lanes added 0..15 into a float that starts at 0, then
 * the tail columns, then added onto g. Rows grouped by four there and one at a time here make no
 * difference to a row's sum, so a sequence's gates are bitwise those of its own gate_rows call. */
ISA_BODY void gate_rows_n(const float *w, const float *const *h, float *const *g, int64_t r0, int64_t r1,
                          int64_t H, int nc) {
    const int64_t Hv = H / 16 * 16;
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = w + r * H;
        f32x16 a[4] = {V16(0.0f), V16(0.0f), V16(0.0f), V16(0.0f)};
        for (int64_t j = 0; j < Hv; j += 16) {
            const f32x16 wv = v_load(wr + j);
            for (int b = 0; b < nc; b++) a[b] += wv * v_load(h[b] + j);
        }
        for (int b = 0; b < nc; b++) {
            float s = 0;
            for (int l = 0; l < 16; l++) s += a[b][l];
            for (int64_t j = Hv; j < H; j++) s += wr[j] * h[b][j];
            g[b][r] += s;
        }
    }
}
ISA_BODY void gate_rows_batch_body(const float *w, const float *const *h, float *const *g, int64_t r0, int64_t r1,
                                   int64_t H, int nc) {
    switch (nc) { /* constant counts, so the accumulators stay in registers */
    case 4: gate_rows_n(w, h, g, r0, r1, H, 4); break;
    case 3: gate_rows_n(w, h, g, r0, r1, H, 3); break;
    case 2: gate_rows_n(w, h, g, r0, r1, H, 2); break;
    default: gate_rows_n(w, h, g, r0, r1, H, 1);
    }
}
MUSAE_ISA_DISPATCH(gate_rows_batch,
                   (const float *w, const float *const *h, float *const *g, int64_t r0, int64_t r1, int64_t H, int nc),
                   (w, h, g, r0, r1, H, nc))

/* The cell update of hidden units [j0, j1): c = σ(f)·c + σ(i)·tanh(g), out = σ(o)·tanh(c). */
ISA_BODY void cell_update_body(const float *g, float *c, float *out, int64_t j0, int64_t j1, int64_t H) {
    for (int64_t j = j0; j < j1; j += 16) {
        int64_t n = j1 - j < 16 ? j1 - j : 16;
        float gi[16] = {0}, gf[16] = {0}, gg[16] = {0}, go[16] = {0}, cc[16] = {0}, oo[16];
        memcpy(gi, g + j, (size_t)n * sizeof(float));
        memcpy(gf, g + H + j, (size_t)n * sizeof(float));
        memcpy(gg, g + 2 * H + j, (size_t)n * sizeof(float));
        memcpy(go, g + 3 * H + j, (size_t)n * sizeof(float));
        memcpy(cc, c + j, (size_t)n * sizeof(float));
        f32x16 cv = v_sigmoid(v_load(gf)) * v_load(cc) + v_sigmoid(v_load(gi)) * v_tanh(v_load(gg));
        v_store(cc, cv);
        v_store(oo, v_sigmoid(v_load(go)) * v_tanh(cv));
        memcpy(c + j, cc, (size_t)n * sizeof(float));
        memcpy(out + j, oo, (size_t)n * sizeof(float));
    }
}
MUSAE_ISA_DISPATCH(cell_update, (const float *g, float *c, float *out, int64_t j0, int64_t j1, int64_t H),
                   (g, c, out, j0, j1, H))

static void check_shape(int64_t t, int64_t d_in, int64_t hidden) {
    MUSAE_ASSERT(t >= 0 && d_in > 0 && hidden > 0 && 4 * hidden <= INT32_MAX, "lstm: t %lld d_in %lld hidden %lld",
                 (long long)t, (long long)d_in, (long long)hidden);
}

/* work [t, 4·hidden] = x W_ih^T + b_ih + b_hh: the gates' input part, before the recurrence adds W_hh h. */
static void input_gates(const float *x, int64_t t, int64_t d_in, int64_t G, const float *w_ih, const float *b_ih,
                        const float *b_hh, float *work) {
    cpu_gemm(0, 1, t, G, d_in, 1.0f, x, d_in, w_ih, d_in, 0.0f, work, G);
    for (int64_t s = 0; s < t; s++)
        for (int64_t j = 0; j < G; j++) work[s * G + j] += b_ih[j] + b_hh[j];
}

void cpu_lstm(float *out, const float *x, int64_t t, int64_t d_in, int64_t hidden, const float *w_ih,
              const float *w_hh, const float *b_ih, const float *b_hh, float *h, float *c, float *work) {
    check_shape(t, d_in, hidden);
    MUSAE_ASSERT(out != x, "lstm: out must not alias x");
    const int64_t H = hidden, G = 4 * hidden;
    if (t == 0) return;
    input_gates(x, t, d_in, G, w_ih, b_ih, b_hh, work);
    for (int64_t s = 0; s < t; s++) {
        float *g = work + s * G;
        const float *hp = s ? out + (s - 1) * H : h;
        gate_rows(w_hh, hp, g, 0, G, H);
        cell_update(g, c, out + s * H, 0, H, H);
    }
    memcpy(h, out + (t - 1) * H, (size_t)H * sizeof(float));
}

/* Rows of W_hh per pass (256 KB at hidden 1024, in the L2 cache): past four sequences, the next group of
 * four reads the block from there rather than from memory. */
enum { BATCH_ROWS = 64 };

void cpu_lstm_batch(int nb, float *const *out, const float *const *x, int64_t t, int64_t d_in, int64_t hidden,
                    const float *w_ih, const float *w_hh, const float *b_ih, const float *b_hh, float *const *h,
                    float *const *c, float *const *work) {
    check_shape(t, d_in, hidden);
    MUSAE_ASSERT(nb >= 1, "lstm_batch: %d sequences", nb);
    for (int b = 0; b < nb; b++) MUSAE_ASSERT(out[b] != x[b], "lstm_batch: out[%d] must not alias x[%d]", b, b);
    const int64_t H = hidden, G = 4 * hidden;
    if (t == 0) return;
    for (int b = 0; b < nb; b++) input_gates(x[b], t, d_in, G, w_ih, b_ih, b_hh, work[b]);
    for (int64_t s = 0; s < t; s++) {
        for (int64_t r0 = 0; r0 < G; r0 += BATCH_ROWS) {
            const int64_t r1 = r0 + BATCH_ROWS < G ? r0 + BATCH_ROWS : G;
            for (int b0 = 0; b0 < nb; b0 += 4) {
                const int nc = nb - b0 < 4 ? nb - b0 : 4;
                const float *hp[4];
                float *g[4];
                for (int i = 0; i < nc; i++) {
                    hp[i] = s ? out[b0 + i] + (s - 1) * H : h[b0 + i];
                    g[i] = work[b0 + i] + s * G;
                }
                gate_rows_batch(w_hh, hp, g, r0, r1, H, nc);
            }
        }
        for (int b = 0; b < nb; b++) cell_update(work[b] + s * G, c[b], out[b] + s * H, 0, H, H);
    }
    for (int b = 0; b < nb; b++) memcpy(h[b], out[b] + (t - 1) * H, (size_t)H * sizeof(float));
}
