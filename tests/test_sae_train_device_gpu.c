/* `musae train --device cuda` end to end against `--device cpu`, on test_sae_planted's store and recipe (d 256,
 * 1024 planted directions, M 2048, k 16, 3M tokens; the CPU recovers >= 95% there):
 * - GPU f32 and GPU bf16 (the default precision): held-out FVU within 1% of the CPU run's, and at least 95% of
 *   the CPU's share of planted directions recovered (the rule of tests/test_sae_gpu_train.cu's planted case: the
 *   GPU's steps differ from the CPU's by summation order, bf16 operands and near-tie selections, so the runs
 *   part, and the bar is the quality they reach, not their weights);
 * - SIGKILL (and SIGTERM) after the first saved state, then --resume on the GPU: the same checkpoint bytes and
 *   metric lines as the uninterrupted GPU run (the GPU trainer is deterministic: no float atomics, sums in fixed
 *   orders, docs/CUDA_SAE.md; its state round-trips exactly through the CPU trainer);
 * - a GPU run's state resumed with --device cpu, and a CPU run's resumed with --device cuda, train to the end and
 *   meet the same quality rule;
 * - auto picks the GPU and says so; musae.json records device and precision;
 * - with two GPUs and mpirun: --dist data --device cuda (NCCL) meets the quality rule.
 * Skips (77) without a usable GPU, with the reason. */
#include <signal.h>
#include <unistd.h>

#include "host/core/check.h"
#include "kernels/cuda/cuda_device.h"
#include "test.h"

#include "cli.h"

#define TOKENS 3000000
#define TRAIN "train --acts p.h5 --layer 0 --k 16 --expansion 8 --tokens 3000000 --batch 2048 --warmup 100 " \
              "--dead-tokens 200000 --seed 1 --save-every 50"

/* dir's held-out FVU within 1% of the CPU run's (C), and >= 95% of C's recovered share. */
static void quality(const char *dir) {
    const double fc = ckpt_number("C", "fvu"), rc = ckpt_number("C", "recovered");
    const double f = ckpt_number(dir, "fvu"), r = ckpt_number(dir, "recovered");
    printf("%-4s held-out FVU %.5f (CPU %.5f, %+.2f%%), recovered %.4f (CPU %.4f), tokens %.0f\n", dir, f, fc,
           100 * (f - fc) / fc, r, rc, ckpt_number(dir, "tokens_seen"));
    CHECK(fc > 0 && f > 0 && fabs(f - fc) <= 0.01 * fc, "%s: held-out FVU %g within 1%% of the CPU's %g", dir, f, fc);
    CHECK(rc > 0 && r >= 0.95 * rc, "%s: recovered %g >= 95%% of the CPU's %g", dir, r, rc);
    CHECK(ckpt_number(dir, "tokens_seen") == TOKENS, "%s trained to the end", dir);
}

static void records(const char *dir, const char *device, const char *precision) {
    char name[600], want[80];
    snprintf(name, sizeof name, "%s/musae.json", dir);
    char *j = slurp(name);
    snprintf(want, sizeof want, "\"device\":\t\"%s\"", device);
    CHECK(strstr(j, want) != NULL, "%s/musae.json records device %s", dir, device);
    snprintf(want, sizeof want, "\"precision\":\t\"%s\"", precision);
    CHECK(strstr(j, want) != NULL, "%s/musae.json records precision %s", dir, precision);
    free(j);
}

/* Starts "musae <args> -o dir" in the background, waits for its first saved state, sends sig, and waits for the
 * run to end. Returns its exit status (128 + signal when killed). */
static int run_and_signal(const char *args, const char *dir, int sig) {
    char full[3000], state[600];
    snprintf(full, sizeof full, "%s -o %s", args, dir);
    snprintf(state, sizeof state, "%s/state/run.json", dir);
    const pid_t pid = start_and_wait_for(bin(), full, state, 120);
    kill(pid, sig);
    return wait_exit(pid);
}

static void interrupted(const char *dir, int st) {
    char state[600], ckpt[600];
    snprintf(state, sizeof state, "%s/state/run.json", dir);
    snprintf(ckpt, sizeof ckpt, "%s/sae.safetensors", dir);
    CHECK(st != 0, "%s: the interrupted run failed (status %d)", dir, st);
    CHECK(dir_has(state) && !dir_has(ckpt), "%s: an interrupted run leaves its state, no checkpoint", dir);
}

static void same_as_g(const char *dir) {
    char b[600];
    snprintf(b, sizeof b, "%s/sae.safetensors", dir);
    CHECK(same_bytes("G/sae.safetensors", b), "%s: killed + resumed on the GPU equals the uninterrupted GPU run bitwise",
          dir);
    snprintf(b, sizeof b, "%s/metrics.jsonl", dir);
    char *x = slurp("G/metrics.jsonl"), *y = slurp(b);
    drop_rates(x);
    drop_rates(y);
    CHECK(strlen(x) > 100 && !strcmp(x, y), "%s/metrics.jsonl equals G's (timing aside)", dir);
    free(x), free(y);
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    char why[512];
    const int n_gpu = musae_cuda_device_count(why, sizeof why);
    if (n_gpu == 0) TEST_SKIP("%s", why);
    scratch_open("test_sae_train_device_gpu");
    if (run("synth_acts -o p.h5 --d 256 --concepts 1024 --k-true 8 --rows 300000 --seed 1"))
        setup_failed("cannot make the planted store");

    CHECK(run(TRAIN " --device cpu -o C") == 0, "CPU run");
    records("C", "cpu", "f32");
    CHECK(run(TRAIN " --device cuda --precision f32 -o G") == 0, "GPU f32 run");
    err_has("device: cuda (--device cuda");
    err_has("precision: f32 (--precision)");
    records("G", "cuda", "f32");
    quality("G");
    CHECK(run(TRAIN " --device cuda -o H") == 0, "GPU bf16 run");
    err_has("precision: bf16 (default on the GPU)");
    records("H", "cuda", "bf16");
    quality("H");

    /* interrupted on the GPU, resumed on the GPU */
    interrupted("K", run_and_signal(TRAIN " --device cuda --precision f32", "K", SIGKILL));
    CHECK(run(TRAIN " --device cuda --precision f32 -o K --resume") == 0, "GPU resume after SIGKILL");
    err_has("resuming 1 SAE(s) at step ");
    same_as_g("K");
    const int st = run_and_signal(TRAIN " --device cuda --precision f32", "T", SIGTERM);
    char *e = slurp("kill_err.txt");
    CHECK(st == 130 && strstr(e, "interrupted by signal 15"), "SIGTERM saves and exits 130 (status %d): %s", st, e);
    free(e);
    interrupted("T", st);
    CHECK(run(TRAIN " --device cuda --precision f32 -o T --resume") == 0, "GPU resume after SIGTERM");
    same_as_g("T");

    /* states across devices: the format is the ordinary one */
    interrupted("GC", run_and_signal(TRAIN " --device cuda --precision f32", "GC", SIGKILL));
    CHECK(run(TRAIN " --device cpu -o GC --resume") == 0, "a GPU run's state resumed on the CPU");
    err_has("resuming 1 SAE(s) at step ");
    quality("GC");
    records("GC", "cpu", "f32");
    interrupted("CG", run_and_signal(TRAIN " --device cpu", "CG", SIGKILL));
    CHECK(run(TRAIN " --device cuda --precision f32 -o CG --resume") == 0, "a CPU run's state resumed on the GPU");
    quality("CG");

    CHECK(run("train --acts p.h5 --layer 0 --k 16 --expansion 8 --tokens 20480 --batch 2048 -o AU") == 0, "auto");
    err_has("device: cuda (auto: a GPU is usable");
    records("AU", "cuda", "bf16");

#ifdef MUSAE_MPIEXEC
    if (n_gpu >= 2) {
        CHECK(run_mpi(TRAIN " --dist data --device cuda --precision f32 -o D") == 0, "mpirun -np 2 --dist data --device cuda");
        err_has("gradients all-reduced over NCCL");
        quality("D");
    } else {
        printf("one GPU: the NCCL data-parallel run needs two (not run)\n");
    }
#endif
    scratch_close();
    TEST_END();
}
