/* Generation-time capture (`musae generate --capture`): a store of the activations the model's hooks see while it
 * generates, one clip per item. Split from capture.c; see capture.h. */
#include "eval/capture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"

/* ---- generation-time capture ------------------------------------------------------------------------------- */

struct capture_gen {
    musae_store_writer *w;
    int n_layers;
    int64_t B, steps, H;
    float *dst[MUSAE_STORE_MAX_LAYERS]; /* [B, steps, H] */
    mg_hook hooks[MUSAE_STORE_MAX_LAYERS];
};

capture_gen *capture_gen_begin(const char *acts, const char *model_dir, const mg_model *m, const int *layers,
                               int n_layers, int64_t B, int64_t steps, musae_dtype dtype) {
    if (n_layers < 1 || n_layers > MUSAE_STORE_MAX_LAYERS) musae_fail("--capture-layers: 1..%d layers", MUSAE_STORE_MAX_LAYERS);
    for (int i = 0; i < n_layers; i++)
        if (layers[i] < 0 || layers[i] >= m->n_layers)
            musae_fail("--capture-layers: layer %d does not exist (the model has layers 0..%lld)", layers[i],
                       (long long)m->n_layers - 1);
    int sorted[MUSAE_STORE_MAX_LAYERS]; /* ascending, as musae capture stores them */
    memcpy(sorted, layers, sizeof(int) * (size_t)n_layers);
    for (int i = 1; i < n_layers; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            const int t = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = t;
        }
    for (int i = 1; i < n_layers; i++)
        if (sorted[i] == sorted[i - 1]) musae_fail("--capture-layers: layer %d given twice", sorted[i]);
    layers = sorted;
    capture_gen *g = musae_xcalloc(1, sizeof *g);
    char model_id[512];
    capture_model_id(model_dir, model_id, sizeof model_id);
    musae_store_spec spec = {.model = model_id, .d_model = (int)m->H, .frame_rate = 50.0, .n_layers = n_layers,
                             .dtype = dtype, .dtype_source = "f32"};
    memcpy(spec.layers, layers, sizeof(int) * (size_t)n_layers);
    g->w = musae_store_create(acts, &spec);
    g->n_layers = n_layers;
    g->B = B, g->steps = steps, g->H = m->H;
    for (int l = 0; l < n_layers; l++) {
        g->dst[l] = musae_xcalloc((size_t)(B * steps * m->H), sizeof(float));
        g->hooks[l] = (mg_hook){.kind = MG_HOOK_READ, .layer = layers[l], .branch = MG_BRANCH_COND, .pos_begin = 0,
                                .pos_end = MG_POS_END, .dst = g->dst[l], .dst_t = steps};
    }
    return g;
}

const mg_hook *capture_gen_hooks(const capture_gen *g, int *n_hooks) {
    *n_hooks = g->n_layers;
    return g->hooks;
}

void capture_gen_finish(capture_gen *g, const char *name, int64_t F) {
    /* frame t's row is position t + 1, fed to the decoder at step t + 1: every frame but, in HF's
     * undelayed short case (F = steps), the last one */
    const int64_t rows = F < g->steps - 1 ? F : g->steps - 1;
    if (rows < F) LOG_WARN("--acts: the last %lld frame(s) were never fed back to the decoder; %lld rows per item",
                           (long long)(F - rows), (long long)rows);
    char clip[8192];
    for (int64_t b = 0; b < g->B; b++) {
        const float *acts[MUSAE_STORE_MAX_LAYERS];
        for (int l = 0; l < g->n_layers; l++) acts[l] = g->dst[l] + (b * g->steps + 1) * g->H;
        snprintf(clip, sizeof clip, "%s#item=%lld", name, (long long)b);
        musae_store_add_clip(g->w, clip, rows, acts);
    }
    musae_store_close_writer(g->w, 1);
    for (int l = 0; l < g->n_layers; l++) free(g->dst[l]);
    free(g);
}
