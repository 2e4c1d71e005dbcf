/* A capture over several processes: shards, split, watch, join. See capture_shard.h. */
#include "eval/capture_shard.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"

int capture_sharded(const char *out, const musae_dist *d) {
    char dir[4200];
    struct stat sb;
    snprintf(dir, sizeof dir, "%s.shards", out);
    return (d && d->world > 1) || (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files in dir whose names end in `suffix` ("*.h5": the shards), sorted by name; their count. */
static int list_files(const char *dir, const char *suffix, char ***out) {
    DIR *dp = opendir(dir);
    if (!dp) musae_fail("%s: cannot read the shard folder: %s", dir, strerror(errno));
    char **v = NULL;
    int n = 0;
    const size_t sl = strlen(suffix);
    for (struct dirent *e; (e = readdir(dp));) {
        const size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= sl || strcmp(e->d_name + l - sl, suffix)) continue;
        v = musae_xrealloc(v, sizeof(char *) * (size_t)(n + 1));
        v[n] = musae_xmalloc(strlen(dir) + l + 2);
        sprintf(v[n++], "%s/%s", dir, e->d_name);
    }
    closedir(dp);
    if (n) qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}
static int list_shards(const char *dir, char ***out) { return list_files(dir, ".h5", out); }

static void free_list(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Rank 0, before anyone writes: the job's lock, the shard folder, and the shards that do not open set aside as
 * "<shard>.corrupt" (named; their clips are then missing and captured again). Taking each shard's writer lock
 * refuses a shard that a live process still writes (a rank of an earlier run whose launcher was killed, before
 * it reached its next commit) and clears the locks of killed ones. */
static void prepare(const capture_shards *sh) {
    musae_store_lock(sh->out);
    struct stat sb;
    if (stat(sh->out, &sb) == 0 && stat(sh->dir, &sb) != 0)
        musae_fail("%s is a one-process store (no %s/): continue it without mpirun/srun, or capture into a new "
                   "file", sh->out, sh->dir);
    if (mkdir(sh->dir, 0777) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", sh->dir, strerror(errno));
    char **v;
    /* a shard whose rank was killed before its first commit is still "<shard>.creating": nothing in it counts */
    int n = list_files(sh->dir, ".h5.creating", &v);
    for (int i = 0; i < n; i++) {
        v[i][strlen(v[i]) - strlen(".creating")] = 0;
        musae_store_lock(v[i]);
        char tmp[4400];
        snprintf(tmp, sizeof tmp, "%s.creating", v[i]);
        unlink(tmp);
        musae_store_unlock(v[i]);
    }
    free_list(v, n);
    n = list_shards(sh->dir, &v);
    for (int i = 0; i < n; i++) {
        musae_store_lock(v[i]);
        char err[1200], bad[4300];
        musae_store *s = musae_store_open(v[i], err, sizeof err);
        if (s) musae_store_close(s);
        musae_store_unlock(v[i]);
        if (s) continue;
        snprintf(bad, sizeof bad, "%s.corrupt", v[i]);
        if (rename(v[i], bad) != 0) musae_fail("%s: cannot set the unreadable shard aside: %s", v[i], strerror(errno));
        LOG_WARN("capture: shard %s does not open (%s): set aside as %s; its clips are captured again", v[i], err, bad);
    }
    free_list(v, n);
}

/* The host a shard's writer lock names ("PID HOST"), or "" when it has none. */
static void lock_host(const char *shard, char *host, size_t cap) {
    char lock[4400], line[512] = "";
    snprintf(lock, sizeof lock, "%s.lock", shard);
    host[0] = 0;
    FILE *f = fopen(lock, "r");
    if (!f) return;
    if (fgets(line, sizeof line, f)) {
        const char *sp = strchr(line, ' ');
        if (sp) snprintf(host, cap, "%.*s", (int)strcspn(sp + 1, "\n"), sp + 1);
    }
    fclose(f);
}

/* One rank per host judges the shard locks that name its host (only there can a PID be checked): a live writer
 * is refused, a killed one's lock cleared. Then rank 0's prepare() meets only locks it can judge or of hosts
 * outside this job. */
static void clear_local_locks(const capture_shards *sh, const musae_dist *d) {
    struct stat sb;
    if (d->local_rank != 0 || stat(sh->dir, &sb) != 0) return;
    char self[256] = "", host[256];
    gethostname(self, sizeof self - 1);
    char **v;
    const int n = list_shards(sh->dir, &v);
    for (int i = 0; i < n; i++) {
        lock_host(v[i], host, sizeof host);
        if (!host[0] || strcmp(host, self)) continue;
        musae_store_lock(v[i]);
        musae_store_unlock(v[i]);
    }
    free_list(v, n);
}

void capture_shards_begin(capture_shards *sh, const char *out, const musae_dist *d,
                          void (*check)(const char *shard, void *arg), void *arg) {
    memset(sh, 0, sizeof *sh);
    sh->dist = d;
    sh->out = out;
    snprintf(sh->dir, sizeof sh->dir, "%s.shards", out);
    snprintf(sh->mine, sizeof sh->mine, "%s/p%d-r%03d.h5", sh->dir, d->world, d->rank);
    sh->ppid = getppid();
    /* a rank's output goes through the launcher: once it is killed, a log line would end the rank by SIGPIPE
     * wherever it stands (its shard lock left behind); ignored, the line is lost and the watch stops the rank at
     * its next commit, through the ordinary exit that removes its locks */
    signal(SIGPIPE, SIG_IGN);
    sh->peers = musae_dist_host_peers(d); /* for the watch */

    clear_local_locks(sh, d);
    musae_dist_barrier(d);
    if (d->rank == 0) prepare(sh);
    musae_dist_barrier(d);
    /* every shard as it is now, read by every rank while nobody writes (HDF5's file locking would refuse a reader
     * beside a writer) */
    sh->n_shards = list_shards(sh->dir, &sh->paths);
    sh->ids = musae_xcalloc((size_t)sh->n_shards + 1, sizeof *sh->ids);
    sh->n_ids = musae_xcalloc((size_t)sh->n_shards + 1, sizeof *sh->n_ids);
    for (int i = 0; i < sh->n_shards; i++) {
        check(sh->paths[i], arg);
        char err[1200];
        musae_store *s = musae_store_open(sh->paths[i], err, sizeof err);
        if (!s) musae_fail("%s", err);
        sh->ids[i] = musae_store_clip_ids(s);
        sh->n_ids[i] = musae_store_get_info(s)->n_clips;
        musae_store_close(s);
    }
    musae_dist_barrier(d);
}

void capture_shards_note(const capture_shards *sh, musae_store_writer *w) {
    for (int i = 0; i < sh->n_shards; i++)
        for (int64_t k = 0; k < sh->n_ids[i]; k++) musae_store_writer_note_clip(w, &sh->ids[i][k]);
}

void capture_shards_split(const musae_dist *d, const int64_t *len, int64_t n, int64_t *lo, int64_t *hi) {
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) total += len[i];
    /* clip i goes to the rank r with r·T <= P·(duration before i) < (r+1)·T */
    const int64_t P = d->world, r = d->rank;
    int64_t before = 0, i = 0;
    while (i < n && P * before < r * total) before += len[i++];
    *lo = i;
    while (i < n && P * before < (r + 1) * total) before += len[i++];
    *hi = r == P - 1 ? n : i;
}

int capture_shard_alive(void *arg) {
    capture_shards *sh = arg;
    if (getppid() != sh->ppid) {
        snprintf(sh->why, sizeof sh->why, "the launcher that started this rank (PID %ld) is gone: stopping before "
                 "the next commit (%s keeps every clip committed so far; run the same command to continue)",
                 (long)sh->ppid, sh->mine);
        return 1;
    }
    for (int r = 0; r < sh->dist->world; r++)
        if (sh->peers[r] && kill(sh->peers[r], 0) != 0 && errno == ESRCH) {
            snprintf(sh->why, sizeof sh->why, "rank %d (PID %ld) is gone: stopping before the next commit (%s keeps "
                     "every clip committed so far; run the same command to continue)", r, (long)sh->peers[r], sh->mine);
            return 1;
        }
    return 0;
}

typedef struct {
    int64_t pos;
    int shard;
    int64_t k;
} placed;
static int cmp_placed(const void *a, const void *b) {
    const placed *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    if (x->shard != y->shard) return x->shard - y->shard;
    return (x->k > y->k) - (x->k < y->k);
}

int capture_shards_finish(capture_shards *sh, int64_t written, int64_t present, int64_t planned, capture_plan_pos pos,
                          void *ctx) {
    const musae_dist *d = sh->dist;
    if (musae_dist_barrier_while(d, capture_shard_alive, sh)) musae_fail("%s", sh->why);
    musae_dist_allreduce_i64(d, &written, 1, MUSAE_DIST_SUM);
    const int complete = present + written == planned;
    if (d->rank != 0) return complete;
    /* every clip of every shard at its place in the plan; a clip the plan does not have (its file left the
     * dataset) after all of them, in shard order; a clip held twice only once */
    char **v;
    const int n = list_shards(sh->dir, &v);
    placed *all = NULL;
    int64_t m = 0, unplanned = 0;
    for (int i = 0; i < n; i++) {
        char err[1200];
        musae_store *s = musae_store_open(v[i], err, sizeof err);
        if (!s) musae_fail("%s", err);
        const int64_t nc = musae_store_get_info(s)->n_clips;
        musae_clip_id *ids = musae_store_clip_ids(s);
        all = musae_xrealloc(all, sizeof *all * (size_t)(m + nc + 1));
        for (int64_t k = 0; k < nc; k++) {
            int64_t p = pos(ctx, ids[k].file, ids[k].name);
            if (p < 0) p = INT64_MAX / 2 + unplanned++;
            all[m++] = (placed){p, i, k};
        }
        musae_clip_ids_free(ids, nc);
        musae_store_close(s);
    }
    if (m) qsort(all, (size_t)m, sizeof *all, cmp_placed);
    musae_store_segment *seg = musae_xcalloc((size_t)m + 1, sizeof *seg);
    int n_seg = 0;
    int64_t twice = 0;
    for (int64_t j = 0; j < m; j++) {
        if (j > 0 && all[j].pos == all[j - 1].pos && all[j].pos < INT64_MAX / 2) {
            twice++;
            continue;
        }
        musae_store_segment *g = n_seg ? &seg[n_seg - 1] : NULL;
        if (g && g->shard == all[j].shard && g->clip0 + g->n_clips == all[j].k) g->n_clips++;
        else seg[n_seg++] = (musae_store_segment){all[j].shard, all[j].k, 1};
    }
    if (twice) LOG_WARN("capture: %lld clip(s) are in two shards; the joined store takes each once", (long long)twice);
    if (unplanned) LOG_INFO("capture: %lld clip(s) of the shards are not in this run's dataset; the joined store keeps "
                            "them after the others", (long long)unplanned);
    musae_store_join(sh->out, (const char *const *)v, n, seg, n_seg, complete);
    LOG_INFO("capture: %s joins %d shard(s) in %d segment(s) (%s/)", sh->out, n, n_seg, sh->dir);
    free(seg);
    free(all);
    free_list(v, n);
    musae_store_unlock(sh->out);
    return complete;
}

void capture_shards_free(capture_shards *sh) {
    for (int i = 0; i < sh->n_shards; i++) musae_clip_ids_free(sh->ids[i], sh->n_ids[i]);
    free_list(sh->paths, sh->n_shards);
    free(sh->ids);
    free(sh->n_ids);
    free(sh->peers);
    memset(sh, 0, sizeof *sh);
}
