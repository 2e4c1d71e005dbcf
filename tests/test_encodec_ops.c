/* The EnCodec ops of kernels/ops.h (conv1d, conv_transpose1d, lstm, elu) against plain loops that read
 * like the PyTorch definitions, on odd shapes that reach every path of the CPU kernels: interior rows and
 * padded edges, reflect and zero padding, strides above and below the kernel size, dilation, the tiny-c_in
 * im2col path, accumulate, state carried across calls. A sentinel after each output must stay intact.
 * cpu_lstm_batch (several sequences sharing the weights) is held to the bits of cpu_lstm on each alone. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "host/core/philox.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "test.h"

#define GUARD 16
static const float k_sentinel = 12345.0f;

static uint64_t g_ctr;
static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = (g_ctr++ + 1) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 31;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        x[i] = scale * ((float)(h >> 40) / (float)(1 << 24) * 2.0f - 1.0f);
    }
}

static float *alloc_out(int64_t n) {
    float *p = musae_xmalloc((size_t)(n + GUARD) * sizeof(float));
    for (int64_t i = 0; i < n + GUARD; i++) p[i] = k_sentinel;
    return p;
}

static int guard_ok(const float *p, int64_t n) {
    for (int64_t i = n; i < n + GUARD; i++)
        if (p[i] != k_sentinel) return 0;
    return 1;
}

/* torch.nn.functional.pad(mode="reflect" | "constant") then conv1d; w in PyTorch layout [co, ci, k]. */
static void ref_conv1d(float *out, const float *x, const float *w, const float *b, const musae_conv1d_params *p) {
    for (int64_t t = 0; t < p->t_out; t++)
        for (int64_t o = 0; o < p->c_out; o++) {
            double s = p->accumulate ? out[t * p->c_out + o] : 0;
            s += b ? b[o] : 0;
            for (int j = 0; j < p->k; j++) {
                int64_t r = t * p->stride + (int64_t)j * p->dilation - p->pad_left;
                if (r < 0 || r >= p->t_in) {
                    if (!p->reflect) continue;
                    r = r < 0 ? -r : 2 * (p->t_in - 1) - r;
                }
                for (int64_t i = 0; i < p->c_in; i++) s += (double)w[(o * p->c_in + i) * p->k + j] * x[r * p->c_in + i];
            }
            out[t * p->c_out + o] = (float)s;
        }
}

static void test_conv1d(int64_t t_in, int64_t ci, int64_t co, int k, int s, int d, int pl, int pr, int reflect,
                        int acc, int with_bias, int elu) {
    const int64_t keff = (int64_t)(k - 1) * d + 1, t_out = (t_in + pl + pr - keff) / s + 1;
    float *x = musae_xmalloc((size_t)(t_in * ci) * sizeof(float)), *w = musae_xmalloc((size_t)(co * ci * k) * sizeof(float));
    float *wt = musae_xmalloc((size_t)(co * ci * k) * sizeof(float)), *b = musae_xmalloc((size_t)co * sizeof(float));
    fill(x, t_in * ci, 1.0f);
    fill(w, co * ci * k, 0.5f);
    fill(b, co, 0.2f);
    for (int64_t o = 0; o < co; o++)
        for (int64_t i = 0; i < ci; i++)
            for (int j = 0; j < k; j++) wt[(o * k + j) * ci + i] = w[(o * ci + i) * k + j];
    float *ref = musae_xmalloc((size_t)(t_out * co) * sizeof(float)), *out = alloc_out(t_out * co);
    fill(ref, t_out * co, 1.0f);
    memcpy(out, ref, (size_t)(t_out * co) * sizeof(float));
    musae_conv1d_params p = {.t_in = t_in, .t_out = t_out, .c_in = ci, .c_out = co, .k = k, .stride = s,
                             .dilation = d, .pad_left = pl, .pad_right = pr, .reflect = reflect, .accumulate = acc, .elu = elu};
    ref_conv1d(ref, x, w, with_bias ? b : NULL, &p);
    if (elu)
        for (int64_t i = 0; i < t_out * co; i++) ref[i] = ref[i] > 0 ? ref[i] : (float)expm1((double)ref[i]);
    cpu_conv1d(out, x, wt, with_bias ? b : NULL, &p);
    double e = test_max_abs_diff(out, ref, (size_t)(t_out * co));
    CHECK(e <= 1e-4 && guard_ok(out, t_out * co),
          "conv1d t_in %lld ci %lld co %lld k %d s %d d %d pad %d/%d reflect %d acc %d elu %d: max|d| %.3g, guard %d",
          (long long)t_in, (long long)ci, (long long)co, k, s, d, pl, pr, reflect, acc, elu, e, guard_ok(out, t_out * co));
    free(x), free(w), free(wt), free(b), free(ref), free(out);
}

static void ref_convt(float *out, const float *x, const float *W, const float *b, const musae_convt1d_params *p) {
    const int64_t full = (p->t_in - 1) * p->stride + p->k;
    double *f = calloc((size_t)(full * p->c_out), sizeof(double));
    for (int64_t q = 0; q < p->t_in; q++)
        for (int64_t i = 0; i < p->c_in; i++)
            for (int64_t o = 0; o < p->c_out; o++)
                for (int j = 0; j < p->k; j++)
                    f[(q * p->stride + j) * p->c_out + o] += (double)x[q * p->c_in + i] * W[(i * p->c_out + o) * p->k + j];
    for (int64_t t = 0; t < p->t_out; t++)
        for (int64_t o = 0; o < p->c_out; o++) out[t * p->c_out + o] = (float)(f[(t + p->crop_left) * p->c_out + o] + (b ? b[o] : 0));
    free(f);
}

static void test_convt(int64_t t_in, int64_t ci, int64_t co, int k, int s, int crop_left, int64_t t_out) {
    const int J = k / s;
    float *x = musae_xmalloc((size_t)(t_in * ci) * sizeof(float)), *W = musae_xmalloc((size_t)(co * ci * k) * sizeof(float));
    float *wp = musae_xmalloc((size_t)(co * ci * k) * sizeof(float)), *b = musae_xmalloc((size_t)co * sizeof(float));
    fill(x, t_in * ci, 1.0f);
    fill(W, co * ci * k, 0.5f);
    fill(b, co, 0.2f);
    for (int r = 0; r < s; r++)
        for (int64_t o = 0; o < co; o++)
            for (int m = 0; m < J; m++)
                for (int64_t i = 0; i < ci; i++)
                    wp[((r * co + o) * J + m) * ci + i] = W[(i * co + o) * k + r + (J - 1 - m) * s];
    float *ref = musae_xmalloc((size_t)(t_out * co) * sizeof(float)), *out = alloc_out(t_out * co);
    musae_convt1d_params p = {.t_in = t_in, .t_out = t_out, .c_in = ci, .c_out = co, .k = k, .stride = s,
                              .crop_left = crop_left};
    ref_convt(ref, x, W, b, &p);
    cpu_conv_transpose1d(out, x, wp, b, &p);
    double e = test_max_abs_diff(out, ref, (size_t)(t_out * co));
    CHECK(e <= 1e-4 && guard_ok(out, t_out * co), "convT t_in %lld ci %lld co %lld k %d s %d crop %d out %lld: max|d| %.3g",
          (long long)t_in, (long long)ci, (long long)co, k, s, crop_left, (long long)t_out, e);
    free(x), free(W), free(wp), free(b), free(ref), free(out);
}

static double sigm(double v) { return 1.0 / (1.0 + exp(-v)); }

static void test_lstm(int64_t T, int64_t din, int64_t H) {
    const int64_t G = 4 * H;
    float *x = musae_xmalloc((size_t)(T * din) * sizeof(float)), *wih = musae_xmalloc((size_t)(G * din) * sizeof(float));
    float *whh = musae_xmalloc((size_t)(G * H) * sizeof(float)), *bih = musae_xmalloc((size_t)G * sizeof(float));
    float *bhh = musae_xmalloc((size_t)G * sizeof(float));
    fill(x, T * din, 1.0f);
    fill(wih, G * din, 0.6f);
    fill(whh, G * H, 0.6f);
    fill(bih, G, 0.3f);
    fill(bhh, G, 0.3f);
    double *h = calloc((size_t)H, sizeof(double)), *c = calloc((size_t)H, sizeof(double)), *g = malloc((size_t)G * sizeof(double));
    float *ref = musae_xmalloc((size_t)(T * H) * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
        for (int64_t j = 0; j < G; j++) {
            double s = bih[j] + bhh[j];
            for (int64_t i = 0; i < din; i++) s += (double)wih[j * din + i] * x[t * din + i];
            for (int64_t i = 0; i < H; i++) s += (double)whh[j * H + i] * h[i];
            g[j] = s;
        }
        for (int64_t j = 0; j < H; j++) {
            c[j] = sigm(g[H + j]) * c[j] + sigm(g[j]) * tanh(g[2 * H + j]);
            h[j] = sigm(g[3 * H + j]) * tanh(c[j]);
            ref[t * H + j] = (float)h[j];
        }
    }
    /* in two calls, the state carried through h and c */
    float *out = alloc_out(T * H), *hs = calloc((size_t)H, sizeof(float)), *cs = calloc((size_t)H, sizeof(float));
    float *work = musae_xmalloc((size_t)(T * G) * sizeof(float));
    int64_t t1 = T / 3;
    cpu_lstm(out, x, t1, din, H, wih, whh, bih, bhh, hs, cs, work);
    cpu_lstm(out + t1 * H, x + t1 * din, T - t1, din, H, wih, whh, bih, bhh, hs, cs, work);
    double e = test_max_abs_diff(out, ref, (size_t)(T * H));
    CHECK(e <= 1e-5 && guard_ok(out, T * H), "lstm T %lld din %lld H %lld: max|d| %.3g", (long long)T, (long long)din,
          (long long)H, e);
    CHECK(test_max_abs_diff(hs, out + (T - 1) * H, (size_t)H) == 0, "lstm: h is not the last output");
    free(x), free(wih), free(whh), free(bih), free(bhh), free(h), free(c), free(g), free(ref), free(out), free(hs),
        free(cs), free(work);
}

/* cpu_lstm_batch over nb sequences (their own inputs and nonzero start states), in two calls with the state
 * carried, against cpu_lstm on each sequence alone: out, h and c must be byte-identical, at every ISA level
 * the CPU has. hidden % 16 != 0 reaches the tail columns; 4·hidden > 64 rows spans several row blocks;
 * nb > 4 makes a second group of four. */
static void test_lstm_batch(int nb, int64_t T, int64_t din, int64_t H) {
    const int64_t G = 4 * H, t1 = T / 2;
    float *wih = musae_xmalloc((size_t)(G * din) * sizeof(float)), *whh = musae_xmalloc((size_t)(G * H) * sizeof(float));
    float *bih = musae_xmalloc((size_t)G * sizeof(float)), *bhh = musae_xmalloc((size_t)G * sizeof(float));
    fill(wih, G * din, 0.6f);
    fill(whh, G * H, 0.6f);
    fill(bih, G, 0.3f);
    fill(bhh, G, 0.3f);
    float *x[8], *h0[8], *c0[8], *out[8], *h[8], *c[8], *work[8], *ro[8], *rh[8], *rc[8];
    MUSAE_ASSERT(nb <= 8, "test_lstm_batch: nb %d", nb);
    for (int b = 0; b < nb; b++) {
        x[b] = musae_xmalloc((size_t)(T * din) * sizeof(float));
        h0[b] = musae_xmalloc((size_t)H * sizeof(float));
        c0[b] = musae_xmalloc((size_t)H * sizeof(float));
        fill(x[b], T * din, 1.0f);
        fill(h0[b], H, 0.5f);
        fill(c0[b], H, 0.5f);
        out[b] = alloc_out(T * H), ro[b] = alloc_out(T * H);
        h[b] = musae_xmalloc((size_t)H * sizeof(float)), rh[b] = musae_xmalloc((size_t)H * sizeof(float));
        c[b] = musae_xmalloc((size_t)H * sizeof(float)), rc[b] = musae_xmalloc((size_t)H * sizeof(float));
        work[b] = musae_xmalloc((size_t)(T * G) * sizeof(float));
    }
    const musae_isa top = musae_isa_cpu(), was = musae_isa_get();
    for (int isa = MUSAE_ISA_BASELINE; isa <= (int)top; isa++) {
        musae_isa_set((musae_isa)isa);
        for (int b = 0; b < nb; b++) {
            memcpy(rh[b], h0[b], (size_t)H * sizeof(float)), memcpy(rc[b], c0[b], (size_t)H * sizeof(float));
            memcpy(h[b], h0[b], (size_t)H * sizeof(float)), memcpy(c[b], c0[b], (size_t)H * sizeof(float));
            cpu_lstm(ro[b], x[b], t1, din, H, wih, whh, bih, bhh, rh[b], rc[b], work[b]);
            cpu_lstm(ro[b] + t1 * H, x[b] + t1 * din, T - t1, din, H, wih, whh, bih, bhh, rh[b], rc[b], work[b]);
        }
        float *o2[8], *w2[8];
        const float *x2[8];
        cpu_lstm_batch(nb, out, (const float *const *)x, t1, din, H, wih, whh, bih, bhh, h, c, work);
        for (int b = 0; b < nb; b++) o2[b] = out[b] + t1 * H, x2[b] = x[b] + t1 * din, w2[b] = work[b];
        cpu_lstm_batch(nb, o2, x2, T - t1, din, H, wih, whh, bih, bhh, h, c, w2);
        int same = 1;
        for (int b = 0; b < nb; b++)
            same &= !memcmp(out[b], ro[b], (size_t)(T * H) * sizeof(float)) && guard_ok(out[b], T * H) &&
                    !memcmp(h[b], rh[b], (size_t)H * sizeof(float)) && !memcmp(c[b], rc[b], (size_t)H * sizeof(float));
        CHECK(same, "lstm_batch nb %d T %lld din %lld H %lld (%s): not the bits of cpu_lstm on each sequence", nb,
              (long long)T, (long long)din, (long long)H, musae_isa_name((musae_isa)isa));
    }
    musae_isa_set(was);
    for (int b = 0; b < nb; b++)
        free(x[b]), free(h0[b]), free(c0[b]), free(out[b]), free(ro[b]), free(h[b]), free(rh[b]), free(c[b]),
            free(rc[b]), free(work[b]);
    free(wih), free(whh), free(bih), free(bhh);
}

static void test_elu(void) {
    const int64_t n = 200003;
    float *x = musae_xmalloc((size_t)n * sizeof(float)), *y = alloc_out(n);
    for (int64_t i = 0; i < n; i++) x[i] = -90.0f + 100.0f * (float)i / (float)n;
    x[0] = -0.0f, x[1] = 1e-30f, x[2] = -1e-30f, x[3] = -1e-7f, x[4] = -0.2499f, x[5] = -0.2501f, x[6] = NAN;
    x[7] = -INFINITY, x[8] = INFINITY;
    cpu_elu(y, x, n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 6) continue;
        double want = x[i] > 0 ? x[i] : expm1((double)x[i]);
        double ulp = fmax(fabs(want) * 1.1920929e-7, 1e-45);
        double e = fabs((double)y[i] - want) / ulp;
        if (e > worst) worst = e;
    }
    CHECK(worst <= 2.0, "elu: worst error %.2f float ulps vs expm1", worst);
    CHECK(isnan(y[6]) && y[7] == -1.0f && isinf(y[8]), "elu: NaN/-inf/+inf give %g %g %g", y[6], y[7], y[8]);
    CHECK(guard_ok(y, n), "elu wrote past the end");
    float z[5] = {-1, 0, 2, -3, 0.5f};
    cpu_elu(z, z, 5); /* in place */
    CHECK(fabsf(z[0] - (float)expm1(-1.0)) < 1e-7f && z[2] == 2.0f, "elu in place");
    printf("elu: worst %.2f ulp\n", worst);
    free(x), free(y);
}

int main(void) {
    /* (t_in, c_in, c_out, k, stride, dilation, pad_left, pad_right, reflect, accumulate, bias, elu) */
    test_conv1d(50, 16, 8, 7, 1, 1, 3, 3, 1, 0, 1, 0);   /* EnCodec k7 */
    test_conv1d(50, 16, 8, 3, 1, 1, 1, 1, 1, 1, 1, 0);   /* resblock k3, accumulate */
    test_conv1d(50, 16, 8, 3, 1, 2, 2, 2, 1, 0, 0, 0);   /* dilation 2 */
    test_conv1d(50, 8, 12, 1, 1, 1, 0, 0, 1, 1, 1, 0);   /* k1 */
    test_conv1d(64, 8, 16, 8, 4, 1, 2, 2 + 3, 1, 0, 1, 0); /* down-conv with extra right padding */
    test_conv1d(41, 8, 16, 10, 5, 1, 3, 2 + 4, 1, 0, 1, 0);
    test_conv1d(33, 8, 16, 16, 8, 1, 4, 4 + 7, 1, 0, 1, 0);
    test_conv1d(9, 8, 5, 7, 1, 1, 3, 3, 0, 0, 1, 0);     /* zero padding */
    test_conv1d(5, 6, 5, 3, 4, 1, 1, 2, 0, 0, 1, 0);     /* stride > k */
    test_conv1d(4, 6, 5, 7, 1, 1, 3, 3, 1, 0, 1, 0);     /* every row an edge row */
    test_conv1d(3000, 1, 16, 7, 1, 1, 3, 3, 1, 0, 1, 0); /* c_in 1: im2col path */
    test_conv1d(20, 2, 3, 5, 2, 2, 4, 4, 1, 1, 1, 0);    /* im2col with stride, dilation, accumulate */
    test_conv1d(40, 12, 1, 7, 1, 1, 3, 3, 1, 0, 1, 0);   /* one output channel (the decoder's last conv) */
    test_conv1d(50, 16, 8, 3, 1, 1, 1, 1, 1, 1, 1, 1);   /* small: per-group products, then the ELU */
    test_conv1d(3000, 1, 16, 7, 1, 1, 3, 3, 1, 0, 1, 1); /* im2col tiles with the ELU */
    /* products past cpu_gemm's PARALLEL_FLOPS: the interior tile by tile (conv1d.c conv_tiles) */
    test_conv1d(2300, 64, 32, 3, 1, 1, 1, 1, 1, 0, 1, 1);      /* EnCodec's first resblock conv + ELU */
    test_conv1d(2300, 48, 64, 1, 1, 1, 0, 0, 1, 1, 1, 1);      /* a k1 conv (c_in·k > 32), accumulate + ELU */
    test_conv1d(700, 64, 1024, 8, 4, 1, 2, 2 + 3, 1, 0, 1, 1); /* column tiles, a partial row tile */
    test_conv1d(700, 64, 1024, 8, 4, 1, 2, 2 + 3, 1, 1, 0, 0); /* the same accumulating, no bias */
    /* (t_in, c_in, c_out, k, stride, crop_left, t_out) */
    test_convt(13, 16, 8, 16, 8, 4, 13 * 8);
    test_convt(13, 16, 8, 10, 5, 3, 13 * 5);
    test_convt(7, 8, 4, 8, 4, 2, 7 * 4);
    test_convt(1, 8, 4, 8, 4, 2, 4);
    test_convt(6, 5, 3, 6, 2, 0, (6 - 1) * 2 + 6); /* uncropped, J = 3 */
    test_convt(6, 5, 3, 4, 4, 1, 20);              /* J = 1 */
    test_lstm(17, 24, 16);
    test_lstm(5, 8, 33);
    test_lstm_batch(3, 9, 20, 37); /* tail columns, three row blocks, one group of three */
    test_lstm_batch(6, 5, 16, 48); /* no tail, a group of four and one of two */
    test_lstm_batch(1, 4, 8, 16);
    test_elu();
    TEST_END();
}
