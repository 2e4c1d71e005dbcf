/* GPU benchmark of the MusicGen decoder (issue cuda-lm, "Benchmark"): on the CUDA op table,
 *   decode      mg_generate with text + CFG (default 3.0), greedy, for each --batch (default 1 and 16), STEPS
 *               steps (default 503 = 500 frames = 10 s of audio at 50 frames/s): ms/step, times real time, the
 *               fraction of the HBM roofline, and the GPU memory it took against weights + KV cache;
 *   capture     teacher-forced mg_forward (non-incremental, no logits, no text: what `musae capture` runs for
 *               uncaptioned clips) of --capture-batch clips of --capture-frames frames with READ hooks on
 *               layers L/4, L/2, 3L/4 and L-1 (so every layer runs): frames/s.
 * Warm-up run first (its GPU memory is sampled by a polling thread, so timed runs are not perturbed), then
 * --reps timed runs with host timing around calls that end synchronized (mg_generate downloads its codes;
 * capture's READ hooks download into host memory); the median counts. One JSON line per measurement
 * (impl "musae"; bench/peers/hf_musicgen_gpu.py prints the same schema for HF), then a readable table.
 *
 * Roofline: every decoding step streams each linear layer's weights once (the cross-attention K/V
 * projections excepted: text K/V are computed once), so weight_bytes_per_step / ms_per_step / peak is the
 * fraction of the memory bandwidth the step uses; peak = 2 (DDR) × memory clock × bus width, read from the
 * device. The K/V cache a step also reads is reported beside it (roofline_weights_kv).
 *
 *   lm_gpu_bench --model DIR [--label NAME] [--precision bf16|fp32] [--steps 503] [--batch 1,16]
 *                [--loops auto] [--guidance 3] [--text-len 12] [--capture-batch 8] [--capture-frames 500] [--reps 3]
 *                [--sample] [--no-decode] [--no-capture]
 *   --loops: mg_generate's loops to time, comma-separated (model/generate.h: auto = the graph-replayed device
 *            loop where it can run; host = a forward per step with logits downloaded, the pre-graph path)
 *   --sample: top-k 250 sampling (temperature 1) instead of greedy (the peer's do_sample=True, top_k=250) */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/json.h"
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/cuda_device.h"
#include "model/delay.h"
#include "model/generate.h"
#include "model/musicgen.h"

#define MAX_BATCHES 8
#define N_CAPTURE_LAYERS 4

static const char *const loop_names[] = {"auto", "host", "device", "graph"}; /* indexed by mg_gen_loop */
_Static_assert(MG_LOOP_AUTO == 0 && MG_LOOP_HOST == 1 && MG_LOOP_DEVICE == 2 && MG_LOOP_GRAPH == 3,
               "loop_names follows mg_gen_loop");

typedef struct {
    const char *dir, *label;
    musae_precision prec;
    int64_t steps, S, cap_batch, cap_frames;
    int64_t batches[MAX_BATCHES];
    mg_gen_loop loops[4];
    int n_batches, n_loops, reps, sample, decode, capture;
    float guidance;
} bench_opts;

/* One row of the closing table. */
typedef struct {
    char what[48];
    double value;
    const char *unit;
} table_row;

static table_row g_rows[MAX_BATCHES * 4 * 5 + 2]; /* 5 rows per batch and loop, 2 for capture */
static int g_n_rows;

static void table_add(const char *what, double value, const char *unit) {
    MUSAE_ASSERT(g_n_rows < (int)(sizeof g_rows / sizeof g_rows[0]), "table full");
    table_row *r = &g_rows[g_n_rows++];
    snprintf(r->what, sizeof r->what, "%s", what);
    r->value = value;
    r->unit = unit;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

static size_t gpu_used(void) {
    size_t free_b, total_b;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    return total_b - free_b;
}

/* Samples the device's used memory every 200 µs until stopped: the peak of a call that frees what it took
 * before returning (mg_generate's state) cannot be read after it. */
typedef struct {
    atomic_int stop;
    size_t peak;
    pthread_t thread;
} mem_poll;

static void *mem_poll_main(void *arg) {
    mem_poll *p = arg;
    while (!atomic_load(&p->stop)) {
        const size_t u = gpu_used();
        if (u > p->peak) p->peak = u;
        usleep(200);
    }
    return NULL;
}

static void mem_poll_start(mem_poll *p) {
    atomic_init(&p->stop, 0);
    p->peak = gpu_used();
    MUSAE_ASSERT(pthread_create(&p->thread, NULL, mem_poll_main, p) == 0, "pthread_create");
}

static size_t mem_poll_stop(mem_poll *p) {
    atomic_store(&p->stop, 1);
    MUSAE_ASSERT(pthread_join(p->thread, NULL) == 0, "pthread_join");
    const size_t u = gpu_used(); /* the last moment too */
    return u > p->peak ? u : p->peak;
}

/* Peak DRAM bandwidth in bytes/s: the memory clock (kHz) is the DDR clock, two transfers per cycle. */
static double peak_bandwidth(int dev, int *clock_khz, int *bus_bits) {
    CUDA_CHECK(cudaDeviceGetAttribute(clock_khz, cudaDevAttrMemoryClockRate, dev));
    CUDA_CHECK(cudaDeviceGetAttribute(bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
    return 2.0 * (double)*clock_khz * 1e3 * (double)*bus_bits / 8.0;
}

/* Bytes of linear-layer weights one decoding step streams (cross-attention K/V excluded: computed once). */
static double weight_bytes_per_step(const mg_model *m) {
    const double H = (double)m->H, F = (double)m->ffn;
    const double per_layer = 4 * H * H /* sa q, k, v, o */ + 2 * H * H /* ca q, o */ + 2 * F * H /* fc1, fc2 */;
    const double elem = m->prec == MUSAE_PREC_BF16 ? 2.0 : 4.0;
    return elem * ((double)m->n_layers * per_layer + (double)(m->K * m->V) * H /* heads */);
}

/* K/V cache element size, tied to the state struct so it follows any change of the cache's type. */
#define KV_ELEM ((double)sizeof(((mg_state *)0)->self_kv[0]))

static void parse_batches(bench_opts *o, const char *s) {
    o->n_batches = 0;
    for (const char *p = s; *p;) {
        char *end;
        const long long b = strtoll(p, &end, 10);
        if (end == p || b < 1 || o->n_batches == MAX_BATCHES) musae_fail("--batch: expected up to %d positive "
                                                                          "integers separated by commas, got '%s'",
                                                                          MAX_BATCHES, s);
        o->batches[o->n_batches++] = b;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') musae_fail("--batch: unexpected '%c' in '%s'", *end, s);
    }
    if (!o->n_batches) musae_fail("--batch: no batch size in '%s'", s);
}

static void parse_loops(bench_opts *o, const char *s) {
    o->n_loops = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(t, loop_names[i])) found = i;
        if (found < 0 || o->n_loops == 4) musae_fail("--loops: expected auto, host, device or graph (comma-separated), got '%s'", s);
        o->loops[o->n_loops++] = (mg_gen_loop)found;
    }
    if (!o->n_loops) musae_fail("--loops: no loop in '%s'", s);
}

static void parse_args(bench_opts *o, int argc, char **argv) {
    *o = (bench_opts){.label = "model", .prec = MUSAE_PREC_BF16, .steps = 503, .S = 12, .cap_batch = 8,
                      .cap_frames = 500, .reps = 3, .decode = 1, .capture = 1, .guidance = 3.0f};
    parse_batches(o, "1,16");
    parse_loops(o, "auto");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sample")) o->sample = 1;
        else if (!strcmp(a, "--no-decode")) o->decode = 0;
        else if (!strcmp(a, "--no-capture")) o->capture = 0;
        else if (!v) musae_fail("%s needs a value", a);
        else {
            i++;
            if (!strcmp(a, "--model")) o->dir = v;
            else if (!strcmp(a, "--label")) o->label = v;
            else if (!strcmp(a, "--steps")) o->steps = atoll(v);
            else if (!strcmp(a, "--batch")) parse_batches(o, v);
            else if (!strcmp(a, "--loops")) parse_loops(o, v);
            else if (!strcmp(a, "--guidance")) o->guidance = (float)atof(v);
            else if (!strcmp(a, "--text-len")) o->S = atoll(v);
            else if (!strcmp(a, "--capture-batch")) o->cap_batch = atoll(v);
            else if (!strcmp(a, "--capture-frames")) o->cap_frames = atoll(v);
            else if (!strcmp(a, "--reps")) o->reps = atoi(v);
            else if (!strcmp(a, "--precision")) {
                if (strcmp(v, "bf16") && strcmp(v, "fp32")) musae_fail("--precision: expected bf16 or fp32, got '%s'", v);
                o->prec = !strcmp(v, "bf16") ? MUSAE_PREC_BF16 : MUSAE_PREC_FP32;
            } else musae_fail("unknown option %s", a);
        }
    }
    if (!o->dir) musae_fail("usage: lm_gpu_bench --model DIR [--label NAME] [--precision bf16|fp32] [--steps N] "
                            "[--batch 1,16] [--loops auto,host,device,graph] [--guidance G] [--text-len S] [--capture-batch B] [--capture-frames F] "
                            "[--reps R] [--sample] [--no-decode] [--no-capture]");
    if (o->steps < 1 || o->S < 1 || o->cap_batch < 1 || o->cap_frames < 1 || o->reps < 1)
        musae_fail("--steps, --text-len, --capture-batch, --capture-frames and --reps must be positive");
}

/* Deterministic random text states [B, S, H] in [-0.5, 0.5) and an all-ones mask [B, S]. */
static void make_text(const mg_model *m, int64_t B, int64_t S, float **states, float **mask) {
    *states = musae_xmalloc((size_t)(B * S * m->H) * sizeof(float));
    *mask = musae_xmalloc((size_t)(B * S) * sizeof(float));
    for (int64_t i = 0; i < B * S * m->H; i++) (*states)[i] = musae_u32_to_unit(musae_philox(2, 0, (uint64_t)i).v[0]) - 0.5f;
    for (int64_t i = 0; i < B * S; i++) (*mask)[i] = 1.0f;
}

static void bench_decode(const bench_opts *o, const mg_model *m, int64_t B, mg_gen_loop loop, double peak_bw,
                         size_t before_load) {
    const int64_t K = m->K, L = m->n_layers, H = m->H, S = o->S;
    float *states, *mask;
    make_text(m, B, S, &states, &mask);
    const mg_text text = {states, mask, S};
    mg_gen_params p = {.steps = o->steps, .guidance = o->guidance, .loop = loop};
    p.sampler = o->sample ? (mg_sampler){.temperature = 1.0f, .top_k = 250, .top_p = 1.0f, .seed = 0}
                          : (mg_sampler){.greedy = 1};
    const mg_delay_plan plan = mg_delay_plan_steps(K, o->steps);
    int64_t *codes = musae_xmalloc((size_t)(B * K * plan.frames) * sizeof(int64_t));
    const int cfg = o->guidance > 1.0f;
    const int64_t rows = cfg ? 2 * B : B;
    const char *why;
    const mg_gen_loop ran = mg_gen_loop_for(m, &p, NULL, 0, &why);

    mem_poll poll;
    mem_poll_start(&poll);
    mg_generate(m, B, &text, &p, NULL, 0, NULL, NULL, codes); /* warm-up: graphs, scratch, cuBLAS heuristics */
    const size_t peak = mem_poll_stop(&poll);
    double *runs = musae_xmalloc((size_t)o->reps * sizeof(double));
    for (int r = 0; r < o->reps; r++) {
        const double t0 = musae_now();
        const int64_t F = mg_generate(m, B, &text, &p, NULL, 0, NULL, NULL, codes);
        runs[r] = musae_now() - t0;
        MUSAE_ASSERT(F == plan.frames, "generate returned %lld frames, planned %lld", (long long)F, (long long)plan.frames);
    }
    CUDA_CHECK(cudaGetLastError());
    const double t = median(runs, o->reps), step_s = t / (double)o->steps;
    for (int64_t i = 0; i < B * K * plan.frames; i++)
        MUSAE_ASSERT(codes[i] >= 0 && codes[i] < m->V, "code %lld out of range at %lld", (long long)codes[i], (long long)i);

    /* bytes: the weights once; K/V of every cached position (on average (steps + 1) / 2 of them per step) for
     * all rows, and the text K/V of the conditional rows */
    const double w_bytes = weight_bytes_per_step(m);
    const double kv_bytes = KV_ELEM * (double)L * 2.0 * (double)H *
                            ((double)rows * 0.5 * (double)(o->steps + 1) + (double)B * (double)S);
    /* memory the step's state needs beyond the weights: self K/V for every position, text K/V */
    const double kv_alloc = KV_ELEM * (double)L * 2.0 * (double)H * ((double)rows * (double)o->steps + (double)B * (double)S);
    const double took = (double)(peak - before_load); /* weights as allocated + everything generate adds */
    const double audio_s = (double)plan.frames / 50.0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "impl", "musae");
    cJSON_AddStringToObject(j, "model", o->label);
    cJSON_AddStringToObject(j, "measure", "decode");
    cJSON_AddStringToObject(j, "precision", m->prec == MUSAE_PREC_BF16 ? "bf16" : "fp32");
    cJSON_AddNumberToObject(j, "batch", (double)B);
    cJSON_AddStringToObject(j, "loop", loop_names[loop]);
    cJSON_AddStringToObject(j, "loop_ran", loop_names[ran]);
    musae_json_add_rounded(j, "guidance", (double)o->guidance, 2);
    cJSON_AddStringToObject(j, "sampling", o->sample ? "top_k_250" : "greedy");
    cJSON_AddNumberToObject(j, "steps", (double)o->steps);
    cJSON_AddNumberToObject(j, "frames", (double)plan.frames);
    musae_json_add_rounded(j, "ms_per_step", 1e3 * step_s, 4);
    musae_json_add_rounded(j, "total_s", t, 4);
    cJSON *runs_ms = cJSON_AddArrayToObject(j, "runs_ms");
    for (int r = 0; r < o->reps; r++) cJSON_AddItemToArray(runs_ms, cJSON_CreateNumber(round(1e4 * runs[r]) / 10));
    musae_json_add_rounded(j, "x_realtime", audio_s / t, 3);
    musae_json_add_rounded(j, "x_realtime_batch", audio_s * (double)B / t, 3);
    musae_json_add_rounded(j, "weight_bytes_per_step", w_bytes, 0);
    musae_json_add_rounded(j, "kv_bytes_per_step", kv_bytes, 0);
    musae_json_add_rounded(j, "peak_bw_gbs", peak_bw / 1e9, 1);
    musae_json_add_rounded(j, "roofline_weights", w_bytes / step_s / peak_bw, 4);
    musae_json_add_rounded(j, "roofline_weights_kv", (w_bytes + kv_bytes) / step_s / peak_bw, 4);
    musae_json_add_rounded(j, "mem_peak_mib", mib(took), 1);
    musae_json_add_rounded(j, "mem_weights_mib", mib((double)m->arena_bytes), 1);
    musae_json_add_rounded(j, "mem_kv_mib", mib(kv_alloc), 1);
    musae_json_add_rounded(j, "mem_over_weights_kv", took / ((double)m->arena_bytes + kv_alloc), 4);
    musae_json_print_line(stdout, j);
    fflush(stdout);
    char what[48];
    snprintf(what, sizeof what, "decode B=%lld %s ms/step", (long long)B, loop_names[ran]);
    table_add(what, 1e3 * step_s, "ms");
    snprintf(what, sizeof what, "decode B=%lld %s x real time", (long long)B, loop_names[ran]);
    table_add(what, audio_s / t, "x");
    snprintf(what, sizeof what, "decode B=%lld %s roofline (W)", (long long)B, loop_names[ran]);
    table_add(what, 100.0 * w_bytes / step_s / peak_bw, "%");
    snprintf(what, sizeof what, "decode B=%lld %s GPU memory", (long long)B, loop_names[ran]);
    table_add(what, mib(took), "MiB");
    snprintf(what, sizeof what, "decode B=%lld %s memory/(W+KV)", (long long)B, loop_names[ran]);
    table_add(what, took / ((double)m->arena_bytes + kv_alloc), "x");
    free(runs), free(codes), free(states), free(mask);
}

static void bench_capture(const bench_opts *o, const mg_model *m) {
    const int64_t K = m->K, V = m->V, H = m->H, L = m->n_layers, Bc = o->cap_batch, F = o->cap_frames, T = F + K;
    int64_t *codes = musae_xmalloc((size_t)(Bc * K * F) * sizeof(int64_t));
    int64_t *delayed = musae_xmalloc((size_t)(Bc * K * T) * sizeof(int64_t));
    for (int64_t i = 0; i < Bc * K * F; i++) codes[i] = musae_philox(1, 0, (uint64_t)i).v[0] % (uint32_t)V;
    mg_delay_codes(codes, Bc, K, F, V, delayed);

    /* layers at the quarters and the last one: the forward cannot stop early, as HF's cannot */
    int layers[N_CAPTURE_LAYERS] = {(int)(L / 4), (int)(L / 2), (int)(3 * L / 4), (int)(L - 1)};
    mg_hook hooks[N_CAPTURE_LAYERS];
    float *dst[N_CAPTURE_LAYERS];
    for (int i = 0; i < N_CAPTURE_LAYERS; i++) {
        dst[i] = musae_xmalloc((size_t)(Bc * (F + 1) * H) * sizeof(float));
        hooks[i] = (mg_hook){.kind = MG_HOOK_READ, .layer = layers[i], .branch = MG_BRANCH_COND, .pos_begin = 1,
                             .pos_end = F + 1, .dst = dst[i], .dst_t = F + 1};
    }
    mg_state st;
    const mg_state_opts so = {.batch = Bc, .n_cond = Bc, .t_max = T, .t_call = T, .incremental = 0, .logits = 0};
    mg_state_init(&st, m, &so);
    mg_forward(m, &st, delayed, T, hooks, N_CAPTURE_LAYERS, 0); /* warm-up */
    double *runs = musae_xmalloc((size_t)o->reps * sizeof(double));
    for (int r = 0; r < o->reps; r++) {
        const double t0 = musae_now();
        mg_forward(m, &st, delayed, T, hooks, N_CAPTURE_LAYERS, 0);
        runs[r] = musae_now() - t0;
    }
    CUDA_CHECK(cudaGetLastError());
    for (int i = 0; i < N_CAPTURE_LAYERS; i++)
        for (int64_t j = 0; j < Bc * (F + 1) * H; j += 4099)
            MUSAE_ASSERT(isfinite(dst[i][j]), "captured layer %d holds a non-finite value", layers[i]);
    const double t = median(runs, o->reps);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "impl", "musae");
    cJSON_AddStringToObject(j, "model", o->label);
    cJSON_AddStringToObject(j, "measure", "capture");
    cJSON_AddStringToObject(j, "precision", m->prec == MUSAE_PREC_BF16 ? "bf16" : "fp32");
    cJSON_AddNumberToObject(j, "batch", (double)Bc);
    cJSON_AddNumberToObject(j, "frames", (double)F);
    cJSON_AddNumberToObject(j, "positions", (double)T);
    cJSON *lj = cJSON_AddArrayToObject(j, "layers");
    for (int i = 0; i < N_CAPTURE_LAYERS; i++) cJSON_AddItemToArray(lj, cJSON_CreateNumber(layers[i]));
    musae_json_add_rounded(j, "ms_per_batch", 1e3 * t, 3);
    musae_json_add_rounded(j, "frames_per_s", (double)(Bc * F) / t, 1);
    musae_json_print_line(stdout, j);
    fflush(stdout);
    table_add("capture ms/batch", 1e3 * t, "ms");
    table_add("capture frames/s", (double)(Bc * F) / t, "frames/s");
    mg_state_free(&st, m);
    for (int i = 0; i < N_CAPTURE_LAYERS; i++) free(dst[i]);
    free(runs), free(codes), free(delayed);
}

int main(int argc, char **argv) {
    bench_opts o;
    parse_args(&o, argc, argv);
    char why[256];
    if (musae_cuda_device_count(why, (int)sizeof why) < 1) musae_fail("%s", why);
    const musae_ops *ops = musae_ops_cuda();
    MUSAE_ASSERT(ops, "musae_ops_cuda() is NULL although a device was found");

    int dev, clock_khz, bus_bits, driver, runtime;
    CUDA_CHECK(cudaGetDevice(&dev));
    struct cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    CUDA_CHECK(cudaDriverGetVersion(&driver));
    CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
    const double peak_bw = peak_bandwidth(dev, &clock_khz, &bus_bits);
    cJSON *dj = cJSON_CreateObject();
    cJSON_AddStringToObject(dj, "impl", "musae");
    cJSON_AddStringToObject(dj, "measure", "device");
    cJSON_AddStringToObject(dj, "gpu", prop.name);
    cJSON_AddNumberToObject(dj, "sm", prop.multiProcessorCount);
    char cc[16];
    snprintf(cc, sizeof cc, "%d.%d", prop.major, prop.minor);
    cJSON_AddStringToObject(dj, "cc", cc);
    musae_json_add_rounded(dj, "mem_total_mib", mib((double)prop.totalGlobalMem), 0);
    musae_json_add_rounded(dj, "mem_clock_mhz", clock_khz / 1e3, 0);
    cJSON_AddNumberToObject(dj, "bus_bits", bus_bits);
    musae_json_add_rounded(dj, "peak_bw_gbs", peak_bw / 1e9, 1);
    cJSON_AddNumberToObject(dj, "cuda_driver", driver);
    cJSON_AddNumberToObject(dj, "cuda_runtime", runtime);
    musae_json_print_line(stdout, dj);

    const size_t before = gpu_used(); /* context, cuBLASLt workspace */
    double t0 = musae_now();
    mg_model m;
    mg_load(&m, o.dir, ops, o.prec);
    ops->sync();
    const double load_s = musae_now() - t0;
    const size_t after = gpu_used();
    cJSON *lj = cJSON_CreateObject();
    cJSON_AddStringToObject(lj, "impl", "musae");
    cJSON_AddStringToObject(lj, "model", o.label);
    cJSON_AddStringToObject(lj, "measure", "load");
    cJSON_AddStringToObject(lj, "precision", m.prec == MUSAE_PREC_BF16 ? "bf16" : "fp32");
    cJSON_AddNumberToObject(lj, "layers", (double)m.n_layers);
    cJSON_AddNumberToObject(lj, "hidden", (double)m.H);
    cJSON_AddNumberToObject(lj, "heads", (double)m.n_heads);
    cJSON_AddNumberToObject(lj, "ffn", (double)m.ffn);
    cJSON_AddNumberToObject(lj, "params", (double)m.n_params);
    musae_json_add_rounded(lj, "load_s", load_s, 2);
    musae_json_add_rounded(lj, "weights_mib", mib((double)m.arena_bytes), 1);
    musae_json_add_rounded(lj, "mem_load_mib", mib((double)(after - before)), 1);
    musae_json_add_rounded(lj, "mem_base_mib", mib((double)before), 1);
    musae_json_print_line(stdout, lj);
    fflush(stdout);

    if (o.decode)
        for (int i = 0; i < o.n_batches; i++)
            for (int j = 0; j < o.n_loops; j++) bench_decode(&o, &m, o.batches[i], o.loops[j], peak_bw, before);
    if (o.capture) bench_capture(&o, &m);

    printf("\n%s (%s, %s weights) on %s, peak %.0f GB/s\n", o.label, o.dir, m.prec == MUSAE_PREC_BF16 ? "bf16" : "fp32",
           prop.name, peak_bw / 1e9);
    for (int i = 0; i < g_n_rows; i++) printf("  %-34s %12.3f %s\n", g_rows[i].what, g_rows[i].value, g_rows[i].unit);
    mg_free(&m);
    return 0;
}
