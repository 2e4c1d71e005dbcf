/* Cost of steering (issue 20: a steered batch costs <= 1.1x an unsteered batch of the same size): mg_generate
 * with text + CFG 3.0 for B items, unsteered (no hooks) and steered (one ADD hook after the middle layer, both
 * CFG branches, every position, a different vector per item: vec_n = B), in the same run on the same model,
 * alternating the two so drift in the machine's load hits both. The headline is the CPU time of the process (all
 * threads; median of --reps runs) per step and its ratio steered / unsteered: on a machine shared with other
 * busy processes wall-clock medians and minima swing by 20-140 % from run to run (measured at load 11 on 2 cores)
 * while the work differs by one add per step, and CPU time counts the work, not the waiting. Wall-clock ms/step
 * (fastest and median) is printed too, for a quiet machine. One JSON line at the end.
 *
 *   steer_bench [--model DIR] [--batch 8] [--steps 60] [--reps 5] [--loop device|host] [--sample]
 * DIR defaults to the tiny test model (tests/fixtures/tiny-musicgen); bench/lm_make_model.py makes a
 * musicgen-small-sized one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/omp_env.h"
#include "host/core/philox.h"
#include "model/generate.h"

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    musae_omp_env_init(argv);
    const char *dir = MUSAE_SOURCE_DIR "/tests/fixtures/tiny-musicgen";
    int64_t B = 8, steps = 60, S = 12;
    int reps = 5, sample = 0;
    mg_gen_loop loop = MG_LOOP_DEVICE;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--sample")) { sample = 1; continue; }
        if (!v) musae_fail("%s needs a value", argv[i]);
        if (!strcmp(argv[i], "--model")) dir = v;
        else if (!strcmp(argv[i], "--batch")) B = atoll(v);
        else if (!strcmp(argv[i], "--steps")) steps = atoll(v);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(v);
        else if (!strcmp(argv[i], "--loop")) loop = !strcmp(v, "host") ? MG_LOOP_HOST : MG_LOOP_DEVICE;
        else musae_fail("unknown option %s (steer_bench [--model DIR] [--batch B] [--steps N] [--reps R] "
                        "[--loop device|host] [--sample])", argv[i]);
        i++;
    }
    if (B < 1 || steps < 4 || reps < 1) musae_fail("--batch >= 1, --steps >= 4 and --reps >= 1");

    mg_model m;
    mg_load(&m, dir, musae_ops_cpu(), MUSAE_PREC_FP32);
    const int64_t H = m.H, K = m.K;
    float *states = musae_xmalloc(sizeof(float) * (size_t)(B * S * H)), *mask = musae_xmalloc(sizeof(float) * (size_t)(B * S));
    for (int64_t i = 0; i < B * S * H; i++) states[i] = musae_u32_to_unit(musae_philox(2, 0, (uint64_t)i).v[0]) - 0.5f;
    for (int64_t i = 0; i < B * S; i++) mask[i] = 1.0f;
    float *vecs = musae_xmalloc(sizeof(float) * (size_t)(B * H));
    for (int64_t i = 0; i < B * H; i++) vecs[i] = musae_u32_to_unit(musae_philox(3, 0, (uint64_t)i).v[0]) - 0.5f;
    float *dv = m.ops->alloc(sizeof(float) * (size_t)(B * H));
    m.ops->upload(dv, vecs, sizeof(float) * (size_t)(B * H));
    const mg_hook hook = {.kind = MG_HOOK_ADD, .layer = (int)(m.n_layers / 2), .branch = MG_BRANCH_BOTH,
                          .pos_begin = 0, .pos_end = MG_POS_END, .vec = dv, .vec_n = B, .scale = 1.0f};

    mg_text text = {states, mask, S};
    mg_gen_params p = {.steps = steps, .guidance = 3.0f, .loop = loop};
    p.sampler = sample ? (mg_sampler){.greedy = 0, .temperature = 1.0f, .top_k = 250, .top_p = 1.0f, .seed = 0}
                       : (mg_sampler){.greedy = 1};
    const int64_t F = mg_delay_plan_steps(K, steps).frames;
    int64_t *out = musae_xmalloc(sizeof(int64_t) * (size_t)(B * K * F));
    double *t[2], *c[2];
    for (int s = 0; s < 2; s++) {
        t[s] = musae_xmalloc(sizeof(double) * (size_t)reps);
        c[s] = musae_xmalloc(sizeof(double) * (size_t)reps);
    }
    for (int r = -1; r < reps; r++) /* r = -1 warms up both */
        for (int s = 0; s < 2; s++) {
            const int st = (r & 1) ? 1 - s : s; /* alternate which goes first */
            const double t0 = musae_now(), c0 = musae_process_cpu();
            mg_generate(&m, B, &text, &p, st ? &hook : NULL, st ? 1 : 0, NULL, NULL, out);
            if (r >= 0) {
                t[st][r] = (musae_now() - t0) * 1e3 / (double)steps;
                c[st][r] = (musae_process_cpu() - c0) * 1e3 / (double)steps;
            }
        }
    qsort(t[0], (size_t)reps, sizeof(double), cmp_double);
    qsort(t[1], (size_t)reps, sizeof(double), cmp_double);
    qsort(c[0], (size_t)reps, sizeof(double), cmp_double);
    qsort(c[1], (size_t)reps, sizeof(double), cmp_double);
    const double cpu_plain = c[0][reps / 2], cpu_steered = c[1][reps / 2];
    const double plain = t[0][0], steered = t[1][0], plain_med = t[0][reps / 2], steered_med = t[1][reps / 2];
    printf("model %s (H %lld, %lld layers), batch %lld with CFG (%lld rows), %lld steps, %s loop, %s\n", dir,
           (long long)H, (long long)m.n_layers, (long long)B, (long long)(2 * B), (long long)steps,
           loop == MG_LOOP_HOST ? "host" : "device", sample ? "top-k 250" : "greedy");
    printf("CPU time per step (all threads, median of %d): unsteered %.3f ms, steered (per-item vectors after layer "
           "%d, both branches) %.3f ms: ratio %.3f (target <= 1.1: %s)\n", reps, cpu_plain, hook.layer, cpu_steered,
           cpu_steered / cpu_plain, cpu_steered / cpu_plain <= 1.1 ? "met" : "NOT met");
    printf("wall clock per step: fastest %.3f vs %.3f ms (ratio %.3f), median %.3f vs %.3f ms (ratio %.3f)\n", plain,
           steered, steered / plain, plain_med, steered_med, steered_med / plain_med);
    printf("{\"bench\":\"steer\",\"model\":\"%s\",\"H\":%lld,\"layers\":%lld,\"batch\":%lld,\"steps\":%lld,\"loop\":\"%s\","
           "\"cpu_ms_per_step\":[%.4f,%.4f],\"ratio\":%.4f,\"wall_fastest_ms_per_step\":[%.4f,%.4f],"
           "\"wall_median_ms_per_step\":[%.4f,%.4f]}\n", dir,
           (long long)H, (long long)m.n_layers, (long long)B, (long long)steps, loop == MG_LOOP_HOST ? "host" : "device",
           cpu_plain, cpu_steered, cpu_steered / cpu_plain, plain, steered, plain_med, steered_med);
    free(t[0]), free(t[1]), free(c[0]), free(c[1]), free(out), free(states), free(mask), free(vecs);
    m.ops->free(dv);
    mg_free(&m);
    return 0;
}
