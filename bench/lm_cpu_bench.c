/* CPU benchmark of the MusicGen decoder (issue lm-cpu): teacher-forced frames/s over F frames and decode
 * ms/step with classifier-free guidance, on a checkpoint folder (bench/lm_make_model.py makes a
 * musicgen-small-sized random one). Prints one JSON line; bench/run_lm_cpu.sh runs the PyTorch peer
 * (bench/lm_cpu_torch.py) with the same shapes and threads and prints the ratios.
 *
 *   lm_cpu_bench --model DIR [--frames 500] [--decode-steps 100] [--text-len 12] [--reps 3] */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/omp_env.h"
#include "host/core/philox.h"
#include "host/io/json.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/isa.h"
#include "model/delay.h"
#include "model/generate.h"
#include "model/musicgen.h"

/* CPU seconds of the whole process (all threads): on a shared host wall time swings with others' load */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + 1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    musae_omp_env_init(argv); /* as the musae binary: passive OpenMP waits unless the user chose */
    const char *dir = NULL;
    int64_t F = 500, steps = 100, S = 12;
    int reps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) dir = argv[i + 1];
        else if (!strcmp(argv[i], "--frames")) F = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--decode-steps")) steps = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--text-len")) S = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else musae_fail("unknown option %s", argv[i]);
    }
    if (!dir) musae_fail("usage: lm_cpu_bench --model DIR [--frames N] [--decode-steps N] [--text-len S] [--reps R]");

    double t0 = musae_now();
    mg_model m;
    mg_load(&m, dir, musae_ops_cpu(), MUSAE_PREC_FP32);
    const double load_s = musae_now() - t0;
    const int64_t K = m.K, V = m.V, H = m.H, T = F + K;

    /* inputs: random codes and text states (a deterministic Philox stream) */
    int64_t *codes = musae_xmalloc(sizeof(int64_t) * (size_t)(K * F)), *delayed = musae_xmalloc(sizeof(int64_t) * (size_t)(K * T));
    for (int64_t i = 0; i < K * F; i++) codes[i] = musae_philox(1, 0, (uint64_t)i).v[0] % (uint32_t)V;
    mg_delay_codes(codes, 1, K, F, V, delayed);
    float *states = musae_xmalloc(sizeof(float) * (size_t)(S * H)), *mask = musae_xmalloc(sizeof(float) * (size_t)S);
    for (int64_t i = 0; i < S * H; i++) states[i] = musae_u32_to_unit(musae_philox(2, 0, (uint64_t)i).v[0]) - 0.5f;
    for (int64_t i = 0; i < S; i++) mask[i] = 1.0f;

    /* teacher forcing: one pass over T = F + K steps with text, logits included (as the HF forward) */
    mg_state st;
    mg_state_opts o = {.batch = 1, .n_cond = 1, .t_max = T, .t_call = T, .incremental = 0, .logits = 1};
    mg_state_init(&st, &m, &o);
    mg_state_set_text(&st, &m, states, mask, S);
    double best_tf = INFINITY, best_tf_cpu = INFINITY;
    for (int r = 0; r <= reps; r++) { /* r = 0 warms up */
        t0 = musae_now();
        const double c0 = cpu_s();
        mg_forward(&m, &st, delayed, T, NULL, 0, 1);
        const double dt = musae_now() - t0, dc = cpu_s() - c0;
        if (r > 0 && dt < best_tf) best_tf = dt;
        if (r > 0 && dc < best_tf_cpu) best_tf_cpu = dc;
    }
    mg_state_free(&st, &m);

    /* decoding: CFG 3 ([cond; uncond] rows), top-k 250 sampling, `steps` steps */
    mg_text text = {states, mask, S};
    mg_gen_params p = {.steps = 3, .guidance = 3.0f};
    p.sampler = (mg_sampler){.greedy = 0, .temperature = 1.0f, .top_k = 250, .top_p = 1.0f, .seed = 0};
    int64_t *out = musae_xmalloc(sizeof(int64_t) * (size_t)(K * (steps > 3 ? steps : 3)));
    double best_dec = INFINITY;
    if (steps > 0) mg_generate(&m, 1, &text, &p, NULL, 0, NULL, NULL, out); /* warm-up */
    p.steps = steps;
    for (int r = 0; steps > 0 && r < (reps > 1 ? 2 : 1); r++) {
        t0 = musae_now();
        mg_generate(&m, 1, &text, &p, NULL, 0, NULL, NULL, out);
        const double dt = musae_now() - t0;
        if (dt < best_dec) best_dec = dt;
    }

    const double weights_mib = (double)m.n_params * 4.0 / (1 << 20);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "impl", "musae");
    cJSON_AddNumberToObject(j, "frames", (double)F);
    musae_json_add_rounded(j, "tf_s", best_tf, 4);
    musae_json_add_rounded(j, "tf_frames_per_s", (double)F / best_tf, 2);
    musae_json_add_rounded(j, "tf_cpu_s", best_tf_cpu, 4);
    musae_json_add_rounded(j, "tf_frames_per_cpu_s", (double)F / best_tf_cpu, 2);
    cJSON_AddNumberToObject(j, "decode_steps", (double)steps);
    /* no steps: null */
    musae_json_add_rounded(j, "decode_ms_per_step", steps > 0 ? 1e3 * best_dec / (double)steps : NAN, 3);
    musae_json_add_rounded(j, "load_s", load_s, 2);
    musae_json_add_rounded(j, "peak_rss_mib", peak_rss_mib(), 0);
    musae_json_add_rounded(j, "weights_mib", weights_mib, 0);
    musae_json_add_rounded(j, "rss_over_weights", peak_rss_mib() / weights_mib, 3);
    /* the level and the arithmetic of the products over many rows (kernels/cpu/isa.h: amx-bf16x3 or fma-fp32) */
    cJSON_AddStringToObject(j, "isa", musae_isa_name(musae_isa_get()));
    cJSON_AddStringToObject(j, "cpu_arith", cpu_gemm_arith());
    musae_json_print_line(stdout, j);
    free(out), free(codes), free(delayed), free(states), free(mask);
    mg_free(&m);
    return 0;
}
