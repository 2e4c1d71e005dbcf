/* `mpirun -np 2 musae train --dist data|latent` end to end, against one process with the same global batch:
 * - both modes: the checkpoint (rank 0 writes; latent shards re-gathered) loads with the ordinary sae_load and
 *   equals the one-process weights within the rule of tests/test_sae_dist.c, |Δw| ≤ T·(lr·N·u + 2u·max|w|) in
 *   the training scale (the saved biases are divided by the input scale s, and so is their bound); the metric
 *   curves (loss, FVU, AuxK, L0, dead fraction per logged step, and the held-out evaluation) agree to 1e-4
 *   relative, their printed precision plus those weight differences;
 * - a grid of SAEs of two widths, latent-sharded; batch-top-k, data-parallel;
 * - latent mode killed (SIGKILL to the ranks) and resumed: bit-identical to the uninterrupted latent run;
 *   stopped by SIGTERM to one rank only (as a scheduler's signal may reach one node first: the ranks agree to
 *   stop and save), then resumed by one process from the ordinary-layout state: within the rule of the
 *   uninterrupted latent run's quality (held-out FVU within 5%, the same share of planted concepts recovered):
 *   a weight rule cannot hold over the 600 steps after the switch from latent-sharded to one-process sums
 *   (see below). The signals go to the ranks themselves, not to mpirun: whether and when mpirun
 *   forwards them depends on the launcher's version, and a 0.4 s run can end before a forwarded one arrives.
 * The rule covers summation order only. A pre-activation within rounding of the k-th largest of its row can
 * be selected in one run and not the other (seen once here: a relative gap of 1.4e-7 at step 139 of a k = 4
 * run; the runs then part by about lr per step). The chance grows with rows × steps, so the comparisons run
 * 40 steps (AuxK made active early: 8× latents, k = 4, --dead-tokens 256); only the resume checks, which are bit-exact or
 * start from a shared state, run long enough to be interrupted. */
#include <signal.h>
#include <unistd.h>

#include "host/core/check.h"
#include "sae/sae.h"
#include "sae/train.h"
#include "test.h"

#ifndef MUSAE_MPIEXEC
#define MUSAE_MPIEXEC "mpirun"
#endif
#include "cli.h"

#define TRAIN "train --acts s.h5 --batch 256 --warmup 10 --dead-tokens 256 --k-aux 8 --lr 2e-3 " \
              "--shuffle-rows 2048 --init-rows 2048 --eval-tokens 2048 --seed 3 --log-every 5"
#define SHORT TRAIN " --tokens 10240 --layer 0 --k 4 --expansion 8"
#define SHORT_STEPS 40 /* 10240 / 256 */
#define LONG TRAIN " --tokens 160000 --layer 0 --k 8 --expansion 4 --save-every 7"
#define LONG_STEPS 625
#define LR 2e-3
#define BATCH 256

/* Checkpoint dir b (distributed) against a (one process) by the rule; prints the share of the bound used. */
static void compare_ckpt(const char *a, const char *b, int steps) {
    char pa[1024], pb[1024], err[600];
    snprintf(pa, sizeof pa, "%s/%s", g_dir, a);
    snprintf(pb, sizeof pb, "%s/%s", g_dir, b);
    sae_model ma, mb;
    if (sae_load(pa, &ma, err, sizeof err)) {
        CHECK(0, "load %s: %s", a, err);
        return;
    }
    if (sae_load(pb, &mb, err, sizeof err)) {
        CHECK(0, "sae_load reads the distributed checkpoint %s: %s", b, err);
        sae_model_free(&ma);
        return;
    }
    CHECK(ma.d == mb.d && ma.M == mb.M && ma.k == mb.k && ma.layer == mb.layer && ma.scale == mb.scale,
          "%s: the same SAE (d %d/%d, M %d/%d, k %d/%d, scale %g/%g)", b, ma.d, mb.d, ma.M, mb.M, ma.k, mb.k, ma.scale,
          mb.scale);
    if (ma.d == mb.d && ma.M == mb.M) {
        const double u = ldexp(1.0, -24), s = ma.scale;
        const int64_t d = ma.d, M = ma.M, len[4] = {M * d, M, M * d, d};
        const float *x[4] = {ma.p.W_enc, ma.p.b_enc, ma.p.W_dec, ma.p.b_dec}, *y[4] = {mb.p.W_enc, mb.p.b_enc, mb.p.W_dec, mb.p.b_dec};
        const double unscale[4] = {1.0, 1.0 / s, 1.0, 1.0 / s}; /* the biases were saved divided by s */
        const double lr_of[4] = {LR, LR * SAE_DEFAULT_BENC_LR_MULT, LR, LR}; /* the encoder bias steps faster */
        const char *tn[4] = {"encoder.weight", "encoder.bias", "W_dec", "b_dec"};
        printf("%s vs %s:", b, a);
        for (int q = 0; q < 4; q++) {
            double wmax = 0, dw = 0;
            for (int64_t i = 0; i < len[q]; i++) {
                wmax = fmax(wmax, fabs(x[q][i]));
                dw = fmax(dw, fabs((double)x[q][i] - (double)y[q][i]));
            }
            const double tol = steps * (lr_of[q] * BATCH * u * unscale[q] + 2 * u * wmax);
            printf(" %s %.2g (%.0f%% of %.2g)", tn[q], dw, 100 * dw / tol, tol);
            CHECK(dw <= tol, "%s: %s differs by %g from %s > %g", b, tn[q], dw, a, tol);
        }
        printf("\n");
    }
    sae_model_free(&ma);
    sae_model_free(&mb);
}

/* Every number of every line of two metrics.jsonl files within 1e-4 relative, except the timing. */
static void compare_metrics(const char *a, const char *b) {
    char *x = slurp(a), *y = slurp(b);
    const char *p = x, *q = y;
    int n = 0, ok = strlen(x) > 0;
    while (ok && *p && *q) {
        if (!strncmp(p, "\"tokens_per_s\":", 15) && !strncmp(q, "\"tokens_per_s\":", 15)) {
            while (*p && *p != '}') p++;
            while (*q && *q != '}') q++;
            continue;
        }
        if ((*p == '-' || (*p >= '0' && *p <= '9')) && p[-1] == ':') {
            char *ep, *eq;
            double u = strtod(p, &ep), v = strtod(q, &eq);
            if (eq == q || fabs(u - v) > 1e-4 * fmax(fabs(u), fabs(v)) + 1e-12) {
                CHECK(0, "%s vs %s: %.40s vs %.40s", a, b, p, q);
                ok = 0;
            }
            p = ep, q = eq, n++;
            continue;
        }
        if (*p != *q) ok = 0;
        p++, q++;
    }
    CHECK(ok && !*p && !*q && n > 20, "%s and %s agree (%d numbers)", a, b, n);
    free(x), free(y);
}

/* Children of pid (the ranks under mpirun), from /proc. */
static int children(pid_t pid, pid_t *out, int cap) {
    char path[128];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f) return 0;
    while (n < cap && fscanf(f, "%d", &c) == 1) out[n++] = c;
    fclose(f);
    return n;
}

/* Starts `mpirun -np 2 musae <args>`, waits for its first saved state in B/, then SIGKILLs both ranks
 * (kill_ranks: a node failure) or sends SIGTERM to the second rank only. Returns mpirun's exit status. */
static int run_mpi_and_stop(const char *args, int kill_ranks) {
    const pid_t pid = start_and_wait_for(mpi_prefix(), args, "B/state/run.json", 20);
    pid_t ranks[8];
    int n = children(pid, ranks, 8);
    CHECK(n == 2, "found %d ranks under mpirun", n);
    if (kill_ranks)
        for (int i = 0; i < n; i++) kill(ranks[i], SIGKILL);
    else if (n > 0)
        kill(ranks[n - 1], SIGTERM);
    return wait_exit(pid);
}

static void test_modes(void) {
    CHECK(run(SHORT " -o A") == 0, "one process");
    CHECK(run_mpi(SHORT " --dist data -o D") == 0, "mpirun -np 2 --dist data");
    char *err = slurp("err.txt");
    CHECK(strstr(err, "data-parallel over 2 ranks") != NULL, "the run says it is data-parallel: %s", err);
    free(err);
    CHECK(run_mpi(SHORT " --dist latent -o L") == 0, "mpirun -np 2 --dist latent");
    CHECK(!dir_has("L/state") && dir_has("L/cfg.json") && dir_has("L/musae.json"), "rank 0 wrote a finished checkpoint");
    char *m = slurp("A/metrics.jsonl");
    int aux_active = 0;
    for (const char *p = m; (p = strstr(p, "\"auxk\":")); p++) aux_active |= atof(p + 7) > 0;
    CHECK(aux_active, "AuxK was active (dead latents existed)");
    free(m);
    compare_ckpt("A", "D", SHORT_STEPS);
    compare_ckpt("A", "L", SHORT_STEPS);
    compare_metrics("A/metrics.jsonl", "D/metrics.jsonl");
    compare_metrics("A/metrics.jsonl", "L/metrics.jsonl");
}

static void test_grid_and_batch_topk(void) {
    /* --benc-lr-mult 1: with the default 2 (issue 14), layer0_k8_x2 meets a near-tie selection within 40 steps and
     * the two runs part by about lr per step (see the top); the grid checks the sharded grid's bookkeeping, and the
     * default multiplier is held to the rule by A, D and L above */
    const char *g = TRAIN " --tokens 10240 --layer 0,1 --k 4,8 --expansion 2,4 --benc-lr-mult 1";
    CHECK(run("%s -o G1", g) == 0, "grid, one process");
    CHECK(run_mpi("%s --dist latent -o GL", g) == 0, "grid, latent-sharded");
    const int layers[2] = {0, 1}, ks[2] = {4, 8}, exps[2] = {2, 4};
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 2; k++)
            for (int e = 0; e < 2; e++) {
                char a[128], b[128];
                snprintf(a, sizeof a, "G1/layer%d_k%d_x%d", layers[l], ks[k], exps[e]);
                snprintf(b, sizeof b, "GL/layer%d_k%d_x%d", layers[l], ks[k], exps[e]);
                compare_ckpt(a, b, SHORT_STEPS);
            }
    compare_metrics("G1/metrics.jsonl", "GL/metrics.jsonl");
    const char *bt = SHORT " --batch-topk";
    CHECK(run("%s -o BT1", bt) == 0, "batch-top-k, one process");
    CHECK(run_mpi("%s --dist data -o BTD", bt) == 0, "batch-top-k, data-parallel");
    compare_ckpt("BT1", "BTD", SHORT_STEPS);
    compare_metrics("BT1/metrics.jsonl", "BTD/metrics.jsonl");
    char *a = slurp("BT1/musae.json"), *b = slurp("BTD/musae.json");
    const char *ta = strstr(a, "\"threshold\":"), *tb = strstr(b, "\"threshold\":");
    CHECK(ta && tb && fabs(atof(ta + 12) - atof(tb + 12)) <= 1e-5 * fabs(atof(ta + 12)),
          "the inference threshold agrees: %.30s vs %.30s", ta ? ta : "-", tb ? tb : "-");
    free(a), free(b);
}

static void test_resume_latent(void) {
    CHECK(run_mpi(LONG " --dist latent -o LL") == 0, "uninterrupted latent run");
    int st = run_mpi_and_stop(LONG " --dist latent -o B", 1);
    CHECK(st != 0, "the killed run failed (status %d)", st);
    CHECK(dir_has("B/state/run.json") && !dir_has("B/sae.safetensors"), "a killed run leaves its state, no checkpoint");
    CHECK(run_mpi(LONG " --dist latent -o B") == 1, "restarting without --resume is refused");
    err_has("B holds an unfinished run (state/run.json); pass --resume to continue it");
    CHECK(run_mpi(LONG " --dist latent -o B --resume") == 0, "latent resume after SIGKILL");
    CHECK(same_bytes("LL/sae.safetensors", "B/sae.safetensors"), "killed + resumed latent weights are bit-identical");
    compare_metrics("LL/metrics.jsonl", "B/metrics.jsonl");

    sh("rm -rf B");
    st = run_mpi_and_stop(LONG " --dist latent -o B", 0);
    char *err = slurp("kill_err.txt");
    CHECK(strstr(err, "interrupted by signal 15") != NULL, "the ranks saved on SIGTERM (mpirun status %d): %s", st, err);
    free(err);
    CHECK(dir_has("B/state/run.json") && !dir_has("B/sae.safetensors"), "SIGTERM leaves the state");
    /* the state is in the ordinary layout: one process continues it */
    CHECK(run(LONG " -o B --resume") == 0, "one process resumes the latent run's state");
    err = slurp("err.txt");
    CHECK(strstr(err, "resuming 1 SAE(s) at step ") != NULL, "the one-process run resumed: %s", err);
    free(err);
    double fa = ckpt_number("LL", "fvu"), fb = ckpt_number("B", "fvu");
    CHECK(fa > 0 && fabs(fb - fa) <= 0.05 * fa, "held-out FVU after the one-process resume %g vs %g", fb, fa);
    CHECK(ckpt_number("LL", "recovered") == ckpt_number("B", "recovered"), "the same share of concepts recovered");
    CHECK(ckpt_number("B", "tokens_seen") == 160000, "the resumed run trained to the end");
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    setenv("OMP_NUM_THREADS", "1", 0); /* two ranks on CI's two cores */
    scratch_open("test_sae_dist_cli");
    if (run("synth_acts -o s.h5 --d 32 --concepts 48 --k-true 3 --rows 12000 --clip-frames 100 --layers 0,1"))
        setup_failed("cannot make the synthetic store");
    /* registered only where CMake found MPI: a launcher that cannot start 2 ranks is a broken setup, not a skip */
    if (run_mpi("--version") != 0) setup_failed(MUSAE_MPIEXEC " cannot start 2 ranks here");
    test_modes();
    test_grid_and_batch_topk();
    test_resume_latent();
    scratch_close();
    TEST_END();
}
