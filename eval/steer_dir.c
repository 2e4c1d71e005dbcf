/* Steering directions for generate --steer. See steer_dir.h. */
#include "eval/steer_dir.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "host/core/check.h"
#include "host/core/sha256.h"
#include "host/io/safetensors.h"
#include "sae/sae.h"

void steer_opts_defaults(steer_opts *o) {
    memset(o, 0, sizeof *o);
    o->vector_alpha = 1.0;
    o->beta = 1.0;
    o->alpha_max = 1.0;
    o->layer = -1;
}

int steer_opts_any(const steer_opts *o) {
    return o->sae_dir || o->spec || o->vector || o->have_beta || o->features || o->branch || o->frames || o->layer >= 0;
}

static void check_alpha(const char *flag, double a, double alpha_max) {
    if (!isfinite(a)) musae_fail("%s: α %g is not a finite number", flag, a);
    if (fabs(a) > alpha_max)
        musae_fail("%s: |α| = %g exceeds the allowed %g (--alpha-max A allows up to A)", flag, fabs(a), alpha_max);
}

/* "F:ALPHA[,F:ALPHA...]" into p->feature / p->alpha */
static void parse_spec(const char *spec, const steer_opts *o, steer_plan *p) {
    const char *s = spec;
    while (1) {
        if (p->n_terms == STEER_MAX_TERMS) musae_fail("--steer: more than %d terms in '%s'", STEER_MAX_TERMS, spec);
        char *end = NULL;
        errno = 0;
        const long long f = strtoll(s, &end, 10);
        if (end == s || *end != ':' || errno)
            musae_fail("--steer: expected FEATURE:ALPHA[,FEATURE:ALPHA...], got '%s'", spec);
        s = end + 1;
        errno = 0;
        const double a = strtod(s, &end);
        if (end == s || (*end && *end != ',') || errno)
            musae_fail("--steer: expected FEATURE:ALPHA[,FEATURE:ALPHA...], got '%s'", spec);
        check_alpha("--steer", a, o->alpha_max);
        p->feature[p->n_terms] = f;
        p->alpha[p->n_terms] = a;
        p->n_terms++;
        if (!*end) break;
        s = end + 1;
    }
}

static void parse_frames(const char *s, int64_t frames, steer_plan *p) {
    char *end = NULL;
    errno = 0;
    const long long a = strtoll(s, &end, 10);
    if (end == s || *end != ':' || errno) musae_fail("--steer-frames: expected A:B (frames A..B-1), got '%s'", s);
    const char *t = end + 1;
    const long long b = strtoll(t, &end, 10);
    if (end == t || *end || errno) musae_fail("--steer-frames: expected A:B (frames A..B-1), got '%s'", s);
    if (a < 0 || b <= a || b > frames)
        musae_fail("--steer-frames %lld:%lld is outside the generation: it needs 0 <= A < B <= %lld (the frames "
                   "generated)", a, b, (long long)frames);
    p->frame_begin = a;
    p->frame_end = b;
    /* frame t's row is position t + 1, as capture and analyze store it (the position fed codebook 0's frame t) */
    p->pos_begin = a + 1;
    p->pos_end = b + 1;
}

static float *read_vector(const char *path, int64_t H) {
    char err[1024];
    musae_st st;
    if (musae_st_open(&st, path, err, sizeof err)) musae_fail("--steer-vector: %s", err);
    musae_st_tensor *t = musae_st_find(&st, "direction");
    if (!t) musae_fail("--steer-vector %s: no tensor 'direction' (f32 [%lld])", path, (long long)H);
    if (strcmp(t->dtype, "F32") || t->rank != 1 || t->shape[0] != H)
        musae_fail("--steer-vector %s: tensor 'direction' is %s of rank %d (first dimension %lld); the model needs "
                   "F32 [%lld]", path, t->dtype, t->rank, t->rank ? (long long)t->shape[0] : 0LL, (long long)H);
    float *u = musae_xmalloc((size_t)H * sizeof(float));
    musae_st_read(&st, t, u, MUSAE_F32);
    musae_st_close(&st);
    return u;
}

/* The checkpoint against the model: width, layer, model identity. Returns the layer to steer. */
static int check_sae(const steer_opts *o, const sae_model *sae, const mg_model *m, const char *model_dir) {
    if (sae->d != m->H)
        musae_fail("--sae %s has d_in %d; the decoder of %s has hidden size %lld", o->sae_dir, sae->d, model_dir,
                   (long long)m->H);
    if (sae->layer >= m->n_layers)
        musae_fail("--sae %s was trained on layer %d; %s has layers 0..%lld (another model?)", o->sae_dir, sae->layer,
                   model_dir, (long long)m->n_layers - 1);
    if (o->layer >= 0 && sae->layer >= 0 && o->layer != sae->layer && !o->force)
        musae_fail("--steer-layer %d: %s was trained on layer %d (--force to steer anyway)", o->layer, o->sae_dir,
                   sae->layer);
    const int layer = o->layer >= 0 ? o->layer : sae->layer;
    if (layer < 0) musae_fail("--sae %s does not say which layer it was trained on (no musae.json): give --steer-layer",
                              o->sae_dir);
    if (layer >= m->n_layers)
        musae_fail("--steer-layer %d: %s has layers 0..%lld", layer, model_dir, (long long)m->n_layers - 1);
    if (sae->model[0]) {
        char id[512];
        capture_model_id(model_dir, id, sizeof id);
        if (strcmp(id, sae->model) && !o->force)
            musae_fail("--sae %s was trained on activations of '%s'; --model %s is '%s' (--force to steer anyway)",
                       o->sae_dir, sae->model, model_dir, id);
    }
    return layer;
}

static void add_json(const steer_opts *o, steer_plan *p) {
    cJSON *j = cJSON_CreateObject();
    if (o->sae_dir) cJSON_AddStringToObject(j, "sae", o->sae_dir);
    if (o->vector) cJSON_AddStringToObject(j, "vector", o->vector);
    cJSON_AddNumberToObject(j, "layer", p->layer);
    cJSON *terms = cJSON_AddArrayToObject(j, "terms");
    for (int i = 0; i < p->n_terms; i++) {
        cJSON *t = cJSON_CreateObject();
        if (!o->vector) cJSON_AddNumberToObject(t, "feature", (double)p->feature[i]);
        cJSON_AddNumberToObject(t, "alpha", p->alpha[i]);
        if (o->features) cJSON_AddNumberToObject(t, "beta", p->term_beta[i]);
        cJSON_AddItemToArray(terms, t);
    }
    if (o->features) cJSON_AddStringToObject(j, "features", o->features);
    else cJSON_AddNumberToObject(j, "beta", p->beta);
    cJSON_AddStringToObject(j, "branch", p->branch == MG_BRANCH_COND ? "cond" : p->branch == MG_BRANCH_UNCOND ? "uncond"
                                                                                                             : "both");
    if (p->frame_begin >= 0) {
        cJSON *fr = cJSON_AddArrayToObject(j, "frames");
        cJSON_AddItemToArray(fr, cJSON_CreateNumber((double)p->frame_begin));
        cJSON_AddItemToArray(fr, cJSON_CreateNumber((double)p->frame_end));
    } else {
        cJSON_AddNullToObject(j, "frames");
    }
    cJSON_AddNumberToObject(j, "norm", p->norm);
    p->json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
}

void steer_features_open(const char *flag, const char *features_path, const char *sae_dir, int64_t num_latents,
                         musae_features *f) {
    char err[1024], st[4200], sha[65];
    if (features_read(features_path, f, err, sizeof err)) musae_fail("%s: %s", flag, err);
    snprintf(st, sizeof st, "%s/sae.safetensors", sae_dir);
    if (musae_sha256_file(st, sha)) musae_fail("%s %s: cannot read %s to check it is the analysed SAE", flag,
                                               features_path, st);
    if (strcmp(sha, f->sae_sha256))
        musae_fail("%s %s was computed with another SAE: it records sae.safetensors sha256 %.16s..., %s has %.16s...",
                   flag, features_path, f->sae_sha256, st, sha);
    if (f->M != num_latents)
        musae_fail("%s %s describes %lld latents; %s has %lld", flag, features_path, (long long)f->M, sae_dir,
                   (long long)num_latents);
}

double steer_features_beta(const char *features_path, const musae_features *fs, int64_t f) {
    const double b = fs->max_act[f];
    if (!isfinite(b) || b <= 0)
        musae_fail("%s: /features/max_act[%lld] = %g is no usable β (finite, > 0 needed; a dead feature never fired)",
                   features_path, (long long)f, b);
    return b;
}

void steer_plan_build(const steer_opts *o, const mg_model *m, const char *model_dir, int64_t frames, int cfg,
                      steer_plan *p) {
    memset(p, 0, sizeof *p);
    const int64_t H = m->H;
    p->H = H;
    p->frame_begin = p->frame_end = -1;
    p->pos_begin = 0;
    p->pos_end = MG_POS_END;
    if (!o->spec && !o->vector) musae_fail("--sae, --beta and the other steering flags need --steer or --steer-vector");
    if (o->spec && o->vector) musae_fail("--steer and --steer-vector are two directions: give one");
    if (o->spec && !o->sae_dir) musae_fail("--steer needs --sae DIR (the SAE whose decoder rows are the directions)");
    if (o->vector && o->sae_dir) musae_fail("--steer-vector takes its direction from the file: --sae does not apply");
    if (!(o->alpha_max > 0) || !isfinite(o->alpha_max)) musae_fail("--alpha-max %g: expected a finite number > 0", o->alpha_max);
    if (o->spec && !o->have_beta && !o->features)
        musae_fail("--steer needs --beta B or --features FEATURES.h5 (the feature's maximum activation, "
                   "/features/max_act)");
    if (o->features && o->have_beta) musae_fail("--beta and --features are two sources of β: give one");
    if (o->features && !o->spec) musae_fail("--features gives the β of SAE features: it goes with --steer");
    p->beta = o->beta;
    if (!o->features && (!isfinite(p->beta) || p->beta <= 0))
        musae_fail("--beta %g: expected a finite number > 0", p->beta);

    if (!o->branch || !strcmp(o->branch, "cond")) p->branch = MG_BRANCH_COND;
    else if (!strcmp(o->branch, "uncond")) p->branch = MG_BRANCH_UNCOND;
    else if (!strcmp(o->branch, "both")) p->branch = MG_BRANCH_BOTH;
    else musae_fail("--steer-branch: expected cond, uncond or both, got '%s'", o->branch);
    if (p->branch == MG_BRANCH_UNCOND && !cfg)
        musae_fail("--steer-branch uncond: this generation has no unconditional branch (CFG needs text and "
                   "--guidance > 1)");
    if (o->frames) parse_frames(o->frames, frames, p);

    p->vec = musae_xcalloc((size_t)H, sizeof(float));
    if (o->vector) {
        if (o->layer < 0) musae_fail("--steer-vector needs --steer-layer L (the layer after which it is added)");
        if (o->layer >= m->n_layers)
            musae_fail("--steer-layer %d: %s has layers 0..%lld", o->layer, model_dir, (long long)m->n_layers - 1);
        p->layer = o->layer;
        check_alpha("--steer-alpha", o->vector_alpha, o->alpha_max);
        float *u = read_vector(o->vector, H);
        double n2 = 0;
        for (int64_t i = 0; i < H; i++) {
            if (!isfinite(u[i])) musae_fail("--steer-vector %s: 'direction' has a non-finite value at %lld", o->vector,
                                            (long long)i);
            n2 += (double)u[i] * u[i];
        }
        if (n2 == 0) musae_fail("--steer-vector %s: 'direction' is the zero vector", o->vector);
        p->n_terms = 1;
        p->alpha[0] = o->vector_alpha;
        const float s = (float)o->vector_alpha * (float)p->beta;
        for (int64_t i = 0; i < H; i++) p->vec[i] = s * u[i];
        free(u);
    } else {
        parse_spec(o->spec, o, p);
        char err[1024];
        sae_model sae;
        if (sae_load(o->sae_dir, &sae, err, sizeof err)) musae_fail("--sae: %s", err);
        p->layer = check_sae(o, &sae, m, model_dir);
        musae_features fs;
        if (o->features) steer_features_open("--features", o->features, o->sae_dir, sae.M, &fs);
        for (int i = 0; i < p->n_terms; i++) {
            const int64_t f = p->feature[i];
            if (f < 0 || f >= sae.M)
                musae_fail("--steer: feature %lld is out of range: %s has latents 0..%d", (long long)f, o->sae_dir,
                           sae.M - 1);
            const float *d = sae.p.W_dec + f * H;
            double n2 = 0;
            for (int64_t j = 0; j < H; j++) n2 += (double)d[j] * d[j];
            if (!(n2 > 0) || !isfinite(n2))
                musae_fail("--steer: feature %lld of %s has a %s decoder row: no direction to steer along", (long long)f,
                           o->sae_dir, n2 == 0 ? "zero" : "non-finite");
            p->term_beta[i] = o->features ? steer_features_beta(o->features, &fs, f) : p->beta;
            if (i == 0) p->beta = p->term_beta[0];
            const float s = (float)p->alpha[i] * (float)p->term_beta[i]; /* fl(α·β), then each product rounded */
            for (int64_t j = 0; j < H; j++) p->vec[j] = i == 0 ? s * d[j] : p->vec[j] + s * d[j];
        }
        if (o->features) features_free(&fs);
        sae_model_free(&sae);
    }
    double n2 = 0;
    for (int64_t i = 0; i < H; i++) n2 += (double)p->vec[i] * p->vec[i];
    p->norm = sqrt(n2);
    add_json(o, p);
}

mg_hook steer_plan_hook(const steer_plan *p, const float *vec_dev) {
    return (mg_hook){.kind = MG_HOOK_ADD, .layer = p->layer, .branch = p->branch, .pos_begin = p->pos_begin,
                     .pos_end = p->pos_end, .vec = vec_dev, .vec_n = 1, .scale = 1.0f};
}

void steer_plan_free(steer_plan *p) {
    free(p->vec);
    cJSON_free(p->json);
    memset(p, 0, sizeof *p);
}
