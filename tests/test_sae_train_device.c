/* `musae train --device cpu|cuda|auto --precision f32|bf16` without a GPU (any GPU is hidden with
 * CUDA_VISIBLE_DEVICES="", so the test means the same in a CUDA build on a GPU machine):
 * - --device cpu and --device auto train bitwise as no flag (checkpoint bytes, metric lines without the timing)
 *   and say which device and why; musae.json records the device and precision;
 * - --device cuda fails before writing anything, naming the reason;
 * - bad --device/--precision values are refused; --device cpu --precision bf16 is refused (the CPU trainer is
 *   f32 only), while auto landing on the CPU logs f32 and trains bitwise as f32;
 * - under mpirun (when built with MPI): --dist latent and batch-top-k --dist data are refused on the GPU with
 *   the alternative named, and auto leaves them to the CPU with that reason. */
#include "host/core/check.h"
#include "test.h"

#include "cli.h"

#define TRAIN "train --acts s.h5 --batch 256 --warmup 10 --dead-tokens 3000 --k-aux 8 --shuffle-rows 2048 " \
              "--init-rows 2048 --eval-tokens 2048 --seed 3 --tokens 20000 --layer 0 --k 8 --expansion 4"

/* The run in dir trained bitwise as the run in A: the same checkpoint bytes, the same metric lines. */
static void same_run(const char *dir) {
    char a[600], b[600];
    snprintf(b, sizeof b, "%s/sae.safetensors", dir);
    CHECK(same_bytes("A/sae.safetensors", b), "%s/sae.safetensors equals A's bitwise", dir);
    snprintf(b, sizeof b, "%s/metrics.jsonl", dir);
    char *x = slurp("A/metrics.jsonl"), *y = slurp(b);
    drop_rates(x);
    drop_rates(y);
    CHECK(strlen(x) > 100 && !strcmp(x, y), "%s/metrics.jsonl equals A's (timing aside)", dir);
    free(x), free(y);
    snprintf(a, sizeof a, "%s/musae.json", dir);
    char *j = slurp(a);
    CHECK(strstr(j, "\"device\":\t\"cpu\"") && strstr(j, "\"precision\":\t\"f32\""),
          "%s/musae.json records device cpu, precision f32", dir);
    free(j);
}

static void test_cpu_and_auto(void) {
    CHECK(run(TRAIN " -o A") == 0, "no --device flag");
    err_has("device: cpu (auto: no usable CUDA device");
    CHECK(run(TRAIN " --device cpu -o C") == 0, "--device cpu");
    err_has("device: cpu (--device cpu)");
    same_run("C");
    CHECK(run(TRAIN " --device auto -o U") == 0, "--device auto");
    err_has("device: cpu (auto: no usable CUDA device");
    same_run("U");
    CHECK(run(TRAIN " --device cpu --precision f32 -o F") == 0, "--precision f32 on the CPU");
    same_run("F");
    CHECK(run(TRAIN " --precision bf16 -o H") == 0, "auto on the CPU with --precision bf16");
    err_has("precision: f32, not the bf16 asked for: the CPU trainer is f32 only");
    same_run("H");
}

/* The run is refused (exit 1), writes nothing, and its message holds `what`. */
static void refused(const char *what, const char *args) {
    sh("rm -rf X");
    CHECK(run(TRAIN " %s -o X", args) == 1, "refused: %s", args);
    err_has(what);
    CHECK(!dir_has("X"), "nothing written for %s", args);
}

static void test_refusals(void) {
    refused("--device cuda: no usable CUDA device (", "--device cuda");
    char *e = slurp("err.txt");
    const char *p = strstr(e, "no usable CUDA device (");
    CHECK(p && p[23] != ')' && strlen(p) > 40, "a reason is given: %s", e);
    free(e);
    refused("--device cuda: no usable CUDA device (", "--device cuda --precision f32");
    refused("--device: expected cuda, cpu or auto, got 'gpu'", "--device gpu");
    refused("--precision: expected f32 or bf16, got 'fp16'", "--precision fp16");
    refused("--precision: expected f32 or bf16, got 'bf16x'", "--device cpu --precision bf16x");
    refused("--precision: expected f32 or bf16, got ''", "--precision ''");
    refused("--precision bf16: the CPU trainer is f32 only", "--device cpu --precision bf16");
    CHECK(run("train --acts s.h5 --layer 0 --k 8 --expansion 4 -o X --precision") == 1, "--precision without a value");
    err_has("--precision needs a value");
    CHECK(run("train --help") == 0, "train --help");
    char *h = slurp("out.txt");
    CHECK(strstr(h, "--device D") && strstr(h, "--precision P"), "--help names --device and --precision: %s", h);
    free(h);
}

#ifdef MUSAE_MPIEXEC
static void test_dist(void) {
    if (run_mpi("--version") != 0) {
        printf("mpirun cannot start 2 ranks here: the --dist checks are skipped\n");
        return;
    }
    sh("rm -rf X");
    CHECK(run_mpi(TRAIN " --dist latent --device cuda -o X") == 1, "--dist latent --device cuda is refused");
    err_has("latent-sharded training (--dist latent) is not built on the GPU: use --dist data on GPUs, or "
            "--dist latent --device cpu");
    CHECK(run_mpi(TRAIN " --dist data --batch-topk --device cuda -o X") == 1, "batch-top-k --dist data on the GPU");
    err_has("data-parallel GPU training takes per-row top-k only");
    CHECK(!dir_has("X"), "nothing written by the refused runs");
    CHECK(run_mpi(TRAIN " --dist latent -o L") == 0, "--dist latent, auto");
    err_has("device: cpu (auto: latent-sharded training (--dist latent) is not built on the GPU");
    CHECK(dir_has("L/sae.safetensors"), "the latent-sharded run trained on the CPU");
}
#endif

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    setenv("CUDA_VISIBLE_DEVICES", "", 1); /* no GPU, whatever the machine has */
    scratch_open("test_sae_train_device");
    if (run("synth_acts -o s.h5 --d 32 --concepts 48 --k-true 3 --rows 12000 --clip-frames 100 --layers 0,1"))
        setup_failed("cannot make the synthetic store");
    test_cpu_and_auto();
    test_refusals();
#ifdef MUSAE_MPIEXEC
    test_dist();
#endif
    scratch_close();
    TEST_END();
}
