/* The GPU SAE kernels (kernels/cuda/sae_cuda.cuh) against the CPU reference (kernels/cpu/sae_*.c), op by op.
 *
 * Tolerance rules (aesthetics.md §6.5), stated once and applied per row of the table printed at the end:
 *   exact      selections (indices, counts, order; AuxK rows, which have no defined order, as sets) equal,
 *              values bit-identical. Used where the GPU does the same arithmetic in the same order (decode,
 *              loss gradients, Adam, batch-top-k on given values) or where
 *              the inputs make the arithmetic exact: small integers (|x|, |W| <= 4, integer biases) give integer
 *              pre-activations in fp32 and in bf16 alike, in any summation order — and many exact ties, which
 *              the tie rule (lower latent first) must settle identically.
 *   near-tie   random continuous inputs: every row's selection equals the CPU's except for latents whose
 *              CPU value lies within δ = 2^-12·max|pre| of the row's boundary (fp32 summation-order noise is
 *              ~d·2^-24 of the terms, far below δ); such rows are counted and reported, other differences fail.
 *   order      fp32 results that differ from the CPU only in summation order: NMSE <= 16·(n·u)² with n the
 *              reduction length and u = 2^-24 (worst-case linear error growth, 4× margin on the error).
 *   FA         bf16 operands: max|gpu − ref| <= 2·max|naive − ref| + atol, ref = fp32 CPU on the fp32 inputs,
 *              naive = the same CPU code on bf16-rounded inputs, atol = the order rule's bound at max|ref|.
 *   rel        double sums (total variance, FVU, AuxK): relative error <= 1e-12.
 * Every device output is poisoned (0xff bytes: NaN, −1) before the op and followed by 64 guard bytes that must
 * come back untouched; determinism: a whole training step twice, bitwise equal.
 * --small runs only small shapes (for compute-sanitizer). Skips (exit 77) without a GPU. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/philox.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/sae_cuda.cuh"
#include "kernels/sae_ops.h"
#include "test.h"

static int g_small = 0;
static const double U32 = 1.0 / 16777216.0; // fp32 unit roundoff 2^-24

// ---- the results table ------------------------------------------------------------------------------------------
struct Row {
    char kernel[40], shape[48], rule[12];
    double max_abs, nmse, tol;
    long long bad;
    int ok;
};
static std::vector<Row> g_rows;

static void report(const char *kernel, const char *shape, const char *rule, double max_abs, double nmse, double tol,
                   long long bad, int ok) {
    Row r;
    snprintf(r.kernel, sizeof r.kernel, "%s", kernel);
    snprintf(r.shape, sizeof r.shape, "%s", shape);
    snprintf(r.rule, sizeof r.rule, "%s", rule);
    r.max_abs = max_abs, r.nmse = nmse, r.tol = tol, r.bad = bad, r.ok = ok;
    g_rows.push_back(r);
    CHECK(ok, "%s [%s] rule %s: max_abs %.3g nmse %.3g tol %.3g bad %lld", kernel, shape, rule, max_abs, nmse, tol, bad);
}

static void print_table(void) {
    printf("\n%-34s %-32s %-8s %11s %11s %11s %8s  %s\n", "kernel", "shape", "rule", "max_abs", "nmse", "tol", "bad",
           "result");
    for (const Row &r : g_rows)
        printf("%-34s %-32s %-8s %11.3g %11.3g %11.3g %8lld  %s\n", r.kernel, r.shape, r.rule, r.max_abs, r.nmse, r.tol,
               r.bad, r.ok ? "ok" : "FAIL");
    printf("\n");
}

// ---- device memory with poison and guard bytes ---------------------------------------------------------------------
enum { GUARD = 64 };
struct Alloc {
    void *p;
    size_t bytes;
};
static std::vector<Alloc> g_allocs;

static void *dmalloc(size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes + GUARD));
    CUDA_CHECK(cudaMemset(p, 0xff, bytes));                 // poison: NaN floats, -1 integers
    CUDA_CHECK(cudaMemset((char *)p + bytes, 0xa5, GUARD)); // guard
    g_allocs.push_back({p, bytes});
    return p;
}
template <typename T>
static T *dnew(int64_t n) {
    return (T *)dmalloc(sizeof(T) * (size_t)(n > 0 ? n : 1));
}
template <typename T>
static T *dup(const T *h, int64_t n) {
    T *d = dnew<T>(n);
    if (n > 0) CUDA_CHECK(cudaMemcpy(d, h, sizeof(T) * (size_t)n, cudaMemcpyHostToDevice));
    return d;
}
template <typename T>
static void down(T *h, const T *d, int64_t n) {
    CUDA_CHECK(cudaDeviceSynchronize());
    if (n > 0) CUDA_CHECK(cudaMemcpy(h, d, sizeof(T) * (size_t)n, cudaMemcpyDeviceToHost));
}
template <typename T>
static void poison(T *d, int64_t n) {
    CUDA_CHECK(cudaMemset(d, 0xff, sizeof(T) * (size_t)(n > 0 ? n : 1)));
}
// Checks every live allocation's guard and frees them all; returns the number of damaged guards.
static int dfree_all(const char *what) {
    CUDA_CHECK(cudaDeviceSynchronize());
    int bad = 0;
    for (const Alloc &a : g_allocs) {
        unsigned char g[GUARD];
        CUDA_CHECK(cudaMemcpy(g, (char *)a.p + a.bytes, GUARD, cudaMemcpyDeviceToHost));
        for (int i = 0; i < GUARD; i++) bad += g[i] != 0xa5;
        CUDA_CHECK(cudaFree(a.p));
    }
    g_allocs.clear();
    CHECK(bad == 0, "%s: %d guard bytes after device buffers were overwritten", what, bad);
    return bad;
}

// ---- host data ------------------------------------------------------------------------------------------------------
static float urand(uint64_t stream, uint64_t i) { return 2.0f * musae_u32_to_unit(musae_philox(11, stream, i).v[0]) - 1.0f; }
static void fill(float *x, int64_t n, uint64_t stream, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * urand(stream, (uint64_t)i);
}
static void fill_int(float *x, int64_t n, uint64_t stream, int lo, int hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (int)(musae_philox(13, stream, (uint64_t)i).v[1] % (uint32_t)(hi - lo + 1)));
}
static std::vector<uint16_t> to_bf16(const float *x, int64_t n) {
    std::vector<uint16_t> o((size_t)n);
    for (int64_t i = 0; i < n; i++) o[(size_t)i] = musae_f32_to_bf16(x[i]);
    return o;
}
static std::vector<float> round_bf16(const float *x, int64_t n) {
    std::vector<float> o((size_t)n);
    for (int64_t i = 0; i < n; i++) o[(size_t)i] = musae_bf16_to_f32(musae_f32_to_bf16(x[i]));
    return o;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}
static double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs((double)a[i]) > m ? fabs((double)a[i]) : m;
    return m;
}
static double nmse(const float *a, const float *ref, int64_t n) {
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        if (d != d) return INFINITY;
        e += d * d;
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? e / r : e;
}
static long long word_mismatch(const void *a, const void *b, int64_t words) {
    long long bad = 0;
    for (int64_t i = 0; i < words; i++) bad += memcmp((const char *)a + 4 * i, (const char *)b + 4 * i, 4) != 0;
    return bad;
}
static double order_tol(double n) { return 16.0 * (n * U32) * (n * U32); }

// ---- codes on both sides -----------------------------------------------------------------------------------------------
static sae_codes hcodes(int64_t rows, int64_t cap) {
    sae_codes c = {rows, cap, (int64_t *)calloc((size_t)rows + 1, 8), (int32_t *)calloc((size_t)cap + 1, 4),
                   (float *)calloc((size_t)cap + 1, 4)};
    return c;
}
static void hcodes_free(sae_codes *c) {
    free(c->ptr);
    free(c->idx);
    free(c->val);
}
static sae_codes dcodes(int64_t rows, int64_t cap) {
    sae_codes c = {rows, cap, dnew<int64_t>(rows + 1), dnew<int32_t>(cap), dnew<float>(cap)};
    return c;
}
static sae_codes dcodes_up(const sae_codes *h, int64_t cap) {
    sae_codes c = dcodes(h->n_rows, cap);
    const int64_t nnz = h->ptr[h->n_rows];
    CUDA_CHECK(cudaMemcpy(c.ptr, h->ptr, 8 * (size_t)(h->n_rows + 1), cudaMemcpyHostToDevice));
    if (nnz) {
        CUDA_CHECK(cudaMemcpy(c.idx, h->idx, 4 * (size_t)nnz, cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(c.val, h->val, 4 * (size_t)nnz, cudaMemcpyHostToDevice));
    }
    return c;
}
static sae_codes dcodes_down(const sae_codes *d) {
    sae_codes h = hcodes(d->n_rows, d->cap);
    down(h.ptr, d->ptr, d->n_rows + 1);
    const int64_t nnz = h.ptr[d->n_rows];
    if (nnz < 0 || nnz > d->cap) {
        fprintf(stderr, "device codes claim %lld entries (cap %lld)\n", (long long)nnz, (long long)d->cap);
        h.ptr[d->n_rows] = 0;
        return h;
    }
    down(h.idx, d->idx, nnz);
    down(h.val, d->val, nnz);
    return h;
}
// Rows whose entries (count, indices, value bits) differ.
static long long codes_diff_rows(const sae_codes *a, const sae_codes *b) {
    long long bad = 0;
    for (int64_t n = 0; n < a->n_rows; n++) {
        const int64_t ca = a->ptr[n + 1] - a->ptr[n], cb = b->ptr[n + 1] - b->ptr[n];
        int diff = ca != cb || a->ptr[n] != b->ptr[n];
        for (int64_t e = 0; !diff && e < ca; e++)
            diff = a->idx[a->ptr[n] + e] != b->idx[b->ptr[n] + e] ||
                   memcmp(&a->val[a->ptr[n] + e], &b->val[b->ptr[n] + e], 4) != 0;
        bad += diff;
    }
    return bad;
}
// AuxK rows are in no particular order (kernels/sae_ops.h; the CPU leaves them in heap order, the GPU sorted):
// each row's entries sorted by value, descending, then by latent, so the selections compare as sets.
static void codes_sort_rows(sae_codes *c) {
    std::vector<std::pair<float, int32_t>> e;
    for (int64_t n = 0; n < c->n_rows; n++) {
        e.clear();
        for (int64_t i = c->ptr[n]; i < c->ptr[n + 1]; i++) e.push_back({c->val[i], c->idx[i]});
        std::sort(e.begin(), e.end(), [](const std::pair<float, int32_t> &a, const std::pair<float, int32_t> &b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        });
        for (size_t i = 0; i < e.size(); i++) {
            c->val[c->ptr[n] + (int64_t)i] = e[i].first;
            c->idx[c->ptr[n] + (int64_t)i] = e[i].second;
        }
    }
}
// Near-tie comparison of a GPU selection with a CPU one over the CPU's pre [N, M] (see the header). Counts rows that
// differ only within the band in *near, returns the rows that differ beyond it; *vmax = max |gpu val − cpu pre|.
static long long codes_near_tie(const sae_codes *g, const sae_codes *c, const float *pre, int64_t M, int k, double delta,
                                long long *near, double *vmax) {
    long long bad = 0;
    *near = 0;
    *vmax = 0;
    std::vector<uint8_t> in_c((size_t)M);
    for (int64_t n = 0; n < c->n_rows; n++) {
        const float *p = pre + n * M;
        std::fill(in_c.begin(), in_c.end(), 0);
        float thr = FLT_MAX;
        for (int64_t e = c->ptr[n]; e < c->ptr[n + 1]; e++) {
            in_c[(size_t)c->idx[e]] = 1;
            thr = c->val[e] < thr ? c->val[e] : thr;
        }
        if (c->ptr[n + 1] - c->ptr[n] < k) thr = 0.0f; // every positive value was selected
        int differs = 0, beyond = 0;
        std::vector<uint8_t> in_g((size_t)M, 0);
        for (int64_t e = g->ptr[n]; e < g->ptr[n + 1]; e++) {
            const int32_t j = g->idx[e];
            if (j < 0 || j >= M || in_g[(size_t)j]) {
                beyond = 1;
                continue;
            }
            in_g[(size_t)j] = 1;
            const double dv = fabs((double)g->val[e] - (double)p[j]);
            *vmax = dv > *vmax ? dv : *vmax;
            if (!in_c[(size_t)j]) {
                differs = 1;
                beyond |= p[j] < thr - delta;
            }
        }
        for (int64_t e = c->ptr[n]; e < c->ptr[n + 1]; e++)
            if (!in_g[(size_t)c->idx[e]]) {
                differs = 1;
                beyond |= c->val[e] > thr + delta;
            }
        for (int64_t e = g->ptr[n] + 1; e < g->ptr[n + 1]; e++) // sorted descending
            beyond |= g->val[e] > g->val[e - 1];
        bad += beyond;
        *near += differs && !beyond;
    }
    return bad;
}

static void shape_str(char *s, size_t n, int64_t N, int64_t d, int64_t M, int k, int ka) {
    snprintf(s, n, "N%lld d%lld M%lld k%d a%d", (long long)N, (long long)d, (long long)M, k, ka);
}

// ---- encode ---------------------------------------------------------------------------------------------------------
typedef struct {
    int64_t N, d, M;
    int k, k_aux;
    int small_tile;  // scratch sized for tiles of a few rows × 1024 latents (many tiles in both directions)
} enc_case;

static size_t enc_scratch(const enc_case &c, int ka) {
    if (!c.small_tile) return sae_cuda_encode_scratch_bytes(c.N, c.M, c.k, ka);
    return sae_cuda_encode_scratch_min(c.N, c.M, c.k, ka) + 4 * 1024 * 7 + 256; // 7 rows × 1024 latents
}

// Integer inputs: pre-activations are exact integers in fp32 and bf16 alike -> exact selection, many ties.
static void test_encode_exact(cublasHandle_t blas, const enc_case &c, musae_dtype gt, int unfused) {
    const int64_t N = c.N, d = c.d, M = c.M;
    std::vector<float> x((size_t)(N * d)), W((size_t)(M * d)), b((size_t)M), pre((size_t)(N * M));
    fill_int(x.data(), N * d, 1, -4, 4);
    fill_int(W.data(), M * d, 2, -4, 4);
    fill_int(b.data(), M, 3, -8, 8);
    for (int64_t j = 0; j < d; j++) W[(size_t)(5 * d + j)] = W[(size_t)((M - 3) * d + j)]; // a planted exact tie
    b[5] = b[(size_t)(M - 3)];
    std::vector<uint8_t> dead((size_t)M);
    for (int64_t i = 0; i < M; i++) dead[(size_t)i] = i % 3 == 0;
    const int use_aux = c.k_aux > 0;
    sae_codes hc = hcodes(N, N * c.k), ha = hcodes(N, N * c.k_aux + 1);
    sae_cpu_encode(x.data(), W.data(), b.data(), N, d, M, c.k, use_aux ? dead.data() : NULL, c.k_aux, &hc, &ha, pre.data());

    const void *dx, *dW;
    if (gt == MUSAE_F32) {
        dx = dup(x.data(), N * d);
        dW = dup(W.data(), M * d);
    } else {
        std::vector<uint16_t> xb = to_bf16(x.data(), N * d), Wb = to_bf16(W.data(), M * d);
        dx = dup(xb.data(), N * d);
        dW = dup(Wb.data(), M * d);
    }
    float *db = dup(b.data(), M), *dpre = unfused ? dnew<float>(N * M) : NULL;
    uint8_t *ddead = dup(dead.data(), M);
    sae_codes dc = dcodes(N, N * c.k), da = dcodes(N, N * c.k_aux + 1);
    const size_t sb = enc_scratch(c, use_aux ? c.k_aux : 0);
    void *scratch = dmalloc(sb);
    sae_cuda_encode(blas, gt, dx, dW, db, N, d, M, c.k, use_aux ? ddead : NULL, c.k_aux, &dc, &da, dpre, scratch, sb, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    sae_codes gc = dcodes_down(&dc), ga = dcodes_down(&da);
    char shape[48], name[40];
    shape_str(shape, sizeof shape, N, d, M, c.k, c.k_aux);
    const char *tag = gt == MUSAE_F32 ? "f32" : "bf16";
    const char *path = unfused ? "unfused" : c.small_tile ? "fused.tiles" : "fused";
    snprintf(name, sizeof name, "encode.%s.%s", tag, path);
    long long bad = codes_diff_rows(&gc, &hc);
    report(name, shape, "exact", 0, 0, 0, bad, bad == 0);
    if (use_aux) {
        snprintf(name, sizeof name, "encode.%s.%s.auxk", tag, path);
        codes_sort_rows(&ga);
        codes_sort_rows(&ha);
        bad = codes_diff_rows(&ga, &ha);
        report(name, shape, "exact", 0, 0, 0, bad, bad == 0);
    } else {
        int64_t p[2] = {1, 1};
        down(p, da.ptr, 2);
        report("encode.aux-empty", shape, "exact", 0, 0, 0, p[0] != 0 || p[1] != 0, p[0] == 0 && p[1] == 0);
    }
    if (unfused) {
        std::vector<float> gp((size_t)(N * M));
        down(gp.data(), dpre, N * M);
        snprintf(name, sizeof name, "encode.%s.pre", tag);
        bad = word_mismatch(gp.data(), pre.data(), N * M);
        report(name, shape, "exact", max_abs_diff(gp.data(), pre.data(), N * M), 0, 0, bad, bad == 0);
    }
    hcodes_free(&hc), hcodes_free(&ha), hcodes_free(&gc), hcodes_free(&ga);
    dfree_all("encode");
}

// Random continuous inputs: near-tie rule against the CPU (f32) or against the CPU on bf16-rounded inputs (bf16),
// and for bf16 the FA rule on the pre-activations.
static void test_encode_random(cublasHandle_t blas, const enc_case &c, musae_dtype gt) {
    const int64_t N = c.N, d = c.d, M = c.M;
    std::vector<float> x((size_t)(N * d)), W((size_t)(M * d)), b((size_t)M), pre((size_t)(N * M));
    fill(x.data(), N * d, 21, 1.0f);
    fill(W.data(), M * d, 22, 1.0f / sqrtf((float)d));
    fill(b.data(), M, 23, 0.1f);
    std::vector<uint8_t> dead((size_t)M);
    for (int64_t i = 0; i < M; i++) dead[(size_t)i] = i % 5 == 1;
    const int use_aux = c.k_aux > 0;
    // the reference the GPU must match selection-wise: fp32 inputs, or their bf16 roundings
    std::vector<float> xs = gt == MUSAE_F32 ? x : round_bf16(x.data(), N * d);
    std::vector<float> Ws = gt == MUSAE_F32 ? W : round_bf16(W.data(), M * d);
    sae_codes hc = hcodes(N, N * c.k), ha = hcodes(N, N * c.k_aux + 1);
    sae_cpu_encode(xs.data(), Ws.data(), b.data(), N, d, M, c.k, use_aux ? dead.data() : NULL, c.k_aux, &hc, &ha,
                   pre.data());

    const void *dx, *dW;
    if (gt == MUSAE_F32) {
        dx = dup(x.data(), N * d);
        dW = dup(W.data(), M * d);
    } else {
        std::vector<uint16_t> xb = to_bf16(x.data(), N * d), Wb = to_bf16(W.data(), M * d);
        dx = dup(xb.data(), N * d);
        dW = dup(Wb.data(), M * d);
    }
    float *db = dup(b.data(), M), *dpre = dnew<float>(N * M);
    uint8_t *ddead = dup(dead.data(), M);
    sae_codes dc = dcodes(N, N * c.k), da = dcodes(N, N * c.k_aux + 1);
    sae_codes dc2 = dcodes(N, N * c.k), da2 = dcodes(N, N * c.k_aux + 1);
    const size_t sb = enc_scratch(c, use_aux ? c.k_aux : 0);
    void *scratch = dmalloc(sb);
    // fused, then unfused (pre) on the same inputs
    sae_cuda_encode(blas, gt, dx, dW, db, N, d, M, c.k, use_aux ? ddead : NULL, c.k_aux, &dc, &da, NULL, scratch, sb, 0);
    sae_cuda_encode(blas, gt, dx, dW, db, N, d, M, c.k, use_aux ? ddead : NULL, c.k_aux, &dc2, &da2, dpre, scratch, sb, 0);
    CUDA_CHECK(cudaDeviceSynchronize());
    sae_codes gc = dcodes_down(&dc), ga = dcodes_down(&da), gc2 = dcodes_down(&dc2);
    std::vector<float> gp((size_t)(N * M));
    down(gp.data(), dpre, N * M);
    const double delta = ldexp(max_abs(pre.data(), N * M), -12);
    char shape[48], name[40];
    shape_str(shape, sizeof shape, N, d, M, c.k, c.k_aux);
    const char *tag = gt == MUSAE_F32 ? "f32" : "bf16";
    long long near = 0;
    double vmax = 0;
    long long bad = codes_near_tie(&gc, &hc, pre.data(), M, c.k, delta, &near, &vmax);
    snprintf(name, sizeof name, "encode.%s.random%s", tag, c.small_tile ? ".tiles" : "");
    report(name, shape, "near-tie", vmax, 0, delta, bad, bad == 0 && vmax <= delta);
    if (near) printf("  %s: %lld rows differ only within the near-tie band\n", name, near);
    bad = codes_near_tie(&gc2, &hc, pre.data(), M, c.k, delta, &near, &vmax);
    snprintf(name, sizeof name, "encode.%s.random.unfused", tag);
    report(name, shape, "near-tie", vmax, 0, delta, bad, bad == 0 && vmax <= delta);
    if (use_aux) {
        bad = codes_near_tie(&ga, &ha, pre.data(), M, c.k_aux, delta, &near, &vmax);
        snprintf(name, sizeof name, "encode.%s.random.auxk", tag);
        report(name, shape, "near-tie", vmax, 0, delta, bad, bad == 0 && vmax <= delta);
    }
    if (gt == MUSAE_F32) {
        const double tol = order_tol((double)d), e = nmse(gp.data(), pre.data(), N * M);
        report("encode.f32.pre", shape, "order", max_abs_diff(gp.data(), pre.data(), N * M), e, tol, 0, e <= tol);
    } else { // FA: ref = fp32 inputs, naive = bf16-rounded inputs on the CPU (pre above)
        std::vector<float> ref((size_t)(N * M));
        sae_codes t1 = hcodes(N, N * c.k), t2 = hcodes(N, 1);
        sae_cpu_encode(x.data(), W.data(), b.data(), N, d, M, c.k, NULL, 0, &t1, &t2, ref.data());
        const double e_naive = max_abs_diff(pre.data(), ref.data(), N * M), e_gpu = max_abs_diff(gp.data(), ref.data(), N * M);
        const double tol = 2 * e_naive + sqrt(order_tol((double)d)) * max_abs(ref.data(), N * M);
        report("encode.bf16.pre", shape, "FA", e_gpu, nmse(gp.data(), ref.data(), N * M), tol, 0, e_gpu <= tol);
        hcodes_free(&t1), hcodes_free(&t2);
    }
    hcodes_free(&hc), hcodes_free(&ha), hcodes_free(&gc), hcodes_free(&ga), hcodes_free(&gc2);
    dfree_all("encode random");
}

// ---- batch-top-k ------------------------------------------------------------------------------------------------------
static void test_batch_topk(int64_t N, int64_t M, int64_t total, int ints) {
    std::vector<float> pre((size_t)(N * M));
    if (ints) fill_int(pre.data(), N * M, 31, -6, 6); // many exact ties
    else fill(pre.data(), N * M, 32, 1.0f);
    for (float &v : pre) v = v > 0 ? v : 0.0f;
    sae_codes hc = hcodes(N, total + 1);
    const float hmin = sae_cpu_batch_topk(pre.data(), N, M, total, &hc);
    float *dpre = dup(pre.data(), N * M), *dmin = dnew<float>(1);
    sae_codes dc = dcodes(N, total + 1);
    void *scratch = dmalloc(sae_cuda_batch_topk_scratch_bytes(N, M));
    sae_cuda_batch_topk(dpre, N, M, total, &dc, dmin, scratch, 0);
    sae_codes gc = dcodes_down(&dc);
    float gmin;
    down(&gmin, dmin, 1);
    char shape[48];
    snprintf(shape, sizeof shape, "N%lld M%lld total%lld%s", (long long)N, (long long)M, (long long)total,
             ints ? " ints" : "");
    const long long bad = codes_diff_rows(&gc, &hc) + (memcmp(&gmin, &hmin, 4) != 0);
    report("batch_topk", shape, "exact", fabs((double)gmin - hmin), 0, 0, bad, bad == 0);
    hcodes_free(&hc), hcodes_free(&gc);
    dfree_all("batch_topk");
}

// Codes from the CPU encoder on random data (the shapes the decoder and backward see in training).
static sae_codes make_codes(int64_t N, int64_t d, int64_t M, int k, uint64_t seed, const uint8_t *dead, int hot) {
    std::vector<float> x((size_t)(N * d)), W((size_t)(M * d)), b((size_t)M);
    fill(x.data(), N * d, seed, 1.0f);
    fill(W.data(), M * d, seed + 1, 1.0f / sqrtf((float)d));
    fill(b.data(), M, seed + 2, 0.1f);
    if (hot) b[0] = b[(size_t)(M / 2)] = 100.0f; // two latents fire on every row: several backward chunks
    sae_codes c = hcodes(N, N * k), a = hcodes(N, 1);
    sae_cpu_encode(x.data(), W.data(), b.data(), N, d, M, dead ? 0 : k, dead, dead ? k : 0, dead ? &a : &c,
                   dead ? &c : &a, NULL);
    hcodes_free(&a);
    return c;
}

// ---- decode -----------------------------------------------------------------------------------------------------------
static void test_decode(int64_t N, int64_t d, int64_t M, int k) {
    sae_codes hc = make_codes(N, 24, M, k, 41, NULL, 0);
    std::vector<float> W((size_t)(M * d)), bdec((size_t)d), ref((size_t)(N * d)), ref0((size_t)(N * d)), out((size_t)(N * d));
    fill(W.data(), M * d, 42, 0.5f);
    fill(bdec.data(), d, 43, 0.2f);
    sae_cpu_decode(&hc, W.data(), bdec.data(), d, ref.data());
    sae_cpu_decode(&hc, W.data(), NULL, d, ref0.data());
    sae_codes dc = dcodes_up(&hc, N * k);
    float *dW = dup(W.data(), M * d), *db = dup(bdec.data(), d), *dout = dnew<float>(N * d);
    char shape[48];
    shape_str(shape, sizeof shape, N, d, M, k, 0);
    sae_cuda_decode(&dc, MUSAE_F32, dW, db, d, dout, 0);
    down(out.data(), dout, N * d);
    long long bad = word_mismatch(out.data(), ref.data(), N * d);
    report("decode.f32", shape, "exact", max_abs_diff(out.data(), ref.data(), N * d), nmse(out.data(), ref.data(), N * d), 0,
           bad, bad == 0);
    poison(dout, N * d);
    sae_cuda_decode(&dc, MUSAE_F32, dW, NULL, d, dout, 0);
    down(out.data(), dout, N * d);
    bad = word_mismatch(out.data(), ref0.data(), N * d);
    report("decode.f32.nobias", shape, "exact", max_abs_diff(out.data(), ref0.data(), N * d), 0, 0, bad, bad == 0);
    // bf16 weights: bit-identical to the CPU on the rounded weights (same arithmetic); FA against fp32
    std::vector<uint16_t> Wb = to_bf16(W.data(), M * d);
    std::vector<float> Wr = round_bf16(W.data(), M * d), naive((size_t)(N * d));
    sae_cpu_decode(&hc, Wr.data(), bdec.data(), d, naive.data());
    uint16_t *dWb = dup(Wb.data(), M * d);
    poison(dout, N * d);
    sae_cuda_decode(&dc, MUSAE_BF16, dWb, db, d, dout, 0);
    down(out.data(), dout, N * d);
    bad = word_mismatch(out.data(), naive.data(), N * d);
    const double e_naive = max_abs_diff(naive.data(), ref.data(), N * d), e = max_abs_diff(out.data(), ref.data(), N * d);
    const double tol = 2 * e_naive + sqrt(order_tol((double)k)) * max_abs(ref.data(), N * d);
    report("decode.bf16", shape, "FA", e, nmse(out.data(), ref.data(), N * d), tol, bad, bad == 0 && e <= tol);
    hcodes_free(&hc);
    dfree_all("decode");
}

// ---- loss --------------------------------------------------------------------------------------------------------------
static void test_loss(int64_t N, int64_t d) {
    std::vector<float> x((size_t)(N * d)), xh((size_t)(N * d)), eh((size_t)(N * d));
    fill(x.data(), N * d, 51, 1.0f);
    fill(xh.data(), N * d, 52, 0.9f);
    fill(eh.data(), N * d, 53, 0.1f);
    for (int64_t i = 0; i < N * d; i++) x[(size_t)i] += 0.5f; // a mean to remove
    const double tv = sae_cpu_total_variance(x.data(), N, d);
    std::vector<float> gx((size_t)(N * d)), ge((size_t)(N * d));
    double aux_c = 0;
    const float coef = 1.0f / 32;
    const double fvu_c = sae_cpu_loss_grad(x.data(), xh.data(), eh.data(), N, d, tv, coef, gx.data(), ge.data(), &aux_c);
    float *dx = dup(x.data(), N * d), *dxh = dup(xh.data(), N * d), *deh = dup(eh.data(), N * d);
    float *dgx = dnew<float>(N * d), *dge = dnew<float>(N * d);
    uint16_t *dgx16 = dnew<uint16_t>(N * d), *dge16 = dnew<uint16_t>(N * d);
    double *dtv = dnew<double>(1), *dfvu = dnew<double>(1), *daux = dnew<double>(1);
    void *s1 = dmalloc(sae_cuda_total_variance_scratch_bytes(N, d)), *s2 = dmalloc(sae_cuda_loss_grad_scratch_bytes(N));
    sae_cuda_total_variance(dx, N, d, dtv, s1, 0);
    sae_cuda_loss_grad(dx, dxh, deh, N, d, dtv, coef, dgx, dge, dgx16, dge16, dfvu, daux, s2, 0);
    double tv_g, fvu_g, aux_g;
    down(&tv_g, dtv, 1);
    down(&fvu_g, dfvu, 1);
    down(&aux_g, daux, 1);
    std::vector<float> g1((size_t)(N * d)), g2((size_t)(N * d));
    std::vector<uint16_t> b1((size_t)(N * d)), b2((size_t)(N * d));
    down(g1.data(), dgx, N * d);
    down(g2.data(), dge, N * d);
    down(b1.data(), dgx16, N * d);
    down(b2.data(), dge16, N * d);
    char shape[48];
    snprintf(shape, sizeof shape, "N%lld d%lld", (long long)N, (long long)d);
    double r = fabs(tv_g - tv) / tv;
    report("total_variance", shape, "rel", fabs(tv_g - tv), r, 1e-12, 0, r <= 1e-12);
    r = fabs(fvu_g - fvu_c) / fvu_c;
    report("loss.fvu", shape, "rel", fabs(fvu_g - fvu_c), r, 1e-12, 0, r <= 1e-12);
    r = fabs(aux_g - aux_c) / aux_c;
    report("loss.auxk", shape, "rel", fabs(aux_g - aux_c), r, 1e-12, 0, r <= 1e-12);
    long long bad = word_mismatch(g1.data(), gx.data(), N * d) + word_mismatch(g2.data(), ge.data(), N * d);
    report("loss.grad", shape, "exact", max_abs_diff(g1.data(), gx.data(), N * d), 0, 0, bad, bad == 0);
    bad = 0;
    for (int64_t i = 0; i < N * d; i++)
        bad += b1[(size_t)i] != musae_f32_to_bf16(gx[(size_t)i]) || b2[(size_t)i] != musae_f32_to_bf16(ge[(size_t)i]);
    report("loss.grad.bf16", shape, "exact", 0, 0, 0, bad, bad == 0);
    // without AuxK
    poison(dgx, N * d);
    sae_cuda_loss_grad(dx, dxh, NULL, N, d, dtv, coef, dgx, NULL, NULL, NULL, dfvu, daux, s2, 0);
    down(g1.data(), dgx, N * d);
    down(&aux_g, daux, 1);
    bad = word_mismatch(g1.data(), gx.data(), N * d) + (aux_g != 0.0);
    report("loss.grad.noaux", shape, "exact", 0, 0, 0, bad, bad == 0);
    dfree_all("loss");
}

// ---- backward -------------------------------------------------------------------------------------------------------------
static void test_backward(int64_t N, int64_t d, int64_t M, int k, int k_aux, musae_dtype act_t, int hot) {
    std::vector<uint8_t> dead((size_t)M);
    for (int64_t i = 0; i < M; i++) dead[(size_t)i] = i % 4 == 3;
    sae_codes hc = make_codes(N, 16, M, k, 61, NULL, hot);
    sae_codes ha = k_aux ? make_codes(N, 16, M, k_aux, 62, dead.data(), 0) : hcodes(N, 1);
    std::vector<float> gx((size_t)(N * d)), ge((size_t)(N * d)), xc((size_t)(N * d)), We((size_t)(M * d)), Wd((size_t)(M * d));
    fill(gx.data(), N * d, 63, 1e-3f);
    fill(ge.data(), N * d, 64, 1e-4f);
    fill(xc.data(), N * d, 65, 1.0f);
    fill(We.data(), M * d, 66, 0.1f);
    fill(Wd.data(), M * d, 67, 0.1f);
    std::vector<float> rWe((size_t)(M * d)), rbe((size_t)M), rWd((size_t)(M * d)), rbd((size_t)d);
    const int64_t nnz = hc.ptr[N] + (k_aux ? ha.ptr[N] : 0);
    std::vector<char> scr(sae_cpu_backward_scratch_bytes(N, nnz, M));
    sae_cpu_backward(&hc, k_aux ? &ha : NULL, gx.data(), k_aux ? ge.data() : NULL, xc.data(), We.data(), Wd.data(), d, M,
                     rWe.data(), rbe.data(), rWd.data(), rbd.data(), scr.data());
    // device: codes with spare capacity (the sentinel path), inputs in act_t
    sae_codes dc = dcodes_up(&hc, N * k + 3), da = dcodes_up(&ha, k_aux ? N * k_aux : 1);
    const void *dgx, *dge, *dxc;
    if (act_t == MUSAE_F32) {
        dgx = dup(gx.data(), N * d), dge = dup(ge.data(), N * d), dxc = dup(xc.data(), N * d);
    } else {
        std::vector<uint16_t> a = to_bf16(gx.data(), N * d), b = to_bf16(ge.data(), N * d), c = to_bf16(xc.data(), N * d);
        dgx = dup(a.data(), N * d), dge = dup(b.data(), N * d), dxc = dup(c.data(), N * d);
    }
    float *dWe = dup(We.data(), M * d), *dWd = dup(Wd.data(), M * d);
    float *oWe = dnew<float>(M * d), *obe = dnew<float>(M), *oWd = dnew<float>(M * d), *obd = dnew<float>(d);
    const size_t sb = sae_cuda_backward_scratch_bytes(N, dc.cap, k_aux ? da.cap : 0, d, M);
    void *scratch = dmalloc(sb);
    sae_cuda_backward(&dc, k_aux ? &da : NULL, act_t, dgx, k_aux ? dge : NULL, dxc, dWe, dWd, d, M, oWe, obe, oWd, obd,
                      scratch, sb, 0);
    std::vector<float> gWe((size_t)(M * d)), gbe((size_t)M), gWd((size_t)(M * d)), gbd((size_t)d);
    down(gWe.data(), oWe, M * d);
    down(gbe.data(), obe, M);
    down(gWd.data(), oWd, M * d);
    down(gbd.data(), obd, d);
    char shape[48], name[40];
    shape_str(shape, sizeof shape, N, d, M, k, k_aux);
    if (hot) strncat(shape, " hot", sizeof shape - strlen(shape) - 1);
    const char *tag = act_t == MUSAE_F32 ? "f32" : "bf16";
    // reduction lengths: entries per latent (<= N·2 with aux) for dW/db_enc, then N + M for db_dec
    const double n_lat = (double)(2 * N), n_dec = (double)(N + M) + n_lat;
    struct {
        const char *what;
        const float *g, *r;
        int64_t n;
        double len;
    } outs[4] = {{"dW_enc", gWe.data(), rWe.data(), M * d, n_lat + d},
                 {"db_enc", gbe.data(), rbe.data(), M, n_lat + d},
                 {"dW_dec", gWd.data(), rWd.data(), M * d, n_lat},
                 {"db_dec", gbd.data(), rbd.data(), d, n_dec + d}};
    std::vector<float> nWe, nbe, nWd, nbd; // naive bf16 reference
    if (act_t == MUSAE_BF16) {
        std::vector<float> a = round_bf16(gx.data(), N * d), b = round_bf16(ge.data(), N * d), c = round_bf16(xc.data(), N * d);
        nWe.resize((size_t)(M * d)), nbe.resize((size_t)M), nWd.resize((size_t)(M * d)), nbd.resize((size_t)d);
        sae_cpu_backward(&hc, k_aux ? &ha : NULL, a.data(), k_aux ? b.data() : NULL, c.data(), We.data(), Wd.data(), d, M,
                         nWe.data(), nbe.data(), nWd.data(), nbd.data(), scr.data());
    }
    const float *naive[4] = {nWe.data(), nbe.data(), nWd.data(), nbd.data()};
    for (int o = 0; o < 4; o++) {
        snprintf(name, sizeof name, "backward.%s.%s", tag, outs[o].what);
        const double e = max_abs_diff(outs[o].g, outs[o].r, outs[o].n), q = nmse(outs[o].g, outs[o].r, outs[o].n);
        if (act_t == MUSAE_F32) {
            const double tol = order_tol(outs[o].len);
            report(name, shape, "order", e, q, tol, 0, q <= tol);
        } else {
            const double tol = 2 * max_abs_diff(naive[o], outs[o].r, outs[o].n) +
                               sqrt(order_tol(outs[o].len)) * max_abs(outs[o].r, outs[o].n);
            report(name, shape, "FA", e, q, tol, 0, e <= tol);
        }
    }
    hcodes_free(&hc), hcodes_free(&ha);
    dfree_all("backward");
}

// ---- optimizer ---------------------------------------------------------------------------------------------------------------
static void test_adam(int64_t n, int offset) {
    std::vector<float> p((size_t)n), g((size_t)n), m((size_t)n), v((size_t)n);
    fill(p.data(), n, 71, 1.0f);
    fill(g.data(), n, 72, 1e-2f);
    fill(m.data(), n, 73, 1e-3f);
    fill(v.data(), n, 74, 1e-4f);
    for (float &x : v) x = x * x;
    sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 6.25e-10f, 3};
    // device copies at an offset of `offset` floats (breaks 16-byte alignment -> the scalar kernel)
    float *dp = dnew<float>(n + offset), *dg = dnew<float>(n + offset), *dm = dnew<float>(n + offset),
          *dv = dnew<float>(n + offset);
    uint16_t *d16 = dnew<uint16_t>(n + offset);
    CUDA_CHECK(cudaMemcpy(dp + offset, p.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dg + offset, g.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dm + offset, m.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(dv + offset, v.data(), 4 * (size_t)n, cudaMemcpyHostToDevice));
    sae_cpu_adam(p.data(), g.data(), m.data(), v.data(), n, &h);
    sae_cuda_adam(dp + offset, dg + offset, dm + offset, dv + offset, n, &h, d16 + offset, 0);
    std::vector<float> gp((size_t)n), gm((size_t)n), gv((size_t)n);
    std::vector<uint16_t> g16((size_t)n);
    down(gp.data(), dp + offset, n);
    down(gm.data(), dm + offset, n);
    down(gv.data(), dv + offset, n);
    down(g16.data(), d16 + offset, n);
    long long bad = word_mismatch(gp.data(), p.data(), n) + word_mismatch(gm.data(), m.data(), n) +
                    word_mismatch(gv.data(), v.data(), n);
    for (int64_t i = 0; i < n; i++) bad += g16[(size_t)i] != musae_f32_to_bf16(p[(size_t)i]);
    char shape[48];
    snprintf(shape, sizeof shape, "n%lld%s", (long long)n, offset ? " unaligned" : "");
    report("adam", shape, "exact", max_abs_diff(gp.data(), p.data(), n), 0, 0, bad, bad == 0);
    dfree_all("adam");
}

static void test_adam_decoder(int64_t M, int64_t d) {
    std::vector<float> W((size_t)(M * d)), g((size_t)(M * d)), m((size_t)(M * d)), v((size_t)(M * d));
    fill(W.data(), M * d, 81, 1.0f);
    sae_cpu_normalize_rows(W.data(), M, d);
    fill(g.data(), M * d, 82, 1e-2f);
    fill(m.data(), M * d, 83, 1e-3f);
    fill(v.data(), M * d, 84, 1e-3f);
    for (float &x : v) x = x * x;
    for (int64_t j = 0; j < d; j++) W[(size_t)(1 * d + j)] = 0.0f; // a zero row stays zero... until Adam moves it
    sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 6.25e-10f, 5};
    float *dW = dup(W.data(), M * d), *dg = dup(g.data(), M * d), *dm = dup(m.data(), M * d), *dv = dup(v.data(), M * d);
    uint16_t *d16 = dnew<uint16_t>(M * d);
    sae_cpu_adam_decoder(W.data(), g.data(), m.data(), v.data(), M, d, &h);
    sae_cuda_adam_decoder(dW, dg, dm, dv, M, d, &h, d16, 0);
    std::vector<float> gW((size_t)(M * d)), gg((size_t)(M * d)), gm((size_t)(M * d)), gv((size_t)(M * d));
    std::vector<uint16_t> g16((size_t)(M * d));
    down(gW.data(), dW, M * d);
    down(gg.data(), dg, M * d);
    down(gm.data(), dm, M * d);
    down(gv.data(), dv, M * d);
    down(g16.data(), d16, M * d);
    char shape[48];
    snprintf(shape, sizeof shape, "M%lld d%lld", (long long)M, (long long)d);
    // the row sums (<g,w>, ‖w‖²) differ from the CPU's by order; everything downstream inherits that
    const double tol = order_tol((double)d);
    const struct {
        const char *what;
        const float *a, *b;
    } o[4] = {{"adam_decoder.W", gW.data(), W.data()}, {"adam_decoder.g", gg.data(), g.data()},
              {"adam_decoder.m", gm.data(), m.data()}, {"adam_decoder.v", gv.data(), v.data()}};
    for (int i = 0; i < 4; i++) {
        const double q = nmse(o[i].a, o[i].b, M * d);
        report(o[i].what, shape, "order", max_abs_diff(o[i].a, o[i].b, M * d), q, tol, 0, q <= tol);
    }
    long long bad = 0;
    for (int64_t i = 0; i < M * d; i++) bad += g16[(size_t)i] != musae_f32_to_bf16(gW[(size_t)i]);
    report("adam_decoder.shadow", shape, "exact", 0, 0, 0, bad, bad == 0);
    // normalize_rows
    std::vector<float> X((size_t)(M * d));
    fill(X.data(), M * d, 85, 3.0f);
    for (int64_t j = 0; j < d; j++) X[(size_t)j] = 0.0f;
    float *dX = dup(X.data(), M * d);
    sae_cpu_normalize_rows(X.data(), M, d);
    sae_cuda_normalize_rows(dX, M, d, 0);
    std::vector<float> gX((size_t)(M * d));
    down(gX.data(), dX, M * d);
    const double q = nmse(gX.data(), X.data(), M * d);
    report("normalize_rows", shape, "order", max_abs_diff(gX.data(), X.data(), M * d), q, tol, 0, q <= tol);
    dfree_all("adam_decoder");
}

// ---- helpers: centre (as sae_trainer_step) and bf16 copies ------------------------------------------------------------------
static void test_center(int64_t N, int64_t d) {
    std::vector<float> x((size_t)(N * d)), b((size_t)d), xs((size_t)(N * d)), xc((size_t)(N * d));
    fill(x.data(), N * d, 101, 3.0f);
    fill(b.data(), d, 102, 0.5f);
    const float s = 1.37f;
    for (int64_t r = 0; r < N; r++)
        for (int64_t j = 0; j < d; j++) {
            const float v = x[(size_t)(r * d + j)] * s;
            xs[(size_t)(r * d + j)] = v;
            xc[(size_t)(r * d + j)] = v - b[(size_t)j];
        }
    float *dx = dup(x.data(), N * d), *db = dup(b.data(), d), *dxs = dnew<float>(N * d), *dxc = dnew<float>(N * d);
    uint16_t *d16 = dnew<uint16_t>(N * d), *e16 = dnew<uint16_t>(N * d);
    sae_cuda_center(dx, s, db, N, d, dxs, dxc, d16, 0);
    sae_cuda_to_bf16(dx, N * d, e16, 0);
    std::vector<float> gs((size_t)(N * d)), gc((size_t)(N * d));
    std::vector<uint16_t> g16((size_t)(N * d)), h16((size_t)(N * d));
    down(gs.data(), dxs, N * d);
    down(gc.data(), dxc, N * d);
    down(g16.data(), d16, N * d);
    down(h16.data(), e16, N * d);
    long long bad = word_mismatch(gs.data(), xs.data(), N * d) + word_mismatch(gc.data(), xc.data(), N * d);
    for (int64_t i = 0; i < N * d; i++)
        bad += g16[(size_t)i] != musae_f32_to_bf16(xc[(size_t)i]) || h16[(size_t)i] != musae_f32_to_bf16(x[(size_t)i]);
    char shape[48];
    snprintf(shape, sizeof shape, "N%lld d%lld", (long long)N, (long long)d);
    report("center+to_bf16", shape, "exact", max_abs_diff(gc.data(), xc.data(), N * d), 0, 0, bad, bad == 0);
    dfree_all("center");
}

// ---- determinism: a whole bf16 training step twice from the same state ----------------------------------------------------
static void test_determinism(cublasHandle_t blas, int64_t N, int64_t d, int64_t M, int k, int k_aux) {
    std::vector<float> x((size_t)(N * d)), W((size_t)(M * d)), b((size_t)M), bd((size_t)d);
    fill(x.data(), N * d, 91, 1.0f);
    fill(W.data(), M * d, 92, 1.0f);
    sae_cpu_normalize_rows(W.data(), M, d);
    fill(b.data(), M, 93, 0.05f);
    fill(bd.data(), d, 94, 0.1f);
    std::vector<uint8_t> dead((size_t)M);
    for (int64_t i = 0; i < M; i++) dead[(size_t)i] = i % 7 == 0;
    const size_t s_enc = sae_cuda_encode_scratch_bytes(N, M, k, k_aux);
    const size_t s_bwd = sae_cuda_backward_scratch_bytes(N, N * k, N * k_aux, d, M);
    const size_t s_tv = sae_cuda_total_variance_scratch_bytes(N, d), s_loss = sae_cuda_loss_grad_scratch_bytes(N);
    std::vector<std::vector<char>> result[2];
    for (int run = 0; run < 2; run++) { // every buffer per run: dfree_all below frees them all
        uint8_t *ddead = dup(dead.data(), M);
        float *dx = dup(x.data(), N * d);
        float *We = dup(W.data(), M * d), *Wd = dup(W.data(), M * d), *be = dup(b.data(), M), *bdd = dup(bd.data(), d);
        float *gWe = dnew<float>(M * d), *gWd = dnew<float>(M * d), *gbe = dnew<float>(M), *gbd = dnew<float>(d);
        std::vector<float> zeros((size_t)(M * d), 0.0f);
        float *mWe = dup(zeros.data(), M * d), *vWe = dup(zeros.data(), M * d), *mWd = dup(zeros.data(), M * d),
              *vWd = dup(zeros.data(), M * d), *mbe = dup(zeros.data(), M), *vbe = dup(zeros.data(), M),
              *mbd = dup(zeros.data(), d), *vbd = dup(zeros.data(), d);
        uint16_t *We16 = dnew<uint16_t>(M * d), *Wd16 = dnew<uint16_t>(M * d), *xc16 = dnew<uint16_t>(N * d);
        uint16_t *gx16 = dnew<uint16_t>(N * d), *ge16 = dnew<uint16_t>(N * d);
        float *xs = dnew<float>(N * d), *xc = dnew<float>(N * d), *xh = dnew<float>(N * d), *eh = dnew<float>(N * d);
        float *gx = dnew<float>(N * d), *ge = dnew<float>(N * d);
        double *tv = dnew<double>(1), *fvu = dnew<double>(1), *aux = dnew<double>(1);
        sae_codes c = dcodes(N, N * k), a = dcodes(N, N * k_aux);
        void *se = dmalloc(s_enc), *sbw = dmalloc(s_bwd), *stv = dmalloc(s_tv), *sl = dmalloc(s_loss);
        sae_cuda_to_bf16(We, M * d, We16, 0);
        sae_cuda_to_bf16(Wd, M * d, Wd16, 0);
        for (int step = 1; step <= 2; step++) {
            sae_cuda_center(dx, 1.0f, bdd, N, d, xs, xc, xc16, 0);
            sae_cuda_encode(blas, MUSAE_BF16, xc16, We16, be, N, d, M, k, ddead, k_aux, &c, &a, NULL, se, s_enc, 0);
            sae_cuda_decode(&c, MUSAE_BF16, Wd16, bdd, d, xh, 0);
            sae_cuda_decode(&a, MUSAE_BF16, Wd16, NULL, d, eh, 0);
            sae_cuda_total_variance(xs, N, d, tv, stv, 0);
            sae_cuda_loss_grad(xs, xh, eh, N, d, tv, 1.0f / 32, gx, ge, gx16, ge16, fvu, aux, sl, 0);
            sae_cuda_backward(&c, &a, MUSAE_BF16, gx16, ge16, xc16, We, Wd, d, M, gWe, gbe, gWd, gbd, sbw, s_bwd, 0);
            sae_adam_hparams h = {1e-3f, 0.9f, 0.999f, 6.25e-10f, step};
            sae_cuda_adam(We, gWe, mWe, vWe, M * d, &h, We16, 0);
            sae_cuda_adam(be, gbe, mbe, vbe, M, &h, NULL, 0);
            sae_cuda_adam(bdd, gbd, mbd, vbd, d, &h, NULL, 0);
            sae_cuda_adam_decoder(Wd, gWd, mWd, vWd, M, d, &h, Wd16, 0);
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        auto grab = [&](const void *p, size_t bytes) {
            std::vector<char> h(bytes);
            CUDA_CHECK(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
            result[run].push_back(h);
        };
        int64_t nnz[2];
        down(&nnz[0], c.ptr + N, 1);
        down(&nnz[1], a.ptr + N, 1);
        grab(c.ptr, 8 * (size_t)(N + 1)), grab(c.idx, 4 * (size_t)nnz[0]), grab(c.val, 4 * (size_t)nnz[0]);
        grab(a.ptr, 8 * (size_t)(N + 1)), grab(a.idx, 4 * (size_t)nnz[1]), grab(a.val, 4 * (size_t)nnz[1]);
        grab(We, 4 * (size_t)(M * d)), grab(Wd, 4 * (size_t)(M * d)), grab(be, 4 * (size_t)M), grab(bdd, 4 * (size_t)d);
        grab(gWe, 4 * (size_t)(M * d)), grab(gWd, 4 * (size_t)(M * d)), grab(gbd, 4 * (size_t)d), grab(fvu, 8), grab(aux, 8);
        dfree_all("determinism");
    }
    long long bad = 0;
    for (size_t i = 0; i < result[0].size(); i++)
        bad += result[0][i].size() != result[1][i].size() ||
               memcmp(result[0][i].data(), result[1][i].data(), result[0][i].size()) != 0;
    char shape[48];
    shape_str(shape, sizeof shape, N, d, M, k, k_aux);
    report("determinism.step.bf16", shape, "exact", 0, 0, 0, bad, bad == 0);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--small")) g_small = 1;
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("%s", why);
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s (sm_%d%d, %d SMs)%s\n", prop.name, prop.major, prop.minor, prop.multiProcessorCount,
           g_small ? ", --small" : "");
    cublasHandle_t blas;
    CUBLAS_CHECK(cublasCreate(&blas));

    // encode: odd shapes; k = 7 with AuxK over every third latent; many tiles (small scratch); large k
    const enc_case enc_cases[] = {
        {37, 19, 1100, 7, 5, 0},   {37, 19, 1100, 7, 5, 1},   {301, 67, 5000, 33, 300, 0},
        {301, 67, 5000, 33, 0, 1}, {64, 40, 4096, 256, 0, 0}, {129, 24, 2051, 1, 2051, 1},
        {37, 19, 1100, 0, 5, 0}, // k = 0: AuxK only (the batch-top-k step's encode)
    };
    const int n_enc = g_small ? 2 : (int)(sizeof enc_cases / sizeof enc_cases[0]);
    for (int i = 0; i < n_enc; i++)
        for (int gt = 0; gt < 2; gt++) {
            const musae_dtype t = gt ? MUSAE_BF16 : MUSAE_F32;
            test_encode_exact(blas, enc_cases[i], t, 0);
            test_encode_exact(blas, enc_cases[i], t, 1);
            test_encode_random(blas, enc_cases[i], t);
        }
    // batch-top-k: ties (integers), random, take-all, none
    test_batch_topk(37, 1100, 37 * 7, 1);
    test_batch_topk(37, 1100, 37 * 7, 0);
    test_batch_topk(5, 100, 1000, 0);
    test_batch_topk(5, 100, 0, 1);
    if (!g_small) test_batch_topk(301, 5000, 301 * 33, 1);
    // decode: unaligned d, aligned d, two column vectors per thread (d > 2048), aligned and not
    test_decode(37, 19, 1100, 7);
    test_decode(64, 64, 512, 16);
    if (!g_small) {
        test_decode(33, 2304, 700, 33);
        test_decode(17, 2051, 300, 5);
    }
    test_loss(37, 19);
    if (!g_small) test_loss(1000, 2048);
    // backward: f32 and bf16 activations; AuxK; hot latents (> 256 entries: several chunks, partial slots)
    for (int at = 0; at < 2; at++) {
        const musae_dtype t = at ? MUSAE_BF16 : MUSAE_F32;
        test_backward(37, 19, 1100, 7, 5, t, 0);
        if (!g_small) {
            test_backward(600, 64, 3000, 12, 20, t, 1);
            test_backward(40, 2304, 500, 9, 0, t, 0);
        }
    }
    test_adam(1000, 0);
    test_adam(1001, 1);
    test_adam_decoder(37, 19);
    if (!g_small) {
        test_adam_decoder(300, 2048);
        test_adam_decoder(20, 8192);
    }
    test_center(37, 19);
    test_determinism(blas, g_small ? 64 : 512, 64, g_small ? 1024 : 4096, 16, 24);

    CUBLAS_CHECK(cublasDestroy(blas));
    print_table();
    TEST_END();
}
