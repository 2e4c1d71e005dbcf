/* `musae analyze`: one streaming pass over a store's rows of one layer, every row encoded by one or more SAEs of
 * that layer as at inference (sae_model_infer: top-k per row, or batch-top-k's recorded threshold; on AMX CPUs a
 * top-k SAE's rows go through the bf16 screen and f32 rescore of eval/analyze_encode.h, the same selection; with
 * device_cuda through sae/sae_gpu_infer.h), the statistics of every feature and every clip accumulated, and one
 * FEATURES.h5 per SAE (eval/features_io.h, docs/ANALYZE.md).
 *
 * Rows are visited in store order (clips are contiguous), so a clip's statistics are complete when its last
 * row has been seen. Memory is per feature (counters, a 256-bin fine histogram, the top-N heap) plus the
 * per-clip sparse table, never per row. Rows holding NaN/Inf are counted and skipped; a clip's time-mean is
 * over its finite rows; a clip without one is left out (counted). Every statistic is exact in any order (the
 * one float sum, mean_act's, through eval/exact_sum.h), so the output does not depend on the thread count, nor on
 * how many ranks share the clips under mpirun/srun (eval/analyze_merge.h: rank 0 merges and writes), beyond the
 * encoder's codes, which are computed on the same fixed blocks of the split's rows either way. */
#ifndef MUSAE_ANALYZE_H
#define MUSAE_ANALYZE_H

#include <stdint.h>

#include "host/dist/dist.h"
#include "host/io/store.h"
#include "sae/sae.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ANALYZE_MAX_SAE 16

typedef struct {
    const char *acts;
    int n_sae;
    const char *sae[ANALYZE_MAX_SAE];  /* checkpoint folders, all of one layer */
    const char *out[ANALYZE_MAX_SAE];  /* FEATURES.h5 of each */
    int top;                           /* N: top clips kept per feature (20) */
    double min_rate, max_rate;         /* the keep filter on clip_rate (0.01, 0.25) */
    uint64_t seed;                     /* random_clip draws (0) */
    int split_all;                     /* 0: the clips the trainer held out (musae.json data); 1: every clip */
    int64_t block_rows;                /* rows read and encoded at once (4096) */
    int64_t regroup_entries;           /* per-clip table entries regrouped by latent at once (2^21 = 16 MiB) */
    const musae_dist *dist;            /* mpirun/srun: the ranks share the clips, rank 0 writes (NULL: one process) */
    int device_cuda;                   /* 1: the row blocks are encoded on the GPU (CUDA builds; sae/sae_gpu_infer.h) */
} analyze_opts;

void analyze_opts_defaults(analyze_opts *o);
/* The whole verb: loads and checks the SAEs against the store (refusing mismatched d_model, layer or model,
 * naming both), runs the pass, writes each output atomically. Returns 0, or 130 when SIGINT/SIGTERM stopped it
 * (nothing is written then). Bad input is a musae_fail. */
int analyze_run(const analyze_opts *o);

/* Why SAE m (from folder dir) cannot be analysed on store s: a one-line reason naming both, or NULL. */
const char *analyze_mismatch(const sae_model *m, const char *dir, musae_store *s, char *buf, size_t n);

/* The per-frame activation of latent `feature` over store clip `clip` ([n_frames], malloc'd; NaN where the
 * row is not finite), encoded exactly as analyze_run encodes it. */
float *analyze_clip_trace(const sae_model *m, musae_store *s, int64_t clip, int feature);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ANALYZE_H */
