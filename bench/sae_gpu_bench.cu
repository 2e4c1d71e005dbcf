/* GPU top-k SAE training step: tokens/s of one full step (centre, fused bf16 encode + top-k, decode, loss,
 * latent-sorted backward, Adam on every parameter with the decoder constraint) for the issue's workloads
 *   a: d 1024, M 32768, k 32     b: d 2048, M 65536, k 100     batch 16384 tokens, data on the GPU.
 * Per-stage medians from CUDA events, the encoder's GEMM share timed alone (same tiles, no selection) and as one
 * monolithic bf16 GEMM (the roofline reference), GPU memory per latent. One JSON line per workload at the end
 * (bench/run_sae_gpu.sh pairs it with bench/peers/sparsify_step.py on the same shapes).
 *   sae_gpu_bench [--workload a|b|all] [--batch N] [--steps S] [--warmup W] [--auxk] [--f32]
 *                 [--trainer [--store PATH] [--store-rows R]]
 *     --auxk: every 4th latent dead, k_aux = d/2, α = 1/32 (sparsify's default is AuxK off)
 *     --f32 : fp32 GEMM operands and gathers (the reference-matching mode), for comparison
 *     --trainer: the real trainer (sae/sae_gpu.h) instead of the op sequence, twice: from batches already on the
 *       GPU, and streamed from an HDF5 store (reader thread → pinned double buffer → copy stream), with the time
 *       the compute stream waited for data. The store (f16, synthetic, R rows, default 262144) is written to PATH
 *       (default /tmp/sae_gpu_bench_<d>.h5) unless it exists; it is read back from the page cache, so this
 *       measures musae's read path (HDF5, shuffle, f16 → f32, PCIe), not the disk. The issue's target: streamed
 *       >= 80% of the in-memory rate. AuxK on as the trainer's default recipe (k_aux = d/2, dead after 10M
 *       tokens: none die in a short run, the AuxK passes still run). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "kernels/cuda/philox_fill.cuh"
#include "kernels/cuda/sae_cuda.cuh"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/store.h"
#include "host/io/json.h"
#include "sae/sae.h"
#include "sae/sae_gpu.h"

enum { ST_CENTER, ST_ENCODE, ST_DECODE, ST_LOSS, ST_BACKWARD, ST_ADAM, ST_N };
static const char *st_name[ST_N] = {"center", "encode", "decode", "loss", "backward", "adam"};

typedef struct {
    const char *name;
    int64_t d, M;
    int k;
} workload;

static size_t g_bytes = 0;
static void *dalloc(size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMalloc(&p, bytes ? bytes : 1));
    g_bytes += bytes;
    return p;
}

__global__ static void bench_affine_kernel(float *x, int64_t n, float a, float b) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = a * x[i] + b;
}
static void affine(float *x, int64_t n, float a, float b) {
    bench_affine_kernel<<<(unsigned)CEIL_DIV(n, 256), 256>>>(x, n, a, b);
    CUDA_LAUNCH_CHECK();
}

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

static void run(const workload &w, int64_t N, int steps, int warmup, int auxk, musae_dtype prec, cublasHandle_t blas) {
    const int64_t d = w.d, M = w.M;
    const int k = w.k, k_aux = auxk ? (int)(d / 2) : 0;
    const float aux_coef = auxk ? 1.0f / 32 : 0.0f;
    size_t free0, total;
    CUDA_CHECK(cudaMemGetInfo(&free0, &total));
    g_bytes = 0;
    // parameters, gradients, moments (fp32), shadows (bf16)
    float *x = (float *)dalloc(4 * N * d), *xs = (float *)dalloc(4 * N * d), *xc = (float *)dalloc(4 * N * d);
    float *We = (float *)dalloc(4 * M * d), *Wd = (float *)dalloc(4 * M * d), *be = (float *)dalloc(4 * M),
          *bd = (float *)dalloc(4 * d);
    float *gWe = (float *)dalloc(4 * M * d), *gWd = (float *)dalloc(4 * M * d), *gbe = (float *)dalloc(4 * M),
          *gbd = (float *)dalloc(4 * d);
    float *mom = (float *)dalloc(4 * (4 * M * d + 2 * M + 2 * d));
    CUDA_CHECK(cudaMemset(mom, 0, 4 * (4 * M * d + 2 * M + 2 * d)));
    float *mWe = mom, *vWe = mWe + M * d, *mWd = vWe + M * d, *vWd = mWd + M * d, *mbe = vWd + M * d, *vbe = mbe + M,
          *mbd = vbe + M, *vbd = mbd + d;
    uint16_t *We16 = (uint16_t *)dalloc(2 * M * d), *Wd16 = (uint16_t *)dalloc(2 * M * d), *xc16 = (uint16_t *)dalloc(2 * N * d);
    uint16_t *gx16 = (uint16_t *)dalloc(2 * N * d), *ge16 = auxk ? (uint16_t *)dalloc(2 * N * d) : NULL;
    float *xh = (float *)dalloc(4 * N * d), *gx = (float *)dalloc(4 * N * d);
    float *eh = auxk ? (float *)dalloc(4 * N * d) : NULL, *ge = auxk ? (float *)dalloc(4 * N * d) : NULL;
    double *scal = (double *)dalloc(8 * 4), *tv = scal, *fvu = scal + 1, *aux = scal + 2;
    sae_codes c = {N, N * k, (int64_t *)dalloc(8 * (N + 1)), (int32_t *)dalloc(4 * N * k), (float *)dalloc(4 * N * k)};
    sae_codes a = {N, N * k_aux, (int64_t *)dalloc(8 * (N + 1)), (int32_t *)dalloc(4 * N * k_aux + 4),
                   (float *)dalloc(4 * N * k_aux + 4)};
    uint8_t *dead = (uint8_t *)dalloc(M);
    std::vector<uint8_t> hdead((size_t)M);
    for (int64_t i = 0; i < M; i++) hdead[(size_t)i] = auxk && i % 4 == 0;
    CUDA_CHECK(cudaMemcpy(dead, hdead.data(), (size_t)M, cudaMemcpyHostToDevice));
    const size_t s_enc = sae_cuda_encode_scratch_bytes(N, M, k, k_aux);
    const size_t s_bwd = sae_cuda_backward_scratch_bytes(N, N * k, N * k_aux, d, M);
    const size_t s_tv = sae_cuda_total_variance_scratch_bytes(N, d), s_loss = sae_cuda_loss_grad_scratch_bytes(N);
    size_t s_max = std::max(std::max(s_enc, s_bwd), std::max(s_tv, s_loss));
    void *scratch = dalloc(s_max); // the ops run one after another: one scratch serves them all
    // (encode is told s_enc: its tile is sized to the scratch it is given, ~24 MiB so that a tile stays in L2)
    size_t free1;
    CUDA_CHECK(cudaMemGetInfo(&free1, &total));

    // data: uniform with unit variance; decoder rows unit norm, encoder = decoder, biases 0
    philox_uniform_fill(x, N * d, 1, 0, 0);
    affine(x, N * d, 2 * sqrtf(3.0f), -sqrtf(3.0f));
    philox_uniform_fill(Wd, M * d, 1, 1, 0);
    affine(Wd, M * d, 2.0f, -1.0f);
    sae_cuda_normalize_rows(Wd, M, d, 0);
    CUDA_CHECK(cudaMemcpy(We, Wd, 4 * M * d, cudaMemcpyDeviceToDevice));
    CUDA_CHECK(cudaMemset(be, 0, 4 * M));
    CUDA_CHECK(cudaMemset(bd, 0, 4 * d));
    sae_cuda_to_bf16(We, M * d, We16, 0);
    sae_cuda_to_bf16(Wd, M * d, Wd16, 0);
    CUDA_CHECK(cudaDeviceSynchronize());

    const bool b16 = prec == MUSAE_BF16;
    const float lr = (float)(2e-4 / sqrt((double)M / 16384.0));
    cudaEvent_t ev[ST_N + 1];
    for (int i = 0; i <= ST_N; i++) CUDA_CHECK(cudaEventCreate(&ev[i]));
    std::vector<double> st[ST_N], tot;
    for (int s = 0; s < warmup + steps; s++) {
        CUDA_CHECK(cudaEventRecord(ev[0], 0));
        sae_cuda_center(x, 1.0f, bd, N, d, xs, xc, b16 ? xc16 : NULL, 0);
        CUDA_CHECK(cudaEventRecord(ev[1], 0));
        sae_cuda_encode(blas, prec, b16 ? (const void *)xc16 : xc, b16 ? (const void *)We16 : We, be, N, d, M, k,
                        auxk ? dead : NULL, k_aux, &c, auxk ? &a : NULL, NULL, scratch, s_enc, 0);
        CUDA_CHECK(cudaEventRecord(ev[2], 0));
        sae_cuda_decode(&c, prec, b16 ? (const void *)Wd16 : Wd, bd, d, xh, 0);
        if (auxk) sae_cuda_decode(&a, prec, b16 ? (const void *)Wd16 : Wd, NULL, d, eh, 0);
        CUDA_CHECK(cudaEventRecord(ev[3], 0));
        sae_cuda_total_variance(xs, N, d, tv, scratch, 0);
        sae_cuda_loss_grad(xs, xh, eh, N, d, tv, aux_coef, gx, ge, b16 ? gx16 : NULL, b16 ? ge16 : NULL, fvu, aux,
                           scratch, 0);
        CUDA_CHECK(cudaEventRecord(ev[4], 0));
        sae_cuda_backward(&c, auxk ? &a : NULL, prec, b16 ? (const void *)gx16 : gx,
                          b16 ? (const void *)ge16 : (const void *)ge, b16 ? (const void *)xc16 : xc, We, Wd, d, M, gWe,
                          gbe, gWd, gbd, scratch, s_max, 0);
        CUDA_CHECK(cudaEventRecord(ev[5], 0));
        const sae_adam_hparams h = {lr, 0.9f, 0.999f, 6.25e-10f, s + 1};
        sae_cuda_adam(We, gWe, mWe, vWe, M * d, &h, b16 ? We16 : NULL, 0);
        sae_cuda_adam(be, gbe, mbe, vbe, M, &h, NULL, 0);
        sae_cuda_adam(bd, gbd, mbd, vbd, d, &h, NULL, 0);
        sae_cuda_adam_decoder(Wd, gWd, mWd, vWd, M, d, &h, b16 ? Wd16 : NULL, 0);
        CUDA_CHECK(cudaEventRecord(ev[6], 0));
        CUDA_CHECK(cudaEventSynchronize(ev[6]));
        if (s < warmup) continue;
        for (int i = 0; i < ST_N; i++) {
            float ms;
            CUDA_CHECK(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
            st[i].push_back(ms);
        }
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, ev[0], ev[ST_N]));
        tot.push_back(ms);
    }
    double hfvu, haux;
    CUDA_CHECK(cudaMemcpy(&hfvu, fvu, 8, cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(&haux, aux, 8, cudaMemcpyDeviceToHost));
    int64_t nnz;
    CUDA_CHECK(cudaMemcpy(&nnz, c.ptr + N, 8, cudaMemcpyDeviceToHost));

    // the encoder's GEMM share: the same tiles without selection, and one monolithic bf16-output GEMM
    const double flop = 2.0 * (double)N * (double)M * (double)d;
    double gemm_tiles_ms = 0, gemm_mono_ms = 0;
    int64_t tile_r = 0, tile_c = 0;
    {
        int64_t R, C; // exactly the fused path's tiles
        sae_cuda_encode_tiling(N, M, k, k_aux, s_enc, &R, &C);
        tile_r = R, tile_c = C;
        float *tile = (float *)scratch; // the scratch is at least one tile
        const float one = 1.0f, zero = 0.0f;
        const cudaDataType_t ab = b16 ? CUDA_R_16BF : CUDA_R_32F;
        const size_t es = b16 ? 2 : 4;
        const char *W = b16 ? (const char *)We16 : (const char *)We, *X = b16 ? (const char *)xc16 : (const char *)xc;
        auto tiles = [&]() {
            for (int64_t r0 = 0; r0 < N; r0 += R)
                for (int64_t c0 = 0; c0 < M; c0 += C)
                    CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)std::min(C, M - c0),
                                              (int)std::min(R, N - r0), (int)d, &one, W + (size_t)(c0 * d) * es, ab,
                                              (int)d, X + (size_t)(r0 * d) * es, ab, (int)d, &zero, tile, CUDA_R_32F,
                                              (int)std::min(C, M - c0),
                                              b16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
        };
        std::vector<double> t1, t2;
        void *mono = NULL;
        if (b16 && cudaMalloc(&mono, 2 * (size_t)N * (size_t)M) != cudaSuccess) {
            mono = NULL;
            (void)cudaGetLastError();
        }
        for (int s = 0; s < 1 + std::min(steps, 5); s++) {
            float ms;
            CUDA_CHECK(cudaEventRecord(ev[0], 0));
            tiles();
            CUDA_CHECK(cudaEventRecord(ev[1], 0));
            if (mono)
                CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)M, (int)N, (int)d, &one, We16, CUDA_R_16BF,
                                          (int)d, xc16, CUDA_R_16BF, (int)d, &zero, mono, CUDA_R_16BF, (int)M,
                                          CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            CUDA_CHECK(cudaEventRecord(ev[2], 0));
            CUDA_CHECK(cudaEventSynchronize(ev[2]));
            if (s == 0) continue;
            CUDA_CHECK(cudaEventElapsedTime(&ms, ev[0], ev[1]));
            t1.push_back(ms);
            CUDA_CHECK(cudaEventElapsedTime(&ms, ev[1], ev[2]));
            t2.push_back(ms);
        }
        if (mono) CUDA_CHECK(cudaFree(mono));
        gemm_tiles_ms = median(t1);
        gemm_mono_ms = mono ? median(t2) : 0;
    }

    const double step_ms = median(tot), tps = (double)N / (step_ms * 1e-3);
    const size_t used = free0 - free1;
    printf("\n== workload %s: d %lld, M %lld, k %d, batch %lld, %s%s, %d steps (median)\n", w.name, (long long)d,
           (long long)M, k, (long long)N, b16 ? "bf16 GEMM + bf16 gathers" : "fp32", auxk ? ", AuxK" : "", steps);
    for (int i = 0; i < ST_N; i++) {
        const double ms = median(st[i]);
        printf("  %-10s %9.3f ms  %5.1f%%\n", st_name[i], ms, 100 * ms / step_ms);
    }
    printf("  %-10s %9.3f ms  -> %.0f tokens/s\n", "step", step_ms, tps);
    const double enc_ms = median(st[ST_ENCODE]);
    printf("  encoder GEMM: %.1f TFLOP/s in the fused encode; its %lld × %lld tiles alone %.3f ms (%.1f TFLOP/s, %.0f%% "
           "of the encode)", flop / (enc_ms * 1e9), (long long)tile_r, (long long)tile_c, gemm_tiles_ms,
           flop / (gemm_tiles_ms * 1e9), 100 * gemm_tiles_ms / enc_ms);
    if (gemm_mono_ms > 0)
        printf("; one [N, M] bf16 GEMM %.3f ms (%.1f TFLOP/s) = the roofline used: encode at %.0f%% of it",
               gemm_mono_ms, flop / (gemm_mono_ms * 1e9), 100 * gemm_mono_ms / enc_ms);
    printf("\n  memory: %.2f GiB allocated (%.2f GiB by cudaMemGetInfo), %.0f bytes per latent; L0 %.2f, fvu %.4f, auxk %.4g\n",
           g_bytes / 1073741824.0, used / 1073741824.0, (double)used / (double)M, (double)nnz / (double)N, hfvu, haux);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "impl", "musae-cuda");
    cJSON_AddStringToObject(j, "workload", w.name);
    cJSON_AddNumberToObject(j, "d", (double)d);
    cJSON_AddNumberToObject(j, "latents", (double)M);
    cJSON_AddNumberToObject(j, "k", k);
    cJSON_AddNumberToObject(j, "batch", (double)N);
    cJSON_AddStringToObject(j, "prec", b16 ? "bf16" : "f32");
    cJSON_AddNumberToObject(j, "auxk", auxk);
    musae_json_add_rounded(j, "step_ms", step_ms, 4);
    musae_json_add_rounded(j, "tokens_per_s", tps, 1);
    musae_json_add_rounded(j, "encode_ms", enc_ms, 4);
    musae_json_add_rounded(j, "gemm_tiles_ms", gemm_tiles_ms, 4);
    musae_json_add_rounded(j, "gemm_mono_ms", gemm_mono_ms, 4);
    musae_json_add_rounded(j, "bytes_per_latent", (double)used / (double)M, 1);
    cJSON_AddNumberToObject(j, "mem_bytes", used);
    musae_json_add_rounded(j, "fvu", hfvu, 6);
    for (int i = 0; i < ST_N; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s_ms", st_name[i]);
        musae_json_add_rounded(j, key, median(st[i]), 4);
    }
    musae_json_print_line(stdout, j);
    fflush(stdout);

    for (int i = 0; i <= ST_N; i++) CUDA_CHECK(cudaEventDestroy(ev[i]));
    void *bufs[] = {x, xs, xc, We, Wd, be, bd, gWe, gWd, gbe, gbd, mom, We16, Wd16, xc16, gx16, ge16, xh, gx, eh, ge,
                    scal, c.ptr, c.idx, c.val, a.ptr, a.idx, a.val, dead, scratch};
    for (void *p : bufs)
        if (p) CUDA_CHECK(cudaFree(p));
}

// ---- the real trainer: in-memory device batches vs the streamed feed ------------------------------------------------

// A synthetic f16 store of `rows` rows of uniform unit-variance data (clips of 4096 frames), unless path exists.
static void ensure_store(const char *path, int64_t d, int64_t rows) {
    if (access(path, R_OK) == 0) return;
    const double t0 = musae_now();
    musae_store_spec sp = {};
    sp.model = "synthetic";
    sp.d_model = (int)d;
    sp.frame_rate = 50;
    sp.n_layers = 1;
    sp.layers[0] = 0;
    sp.dtype = MUSAE_F16;
    sp.dtype_source = "f32";
    musae_store_writer *w = musae_store_create(path, &sp);
    const int64_t clip = 4096;
    std::vector<float> buf((size_t)(clip * d));
    for (int64_t c = 0; c * clip < rows; c++) {
        const int64_t n = std::min(clip, rows - c * clip);
        for (int64_t i = 0; i < n * d; i++)
            buf[(size_t)i] = sqrtf(3.0f) * (2.0f * musae_u32_to_unit(musae_philox(5, 0, (uint64_t)(c * clip * d + i)).v[0]) - 1.0f);
        char name[64];
        snprintf(name, sizeof name, "clip%06lld", (long long)c);
        const float *acts[1] = {buf.data()};
        musae_store_add_clip(w, name, n, acts);
    }
    musae_store_close_writer(w, 1);
    printf("  wrote %s: %lld rows × %lld f16 in %.1f s\n", path, (long long)rows, (long long)d, musae_now() - t0);
}

static void run_trainer(const workload &w, int64_t N, int steps, int warmup, musae_dtype prec, const char *store_path,
                        int64_t store_rows) {
    const int64_t d = w.d, M = w.M;
    sae_config c;
    sae_config_defaults(&c, (int)d, (int)M, w.k);
    c.total_steps = warmup + steps;
    // init on the CPU from a sample of the same distribution, as `musae train` does
    const int64_t NB = 4; // in-memory batches cycled on the device
    std::vector<float> host((size_t)(NB * N * d));
    for (size_t i = 0; i < host.size(); i++)
        host[i] = sqrtf(3.0f) * (2.0f * musae_u32_to_unit(musae_philox(6, 0, (uint64_t)i).v[0]) - 1.0f);
    c.bdec_init = SAE_BDEC_MEAN; // the geometric median of a large sample is slow on the CPU and irrelevant here
    sae_trainer t;
    sae_trainer_init(&t, &c, 1);
    sae_trainer_init_weights(&t, host.data(), std::min<int64_t>(N, 16384));
    float *dev = NULL;
    CUDA_CHECK(cudaMalloc(&dev, sizeof(float) * host.size()));
    CUDA_CHECK(cudaMemcpy(dev, host.data(), sizeof(float) * host.size(), cudaMemcpyHostToDevice));

    double rate[2] = {0, 0};
    sae_gpu_feed_stats fst = {};
    size_t dev_bytes = 0;
    double fvu_last = 0;
    for (int mode = 0; mode < 2; mode++) { // 0: in memory, 1: streamed from the store
        sae_gpu_trainer *g = sae_gpu_trainer_init(&c, N, prec, NULL);
        sae_gpu_trainer_load_from_cpu(g, &t);
        dev_bytes = sae_gpu_trainer_device_bytes(g);
        musae_store *store = NULL;
        musae_stream *st = NULL;
        sae_gpu_feed *feed = NULL;
        if (mode == 1) {
            char err[512];
            store = musae_store_open(store_path, err, sizeof err);
            if (!store) musae_fail("%s", err);
            musae_stream_opts so = {};
            so.split = MUSAE_SPLIT_ALL;
            so.shuffle = 1;
            so.window_rows = 131072;
            so.loop = 1;
            so.n_layers = 1;
            so.layers[0] = 0;
            st = musae_stream_open(store, &so);
            feed = sae_gpu_feed_open(st, 1, (int)d, N, (int64_t)(warmup + steps) * N, sae_gpu_trainer_stream(g));
        }
        double t0 = 0;
        sae_step_stats ss = {};
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) { // time whole steps only: drain, then start the clock
                sae_gpu_trainer_sync(g);
                t0 = musae_now();
            }
            const float *x = dev + (size_t)(s % NB) * (size_t)(N * d);
            int64_t n = N;
            if (feed) {
                n = sae_gpu_feed_next(feed, &x, NULL);
                MUSAE_ASSERT(n == N, "the feed gave %lld rows", (long long)n);
            }
            sae_gpu_trainer_step(g, x, n);
            if (s > 0) (void)sae_gpu_trainer_stats(g, s - 1, &ss); // as a run loop would: one step behind
        }
        sae_gpu_trainer_sync(g);
        const double secs = musae_now() - t0;
        rate[mode] = (double)steps * (double)N / secs;
        (void)sae_gpu_trainer_stats(g, warmup + steps - 1, &ss);
        fvu_last = ss.fvu;
        if (feed) {
            fst = sae_gpu_feed_get_stats(feed);
            sae_gpu_feed_close(feed);
            musae_stream_close(st);
            musae_store_close(store);
        }
        sae_gpu_trainer_free(g);
    }
    CUDA_CHECK(cudaFree(dev));
    sae_trainer_free(&t);
    const double ratio = rate[1] / rate[0];
    printf("\n== trainer, workload %s: d %lld, M %lld, k %d, batch %lld, %s, AuxK recipe, %d steps\n", w.name,
           (long long)d, (long long)M, w.k, (long long)N, prec == MUSAE_BF16 ? "bf16" : "f32", steps);
    printf("  in memory  %12.0f tokens/s\n  streamed   %12.0f tokens/s  (%.1f%% of in memory; target >= 80%%)\n", rate[0],
           rate[1], 100 * ratio);
    printf("  feed: compute stream waited %.3f s for data over %lld batches (all steps, warmup included); reader thread "
           "%.3f s in musae_stream_next; host blocked %.3f s\n",
           fst.gpu_wait_s, (long long)fst.batches, fst.read_s, fst.host_wait_s);
    printf("  trainer device memory %.2f GiB; last FVU %.4f\n", dev_bytes / 1073741824.0, fvu_last);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "impl", "musae-cuda-trainer");
    cJSON_AddStringToObject(j, "workload", w.name);
    cJSON_AddNumberToObject(j, "d", (double)d);
    cJSON_AddNumberToObject(j, "latents", (double)M);
    cJSON_AddNumberToObject(j, "k", w.k);
    cJSON_AddNumberToObject(j, "batch", (double)N);
    cJSON_AddStringToObject(j, "prec", prec == MUSAE_BF16 ? "bf16" : "f32");
    cJSON_AddNumberToObject(j, "steps", steps);
    musae_json_add_rounded(j, "mem_tokens_per_s", rate[0], 1);
    musae_json_add_rounded(j, "stream_tokens_per_s", rate[1], 1);
    musae_json_add_rounded(j, "stream_ratio", ratio, 4);
    musae_json_add_rounded(j, "gpu_wait_s", fst.gpu_wait_s, 4);
    musae_json_add_rounded(j, "read_s", fst.read_s, 4);
    cJSON_AddNumberToObject(j, "store_rows", (double)store_rows);
    musae_json_print_line(stdout, j);
    fflush(stdout);
}

int main(int argc, char **argv) {
    const workload all[] = {{"a", 1024, 32768, 32}, {"b", 2048, 65536, 100}};
    const char *which = "all";
    int64_t N = 16384;
    int steps = 10, warmup = 3, auxk = 0, trainer = 0;
    const char *store = NULL;
    int64_t store_rows = 262144;
    musae_dtype prec = MUSAE_BF16;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workload") && i + 1 < argc) which = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) N = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--auxk")) auxk = 1;
        else if (!strcmp(argv[i], "--f32")) prec = MUSAE_F32;
        else if (!strcmp(argv[i], "--trainer")) trainer = 1;
        else if (!strcmp(argv[i], "--store") && i + 1 < argc) store = argv[++i];
        else if (!strcmp(argv[i], "--store-rows") && i + 1 < argc) store_rows = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--workload a|b|all] [--batch N] [--steps S] [--warmup W] [--auxk] [--f32] "
                            "[--trainer [--store PATH] [--store-rows R]]\n", argv[0]);
            return 2;
        }
    }
    char why[256];
    if (musae_cuda_device_count(why, sizeof why) == 0) {
        printf("SKIPPED: %s\n", why);
        return 77;
    }
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    printf("device: %s, %d SMs, %.0f GiB\n", p.name, p.multiProcessorCount, p.totalGlobalMem / 1073741824.0);
    cublasHandle_t blas;
    CUBLAS_CHECK(cublasCreate(&blas));
    for (const workload &w : all) {
        if (strcmp(which, "all") && strcmp(which, w.name)) continue;
        if (!trainer) {
            run(w, N, steps, warmup, auxk, prec, blas);
            continue;
        }
        char path[512];
        if (store) snprintf(path, sizeof path, "%s", store);
        else snprintf(path, sizeof path, "/tmp/sae_gpu_bench_%lld.h5", (long long)w.d);
        ensure_store(path, w.d, store_rows);
        run_trainer(w, N, steps, warmup, prec, path, store_rows);
    }
    CUBLAS_CHECK(cublasDestroy(blas));
    return 0;
}
