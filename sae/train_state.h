/* The exact-resume state of `musae train` (internal to sae/train.c and sae/train_state.c; the layout is in
 * sae/train.h): every SAE's DIR[/name]/state/step<S>.safetensors with its running metric sums, then
 * DIR/state/run.json naming step S, the stream position and the run's identity (the settings a resumed run must
 * share to continue bit-identically), written last and atomically. */
#ifndef MUSAE_SAE_TRAIN_STATE_H
#define MUSAE_SAE_TRAIN_STATE_H

#include <stdint.h>

#include "host/io/store.h"
#include "sae/sae.h"
#include "sae/train.h"

/* One SAE of the grid: its name and folder, where it sits in the grid, its trainer and the metric sums since
 * the last metric line. */
typedef struct {
    char name[64];
    char dir[4200];
    int layer, li, k, exp;
    sae_trainer t;
    sae_step_stats acc;
    int64_t acc_n;
} grid_sae;

/* mkdir -p; fails (musae_fail) on a path that exists and is not a folder. */
void sae_train_mkdirs(const char *dir);
/* The store the run trains on: its fingerprint goes into every state's identity. */
void sae_train_state_bind_store(musae_store *store);
/* Collective (every rank calls it): the state of the trainers' step at stream position pos; shards are gathered
 * and rank 0 writes, then removes the SAEs' states of prev_step (-1: none). */
void sae_train_state_save(grid_sae *g, int n, const char *out, musae_stream_pos pos, const sae_train_opts *o,
                          const musae_store_info *in, int64_t prev_step);
/* Removes the states of step and the state folders (a finished run that keeps none). */
void sae_train_state_remove(grid_sae *g, int n, const char *out, int64_t step);
/* The stream position to start at: {0} for a fresh run (refused when o->out holds an unfinished one); with
 * o->resume, the run.json's after checking the identity and the grid, with every SAE's trainer and metric sums
 * loaded and (root) metrics.jsonl cut back to the state's step. */
musae_stream_pos sae_train_state_resume(grid_sae *g, int n, const sae_train_opts *o, const musae_store_info *in,
                                        int root);

#endif /* MUSAE_SAE_TRAIN_STATE_H */
