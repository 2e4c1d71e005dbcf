/* Percussive share of the energy by median-filter HPSS (Fitzgerald 2010, as librosa.decompose.hpss): the
 * harmonic estimate H is the magnitude spectrogram median-filtered along time, the percussive estimate P the
 * same along frequency; soft Wiener masks P²/(P²+H²) and H²/(P²+H²) split each bin's energy |S|², and
 * percussive_ratio = E_P / (E_P + E_H) over the frames of a window or of the clip (0 for silence).
 * Kernels: DSP_HPSS_T frames (about 0.54 s) along time and DSP_HPSS_F bins (about 240 Hz) along frequency;
 * at the edges the median is over the part of the kernel inside the spectrogram. Only bins up to
 * DSP_HPSS_MAX_HZ take part (the medians are most of describe's time, and above 8 kHz music holds little of
 * the energy the ratio weighs).
 *
 * The medians are exact and branch-free: DSP_HPSS_LANES sequences at once (neighbouring bins for the time
 * medians, neighbouring frames for the frequency medians) in plain loops over lanes the compiler turns into
 * vector min/max. Inside a sequence, the DSP_HPSS_GROUP outputs i .. i+G-1 share the 2h+2-G values
 * x[i+G-1-h .. i+h] (the core); a sorting network (Batcher's odd-even merge sort, cut to the core's ranks
 * h+1-G .. h) orders what the medians need, and each median of 2h+1 is the (h+1)-th smallest of the sorted core A
 * and that output's G-1 other values B (sorted): min over j = 0 .. G-1 of max(A[h-j], B[j-1]) (B[-1] = -inf).
 * The h outputs at each end (partial kernels) grow one value at a time from the ends inwards. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/dsp.h"
#include "host/core/check.h"

#define DSP_HPSS_T 17
#define DSP_HPSS_F 31
#define DSP_HPSS_MAX_HZ 8000.0
#define DSP_HPSS_LANES 8
#define DSP_HPSS_GROUP 4 /* outputs sharing one network; the fewest comparators per output for both kernels */
#define NET_MAX 32   /* the core of the frequency kernel (DSP_HPSS_F + 1 - DSP_HPSS_GROUP) rounded up to a power of two */
#define NET_CMP 256  /* comparators of Batcher's network on NET_MAX wires: 191 */

/* A compare-exchange of wires i < j: the minimum goes to i (when lo), the maximum to j (when hi). */
typedef struct {
    uint8_t i, j, lo, hi;
} net_cmp;

typedef struct {
    net_cmp c[NET_CMP];
    int n;
} net;

/* Batcher's odd-even merge sort on `size` wires (padded to a power of two with +inf, so comparators that reach
 * past size are dropped), keeping only what reaches wires r0 .. r1 of the sorted order. */
static void net_build(net *nt, int size, int r0, int r1) {
    int p2 = 1;
    while (p2 < size) p2 <<= 1;
    MUSAE_ASSERT(p2 <= NET_MAX && r0 >= 0 && r0 <= r1 && r1 < size, "HPSS network: %d wires, ranks %d-%d", size, r0, r1);
    net_cmp all[NET_CMP];
    int n = 0;
    for (int p = 1; p < p2; p <<= 1)
        for (int k = p; k >= 1; k >>= 1)
            for (int j = k % p; j + k < p2; j += 2 * k)
                for (int i = 0; i < k && i < p2 - j - k; i++)
                    if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < size) {
                        MUSAE_ASSERT(n < NET_CMP, "HPSS network: more than %d comparators", NET_CMP);
                        all[n++] = (net_cmp){(uint8_t)(i + j), (uint8_t)(i + j + k), 1, 1};
                    }
    /* backwards: a comparator matters when a wire it writes is still needed */
    uint8_t need[NET_MAX] = {0};
    for (int r = r0; r <= r1; r++) need[r] = 1;
    nt->n = 0;
    for (int q = n - 1; q >= 0; q--) {
        net_cmp c = all[q];
        c.lo = need[c.i], c.hi = need[c.j];
        if (!c.lo && !c.hi) continue;
        need[c.i] = need[c.j] = 1;
        nt->c[nt->n++] = c;
    }
    for (int a = 0, b = nt->n - 1; a < b; a++, b--) { /* back into forward order */
        const net_cmp t = nt->c[a];
        nt->c[a] = nt->c[b], nt->c[b] = t;
    }
}

/* v[0..*m) sorted: insert u in its place */
static void sorted_insert(float *v, int *m, float u) {
    int b = (*m)++;
    while (b > 0 && v[b - 1] > u) v[b] = v[b - 1], b--;
    v[b] = u;
}

/* the median of sorted v[0..m) as the interior's: the middle, or the mean of the two middle values */
static float sorted_median(const float *v, int m) { return m % 2 ? v[m / 2] : 0.5f * (v[m / 2 - 1] + v[m / 2]); }

/* median of the m values of v (sorted in place) */
static float median_small(float *v, int m) {
    int k = 0;
    for (int a = 0; a < m; a++) sorted_insert(v, &k, v[a]);
    return sorted_median(v, m);
}

/* compare-exchange of two rows of lanes: minimum to lo, maximum to hi, or only one of them. GCC does not
 * vectorise these loops on its own (float compare-and-select under IEEE rules), so on x86 they are SSE
 * min/max, which give the same values here (magnitudes: no NaN, no -0). */
#if defined(__SSE__)
#include <xmmintrin.h>
static inline void cmp_both(float *lo, float *hi) {
    for (int l = 0; l < DSP_HPSS_LANES; l += 4) {
        const __m128 p = _mm_loadu_ps(lo + l), r = _mm_loadu_ps(hi + l);
        _mm_storeu_ps(lo + l, _mm_min_ps(p, r)), _mm_storeu_ps(hi + l, _mm_max_ps(p, r));
    }
}
static inline void cmp_min(float *lo, const float *hi) {
    for (int l = 0; l < DSP_HPSS_LANES; l += 4) _mm_storeu_ps(lo + l, _mm_min_ps(_mm_loadu_ps(lo + l), _mm_loadu_ps(hi + l)));
}
static inline void cmp_max(const float *lo, float *hi) {
    for (int l = 0; l < DSP_HPSS_LANES; l += 4) _mm_storeu_ps(hi + l, _mm_max_ps(_mm_loadu_ps(lo + l), _mm_loadu_ps(hi + l)));
}
#else
static inline void cmp_both(float *lo, float *hi) {
    for (int l = 0; l < DSP_HPSS_LANES; l++) {
        const float p = lo[l], r = hi[l];
        lo[l] = p < r ? p : r, hi[l] = p < r ? r : p;
    }
}
static inline void cmp_min(float *lo, const float *hi) {
    for (int l = 0; l < DSP_HPSS_LANES; l++) lo[l] = lo[l] < hi[l] ? lo[l] : hi[l];
}
static inline void cmp_max(const float *lo, float *hi) {
    for (int l = 0; l < DSP_HPSS_LANES; l++) hi[l] = lo[l] < hi[l] ? hi[l] : lo[l];
}
#endif

/* For each lane l < DSP_HPSS_LANES: out[i·os + l·ols] = median of x[j·xs + l] over j in (i-h .. i+h) ∩ [0, n).
 * nt orders ranks h+1-G .. h of 2h+2-G wires (G = DSP_HPSS_GROUP). */
static void median_lanes(const float *x, int64_t xs, int64_t n, int h, const net *nt, float *out, int64_t os,
                         int64_t ols) {
    enum { L = DSP_HPSS_LANES };
    float v[NET_MAX][L], tmp[2 * NET_MAX];
    enum { G = DSP_HPSS_GROUP };
    if (n < 2 * h + G) { /* a sequence too short for an interior group: every kernel sorted on its own */
        for (int64_t i = 0; i < n; i++) {
            const int64_t a = i - h < 0 ? 0 : i - h, b = i + h + 1 > n ? n : i + h + 1;
            for (int l = 0; l < L; l++) {
                for (int64_t j = a; j < b; j++) tmp[j - a] = x[j * xs + l];
                out[i * os + l * ols] = median_small(tmp, (int)(b - a));
            }
        }
        return;
    }
    /* the partial kernels at the ends, growing one value per output from each end inwards */
    for (int l = 0; l < L; l++) {
        int m = 0;
        for (int64_t j = 0; j < h; j++) sorted_insert(tmp, &m, x[j * xs + l]);
        for (int64_t i = 0; i < h; i++) {
            sorted_insert(tmp, &m, x[(i + h) * xs + l]);
            out[i * os + l * ols] = sorted_median(tmp, m);
        }
        m = 0;
        for (int64_t j = n - 1; j >= n - h; j--) sorted_insert(tmp, &m, x[j * xs + l]);
        for (int64_t i = n - 1; i >= n - h; i--) {
            sorted_insert(tmp, &m, x[(i - h) * xs + l]);
            out[i * os + l * ols] = sorted_median(tmp, m);
        }
    }
    /* interior groups of G outputs; the last one ends at n-h-1, repeating outputs of the one before */
    const int K = 2 * h + 2 - G;
    float e[G - 1][L], r[L], t[L];
    for (int64_t i0 = h; i0 < n - h; i0 += G) {
        const int64_t i = i0 + G <= n - h ? i0 : n - h - G;
        for (int w = 0; w < K; w++) memcpy(v[w], x + (i + G - 1 - h + w) * xs, sizeof v[w]);
        for (int q = 0; q < nt->n; q++) {
            const net_cmp c = nt->c[q];
            if (c.lo && c.hi) cmp_both(v[c.i], v[c.j]);
            else if (c.lo) cmp_min(v[c.i], v[c.j]);
            else cmp_max(v[c.i], v[c.j]);
        }
        for (int g = 0; g < G; g++) {
            /* output i+g: its kernel's values outside the core, x[i+g-h .. i+G-2-h] and x[i+h+1 .. i+g+h], sorted */
            for (int j = 0; j < G - 1; j++) {
                const int64_t at = j < G - 1 - g ? i + g - h + j : i + h + 1 + (j - (G - 1 - g));
                memcpy(e[j], x + at * xs, sizeof e[j]);
            }
            for (int p = 0; p < G - 1; p++)
                for (int j = 0; j + 1 < G - 1 - p; j++) cmp_both(e[j], e[j + 1]);
            memcpy(r, v[h], sizeof r);
            for (int j = 1; j < G; j++) {
                memcpy(t, v[h - j], sizeof t);
                cmp_max(e[j - 1], t);
                cmp_min(r, t);
            }
            for (int l = 0; l < L; l++) out[(i + g) * os + l * ols] = r[l];
        }
    }
}

void dsp_hpss(const dsp_clip *c, musae_desc *clip, musae_desc *win) {
    enum { L = DSP_HPSS_LANES };
    const int64_t F = c->n_frames;
    int64_t B = (int64_t)(DSP_HPSS_MAX_HZ * DSP_NFFT / c->rate) + 1;
    if (B > DSP_BINS) B = DSP_BINS;
    net nt_t, nt_f;
    enum { G = DSP_HPSS_GROUP, HT = DSP_HPSS_T / 2, HF = DSP_HPSS_F / 2 };
    net_build(&nt_t, 2 * HT + 2 - G, HT + 1 - G, HT);
    net_build(&nt_f, 2 * HF + 2 - G, HF + 1 - G, HF);
    /* along time the lanes are bins of the spectrogram itself, the last group ending at bin B-1 (overlapping the
     * one before: the same values written twice); along frequency they are frames of the transposed band, padded
     * to whole groups (zeros, never read back) so that a clip of fewer than L frames still fills them */
    MUSAE_ASSERT(B >= L, "HPSS: %lld bins below %g Hz at %d Hz, fewer than %d", (long long)B, DSP_HPSS_MAX_HZ, c->rate, L);
    const int64_t Fp = (F + L - 1) / L * L;
    float *S = musae_xcalloc((size_t)(Fp * B), sizeof(float));  /* [B, Fp] the band, transposed */
    float *H = musae_xmalloc((size_t)(F * B) * sizeof(float));  /* [F, B] */
    float *P = musae_xmalloc((size_t)(Fp * B) * sizeof(float)); /* [Fp, B] */
    for (int64_t f = 0; f < F; f++)
        for (int64_t k = 0; k < B; k++) S[k * Fp + f] = c->mag[f * DSP_BINS + k];
    for (int64_t k0 = 0; k0 < B; k0 += L) {
        const int64_t k = k0 + L <= B ? k0 : B - L;
        median_lanes(c->mag + k, DSP_BINS, F, HT, &nt_t, H + k, B, 1);
    }
    for (int64_t f0 = 0; f0 < Fp; f0 += L)
        median_lanes(S + f0, Fp, B, HF, &nt_f, P + f0 * B, 1, B);
    double ep_all = 0, eh_all = 0;
    double *ep = musae_xcalloc((size_t)c->n_windows, sizeof(double)), *eh = musae_xcalloc((size_t)c->n_windows, sizeof(double));
    for (int64_t f = 0; f < F; f++) {
        double p_sum = 0, h_sum = 0;
        for (int64_t k = 0; k < B; k++) {
            const double p2 = (double)P[f * B + k] * P[f * B + k], h2 = (double)H[f * B + k] * H[f * B + k];
            const double e = (double)c->mag[f * DSP_BINS + k] * c->mag[f * DSP_BINS + k];
            if (p2 + h2 > 0) p_sum += e * p2 / (p2 + h2), h_sum += e * h2 / (p2 + h2);
        }
        ep_all += p_sum, eh_all += h_sum;
        ep[c->frame_window[f]] += p_sum, eh[c->frame_window[f]] += h_sum;
    }
    clip->percussive_ratio = ep_all + eh_all > 0 ? (float)(ep_all / (ep_all + eh_all)) : 0.0f;
    for (int64_t w = 0; w < c->n_windows; w++)
        win[w].percussive_ratio = ep[w] + eh[w] > 0 ? (float)(ep[w] / (ep[w] + eh[w])) : 0.0f;
    free(ep), free(eh), free(H), free(P), free(S);
}
