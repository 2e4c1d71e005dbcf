/* CLAP as a judge of FEATURES.h5's clips, shared by the CLAP labeler and `musae score --clap` (docs/CLAP.md):
 * the model with its identity, text embeddings, and the embeddings of the analysed clips, each cut from its
 * source by its store name "file#t=a,b", cached on disk so that no clip is embedded twice.
 *
 * A clip's audio: the source as named, else relative to the store's folder (as musae excerpt finds it), read at
 * the model's rate (48 kHz for the laion checkpoints; libsoxr HQ) from a for min(b - a, max_length_s + 0.5) s;
 * the front end keeps its first max_length_s (docs/CLAP.md). The cache is a safetensors file:
 *   embeds  F32 [n, D]  unit-length audio embeddings
 *   __metadata__: format "musae-clap-cache", model_sha256 (the CLAP identity's full hash), keys (JSON list, row
 *   order, of "<clip name>\t<source size in bytes>\t<source mtime in ns>"), musae_version.
 * A row is reused only for the same clip name, the same source size and mtime, and the same model; a cache of
 * another model is replaced. It is written atomically at the end and every 30 s of embedding, so a killed run
 * keeps what it had embedded. */
#ifndef MUSAE_CLAP_CLIPS_H
#define MUSAE_CLAP_CLIPS_H

#include <stddef.h>
#include <stdint.h>

#include "eval/features_io.h"
#include "model/clap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    musae_clap m;
    char sha256[65];    /* of config.json then the weights file (model.safetensors, its index, or pytorch_model.bin) */
    char identity[300]; /* "<folder name>:<first 16 hex of sha256>", what source.clap and scores.scorer.clap hold */
} clap_judge;

/* Opens the CLAP folder on ops' device and hashes it. 0, or -1 with a one-line reason naming the folder. */
int clap_judge_open(clap_judge *j, const char *dir, const musae_ops *ops, char *err, size_t errlen);
void clap_judge_close(clap_judge *j);

/* texts [n] -> unit-length embeds [n, D]; `what` names them in errors ("--vocab x.txt"). A text past 77 tokens
 * is truncated (a warning). 0, or -1 with the text's index and the reason (invalid UTF-8). */
int clap_judge_texts(clap_judge *j, const char *const *texts, int64_t n, const char *what, float *embeds, char *err,
                     size_t errlen);

/* Checks FEATURES.h5's clip table against the store it was computed from (`acts`: the file's recorded store, or
 * the one named instead): every /clips row's store_index is a clip of that store with the same name. 0, or -1
 * with a one-line reason naming both files and the clip. */
int clap_clips_check_store(const musae_features *f, const char *features_path, const char *acts, char *err,
                           size_t errlen);

typedef struct {
    int64_t n_clips, n_cached, n_embedded;
    double seconds; /* reading, front end and encoder of the embedded clips */
} clap_clip_stats;

/* Unit-length embeddings [n, D] of the clips rows[0..n) (rows of /clips, repeats allowed) through the cache
 * file `cache` (created when missing). acts: the store, for the sources' fallback folder. Logs one line:
 * "clap: N clip(s): C from the cache, E embedded in S s (R clips/s)". 0, or -1 with a one-line reason (a
 * missing source names the clip and the file; an unreadable cache is replaced, with a warning). */
int clap_clips_embed(clap_judge *j, const musae_features *f, const char *acts, const int64_t *rows, int64_t n,
                     const char *cache, int batch, float *embeds, clap_clip_stats *st, char *err, size_t errlen);

/* "<features>.clap-<first 16 hex>.safetensors": the default cache, beside FEATURES.h5 and per model. */
void clap_clips_default_cache(const clap_judge *j, const char *features_path, char *out, size_t cap);

/* mean_i <t, a_rows[i]> over the n clips (rows index into audio [., D]); NaN when n is 0 */
double clap_mean_sim(const float *t, const float *audio, const int64_t *rows, int64_t n, int64_t D);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CLAP_CLIPS_H */
