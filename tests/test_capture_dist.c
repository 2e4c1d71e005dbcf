/* `mpirun -np P musae capture` (issue 21) end to end on the tiny model, against one process:
 *   - 2 and 3 ranks write a sharded store (<out>.shards/) whose joined file equals the one-process store clip by
 *     clip, bitwise in f32: names, frames, every row of every layer, /frames/clip and /frames/t, the source
 *     files; h5dump (from another folder: the shard names are relative) and musae info read it;
 *   - a rank SIGKILLed mid-run stops the job; the same command with -np 3 completes it to that same store;
 *   - mpirun SIGKILLed (OpenMPI's ranks outlive it): every rank stops at its next commit and exits 1 through the
 *     watch (its locks removed), before its range is done; one process (no launcher) then completes the store;
 *   - a shard that does not open is named, set aside and its clips captured again;
 *   - musae train on the joined store gives the bytes of training on the one-process store (one process and
 *     mpirun -np 2 --dist data), the same seed and global batch; musae analyze the same statistics;
 *   - a joined store without its shards is refused naming the missing shard; a sharded store continued with
 *     other settings, and a one-process store continued by several ranks, are refused (exit 1, the reason). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "eval/capture_shard.h"
#include "host/io/store.h"
#include "test.h"

#include "capture_test.h"
#include "cli.h"

static char g_model[1024];

/* Whether store b equals a clip by clip: names, source files, frames, every row of every layer (bitwise), frame
 * indices; and the attributes a reader sees. */
static int same_store(const char *a_rel, const char *b_rel) {
    musae_store *a = open_store(a_rel), *b = open_store(b_rel);
    int ok = a && b;
    const musae_store_info *ia = ok ? musae_store_get_info(a) : NULL, *ib = ok ? musae_store_get_info(b) : NULL;
    ok = ok && ia->n_clips == ib->n_clips && ia->n_rows == ib->n_rows && ia->d_model == ib->d_model &&
         ia->n_layers == ib->n_layers && ia->dtype == ib->dtype && ia->complete == ib->complete &&
         ia->chunk_rows == ib->chunk_rows && !strcmp(ia->model, ib->model);
    if (a && b && !ok)
        fprintf(stderr, "%s vs %s: %lld/%lld clips, %lld/%lld rows, complete %d/%d, chunk %lld/%lld\n", a_rel, b_rel,
                (long long)ia->n_clips, (long long)ib->n_clips, (long long)ia->n_rows, (long long)ib->n_rows,
                ia->complete, ib->complete, (long long)ia->chunk_rows, (long long)ib->chunk_rows);
    musae_clip_id *ca = ok ? musae_store_clip_ids(a) : NULL, *cb = ok ? musae_store_clip_ids(b) : NULL;
    for (int64_t c = 0; ok && c < ia->n_clips; c++) {
        ok = !strcmp(ca[c].name, cb[c].name) && !strcmp(ca[c].file, cb[c].file) && ca[c].size == cb[c].size &&
             ca[c].mtime_ns == cb[c].mtime_ns && ia->clip_frames[c] == ib->clip_frames[c] &&
             ia->clip_offset[c] == ib->clip_offset[c];
        if (!ok) fprintf(stderr, "clip %lld: %s vs %s\n", (long long)c, ca[c].name, cb[c].name);
    }
    if (ca) musae_clip_ids_free(ca, ia->n_clips), musae_clip_ids_free(cb, ib->n_clips);
    const int64_t rows = ok ? ia->n_rows : 0, H = ok ? ia->d_model : 0;
    float *ra = musae_xmalloc(sizeof(float) * (size_t)(rows * H + 1)), *rb = musae_xmalloc(sizeof(float) * (size_t)(rows * H + 1));
    for (int l = 0; ok && rows > 0 && l < ia->n_layers; l++) {
        musae_store_read_rows(a, ia->layers[l], 0, rows, ra);
        musae_store_read_rows(b, ib->layers[l], 0, rows, rb);
        ok = !memcmp(ra, rb, sizeof(float) * (size_t)(rows * H));
        if (!ok) fprintf(stderr, "layer %d: rows differ\n", ia->layers[l]);
    }
    int32_t *fa = musae_xmalloc(sizeof(int32_t) * (size_t)(4 * rows + 4)), *fb = fa + 2 * rows + 2;
    if (ok && rows > 0) {
        musae_store_read_frames(a, 0, rows, fa, fa + rows);
        musae_store_read_frames(b, 0, rows, fb, fb + rows);
        ok = !memcmp(fa, fb, sizeof(int32_t) * (size_t)(2 * rows));
        if (!ok) fprintf(stderr, "/frames/clip or /frames/t differ\n");
    }
    free(fa), free(ra), free(rb);
    musae_store_close(a);
    musae_store_close(b);
    return ok;
}

/* The pid a lock file names ("PID HOST"), or -1. */
static pid_t lock_pid(const char *rel) {
    char *s = slurp(rel);
    const long p = s[0] ? strtol(s, NULL, 10) : -1;
    free(s);
    return (pid_t)p;
}

/* Waits until g_dir/rel exists (a shard is renamed into place at its first commit): at most 120 s. */
static int wait_for(const char *rel) {
    for (int i = 0; i < 600000 && access(at(rel), F_OK) != 0; i++) usleep(200);
    return access(at(rel), F_OK) == 0;
}

#define CAPTURE "capture --model %s --audio aud --layers 0,1 --clip-seconds 1 --dtype f32"

static void test_equal(void) {
    for (int np = 2; np <= 3; np++) {
        char out[32];
        snprintf(out, sizeof out, "np%d.h5", np);
        CHECK(run_mpi_np(np, CAPTURE " -o %s", g_model, out) == 0, "mpirun -np %d capture", np);
        err_has("joins");
        CHECK(same_store("one.h5", out), "-np %d: the joined store equals the one-process store clip by clip", np);
        char shard[64];
        snprintf(shard, sizeof shard, "%s.shards/p%d-r%03d.h5", out, np, np - 1);
        CHECK(dir_has(shard), "-np %d: rank %d's shard %s", np, np - 1, shard);
    }
    /* h5dump from another folder reads the same values as from the one-process store */
    CHECK(sh("cd / && h5dump -d /layers/1/acts -d /frames/clip -d /frames/t -d /clips/path %s/one.h5 | "
             "sed -n '/DATA {/,/^   }/p' > %s/d1.txt", g_dir, g_dir) == 0, "h5dump the one-process store");
    CHECK(sh("cd / && h5dump -d /layers/1/acts -d /frames/clip -d /frames/t -d /clips/path %s/np2.h5 | "
             "sed -n '/DATA {/,/^   }/p' > %s/d2.txt", g_dir, g_dir) == 0, "h5dump reads the joined store");
    CHECK(sh("test -s d1.txt && cmp d1.txt d2.txt") == 0, "h5dump prints the same rows, frames and clips");
    CHECK(run("info np2.h5") == 0, "musae info reads the joined store");
    char *o = slurp("out.txt");
    CHECK(strstr(o, "clips      126") && strstr(o, "complete   yes") && strstr(o, "the joined view of 2 shard(s)"),
          "musae info: 126 clips, complete, 2 shards:\n%s", o);
    free(o);
}

/* The split: contiguous ranges of about equal duration, covering every pending clip once. */
static void test_split(void) {
    const int64_t len[7] = {10, 10, 10, 10, 10, 10, 4}; /* six whole clips and a tail */
    int64_t lo[4], hi[4];
    for (int P = 1; P <= 4; P++) {
        int64_t at = 0;
        for (int r = 0; r < P; r++) {
            const musae_dist d = {.rank = r, .world = P, .local_world = 1, .launcher = "test"};
            capture_shards_split(&d, len, 7, &lo[r], &hi[r]);
            CHECK(lo[r] == at && hi[r] >= lo[r], "P %d rank %d: [%lld, %lld) follows %lld", P, r, (long long)lo[r],
                  (long long)hi[r], (long long)at);
            at = hi[r];
        }
        CHECK(at == 7, "P %d: every clip once", P);
    }
    const musae_dist d0 = {.rank = 0, .world = 2}, d1 = {.rank = 1, .world = 2};
    capture_shards_split(&d0, len, 7, &lo[0], &hi[0]);
    capture_shards_split(&d1, len, 7, &lo[1], &hi[1]);
    CHECK(hi[0] == 4 && lo[1] == 4, "P 2 of 64 units: rank 0 takes 40 (clips 0..3), rank 1 24 (got %lld)",
          (long long)hi[0]);
    capture_shards_split(&d0, len, 0, &lo[0], &hi[0]);
    CHECK(lo[0] == 0 && hi[0] == 0, "nothing pending: empty ranges");
}

static void test_refusals(void) {
    CHECK(run_mpi_np(2, "capture --model %s --audio aud --layers 0 --clip-seconds 1 --dtype f32 -o np2.h5", g_model) == 1,
          "a sharded store continued with other layers is refused (exit 1)");
    err_has("np2.h5.shards/p2-r000.h5 holds layers 0,1; this run asks for 0");
    CHECK(run_mpi_np(2, CAPTURE " -o one.h5", g_model) == 1, "a one-process store is not continued by several ranks (exit 1)");
    err_has("one.h5 is a one-process store (no one.h5.shards/): continue it without mpirun/srun");
    CHECK(!dir_has("one.h5.shards") && same_store("one.h5", "np2.h5"), "and neither store was touched");
}

static void test_rank_killed(void) {
    char args[2048];
    snprintf(args, sizeof args, CAPTURE " -o k.h5", g_model);
    const pid_t job = start_and_wait_for(mpi_prefix(), args, "k.h5.shards/p2-r001.h5", 120);
    CHECK(wait_for("k.h5.shards/p2-r001.h5"), "rank 1 committed its first clip");
    const pid_t r1 = lock_pid("k.h5.shards/p2-r001.h5.lock");
    CHECK(r1 > 0 && kill(r1, SIGKILL) == 0, "SIGKILL to rank 1 (PID %d)", (int)r1);
    CHECK(wait_exit(job) != 0, "mpirun fails when a rank is killed");
    CHECK(!dir_has("k.h5"), "killed mid-run: no joined store yet");
    CHECK(run_mpi_np(3, CAPTURE " -o k.h5", g_model) == 0, "the same command with -np 3 continues it");
    err_has("removed the stale lock of PID");
    CHECK(dir_has("k.h5.shards/p3-r002.h5"), "-np 3 wrote shards of its own beside the -np 2 ones");
    CHECK(same_store("one.h5", "k.h5"), "killed, resumed with -np 3: the one-process store");
}

/* mpirun killed: its ranks become ours (a subreaper), and each must stop at its next commit with exit 1. */
static void test_launcher_killed(void) {
    char args[2048];
    snprintf(args, sizeof args, CAPTURE " -o o.h5", g_model);
    const pid_t job = start_and_wait_for(mpi_prefix(), args, "o.h5.shards/p2-r001.h5", 120);
    CHECK(wait_for("o.h5.shards/p2-r001.h5") && wait_for("o.h5.shards/p2-r000.h5"), "both ranks committed a clip");
    const pid_t r[2] = {lock_pid("o.h5.shards/p2-r000.h5.lock"), lock_pid("o.h5.shards/p2-r001.h5.lock")};
    CHECK(r[0] > 0 && r[1] > 0, "the ranks' PIDs from their shard locks");
    CHECK(kill(job, SIGKILL) == 0, "SIGKILL to mpirun");
    wait_exit(job);
    for (int i = 0; i < 2; i++) {
        int st = 0;
        const pid_t w = r[i] > 0 ? waitpid(r[i], &st, 0) : -1;
        CHECK(w == r[i] && WIFEXITED(st) && WEXITSTATUS(st) == 1,
              "rank %d stops through the watch and exits 1 (waitpid %d, status %d)", i, (int)w, exit_status(st));
    }
    CHECK(!dir_has("o.h5.shards/p2-r000.h5.lock") && !dir_has("o.h5.shards/p2-r001.h5.lock") && !dir_has("o.h5.lock"),
          "the stopped ranks removed their locks");
    musae_store *s = open_store("o.h5.shards/p2-r000.h5");
    CHECK(s && musae_store_get_info(s)->n_clips < 63 && !musae_store_get_info(s)->complete,
          "rank 0 stopped before its range was done (%lld clips)", s ? (long long)musae_store_get_info(s)->n_clips : -1LL);
    musae_store_close(s);
    /* one process, no launcher: the store is sharded already, so it goes on as a rank of one */
    CHECK(run(CAPTURE " -o o.h5", g_model) == 0, "one process continues the sharded store");
    err_has("joins");
    CHECK(same_store("one.h5", "o.h5"), "stopped, resumed by one process: the one-process store");
}

static void test_corrupt_shard(void) {
    CHECK(sh("cp -r np2.h5.shards c.h5.shards && truncate -s 3000 c.h5.shards/p2-r001.h5") == 0, "a truncated shard");
    CHECK(sh("echo partial > c.h5.shards/p5-r004.h5.creating") == 0, "a shard killed before its first commit");
    CHECK(run_mpi_np(2, CAPTURE " -o c.h5", g_model) == 0, "a capture beside a corrupt shard");
    err_has("shard c.h5.shards/p2-r001.h5 does not open");
    err_has("set aside as c.h5.shards/p2-r001.h5.corrupt; its clips are captured again");
    CHECK(same_store("one.h5", "c.h5"), "its clips redone: the one-process store");
    CHECK(!dir_has("c.h5.shards/p5-r004.h5.creating"), "the unfinished creation is removed");
}

static void test_missing_shard(void) {
    CHECK(sh("mv np3.h5.shards np3.moved") == 0, "move the shards away");
    CHECK(run("info np3.h5") == 1, "a joined store without its shards is refused");
    err_has("np3.h5.shards/p3-r000.h5 (No such file or directory)");
    sh("mv np3.moved np3.h5.shards");
}

#define TRAIN "train --batch 128 --shuffle-rows 1024 --init-rows 1024 --eval-tokens 512 --seed 3 --tokens 8192 " \
              "--layer 1 --k 4 --expansion 4"

static void test_train(void) {
    CHECK(run(TRAIN " --acts one.h5 -o s1") == 0, "train on the one-process store");
    CHECK(run(TRAIN " --acts np2.h5 -o s2") == 0, "train on the joined store");
    CHECK(same_bytes("s1/sae.safetensors", "s2/sae.safetensors"), "the same weights, bitwise");
    /* musae analyze (one process) reads the joined store as the one-process store: the same FEATURES.h5 but for
     * the name of the store it records */
    CHECK(run("analyze --sae s1 --acts one.h5 -o f1.h5") == 0 && run("analyze --sae s1 --acts np2.h5 -o f2.h5") == 0,
          "musae analyze on both stores");
    CHECK(sh("h5dump f1.h5 | grep -v 'one.h5\\|^HDF5 ' > f1.txt && h5dump f2.h5 | grep -v 'np2.h5\\|^HDF5 ' > f2.txt && "
             "test $(wc -l < f1.txt) -gt 100 && cmp f1.txt f2.txt") == 0, "musae analyze: the same statistics");
    CHECK(run_mpi_np(2, TRAIN " --acts one.h5 -o m1") == 0, "mpirun -np 2 train on the one-process store");
    CHECK(run_mpi_np(2, TRAIN " --acts np3.h5 -o m3") == 0, "mpirun -np 2 train on a 3-shard store");
    CHECK(same_bytes("m1/sae.safetensors", "m3/sae.safetensors"), "data-parallel: the same weights, bitwise");
}

/* The shuffled stream over a joined store mixes clips within a batch: 400 clips of 500 rows in two shards, a
 * row's values name its clip; the training defaults (windows of 131072 rows, batches of 4096). */
static void test_batches_mix(void) {
    const int n_clips = 400, F = 500, H = 4;
    float *acts = musae_xmalloc(sizeof(float) * (size_t)(F * H));
    const char *shards[2] = {at("mix.h5.shards/a.h5"), NULL};
    char b[2048];
    snprintf(b, sizeof b, "%s", at("mix.h5.shards/b.h5"));
    shards[1] = b;
    sh("mkdir -p mix.h5.shards");
    musae_store_spec spec = {.model = "mix", .d_model = H, .frame_rate = 50, .n_layers = 1, .layers = {0},
                             .dtype = MUSAE_F32, .chunk_rows = 512, .dtype_source = "f32"};
    for (int sd = 0; sd < 2; sd++) {
        musae_store_writer *w = musae_store_create(shards[sd], &spec);
        for (int c = sd * n_clips / 2; c < (sd + 1) * n_clips / 2; c++) {
            for (int i = 0; i < F * H; i++) acts[i] = (float)c;
            char name[64];
            snprintf(name, sizeof name, "clip%03d", c);
            const float *l0[1] = {acts};
            musae_store_add_clip(w, name, F, l0);
        }
        musae_store_close_writer(w, 1);
    }
    const musae_store_segment seg[2] = {{0, 0, n_clips / 2}, {1, 0, n_clips / 2}};
    musae_store_join(at("mix.h5"), shards, 2, seg, 2, 1);
    musae_store *s = open_store("mix.h5");
    CHECK(s && musae_store_get_info(s)->n_rows == (int64_t)n_clips * F, "the joined synthetic store");
    if (!s) return;
    musae_stream_opts so = {.split = MUSAE_SPLIT_ALL, .seed = 7, .shuffle = 1, .window_rows = 131072, .loop = 0,
                            .n_layers = 1, .layers = {0}};
    musae_stream *st = musae_stream_open(s, &so);
    const int64_t B = 4096;
    float *rows = musae_xmalloc(sizeof(float) * (size_t)(B * H));
    int *seen = musae_xcalloc((size_t)n_clips, sizeof(int));
    int64_t batches = 0, min_distinct = n_clips, max_share = 0;
    for (int64_t got; (got = musae_stream_next(st, B, (float *const[]){rows})) == B; batches++) {
        memset(seen, 0, sizeof(int) * (size_t)n_clips);
        int64_t distinct = 0, most = 0;
        for (int64_t i = 0; i < B; i++) {
            const int c = (int)rows[i * H];
            distinct += seen[c]++ == 0;
            if (seen[c] > most) most = seen[c];
        }
        if (distinct < min_distinct) min_distinct = distinct;
        if (most > max_share) max_share = most;
    }
    printf("batches mix clips: %lld batches of %lld rows from %d clips of %d rows (2 shards): at least %lld clips "
           "per batch, at most %lld rows (%.2f%%) of one clip (store order: %lld clips per batch)\n",
           (long long)batches, (long long)B, n_clips, F, (long long)min_distinct, (long long)max_share,
           100.0 * (double)max_share / (double)B, (long long)(B / F + 1));
    CHECK(batches == (int64_t)n_clips * F / B, "every full batch delivered (%lld)", (long long)batches);
    CHECK(min_distinct >= 150 && max_share <= B / 50, "every batch mixes >= 150 clips, none over 2%% of it (%lld, %lld)",
          (long long)min_distinct, (long long)max_share);
    musae_stream_close(st);
    musae_store_close(s);
    free(rows), free(seen), free(acts);
}

/* Shards computed with other CPU arithmetic (a rank on a host with AMX, one without: host/io/store.h cpu_arith)
 * are not joined into one store: exit 1 naming both shards, both arithmetics and how to match. */
static void test_join_mixed_arith(void) {
    const int F = 10, H = 4;
    float acts[10 * 4] = {0};
    const char *arith[2] = {"amx-bf16x3", "fma-fp32"};
    char a[2048], b[2048];
    snprintf(a, sizeof a, "%s", at("arith.h5.shards/a.h5"));
    snprintf(b, sizeof b, "%s", at("arith.h5.shards/b.h5"));
    const char *shards[2] = {a, b};
    sh("mkdir -p arith.h5.shards");
    for (int sd = 0; sd < 2; sd++) {
        musae_store_spec spec = {.model = "arith", .d_model = H, .frame_rate = 50, .n_layers = 1, .layers = {0},
                                 .dtype = MUSAE_F32, .chunk_rows = 16, .dtype_source = "f32", .cpu_arith = arith[sd]};
        musae_store_writer *w = musae_store_create(shards[sd], &spec);
        const float *l0[1] = {acts};
        musae_store_add_clip(w, sd ? "clip1" : "clip0", F, l0);
        musae_store_close_writer(w, 1);
    }
    const musae_store_segment seg[2] = {{0, 0, 1}, {1, 0, 1}};
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(at("err.txt"), "w", stderr)) _exit(127);
        musae_store_join(at("arith.h5"), shards, 2, seg, 2, 1);
        _exit(0);
    }
    CHECK(wait_exit(pid) == 1, "shards of amx-bf16x3 and fma-fp32 rows: the join exits 1");
    err_has("were computed with other CPU arithmetic (amx-bf16x3, fma-fp32)");
    err_has("MUSAE_ISA=avx512");
    CHECK(!dir_has("arith.h5"), "no joined store is left");
}

int main(void) {
    scratch_open("capture_dist");
    /* registered only where CMake found MPI: a launcher that cannot start 2 ranks is a broken setup, not a skip */
    if (run_mpi_np(2, "--version") != 0) setup_failed(MUSAE_MPIEXEC " cannot start 2 ranks here");
    snprintf(g_model, sizeof g_model, "%s/tiny-musicgen", test_fixtures());
    sh("mkdir -p aud");
    for (int i = 0; i < 6; i++) {
        char p[64];
        snprintf(p, sizeof p, "aud/f%d.wav", i);
        write_audio(p, 32000, 1, 20.0 + 0.5 * i, 40 + i); /* 20 clips each, and a tail that is dropped */
    }
    if (run(CAPTURE " -o one.h5", g_model) != 0) setup_failed("the one-process capture");
    /* ranks outliving a killed mpirun become this process's children, so the test can wait for them */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    test_split();
    test_equal();
    test_missing_shard();
    test_refusals();
    test_train();
    test_batches_mix();
    test_join_mixed_arith();
    test_rank_killed();
    test_launcher_killed();
    test_corrupt_shard();
    scratch_close();
    TEST_END();
}
