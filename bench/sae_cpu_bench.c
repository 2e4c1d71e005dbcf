/* CPU SAE training throughput: sae_trainer_step on random activations, with a per-phase breakdown.
 *   sae_cpu_bench [--d 1024] [--latents 32768] [--k 32] [--batch 4096] [--steps 5] [--warmup 1]
 *                 [--dead-frac 0] [--k-aux 512] [--batch-topk]
 * Prints one JSON line: wall-clock tokens/s and tokens per CPU-second (steadier on a shared machine).
 * bench/run_sae_cpu.sh runs it beside the PyTorch peer (bench/sae_cpu_torch.py). */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/io/json.h"
#include "sae/sae.h"

static double arg(int argc, char **argv, const char *name, double dflt) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return atof(argv[i + 1]);
    return dflt;
}

int main(int argc, char **argv) {
    const int d = (int)arg(argc, argv, "--d", 1024), M = (int)arg(argc, argv, "--latents", 32768);
    const int k = (int)arg(argc, argv, "--k", 32), steps = (int)arg(argc, argv, "--steps", 5);
    const int warm = (int)arg(argc, argv, "--warmup", 1), k_aux = (int)arg(argc, argv, "--k-aux", d / 2);
    const int64_t B = (int64_t)arg(argc, argv, "--batch", 4096);
    const double dead_frac = arg(argc, argv, "--dead-frac", 0);
    int batch_topk = 0;
    for (int i = 1; i < argc; i++) batch_topk |= !strcmp(argv[i], "--batch-topk");
    sae_config c;
    sae_config_defaults(&c, d, M, k);
    c.k_aux = k_aux;
    c.batch_topk = batch_topk;
    c.warmup_steps = 0;
    c.dead_tokens = 1000000;
    sae_trainer t;
    sae_trainer_init(&t, &c, B);
    /* inputs: Gaussian rows with a common offset, like residual streams */
    float *x = musae_xmalloc(sizeof(float) * (size_t)(B * d));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < B * d; i++) {
        musae_u32x4 r = musae_philox(1, 2, (uint64_t)i);
        double u1 = ((double)(r.v[0] >> 8) + 1.0) / 16777216.0, u2 = (double)(r.v[1] >> 8) / 16777216.0;
        x[i] = (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2)) + 0.5f * (float)((i % d) % 7 == 0);
    }
    sae_trainer_init_weights(&t, x, B < 8192 ? B : 8192);
    /* a fixed fraction of dead latents, so AuxK runs as it does mid-training */
    for (int i = 0; i < M; i++) t.since_fired[i] = (i % 1000) < dead_frac * 1000 ? (int64_t)1 << 40 : 0;
    for (int s = 0; s < warm; s++) sae_trainer_step(&t, x, B, NULL);
    memset(t.seconds, 0, sizeof t.seconds);
    double t0 = musae_now(), c0 = (double)clock() / CLOCKS_PER_SEC;
    sae_step_stats st = {0};
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < M; i++) /* keep the dead set fixed */
            t.since_fired[i] = (i % 1000) < dead_frac * 1000 ? (int64_t)1 << 40 : 0;
        sae_trainer_step(&t, x, B, &st);
    }
    double el = musae_now() - t0, cpu = (double)clock() / CLOCKS_PER_SEC - c0;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "impl", "musae");
    cJSON_AddNumberToObject(j, "d", d);
    cJSON_AddNumberToObject(j, "latents", M);
    cJSON_AddNumberToObject(j, "k", k);
    cJSON_AddNumberToObject(j, "batch", (double)B);
    cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
    cJSON_AddNumberToObject(j, "steps", steps);
    cJSON_AddNumberToObject(j, "dead_frac", dead_frac);
    musae_json_add_rounded(j, "tokens_per_s", (double)(B * steps) / el, 1);
    musae_json_add_rounded(j, "tokens_per_cpu_s", (double)(B * steps) / cpu, 1);
    musae_json_add_rounded(j, "s_per_step", el / steps, 4);
    musae_json_add_rounded(j, "encode", t.seconds[0] / steps, 4);
    musae_json_add_rounded(j, "decode_loss", t.seconds[1] / steps, 4);
    musae_json_add_rounded(j, "backward", t.seconds[2] / steps, 4);
    musae_json_add_rounded(j, "adam", t.seconds[3] / steps, 4);
    musae_json_add_rounded(j, "fvu", st.fvu, 4);
    musae_json_print_line(stdout, j);
    free(x);
    sae_trainer_free(&t);
    return 0;
}
