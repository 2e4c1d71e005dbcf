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
 * Rows here: encode, batch-top-k, decode, loss; the backward, optimizer, centring and determinism rows are
 * test_sae_gpu_step.cu's (this main runs them; the harness they share: test_sae_gpu.h).
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
#include "test_sae_gpu.h"

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

void report(const char *kernel, const char *shape, const char *rule, double max_abs, double nmse, double tol,
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

void *dmalloc(size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes + GUARD));
    CUDA_CHECK(cudaMemset(p, 0xff, bytes));                 // poison: NaN floats, -1 integers
    CUDA_CHECK(cudaMemset((char *)p + bytes, 0xa5, GUARD)); // guard
    g_allocs.push_back({p, bytes});
    return p;
}
// dnew, dup and down (typed buffers, uploads, downloads over dmalloc): test_sae_gpu.h
template <typename T>
static void poison(T *d, int64_t n) {
    CUDA_CHECK(cudaMemset(d, 0xff, sizeof(T) * (size_t)(n > 0 ? n : 1)));
}
// Checks every live allocation's guard and frees them all; returns the number of damaged guards.
int dfree_all(const char *what) {
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
void fill(float *x, int64_t n, uint64_t stream, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * urand(stream, (uint64_t)i);
}
static void fill_int(float *x, int64_t n, uint64_t stream, int lo, int hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (int)(musae_philox(13, stream, (uint64_t)i).v[1] % (uint32_t)(hi - lo + 1)));
}
std::vector<uint16_t> to_bf16(const float *x, int64_t n) {
    std::vector<uint16_t> o((size_t)n);
    for (int64_t i = 0; i < n; i++) o[(size_t)i] = musae_f32_to_bf16(x[i]);
    return o;
}
std::vector<float> round_bf16(const float *x, int64_t n) {
    std::vector<float> o((size_t)n);
    for (int64_t i = 0; i < n; i++) o[(size_t)i] = musae_bf16_to_f32(musae_f32_to_bf16(x[i]));
    return o;
}

double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d != d) return INFINITY;
        if (d > m) m = d;
    }
    return m;
}
double max_abs(const float *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs((double)a[i]) > m ? fabs((double)a[i]) : m;
    return m;
}
double nmse(const float *a, const float *ref, int64_t n) {
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)ref[i];
        if (d != d) return INFINITY;
        e += d * d;
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? e / r : e;
}
long long word_mismatch(const void *a, const void *b, int64_t words) {
    long long bad = 0;
    for (int64_t i = 0; i < words; i++) bad += memcmp((const char *)a + 4 * i, (const char *)b + 4 * i, 4) != 0;
    return bad;
}
double order_tol(double n) { return 16.0 * (n * U32) * (n * U32); }

// ---- codes on both sides -----------------------------------------------------------------------------------------------
sae_codes hcodes(int64_t rows, int64_t cap) {
    sae_codes c = {rows, cap, (int64_t *)calloc((size_t)rows + 1, 8), (int32_t *)calloc((size_t)cap + 1, 4),
                   (float *)calloc((size_t)cap + 1, 4)};
    return c;
}
void hcodes_free(sae_codes *c) {
    free(c->ptr);
    free(c->idx);
    free(c->val);
}
sae_codes dcodes(int64_t rows, int64_t cap) {
    sae_codes c = {rows, cap, dnew<int64_t>(rows + 1), dnew<int32_t>(cap), dnew<float>(cap)};
    return c;
}
sae_codes dcodes_up(const sae_codes *h, int64_t cap) {
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

void shape_str(char *s, size_t n, int64_t N, int64_t d, int64_t M, int k, int ka) {
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
sae_codes make_codes(int64_t N, int64_t d, int64_t M, int k, uint64_t seed, const uint8_t *dead, int hot) {
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
