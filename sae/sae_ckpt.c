/* SAE checkpoints: the sparsify layout (sae.safetensors + cfg.json) plus musae.json, and the exact training
 * state (one safetensors file: weights, Adam moments, dead counters, and the run's JSON as metadata). Every
 * file is written atomically (temp file, fsync, rename), so a kill leaves either the old or the new one. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/io/path.h"
#include "host/io/safetensors.h"
#include "sae/sae.h"

static void mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", tmp, strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) musae_fail("%s: cannot create: %s", tmp, strerror(errno));
}

static void write_json(const char *path, cJSON *j) {
    char *s = cJSON_Print(j);
    size_t n = strlen(s);
    s = musae_xrealloc(s, n + 2);
    s[n] = '\n';
    if (musae_write_file_atomic(path, s, n + 1)) musae_fail("%s: cannot write: %s", path, strerror(errno));
    free(s);
}

void sae_eval_to_json(cJSON *o, const sae_eval_result *e) {
    cJSON_AddNumberToObject(o, "tokens", (double)e->tokens);
    cJSON_AddNumberToObject(o, "fvu", e->fvu);
    cJSON_AddNumberToObject(o, "mse", e->mse);
    cJSON_AddNumberToObject(o, "l0", e->l0);
    cJSON_AddNumberToObject(o, "cos", e->cos);
    cJSON_AddNumberToObject(o, "dead_frac", e->dead_frac);
    if (e->recovered >= 0) cJSON_AddNumberToObject(o, "recovered", e->recovered);
}

void sae_save(const char *dir, const sae_model *m, const sae_trainer *t, const sae_meta *meta) {
    mkdir_p(dir);
    char path[4200], err[512];
    const int64_t d = m->d, M = m->M;
    musae_st_writer *w = musae_st_writer_new();
    int64_t s_md[2] = {M, d}, s_m[1] = {M}, s_d[1] = {d};
    musae_st_writer_add(w, "encoder.weight", MUSAE_F32, 2, s_md, m->p.W_enc);
    musae_st_writer_add(w, "encoder.bias", MUSAE_F32, 1, s_m, m->p.b_enc);
    musae_st_writer_add(w, "W_dec", MUSAE_F32, 2, s_md, m->p.W_dec);
    musae_st_writer_add(w, "b_dec", MUSAE_F32, 1, s_d, m->p.b_dec);
    musae_st_writer_meta(w, "format", "pt"); /* safetensors' torch loaders look for it */
    snprintf(path, sizeof path, "%s/sae.safetensors", dir);
    if (musae_st_writer_save(w, path, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);

    /* cfg.json exactly as sparsify's SparseCoder.save_to_disk writes it */
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "activation", "topk");
    cJSON_AddNumberToObject(cfg, "expansion_factor", M % d == 0 ? (double)(M / d) : 0);
    cJSON_AddBoolToObject(cfg, "normalize_decoder", 1);
    cJSON_AddNumberToObject(cfg, "num_latents", (double)M);
    cJSON_AddNumberToObject(cfg, "k", m->k);
    cJSON_AddBoolToObject(cfg, "multi_topk", 0);
    cJSON_AddBoolToObject(cfg, "skip_connection", 0);
    cJSON_AddBoolToObject(cfg, "transcode", 0);
    cJSON_AddNumberToObject(cfg, "d_in", (double)d);
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    write_json(path, cfg);
    cJSON_Delete(cfg);

    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", "musae-sae");
    cJSON_AddNumberToObject(j, "format_version", 1);
    cJSON_AddStringToObject(j, "musae_version", MUSAE_VERSION);
    cJSON_AddNumberToObject(j, "layer", meta ? meta->layer : m->layer);
    cJSON_AddStringToObject(j, "model", meta ? meta->model : m->model);
    cJSON_AddNumberToObject(j, "d_in", (double)d);
    cJSON_AddNumberToObject(j, "num_latents", (double)M);
    cJSON_AddNumberToObject(j, "k", m->k);
    cJSON_AddStringToObject(j, "selection", m->batch_topk ? "batch_topk" : "topk");
    cJSON_AddNumberToObject(j, "input_scale", m->scale);
    cJSON_AddStringToObject(j, "input_scale_note", "folded into encoder.bias and b_dec: the weights act on raw activations");
    if (m->batch_topk) cJSON_AddNumberToObject(j, "threshold", m->threshold);
    if (t) {
        const sae_config *c = &t->cfg;
        cJSON_AddNumberToObject(j, "tokens_seen", (double)t->tokens);
        cJSON_AddNumberToObject(j, "steps", (double)t->step);
        char seed[32];
        snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
        cJSON_AddStringToObject(j, "seed", seed);
        cJSON *r = cJSON_AddObjectToObject(j, "recipe");
        cJSON_AddNumberToObject(r, "k_aux", c->k_aux);
        cJSON_AddNumberToObject(r, "auxk_alpha", c->auxk_alpha);
        cJSON_AddNumberToObject(r, "dead_tokens", (double)c->dead_tokens);
        cJSON_AddNumberToObject(r, "lr", sae_lr_at(c, c->warmup_steps));
        cJSON_AddNumberToObject(r, "benc_lr_mult", c->benc_lr_mult);
        cJSON_AddNumberToObject(r, "warmup_steps", (double)c->warmup_steps);
        if (meta && meta->warmup_rule) cJSON_AddStringToObject(r, "warmup_rule", meta->warmup_rule);
        cJSON_AddNumberToObject(r, "decay_frac", c->decay_frac);
        cJSON_AddNumberToObject(r, "beta1", c->beta1);
        cJSON_AddNumberToObject(r, "beta2", c->beta2);
        cJSON_AddNumberToObject(r, "eps", c->eps);
        cJSON_AddStringToObject(r, "b_dec_init", c->bdec_init == SAE_BDEC_MEDIAN ? "geometric_median"
                                                 : c->bdec_init == SAE_BDEC_MEAN ? "mean"
                                                                                 : "zero");
        cJSON_AddNumberToObject(r, "batch_tokens", (double)t->batch);
        if (meta && meta->device) cJSON_AddStringToObject(r, "device", meta->device);
        if (meta && meta->precision) cJSON_AddStringToObject(r, "precision", meta->precision);
    }
    if (meta) {
        cJSON *dset = cJSON_AddObjectToObject(j, "data");
        cJSON_AddStringToObject(dset, "acts", meta->acts);
        cJSON_AddNumberToObject(dset, "val_fraction", meta->val_fraction);
        char s[32];
        snprintf(s, sizeof s, "%" PRIu64, meta->split_seed);
        cJSON_AddStringToObject(dset, "split_seed", s);
        snprintf(s, sizeof s, "%" PRIu64, meta->data_seed);
        cJSON_AddStringToObject(dset, "data_seed", s);
        if (meta->train_rows > 0) {
            cJSON_AddNumberToObject(dset, "train_rows", (double)meta->train_rows);
            cJSON_AddNumberToObject(dset, "epochs", meta->epochs);
        }
        if (meta->tokens_rule) cJSON_AddStringToObject(dset, "tokens_rule", meta->tokens_rule);
        if (meta->dead_measured) {
            cJSON *dl = cJSON_AddObjectToObject(j, "dead_latents");
            cJSON_AddNumberToObject(dl, "fraction", meta->dead_frac);
            cJSON_AddStringToObject(dl, "measured", meta->dead_measured);
        }
        cJSON *warn = cJSON_AddArrayToObject(j, "warnings");
        for (int i = 0; i < meta->warnings.n; i++) cJSON_AddItemToArray(warn, cJSON_CreateString(meta->warnings.text[i]));
        if (meta->has_eval) sae_eval_to_json(cJSON_AddObjectToObject(j, "final_metrics"), &meta->eval);
    }
    snprintf(path, sizeof path, "%s/musae.json", dir);
    write_json(path, j);
    cJSON_Delete(j);
}

static cJSON *read_json(const char *path, char *err, size_t errlen) {
    if (musae_path_regular(path, "a JSON file", err, errlen)) return NULL;
    char *s = musae_read_file(path, NULL, err, errlen);
    if (!s) return NULL;
    cJSON *j = cJSON_Parse(s);
    free(s);
    if (!j) snprintf(err, errlen, "%s: not valid JSON", path);
    return j;
}

static int json_int(const cJSON *o, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int)v->valuedouble : dflt;
}

/* Copies tensor `name` of shape [a] or [a, b] as f32 into dst; 0, or -1 with the reason. */
static int load_tensor(musae_st *st, const char *file, const char *name, int rank, int64_t a, int64_t b, float *dst,
                       char *err, size_t errlen) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t) {
        snprintf(err, errlen, "%s: missing tensor %s", file, name);
        return -1;
    }
    if (t->rank != rank || t->shape[0] != a || (rank == 2 && t->shape[1] != b)) {
        char got[96];
        musae_shape_str(t->rank, t->shape, got, sizeof got);
        if (rank == 2)
            snprintf(err, errlen, "%s: %s has shape %s, expected [%lld, %lld] (from cfg.json)", file, name, got,
                     (long long)a, (long long)b);
        else snprintf(err, errlen, "%s: %s has shape %s, expected [%lld] (from cfg.json)", file, name, got, (long long)a);
        return -1;
    }
    if (strcmp(t->dtype, "F32") && strcmp(t->dtype, "F16") && strcmp(t->dtype, "BF16")) {
        snprintf(err, errlen, "%s: %s has dtype %s, expected F32, F16 or BF16", file, name, t->dtype);
        return -1;
    }
    musae_st_read(st, t, dst, MUSAE_F32);
    /* as the model loader does: a NaN or Inf weight would turn every metric into NaN, never an error */
    const int64_t n = rank == 2 ? a * b : a;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) {
            if (rank == 2)
                snprintf(err, errlen, "%s: tensor %s holds a non-finite value (%g at [%lld, %lld])", file, name,
                         (double)dst[i], (long long)(i / b), (long long)(i % b));
            else snprintf(err, errlen, "%s: tensor %s holds a non-finite value (%g at [%lld])", file, name, (double)dst[i],
                          (long long)i);
            return -1;
        }
    return 0;
}

int sae_load(const char *dir, sae_model *m, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    char path[4200];
    snprintf(path, sizeof path, "%s/cfg.json", dir);
    if (access(path, F_OK) != 0) {
        snprintf(err, errlen, "%s: no cfg.json (an SAE checkpoint is sae.safetensors + cfg.json, sparsify's layout)",
                 dir);
        return -1;
    }
    cJSON *cfg = read_json(path, err, errlen);
    if (!cfg) return -1;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cfg, "activation");
    int d = json_int(cfg, "d_in", 0), k = json_int(cfg, "k", 32), M = json_int(cfg, "num_latents", 0);
    if (M == 0) M = json_int(cfg, "expansion_factor", 32) * d;
    const char *bad = NULL;
    if (d <= 0) bad = "d_in missing or not positive";
    else if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "topk"))) bad = "activation is not \"topk\"";
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "transcode"))) bad = "a transcoder (transcode: true)";
    else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cfg, "skip_connection"))) bad = "skip_connection is not supported";
    else if (M <= 0 || k <= 0 || k > M) bad = "num_latents / k invalid";
    cJSON_Delete(cfg);
    if (bad) {
        snprintf(err, errlen, "%s: %s", path, bad);
        return -1;
    }
    m->d = d;
    m->M = M;
    m->k = k;
    m->layer = -1;
    m->scale = 1.0f;
    snprintf(path, sizeof path, "%s/musae.json", dir);
    FILE *probe = fopen(path, "rb");
    if (probe) {
        fclose(probe);
        cJSON *j = read_json(path, err, errlen);
        if (!j) return -1;
        m->layer = json_int(j, "layer", -1);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "model");
        if (cJSON_IsString(v)) snprintf(m->model, sizeof m->model, "%s", v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(j, "selection");
        m->batch_topk = cJSON_IsString(v) && !strcmp(v->valuestring, "batch_topk");
        v = cJSON_GetObjectItemCaseSensitive(j, "input_scale");
        if (cJSON_IsNumber(v)) m->scale = (float)v->valuedouble;
        v = cJSON_GetObjectItemCaseSensitive(j, "threshold");
        if (cJSON_IsNumber(v)) m->threshold = v->valuedouble;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
        v = cJSON_GetObjectItemCaseSensitive(data, "acts");
        if (cJSON_IsString(v)) snprintf(m->acts, sizeof m->acts, "%s", v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(data, "val_fraction");
        const cJSON *ss = cJSON_GetObjectItemCaseSensitive(data, "split_seed");
        if (cJSON_IsNumber(v) && cJSON_IsString(ss)) {
            m->has_split = 1;
            m->val_fraction = v->valuedouble;
            m->split_seed = strtoull(ss->valuestring, NULL, 10);
        }
        cJSON_Delete(j);
    }
    snprintf(path, sizeof path, "%s/sae.safetensors", dir);
    musae_st st;
    if (musae_st_open(&st, path, err, errlen)) return -1;
    sae_params_alloc(&m->p, d, M);
    int rc = load_tensor(&st, path, "encoder.weight", 2, M, d, m->p.W_enc, err, errlen);
    if (!rc) rc = load_tensor(&st, path, "encoder.bias", 1, M, 0, m->p.b_enc, err, errlen);
    if (!rc) rc = load_tensor(&st, path, "W_dec", 2, M, d, m->p.W_dec, err, errlen);
    if (!rc) rc = load_tensor(&st, path, "b_dec", 1, d, 0, m->p.b_dec, err, errlen);
    if (!rc) {
        for (int i = 0; i < st.n_tensors && !rc; i++)
            if (!st.tensors[i].used) {
                snprintf(err, errlen, "%s: unexpected tensor %s (a skip connection or another architecture?)", path,
                         st.tensors[i].name);
                rc = -1;
            }
    }
    musae_st_close(&st);
    if (rc) sae_params_free(&m->p);
    return rc;
}

/* ---- training state --------------------------------------------------------------------------------------- */

static void add_params(musae_st_writer *w, const char *prefix, const sae_params *p) {
    char name[64];
    int64_t s_md[2] = {p->M, p->d}, s_m[1] = {p->M}, s_d[1] = {p->d};
    snprintf(name, sizeof name, "%sW_enc", prefix);
    musae_st_writer_add(w, name, MUSAE_F32, 2, s_md, p->W_enc);
    snprintf(name, sizeof name, "%sb_enc", prefix);
    musae_st_writer_add(w, name, MUSAE_F32, 1, s_m, p->b_enc);
    snprintf(name, sizeof name, "%sW_dec", prefix);
    musae_st_writer_add(w, name, MUSAE_F32, 2, s_md, p->W_dec);
    snprintf(name, sizeof name, "%sb_dec", prefix);
    musae_st_writer_add(w, name, MUSAE_F32, 1, s_d, p->b_dec);
}

/* Floats go through their bit patterns so a resumed run starts from exactly the same numbers. */
static void add_bits(cJSON *o, const char *key, float f) { cJSON_AddNumberToObject(o, key, musae_f32_bits(f)); }
static float get_bits(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    MUSAE_ASSERT(cJSON_IsNumber(v), "state: %s missing", key);
    return musae_bits_f32((uint32_t)v->valuedouble);
}

void sae_state_save(const char *path, const sae_trainer *t, const char *run_json) {
    const sae_config *c = &t->cfg;
    MUSAE_ASSERT(t->Ml == c->M, "a shard of %lld latents: gather it first (sae_dist_full)", (long long)t->Ml);
    musae_st_writer *w = musae_st_writer_new();
    add_params(w, "param.", &t->p);
    add_params(w, "adam_m.", &t->m);
    add_params(w, "adam_v.", &t->v);
    int64_t s_m[1] = {c->M};
    musae_st_writer_add(w, "tokens_since_fired", MUSAE_I64, 1, s_m, t->since_fired);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "d", c->d);
    cJSON_AddNumberToObject(j, "M", c->M);
    cJSON_AddNumberToObject(j, "k", c->k);
    cJSON_AddNumberToObject(j, "batch_topk", c->batch_topk);
    cJSON_AddNumberToObject(j, "k_aux", c->k_aux);
    cJSON_AddNumberToObject(j, "batch", (double)t->batch);
    cJSON_AddNumberToObject(j, "step", (double)t->step);
    cJSON_AddNumberToObject(j, "tokens", (double)t->tokens);
    add_bits(j, "scale_bits", t->scale);
    char thr[40];
    snprintf(thr, sizeof thr, "%a", t->threshold); /* hex float: exact */
    cJSON_AddStringToObject(j, "threshold", thr);
    cJSON *run = run_json ? cJSON_Parse(run_json) : NULL;
    if (run) cJSON_AddItemToObject(j, "run", run);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    musae_st_writer_meta(w, "musae_state", s);
    free(s);
    char err[512];
    if (musae_st_writer_save(w, path, err, sizeof err)) musae_fail("%s", err);
    musae_st_writer_free(w);
}

/* Rows [m0, m0 + rows) of an F32 [M, cols] (or [M]) tensor: a shard resumes from the ordinary layout. */
static void load_rows(musae_st *st, const char *path, const char *name, const char *dtype, int rank, int64_t M,
                      int64_t cols, int64_t m0, int64_t rows, void *dst, size_t elem) {
    musae_st_tensor *t = musae_st_find(st, name);
    if (!t || strcmp(t->dtype, dtype) || t->rank != rank || t->shape[0] != M || (rank == 2 && t->shape[1] != cols))
        musae_fail("%s: missing %s tensor %s [%lld%s]", path, dtype, name, (long long)M, rank == 2 ? ", d" : "");
    const size_t row = (size_t)cols * elem;
    memcpy(dst, t->data + (size_t)m0 * row, (size_t)rows * row);
}

static void load_params(musae_st *st, const char *path, const char *prefix, const sae_trainer *tr, sae_params *p) {
    char name[64];
    const int64_t M = tr->cfg.M, d = tr->cfg.d, m0 = tr->m0, Ml = tr->Ml;
    snprintf(name, sizeof name, "%sW_enc", prefix);
    load_rows(st, path, name, "F32", 2, M, d, m0, Ml, p->W_enc, sizeof(float));
    snprintf(name, sizeof name, "%sb_enc", prefix);
    load_rows(st, path, name, "F32", 1, M, 1, m0, Ml, p->b_enc, sizeof(float));
    snprintf(name, sizeof name, "%sW_dec", prefix);
    load_rows(st, path, name, "F32", 2, M, d, m0, Ml, p->W_dec, sizeof(float));
    snprintf(name, sizeof name, "%sb_dec", prefix);
    load_rows(st, path, name, "F32", 1, d, 1, 0, d, p->b_dec, sizeof(float));
}

char *sae_state_load(const char *path, sae_trainer *t) {
    musae_st st;
    char err[512];
    if (musae_st_open(&st, path, err, sizeof err)) musae_fail("%s", err);
    const char *meta = musae_st_meta(&st, "musae_state");
    cJSON *j = meta ? cJSON_Parse(meta) : NULL;
    if (!j) musae_fail("%s: no musae_state metadata (not a musae training state)", path);
    const sae_config *c = &t->cfg;
    const char *keys[5] = {"d", "M", "k", "batch_topk", "k_aux"};
    int want[5] = {c->d, c->M, c->k, c->batch_topk, c->k_aux};
    for (int i = 0; i < 5; i++)
        if (json_int(j, keys[i], -1) != want[i])
            musae_fail("%s: the state was written with %s = %d, this run has %d (resume with the same flags)", path,
                       keys[i], json_int(j, keys[i], -1), want[i]);
    if (json_int(j, "batch", -1) != (int)t->batch)
        musae_fail("%s: the state was written with --batch %d, this run has %lld", path, json_int(j, "batch", -1),
                   (long long)t->batch);
    load_params(&st, path, "param.", t, &t->p);
    load_params(&st, path, "adam_m.", t, &t->m);
    load_params(&st, path, "adam_v.", t, &t->v);
    load_rows(&st, path, "tokens_since_fired", "I64", 1, c->M, 1, t->m0, t->Ml, t->since_fired, sizeof(int64_t));
    t->step = (int64_t)cJSON_GetObjectItemCaseSensitive(j, "step")->valuedouble;
    t->tokens = (int64_t)cJSON_GetObjectItemCaseSensitive(j, "tokens")->valuedouble;
    t->scale = get_bits(j, "scale_bits");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(j, "threshold");
    t->threshold = cJSON_IsString(thr) ? strtod(thr->valuestring, NULL) : 0.0;
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(j, "run");
    char *out = run ? cJSON_PrintUnformatted(run) : musae_xstrdup("{}");
    cJSON_Delete(j);
    musae_st_close(&st);
    return out;
}

void sae_describe(const char *dir, FILE *out) {
    char err[600], path[4200];
    sae_model m;
    if (sae_load(dir, &m, err, sizeof err)) musae_fail("%s", err);
    fprintf(out, "SAE checkpoint %s (sparsify layout%s)\n", dir, m.layer >= 0 ? " + musae.json" : "");
    fprintf(out, "d_in       %d\nlatents    %d (x%g)\nk          %d (%s)\n", m.d, m.M, (double)m.M / m.d, m.k,
            m.batch_topk ? "batch-top-k" : "top-k per row");
    if (m.layer >= 0) fprintf(out, "layer      %d\nmodel      %s\ninput scale %.6g (folded into the biases)\n", m.layer,
                              m.model, m.scale);
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < m.M; i++) {
        double nn = 0;
        for (int j = 0; j < m.d; j++) nn += (double)m.p.W_dec[(size_t)i * m.d + j] * m.p.W_dec[(size_t)i * m.d + j];
        lo = fmin(lo, sqrt(nn));
        hi = fmax(hi, sqrt(nn));
    }
    fprintf(out, "W_dec rows norm %.6f..%.6f\n", lo, hi);
    snprintf(path, sizeof path, "%s/musae.json", dir);
    cJSON *j = read_json(path, err, sizeof err);
    if (j) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "tokens_seen");
        if (cJSON_IsNumber(v)) fprintf(out, "trained on %.0f tokens\n", v->valuedouble);
        const cJSON *fm = cJSON_GetObjectItemCaseSensitive(j, "final_metrics");
        if (fm) {
            char *s = cJSON_PrintUnformatted(fm);
            fprintf(out, "held-out   %s\n", s);
            free(s);
        }
        cJSON_Delete(j);
    }
    snprintf(path, sizeof path, "%s/state/run.json", dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        fprintf(out, "state/     an unfinished or kept training state (musae train --resume)\n");
    }
    sae_model_free(&m);
}
