/* Part of the CUDA op test (tests/test_ops_gpu.cu, whose main runs it for `test_ops_gpu perf [-o op]`): the
 * benchmark mode, not a test. Each op of the table under test at MusicGen's shapes (decode rows and 1000-token
 * prefills of the large model), timed cold: a 2×L2 buffer is written before every rep so the inputs start in
 * HBM; the median of 30 reps as µs, GB/s and TFLOP/s. Split from test_ops_gpu.cu: it checks nothing, and
 * shares only the driver's inputs and device buffers (test_ops_gpu.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/ops_cuda.h"
#include "kernels/ops.h"
#include "test_ops_gpu.h"

typedef void (*bench_fn)(void *ctx);

/* Median time of fn over reps, each run after a write to a 2×L2 buffer so its inputs start in HBM. */
static double time_cold(bench_fn fn, void *ctx, int reps) {
    cudaStream_t s = musae_cuda_stream();
    const size_t flush_bytes = 2 * (musae_cuda_l2_bytes() > 0 ? musae_cuda_l2_bytes() : (64u << 20));
    void *flush = G->alloc(flush_bytes);
    cudaEvent_t e0, e1;
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    fn(ctx); /* warm-up: plans, module load, scratch growth */
    G->sync();
    std::vector<float> ms;
    for (int r = 0; r < reps; r++) {
        CUDA_CHECK(cudaMemsetAsync(flush, r & 0xff, flush_bytes, s));
        CUDA_CHECK(cudaEventRecord(e0, s));
        fn(ctx);
        CUDA_CHECK(cudaEventRecord(e1, s));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float t = 0;
        CUDA_CHECK(cudaEventElapsedTime(&t, e0, e1));
        ms.push_back(t);
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    G->free(flush);
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2] * 1e-3;
}

typedef struct {
    int kind;
    float *x, *w, *y, *b, *r, *out;
    uint16_t *wb;
    int64_t m, n, k;
    musae_attn_params p;
} bench_ctx;

static void bench_run(void *vctx) {
    bench_ctx *c = (bench_ctx *)vctx;
    switch (c->kind) {
    case 0: G->linear(c->y, c->x, c->w, NULL, c->m, c->n, c->k, 0.0f); break;
    case 1: G->linear_bf16w(c->y, c->x, c->wb, NULL, c->m, c->n, c->k, 0.0f); break;
    case 2: G->layernorm(c->y, c->x, c->w, c->b, c->m, c->n, 1e-5f); break;
    case 3: G->add_layernorm(c->x, c->r, c->y, c->w, c->b, c->m, c->n, 1e-5f); break;
    case 4: G->gelu(c->y, c->x, c->m * c->n); break;
    case 5: G->add(c->y, c->x, c->r, c->m * c->n); break;
    case 6: G->attention(c->out, c->x, c->w, c->r, &c->p); break;
    case 7: G->rmsnorm(c->y, c->x, c->w, c->m, c->n, 1e-6f); break;
    default: break;
    }
}

static void bench_line(const char *op, const char *shape, double sec, double bytes, double flops) {
    printf("%-14s %-44s %10.1f us %9.1f GB/s %8.2f TFLOP/s\n", op, shape, sec * 1e6, bytes / sec * 1e-9,
           flops / sec * 1e-12);
}

void run_perf(void) {
    const int reps = 30;
    printf("perf (cold L2: a %zu MB buffer is written before each rep; median of %d; %d SMs)\n",
           2 * musae_cuda_l2_bytes() >> 20, reps, musae_cuda_sm_count());
    printf("%-14s %-44s %13s %14s %16s\n", "op", "shape", "time", "bandwidth", "compute");
    /* MusicGen shapes: large d 2048 (32 heads of 64), FFN 8192; decode = 2 rows (batch 1 with CFG) */
    const int64_t lin[][3] = {{2, 2048, 2048}, {2, 8192, 2048}, {2, 2048, 8192}, {1000, 8192, 2048}, {1000, 2048, 2048}};
    for (int prec = 0; prec < 2; prec++) {
        const char *op = prec ? "linear_bf16w" : "linear";
        if (!want(op)) continue;
        for (const auto &s : lin) {
            bench_ctx c;
            memset(&c, 0, sizeof c);
            c.kind = prec, c.m = s[0], c.n = s[1], c.k = s[2];
            auto x = rnd(c.m * c.k, -1, 1), w = rnd(c.n * c.k, -0.1f, 0.1f);
            c.x = dnew_v(x), c.y = (float *)dnew(NULL, (size_t)(c.m * c.n) * 4);
            if (prec) c.wb = dnew_v(to_bf16(w));
            else c.w = dnew_v(w);
            const double sec = time_cold(bench_run, &c, reps);
            const double bytes = (double)c.n * c.k * (prec ? 2 : 4) + 4.0 * c.m * (c.k + c.n);
            char shape[64];
            snprintf(shape, sizeof shape, "m%lld n%lld k%lld", (long long)c.m, (long long)c.n, (long long)c.k);
            bench_line(op, shape, sec, bytes, 2.0 * c.m * c.n * c.k);
            G->free(c.x), G->free(c.y), G->free(prec ? (void *)c.wb : (void *)c.w);
        }
    }
    const int64_t rows_dims[][2] = {{2, 2048}, {1000, 2048}, {2000, 768}};
    const int kinds[] = {2, 3, 7};
    const char *names[] = {"layernorm", "add_layernorm", "rmsnorm"};
    for (int kk = 0; kk < 3; kk++) {
        if (!want(names[kk])) continue;
        for (const auto &s : rows_dims) {
            bench_ctx c;
            memset(&c, 0, sizeof c);
            c.kind = kinds[kk], c.m = s[0], c.n = s[1];
            auto x = rnd(c.m * c.n, -1, 1), w = rnd(c.n, -1, 1);
            c.x = dnew_v(x), c.r = dnew_v(x), c.w = dnew_v(w), c.b = dnew_v(w);
            c.y = (float *)dnew(NULL, x.size() * 4);
            const double sec = time_cold(bench_run, &c, reps);
            char shape[64];
            snprintf(shape, sizeof shape, "rows %lld dim %lld", (long long)c.m, (long long)c.n);
            bench_line(names[kk], shape, sec, 4.0 * c.m * c.n * (kk == 1 ? 4 : 2), 0);
            G->free(c.x), G->free(c.r), G->free(c.w), G->free(c.b), G->free(c.y);
        }
    }
    for (int kk = 4; kk <= 5; kk++) {
        const char *name = kk == 4 ? "gelu" : "add";
        if (!want(name)) continue;
        bench_ctx c;
        memset(&c, 0, sizeof c);
        c.kind = kk, c.m = 1000, c.n = kk == 4 ? 8192 : 2048;
        auto x = rnd(c.m * c.n, -1, 1);
        c.x = dnew_v(x), c.r = dnew_v(x), c.y = (float *)dnew(NULL, x.size() * 4);
        const double sec = time_cold(bench_run, &c, reps);
        char shape[64];
        snprintf(shape, sizeof shape, "n %lld", (long long)(c.m * c.n));
        bench_line(name, shape, sec, 4.0 * c.m * c.n * (kk == 4 ? 2 : 3), 0);
        G->free(c.x), G->free(c.r), G->free(c.y);
    }
    if (want("attention")) {
        /* decode over a 1500-step KV cache (musicgen-large, CFG batch 2), and a 1000-token causal prefill */
        const int64_t shapes[][4] = {{2, 32, 1, 1500}, {2, 32, 1000, 1000}, {2, 16, 1000, 1000}};
        for (const auto &s : shapes) {
            for (int path = 0; path < (s[2] == 1 ? 2 : 1); path++) {
                bench_ctx c;
                memset(&c, 0, sizeof c);
                c.kind = 6;
                const int64_t B = s[0], H = s[1], TQ = s[2], TK = s[3], D = 64, W = H * D;
                auto q = rnd(B * TQ * W, -1, 1), kv = rnd(B * TK * W, -1, 1);
                c.x = dnew_v(q), c.w = dnew_v(kv), c.r = dnew_v(kv), c.out = (float *)dnew(NULL, q.size() * 4);
                c.p.batch = B, c.p.heads = H, c.p.tq = TQ, c.p.tk = TK, c.p.dh = D;
                c.p.q_sb = TQ * W, c.p.q_st = W, c.p.k_sb = TK * W, c.p.k_st = W, c.p.v_sb = TK * W, c.p.v_st = W;
                c.p.o_sb = TQ * W, c.p.o_st = W, c.p.scale = 0.125f, c.p.causal = 1, c.p.q_pos0 = TK - TQ;
                musae_cuda_attention_force(path == 1 ? 1 : 0, 0);
                const double sec = time_cold(bench_run, &c, reps);
                musae_cuda_attention_force(0, 0);
                const double pairs = TQ == 1 ? (double)TK : (double)TQ * (TQ + 1) / 2; /* causal */
                char shape[64];
                snprintf(shape, sizeof shape, "%s b%lld h%lld tq%lld tk%lld d64", path ? "prefill-kernel" : "auto",
                         (long long)B, (long long)H, (long long)TQ, (long long)TK);
                bench_line("attention", shape, sec, 4.0 * B * W * (2 * TQ + 2 * TK), 4.0 * B * H * D * pairs);
                G->free(c.x), G->free(c.w), G->free(c.r), G->free(c.out);
            }
        }
    }
}
