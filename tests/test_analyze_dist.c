/* `mpirun -np P musae analyze` (issues 15 and 21) against one process:
 *   - a store of Philox floats (f32 sums that depend on their order, clips of 1..37 rows, NaN/Inf rows, a clip
 *     without a finite row) and two SAEs (top-k and batch-top-k) in one pass, blocks of 64 rows so blocks straddle
 *     the ranks' boundaries: -np 2 and -np 3 write the one-process files, compared dataset by dataset through the
 *     reader (bitwise, with memcmp) and byte for byte; the same for the default split and block size;
 *   - a rank SIGKILLed mid-run leaves no output (nor its .partial) and the same command then succeeds, giving the
 *     one-process file;
 *   - mpirun SIGKILLed mid-run (OpenMPI's ranks outlive it): both ranks stop with a failure status and write
 *     nothing (OpenMPI's runtime ends them once it misses its daemon, exit 195 here; failing that, the watch at the
 *     barrier before the merge exits 1);
 *   - ranks started with different arguments (--device cpu against --device auto, through mpirun's MPMD syntax)
 *     are refused with exit 1 and a message naming the argument. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "cli.h"
#include "eval/features_io.h"
#include "fixture_io.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "test_rand.h"

enum { D = 16, M = 96, K = 6, N_CLIPS = 240, LAYER = 3 };

static int clip_len(int c) { return 1 + (c * 13) % 37; }

/* Clip c: clip_len(c) rows of Gaussian floats; clip 7 all NaN, an Inf in some clips, a NaN row in others. */
static void make_store(const char *path, int n_clips, int d, uint64_t seed) {
    musae_store_writer *w = fx_store_create(path, "test/model", d, LAYER);
    float *x = musae_xmalloc(sizeof(float) * 40 * (size_t)d);
    for (int c = 0; c < n_clips; c++) {
        const int n = clip_len(c);
        for (int r = 0; r < n; r++)
            for (int j = 0; j < d; j++) x[r * d + j] = (float)test_gauss(seed, (uint64_t)(c * 4096 + r * 64 + j));
        if (c == 7)
            for (int r = 0; r < n; r++) x[r * d] = NAN;
        if (c % 11 == 2 && n > 2) x[1 * d + 2] = INFINITY;
        if (c % 17 == 4 && n > 3) x[3 * d] = NAN;
        char name[64];
        snprintf(name, sizeof name, "audio/piece%03d.wav#t=%d,%d", c, c * 10, c * 10 + 10);
        const float *acts[1] = {x};
        musae_store_add_clip(w, name, n, acts);
    }
    musae_store_close_writer(w, 1);
    free(x);
}

/* A checkpoint folder as musae train writes it, random Gaussian weights; threshold > 0: batch-top-k. */
static void write_sae(const char *dir, int m, int d, int k, uint64_t seed, double threshold) {
    float *we = musae_xmalloc(sizeof(float) * (size_t)(m * d)), *be = musae_xmalloc(sizeof(float) * (size_t)m),
          *wd = musae_xmalloc(sizeof(float) * (size_t)(m * d)), *bd = musae_xmalloc(sizeof(float) * (size_t)d);
    for (int i = 0; i < m * d; i++) we[i] = (float)(0.3 * test_gauss(seed, (uint64_t)i));
    for (int i = 0; i < m * d; i++) wd[i] = (float)test_gauss(seed + 100, (uint64_t)i);
    for (int i = 0; i < m; i++) be[i] = (float)(0.2 * test_gauss(seed + 200, (uint64_t)i) - 0.3);
    be[m - 1] = -1000; /* a dead latent */
    for (int j = 0; j < d; j++) bd[j] = (float)(0.1 * test_gauss(seed + 300, (uint64_t)j));
    char fields[256];
    snprintf(fields, sizeof fields,
             "\"selection\": \"%s\", \"threshold\": %g, \"data\": {\"acts\": \"s.h5\", \"val_fraction\": 0.3, "
             "\"split_seed\": \"7\"}",
             threshold > 0 ? "batch_topk" : "topk", threshold);
    fx_write_sae(dir, m, d, k, LAYER, we, be, wd, bd, fields);
    free(we), free(be), free(wd), free(bd);
}

/* Whether two arrays of n elements of `elem` bytes hold the same bits; names the first that differs. */
static int same_bits(const char *what, const void *a, const void *b, int64_t n, size_t elem) {
    if (n == 0 || memcmp(a, b, (size_t)n * elem) == 0) return 1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp((const char *)a + i * elem, (const char *)b + i * elem, elem)) {
            fprintf(stderr, "%s: element %lld differs\n", what, (long long)i);
            break;
        }
    return 0;
}

/* FEATURES file b equals a dataset by dataset, read through the reader (features_read), compared bitwise. */
static void same_features(const char *a_rel, const char *b_rel) {
    musae_features a, b;
    char err[1024];
    if (features_read(at(a_rel), &a, err, sizeof err)) {
        CHECK(0, "%s", err);
        return;
    }
    if (features_read(at(b_rel), &b, err, sizeof err)) {
        CHECK(0, "%s", err);
        features_free(&a);
        return;
    }
    const int shape = a.M == b.M && a.N == b.N && a.C == b.C && a.nnz == b.nnz;
    CHECK(shape, "%s vs %s: M %lld/%lld, N %lld/%lld, C %lld/%lld, nnz %lld/%lld", a_rel, b_rel, (long long)a.M,
          (long long)b.M, (long long)a.N, (long long)b.N, (long long)a.C, (long long)b.C, (long long)a.nnz,
          (long long)b.nnz);
    if (shape) {
        const int64_t Mm = a.M, MN = a.M * a.N, C = a.C, Z = a.nnz;
#define SAME(field, n) CHECK(same_bits(#field, a.field, b.field, n, sizeof *a.field), "%s vs %s: " #field, a_rel, b_rel)
        SAME(n_active_frames, Mm);
        SAME(frame_density, Mm);
        SAME(clip_rate, Mm);
        SAME(max_act, Mm);
        SAME(mean_act, Mm);
        SAME(hist, Mm * FEATURES_HIST_BINS);
        SAME(hist_edges, FEATURES_HIST_BINS + 1);
        SAME(top_clip, MN);
        SAME(top_clip_max, MN);
        SAME(top_clip_frame, MN);
        SAME(quantile_clip, Mm * FEATURES_DECILES * FEATURES_PER_DECILE);
        SAME(random_clip, Mm * FEATURES_RANDOM);
        SAME(keep, Mm);
        SAME(dead, Mm);
        SAME(neighbors, Mm * FEATURES_NEIGHBORS);
        SAME(neighbor_cos, Mm * FEATURES_NEIGHBORS);
        SAME(cf_indptr, C + 1);
        SAME(cf_feature, Z);
        SAME(cf_mean, Z);
        SAME(cf_max, Z);
        SAME(clip_frames, C);
        SAME(clip_store_index, C);
#undef SAME
        for (int64_t c = 0; c < C; c++)
            if (strcmp(a.clip_path[c], b.clip_path[c])) {
                CHECK(0, "%s vs %s: /clips/path[%lld] %s vs %s", a_rel, b_rel, (long long)c, a.clip_path[c],
                      b.clip_path[c]);
                break;
            }
        CHECK(a.n_frames == b.n_frames && a.n_nonfinite_rows == b.n_nonfinite_rows &&
                  a.n_clips_empty == b.n_clips_empty && !strcmp(a.split, b.split) && !strcmp(a.sae_sha256, b.sae_sha256),
              "%s vs %s: attributes n_frames %lld/%lld, n_nonfinite_rows %lld/%lld, n_clips_empty %lld/%lld", a_rel,
              b_rel, (long long)a.n_frames, (long long)b.n_frames, (long long)a.n_nonfinite_rows,
              (long long)b.n_nonfinite_rows, (long long)a.n_clips_empty, (long long)b.n_clips_empty);
    }
    CHECK(same_bytes(a_rel, b_rel), "%s and %s differ in their bytes", a_rel, b_rel);
    features_free(&a);
    features_free(&b);
}

#define GRID "analyze --sae saeA,saeB --acts s.h5 --split all --top 5 --block-rows 64 --min-rate 0.3 --max-rate 0.85"

static void test_equal(void) {
    CHECK(run(GRID " -o one") == 0, "one process: analyze failed");
    for (int np = 2; np <= 3; np++) {
        char out[32];
        snprintf(out, sizeof out, "np%d", np);
        CHECK(run_mpi_np(np, GRID " -o %s", out) == 0, "mpirun -np %d analyze failed", np);
        if (np == 3) err_has("(shared by the ranks, balanced by frames)");
        char a[64], b[64];
        for (int s = 0; s < 2; s++) {
            snprintf(a, sizeof a, "one/sae%c.h5", 'A' + s);
            snprintf(b, sizeof b, "%s/sae%c.h5", out, 'A' + s);
            same_features(a, b);
        }
        CHECK(!dir_has("np2/saeA.h5.partial") && !dir_has("np3/saeA.h5.partial"), "a .partial was left");
    }
    /* the files are not trivially alike: every kind of entry occurs */
    musae_features f;
    char err[1024];
    if (features_read(at("one/saeB.h5"), &f, err, sizeof err) == 0) {
        int64_t kept = 0, dead = 0, tops = 0;
        for (int64_t i = 0; i < f.M; i++) kept += f.keep[i], dead += f.dead[i], tops += f.top_clip[i * f.N + 4] >= 0;
        CHECK(f.C == N_CLIPS - 1 && f.n_clips_empty == 1 && f.n_nonfinite_rows > 20 && f.nnz > 1000 && tops > 10 &&
                  kept > 5 && dead == 1,
              "the fixture: C %lld, empty %lld, non-finite %lld, nnz %lld, %lld latents with 5 top clips",
              (long long)f.C, (long long)f.n_clips_empty, (long long)f.n_nonfinite_rows, (long long)f.nnz,
              (long long)tops);
        printf("fixture: %lld clips, %lld entries, %lld kept, %lld dead\n", (long long)f.C, (long long)f.nnz,
               (long long)kept, (long long)dead);
        features_free(&f);
    } else CHECK(0, "%s", err);
    /* the default split (the trainer's held-out clips) and block size */
    CHECK(run("analyze --sae saeA --acts s.h5 -o val1.h5") == 0, "one process, val split");
    CHECK(run_mpi_np(3, "analyze --sae saeA --acts s.h5 -o val3.h5") == 0, "mpirun -np 3, val split");
    same_features("val1.h5", "val3.h5");
}

/* Starts `mpirun -np 2 musae <args>` in the background and waits until both ranks logged their PID and the pass
 * began; returns mpirun's pid, the ranks' in r[2] (0 when not seen within 2 minutes). With freeze, rank 1 is
 * SIGSTOPped as soon as its PID shows (long before its share of the pass could end), so the run cannot finish
 * before the caller acts, however fast the machine: rank 0 waits for it at the merge. */
static pid_t start_pass(const char *args, pid_t r[2], int freeze) {
    sh("rm -f kill_err.txt"); /* an earlier run's PIDs must not count as this one's */
    const pid_t job = start_and_wait_for(mpi_prefix_np(2), args, "big.h5", 1);
    int begun = 0;
    r[0] = r[1] = 0;
    for (int i = 0; i < 600000 && !(r[0] && r[1] && begun); i++) {
        char *e = slurp("kill_err.txt");
        for (int k = 0; k < 2; k++) {
            char key[64];
            snprintf(key, sizeof key, "analyze: rank %d of 2, PID ", k);
            const char *p = strstr(e, key);
            if (p && !r[k]) {
                r[k] = (pid_t)atol(p + strlen(key));
                if (k == 1 && freeze && r[k] > 0) kill(r[k], SIGSTOP);
            }
        }
        begun = strstr(e, "analyze: 1 SAE(s)") != NULL;
        free(e);
        usleep(200);
    }
    CHECK(r[0] > 0 && r[1] > 0 && begun, "the ranks' PIDs (%d, %d) and the pass's start were logged", (int)r[0],
          (int)r[1]);
    return job;
}

/* A rank SIGKILLed during the pass: mpirun fails, no file; the same command then writes the one-process file. */
static void test_rank_killed(void) {
    make_store(at("big.h5"), 2400, 64, 5);
    write_sae(at("wide"), 4096, 64, 16, 9, 0);
    const char *args = "analyze --sae wide --acts big.h5 --split all -o killed.h5 --block-rows 256";
    pid_t r[2];
    const pid_t job = start_pass(args, r, 1);
    const pid_t r1 = r[1];
    CHECK(r1 > 0 && kill(r1, SIGKILL) == 0, "SIGKILL to rank 1 (PID %d)", (int)r1);
    const int rc = wait_exit(job);
    CHECK(rc != 0, "mpirun exits %d after a rank was killed", rc);
    CHECK(!dir_has("killed.h5") && !dir_has("killed.h5.partial"), "a killed run left killed.h5 or its .partial");
    CHECK(run_mpi_np(2, "%s", args) == 0, "the same command after the kill failed");
    CHECK(run("analyze --sae wide --acts big.h5 --split all -o one_big.h5 --block-rows 256") == 0, "one process");
    same_features("one_big.h5", "killed.h5");
}

/* mpirun killed: its ranks become ours (a subreaper); each must stop with a failure status, writing nothing. */
static void test_launcher_killed(void) {
    const char *args = "analyze --sae wide --acts big.h5 --split all -o orphan.h5 --block-rows 256";
    pid_t r[2];
    const pid_t job = start_pass(args, r, 0);
    CHECK(kill(job, SIGKILL) == 0, "SIGKILL to mpirun");
    wait_exit(job);
    for (int i = 0; i < 2; i++) {
        int st = 0;
        const pid_t w = r[i] > 0 ? waitpid(r[i], &st, 0) : -1;
        CHECK(w == r[i] && exit_status(st) != 0, "rank %d stops with a failure status (waitpid %d, status %d)", i,
              (int)w, exit_status(st));
        printf("mpirun killed: rank %d ended with status %d\n", i, exit_status(st));
    }
    CHECK(!dir_has("orphan.h5") && !dir_has("orphan.h5.partial"), "orphaned ranks wrote orphan.h5 or its .partial");
}

/* Ranks given different arguments (mpirun's MPMD syntax) are refused: exit 1, the argument named. */
static void test_refusals(void) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cd %s && MUSAE_LOG=info ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 %s -np 1 --oversubscribe %s "
             "analyze --sae saeA --acts s.h5 -o mm.h5 --device cpu : -np 1 %s analyze --sae saeA --acts s.h5 -o mm.h5 "
             "--device auto >out.txt 2>err.txt",
             g_dir, MUSAE_MPIEXEC, bin(), bin());
    const int rc = exit_status(system(cmd));
    CHECK(rc == 1, "ranks with --device cpu and --device auto: exit %d, want 1", rc);
    err_has("analyze: rank 1 was started with 'auto' where rank 0 has 'cpu' (argument 8): every rank must run the "
            "same command");
    CHECK(!dir_has("mm.h5"), "a refused run wrote mm.h5");
    snprintf(cmd, sizeof cmd,
             "cd %s && MUSAE_LOG=info ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 %s -np 1 --oversubscribe %s "
             "analyze --sae saeA --acts s.h5 -o mm.h5 : -np 1 %s analyze --sae saeB --acts s.h5 -o mm.h5 "
             ">out.txt 2>err.txt",
             g_dir, MUSAE_MPIEXEC, bin(), bin());
    CHECK(exit_status(system(cmd)) == 1, "ranks with other SAEs: exit 1");
    err_has("analyze: rank 1 was started with 'saeB' where rank 0 has 'saeA' (argument 2)");
    CHECK(!dir_has("mm.h5"), "a refused run wrote mm.h5");
}

int main(void) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
    prctl(PR_SET_CHILD_SUBREAPER, 1); /* ranks orphaned by a killed mpirun become ours, to be waited for */
    scratch_open("test_analyze_dist");
    make_store(at("s.h5"), N_CLIPS, D, 1);
    write_sae(at("saeA"), M, D, K, 11, 0);
    write_sae(at("saeB"), M, D, K, 12, 0.9);
    test_equal();
    test_refusals();
    test_rank_killed();
    test_launcher_killed();
    scratch_close();
    TEST_END();
}
