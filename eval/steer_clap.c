/* CLAP measures of musae steer. See steer_clap.h. */
#include "eval/steer_clap.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/labels_io.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/io/audio.h"

double steer_clap_dot(const float *a, const float *b, int64_t D) {
    double s = 0;
    for (int64_t i = 0; i < D; i++) s += (double)a[i] * b[i];
    return s;
}

/* The label of each studied feature: the first line (file order) of the feature with status "ok" and a string label,
 * of `labeler` when one is named. LABELS.jsonl groups a labeler's lines together (labels_replace appends each
 * labeler's block), so without --labeler the labeler whose block comes first wins; the choice is recorded. */
static void read_labels(steer_clap *c, const char *labels, const char *labeler, const int64_t *feat) {
    char err[1024];
    cJSON *lines = labels_read(labels, 0, err, sizeof err);
    if (!lines) musae_fail("--labels: %s", err);
    const cJSON *l;
    int by_labeler = 0; /* lines of --labeler in the file, whatever their status (labels_read checked `labeler`) */
    cJSON_ArrayForEach(l, lines) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(l, "status"),
                    *lb = cJSON_GetObjectItemCaseSensitive(l, "label"),
                    *who = cJSON_GetObjectItemCaseSensitive(l, "labeler");
        if (labeler && strcmp(who->valuestring, labeler)) continue;
        by_labeler++;
        if (!cJSON_IsString(st) || strcmp(st->valuestring, "ok") || !cJSON_IsString(lb) || !lb->valuestring[0])
            continue;
        const double f = cJSON_GetObjectItemCaseSensitive(l, "feature")->valuedouble;
        for (int i = 0; i < c->nf; i++)
            if ((double)feat[i] == f && !c->label[i]) {
                c->label[i] = musae_xstrdup(lb->valuestring);
                c->labeler[i] = musae_xstrdup(who->valuestring);
            }
    }
    cJSON_Delete(lines);
    /* a misspelt --labeler would otherwise leave every label null without a word */
    if (labeler && !by_labeler) musae_fail("--labeler %s: %s has no line of that labeler", labeler, labels);
}

void steer_clap_open(steer_clap *c, const char *clap_dir, const char *labels, const char *labeler,
                     const char *features_path, const musae_features *fs, const int64_t *feat, int nf,
                     const musae_ops *ops) {
    memset(c, 0, sizeof *c);
    char err[1024];
    if (clap_judge_open(&c->j, clap_dir, ops, err, sizeof err)) musae_fail("--clap: %s", err);
    c->D = c->j.m.cfg.proj_dim;
    c->nf = nf;
    const int64_t D = c->D;
    c->label = musae_xcalloc((size_t)nf, sizeof(char *));
    c->labeler = musae_xcalloc((size_t)nf, sizeof(char *));
    c->label_emb = musae_xcalloc((size_t)(nf * D), sizeof(float));
    c->centroid = musae_xcalloc((size_t)(nf * D), sizeof(float));
    c->n_ex = musae_xcalloc((size_t)nf, sizeof(int64_t));

    if (labels) {
        read_labels(c, labels, labeler, feat);
        const char **texts = musae_xmalloc((size_t)nf * sizeof(char *));
        int *at = musae_xmalloc((size_t)nf * sizeof(int));
        int n = 0;
        for (int i = 0; i < nf; i++)
            if (c->label[i]) at[n] = i, texts[n++] = c->label[i];
        float *e = musae_xmalloc((size_t)(n * D + 1) * sizeof(float));
        char what[4200];
        snprintf(what, sizeof what, "--labels %s", labels);
        if (n && clap_judge_texts(&c->j, texts, n, what, e, err, sizeof err)) musae_fail("%s", err);
        for (int k = 0; k < n; k++) memcpy(c->label_emb + at[k] * D, e + k * D, (size_t)D * sizeof(float));
        LOG_INFO("steer: %d of %d studied features have a label in %s", n, nf, labels);
        free(e), free(texts), free(at);
    }

    /* the exemplars: every studied feature's top clips, embedded through the shared cache */
    if (clap_clips_check_store(fs, features_path, fs->acts, err, sizeof err)) musae_fail("%s", err);
    int64_t *rows = musae_xmalloc((size_t)(nf * fs->N + 1) * sizeof(int64_t)), n = 0;
    for (int i = 0; i < nf; i++)
        for (int64_t r = 0; r < fs->N; r++)
            if (fs->top_clip[feat[i] * fs->N + r] >= 0) rows[n++] = fs->top_clip[feat[i] * fs->N + r];
    float *emb = musae_xmalloc((size_t)(n * D + 1) * sizeof(float));
    char cache[4600];
    clap_clips_default_cache(&c->j, features_path, cache, sizeof cache);
    clap_clip_stats st;
    if (n && clap_clips_embed(&c->j, fs, fs->acts, rows, n, cache, 8, emb, &st, err, sizeof err))
        musae_fail("%s", err);
    n = 0;
    double *m = musae_xmalloc((size_t)D * sizeof(double));
    for (int i = 0; i < nf; i++) {
        memset(m, 0, (size_t)D * sizeof(double));
        for (int64_t r = 0; r < fs->N; r++)
            if (fs->top_clip[feat[i] * fs->N + r] >= 0) {
                for (int64_t d = 0; d < D; d++) m[d] += emb[n * D + d];
                n++, c->n_ex[i]++;
            }
        /* the centroid's direction: the mean of the unit rows, normalised (cosine with it is then a dot product) */
        double s = 0;
        for (int64_t d = 0; d < D; d++) s += m[d] * m[d];
        if (c->n_ex[i] && s > 0)
            for (int64_t d = 0; d < D; d++) c->centroid[i * D + d] = (float)(m[d] / sqrt(s));
        else c->n_ex[i] = 0;
    }
    free(m), free(emb), free(rows);
}

void steer_clap_close(steer_clap *c) {
    for (int i = 0; i < c->nf; i++) free(c->label[i]), free(c->labeler[i]);
    free(c->label), free(c->labeler), free(c->label_emb), free(c->centroid), free(c->n_ex);
    clap_judge_close(&c->j);
    memset(c, 0, sizeof *c);
}

/* One clip per pass of the audio encoder: its products over a batch are cut by the batch's size (cpu_gemm's
 * tiles, OpenBLAS's edge kernels), so a clip's embedding could depend on the clips beside it, and a study
 * continued in the middle of a batch forms other batches than an uninterrupted one. */
void steer_clap_embed_wavs(steer_clap *c, const char *const *paths, int64_t n, float *emb) {
    const musae_clap_fe *fe = &c->j.m.fe;
    const int64_t F = fe->frames * fe->n_mels;
    float *feats = musae_xmalloc((size_t)(n * F + 1) * sizeof(float));
    /* musae clap's reading: the first max_length_s plus half a second for the resampler's tail */
    const double secs = (double)fe->max_samples / fe->sampling_rate + 0.5;
    char err[1024];
    for (int64_t i = 0; i < n; i++) {
        int64_t ns = 0;
        float *x = musae_audio_load(paths[i], fe->sampling_rate, 0.0, secs, &ns, err, sizeof err);
        if (!x) musae_fail("%s", err);
        if (ns == 0) musae_fail("%s: no samples", paths[i]);
        musae_clap_fe_features(fe, x, ns, feats + i * F);
        free(x);
    }
    for (int64_t i = 0; i < n; i++) musae_clap_audio_embed(&c->j.m, feats + i * F, 1, emb + i * c->D, NULL);
    free(feats);
}
