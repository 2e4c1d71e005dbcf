/* `musae analyze` over several processes (mpirun -np P / srun; docs/ANALYZE.md "Several processes"): the share
 * of each rank, the checks that every rank runs the same command on the same data, the watch on the launcher and
 * the peers, and the collectives that merge the ranks' partial statistics into rank 0. Internal to
 * eval/analyze.c, which owns the statistics and calls these on its arrays.
 *
 * Share. The split's clips, in store order, are cut into P contiguous ranges of about equal frames
 * (capture_shards_split's rule); rank r accumulates only its own clips, so every clip is whole on one rank and
 * clip order is rank order. Rows are encoded in blocks of B rows of the split (--block-rows), at the same places
 * as one process cuts them: a rank encodes every block that holds a row of its clips, also the rows of its
 * neighbours' clips in the two blocks it shares with them (discarded), because the encoder's GEMM may round a row
 * by its place in the block. The merged statistics are then the one-process ones bit for bit. */
#ifndef MUSAE_ANALYZE_MERGE_H
#define MUSAE_ANALYZE_MERGE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "host/dist/dist.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t clip_lo, clip_hi; /* this rank's clips: positions [lo, hi) among the split's clips */
    int64_t row0, row1;       /* the split's rows it reads and encodes: whole blocks, [row0, row1) */
} analyze_share;

/* Rank d->rank's share of n split clips of frames[] rows each, blocks of B rows. */
void analyze_share_of(const musae_dist *d, const int64_t *frames, int64_t n, int64_t B, analyze_share *s);

/* Refuses (exit 1 on every rank, naming the first rank and argument that differ) ranks that were not started
 * with the same arguments. Collective; a no-op for one rank. */
void analyze_same_command(const musae_dist *d, int argc, char **argv);
/* The same for facts the ranks found themselves (what: "the store", "SAE 0"...; fact: a short string, e.g. a
 * size or a sha256). */
void analyze_same_fact(const musae_dist *d, const char *what, const char *fact);

/* The launcher that started this rank and the ranks on this host, so a rank never waits forever for peers that
 * will not come (OpenMPI's ranks outlive a SIGKILLed mpirun). */
typedef struct {
    const musae_dist *d;
    pid_t ppid;
    pid_t *peers;   /* [world] pid of each rank on this host, 0 elsewhere */
    char why[256];
} analyze_watch;
void analyze_watch_begin(analyze_watch *w, const musae_dist *d); /* collective */
/* Waits for every rank; exits 1 naming the reason when the launcher or a peer on this host died meanwhile. */
void analyze_watch_barrier(analyze_watch *w);
void analyze_watch_free(analyze_watch *w);

/* Element-wise sums over the ranks, in place on every rank (in slices: any n). */
void analyze_sum_u32(const musae_dist *d, uint32_t *v, int64_t n);
void analyze_sum_u64(const musae_dist *d, uint64_t *v, int64_t n); /* each value < 2^63 / P */
/* Rank 0 receives every rank's n elements of `elem` bytes, in rank order, into a malloc'd buffer (NULL on
 * other ranks); counts[world] receives each rank's n (on every rank). */
void *analyze_gather(const musae_dist *d, const void *send, int64_t n, size_t elem, int64_t *counts);
/* Appends every other rank's `n` records of `elem` bytes from its file `mine` (read from offset 0) to rank 0's
 * file `mine` at offset n0 (rank 0's own records), in rank order, in slices of bounded memory. name: the file's
 * name, for messages. */
void analyze_append_files(const musae_dist *d, FILE *mine, const char *name, int64_t n, size_t elem);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_MERGE_H */
