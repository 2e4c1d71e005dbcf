/* CUDA op table vs the CPU table, op by op (test-backend-ops style), plus the benchmark mode.
 *
 *   test_ops_gpu                      every op, every dispatch branch; prints one row per case
 *   test_ops_gpu -o attention         one op (names as in the table: gemm, linear, linear_bf16w, f32_to_bf16,
 *                                     layernorm, add_layernorm, rmsnorm, gelu, gelu_tanh, relu, elu, add, mul,
 *                                     embedding, add_rows, attention, conv1d, conv_transpose1d, lstm)
 *   test_ops_gpu --quick              small shapes only (what the compute-sanitizer runs use)
 *   test_ops_gpu --sanitize memcheck  re-runs itself (--quick) under compute-sanitizer --tool memcheck|racecheck
 *   test_ops_gpu perf [-o op]         timings, not a test: cold-L2 median µs, GB/s and TFLOP/s per op
 *                                     (test_ops_gpu_perf.cu)
 * Exit 0 = all passed, 1 = a failure, 77 = skipped (no GPU, or no compute-sanitizer for --sanitize).
 *
 * Every case draws fresh random inputs (Philox, fixed seed), runs the CPU table and the CUDA table on the
 * same inputs, and compares. Outputs are poisoned first (0xFF bytes = NaN) unless the op reads them, so an
 * element the GPU never wrote fails; 64 guard bytes after every output must come back byte-identical.
 *
 * Tolerance rules (u = 2⁻²⁴, fp32 unit roundoff; NMSE = Σ(gpu − cpu)² / Σ cpu² over finite references):
 *   exact      bitwise equal (NaN matches any NaN): ops whose every output is one correctly rounded fp32
 *              operation on both sides (relu, add, mul, embedding, add_rows, f32_to_bf16, add_layernorm's x).
 *   ulp        NMSE <= (64u)² ≈ 1.5e-11: transcendental elementwise ops (erff/tanhf/expm1f within a few ulps
 *              of glibc / the CPU's polynomial, 64 ulps of headroom).
 *   sum(K)     NMSE <= max((64u)², 64·K·u²·κ²): an fp32 reduction of length K has relative error ~ sqrt(K)·u
 *              on each side (NMSE ~ K·u²/6 for a sequential sum), so 64·K·u² leaves > 100x headroom while a
 *              TF32 GEMM (NMSE ~ 1e-7) fails by orders of magnitude. κ = 1 + |mean|/std of a norm's rows
 *              (the cancellation in x − mean). gemm/linear/conv: K = reduction length; attention: K = dh + tk;
 *              norms: K = dim; LSTM: K = (d_in + hidden)·t² (error carried through t steps).
 *   FA         bf16 (linear_bf16w): FlashAttention's rule. ref = CPU with bf16 weights and fp32 x; naive = CPU
 *              with x rounded to bf16 too (what a bf16 GEMM computes); pass when
 *              max|gpu − ref| <= 2·max|naive − ref| + atol, atol = 2·max|((ref + 0.3) − 0.3) − ref| (fp32
 *              rounding at the output's magnitude).
 * A non-finite mismatch (NaN/Inf on one side only, or Inf of another sign) fails under every rule. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "host/core/dtype.h"
#include "host/core/philox.h"
#include "kernels/cuda/conv1d.cuh"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/layernorm.cuh"
#include "kernels/cuda/linear_bf16w.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/cuda/rmsnorm.cuh"
#include "kernels/ops.h"
#include "test.h"
#include "test_ops_gpu.h"

#define GUARD 64
static const double U32 = 5.9604644775390625e-08; /* 2^-24 */
static const double TOL_ULP = (64 * U32) * (64 * U32);

const musae_ops *G;        /* the table under test (test_ops_gpu.h) */
static const musae_ops *C; /* the reference */
static const char *g_only = NULL;
static int g_quick = 0;
static uint64_t g_draw = 0;
static int g_rows = 0;

// ---- inputs ------------------------------------------------------------------------------------------------

static float unif(float lo, float hi) {
    musae_u32x4 w = musae_philox(0x5eed, 11, g_draw / 4);
    float u = musae_u32_to_unit(w.v[g_draw % 4]);
    g_draw++;
    return lo + (hi - lo) * u;
}
std::vector<float> rnd(int64_t n, float lo, float hi) {
    std::vector<float> v((size_t)(n > 0 ? n : 0));
    for (auto &x : v) x = unif(lo, hi);
    return v;
}

// ---- device buffers with guards ---------------------------------------------------------------------------

static uint8_t guard_byte(size_t i) { return (uint8_t)(0xA5u ^ (i * 37u)); }

/* A device buffer of `bytes` payload + GUARD guard bytes. Payload = init, or 0xFF (NaN) poison if NULL. */
void *dnew(const void *init, size_t bytes) {
    std::vector<uint8_t> h(bytes + GUARD);
    if (init) memcpy(h.data(), init, bytes);
    else memset(h.data(), 0xFF, bytes);
    for (size_t i = 0; i < GUARD; i++) h[bytes + i] = guard_byte(i);
    void *d = G->alloc(bytes + GUARD);
    G->upload(d, h.data(), bytes + GUARD);
    return d;
}

/* Downloads the payload; returns whether the guard after it is intact. */
static bool dget(void *host, const void *d, size_t bytes) {
    std::vector<uint8_t> h(bytes + GUARD);
    G->sync();
    G->download(h.data(), d, bytes + GUARD);
    memcpy(host, h.data(), bytes);
    for (size_t i = 0; i < GUARD; i++)
        if (h[bytes + i] != guard_byte(i)) return false;
    return true;
}

// ---- comparison and the report table ------------------------------------------------------------------------

typedef enum { R_EXACT, R_NMSE, R_FA } rule_kind;

static bool nonfinite_mismatch(float r, float g) {
    if (isfinite(r) && isfinite(g)) return false;
    if (isnan(r) || isnan(g)) return !(isnan(r) && isnan(g));
    return r != g; /* infinities: same sign required */
}

static void print_header(void) {
    printf("%-16s %-58s %9s %10s %10s %10s %-10s %-6s %s\n", "op", "case", "n", "max_abs", "metric", "tolerance",
           "rule", "guard", "result");
}

static void row(const char *op, const char *cas, int64_t n, double maxabs, double metric, double tol,
                const char *rule, int nonfinite, bool guard_ok, bool pass) {
    if (g_rows++ % 40 == 0) print_header();
    printf("%-16s %-58.58s %9lld %10.3g %10.3g %10.3g %-10s %-6s %s", op, cas, (long long)n, maxabs, metric, tol, rule,
           guard_ok ? "ok" : "BROKEN", pass ? "pass" : "FAIL");
    if (nonfinite) printf("  (%d non-finite mismatches)", nonfinite);
    printf("\n");
    CHECK(pass, "%s: %s", op, cas);
}

/* Compares n floats of the GPU result against the CPU reference under one rule (R_EXACT or R_NMSE). */
static void compare(const char *op, const char *cas, const float *ref, const float *got, int64_t n, rule_kind rk,
                    double tol, const char *rule, bool guard_ok) {
    double num = 0, den = 0, mx = 0;
    int nonfinite = 0;
    bool exact = true;
    for (int64_t i = 0; i < n; i++) {
        const float r = ref[i], g = got[i];
        if (nonfinite_mismatch(r, g)) nonfinite++;
        if (!(r == g && signbit(r) == signbit(g)) && !(isnan(r) && isnan(g))) exact = false;
        if (!isfinite(r) || !isfinite(g)) continue;
        const double d = (double)g - (double)r;
        num += d * d, den += (double)r * r, mx = fmax(mx, fabs(d));
    }
    const double nmse = den > 0 ? num / den : num;
    bool pass = guard_ok && nonfinite == 0;
    if (rk == R_EXACT) pass = pass && exact;
    else pass = pass && nmse <= tol;
    row(op, cas, n, mx, rk == R_EXACT ? (exact ? 0.0 : 1.0) : nmse, tol, rule, nonfinite, guard_ok, pass);
}

static double tol_sum(double K, double kappa) {
    const double t = 64.0 * K * U32 * U32 * kappa * kappa;
    return t > TOL_ULP ? t : TOL_ULP;
}

bool want(const char *op) { return !g_only || strcmp(g_only, op) == 0; }

// ---- gemm / linear -----------------------------------------------------------------------------------------

static void case_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t pad, float alpha, float beta,
                      int misalign) {
    const int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    const int64_t na = (ta ? k : m) * lda + misalign, nb = (tb ? n : k) * ldb + misalign, nc = m * ldc + misalign;
    auto a = rnd(na, -1, 1), b = rnd(nb, -1, 1), c = rnd(nc, -1, 1), ref = c;
    C->gemm(ta, tb, m, n, k, alpha, a.data() + misalign, lda, b.data() + misalign, ldb, beta, ref.data() + misalign,
            ldc);
    float *da = dnew_v(a), *db = dnew_v(b), *dc = dnew_v(c);
    G->gemm(ta, tb, m, n, k, alpha, da + misalign, lda, db + misalign, ldb, beta, dc + misalign, ldc);
    std::vector<float> got((size_t)nc);
    bool ok = dget(got.data(), dc, (size_t)nc * 4);
    char cas[128];
    snprintf(cas, sizeof cas, "%c%c m%lld n%lld k%lld ld+%lld a%.2g b%.2g%s", ta ? 'T' : 'N', tb ? 'T' : 'N',
             (long long)m, (long long)n, (long long)k, (long long)pad, alpha, beta, misalign ? " misaligned" : "");
    compare("gemm", cas, ref.data(), got.data(), nc, R_NMSE, tol_sum((double)(k > 0 ? k : 1), 1), "sum(K)", ok);
    G->free(da), G->free(db), G->free(dc);
}

static void case_linear(int64_t m, int64_t n, int64_t k, int bias, float beta) {
    auto x = rnd(m * k, -1, 1), w = rnd(n * k, -0.5f, 0.5f), bv = rnd(n, -0.5f, 0.5f), y = rnd(m * n, -1, 1);
    auto ref = y;
    C->linear(ref.data(), x.data(), w.data(), bias ? bv.data() : NULL, m, n, k, beta);
    float *dx = dnew_v(x), *dw = dnew_v(w), *db = dnew_v(bv), *dy = beta != 0 ? dnew_v(y) : (float *)dnew(NULL, y.size() * 4);
    G->linear(dy, dx, dw, bias ? db : NULL, m, n, k, beta);
    std::vector<float> got(y.size());
    bool ok = dget(got.data(), dy, got.size() * 4);
    char cas[128];
    snprintf(cas, sizeof cas, "m%lld n%lld k%lld bias %d beta %g", (long long)m, (long long)n, (long long)k, bias, beta);
    compare("linear", cas, ref.data(), got.data(), m * n, R_NMSE, tol_sum((double)k, 1), "sum(K)", ok);
    G->free(dx), G->free(dw), G->free(db), G->free(dy);
}

std::vector<uint16_t> to_bf16(const std::vector<float> &v) {
    std::vector<uint16_t> o(v.size());
    C->f32_to_bf16(o.data(), v.data(), (int64_t)v.size());
    return o;
}

/* branch: which dispatch branch the shape selects (for the report): "gemv16", "gemv1", "lt". */
static void case_linear_bf16w(int64_t m, int64_t n, int64_t k, int bias, float beta, int misalign, const char *branch) {
    auto xa = rnd(m * k + misalign, -1, 1), w = rnd(n * k, -0.5f, 0.5f), bv = rnd(n, -0.5f, 0.5f), y = rnd(m * n, -1, 1);
    auto wb = to_bf16(w);
    std::vector<float> x(xa.begin() + misalign, xa.end());
    std::vector<float> xr(x.size()); /* x rounded to bf16: what a bf16 GEMM multiplies */
    for (size_t i = 0; i < x.size(); i++) xr[i] = musae_bf16_to_f32(musae_f32_to_bf16(x[i]));
    auto ref = y, naive = y;
    C->linear_bf16w(ref.data(), x.data(), wb.data(), bias ? bv.data() : NULL, m, n, k, beta);
    C->linear_bf16w(naive.data(), xr.data(), wb.data(), bias ? bv.data() : NULL, m, n, k, beta);
    float *dx = dnew_v(xa), *db = dnew_v(bv), *dy = beta != 0 ? dnew_v(y) : (float *)dnew(NULL, y.size() * 4);
    uint16_t *dw = dnew_v(wb);
    G->linear_bf16w(dy, dx + misalign, dw, bias ? db : NULL, m, n, k, beta);
    std::vector<float> got(y.size());
    bool ok = dget(got.data(), dy, got.size() * 4);
    double err = 0, err_naive = 0, atol = 0;
    int nonfinite = 0;
    for (size_t i = 0; i < got.size(); i++) {
        if (nonfinite_mismatch(ref[i], got[i])) nonfinite++;
        err = fmax(err, fabs((double)got[i] - ref[i]));
        err_naive = fmax(err_naive, fabs((double)naive[i] - ref[i]));
        volatile float t = ref[i] + 0.3f; /* volatile: the rounding must happen in fp32 */
        volatile float t2 = t - 0.3f;
        atol = fmax(atol, fabs((double)t2 - ref[i]));
    }
    const double bound = 2 * err_naive + 2 * atol;
    char cas[128];
    snprintf(cas, sizeof cas, "%s m%lld n%lld k%lld bias %d beta %g%s (naive err %.3g)", branch, (long long)m,
             (long long)n, (long long)k, bias, beta, misalign ? " misaligned" : "", err_naive);
    const bool pass = ok && nonfinite == 0 && err <= bound && !isnan(err);
    row("linear_bf16w", cas, m * n, err, err, bound, "FA", nonfinite, ok, pass);
    G->free(dx), G->free(dw), G->free(db), G->free(dy);
}

static void case_f32_to_bf16(int64_t n, int misalign) {
    auto x = rnd(n + misalign, -3, 3);
    const uint32_t special[] = {0x7fc00000u, 0xffc00001u, 0x7f800001u, 0x7f800000u, 0xff800000u, 0x00000000u,
                                0x80000000u, 0x3f808000u, 0x3f818000u, 0x7f7fffffu, 0x00000001u, 0x807fffffu,
                                0x3f80ffffu, 0x477fe000u};
    for (size_t i = 0; i < sizeof special / sizeof special[0] && i + misalign < x.size(); i++)
        x[i + misalign] = musae_bits_f32(special[i]);
    std::vector<uint16_t> ref((size_t)n), got((size_t)n);
    C->f32_to_bf16(ref.data(), x.data() + misalign, n);
    float *dx = dnew_v(x);
    uint16_t *dy = (uint16_t *)dnew(NULL, (size_t)n * 2 + 2 * misalign);
    G->f32_to_bf16(dy + misalign, dx + misalign, n);
    std::vector<uint16_t> all((size_t)n + misalign);
    bool ok = dget(all.data(), dy, all.size() * 2);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += all[(size_t)(i + misalign)] != ref[(size_t)i];
    char cas[128];
    snprintf(cas, sizeof cas, "n%lld incl. NaN/Inf/ties/subnormals%s", (long long)n, misalign ? " misaligned" : "");
    row("f32_to_bf16", cas, n, bad, bad, 0, "exact", 0, ok, ok && bad == 0);
    G->free(dx), G->free(dy);
}

// ---- norms -------------------------------------------------------------------------------------------------

/* κ = 1 + max over rows of |mean| / std (the cancellation factor of x − mean); 1 for RMS norm. */
static double norm_kappa(const std::vector<float> &x, int64_t rows, int64_t dim, int rms) {
    if (rms) return 1;
    double kmax = 1;
    for (int64_t r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int64_t i = 0; i < dim; i++) m += x[(size_t)(r * dim + i)];
        m /= (double)dim;
        for (int64_t i = 0; i < dim; i++) v += (x[(size_t)(r * dim + i)] - m) * (x[(size_t)(r * dim + i)] - m);
        const double sd = sqrt(v / (double)dim);
        if (sd > 0) kmax = fmax(kmax, 1 + fabs(m) / sd);
    }
    return kmax;
}

static void case_norm(int rms, int64_t rows, int64_t dim, int alias, int bias) {
    auto x = rnd(rows * dim, -1, 5), w = rnd(dim, -1.5f, 1.5f), b = rnd(dim, -0.5f, 0.5f);
    const float eps = rms ? 1e-6f : 1e-5f;
    std::vector<float> ref(x.size());
    if (rms) C->rmsnorm(ref.data(), x.data(), w.data(), rows, dim, eps);
    else C->layernorm(ref.data(), x.data(), w.data(), bias ? b.data() : NULL, rows, dim, eps);
    float *dx = dnew_v(x), *dw = dnew_v(w), *db = dnew_v(b);
    float *dy = alias ? dx : (float *)dnew(NULL, x.size() * 4);
    if (rms) G->rmsnorm(dy, dx, dw, rows, dim, eps);
    else G->layernorm(dy, dx, dw, bias ? db : NULL, rows, dim, eps);
    std::vector<float> got(x.size());
    bool ok = dget(got.data(), dy, got.size() * 4);
    const int64_t block_rows = rms ? RMSNORM_BLOCK_ROWS : LAYERNORM_BLOCK_ROWS;
    char cas[128];
    snprintf(cas, sizeof cas, "%s rows %lld dim %lld%s%s", rows < block_rows ? "block/row" : "warp/row",
             (long long)rows, (long long)dim, alias ? " in place" : "", !rms && !bias ? " no bias" : "");
    compare(rms ? "rmsnorm" : "layernorm", cas, ref.data(), got.data(), rows * dim, R_NMSE,
            tol_sum((double)dim, norm_kappa(x, rows, dim, rms)), "sum(dim)k", ok);
    if (!alias) G->free(dy);
    G->free(dx), G->free(dw), G->free(db);
}

static void case_add_layernorm(int64_t rows, int64_t dim, int bias) {
    auto x = rnd(rows * dim, -1, 3), res = rnd(rows * dim, -1, 1), w = rnd(dim, -1.5f, 1.5f), b = rnd(dim, -0.5f, 0.5f);
    auto xref = x;
    std::vector<float> ref(x.size());
    C->add_layernorm(xref.data(), res.data(), ref.data(), w.data(), bias ? b.data() : NULL, rows, dim, 1e-5f);
    float *dx = dnew_v(x), *dr = dnew_v(res), *dw = dnew_v(w), *db = dnew_v(b), *dy = (float *)dnew(NULL, x.size() * 4);
    G->add_layernorm(dx, dr, dy, dw, bias ? db : NULL, rows, dim, 1e-5f);
    std::vector<float> gx(x.size()), gy(x.size());
    bool okx = dget(gx.data(), dx, gx.size() * 4), oky = dget(gy.data(), dy, gy.size() * 4);
    char cas[128];
    snprintf(cas, sizeof cas, "%s rows %lld dim %lld%s: x += res", rows < LAYERNORM_BLOCK_ROWS ? "block/row" : "warp/row",
             (long long)rows, (long long)dim, bias ? "" : " no bias");
    compare("add_layernorm", cas, xref.data(), gx.data(), rows * dim, R_EXACT, 0, "exact", okx);
    snprintf(cas, sizeof cas, "%s rows %lld dim %lld%s: out", rows < LAYERNORM_BLOCK_ROWS ? "block/row" : "warp/row",
             (long long)rows, (long long)dim, bias ? "" : " no bias");
    compare("add_layernorm", cas, ref.data(), gy.data(), rows * dim, R_NMSE,
            tol_sum((double)dim, norm_kappa(xref, rows, dim, 0)), "sum(dim)k", oky);
    G->free(dx), G->free(dr), G->free(dw), G->free(db), G->free(dy);
}

// ---- elementwise -------------------------------------------------------------------------------------------

typedef enum { E_GELU, E_GELU_TANH, E_RELU, E_ELU, E_ADD, E_MUL, E_COUNT } elem_op;
static const char *k_elem_name[E_COUNT] = {"gelu", "gelu_tanh", "relu", "elu", "add", "mul"};

static void elem_call(const musae_ops *o, elem_op op, float *out, const float *a, const float *b, int64_t n) {
    switch (op) {
    case E_GELU: o->gelu(out, a, n); break;
    case E_GELU_TANH: o->gelu_tanh(out, a, n); break;
    case E_RELU: o->relu(out, a, n); break;
    case E_ELU: o->elu(out, a, n); break;
    case E_ADD: o->add(out, a, b, n); break;
    case E_MUL: o->mul(out, a, b, n); break;
    default: break;
    }
}

/* offset 1 moves every pointer off 16-byte alignment: the scalar kernel instead of the float4 one. */
static void case_elem(elem_op op, int64_t n, int alias, int offset) {
    auto a = rnd(n + offset, -6, 6), b = rnd(n + offset, -3, 3);
    const uint32_t special[] = {0x7fc00000u, 0x7f800000u, 0xff800000u, 0x80000000u, 0x00000000u,
                                0x42b00000u /* 88 */, 0xc2b00000u /* -88 */, 0x00000123u /* subnormal */};
    for (size_t i = 0; i < sizeof special / sizeof special[0] && (int64_t)i < n; i++)
        a[(size_t)(offset + (int64_t)i * 3 % n)] = musae_bits_f32(special[i]);
    std::vector<float> ref((size_t)n);
    elem_call(C, op, ref.data(), a.data() + offset, b.data() + offset, n);
    float *da = dnew_v(a), *db = dnew_v(b);
    float *dout = alias ? da : (float *)dnew(NULL, a.size() * 4);
    elem_call(G, op, dout + offset, da + offset, db + offset, n);
    std::vector<float> got(a.size());
    bool ok = dget(got.data(), dout, got.size() * 4);
    char cas[128];
    snprintf(cas, sizeof cas, "%s n %lld%s (specials)", offset ? "scalar" : "float4", (long long)n,
             alias ? " in place" : "");
    const bool exact = op == E_RELU || op == E_ADD || op == E_MUL;
    compare(k_elem_name[op], cas, ref.data(), got.data() + offset, n, exact ? R_EXACT : R_NMSE, exact ? 0 : TOL_ULP,
            exact ? "exact" : "ulp", ok);
    if (!alias) G->free(dout);
    G->free(da), G->free(db);
}

static void case_embedding(int64_t rows, int64_t dim, int64_t n, int acc) {
    auto table = rnd(rows * dim, -1, 1), init = rnd(n * dim, -1, 1);
    std::vector<int64_t> ids((size_t)n);
    for (int64_t r = 0; r < n; r++) ids[(size_t)r] = (r * 7919 + 3) % rows;
    ids[0] = rows - 1;
    auto ref = init;
    C->embedding(ref.data(), table.data(), rows, dim, ids.data(), n, acc);
    float *dt = dnew_v(table), *dout = acc ? dnew_v(init) : (float *)dnew(NULL, init.size() * 4);
    int64_t *di = dnew_v(ids);
    G->embedding(dout, dt, rows, dim, di, n, acc);
    std::vector<float> got(init.size());
    bool ok = dget(got.data(), dout, got.size() * 4);
    char cas[128];
    snprintf(cas, sizeof cas, "table %lldx%lld, %lld ids, accumulate %d", (long long)rows, (long long)dim, (long long)n,
             acc);
    compare("embedding", cas, ref.data(), got.data(), n * dim, R_EXACT, 0, "exact", ok);
    G->free(dt), G->free(dout), G->free(di);
}

static void case_add_rows(int64_t rows, int64_t dim, float alpha) {
    auto x = rnd(rows * dim, -2, 2), v = rnd(dim, -1, 1), ref = x;
    C->add_rows(ref.data(), v.data(), alpha, rows, dim);
    float *dx = dnew_v(x), *dv = dnew_v(v);
    G->add_rows(dx, dv, alpha, rows, dim);
    std::vector<float> got(x.size());
    bool ok = dget(got.data(), dx, got.size() * 4);
    char cas[128];
    snprintf(cas, sizeof cas, "rows %lld dim %lld alpha %g", (long long)rows, (long long)dim, alpha);
    compare("add_rows", cas, ref.data(), got.data(), rows * dim, R_EXACT, 0, "exact", ok);
    G->free(dx), G->free(dv);
}

// ---- attention ---------------------------------------------------------------------------------------------

typedef struct {
    int64_t B, H, TQ, TK, D;
    int64_t row_pad; /* extra floats per token row (strided heads) */
    int64_t tk_cap;  /* KV cache capacity per batch item (>= TK; batch stride of k/v), 0 = TK */
    int causal, bias, mask;
    int64_t q_pos0;
    int mask_head;  /* the key mask also hides keys 0 .. mask_head-1 of batch item 0 (with causal: fully
                       masked early rows; else whole softmax chunks / decode groups of masked keys first) */
    int big;        /* skipped under --quick */
} attn_case;

/* path: 0 auto, 1 prefill, 2 decode (tq == 1); units for decode (0 automatic). */
static void run_attention(const attn_case &c, int path, int units) {
    const int64_t W = c.H * c.D + c.row_pad, cap = c.tk_cap > 0 ? c.tk_cap : c.TK, bias_tk = c.TK + 3;
    auto q = rnd(c.B * c.TQ * W, -1, 1), k = rnd(c.B * cap * W, -1, 1), v = rnd(c.B * cap * W, -1, 1);
    auto bias = rnd(c.H * c.TQ * bias_tk, -2, 2);
    std::vector<float> mask((size_t)(c.B * c.TK));
    for (int64_t b = 0; b < c.B; b++)
        for (int64_t j = 0; j < c.TK; j++)
            mask[(size_t)(b * c.TK + j)] = (float)((j + b) % 3 != 1 || j == 0);
    for (int64_t j = 0; j < c.mask_head && j < c.TK; j++) mask[(size_t)j] = 0;
    if (c.mask && c.B > 1)
        for (int64_t j = 0; j < c.TK; j++) mask[(size_t)((c.B - 1) * c.TK + j)] = 0; /* fully masked item: uniform */
    musae_attn_params p;
    memset(&p, 0, sizeof p);
    p.batch = c.B, p.heads = c.H, p.tq = c.TQ, p.tk = c.TK, p.dh = c.D;
    p.q_sb = c.TQ * W, p.q_st = W, p.k_sb = cap * W, p.k_st = W, p.v_sb = cap * W, p.v_st = W;
    p.o_sb = c.TQ * W, p.o_st = W;
    p.scale = 1.0f / sqrtf((float)c.D), p.causal = c.causal, p.q_pos0 = c.q_pos0, p.bias_tk = bias_tk;
    auto init = rnd(c.B * c.TQ * W, -1, 1), ref = init;
    musae_attn_params ph = p;
    ph.bias = c.bias ? bias.data() : NULL;
    ph.key_mask = c.mask ? mask.data() : NULL;
    C->attention(ref.data(), q.data(), k.data(), v.data(), &ph);

    float *dq = dnew_v(q), *dk = dnew_v(k), *dv = dnew_v(v), *dbias = dnew_v(bias), *dmask = dnew_v(mask);
    float *dout = dnew_v(init);
    p.bias = c.bias ? dbias : NULL;
    p.key_mask = c.mask ? dmask : NULL;
    musae_cuda_attention_force(path, units);
    G->attention(dout, dq, dk, dv, &p);
    musae_cuda_attention_force(0, 0);
    std::vector<float> got(init.size());
    bool ok = dget(got.data(), dout, got.size() * 4);
    const char *pname = path == 1 ? "prefill" : path == 2 ? "decode" : (c.TQ == 1 ? "auto=decode" : "auto=prefill");
    char cas[160], un[16] = "";
    if (path == 2 && units) snprintf(un, sizeof un, " u%d", units);
    snprintf(cas, sizeof cas, "%s%s b%lld h%lld tq%lld tk%lld d%lld%s%s%s%s%s pos0 %lld", pname, un, (long long)c.B,
             (long long)c.H, (long long)c.TQ, (long long)c.TK, (long long)c.D, c.row_pad ? " pad" : "",
             c.tk_cap ? " cache" : "", c.causal ? " causal" : "", c.bias ? " bias" : "",
             c.mask ? (c.mask_head ? " maskhead" : " mask") : "", (long long)c.q_pos0);
    compare("attention", cas, ref.data(), got.data(), (int64_t)got.size(), R_NMSE, tol_sum((double)(c.D + c.TK), 1),
            "sum(d+tk)", ok);
    G->free(dq), G->free(dk), G->free(dv), G->free(dbias), G->free(dmask), G->free(dout);
}

static void case_attention(const attn_case &c) {
    if (g_quick && c.big) return;
    run_attention(c, 0, 0);
    if (c.TQ == 1) { /* every dispatch branch: prefill kernel on a decode shape, decode with 1 block / many units */
        run_attention(c, 1, 0);
        run_attention(c, 2, 4);
        run_attention(c, 2, 64);
    }
}

// ---- EnCodec ops -------------------------------------------------------------------------------------------

static void case_conv1d(int64_t t_in, int64_t ci, int64_t co, int k, int stride, int dil, int pl, int pr, int reflect,
                        int acc, int bias, int elu = 0) {
    const int64_t keff = (int64_t)(k - 1) * dil + 1, t_out = (t_in + pl + pr - keff) / stride + 1;
    auto x = rnd(t_in * ci, -1, 1), w = rnd(co * k * ci, -0.5f, 0.5f), b = rnd(co, -0.2f, 0.2f), init = rnd(t_out * co, -1, 1);
    musae_conv1d_params p;
    memset(&p, 0, sizeof p);
    p.t_in = t_in, p.t_out = t_out, p.c_in = ci, p.c_out = co, p.k = k, p.stride = stride, p.dilation = dil;
    p.pad_left = pl, p.pad_right = pr, p.reflect = reflect, p.accumulate = acc, p.elu = elu;
    auto ref = init;
    C->conv1d(ref.data(), x.data(), w.data(), bias ? b.data() : NULL, &p);
    float *dx = dnew_v(x), *dw = dnew_v(w), *db = dnew_v(b), *dout = acc ? dnew_v(init) : (float *)dnew(NULL, init.size() * 4);
    G->conv1d(dout, dx, dw, bias ? db : NULL, &p);
    std::vector<float> got(init.size());
    bool ok = dget(got.data(), dout, got.size() * 4);
    char cas[160];
    snprintf(cas, sizeof cas, "%s t%lld ci%lld co%lld k%d s%d d%d pad %d/%d %s%s%s%s",
             ci * k <= CONV1D_DIRECT_MAX_CK ? "direct" : "gemm", (long long)t_in, (long long)ci, (long long)co, k,
             stride, dil, pl, pr, reflect ? "reflect" : "zeros", acc ? " acc" : "", bias ? "" : " nobias", elu ? " elu" : "");
    compare("conv1d", cas, ref.data(), got.data(), t_out * co, R_NMSE, tol_sum((double)(ci * k), 1), "sum(ci*k)", ok);
    G->free(dx), G->free(dw), G->free(db), G->free(dout);
}

static void case_convt1d(int64_t t_in, int64_t ci, int64_t co, int k, int stride, int crop_left, int64_t t_out,
                         int bias) {
    auto x = rnd(t_in * ci, -1, 1), w = rnd(ci * co * k, -0.5f, 0.5f), b = rnd(co, -0.2f, 0.2f);
    musae_convt1d_params p;
    memset(&p, 0, sizeof p);
    p.t_in = t_in, p.t_out = t_out, p.c_in = ci, p.c_out = co, p.k = k, p.stride = stride, p.crop_left = crop_left;
    std::vector<float> ref((size_t)(t_out * co));
    C->conv_transpose1d(ref.data(), x.data(), w.data(), bias ? b.data() : NULL, &p);
    float *dx = dnew_v(x), *dw = dnew_v(w), *db = dnew_v(b), *dout = (float *)dnew(NULL, ref.size() * 4);
    G->conv_transpose1d(dout, dx, dw, bias ? db : NULL, &p);
    std::vector<float> got(ref.size());
    bool ok = dget(got.data(), dout, got.size() * 4);
    char cas[160];
    snprintf(cas, sizeof cas, "t%lld ci%lld co%lld k%d s%d crop %d out %lld%s", (long long)t_in, (long long)ci,
             (long long)co, k, stride, crop_left, (long long)t_out, bias ? "" : " nobias");
    compare("conv_transpose1d", cas, ref.data(), got.data(), t_out * co, R_NMSE, tol_sum((double)(ci * k / stride), 1),
            "sum(ci*k/s)", ok);
    G->free(dx), G->free(dw), G->free(db), G->free(dout);
}

/* Two calls (t1 then t2 steps) carrying h and c through the state buffers. */
static void case_lstm(int64_t t1, int64_t t2, int64_t din, int64_t hid) {
    const int64_t G4 = 4 * hid, T = t1 + t2;
    auto x = rnd(T * din, -1, 1), wih = rnd(G4 * din, -0.6f, 0.6f), whh = rnd(G4 * hid, -0.6f, 0.6f);
    auto bih = rnd(G4, -0.3f, 0.3f), bhh = rnd(G4, -0.3f, 0.3f), h0 = rnd(hid, -0.5f, 0.5f), c0 = rnd(hid, -0.5f, 0.5f);
    std::vector<float> ref((size_t)(T * hid)), hr = h0, cr = c0, work((size_t)(T * G4));
    C->lstm(ref.data(), x.data(), t1, din, hid, wih.data(), whh.data(), bih.data(), bhh.data(), hr.data(), cr.data(),
            work.data());
    C->lstm(ref.data() + t1 * hid, x.data() + t1 * din, t2, din, hid, wih.data(), whh.data(), bih.data(), bhh.data(),
            hr.data(), cr.data(), work.data());
    float *dx = dnew_v(x), *dwih = dnew_v(wih), *dwhh = dnew_v(whh), *dbih = dnew_v(bih), *dbhh = dnew_v(bhh);
    float *dh = dnew_v(h0), *dc = dnew_v(c0), *dout = (float *)dnew(NULL, ref.size() * 4);
    float *dwork = (float *)dnew(NULL, work.size() * 4);
    G->lstm(dout, dx, t1, din, hid, dwih, dwhh, dbih, dbhh, dh, dc, dwork);
    G->lstm(dout + t1 * hid, dx + t1 * din, t2, din, hid, dwih, dwhh, dbih, dbhh, dh, dc, dwork);
    std::vector<float> got(ref.size()), gh((size_t)hid), gc((size_t)hid), gw(work.size());
    bool ok = dget(got.data(), dout, got.size() * 4);
    bool okh = dget(gh.data(), dh, gh.size() * 4), okc = dget(gc.data(), dc, gc.size() * 4);
    bool okw = dget(gw.data(), dwork, gw.size() * 4);
    const double tol = tol_sum((double)((din + hid) * T * T), 1);
    char cas[128];
    snprintf(cas, sizeof cas, "%lld+%lld steps d_in %lld hidden %lld: out", (long long)t1, (long long)t2, (long long)din,
             (long long)hid);
    compare("lstm", cas, ref.data(), got.data(), T * hid, R_NMSE, tol, "sum(K)t^2", ok && okw);
    snprintf(cas, sizeof cas, "%lld+%lld steps d_in %lld hidden %lld: final h", (long long)t1, (long long)t2,
             (long long)din, (long long)hid);
    compare("lstm", cas, hr.data(), gh.data(), hid, R_NMSE, tol, "sum(K)t^2", okh);
    snprintf(cas, sizeof cas, "%lld+%lld steps d_in %lld hidden %lld: final c", (long long)t1, (long long)t2,
             (long long)din, (long long)hid);
    compare("lstm", cas, cr.data(), gc.data(), hid, R_NMSE, tol, "sum(K)t^2", okc);
    G->free(dx), G->free(dwih), G->free(dwhh), G->free(dbih), G->free(dbhh), G->free(dh), G->free(dc), G->free(dout);
    G->free(dwork);
}

// ---- the test plan -----------------------------------------------------------------------------------------

static void run_tests(void) {
    if (want("gemm")) {
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                case_gemm(ta, tb, 37, 29, 53, 0, 1.0f, 0.0f, 0);
                case_gemm(ta, tb, 37, 29, 53, 5, 0.7f, 0.3f, 0);
                case_gemm(ta, tb, 33, 17, 65, 1, 1.0f, 1.0f, 1); /* pointers 4 bytes off: alignment-aware plans */
            }
        case_gemm(0, 1, 1, 301, 77, 3, 1.0f, 1.0f, 0);
        case_gemm(0, 1, 3, 130, 129, 0, -0.5f, 0.0f, 0);
        case_gemm(1, 0, 65, 1, 33, 2, 2.0f, 1.0f, 0);
        case_gemm(0, 0, 130, 70, 1, 0, 1.0f, 1.0f, 0);
        case_gemm(0, 1, 5, 7, 0, 2, 1.0f, 0.5f, 0); /* k = 0: C = beta·C */
        case_gemm(0, 1, 5, 7, 0, 0, 1.0f, 0.0f, 0); /* k = 0, beta = 0: zeros */
        if (!g_quick) case_gemm(0, 1, 256, 512, 1024, 0, 1.0f, 0.0f, 0);
    }
    if (want("linear")) {
        const int64_t ms[] = {1, 2, 5, 67};
        for (int i = 0; i < 4; i++) {
            case_linear(ms[i], 97, 45, i % 2, 0.0f);
            case_linear(ms[i], 33, 160, (i + 1) % 2, 1.0f);
        }
        case_linear(2, 1031, 257, 1, 1.0f);
        if (!g_quick) case_linear(300, 1024, 1024, 1, 0.0f);
    }
    if (want("f32_to_bf16")) {
        case_f32_to_bf16(1001, 0);
        case_f32_to_bf16(37, 1);
    }
    if (want("linear_bf16w")) {
        const int64_t ms[] = {1, 2, 3, 8};
        for (int i = 0; i < 4; i++) case_linear_bf16w(ms[i], 300, 512, i % 2, (float)(i / 2), 0, "gemv16");
        case_linear_bf16w(2, 300, 509, 1, 1.0f, 0, "gemv1");   /* k % 8 != 0 */
        case_linear_bf16w(4, 130, 512, 0, 0.0f, 1, "gemv1");   /* x 4 bytes off 16-byte alignment */
        case_linear_bf16w(9, 300, 512, 1, 0.0f, 0, "lt");
        case_linear_bf16w(67, 257, 520, 0, 1.0f, 0, "lt");
        case_linear_bf16w(33, 64, 509, 1, 1.0f, 0, "lt");      /* odd k: unaligned bf16 rows */
        if (!g_quick) case_linear_bf16w(2, 4096, 2048, 0, 0.0f, 0, "gemv16");
        if (!g_quick) case_linear_bf16w(300, 1024, 1024, 1, 0.0f, 0, "lt");
    }
    if (want("layernorm")) {
        case_norm(0, 7, 33, 0, 1), case_norm(0, 5, 1024, 1, 1), case_norm(0, 3, 17, 0, 0);
        case_norm(0, 600, 33, 0, 1), case_norm(0, 513, 1024, 1, 0);
        if (!g_quick) case_norm(0, 2, 8192, 0, 1);
    }
    if (want("rmsnorm")) {
        case_norm(1, 7, 33, 0, 0), case_norm(1, 4, 768, 1, 0), case_norm(1, 600, 768, 0, 0), case_norm(1, 520, 5, 1, 0);
    }
    if (want("add_layernorm")) {
        case_add_layernorm(5, 1024, 1), case_add_layernorm(3, 37, 0), case_add_layernorm(600, 129, 1);
    }
    for (int op = 0; op < E_COUNT; op++) {
        if (!want(k_elem_name[op])) continue;
        case_elem((elem_op)op, 1001, 0, 0); /* float4 + tail of 1 */
        case_elem((elem_op)op, 4096, 1, 0); /* float4, no tail, in place */
        case_elem((elem_op)op, 37, 1, 1);   /* scalar, in place */
        case_elem((elem_op)op, 3, 0, 0);    /* only the tail */
        case_elem((elem_op)op, g_quick ? 7001 : 70001, 0, 1);
    }
    if (want("embedding")) {
        case_embedding(2049, 37, 29, 0), case_embedding(2049, 37, 29, 1), case_embedding(5, 1, 3, 1);
        case_embedding(300, 2048, 4, 1);
        if (!g_quick) case_embedding(3, 5, 70000, 1); /* more rows than gridDim.y */
    }
    if (want("add_rows")) {
        case_add_rows(5, 37, -0.3f), case_add_rows(1, 1024, 1.0f), case_add_rows(300, 300, 2.5f);
        if (!g_quick) case_add_rows(70000, 3, 1.5f); /* more rows than gridDim.y */
    }
    if (want("attention")) {
        std::vector<attn_case> ac = {
            // B  H  TQ   TK   D  pad cap causal bias mask pos0 head big
            {2, 3, 5, 5, 8, 0, 0, 1, 0, 0, 0, 0, 0},
            {1, 2, 70, 70, 16, 3, 0, 1, 0, 0, 0, 0, 0},       /* blocks of 64 + a tail block */
            {2, 2, 6, 19, 8, 1, 0, 1, 0, 0, 13, 0, 0},        /* a chunk of queries after 13 cached keys */
            {2, 4, 9, 11, 8, 0, 0, 0, 0, 1, 0, 0, 0},         /* cross-attention, a fully masked item */
            {2, 3, 13, 13, 8, 0, 0, 0, 1, 1, 0, 0, 0},        /* T5: bias + mask */
            {2, 12, 77, 77, 64, 0, 0, 0, 1, 1, 0, 0, 0},      /* T5-base shape */
            {2, 2, 130, 130, 8, 0, 0, 1, 0, 1, 0, 0, 0},      /* causal + mask: uniform rows, no key skipping */
            {2, 2, 40, 40, 24, 0, 0, 1, 0, 1, 0, 1, 0},       /* row 0 of item 0 sees only a masked key */
            {2, 2, 5, 60, 16, 0, 0, 0, 0, 1, 0, 20, 0},       /* a whole softmax chunk of masked keys first */
            {3, 2, 33, 50, 16, 0, 0, 0, 0, 1, 0, 0, 0},       /* masked keys in every item, a fully masked one */
            {1, 16, 200, 200, 64, 0, 0, 1, 0, 0, 0, 0, 1},    /* causal tile skipping */
            {1, 2, 65, 90, 128, 0, 0, 1, 0, 0, 25, 0, 0},     /* dh 128: > 48 KB shared memory */
            {1, 3, 20, 21, 100, 2, 0, 1, 1, 0, 1, 0, 0},      /* odd dh padded to 128 */
            {2, 2, 17, 23, 33, 0, 0, 0, 0, 0, 0, 0, 0},       /* odd dh padded to 64 */
            {1, 1, 3, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0},          /* dh 1 */
            // decode (tq = 1): auto, forced prefill, decode with 1 block and with 64 units
            {3, 2, 1, 23, 8, 0, 0, 1, 0, 0, 22, 0, 0},
            {2, 4, 1, 1500, 64, 0, 2048, 1, 0, 0, 1499, 0, 0}, /* KV cache: batch stride 2048 rows */
            {2, 4, 1, 100, 64, 0, 0, 1, 0, 0, 37, 0, 0},      /* causal horizon before tk */
            {3, 2, 1, 300, 64, 0, 0, 0, 0, 1, 0, 0, 0},       /* cross-attention, fully masked item */
            {3, 2, 1, 300, 64, 0, 0, 1, 0, 1, 150, 0, 0},     /* causal + mask: every key visited */
            {2, 2, 1, 77, 40, 3, 0, 0, 1, 1, 0, 0, 0},        /* bias + mask, strided rows */
            {1, 2, 1, 5, 128, 0, 0, 0, 0, 0, 0, 0, 0},        /* fewer keys than units */
            {2, 2, 1, 200, 16, 0, 0, 0, 0, 1, 0, 20, 0},      /* masked groups before real keys in a unit */
            {2, 32, 1, 1503, 64, 0, 0, 1, 0, 0, 1502, 0, 1},  /* musicgen-large step 1503, CFG batch */
        };
        for (const auto &c : ac) case_attention(c);
    }
    if (want("conv1d")) {
        case_conv1d(50, 3, 5, 7, 1, 1, 3, 3, 1, 0, 1), case_conv1d(50, 3, 5, 7, 1, 1, 3, 3, 0, 1, 1);
        case_conv1d(41, 8, 4, 3, 2, 3, 4, 2, 1, 0, 1), case_conv1d(9, 1, 6, 7, 1, 1, 3, 3, 1, 0, 0);
        case_conv1d(33, 16, 8, 1, 1, 1, 0, 0, 0, 1, 0), case_conv1d(20, 5, 7, 4, 4, 1, 0, 0, 0, 0, 1);
        /* GEMM path: c_in·k > 32 */
        case_conv1d(60, 16, 24, 7, 1, 1, 3, 3, 1, 0, 1), case_conv1d(61, 32, 8, 4, 2, 1, 1, 1, 0, 1, 1);
        case_conv1d(50, 12, 10, 3, 1, 3, 3, 3, 1, 0, 0), case_conv1d(64, 64, 64, 8, 4, 1, 2, 2, 1, 1, 1);
        case_conv1d(17, 40, 3, 3, 1, 1, 2, 0, 0, 0, 1);
        case_conv1d(50, 16, 8, 3, 1, 1, 1, 1, 1, 1, 1, 1); /* accumulate, then the ELU */
    }
    if (want("conv_transpose1d")) {
        case_convt1d(13, 6, 4, 16, 8, 4, 13 * 8, 1), case_convt1d(11, 5, 3, 10, 5, 3, 11 * 5, 1);
        case_convt1d(7, 4, 4, 4, 4, 0, 28, 0), case_convt1d(30, 64, 32, 16, 8, 4, 30 * 8 - 3, 1);
        case_convt1d(9, 3, 5, 3, 1, 1, 9, 1);
    }
    if (want("lstm")) {
        case_lstm(5, 4, 7, 6), case_lstm(1, 12, 16, 16), case_lstm(2, 3, 3, 5);
        if (!g_quick) case_lstm(30, 20, 64, 128);
    }
}

// ---- compute-sanitizer re-run ------------------------------------------------------------------------------

static const char *find_sanitizer(void) {
    static const char *cands[] = {getenv("COMPUTE_SANITIZER"),
#ifdef MUSAE_CUDA_BIN_DIR
                                  MUSAE_CUDA_BIN_DIR "/compute-sanitizer",
#endif
                                  "/usr/local/cuda/bin/compute-sanitizer",
                                  "/usr/local/cuda/compute-sanitizer/compute-sanitizer"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (cands[i] && access(cands[i], X_OK) == 0) return cands[i];
    return NULL;
}

static int run_sanitized(const char *tool, int argc, char **argv) {
    if (strcmp(tool, "memcheck") != 0 && strcmp(tool, "racecheck") != 0) {
        fprintf(stderr, "--sanitize takes memcheck or racecheck, not '%s'\n", tool);
        return 2;
    }
    const char *cs = find_sanitizer();
    if (!cs) TEST_SKIP("compute-sanitizer not found (set COMPUTE_SANITIZER, or install it under /usr/local/cuda/bin)");
    std::vector<const char *> args = {cs, "--tool", tool, "--error-exitcode", "1"};
    args.push_back("/proc/self/exe");
    args.push_back("--quick");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sanitize") == 0) {
            i++;
            continue;
        }
        args.push_back(argv[i]);
    }
    args.push_back(NULL);
    printf("running: %s --tool %s ... %s --quick\n", cs, tool, argv[0]);
    fflush(stdout);
    /* /proc/self/exe would name the sanitizer after execv: resolve it now */
    static char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        for (auto &a : args)
            if (a && strcmp(a, "/proc/self/exe") == 0) a = self;
    }
    execv(cs, (char *const *)args.data());
    perror("execv compute-sanitizer");
    return 1;
}

int main(int argc, char **argv) {
    int perf = 0;
    const char *sanitize = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) g_only = argv[++i];
        else if (strcmp(argv[i], "perf") == 0) perf = 1;
        else if (strcmp(argv[i], "--quick") == 0) g_quick = 1;
        else if (strcmp(argv[i], "--sanitize") == 0 && i + 1 < argc) sanitize = argv[++i];
        else {
            fprintf(stderr, "usage: %s [-o op] [--quick] [--sanitize memcheck|racecheck] [perf]\n", argv[0]);
            return 2;
        }
    }
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) TEST_SKIP("%s", why);
    if (sanitize) return run_sanitized(sanitize, argc, argv);
    G = musae_ops_cuda();
    C = musae_ops_cpu();
    if (!G) TEST_SKIP("musae_ops_cuda() returned NULL");
    if (perf) {
        run_perf();
        return 0;
    }
    run_tests();
    if (g_rows == 0) {
        fprintf(stderr, "no op matched '%s'\n", g_only ? g_only : "");
        return 2;
    }
    TEST_END();
}
