/* Conv1d over time-major activations through OpenBLAS, without an im2col copy of the whole input.
 *
 * With rows = time steps, the taps j0 .. j0+g-1 of output row t read the input rows t·s - pad_left + j0 ..
 * + g - 1, which are g·c_in contiguous floats; the next output row starts s rows later. A strided view
 * (lda = s·c_in) is a legal BLAS matrix only while its row length does not exceed lda, so the taps are taken
 * in groups of g <= stride (dilation 1; one tap per group otherwise) and each group is one GEMM
 * accumulating into out. Interior rows (every tap inside x) read x directly; the few rows whose taps reach
 * into the padding read a small padded copy of the edge instead. Layers with a tiny c_in·k (the first
 * conv, c_in 1) would make rank-1 GEMMs, so they gather explicit im2col tiles instead, shared by the team.
 *
 * The interior runs tile by tile (conv_tiles): each output tile gets its bias, then every tap group's
 * sgemm, while it is still in cache. Run as one cpu_gemm per tap group, each group streamed the whole
 * output through memory again and the bias fill ran on one thread (EnCodec's first layers: 128000 x 64
 * outputs per window, 33 MB). The tiles are cpu_gemm's own (cpu_gemm_grid), summed in the same order, so
 * every element has the bits the per-group cpu_gemm calls gave. The ELU that follows (p->elu) runs on the
 * tile there too, instead of one more pass over the whole output. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

/* Row i of the padded input (i counts from the first padding row) as a row of x, or -1 for a zero row. */
static int64_t padded_row(const musae_conv1d_params *p, int64_t i) {
    int64_t r = i - p->pad_left;
    if (r >= 0 && r < p->t_in) return r;
    if (!p->reflect) return -1;
    return r < 0 ? -r : 2 * (p->t_in - 1) - r;
}

/* out rows [t0, t1) from `src`, a matrix whose row 0 is padded row `src_row0` (rows contiguous, c_in wide). */
static void conv_rows(float *out, const float *src, int64_t src_row0, const float *w, const musae_conv1d_params *p,
                      int64_t t0, int64_t t1) {
    const int64_t ci = p->c_in, co = p->c_out, k = p->k, s = p->stride, d = p->dilation;
    const int64_t g = d == 1 ? (s < k ? s : k) : 1; /* taps per GEMM */
    for (int64_t j0 = 0; j0 < k; j0 += g) {
        int64_t nj = k - j0 < g ? k - j0 : g;
        const float *a = src + (t0 * s + j0 * d - src_row0) * ci;
        cpu_gemm(0, 1, t1 - t0, co, nj * ci, 1.0f, a, s * ci, w + j0 * ci, k * ci, 1.0f, out + t0 * co, co);
    }
}

/* out rows [t0, t1) := bias (or zero), or += bias when accumulating. */
static void fill_rows(float *out, const float *bias, const musae_conv1d_params *p, int64_t t0, int64_t t1, int64_t j0,
                      int64_t nj) {
    const int64_t co = p->c_out;
    for (int64_t t = t0; t < t1; t++) {
        float *o = out + t * co + j0;
        if (!p->accumulate) {
            if (bias) memcpy(o, bias + j0, (size_t)nj * sizeof(float));
            else memset(o, 0, (size_t)nj * sizeof(float));
        } else if (bias) {
            for (int64_t j = 0; j < nj; j++) o[j] += bias[j0 + j];
        }
    }
}

/* out rows [t0, t1), columns [j0, j0 + nj): elu in place on this thread. */
static void elu_rows(float *out, const musae_conv1d_params *p, int64_t t0, int64_t t1, int64_t j0, int64_t nj) {
    const int64_t co = p->c_out;
    if (nj == co) {
        cpu_elu_serial(out + t0 * co, out + t0 * co, (t1 - t0) * co);
        return;
    }
    for (int64_t t = t0; t < t1; t++) cpu_elu_serial(out + t * co + j0, out + t * co + j0, nj);
}

/* conv_rows with the bias, over cpu_gemm's tiles of the rows, all tap groups per tile; 0 (nothing done) when
 * cpu_gemm would not tile some group's product, which then keeps the per-group calls. */
static int conv_tiles(float *out, const float *src, int64_t src_row0, const float *w, const float *bias,
                      const musae_conv1d_params *p, int64_t t0, int64_t t1) {
    const int64_t ci = p->c_in, co = p->c_out, k = p->k, s = p->stride, d = p->dilation;
    const int64_t g = d == 1 ? (s < k ? s : k) : 1, last = (k - 1) / g * g; /* taps per GEMM; last group's first */
    const int64_t m = t1 - t0;
    int64_t tr, tc;
    /* the grid depends on the depth only through the threshold, which the shallowest group meets last */
    if (!cpu_gemm_grid(0, 1, m, co, (k - last) * ci, &tr, &tc)) return 0;
    const int64_t tiles_n = (co + tc - 1) / tc, tiles = (m + tr - 1) / tr * tiles_n;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < tiles; t++) {
        const int64_t i0 = t / tiles_n * tr, j0 = t % tiles_n * tc;
        const int64_t mi = m - i0 < tr ? m - i0 : tr, nj = co - j0 < tc ? co - j0 : tc;
        fill_rows(out, bias, p, t0 + i0, t0 + i0 + mi, j0, nj);
        for (int64_t q = 0; q < k; q += g) {
            int64_t taps = k - q < g ? k - q : g;
            const float *a = src + ((t0 + i0) * s + q * d - src_row0) * ci;
            cpu_sgemm_tile(0, 1, mi, nj, taps * ci, 1.0f, a, s * ci, w + j0 * k * ci + q * ci, k * ci, 1.0f,
                           out + (t0 + i0) * co + j0, co);
        }
        if (p->elu) elu_rows(out, p, t0 + i0, t0 + i0 + mi, j0, nj);
    }
    return 1;
}

/* Rows [t0, t1) through a padded copy of the input rows they need (edges, and the tiny-c_in path). */
static void conv_rows_padded(float *out, const float *x, const float *w, const musae_conv1d_params *p, int64_t t0,
                             int64_t t1, float *patch) {
    const int64_t ci = p->c_in, s = p->stride, keff = (int64_t)(p->k - 1) * p->dilation + 1;
    const int64_t r0 = t0 * s, r1 = (t1 - 1) * s + keff; /* padded rows used */
    for (int64_t i = r0; i < r1; i++) {
        int64_t r = padded_row(p, i);
        if (r < 0) memset(patch + (i - r0) * ci, 0, (size_t)ci * sizeof(float));
        else memcpy(patch + (i - r0) * ci, x + r * ci, (size_t)ci * sizeof(float));
    }
    conv_rows(out, patch, r0, w, p, t0, t1);
}

/* Tiny c_in·k: explicit im2col tiles [rows, k·c_in], one GEMM each. */
static void conv_im2col(float *out, const float *x, const float *w, const float *bias, const musae_conv1d_params *p) {
    const int64_t ci = p->c_in, co = p->c_out, k = p->k, kc = k * ci, tile = 4096;
    const int64_t tiles = (p->t_out + tile - 1) / tile;
#pragma omp parallel if (tiles > 1)
    {
    float *col = musae_xmalloc((size_t)(tile * kc) * sizeof(float));
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < tiles; i++) {
        int64_t t0 = i * tile, t1 = t0 + tile < p->t_out ? t0 + tile : p->t_out;
        fill_rows(out, bias, p, t0, t1, 0, co);
        for (int64_t t = t0; t < t1; t++)
            for (int64_t j = 0; j < k; j++) {
                int64_t r = padded_row(p, t * p->stride + j * p->dilation);
                float *dst = col + (t - t0) * kc + j * ci;
                if (r < 0) memset(dst, 0, (size_t)ci * sizeof(float));
                else memcpy(dst, x + r * ci, (size_t)ci * sizeof(float));
            }
        /* inside the team cpu_gemm runs on this thread alone, over the tiles it always cuts */
        cpu_gemm(0, 1, t1 - t0, co, kc, 1.0f, col, kc, w, kc, 1.0f, out + t0 * co, co);
        if (p->elu) elu_rows(out, p, t0, t1, 0, co);
    }
    free(col);
    }
}

void cpu_conv1d(float *out, const float *x, const float *w, const float *bias, const musae_conv1d_params *p) {
    const int64_t ci = p->c_in, co = p->c_out, s = p->stride;
    MUSAE_ASSERT(p->t_in > 0 && ci > 0 && co > 0 && p->k > 0 && s > 0 && p->dilation > 0 && p->pad_left >= 0 &&
                     p->pad_right >= 0 && p->t_out >= 0,
                 "conv1d: bad parameters t_in %lld c_in %lld c_out %lld k %d stride %d dilation %d pad %d/%d",
                 (long long)p->t_in, (long long)ci, (long long)co, p->k, p->stride, p->dilation, p->pad_left,
                 p->pad_right);
    const int64_t keff = (int64_t)(p->k - 1) * p->dilation + 1, tp = p->t_in + p->pad_left + p->pad_right;
    MUSAE_ASSERT(tp >= keff && p->t_out <= (tp - keff) / s + 1,
                 "conv1d: %lld output rows need more than the %lld padded input rows (k_eff %lld, stride %lld)",
                 (long long)p->t_out, (long long)tp, (long long)keff, (long long)s);
    MUSAE_ASSERT(!p->reflect || (p->pad_left < p->t_in && p->pad_right < p->t_in),
                 "conv1d: reflect padding %d/%d needs more than %lld input rows", p->pad_left, p->pad_right,
                 (long long)p->t_in);
    if (p->t_out == 0) return;

    if (ci * p->k <= 32) {
        conv_im2col(out, x, w, bias, p);
        return;
    }
    /* interior: t·s - pad_left >= 0 and t·s - pad_left + keff - 1 <= t_in - 1 */
    int64_t lo = (p->pad_left + s - 1) / s;
    int64_t hi = p->t_in - keff + p->pad_left >= 0 ? (p->t_in - keff + p->pad_left) / s + 1 : 0;
    if (hi > p->t_out) hi = p->t_out;
    if (lo > hi) lo = hi = p->t_out < lo ? p->t_out : lo; /* no interior row: all rows go through the patch */
    /* x row 0 is padded row pad_left */
    if (hi > lo && !conv_tiles(out, x, p->pad_left, w, bias, p, lo, hi)) {
        fill_rows(out, bias, p, lo, hi, 0, co);
        conv_rows(out, x, p->pad_left, w, p, lo, hi);
        if (p->elu) cpu_elu(out + lo * co, out + lo * co, (hi - lo) * co);
    }

    int64_t edge_rows = lo > p->t_out - hi ? lo : p->t_out - hi;
    if (lo == 0 && hi == p->t_out) return;
    fill_rows(out, bias, p, 0, lo, 0, co);
    fill_rows(out, bias, p, hi, p->t_out, 0, co);
    float *patch = musae_xmalloc((size_t)(((edge_rows - 1) * s + keff) * ci) * sizeof(float));
    if (lo > 0) conv_rows_padded(out, x, w, p, 0, lo, patch);
    if (hi < p->t_out) conv_rows_padded(out, x, w, p, hi, p->t_out, patch);
    free(patch);
    if (p->elu) {
        elu_rows(out, p, 0, lo, 0, co);
        elu_rows(out, p, hi, p->t_out, 0, co);
    }
}
