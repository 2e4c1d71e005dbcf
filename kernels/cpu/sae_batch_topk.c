/* Batch-top-k selection: the `total` largest positive pre-activations of the whole batch.
 *
 * Positive floats order like their bit patterns as unsigned integers, so the threshold is found by a
 * two-level radix select (high 16 bits, then low 16 bits inside the winning bucket) with per-thread
 * histograms summed in a fixed order. Entries above the threshold are all taken; entries equal to it are
 * taken in row-major order until the count is exactly `total`. */
#include <float.h>
#include <omp.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "kernels/sae_ops.h"

enum { BINS = 1 << 16 };

/* Histogram of the high (level 0) or low (level 1, only entries whose high half is `hi`) 16 bits. */
static void histogram(const float *pre, int64_t n, int level, uint32_t hi, int64_t *hist) {
    const int nt = omp_get_max_threads();
    int64_t *part = musae_xcalloc((size_t)nt * BINS, sizeof(int64_t));
#pragma omp parallel
    {
        int64_t *h = part + (size_t)omp_get_thread_num() * BINS;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; i++) {
            if (!(pre[i] > 0.0f)) continue;
            uint32_t b = musae_f32_bits(pre[i]);
            if (level == 0) h[b >> 16]++;
            else if ((b >> 16) == hi) h[b & 0xffffu]++;
        }
    }
    memset(hist, 0, sizeof(int64_t) * BINS);
    for (int t = 0; t < nt; t++)
        for (int b = 0; b < BINS; b++) hist[b] += part[(size_t)t * BINS + b];
    free(part);
}

/* The bin holding the want-th largest entry (counting from the top), and how many lie strictly above it. */
static uint32_t pick_bin(const int64_t *hist, int64_t want, int64_t *above) {
    int64_t acc = 0;
    for (int b = BINS - 1; b >= 0; b--) {
        if (acc + hist[b] >= want) {
            *above = acc;
            return (uint32_t)b;
        }
        acc += hist[b];
    }
    *above = acc;
    return 0;
}

float sae_cpu_batch_topk(const float *pre, int64_t N, int64_t M, int64_t total, sae_codes *codes) {
    MUSAE_ASSERT(codes->cap >= total && total >= 0, "codes hold %lld entries, need %lld", (long long)codes->cap,
                 (long long)total);
    const int64_t n = N * M;
    int64_t *hist = musae_xmalloc(sizeof(int64_t) * BINS);
    histogram(pre, n, 0, 0, hist);
    int64_t positives = 0;
    for (int b = 0; b < BINS; b++) positives += hist[b];
    uint32_t thr = 0; /* bits of the threshold value; 0 = take every positive entry */
    int64_t take_equal = 0;
    if (positives > total && total > 0) {
        int64_t above_hi, above_lo;
        uint32_t hi = pick_bin(hist, total, &above_hi);
        histogram(pre, n, 1, hi, hist);
        uint32_t lo = pick_bin(hist, total - above_hi, &above_lo);
        thr = (hi << 16) | lo;
        take_equal = total - above_hi - above_lo;
    } else if (total == 0) {
        thr = 0xffffffffu;
    }
    free(hist);
    /* per row: entries above thr, and the count equal to it, so rows can be filled in parallel */
    int64_t *row_gt = musae_xmalloc(sizeof(int64_t) * (size_t)N * 2 + 16), *row_eq = row_gt + N;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < N; r++) {
        int64_t gt = 0, eq = 0;
        for (int64_t j = 0; j < M; j++) {
            float v = pre[r * M + j];
            if (!(v > 0.0f)) continue;
            uint32_t b = musae_f32_bits(v);
            if (thr == 0 || b > thr) gt++;
            else if (b == thr) eq++;
        }
        row_gt[r] = gt;
        row_eq[r] = eq;
    }
    codes->ptr[0] = 0;
    int64_t eq_left = take_equal;
    for (int64_t r = 0; r < N; r++) {
        int64_t e = row_eq[r] < eq_left ? row_eq[r] : eq_left;
        eq_left -= e;
        row_eq[r] = e; /* now: equal entries this row takes */
        codes->ptr[r + 1] = codes->ptr[r] + row_gt[r] + e;
    }
    float min_val = FLT_MAX;
#pragma omp parallel for schedule(static) reduction(min : min_val)
    for (int64_t r = 0; r < N; r++) {
        int64_t at = codes->ptr[r], eq = row_eq[r];
        for (int64_t j = 0; j < M; j++) {
            float v = pre[r * M + j];
            if (!(v > 0.0f)) continue;
            uint32_t b = musae_f32_bits(v);
            if (thr == 0 || b > thr || (b == thr && eq-- > 0)) {
                codes->idx[at] = (int32_t)j;
                codes->val[at++] = v;
            }
        }
        if (at > codes->ptr[r]) {
            float m = codes->val[codes->ptr[r]];
            for (int64_t e = codes->ptr[r]; e < at; e++) m = codes->val[e] < m ? codes->val[e] : m;
            if (m < min_val) min_val = m;
        }
    }
    codes->n_rows = N;
    free(row_gt);
    return min_val == FLT_MAX ? 0.0f : min_val;
}
