/* A capture over several processes (mpirun -np P / srun musae capture; docs/CAPTURE.md "Several processes"):
 * the shard files, the split of the pending clips, the watch on the launcher and the peers, and the join.
 * Internal to eval/capture.c.
 *
 * Layout. The store `out` is sharded when `<out>.shards/` exists or the run has more than one rank. Rank r of P
 * writes `<out>.shards/p<P>-r<r>.h5`, an ordinary store committed clip by clip; a run with another P writes new
 * shards beside the old ones. Rank 0 writes `out` at the end as their joined view (musae_store_join), clips in
 * the plan's order, which is the order a one-process capture writes them in.
 *
 * Split. Every rank plans the whole dataset alike (clips already in any shard are present); the pending clips, in
 * plan order, are cut into P contiguous ranges of about equal duration: rank r takes the clips whose start in
 * the cumulative duration falls in [r·T/P, (r+1)·T/P). */
#ifndef MUSAE_CAPTURE_SHARD_H
#define MUSAE_CAPTURE_SHARD_H

#include <stdint.h>
#include <sys/types.h>

#include "host/dist/dist.h"
#include "host/io/store.h"

typedef struct {
    const musae_dist *dist;
    const char *out;
    char dir[4200];     /* <out>.shards */
    char mine[4400];    /* this rank's shard */
    /* the clips every shard held when the run began (counted as present) */
    int n_shards;
    char **paths;
    musae_clip_id **ids;
    int64_t *n_ids;
    /* the watch: the launcher that started this rank, and the ranks on this host */
    pid_t ppid;
    pid_t *peers;       /* [world] pid of each rank on this host, 0 elsewhere */
    char why[512];      /* why this rank must stop (capture_shard_alive) */
} capture_shards;

/* Whether a capture into `out` by this launch is sharded. */
int capture_sharded(const char *out, const musae_dist *d);
/* Rank 0 takes the job's lock on `out` and sets the shards aside that do not open (named, their clips redone);
 * then every rank checks each shard with check(path, arg) (the run's settings against the store's) and learns
 * the clips all shards hold, before any rank opens its own shard for writing. Collective. */
void capture_shards_begin(capture_shards *sh, const char *out, const musae_dist *d,
                          void (*check)(const char *shard, void *arg), void *arg);
/* Counts every clip the shards held at the start as present in w (this rank's shard writer). */
void capture_shards_note(const capture_shards *sh, musae_store_writer *w);
/* Rank r's range [*lo, *hi) of the n pending clips of durations len (plan order). */
void capture_shards_split(const musae_dist *d, const int64_t *len, int64_t n, int64_t *lo, int64_t *hi);
/* 0 while the launcher and the ranks on this host live; else nonzero with the reason in sh->why. */
int capture_shard_alive(void *sh);
/* After this rank closed its shard: waits for every rank (exiting if the launcher or a peer died meanwhile);
 * rank 0 then writes the joined view with the clips of every shard in plan order (pos: a clip's position in the
 * plan from its source file and name, or -1 when the plan has no such clip) and releases the job lock. */
typedef int64_t (*capture_plan_pos)(void *ctx, const char *file, const char *name);
/* Returns whether the store is complete: `present` (at the start) plus every rank's `written` is `planned`. */
int capture_shards_finish(capture_shards *sh, int64_t written, int64_t present, int64_t planned, capture_plan_pos pos,
                          void *ctx);
void capture_shards_free(capture_shards *sh);

#endif /* MUSAE_CAPTURE_SHARD_H */
