/* The op-test driver (test-backend-ops style): every compute op of kernels/ops.h, run through an op table
 * with device buffers (alloc/upload/download, so any backend runs the same cases), against plain loops in
 * double written here from the ops.h definitions. Shapes are odd on purpose (tails, strides, leading
 * dimensions above the minimum, one-row and one-query paths, blocks of queries past 64). A guard of
 * sentinel bytes after every output must come back intact.
 *
 * Tolerance rule: NMSE = Σ(y − ref)² / Σ ref² against the double reference, by tier. fp32 rounds at
 * u = 2⁻²⁴ (NMSE ~1e-15 per rounding): exact ops (relu, add, mul, embedding, add_rows) must be bitwise equal
 * to a float reference with the same roundings; transcendental elementwise ops ≤ 1e-12 (libm within an
 * ulp or two); reductions (gemm, norms) ≤ 1e-11; attention, convolutions ≤ 1e-10; the LSTM recurrence
 * ≤ 1e-9. A GPU table gets the looser ggml tiers (1e-7 elementwise, 5e-4 matmul/attention, 2e-3
 * recurrences) and is compared with the CPU table op by op as well.
 *
 * Same-bits part (test_ops_cpu_same_bits.c), after the CPU table's run:
 * BLAS threads: main starts OpenBLAS's pool at 4 threads, as in a process without OPENBLAS_NUM_THREADS=1; the
 * CPU ops must leave it single-threaded, and two host threads calling them at once (capture runs EnCodec
 * beside the decoder) must get the bits of a lone call.
 * Threads: the CPU table runs every case again with 1 and 3 OpenMP threads, and every output must have
 * the bits of the run with the default team: a result never depends on how the work was split.
 * ISA levels: the CPU table runs every case again at each lower x86-64 level of kernels/cpu/isa.h (MUSAE_ISA),
 * and every output must have the same bits as at the CPU's own level: musae's vectorized kernels promise
 * results that do not depend on the vector width (OpenBLAS's are unaffected by the switch).
 *
 * Kernel part (test_ops_cpu_bits.c): the CPU kernels' bit-for-bit promises against their definitions (the FMA
 * GEMM, weights packed once, the vectorised expf) at every ISA level.
 *
 * GPU part: when musae_ops_cuda() gives a table (a CUDA build with a usable device), every case also runs
 * on it; otherwise the driver says why it skipped that part. */
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/philox.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cuda/cuda_device.h"
#include "kernels/ops.h"
#include "test.h"
#include "test_ops.h"


enum { GUARD = 64 };
#define GUARD_BYTE 0xA5

typedef enum { T_EXACT, T_ELEM, T_REDUCE, T_ATTN, T_RECUR, T_COUNT } tier;
static const char *k_tier_name[T_COUNT] = {"exact", "elementwise", "reduction", "attention/conv", "recurrence"};
static const double k_tol_cpu[T_COUNT] = {0, 1e-12, 1e-11, 1e-10, 1e-9};
static const double k_tol_gpu[T_COUNT] = {1e-7, 1e-7, 5e-4, 5e-4, 2e-3};

static const musae_ops *g_ops;
static const double *g_tol;
static uint64_t g_draw;

/* Every output's bits, in case order, while a CPU run is recorded (record_cpu: the threads and ISA parts). */
static output_bits *g_rec;
static int g_n_rec;

static uint64_t fnv1a(const void *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

/* uniform in [-scale, scale) from Philox (seed 2024, stream 0, counter = draw / 4); rnd: test_ops.h */
static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++, g_draw++) {
        musae_u32x4 w = musae_philox(2024, 0, g_draw / 4);
        x[i] = scale * (2.0f * musae_u32_to_unit(w.v[g_draw % 4]) - 1.0f);
    }
}
float *rnd(int64_t n, float scale) {
    float *x = musae_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    fill(x, n, scale);
    return x;
}

/* ---- device buffers through the table ------------------------------------------------------------------------ */

static void *dev_in(const void *host, size_t bytes) {
    void *d = g_ops->alloc(bytes ? bytes : 1);
    if (bytes) g_ops->upload(d, host, bytes);
    return d;
}

/* An output of n floats (initial contents `init`, or sentinel bytes when NULL) followed by the guard. */
static float *dev_out(const float *init, int64_t n) {
    const size_t bytes = (size_t)(n + GUARD) * sizeof(float);
    unsigned char *h = musae_xmalloc(bytes);
    memset(h, GUARD_BYTE, bytes);
    if (init) memcpy(h, init, (size_t)n * sizeof(float));
    float *d = g_ops->alloc(bytes);
    g_ops->upload(d, h, bytes);
    free(h);
    return d;
}

/* Downloads n floats into host and checks the guard; frees the device buffer. */
static int fetch(float *host, float *dev, int64_t n) {
    const size_t bytes = (size_t)(n + GUARD) * sizeof(float);
    unsigned char *h = musae_xmalloc(bytes);
    g_ops->sync();
    g_ops->download(h, dev, bytes);
    memcpy(host, h, (size_t)n * sizeof(float));
    int ok = 1;
    for (size_t i = (size_t)n * sizeof(float); i < bytes; i++) ok &= h[i] == GUARD_BYTE;
    free(h);
    g_ops->free(dev);
    return ok;
}

/* NMSE of y against the double reference, non-finite mismatches included; records the verdict. */
static void verdict(const char *what, const float *y, const double *ref, int64_t n, tier t, int guard_ok) {
    if (g_rec) {
        MUSAE_ASSERT(g_n_rec < MAX_OUTPUTS, "more than %d outputs", MAX_OUTPUTS);
        snprintf(g_rec[g_n_rec].what, sizeof g_rec[0].what, "%s", what);
        g_rec[g_n_rec++].hash = fnv1a(y, (size_t)n * sizeof(float));
    }
    double num = 0, den = 0, mx = 0;
    int nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(y[i]) != isfinite(ref[i])) nonfinite++;
        if (!isfinite(ref[i])) continue;
        const double d = (double)y[i] - ref[i];
        num += d * d, den += ref[i] * ref[i], mx = fmax(mx, fabs(d));
    }
    const double nmse = den > 0 ? num / den : num;
    int ok = guard_ok && !nonfinite;
    if (t == T_EXACT && g_tol == k_tol_cpu) {
        for (int64_t i = 0; i < n; i++) ok &= y[i] == (float)ref[i] || (isnan(y[i]) && isnan(ref[i]));
    } else {
        ok &= nmse <= g_tol[t];
    }
    CHECK(ok, "[%s] %s: nmse %.3g (tier %s, tolerance %.0e), max abs %.3g, non-finite mismatches %d, guard %s",
          g_ops->name, what, nmse, k_tier_name[t], g_tol[t], mx, nonfinite, guard_ok ? "intact" : "OVERWRITTEN");
    if (ok && getenv("MUSAE_OPS_VERBOSE"))
        printf("[%s] %-58s nmse %.2e (%5.1f%% of %s tolerance)\n", g_ops->name, what, nmse,
               g_tol[t] > 0 ? 100 * nmse / g_tol[t] : 0.0, k_tier_name[t]);
}

static void check_out(const char *what, float *dev, const double *ref, int64_t n, tier t) {
    float *y = musae_xmalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    int g = fetch(y, dev, n);
    verdict(what, y, ref, n, t, g);
    free(y);
}

static double *dalloc(int64_t n) { return musae_xcalloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* ---- gemm / linear ------------------------------------------------------------------------------------------- */

static void case_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t pad, float alpha, float beta) {
    const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
    float *a = rnd(na, 1), *b = rnd(nb, 1), *c = rnd(nc, 1);
    double *ref = dalloc(nc);
    for (int64_t i = 0; i < nc; i++) ref[i] = c[i]; /* the padding columns must stay as they were */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            ref[i * ldc + j] = alpha * s + (beta != 0 ? beta * (double)c[i * ldc + j] : 0);
        }
    float *da = dev_in(a, (size_t)na * 4), *db = dev_in(b, (size_t)nb * 4), *dc = dev_out(c, nc);
    g_ops->gemm(ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
    char what[128];
    snprintf(what, sizeof what, "gemm %c%c %lldx%lldx%lld ld+%lld a%.2g b%.2g", ta ? 'T' : 'N', tb ? 'T' : 'N',
             (long long)m, (long long)n, (long long)k, (long long)pad, alpha, beta);
    check_out(what, dc, ref, nc, T_REDUCE);
    g_ops->free(da), g_ops->free(db);
    free(a), free(b), free(c), free(ref);
}

static void case_linear(int64_t m, int64_t n, int64_t k, int bias, float beta) {
    float *x = rnd(m * k, 1), *w = rnd(n * k, 0.5f), *bv = rnd(n, 0.5f), *y = rnd(m * n, 1);
    double *ref = dalloc(m * n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)x[i * k + p] * w[j * k + p];
            ref[i * n + j] = s + (bias ? bv[j] : 0) + (beta != 0 ? beta * (double)y[i * n + j] : 0);
        }
    float *dx = dev_in(x, (size_t)(m * k) * 4), *dw = dev_in(w, (size_t)(n * k) * 4), *db = dev_in(bv, (size_t)n * 4);
    float *dy = dev_out(y, m * n);
    g_ops->linear(dy, dx, dw, bias ? db : NULL, m, n, k, beta);
    char what[128];
    snprintf(what, sizeof what, "linear %lldx%lldx%lld bias %d beta %.0f", (long long)m, (long long)n, (long long)k,
             bias, beta);
    check_out(what, dy, ref, m * n, T_REDUCE);
    g_ops->free(dx), g_ops->free(dw), g_ops->free(db);
    free(x), free(w), free(bv), free(y), free(ref);
}

/* y = gelu(x·wᵀ) against double loops; where the table has no fused form, nothing to check */
static void case_linear_gelu(int64_t m, int64_t n, int64_t k) {
    if (!g_ops->linear_gelu) return;
    float *x = rnd(m * k, 1), *w = rnd(n * k, 0.5f), *y = rnd(m * n, 1);
    double *ref = dalloc(m * n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += (double)x[i * k + p] * w[j * k + p];
            ref[i * n + j] = 0.5 * s * (1.0 + erf(s / sqrt(2.0)));
        }
    float *dx = dev_in(x, (size_t)(m * k) * 4), *dw = dev_in(w, (size_t)(n * k) * 4), *dy = dev_out(y, m * n);
    g_ops->linear_gelu(dy, dx, dw, m, n, k);
    char what[128];
    snprintf(what, sizeof what, "linear_gelu %lldx%lldx%lld", (long long)m, (long long)n, (long long)k);
    check_out(what, dy, ref, m * n, T_REDUCE);
    g_ops->free(dx), g_ops->free(dw);
    free(x), free(w), free(y), free(ref);
}

/* ---- norms ----------------------------------------------------------------------------------------------------- */

static void case_norm(int rms, int64_t rows, int64_t dim, int alias, int bias) {
    float *x = rnd(rows * dim, 3), *w = rnd(dim, 1), *b = rnd(dim, 0.5f);
    for (int64_t i = 0; i < rows * dim; i++) x[i] += 2.0f; /* a mean far from 0 tests the variance */
    const float eps = rms ? 1e-6f : 1e-5f;
    double *ref = dalloc(rows * dim);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        double mean = 0, var = 0;
        if (!rms) {
            for (int64_t i = 0; i < dim; i++) mean += xr[i];
            mean /= (double)dim;
        }
        for (int64_t i = 0; i < dim; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= (double)dim;
        for (int64_t i = 0; i < dim; i++)
            ref[r * dim + i] = (xr[i] - mean) / sqrt(var + eps) * w[i] + (!rms && bias ? b[i] : 0);
    }
    float *dw = dev_in(w, (size_t)dim * 4), *db = dev_in(b, (size_t)dim * 4), *dx = dev_out(x, rows * dim);
    float *dy = alias ? dx : dev_out(NULL, rows * dim);
    if (rms) g_ops->rmsnorm(dy, dx, dw, rows, dim, eps);
    else g_ops->layernorm(dy, dx, dw, bias ? db : NULL, rows, dim, eps);
    char what[128];
    snprintf(what, sizeof what, "%s %lldx%lld%s%s", rms ? "rmsnorm" : "layernorm", (long long)rows, (long long)dim,
             alias ? " in place" : "", !rms && !bias ? " no bias" : "");
    check_out(what, dy, ref, rows * dim, T_REDUCE);
    if (!alias) g_ops->free(dx);
    g_ops->free(dw), g_ops->free(db);
    free(x), free(w), free(b), free(ref);
}

/* ---- elementwise --------------------------------------------------------------------------------------------- */

typedef enum { E_GELU, E_GELU_TANH, E_RELU, E_ELU, E_TANH, E_ADD, E_MUL } elem_op;

static void case_elem(elem_op op, int64_t n, int alias, int offset) {
    static const char *names[] = {"gelu", "gelu_tanh", "relu", "elu", "tanh", "add", "mul"};
    float *a = rnd(n + 1, 6), *b = rnd(n + 1, 3);
    double *ref = dalloc(n);
    for (int64_t i = 0; i < n; i++) {
        const double x = a[offset + i];
        switch (op) {
        case E_GELU: ref[i] = 0.5 * x * (1 + erf(x / sqrt(2.0))); break;
        case E_GELU_TANH: ref[i] = 0.5 * x * (1 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))); break;
        case E_RELU: ref[i] = (float)x > 0 ? x : 0; break;
        case E_ELU: ref[i] = x > 0 ? x : expm1(x); break;
        case E_TANH: ref[i] = tanh(x); break;
        case E_ADD: ref[i] = a[offset + i] + b[offset + i]; break; /* one float rounding: exact tier */
        case E_MUL: ref[i] = a[offset + i] * b[offset + i]; break;
        }
    }
    /* offset 1 moves every pointer off 16-byte alignment (vector / scalar paths of a GPU kernel) */
    float *da = dev_out(a, n + 1), *db = dev_in(b, (size_t)(n + 1) * 4);
    float *out = alias ? da : dev_out(NULL, n + 1);
    float *o = out + offset;
    const float *x = da + offset, *y = db + offset;
    switch (op) {
    case E_GELU: g_ops->gelu(o, x, n); break;
    case E_GELU_TANH: g_ops->gelu_tanh(o, x, n); break;
    case E_RELU: g_ops->relu(o, x, n); break;
    case E_ELU: g_ops->elu(o, x, n); break;
    case E_TANH: g_ops->tanh(o, x, n); break;
    case E_ADD: g_ops->add(o, x, y, n); break;
    case E_MUL: g_ops->mul(o, x, y, n); break;
    }
    /* the output window is [offset, offset + n): check it and the guard after n + 1 */
    float *host = musae_xmalloc((size_t)(n + 1) * 4);
    const int g = fetch(host, out, n + 1);
    char what[128];
    snprintf(what, sizeof what, "%s n %lld%s%s", names[op], (long long)n, alias ? " in place" : "",
             offset ? " unaligned" : "");
    verdict(what, host + offset, ref, n, op >= E_ADD || op == E_RELU ? T_EXACT : T_ELEM, g);
    if (!alias) g_ops->free(da);
    g_ops->free(db);
    free(host), free(a), free(b), free(ref);
}

static void case_embedding(int64_t rows, int64_t dim, int64_t n, int acc) {
    float *table = rnd(rows * dim, 1), *init = rnd(n * dim, 1);
    int64_t *ids = musae_xmalloc((size_t)n * sizeof(int64_t));
    for (int64_t r = 0; r < n; r++) ids[r] = (r * 7 + 3) % rows;
    ids[0] = rows - 1;
    double *ref = dalloc(n * dim);
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < dim; i++)
            ref[r * dim + i] = acc ? (double)(init[r * dim + i] + table[ids[r] * dim + i]) : table[ids[r] * dim + i];
    float *dt = dev_in(table, (size_t)(rows * dim) * 4), *dout = dev_out(init, n * dim);
    int64_t *di = dev_in(ids, (size_t)n * sizeof(int64_t));
    g_ops->embedding(dout, dt, rows, dim, di, n, acc);
    char what[128];
    snprintf(what, sizeof what, "embedding %lld rows x %lld, %lld ids, accumulate %d", (long long)rows, (long long)dim,
             (long long)n, acc);
    check_out(what, dout, ref, n * dim, T_EXACT);
    g_ops->free(dt), g_ops->free(di);
    free(table), free(init), free(ids), free(ref);
}

static void case_add_rows(int64_t rows, int64_t dim, float alpha) {
    float *x = rnd(rows * dim, 2), *v = rnd(dim, 1);
    double *ref = dalloc(rows * dim);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < dim; i++) {
            const float d = alpha * v[i]; /* rounded before the add, as the op promises */
            ref[r * dim + i] = (float)(x[r * dim + i] + d);
        }
    float *dx = dev_out(x, rows * dim), *dv = dev_in(v, (size_t)dim * 4);
    g_ops->add_rows(dx, dv, alpha, rows, dim);
    char what[128];
    snprintf(what, sizeof what, "add_rows %lldx%lld alpha %g", (long long)rows, (long long)dim, alpha);
    check_out(what, dx, ref, rows * dim, T_EXACT);
    g_ops->free(dv);
    free(x), free(v), free(ref);
}

/* Rows of widely different norms, one all-zero row (F.normalize's eps: stays zero, no NaN), odd widths. */
static void case_l2_normalize(int64_t rows, int64_t dim, int alias) {
    float *x = rnd(rows * dim, 3);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < dim; i++) x[r * dim + i] *= (float)ldexp(1.0, (int)(r % 7) * 5 - 15);
    for (int64_t i = 0; i < dim; i++) x[(rows / 2) * dim + i] = 0.0f;
    double *ref = dalloc(rows * dim);
    for (int64_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t i = 0; i < dim; i++) ss += (double)x[r * dim + i] * x[r * dim + i];
        for (int64_t i = 0; i < dim; i++) ref[r * dim + i] = x[r * dim + i] / fmax(sqrt(ss), 1e-12);
    }
    float *dx = dev_out(x, rows * dim), *out = alias ? dx : dev_out(NULL, rows * dim);
    g_ops->l2_normalize(out, dx, rows, dim);
    char what[128];
    snprintf(what, sizeof what, "l2_normalize %lldx%lld%s", (long long)rows, (long long)dim, alias ? " in place" : "");
    check_out(what, out, ref, rows * dim, T_REDUCE);
    if (!alias) g_ops->free(dx);
    free(x), free(ref);
}

/* ---- attention --------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t B, H, TQ, TK, D, row_pad;
    int causal, with_bias, with_mask;
    int64_t q_pos0;
    int64_t lead_hidden; /* with_mask: the first keys of every item are masked too (rows that see only those
                            are uniform over all tk) */
} attn_case;

static void case_attention(attn_case c) {
    const int64_t W = c.H * c.D + c.row_pad; /* row stride: heads contiguous, then padding */
    const int64_t nq = c.B * c.TQ * W, nk = c.B * c.TK * W, bias_tk = c.TK + 3;
    float *q = rnd(nq, 1), *k = rnd(nk, 1), *v = rnd(nk, 1), *bias = rnd(c.H * c.TQ * bias_tk, 2);
    float *mask = musae_xmalloc((size_t)(c.B * c.TK) * sizeof(float));
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t j = 0; j < c.TK; j++) mask[b * c.TK + j] = (float)(((j + b) % 3 != 1 || j == 0) && j >= c.lead_hidden);
    if (c.with_mask && c.B > 1)
        for (int64_t j = 0; j < c.TK; j++) mask[(c.B - 1) * c.TK + j] = 0; /* a fully masked item: uniform */
    musae_attn_params p = {.batch = c.B, .heads = c.H, .tq = c.TQ, .tk = c.TK, .dh = c.D,
                           .q_sb = c.TQ * W, .q_st = W, .k_sb = c.TK * W, .k_st = W, .v_sb = c.TK * W, .v_st = W,
                           .o_sb = c.TQ * W, .o_st = W, .scale = 1.0f / sqrtf((float)c.D), .causal = c.causal,
                           .q_pos0 = c.q_pos0, .bias_tk = bias_tk};
    /* the reference: HF's eager attention with additive finfo.min masks, in double */
    const int64_t no = c.B * c.TQ * W;
    float *init = rnd(no, 1);
    double *ref = dalloc(no), *s = dalloc(c.TK);
    for (int64_t i = 0; i < no; i++) ref[i] = init[i]; /* the padding columns are not written */
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t h = 0; h < c.H; h++)
            for (int64_t i = 0; i < c.TQ; i++) {
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < c.TK; j++) {
                    double dot = 0;
                    for (int64_t d = 0; d < c.D; d++) dot += (double)q[b * p.q_sb + i * W + h * c.D + d] * k[b * p.k_sb + j * W + h * c.D + d];
                    double sc = dot * p.scale;
                    if (c.with_bias) sc += bias[(h * c.TQ + i) * bias_tk + j];
                    const int masked = (c.causal && j > i + c.q_pos0) || (c.with_mask && mask[b * c.TK + j] == 0);
                    /* finfo.min added to a finite score stays finfo.min in fp32 */
                    s[j] = masked ? -FLT_MAX : sc;
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < c.TK; j++) sum += s[j] = exp(s[j] - mx);
                for (int64_t d = 0; d < c.D; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < c.TK; j++) o += s[j] / sum * v[b * p.v_sb + j * W + h * c.D + d];
                    ref[b * p.o_sb + i * W + h * c.D + d] = o;
                }
            }
    float *dq = dev_in(q, (size_t)nq * 4), *dk = dev_in(k, (size_t)nk * 4), *dv = dev_in(v, (size_t)nk * 4);
    float *dbias = dev_in(bias, (size_t)(c.H * c.TQ * bias_tk) * 4), *dmask = dev_in(mask, (size_t)(c.B * c.TK) * 4);
    float *dout = dev_out(init, no);
    p.bias = c.with_bias ? dbias : NULL;
    p.key_mask = c.with_mask ? dmask : NULL;
    g_ops->attention(dout, dq, dk, dv, &p);
    char what[160];
    snprintf(what, sizeof what, "attention b%lld h%lld tq%lld tk%lld d%lld pad%lld%s%s%s pos0 %lld hid %lld",
             (long long)c.B, (long long)c.H, (long long)c.TQ, (long long)c.TK, (long long)c.D, (long long)c.row_pad,
             c.causal ? " causal" : "", c.with_bias ? " bias" : "", c.with_mask ? " mask" : "", (long long)c.q_pos0,
             (long long)c.lead_hidden);
    check_out(what, dout, ref, no, T_ATTN);
    g_ops->free(dq), g_ops->free(dk), g_ops->free(dv), g_ops->free(dbias), g_ops->free(dmask);
    free(q), free(k), free(v), free(bias), free(mask), free(init), free(ref), free(s);
}

/* The CPU kernel's promise (kernels/cpu/attention.c): a row's bits depend only on its query, the keys and values
 * and the masks it sees. Against the bits of one call over the whole batch: each item alone (batch 1, its own
 * key_mask), and the causal rows from row s0 on as a call of their own (q_pos0 = s0), which moves every row
 * into another block and group of the kernel. Thread counts and ISA levels: the driver's parts below run this
 * again. CPU table only (the GPU kernels make no such promise here). */
static void attention_invariance(int64_t B, int64_t H, int64_t T, int64_t D, int with_bias, int64_t lead_hidden) {
    if (g_ops != musae_ops_cpu()) return;
    const int64_t W = H * D + 1, bias_tk = T + 2;
    float *q = rnd(B * T * W, 1), *k = rnd(B * T * W, 1), *v = rnd(B * T * W, 1), *bias = rnd(H * T * bias_tk, 2);
    float *mask = musae_xmalloc((size_t)(B * T) * sizeof(float));
    for (int64_t i = 0; i < B * T; i++) mask[i] = (float)(i % T >= lead_hidden * (i / T) && i % 5 != 3);
    float *all = musae_xcalloc((size_t)(B * T * W), sizeof(float)), *one = musae_xcalloc((size_t)(B * T * W), sizeof(float));
    musae_attn_params p = {.batch = B, .heads = H, .tq = T, .tk = T, .dh = D, .q_sb = T * W, .q_st = W, .k_sb = T * W,
                           .k_st = W, .v_sb = T * W, .v_st = W, .o_sb = T * W, .o_st = W,
                           .scale = 1.0f / sqrtf((float)D), .causal = 1, .bias = with_bias ? bias : NULL,
                           .bias_tk = bias_tk, .key_mask = mask};
    cpu_attention(all, q, k, v, &p);
    int items_ok = 1, rows_ok = 1;
    for (int64_t b = 0; b < B; b++) {
        musae_attn_params pb = p;
        pb.batch = 1, pb.key_mask = mask + b * T;
        memset(one, 0, (size_t)(T * W) * sizeof(float));
        cpu_attention(one, q + b * T * W, k + b * T * W, v + b * T * W, &pb);
        items_ok &= !memcmp(one, all + b * T * W, (size_t)(T * W) * sizeof(float));
    }
    const int64_t starts[] = {1, 37, T - 2};
    for (int s = 0; s < 3 && !with_bias; s++) { /* (the bias is indexed by the call's rows) */
        const int64_t s0 = starts[s];
        musae_attn_params ps = p;
        ps.tq = T - s0, ps.q_pos0 = s0;
        memset(one, 0, (size_t)(B * T * W) * sizeof(float));
        cpu_attention(one, q + s0 * W, k, v, &ps);
        for (int64_t b = 0; b < B; b++)
            rows_ok &= !memcmp(one + b * T * W, all + (b * T + s0) * W, (size_t)((T - s0) * W) * sizeof(float));
    }
    CHECK(items_ok, "attention b%lld h%lld t%lld d%lld%s: an item alone differs from its rows in the batch",
          (long long)B, (long long)H, (long long)T, (long long)D, with_bias ? " bias" : "");
    CHECK(rows_ok, "attention b%lld h%lld t%lld d%lld: rows called from another first row differ", (long long)B,
          (long long)H, (long long)T, (long long)D);
    free(q), free(k), free(v), free(bias), free(mask), free(all), free(one);
}

/* ---- EnCodec ops --------------------------------------------------------------------------------------------- */

static void case_conv1d(int64_t t_in, int64_t ci, int64_t co, int k, int stride, int dil, int pl, int pr, int reflect,
                        int acc) {
    const int64_t keff = (int64_t)(k - 1) * dil + 1, t_out = (t_in + pl + pr - keff) / stride + 1;
    float *x = rnd(t_in * ci, 1), *w = rnd(co * k * ci, 0.5f), *b = rnd(co, 0.2f), *init = rnd(t_out * co, 1);
    musae_conv1d_params p = {.t_in = t_in, .t_out = t_out, .c_in = ci, .c_out = co, .k = k, .stride = stride,
                             .dilation = dil, .pad_left = pl, .pad_right = pr, .reflect = reflect, .accumulate = acc};
    double *ref = dalloc(t_out * co);
    for (int64_t t = 0; t < t_out; t++)
        for (int64_t o = 0; o < co; o++) {
            double s = (acc ? init[t * co + o] : 0) + b[o];
            for (int j = 0; j < k; j++) {
                int64_t r = t * stride + (int64_t)j * dil - pl;
                if (r < 0 || r >= t_in) {
                    if (!reflect) continue;
                    r = r < 0 ? -r : 2 * (t_in - 1) - r;
                }
                for (int64_t i = 0; i < ci; i++) s += (double)w[(o * k + j) * ci + i] * x[r * ci + i];
            }
            ref[t * co + o] = s;
        }
    float *dx = dev_in(x, (size_t)(t_in * ci) * 4), *dw = dev_in(w, (size_t)(co * k * ci) * 4), *db = dev_in(b, (size_t)co * 4);
    float *dout = dev_out(init, t_out * co);
    g_ops->conv1d(dout, dx, dw, db, &p);
    char what[160];
    snprintf(what, sizeof what, "conv1d t%lld ci%lld co%lld k%d s%d d%d pad %d/%d %s%s", (long long)t_in, (long long)ci,
             (long long)co, k, stride, dil, pl, pr, reflect ? "reflect" : "zeros", acc ? " accumulate" : "");
    check_out(what, dout, ref, t_out * co, T_ATTN);
    g_ops->free(dx), g_ops->free(dw), g_ops->free(db);
    free(x), free(w), free(b), free(init), free(ref);
}

static void case_convt1d(int64_t t_in, int64_t ci, int64_t co, int k, int stride, int crop_left, int64_t t_out) {
    const int J = k / stride;
    float *x = rnd(t_in * ci, 1), *W = rnd(ci * co * k, 0.5f), *b = rnd(co, 0.2f);
    float *wp = musae_xmalloc((size_t)(ci * co * k) * sizeof(float)); /* the op's polyphase layout */
    for (int r = 0; r < stride; r++)
        for (int64_t o = 0; o < co; o++)
            for (int m = 0; m < J; m++)
                for (int64_t i = 0; i < ci; i++) wp[((r * co + o) * J + m) * ci + i] = W[(i * co + o) * k + r + (J - 1 - m) * stride];
    const int64_t full = (t_in - 1) * stride + k;
    double *f = dalloc(full * co), *ref = dalloc(t_out * co);
    for (int64_t q = 0; q < t_in; q++)
        for (int64_t i = 0; i < ci; i++)
            for (int64_t o = 0; o < co; o++)
                for (int j = 0; j < k; j++) f[(q * stride + j) * co + o] += (double)x[q * ci + i] * W[(i * co + o) * k + j];
    for (int64_t t = 0; t < t_out; t++)
        for (int64_t o = 0; o < co; o++) ref[t * co + o] = f[(t + crop_left) * co + o] + b[o];
    musae_convt1d_params p = {.t_in = t_in, .t_out = t_out, .c_in = ci, .c_out = co, .k = k, .stride = stride,
                              .crop_left = crop_left};
    float *dx = dev_in(x, (size_t)(t_in * ci) * 4), *dw = dev_in(wp, (size_t)(ci * co * k) * 4), *db = dev_in(b, (size_t)co * 4);
    float *dout = dev_out(NULL, t_out * co);
    g_ops->conv_transpose1d(dout, dx, dw, db, &p);
    char what[160];
    snprintf(what, sizeof what, "conv_transpose1d t%lld ci%lld co%lld k%d s%d crop %d out %lld", (long long)t_in,
             (long long)ci, (long long)co, k, stride, crop_left, (long long)t_out);
    check_out(what, dout, ref, t_out * co, T_ATTN);
    g_ops->free(dx), g_ops->free(dw), g_ops->free(db);
    free(x), free(W), free(wp), free(b), free(f), free(ref);
}

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

/* Two calls of t1 and t2 steps carrying h and c: the split must not matter. */
static void case_lstm(int64_t t1, int64_t t2, int64_t din, int64_t hid) {
    const int64_t G = 4 * hid, T = t1 + t2;
    float *x = rnd(T * din, 1), *wih = rnd(G * din, 0.6f), *whh = rnd(G * hid, 0.6f), *bih = rnd(G, 0.3f),
          *bhh = rnd(G, 0.3f), *h0 = rnd(hid, 0.5f), *c0 = rnd(hid, 0.5f);
    double *h = dalloc(hid), *c = dalloc(hid), *g = dalloc(G), *ref = dalloc(T * hid + 2 * hid);
    for (int64_t i = 0; i < hid; i++) h[i] = h0[i], c[i] = c0[i];
    for (int64_t t = 0; t < T; t++) {
        for (int64_t r = 0; r < G; r++) {
            double s = (double)bih[r] + bhh[r];
            for (int64_t i = 0; i < din; i++) s += (double)wih[r * din + i] * x[t * din + i];
            for (int64_t i = 0; i < hid; i++) s += (double)whh[r * hid + i] * h[i];
            g[r] = s;
        }
        for (int64_t i = 0; i < hid; i++) {
            c[i] = sigm(g[hid + i]) * c[i] + sigm(g[i]) * tanh(g[2 * hid + i]);
            h[i] = sigm(g[3 * hid + i]) * tanh(c[i]);
            ref[t * hid + i] = h[i];
        }
    }
    for (int64_t i = 0; i < hid; i++) ref[T * hid + i] = h[i], ref[T * hid + hid + i] = c[i];
    float *dx = dev_in(x, (size_t)(T * din) * 4), *dwih = dev_in(wih, (size_t)(G * din) * 4);
    float *dwhh = dev_in(whh, (size_t)(G * hid) * 4), *dbih = dev_in(bih, (size_t)G * 4), *dbhh = dev_in(bhh, (size_t)G * 4);
    float *dh = dev_out(h0, hid), *dc = dev_out(c0, hid), *dout = dev_out(NULL, T * hid);
    float *work = g_ops->alloc((size_t)(T * G) * 4);
    g_ops->lstm(dout, dx, t1, din, hid, dwih, dwhh, dbih, dbhh, dh, dc, work);
    g_ops->lstm(dout + t1 * hid, dx + t1 * din, t2, din, hid, dwih, dwhh, dbih, dbhh, dh, dc, work);
    char what[128];
    snprintf(what, sizeof what, "lstm %lld+%lld steps d_in %lld hidden %lld: out", (long long)t1, (long long)t2,
             (long long)din, (long long)hid);
    check_out(what, dout, ref, T * hid, T_RECUR);
    snprintf(what, sizeof what, "lstm %lld+%lld steps: final h", (long long)t1, (long long)t2);
    check_out(what, dh, ref + T * hid, hid, T_RECUR);
    snprintf(what, sizeof what, "lstm %lld+%lld steps: final c", (long long)t1, (long long)t2);
    check_out(what, dc, ref + T * hid + hid, hid, T_RECUR);
    g_ops->free(dx), g_ops->free(dwih), g_ops->free(dwhh), g_ops->free(dbih), g_ops->free(dbhh), g_ops->free(work);
    free(x), free(wih), free(whh), free(bih), free(bhh), free(h0), free(c0), free(h), free(c), free(g), free(ref);
}

/* ---- fused residual + norm, bf16 weights ------------------------------------------------------------------ */

static void case_add_layernorm(int64_t rows, int64_t dim) {
    float *x = rnd(rows * dim, 3), *res = rnd(rows * dim, 2), *w = rnd(dim, 1), *b = rnd(dim, 0.5f);
    double *rx = dalloc(rows * dim), *ry = dalloc(rows * dim);
    for (int64_t r = 0; r < rows; r++) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < dim; i++) mean += rx[r * dim + i] = (float)(x[r * dim + i] + res[r * dim + i]);
        mean /= (double)dim;
        for (int64_t i = 0; i < dim; i++) var += (rx[r * dim + i] - mean) * (rx[r * dim + i] - mean);
        var /= (double)dim;
        for (int64_t i = 0; i < dim; i++) ry[r * dim + i] = (rx[r * dim + i] - mean) / sqrt(var + 1e-5) * w[i] + b[i];
    }
    float *dx = dev_out(x, rows * dim), *dy = dev_out(NULL, rows * dim), *dres = dev_in(res, (size_t)(rows * dim) * 4);
    float *dw = dev_in(w, (size_t)dim * 4), *db = dev_in(b, (size_t)dim * 4);
    g_ops->add_layernorm(dx, dres, dy, dw, db, rows, dim, 1e-5f);
    char what[128];
    snprintf(what, sizeof what, "add_layernorm %lldx%lld: x += res", (long long)rows, (long long)dim);
    check_out(what, dx, rx, rows * dim, T_EXACT);
    snprintf(what, sizeof what, "add_layernorm %lldx%lld: out", (long long)rows, (long long)dim);
    check_out(what, dy, ry, rows * dim, T_REDUCE);
    g_ops->free(dres), g_ops->free(dw), g_ops->free(db);
    free(x), free(res), free(w), free(b), free(rx), free(ry);
}

static void case_linear_bf16w(int64_t m, int64_t n, int64_t k, int bias, float beta) {
    float *x = rnd(m * k, 1), *wf = rnd(n * k, 0.5f), *bv = rnd(n, 0.5f), *y = rnd(m * n, 1);
    uint16_t *w = musae_xmalloc((size_t)(n * k) * sizeof(uint16_t));
    for (int64_t i = 0; i < n * k; i++) w[i] = musae_f32_to_bf16(wf[i]);
    double *ref = dalloc(m * n);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++) acc += (double)x[i * k + p] * musae_bf16_to_f32(w[j * k + p]);
            ref[i * n + j] = acc + (bias ? bv[j] : 0) + (beta != 0 ? beta * (double)y[i * n + j] : 0);
        }
    float *dx = dev_in(x, (size_t)(m * k) * 4), *db = dev_in(bv, (size_t)n * 4), *dy = dev_out(y, m * n);
    uint16_t *dw = dev_in(w, (size_t)(n * k) * sizeof(uint16_t));
    g_ops->linear_bf16w(dy, dx, dw, bias ? db : NULL, m, n, k, beta);
    char what[128];
    snprintf(what, sizeof what, "linear_bf16w %lldx%lldx%lld bias %d beta %.0f", (long long)m, (long long)n,
             (long long)k, bias, beta);
    check_out(what, dy, ref, m * n, T_REDUCE);
    g_ops->free(dx), g_ops->free(db), g_ops->free(dw);
    free(x), free(wf), free(bv), free(y), free(w), free(ref);
}

/* bit-exact against musae_f32_to_bf16 (round to nearest even, NaN stays NaN), specials included */
static void case_f32_to_bf16(int64_t n) {
    float *x = rnd(n, 100);
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, 3.4e38f, 1.00390625f, 1.01171875f};
    for (size_t i = 0; i < sizeof special / sizeof special[0] && (int64_t)i < n; i++) x[i] = special[i];
    const size_t bytes = (size_t)n * sizeof(uint16_t) + GUARD;
    unsigned char *h = musae_xmalloc(bytes);
    memset(h, GUARD_BYTE, bytes);
    float *dx = dev_in(x, (size_t)n * 4);
    uint16_t *dout = g_ops->alloc(bytes);
    g_ops->upload(dout, h, bytes);
    g_ops->f32_to_bf16(dout, dx, n);
    g_ops->sync();
    g_ops->download(h, dout, bytes);
    int exact = 1, guard = 1;
    for (int64_t i = 0; i < n; i++) {
        uint16_t got;
        memcpy(&got, h + 2 * i, 2);
        exact &= got == musae_f32_to_bf16(x[i]);
    }
    for (size_t i = (size_t)n * 2; i < bytes; i++) guard &= h[i] == GUARD_BYTE;
    CHECK(exact && guard, "[%s] f32_to_bf16 n %lld: bit-exact %d, guard %s", g_ops->name, (long long)n, exact,
          guard ? "intact" : "OVERWRITTEN");
    g_ops->free(dx), g_ops->free(dout);
    free(x), free(h);
}

/* ---- the driver -------------------------------------------------------------------------------------------- */

/* Both tables run the same cases on the same inputs (the draws restart), so a GPU failure points at one op
 * and one shape. */
static void run_all(const musae_ops *ops, const double *tol) {
    g_ops = ops;
    g_tol = tol;
    g_draw = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            case_gemm(ta, tb, 37, 29, 53, 0, 1.0f, 0.0f);
            case_gemm(ta, tb, 37, 29, 53, 5, 0.7f, 0.3f);
        }
    case_gemm(0, 1, 1, 301, 77, 3, 1.0f, 1.0f);
    case_gemm(0, 1, 3, 130, 129, 0, -0.5f, 0.0f);
    case_gemm(1, 0, 65, 1, 33, 2, 2.0f, 1.0f);
    case_gemm(0, 0, 130, 70, 1, 0, 1.0f, 1.0f);
    /* cpu_gemm's dispatch: skinny (m <= 8, NT) serial and threaded; tiles (with partial tiles) in every layout */
    case_gemm(0, 1, 8, 130, 77, 4, 1.5f, 0.5f);
    case_gemm(0, 1, 5, 1000, 300, 0, 1.0f, 0.0f);
    case_gemm(0, 1, 67, 300, 250, 2, 1.0f, 0.0f);
    case_gemm(1, 0, 150, 200, 150, 0, 0.5f, 1.0f);
    case_gemm(0, 0, 300, 70, 200, 1, 1.0f, 0.0f);
    case_gemm(1, 1, 300, 60, 250, 0, 1.0f, 0.25f);
    const int64_t ms[] = {1, 2, 5, 67};
    for (int i = 0; i < 4; i++) {
        case_linear(ms[i], 97, 45, i % 2, 0.0f);
        case_linear(ms[i], 33, 160, (i + 1) % 2, 1.0f);
    }
    case_linear(2, 1031, 257, 0, 1.0f);
    case_linear(300, 70, 600, 1, 1.0f), case_linear(13, 1031, 33, 0, 0.0f); /* the FMA kernels' blocks and edges */
    case_linear_gelu(3, 97, 45), case_linear_gelu(67, 130, 600); /* unfused (<= 8 rows) and fused */
    case_norm(0, 7, 33, 0, 1), case_norm(0, 5, 1024, 1, 1), case_norm(0, 3, 17, 0, 0);
    case_norm(1, 7, 33, 0, 0), case_norm(1, 4, 768, 1, 0);
    for (elem_op op = E_GELU; op <= E_MUL; op++) {
        case_elem(op, 1001, 0, 0);
        case_elem(op, 37, 1, 1);
        case_elem(op, 70001, 0, 1);
    }
    case_embedding(2049, 37, 29, 0), case_embedding(2049, 37, 29, 1), case_embedding(5, 1, 3, 1);
    case_add_rows(5, 37, -0.3f), case_add_rows(1, 1024, 1.0f), case_add_rows(300, 300, 2.5f);
    case_l2_normalize(9, 20, 0), case_l2_normalize(3, 1025, 1), case_l2_normalize(1, 1, 0);
    attn_case ac[] = {
        {.B = 2, .H = 3, .TQ = 5, .TK = 5, .D = 8, .causal = 1},
        {.B = 1, .H = 2, .TQ = 70, .TK = 70, .D = 16, .row_pad = 3, .causal = 1},           /* blocks of 64 + tail */
        {.B = 3, .H = 2, .TQ = 1, .TK = 23, .D = 8, .causal = 1, .q_pos0 = 22},            /* a decoding step */
        {.B = 2, .H = 2, .TQ = 6, .TK = 19, .D = 8, .row_pad = 1, .causal = 1, .q_pos0 = 13},
        {.B = 2, .H = 4, .TQ = 9, .TK = 11, .D = 8, .with_mask = 1},                       /* cross-attention */
        {.B = 3, .H = 2, .TQ = 1, .TK = 11, .D = 8, .with_mask = 1},
        {.B = 2, .H = 3, .TQ = 13, .TK = 13, .D = 8, .with_bias = 1, .with_mask = 1},      /* T5 */
        {.B = 2, .H = 2, .TQ = 130, .TK = 130, .D = 8, .causal = 1, .with_mask = 1},       /* causal + mask, uniform rows */
        {.B = 1, .H = 16, .TQ = 200, .TK = 200, .D = 64, .causal = 1},                     /* threads */
        /* the packed kernel (kernels/cpu/attention.c): head dims 32/64/80 and odd ones, a group of 4 rows and
         * a 16-key tile cut anywhere, bias with causal, rows whose visible keys are all masked */
        {.B = 1, .H = 2, .TQ = 67, .TK = 67, .D = 32, .causal = 1, .with_bias = 1},
        {.B = 2, .H = 3, .TQ = 33, .TK = 45, .D = 80, .row_pad = 5, .causal = 1, .with_mask = 1, .q_pos0 = 12,
         .lead_hidden = 17},
        {.B = 2, .H = 2, .TQ = 131, .TK = 131, .D = 64, .causal = 1, .with_bias = 1, .with_mask = 1, .lead_hidden = 70},
        {.B = 3, .H = 1, .TQ = 2, .TK = 17, .D = 20, .with_mask = 1, .lead_hidden = 3},
        {.B = 2, .H = 2, .TQ = 5, .TK = 40, .D = 64, .row_pad = 2, .causal = 1, .q_pos0 = 35},
        {.B = 1, .H = 3, .TQ = 3, .TK = 12, .D = 7, .with_bias = 1},                       /* cross, T5 text */
    };
    for (size_t i = 0; i < sizeof ac / sizeof ac[0]; i++) case_attention(ac[i]);
    attention_invariance(3, 2, 150, 64, 0, 40), attention_invariance(2, 3, 70, 80, 1, 9);
    case_conv1d(50, 3, 5, 7, 1, 1, 3, 3, 1, 0), case_conv1d(50, 3, 5, 7, 1, 1, 3, 3, 0, 1);
    case_conv1d(41, 8, 4, 3, 2, 3, 4, 2, 1, 0), case_conv1d(9, 1, 6, 7, 1, 1, 3, 3, 1, 0);
    case_conv1d(33, 16, 8, 1, 1, 1, 0, 0, 0, 1), case_conv1d(20, 5, 7, 4, 4, 1, 0, 0, 0, 0);
    case_convt1d(13, 6, 4, 16, 8, 4, 13 * 8), case_convt1d(11, 5, 3, 10, 5, 3, 11 * 5), case_convt1d(7, 4, 4, 4, 4, 0, 28);
    case_lstm(5, 4, 7, 6), case_lstm(1, 12, 16, 16), case_lstm(2, 3, 3, 5);
    case_add_layernorm(7, 33), case_add_layernorm(300, 1024);
    for (int i = 0; i < 4; i++) case_linear_bf16w(ms[i], 97, 45, i % 2, (float)(i / 2));
    case_linear_bf16w(67, 300, 250, 1, 1.0f);
    case_f32_to_bf16(9), case_f32_to_bf16(1001);
}

int record_cpu(output_bits *rec) {
    g_rec = rec, g_n_rec = 0;
    run_all(musae_ops_cpu(), k_tol_cpu);
    g_rec = NULL;
    return g_n_rec;
}

int main(int argc, char **argv) {
    (void)argc, (void)argv;
    openblas_set_num_threads(4);
    run_all(musae_ops_cpu(), k_tol_cpu);
    printf("cpu table: %d checks\n", g_test_pass + g_test_fail);
    int pass = 0, fail = 0; /* the CPU table's runs with other teams and levels (test_ops_cpu_same_bits.c) */
    test_ops_cpu_same_bits(&pass, &fail);
    g_test_pass += pass, g_test_fail += fail;
    test_ops_cpu_bits(&pass, &fail); /* the kernels' own bit-for-bit checks (test_ops_cpu_bits.c) */
    g_test_pass += pass, g_test_fail += fail;
    const musae_ops *gpu = musae_ops_cuda();
    if (gpu) {
        run_all(gpu, k_tol_gpu);
        printf("%s table: the same cases against the same references\n", gpu->name);
    } else {
        char why[256] = "";
        musae_cuda_device_count(why, sizeof why);
        printf("GPU part skipped: %s\n", why[0] ? why : "no CUDA op table");
    }
    TEST_END();
}
