/* musae analyze over several processes: share, agreement, watch, merge collectives (analyze_merge.h). */
#include "eval/analyze_merge.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/capture_shard.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/sha256.h"

enum { SLICE = 1 << 20 }; /* elements per collective in the slice loops: 8 MiB of int64 */

void analyze_share_of(const musae_dist *d, const int64_t *frames, int64_t n, int64_t B, analyze_share *s) {
    capture_shards_split(d, frames, n, &s->clip_lo, &s->clip_hi); /* by frames, as capture splits by duration */
    int64_t g0 = 0, g1 = 0, total = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i < s->clip_lo) g0 += frames[i];
        if (i < s->clip_hi) g1 += frames[i];
        total += frames[i];
    }
    s->row0 = s->row1 = 0;
    if (g1 > g0) {
        s->row0 = g0 / B * B;
        s->row1 = (g1 + B - 1) / B * B;
        if (s->row1 > total) s->row1 = total;
    }
}

/* ---- agreement ---------------------------------------------------------------------------------------------- */

typedef struct {
    char hex[65];
} digest;

void analyze_same_command(const musae_dist *d, int argc, char **argv) {
    if (d->world < 2) return;
    musae_sha256 h;
    musae_sha256_init(&h);
    for (int i = 0; i < argc; i++) musae_sha256_update(&h, argv[i], strlen(argv[i]) + 1);
    digest mine, *all = musae_xcalloc((size_t)d->world, sizeof *all);
    musae_sha256_hex(&h, mine.hex);
    musae_dist_allgather(d, &mine, all, 1, sizeof mine);
    int odd = -1;
    for (int r = 1; r < d->world && odd < 0; r++)
        if (strcmp(all[r].hex, all[0].hex)) odd = r;
    free(all);
    if (odd < 0) return;
    /* rank 0's arguments to everyone, so the rank that differs can name the argument */
    int64_t len = 0;
    for (int i = 0; i < argc; i++) len += (int64_t)strlen(argv[i]) + 1;
    musae_dist_broadcast(d, &len, sizeof len, 0);
    char *zero = musae_xcalloc((size_t)len + 1, 1);
    if (d->rank == 0)
        for (int i = 0, at = 0; i < argc; i++) at += sprintf(zero + at, "%s", argv[i]) + 1;
    musae_dist_broadcast(d, zero, (size_t)len, 0);
    const char *z = zero, *end = zero + len;
    int i = 0;
    for (; i < argc && z < end && !strcmp(z, argv[i]); i++) z += strlen(z) + 1;
    if (d->rank == 0 || (i == argc && z == end))
        musae_fail("analyze: rank %d was started with other arguments than rank 0: every rank must run the same "
                   "command", odd);
    musae_fail("analyze: rank %d was started with '%s' where rank 0 has '%s' (argument %d): every rank must run the "
               "same command", d->rank, i < argc ? argv[i] : "(nothing)", z < end ? z : "(nothing)", i);
}

void analyze_same_fact(const musae_dist *d, const char *what, const char *fact) {
    if (d->world < 2) return;
    typedef struct {
        char s[160];
    } text;
    text mine, *all = musae_xcalloc((size_t)d->world, sizeof *all);
    memset(&mine, 0, sizeof mine);
    snprintf(mine.s, sizeof mine.s, "%s", fact);
    musae_dist_allgather(d, &mine, all, 1, sizeof mine);
    for (int r = 1; r < d->world; r++)
        if (strcmp(all[r].s, all[0].s)) {
            const text a = all[0], b = all[r];
            free(all);
            musae_fail("analyze: %s differs between the ranks: rank 0 reads %s, rank %d reads %s (every rank must "
                       "read the same files)", what, a.s, r, b.s);
        }
    free(all);
}

/* ---- the watch ------------------------------------------------------------------------------------------------ */

void analyze_watch_begin(analyze_watch *w, const musae_dist *d) {
    memset(w, 0, sizeof *w);
    w->d = d;
    w->ppid = getppid();
    w->peers = musae_dist_host_peers(d);
    if (d->world < 2) return;
    /* a rank's output goes through the launcher: once that is killed, a log line would end the rank by SIGPIPE
     * wherever it stands; ignored, the line is lost and the watch stops the rank (as capture does) */
    signal(SIGPIPE, SIG_IGN);
    /* every rank's PID, once: what an operator (or a test) needs to stop one */
    if (musae_log_get_level() >= MUSAE_LOG_INFO) {
        char host[128] = "";
        gethostname(host, sizeof host - 1);
        fprintf(stderr, "[rank %d] musae: analyze: rank %d of %d, PID %ld on %s\n", d->rank, d->rank, d->world,
                (long)getpid(), host);
    }
}

static int watch_alive(void *arg) {
    analyze_watch *w = arg;
    if (getppid() != w->ppid) {
        snprintf(w->why, sizeof w->why, "analyze: the launcher that started this rank (PID %ld) is gone: stopping "
                 "without writing (run the same command again)", (long)w->ppid);
        return 1;
    }
    for (int r = 0; r < w->d->world; r++)
        if (w->peers[r] && kill(w->peers[r], 0) != 0 && errno == ESRCH) {
            snprintf(w->why, sizeof w->why, "analyze: rank %d (PID %ld) is gone: stopping without writing (run the "
                     "same command again)", r, (long)w->peers[r]);
            return 1;
        }
    return 0;
}

void analyze_watch_barrier(analyze_watch *w) {
    if (w->d->world < 2) return;
    if (musae_dist_barrier_while(w->d, watch_alive, w)) musae_fail("%s", w->why);
}

void analyze_watch_free(analyze_watch *w) {
    free(w->peers);
    memset(w, 0, sizeof *w);
}

/* ---- merge collectives ---------------------------------------------------------------------------------------- */

void analyze_sum_u32(const musae_dist *d, uint32_t *v, int64_t n) {
    if (d->world < 2) return;
    int64_t *t = musae_xmalloc(sizeof(int64_t) * SLICE);
    for (int64_t i0 = 0; i0 < n; i0 += SLICE) {
        const int64_t m = n - i0 < SLICE ? n - i0 : SLICE;
        for (int64_t i = 0; i < m; i++) t[i] = v[i0 + i];
        musae_dist_allreduce_i64(d, t, (size_t)m, MUSAE_DIST_SUM);
        for (int64_t i = 0; i < m; i++) {
            MUSAE_ASSERT(t[i] <= (int64_t)UINT32_MAX, "a 32-bit count overflows in the merge (%lld)", (long long)t[i]);
            v[i0 + i] = (uint32_t)t[i];
        }
    }
    free(t);
}

void analyze_sum_u64(const musae_dist *d, uint64_t *v, int64_t n) {
    if (d->world < 2) return;
    for (int64_t i0 = 0; i0 < n; i0 += SLICE)
        musae_dist_allreduce_i64(d, (int64_t *)(v + i0), (size_t)(n - i0 < SLICE ? n - i0 : SLICE), MUSAE_DIST_SUM);
}

void *analyze_gather(const musae_dist *d, const void *send, int64_t n, size_t elem, int64_t *counts) {
    musae_dist_allgather(d, &n, counts, 1, sizeof n);
    size_t *cnt = musae_xmalloc(sizeof(size_t) * (size_t)d->world);
    int64_t total = 0;
    for (int r = 0; r < d->world; r++) cnt[r] = (size_t)counts[r], total += counts[r];
    void *recv = d->rank == 0 ? musae_xmalloc(elem * (size_t)total + 1) : NULL;
    musae_dist_gatherv(d, send, (size_t)n, recv, cnt, elem, 0);
    free(cnt);
    return recv;
}

void analyze_append_files(const musae_dist *d, FILE *mine, const char *name, int64_t n, size_t elem) {
    if (d->world < 2) return;
    const int P = d->world;
    int64_t *counts = musae_xmalloc(sizeof(int64_t) * (size_t)P), rounds = 0;
    musae_dist_allgather(d, &n, counts, 1, sizeof n);
    const int64_t S = (int64_t)(SLICE * 8 / elem) > 0 ? (int64_t)(SLICE * 8 / elem) : 1; /* records per slice */
    for (int r = 1; r < P; r++) rounds = (counts[r] + S - 1) / S > rounds ? (counts[r] + S - 1) / S : rounds;
    size_t *cnt = musae_xmalloc(sizeof(size_t) * (size_t)P);
    char *buf = musae_xmalloc(elem * (size_t)S + 1), *recv = d->rank == 0 ? musae_xmalloc(elem * (size_t)S * (size_t)P + 1) : NULL;
    if (fflush(mine)) musae_fail("%s (the per-clip table, unlinked): write failed: %s", name, strerror(errno));
    for (int64_t k = 0; k < rounds; k++) {
        for (int r = 0; r < P; r++) {
            const int64_t left = r == 0 ? 0 : counts[r] - k * S; /* rank 0's records are in place already */
            cnt[r] = (size_t)(left < 0 ? 0 : left < S ? left : S);
        }
        const size_t m = cnt[d->rank];
        if (m && (fseek(mine, (long)(k * S * (int64_t)elem), SEEK_SET) || fread(buf, elem, m, mine) != m))
            musae_fail("%s (the per-clip table, unlinked): read failed", name);
        musae_dist_gatherv(d, buf, m, recv, cnt, elem, 0);
        if (d->rank != 0) continue;
        int64_t base = counts[0], at = 0; /* rank r's records go after those of ranks < r */
        for (int r = 1; r < P; r++) {
            if (cnt[r] && (fseek(mine, (long)((base + k * S) * (int64_t)elem), SEEK_SET) ||
                           fwrite(recv + at * elem, elem, cnt[r], mine) != cnt[r]))
                musae_fail("%s (the per-clip table, unlinked): write failed: %s", name, strerror(errno));
            at += (int64_t)cnt[r];
            base += counts[r];
        }
    }
    if (d->rank == 0 && (fflush(mine) || fseek(mine, 0, SEEK_END)))
        musae_fail("%s (the per-clip table, unlinked): write failed: %s", name, strerror(errno));
    free(counts);
    free(cnt);
    free(buf);
    free(recv);
}
