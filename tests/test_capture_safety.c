/* Data safety of the activation store, end to end through `musae capture` on the tiny model:
 *   - a full disk (a real one: a 3 MiB tmpfs in a private mount namespace) is a one-line error, exit 1, and the
 *     store stays readable and resumable up to its last commit, also when a resumed run meets the full disk;
 *     with space again the same command completes the store, equal to one captured without interruption;
 *   - a store whose creation fails leaves nothing behind; an empty file left by an older musae is replaced;
 *   - a second writer is refused ("<store> is in use by PID <pid> on <host>"), also with
 *     HDF5_USE_FILE_LOCKING=FALSE, and the first one loses nothing; a stale lock (dead PID on this host) is
 *     taken over, another host's lock refused; readers are not held up by the lock;
 *   - the same files under another spelling of the folder (a//, an absolute path, a symlink) are not captured
 *     again, and the run says so. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* unshare */
#endif
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/philox.h"
#include "host/io/audio.h"
#include "host/io/store.h"
#include "test.h"

#include "capture_test.h"
#include "cli.h"

static char g_model[1024];

/* Clips of a store (-1 when it does not open). */
static int64_t clips_of(const char *rel) {
    musae_store *s = open_store(rel);
    const int64_t n = s ? musae_store_get_info(s)->n_clips : -1;
    musae_store_close(s);
    return n;
}

/* Whether the first `n` clips of b (all of them when n < 0) are a's, row for row and (names) name for name. */
static int same_clips(const char *a_rel, const char *b_rel, int64_t n, int names) {
    musae_store *a = open_store(a_rel), *b = open_store(b_rel);
    int ok = a && b;
    const musae_store_info *ia = ok ? musae_store_get_info(a) : NULL, *ib = ok ? musae_store_get_info(b) : NULL;
    if (ok && n < 0) {
        n = ib->n_clips;
        ok = ia->n_clips == ib->n_clips;
    }
    ok = ok && n <= ia->n_clips && n <= ib->n_clips && ia->d_model == ib->d_model && ia->n_layers == ib->n_layers;
    for (int64_t c = 0; ok && c < n; c++) {
        char *pa = musae_store_clip_path(a, c), *pb = musae_store_clip_path(b, c);
        ok = (!names || !strcmp(pa, pb)) && ia->clip_frames[c] == ib->clip_frames[c];
        if (!ok) fprintf(stderr, "clip %lld: %s vs %s\n", (long long)c, pa, pb);
        free(pa), free(pb);
    }
    const int64_t rows = ok && n > 0 ? ia->clip_offset[n - 1] + ia->clip_frames[n - 1] : 0, H = ok ? ia->d_model : 0;
    float *ra = musae_xmalloc(sizeof(float) * (size_t)(rows * H + 1)), *rb = musae_xmalloc(sizeof(float) * (size_t)(rows * H + 1));
    for (int l = 0; ok && rows > 0 && l < ia->n_layers; l++) {
        musae_store_read_rows(a, ia->layers[l], 0, rows, ra);
        musae_store_read_rows(b, ib->layers[l], 0, rows, rb);
        ok = !memcmp(ra, rb, sizeof(float) * (size_t)(rows * H));
    }
    free(ra), free(rb);
    musae_store_close(a);
    musae_store_close(b);
    return ok;
}
static int same_prefix(const char *a_rel, const char *b_rel, int64_t n) { return same_clips(a_rel, b_rel, n, 1); }

/* The lines of the last run's stderr that start with "musae: error", and whether any line is HDF5's or
 * OpenBLAS's own. */
static int error_lines(int *foreign) {
    char *e = slurp("err.txt");
    int n = 0;
    *foreign = strstr(e, "HDF5-DIAG") || strstr(e, "#000") || strstr(e, "BLAS :") || strstr(e, "Aborted");
    for (const char *p = e; (p = strstr(p, "musae: error")); p++) n++;
    free(e);
    return n;
}

#define CAPTURE "capture --model %s --audio aud --layers 0,1 --clip-seconds 1"

/* ---- a full disk -------------------------------------------------------------------------------------------- */

static void test_full_disk(void) {
    CHECK(run(CAPTURE " -o ref.h5", g_model) == 0, "the reference capture");
    const int64_t all = clips_of("ref.h5");
    CHECK(all == 360, "360 clips in the reference (got %lld)", (long long)all);
    /* 1 MiB chunks (2 layers of d 32 in f16): the 328th clip needs two new ones, which do not fit */
    CHECK(sh("mkdir -p small && mount -t tmpfs -o size=3m tmpfs small") == 0, "mount a 3 MiB tmpfs");
    for (int round = 0; round < 2; round++) {
        const int rc = run(CAPTURE " -o small/full.h5", g_model);
        CHECK(rc == 1, "round %d: a full disk exits 1 (got %d)", round, rc);
        err_has("musae: error: small/full.h5: No space left on device");
        int foreign = 0;
        const int n_err = error_lines(&foreign);
        CHECK(n_err == 1 && !foreign, "round %d: one error line, nothing from HDF5 or OpenBLAS (%d lines)", round, n_err);
        const int64_t n = clips_of("small/full.h5");
        CHECK(n > 100 && n < all, "round %d: the store opens and holds its committed clips (%lld)", round, (long long)n);
        CHECK(same_prefix("ref.h5", "small/full.h5", n), "round %d: they are the reference's first %lld", round,
              (long long)n);
        CHECK(!dir_has("small/full.h5.lock") && !dir_has("small/full.h5.creating"), "round %d: no lock left", round);
        CHECK(run("info small/full.h5") == 0, "round %d: musae info reads it", round);
        if (round == 0) CHECK(sh("h5dump -H small/full.h5 >/dev/null") == 0, "h5dump reads it");
    }
    CHECK(sh("mount -o remount,size=64m small") == 0, "grow the tmpfs");
    CHECK(run(CAPTURE " -o small/full.h5", g_model) == 0, "with space again the same command continues");
    err_has("already in small/full.h5, 33 to capture");
    CHECK(same_prefix("ref.h5", "small/full.h5", -1), "the completed store equals the uninterrupted one");
    sh("umount small");

    /* a disk too full for even the empty store: nothing is left behind */
    CHECK(sh("mkdir -p tiny && mount -t tmpfs -o size=64k tmpfs tiny") == 0, "mount a 64 KiB tmpfs");
    CHECK(run(CAPTURE " -o tiny/t.h5", g_model) == 1, "a creation on a full disk exits 1");
    err_has("tiny/t.h5");
    err_has("No space left on device");
    CHECK(sh("test -z \"$(ls -A tiny)\"") == 0, "and leaves nothing in the folder");
    sh("umount tiny");
}

/* ---- a failed creation left by an older musae --------------------------------------------------------------- */

static void test_empty_leftover(void) {
    sh(": > empty.h5");
    CHECK(run(CAPTURE " --max-clips 3 -o empty.h5", g_model) == 0, "an empty file is taken as a failed creation");
    err_has("an empty file, left by a failed creation: replacing it");
    CHECK(clips_of("empty.h5") == 3, "and replaced by the store");
}

/* ---- the writer lock ---------------------------------------------------------------------------------------- */

static void test_lock(void) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    for (int hdf5_locking = 0; hdf5_locking < 2; hdf5_locking++) {
        const char *env = hdf5_locking ? "" : "HDF5_USE_FILE_LOCKING=FALSE ";
        sh("rm -f lk.h5");
        char args[2048], prefix[1200];
        snprintf(args, sizeof args, CAPTURE " -o lk.h5", g_model);
        snprintf(prefix, sizeof prefix, "env %s%s", env, bin());
        /* the first writer, held still once its store exists, so the second surely meets it */
        const pid_t pid = start_and_wait_for(prefix, args, "lk.h5", 60);
        kill(pid, SIGSTOP);
        CHECK(dir_has("lk.h5") && dir_has("lk.h5.lock"), "%sthe first writer has its store and lock", env);
        CHECK(sh("%s%s " CAPTURE " -o lk.h5 >out.txt 2>err.txt", env, bin(), g_model) == 1,
              "%sa second writer exits 1", env);
        char want[512];
        snprintf(want, sizeof want, "lk.h5 is in use by PID %d on %s", (int)pid, host);
        err_has(want);
        if (hdf5_locking) { /* HDF5 keeps readers out of a file open for writing; musae says by whom */
            CHECK(run("info lk.h5") == 1, "a reader is refused by HDF5's lock");
            snprintf(want, sizeof want, "lk.h5: HDF5 cannot open it; it is in use by PID %d on %s", (int)pid, host);
            err_has(want);
        }
        kill(pid, SIGCONT);
        CHECK(wait_exit(pid) == 0, "%sthe first writer finishes", env);
        CHECK(same_prefix("ref.h5", "lk.h5", -1), "%sand lost nothing", env);
        CHECK(!dir_has("lk.h5.lock"), "%sits lock is gone", env);
    }
    /* a stale lock: a PID that is dead on this host */
    fflush(NULL);
    const pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    sh("rm -f st.h5 && echo '%d %s' > st.h5.lock", (int)dead, host);
    CHECK(run(CAPTURE " --max-clips 2 -o st.h5", g_model) == 0, "a stale lock is taken over");
    char want[512];
    snprintf(want, sizeof want, "removed the stale lock of PID %d on %s", (int)dead, host);
    err_has(want);
    CHECK(!dir_has("st.h5.lock") && clips_of("st.h5") == 2, "and released");
    /* another host's lock cannot be judged from here: refused, the store untouched */
    sh("echo '12345 elsewhere.example' > st.h5.lock");
    CHECK(run(CAPTURE " -o st.h5", g_model) == 1, "another host's lock is refused");
    err_has("st.h5 is in use by PID 12345 on elsewhere.example");
    err_has("remove st.h5.lock");
    CHECK(clips_of("st.h5") == 2 && dir_has("st.h5.lock"), "the store and the lock are untouched");
    CHECK(run("info st.h5") == 0, "readers ignore the lock");
}

/* ---- the same files under another spelling ------------------------------------------------------------------ */

#define CAPTURE_SP "capture --model %s --layers 0 --clip-seconds 1 --audio"

/* The clip names of a store, one per line. */
static char *clip_names(const char *rel) {
    musae_store *s = open_store(rel);
    size_t len = 0, cap = 1;
    char *out = musae_xcalloc(1, 1);
    for (int64_t c = 0; s && c < musae_store_get_info(s)->n_clips; c++) {
        char *p = musae_store_clip_path(s, c);
        out = musae_xrealloc(out, cap += strlen(p) + 1);
        len += (size_t)sprintf(out + len, "%s\n", p);
        free(p);
    }
    musae_store_close(s);
    return out;
}

static void test_spellings(void) {
    sh("mkdir -p sp && ln -sfn sp link");
    for (int i = 0; i < 3; i++) {
        char p[64];
        snprintf(p, sizeof p, "sp/f%d.wav", i);
        write_audio(p, 32000, 1, 3.0, 40 + i);
    }
    CHECK(run(CAPTURE_SP " sp -o sp.h5", g_model) == 0 && clips_of("sp.h5") == 9, "9 clips of 3 files");
    char *names = clip_names("sp.h5");
    const char *again[3] = {"sp//", at("sp"), "link"};
    for (int i = 0; i < 3; i++) {
        CHECK(run(CAPTURE_SP " %s -o sp.h5", g_model, again[i]) == 0, "capture %s into the same store", again[i]);
        err_has("is already in sp.h5 as sp/f0.wav (the same file)");
        err_has("9 already in sp.h5, 0 to capture");
        char *now = clip_names("sp.h5");
        CHECK(!strcmp(names, now), "%s adds nothing:\n%s", again[i], now);
        free(now);
    }
    /* a run stopped early and continued under another spelling ends as one uninterrupted run; the clips of a
     * file begun under one name keep it (f1), a file begun now gets the new one (f2) */
    CHECK(run(CAPTURE_SP " sp --max-clips 4 -o part.h5", g_model) == 0, "a partial capture");
    CHECK(run(CAPTURE_SP " %s -o part.h5", g_model, at("sp")) == 0, "continued through an absolute path");
    err_has("4 already in part.h5, 5 to capture");
    char *part = clip_names("part.h5"), want[4096];
    snprintf(want, sizeof want, "sp/f1.wav#t=2,3\n%s#t=0,1\n", at("sp/f2.wav"));
    CHECK(!strncmp(names, part, strlen(names) / 3 * 2) && strstr(part, want), "f0 and f1 under their first names, "
          "f2 under the new one:\n%s", part);
    free(part);
    CHECK(same_clips("sp.h5", "part.h5", -1, 0), "the same clips and rows as the uninterrupted run");
    /* one file twice in one folder (a symlink beside it) is captured once */
    sh("mkdir -p mix && cp sp/f0.wav mix/a.wav && ln -sfn a.wav mix/b.wav && ln -sfn ../sp/f1.wav mix/c.wav");
    CHECK(run(CAPTURE_SP " mix -o mix.h5", g_model) == 0, "a folder holding a file twice");
    err_has("mix/b.wav: the same file as mix/a.wav");
    CHECK(clips_of("mix.h5") == 6, "a.wav and c.wav, 6 clips (got %lld)", (long long)clips_of("mix.h5"));
    /* a file changed since its capture is not mixed into the store */
    sh("touch -d '2001-01-01 00:00:00' sp/f2.wav");
    CHECK(run(CAPTURE_SP " sp -o sp.h5", g_model) == 0, "a changed file");
    err_has("sp/f2.wav: changed since it was captured as sp/f2.wav");
    CHECK(clips_of("sp.h5") == 9, "is skipped, the store unchanged");
    free(names);
}

int main(void) {
    /* a private mount namespace: the tmpfs mounts are this process's (and its children's) alone, and vanish
     * with it whatever happens */
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        CHECK(0, "a private mount namespace for the full-disk test needs root (CAP_SYS_ADMIN): %s", strerror(errno));
        TEST_END();
    }
    scratch_open("capture_safety");
    snprintf(g_model, sizeof g_model, "%s/tiny-musicgen", test_fixtures());
    sh("mkdir -p aud");
    for (int i = 0; i < 9; i++) {
        char p[64];
        snprintf(p, sizeof p, "aud/f%d.wav", i);
        write_audio(p, 32000, 1, 40.0, 20 + i);
    }
    test_full_disk();
    test_empty_leftover();
    test_lock();
    test_spellings();
    scratch_close();
    TEST_END();
}
