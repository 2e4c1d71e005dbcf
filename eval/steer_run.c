/* musae steer: generation and per-clip measures. See steer_run.h; the statistics are in steer_summary.c. */
#include "eval/steer_run.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/describe.h"
#include "eval/features_io.h"
#include "eval/steer_clap.h"
#include "eval/steer_dir.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/philox.h"
#include "host/core/sha256.h"
#include "host/io/audio.h"
#include "host/io/config.h"
#include "host/io/descriptors_io.h"
#include "host/io/safetensors.h"
#include "model/delay.h"
#include "model/encodec.h"
#include "model/generate.h"
#include "model/lm_files.h"
#include "model/musicgen.h"
#include "model/text_cond.h"
#include "sae/sae.h"

void steer_run_opts_defaults(steer_run_opts *o) {
    memset(o, 0, sizeof *o);
    o->alpha_max = 1.0;
    o->seeds = 1;
    o->guidance = NAN;
    o->sampler = (mg_sampler){.greedy = 0, .temperature = 1.0f, .top_k = 250, .top_p = 1.0f, .seed = 0};
    o->batch = 16;
    o->audio = 1;
    o->n_boot = 2000;
    o->fdr = 0.05;
    o->random_draws = STEER_RANDOM_DRAWS;
}

typedef enum { K_BASELINE = 0, K_PASSTHROUGH, K_STEERED, K_RANDOM, K_OTHER } clip_kind;
static const char *const k_kind_name[] = {"baseline", "passthrough", "steered", "random", "other"};

typedef struct {
    clip_kind kind;
    int prompt;
    int64_t seed;
    int fi;    /* index into the study's features (-1: baseline, passthrough) */
    int ai;    /* index into the α list (-1: α = 0) */
    int other; /* K_OTHER: index of the other feature */
    int draw;  /* K_RANDOM: which of the feature's random directions */
    char id[96];
} clip;

typedef struct {
    const steer_run_opts *o;
    mg_model m;
    sae_model sae;
    int layer;
    int64_t F, H, K;
    int64_t *feat; /* [nf] the study's features */
    int nf;
    double *beta;      /* [nf] */
    int64_t R;         /* random directions per feature */
    float *rand_dir;   /* [nf, R, H] Gaussian, scaled to ‖W_dec[f]‖ */
    int *other;        /* [nf] the index of each feature's other-feature control, -1 when none */
    mg_text_states ts; /* [n_prompts, S, H], all prompts encoded together so every item sees the same rows */
    mg_branch branch;
    float guidance;
    int cfg;
    int have_codec;
    encodec codec;
    char sha[65];
    int have_clap;
    steer_clap clap;
    /* per (seed, prompt) pair, index (seed − seed0)·n_prompts + prompt: what each clip is compared with */
    double *base_desc;   /* [pairs, MUSAE_DESC_N_F32] the baseline's descriptors */
    uint8_t *base_desc_ok;
    float *base_emb;     /* [pairs, D] the baseline's CLAP embedding */
    uint8_t *base_emb_ok;
} run;

/* ---- the study's features, directions ------------------------------------------------------------------ */

static int by_max_act_desc(const void *a, const void *b, void *ctx) {
    const float *mx = ctx;
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    if (mx[x] != mx[y]) return mx[x] > mx[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static void pick_features(run *r, const musae_features *fs) {
    const steer_run_opts *o = r->o;
    if (o->kept_top > 0) {
        int64_t *idx = musae_xmalloc((size_t)fs->M * sizeof(int64_t));
        int64_t n = 0;
        for (int64_t i = 0; i < fs->M; i++)
            if (fs->keep[i] && fs->max_act[i] > 0 && isfinite(fs->max_act[i])) idx[n++] = i;
        if (n == 0) musae_fail("--kept-top: %s keeps no feature with a positive max_act", o->features);
        qsort_r(idx, (size_t)n, sizeof *idx, by_max_act_desc, fs->max_act);
        r->nf = (int)(n < o->kept_top ? n : o->kept_top);
        if (n < o->kept_top)
            LOG_WARN("--kept-top %d: %s keeps only %lld features", o->kept_top, o->features, (long long)n);
        r->feat = musae_xmalloc((size_t)r->nf * sizeof(int64_t));
        memcpy(r->feat, idx, (size_t)r->nf * sizeof(int64_t));
        free(idx);
    } else {
        r->nf = o->n_feature;
        r->feat = musae_xmalloc((size_t)r->nf * sizeof(int64_t));
        memcpy(r->feat, o->feature, (size_t)r->nf * sizeof(int64_t));
    }
    r->beta = musae_xmalloc((size_t)r->nf * sizeof(double));
    for (int i = 0; i < r->nf; i++) {
        const int64_t f = r->feat[i];
        if (f < 0 || f >= r->sae.M)
            musae_fail("--feature %lld is out of range: %s has latents 0..%d", (long long)f, o->sae_dir, r->sae.M - 1);
        for (int j = 0; j < i; j++)
            if (r->feat[j] == f) musae_fail("--feature %lld is given twice", (long long)f);
        double n2 = 0;
        for (int64_t j = 0; j < r->H; j++) n2 += (double)r->sae.p.W_dec[f * r->H + j] * r->sae.p.W_dec[f * r->H + j];
        if (!(n2 > 0) || !isfinite(n2))
            musae_fail("--feature %lld of %s has a %s decoder row: no direction to steer along", (long long)f,
                       o->sae_dir, n2 == 0 ? "zero" : "non-finite");
        r->beta[i] = steer_features_beta(o->features, fs, f);
    }
}

static double row_norm(const float *x, int64_t H) {
    double n2 = 0;
    for (int64_t j = 0; j < H; j++) n2 += (double)x[j] * x[j];
    return sqrt(n2);
}

/* The random controls of feature i: draw q (0 .. R−1) is H standard normals by Box–Muller from
 * Philox(random_seed, stream = q·2⁴⁰ + the feature's latent index, counter j/2), scaled to ‖W_dec[f]‖; the
 * other-feature control: the next feature of the study (cyclic), scaled to ‖W_dec[f]‖. */
static void make_controls(run *r) {
    const int64_t H = r->H;
    r->rand_dir = musae_xmalloc((size_t)(r->nf * r->R * H) * sizeof(float));
    r->other = musae_xmalloc((size_t)r->nf * sizeof(int));
    for (int i = 0; i < r->nf * r->R; i++) {
        const int64_t f = r->feat[i / r->R], q = i % r->R;
        float *u = r->rand_dir + i * H;
        for (int64_t j = 0; j < H; j += 2) {
            const musae_u32x4 w = musae_philox(r->o->random_seed, ((uint64_t)q << 40) | (uint64_t)f, (uint64_t)j / 2);
            const double u1 = ((double)(w.v[0] >> 8) + 1.0) / 16777217.0, u2 = (double)(w.v[1] >> 8) / 16777216.0;
            const double rad = sqrt(-2.0 * log(u1));
            u[j] = (float)(rad * cos(2 * M_PI * u2));
            if (j + 1 < H) u[j + 1] = (float)(rad * sin(2 * M_PI * u2));
        }
        const double s = row_norm(r->sae.p.W_dec + f * H, H) / row_norm(u, H);
        for (int64_t j = 0; j < H; j++) u[j] = (float)(u[j] * s);
    }
    for (int i = 0; i < r->nf; i++) r->other[i] = r->nf > 1 ? (i + 1) % r->nf : -1;
    if (r->nf == 1) LOG_WARN("one feature: the other-feature control needs two, so it is left out");
}

/* The vector of a clip, host [H]. Returns its norm. */
static double clip_vector(const run *r, const clip *c, float *v) {
    const int64_t H = r->H;
    memset(v, 0, (size_t)H * sizeof(float));
    if (c->fi < 0) return 0;
    const int64_t f = r->feat[c->fi];
    const float s = (float)r->o->alpha[c->ai] * (float)r->beta[c->fi]; /* fl(α·β), as generate --steer */
    const float *d = r->sae.p.W_dec + f * H;
    if (c->kind == K_STEERED)
        for (int64_t j = 0; j < H; j++) v[j] = s * d[j];
    else if (c->kind == K_RANDOM)
        for (int64_t j = 0; j < H; j++) v[j] = s * r->rand_dir[(c->fi * r->R + c->draw) * H + j];
    else {
        const float *g = r->sae.p.W_dec + r->feat[c->other] * H;
        const float t = (float)(row_norm(d, H) / row_norm(g, H));
        for (int64_t j = 0; j < H; j++) v[j] = s * (t * g[j]);
    }
    return row_norm(v, H);
}

/* ---- the clip list --------------------------------------------------------------------------------------- */

static clip *make_clips(const run *r, int64_t *n_out) {
    const steer_run_opts *o = r->o;
    const int64_t per = 2 + (int64_t)r->nf * o->n_alpha * (r->R + (r->nf > 1 ? 2 : 1));
    clip *c = musae_xcalloc((size_t)(per * o->n_prompts * o->seeds), sizeof(clip));
    int64_t n = 0;
    /* seed-major, so one batch (one seed: its Philox stream) can hold the clips of every prompt */
    for (int64_t s = 0; s < o->seeds; s++)
        for (int p = 0; p < o->n_prompts; p++) {
            const int64_t seed = (int64_t)o->seed0 + s;
            for (int k = K_BASELINE; k <= K_PASSTHROUGH; k++) {
                c[n] = (clip){.kind = (clip_kind)k, .prompt = p, .seed = seed, .fi = -1, .ai = -1, .other = -1};
                snprintf(c[n].id, sizeof c[n].id, "p%d_s%lld_%s", p, (long long)seed, k_kind_name[k]);
                n++;
            }
            for (int fi = 0; fi < r->nf; fi++)
                for (int ai = 0; ai < o->n_alpha; ai++)
                    for (int k = K_STEERED; k <= K_OTHER; k++)
                        for (int q = 0; q < (k == K_RANDOM ? r->R : 1); q++) {
                            if (k == K_OTHER && r->other[fi] < 0) continue;
                            c[n] = (clip){.kind = (clip_kind)k,
                                          .prompt = p,
                                          .seed = seed,
                                          .fi = fi,
                                          .ai = ai,
                                          .other = k == K_OTHER ? r->other[fi] : -1,
                                          .draw = q};
                            int w = snprintf(c[n].id, sizeof c[n].id, "p%d_s%lld_f%lld_a%d_%s", p, (long long)seed,
                                             (long long)r->feat[fi], ai, k_kind_name[k]);
                            if (k == K_RANDOM) snprintf(c[n].id + w, sizeof c[n].id - (size_t)w, "%d", q);
                            n++;
                        }
        }
    *n_out = n;
    return c;
}

/* ---- resuming: the complete lines of steer.jsonl ------------------------------------------------------- */

/* Keeps the complete lines of path (each a JSON object with an id, ending in a newline; the first incomplete one and
 * all after it are dropped, truncating the file) and returns them parsed (*n of them). */
static cJSON **read_done(const char *path, int64_t *n) {
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno != ENOENT) musae_fail("%s: cannot be read: %s", path, strerror(errno));
        return NULL;
    }
    cJSON **ids = NULL;
    size_t cap = 0, len = 0, good = 0;
    char *line = NULL;
    ssize_t got;
    int dropped = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        cJSON *j = line[got - 1] == '\n' ? cJSON_Parse(line) : NULL;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        if (!cJSON_IsString(id)) {
            cJSON_Delete(j);
            dropped = 1;
            break;
        }
        ids = musae_xrealloc(ids, (len + 1) * sizeof *ids);
        ids[len++] = j;
        good += (size_t)got;
    }
    free(line);
    fclose(f);
    if (dropped) {
        LOG_WARN("%s: dropping an incomplete line after %zu complete ones (the run was stopped while writing it)", path,
                 len);
        if (truncate(path, (off_t)good)) musae_fail("%s: cannot be truncated: %s", path, strerror(errno));
    }
    *n = (int64_t)len;
    return ids;
}

/* ---- one batch --------------------------------------------------------------------------------------- */

typedef struct {
    const run *r;
    const uint8_t *pass; /* [nb] 1: this item's rows are replaced by their SAE reconstruction */
    sae_codes codes;
    float *xc, *pre;
    int64_t cap;
} pass_ctx;

static void pass_map(void *ctx, int64_t item, int64_t pos0, float *x, int64_t n_pos, int64_t H) {
    (void)pos0;
    pass_ctx *p = ctx;
    if (!p->pass[item]) return;
    const sae_model *s = &p->r->sae;
    if (n_pos > p->cap) {
        p->cap = n_pos;
        p->xc = musae_xrealloc(p->xc, (size_t)(n_pos * H) * sizeof(float));
        p->pre = s->batch_topk ? musae_xrealloc(p->pre, (size_t)(n_pos * s->M) * sizeof(float)) : NULL;
        p->codes.ptr = musae_xrealloc(p->codes.ptr, (size_t)(n_pos + 1) * sizeof(int64_t));
    }
    sae_model_infer(s, x, n_pos, &p->codes, p->xc, p->pre);
    sae_cpu_decode(&p->codes, s->p.W_dec, s->p.b_dec, s->d, x);
}

/* The study features' activations of each item's codes [nb, K, F], teacher-forced with the item's prompt:
 * act [nb, nf] = mean over the F frames of each feature's latent value (0 where the SAE does not select it). */
static void remeasure(const run *r, const clip *cl, int64_t nb, const int64_t *codes, double *act) {
    const mg_model *m = &r->m;
    const int64_t K = r->K, F = r->F, T = F + K, H = r->H;
    int64_t *del = musae_xmalloc((size_t)(nb * K * T) * sizeof(int64_t));
    mg_delay_codes(codes, nb, K, F, m->V, del);
    float *x = musae_xmalloc((size_t)(nb * (F + 1) * H) * sizeof(float));
    mg_state st;
    mg_state_opts so = {.batch = nb, .n_cond = nb, .t_max = T, .t_call = T, .incremental = 0, .logits = 0};
    mg_state_init(&st, m, &so);
    const int64_t S = r->ts.S;
    if (r->ts.states) {
        float *s = musae_xmalloc((size_t)(nb * S * H) * sizeof(float)),
              *mk = musae_xmalloc((size_t)(nb * S) * sizeof(float));
        for (int64_t b = 0; b < nb; b++) {
            memcpy(s + b * S * H, r->ts.states + cl[b].prompt * S * H, (size_t)(S * H) * sizeof(float));
            memcpy(mk + b * S, r->ts.mask + cl[b].prompt * S, (size_t)S * sizeof(float));
        }
        mg_state_set_text(&st, m, s, mk, S);
        free(s), free(mk);
    }
    mg_hook rd = {.kind = MG_HOOK_READ,
                  .layer = r->layer,
                  .branch = MG_BRANCH_COND,
                  .pos_begin = 1,
                  .pos_end = F + 1,
                  .dst = x,
                  .dst_t = F + 1};
    mg_forward(m, &st, del, T, &rd, 1, 0);
    mg_state_free(&st, m);
    sae_codes sc = {.ptr = musae_xmalloc((size_t)(F + 1) * sizeof(int64_t))};
    float *xc = musae_xmalloc((size_t)(F * H) * sizeof(float));
    float *pre = r->sae.batch_topk ? musae_xmalloc((size_t)(F * r->sae.M) * sizeof(float)) : NULL;
    for (int64_t b = 0; b < nb; b++) {
        sae_model_infer(&r->sae, x + (b * (F + 1) + 1) * H, F, &sc, xc, pre);
        double *a = act + b * r->nf;
        for (int i = 0; i < r->nf; i++) a[i] = 0;
        for (int64_t t = 0; t < F; t++)
            for (int64_t e = sc.ptr[t]; e < sc.ptr[t + 1]; e++)
                for (int i = 0; i < r->nf; i++)
                    if (sc.idx[e] == r->feat[i]) a[i] += sc.val[e];
        for (int i = 0; i < r->nf; i++) a[i] /= (double)F;
    }
    free(pre), free(xc), free(sc.ptr), free(sc.idx), free(sc.val), free(x), free(del);
}

static void add_number_or_null(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static int64_t *read_codes_file(const run *r, const char *path) {
    int64_t B = 0, F = 0;
    int64_t *c = mg_read_codes(path, r->K, r->m.V, &B, &F);
    if (B != 1 || F != r->F)
        musae_fail("%s: codes [%lld, %lld, %lld]; this study has [1, %lld, %lld] (another run?)", path, (long long)B,
                   (long long)r->K, (long long)F, (long long)r->K, (long long)r->F);
    return c;
}

/* describe's descriptors of a decoded clip, in MUSAE_DESC_F32_FIELDS order */
static void describe_wav(const run *r, const float *wav, int64_t ns, double *out) {
    musae_desc d, *win =
                      musae_xmalloc((size_t)(describe_n_windows(ns, r->codec.cfg.sampling_rate) + 1) * sizeof(musae_desc));
    describe_clip(wav, ns, r->codec.cfg.sampling_rate, &d, win);
    int k = 0;
#define X(n, u) out[k++] = (double)d.n;
    MUSAE_DESC_F32_FIELDS(X)
#undef X
    free(win);
}

static int64_t pair_index(const run *r, const clip *c) {
    return (c->seed - (int64_t)r->o->seed0) * r->o->n_prompts + c->prompt;
}

/* The clip's CLAP measures (docs/STEER.md "CLAP measures"), e its unit audio embedding: `label` [nf] the cosine with
 * each studied feature's label text (null without a label), `exemplars` [nf] the cosine with each feature's exemplar
 * centroid (null without exemplars), `label_target` and `exemplars_target` those of the clip's own feature, `dist`
 * 1 − the cosine with the twin baseline. */
static void add_clap(run *r, const clip *c, const float *e, cJSON *j) {
    const steer_clap *sc = &r->clap;
    const int64_t D = sc->D, bi = pair_index(r, c);
    if (!r->base_emb_ok[bi]) { /* its baseline came from a stopped run: the embedding it saved */
        char path[4200], err[1024];
        snprintf(path, sizeof path, "%s/clips/p%d_s%lld_baseline.clap.safetensors", r->o->out_dir, c->prompt,
                 (long long)c->seed);
        musae_st st;
        if (musae_st_open(&st, path, err, sizeof err)) musae_fail("%s", err);
        float *e0 = musae_st_load(&st, "embed", MUSAE_F32, 1, (int64_t[]){D});
        memcpy(r->base_emb + bi * D, e0, (size_t)D * sizeof(float));
        free(e0);
        musae_st_close(&st);
        r->base_emb_ok[bi] = 1;
    }
    cJSON *cj = cJSON_AddObjectToObject(j, "clap");
    cJSON *la = cJSON_AddArrayToObject(cj, "label"), *ea = cJSON_AddArrayToObject(cj, "exemplars");
    double lt = NAN, et = NAN;
    for (int i = 0; i < r->nf; i++) {
        const double l = sc->label[i] ? steer_clap_dot(e, sc->label_emb + i * D, D) : NAN;
        const double x = sc->n_ex[i] ? steer_clap_dot(e, sc->centroid + i * D, D) : NAN;
        cJSON_AddItemToArray(la, isfinite(l) ? cJSON_CreateNumber(l) : cJSON_CreateNull());
        cJSON_AddItemToArray(ea, isfinite(x) ? cJSON_CreateNumber(x) : cJSON_CreateNull());
        if (i == c->fi) lt = l, et = x;
    }
    add_number_or_null(cj, "label_target", lt);
    add_number_or_null(cj, "exemplars_target", et);
    add_number_or_null(cj, "dist", 1.0 - steer_clap_dot(e, r->base_emb + bi * D, D));
}

static void run_batch(run *r, const clip *cl, int64_t nb, FILE *jl) {
    const steer_run_opts *o = r->o;
    const mg_model *m = &r->m;
    const int64_t H = r->H, K = r->K, F = r->F;
    float *vec = musae_xmalloc((size_t)(nb * H) * sizeof(float));
    double *norm = musae_xmalloc((size_t)nb * sizeof(double));
    uint8_t *pass = musae_xcalloc((size_t)nb, 1);
    int any_pass = 0;
    for (int64_t b = 0; b < nb; b++) {
        norm[b] = clip_vector(r, &cl[b], vec + b * H);
        pass[b] = cl[b].kind == K_PASSTHROUGH;
        any_pass |= pass[b];
    }
    float *vec_dev = m->ops->alloc((size_t)(nb * H) * sizeof(float));
    m->ops->upload(vec_dev, vec, (size_t)(nb * H) * sizeof(float));
    pass_ctx pc = {.r = r, .pass = pass};
    mg_hook hooks[2] = {
        {.kind = MG_HOOK_ADD,
         .layer = r->layer,
         .branch = r->branch,
         .pos_begin = 0,
         .pos_end = MG_POS_END,
         .vec = vec_dev,
         .vec_n = nb,
         .scale = 1.0f},
        /* the passthrough: every frame's row (positions from 1: the SAE never saw BOS) of the passthrough items */
        {.kind = MG_HOOK_MAP,
         .layer = r->layer,
         .branch = r->branch,
         .pos_begin = 1,
         .pos_end = MG_POS_END,
         .map = pass_map,
         .map_ctx = &pc},
    };
    /* the seed is per batch: a batch holds clips of one seed (make_batches) */
    mg_gen_params gp = {
        .steps = mg_delay_plan_frames(K, F).steps, .guidance = r->guidance, .sampler = o->sampler, .progress = 0};
    gp.sampler.seed = (uint64_t)cl[0].seed;
    gp.sampler.same_draws = 1;
    mg_text text = {0};
    float *states = NULL, *mask = NULL;
    const int64_t S = r->ts.S;
    if (r->ts.states) {
        states = musae_xmalloc((size_t)(nb * S * H) * sizeof(float));
        mask = musae_xmalloc((size_t)(nb * S) * sizeof(float));
        for (int64_t b = 0; b < nb; b++) {
            memcpy(states + b * S * H, r->ts.states + cl[b].prompt * S * H, (size_t)(S * H) * sizeof(float));
            memcpy(mask + b * S, r->ts.mask + cl[b].prompt * S, (size_t)S * sizeof(float));
        }
        text = (mg_text){.states = states, .mask = mask, .S = S};
    }
    int64_t *codes = musae_xmalloc((size_t)(nb * K * F) * sizeof(int64_t));
    mg_generate(m, nb, &text, &gp, hooks, any_pass ? 2 : 1, NULL, NULL, codes);
    m->ops->free(vec_dev);
    free(pc.xc), free(pc.pre), free(pc.codes.ptr), free(pc.codes.idx), free(pc.codes.val);

    double *act = musae_xmalloc((size_t)(nb * r->nf) * sizeof(double));
    remeasure(r, cl, nb, codes, act);

    /* first the files of every clip (codes, WAV, descriptors), then the CLAP embeddings of the batch's WAVs in one
     * pass, then the lines */
    char path[4200], rel[256], seed_s[32];
    double *desc = musae_xmalloc((size_t)(nb * MUSAE_DESC_N_F32) * sizeof(double));
    char **wav_path = musae_xcalloc((size_t)nb, sizeof(char *));
    for (int64_t b = 0; b < nb; b++) {
        const clip *c = &cl[b];
        const int64_t *cb = codes + b * K * F;
        snprintf(rel, sizeof rel, "clips/%s.st", c->id);
        snprintf(path, sizeof path, "%s/%s", o->out_dir, rel);
        snprintf(seed_s, sizeof seed_s, "%lld", (long long)c->seed);
        const char *meta[] = {"model", o->model_dir, "sae", o->sae_dir, "kind", k_kind_name[c->kind], "seed", seed_s};
        mg_write_codes(path, cb, 1, K, F, meta, 4);
        if (!r->have_codec) continue;
        float *wav = encodec_decode_all(&r->codec, cb, F);
        const int64_t ns = F * r->codec.hop;
        snprintf(path, sizeof path, "%s/clips/%s.wav", o->out_dir, c->id);
        char err[1024];
        musae_audio_writer *w =
            musae_audio_writer_open(path, r->codec.cfg.sampling_rate, 1, MUSAE_AUDIO_PCM16, err, sizeof err);
        if (!w || musae_audio_write(w, wav, ns, err, sizeof err) || musae_audio_writer_close(w, NULL, err, sizeof err))
            musae_fail("%s", err);
        wav_path[b] = musae_xstrdup(path);
        describe_wav(r, wav, ns, desc + b * MUSAE_DESC_N_F32);
        if (c->kind == K_BASELINE) {
            memcpy(r->base_desc + pair_index(r, c) * MUSAE_DESC_N_F32, desc + b * MUSAE_DESC_N_F32,
                   MUSAE_DESC_N_F32 * sizeof(double));
            r->base_desc_ok[pair_index(r, c)] = 1;
        }
        free(wav);
    }
    const int64_t D = r->have_clap ? r->clap.D : 0;
    float *emb = musae_xmalloc((size_t)(nb * D + 1) * sizeof(float));
    if (r->have_clap) {
        steer_clap_embed_wavs(&r->clap, (const char *const *)wav_path, nb, emb);
        /* a baseline's embedding is kept beside its clip, so a continued run compares its twins with the same numbers
         * whatever batch the CLAP pass would put it in */
        for (int64_t b = 0; b < nb; b++)
            if (cl[b].kind == K_BASELINE) {
                memcpy(r->base_emb + pair_index(r, &cl[b]) * D, emb + b * D, (size_t)D * sizeof(float));
                r->base_emb_ok[pair_index(r, &cl[b])] = 1;
                snprintf(path, sizeof path, "%s/clips/%s.clap.safetensors", o->out_dir, cl[b].id);
                musae_st_writer *w = musae_st_writer_new();
                musae_st_writer_add(w, "embed", MUSAE_F32, 1, (int64_t[]){D}, emb + b * D);
                musae_st_writer_meta(w, "clap", r->clap.j.identity);
                char err[1024];
                if (musae_st_writer_save(w, path, err, sizeof err)) musae_fail("%s", err);
                musae_st_writer_free(w);
            }
    }

    for (int64_t b = 0; b < nb; b++) {
        const clip *c = &cl[b];
        const int64_t *cb = codes + b * K * F, bi = pair_index(r, c);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", c->id);
        cJSON_AddStringToObject(j, "kind", k_kind_name[c->kind]);
        if (c->fi >= 0) cJSON_AddNumberToObject(j, "feature", (double)r->feat[c->fi]);
        else cJSON_AddNullToObject(j, "feature");
        if (c->kind == K_OTHER) cJSON_AddNumberToObject(j, "other_feature", (double)r->feat[c->other]);
        if (c->kind == K_RANDOM) cJSON_AddNumberToObject(j, "draw", c->draw);
        cJSON_AddNumberToObject(j, "alpha", c->ai >= 0 ? o->alpha[c->ai] : 0.0);
        if (c->fi >= 0) cJSON_AddNumberToObject(j, "beta", r->beta[c->fi]);
        else cJSON_AddNullToObject(j, "beta");
        cJSON_AddNumberToObject(j, "prompt", c->prompt);
        cJSON_AddNumberToObject(j, "seed", (double)c->seed);
        cJSON_AddNumberToObject(j, "norm", norm[b]);
        snprintf(rel, sizeof rel, "clips/%s.st", c->id);
        cJSON_AddStringToObject(j, "codes", rel);
        /* the target's activation and every studied feature's */
        if (c->fi >= 0) cJSON_AddNumberToObject(j, "act_target", act[b * r->nf + c->fi]);
        else cJSON_AddNullToObject(j, "act_target");
        cJSON *aa = cJSON_AddArrayToObject(j, "act");
        for (int i = 0; i < r->nf; i++) cJSON_AddItemToArray(aa, cJSON_CreateNumber(act[b * r->nf + i]));
        /* codes that differ from the paired baseline (written before this one: it is the first clip of its pair) */
        char bpath[4200];
        snprintf(bpath, sizeof bpath, "%s/clips/p%d_s%lld_baseline.st", o->out_dir, c->prompt, (long long)c->seed);
        int64_t *base = read_codes_file(r, bpath);
        int64_t diff = 0;
        for (int64_t i = 0; i < K * F; i++) diff += base[i] != cb[i];
        free(base);
        cJSON_AddNumberToObject(j, "code_diff", (double)diff / (double)(K * F));
        if (r->have_codec) {
            snprintf(rel, sizeof rel, "clips/%s.wav", c->id);
            cJSON_AddStringToObject(j, "audio", rel);
            cJSON *dj = cJSON_AddObjectToObject(j, "desc");
            for (int k = 0; k < MUSAE_DESC_N_F32; k++)
                add_number_or_null(dj, musae_desc_f32_names[k], desc[b * MUSAE_DESC_N_F32 + k]);
            /* the change from the twin baseline, descriptor by descriptor (null where either is not finite); a baseline
             * of a stopped run is decoded again from its codes (the same samples, so the same numbers) */
            if (!r->base_desc_ok[bi]) {
                int64_t *bc = read_codes_file(r, bpath);
                float *bw = encodec_decode_all(&r->codec, bc, F);
                describe_wav(r, bw, F * r->codec.hop, r->base_desc + bi * MUSAE_DESC_N_F32);
                r->base_desc_ok[bi] = 1;
                free(bw), free(bc);
            }
            cJSON *dd = cJSON_AddObjectToObject(j, "desc_delta");
            for (int k = 0; k < MUSAE_DESC_N_F32; k++)
                add_number_or_null(dd, musae_desc_f32_names[k],
                                   desc[b * MUSAE_DESC_N_F32 + k] - r->base_desc[bi * MUSAE_DESC_N_F32 + k]);
        } else {
            cJSON_AddNullToObject(j, "audio");
            cJSON_AddNullToObject(j, "desc");
            cJSON_AddNullToObject(j, "desc_delta");
        }
        if (r->have_clap) add_clap(r, c, emb + b * D, j);
        else cJSON_AddNullToObject(j, "clap");
        char *s = cJSON_PrintUnformatted(j);
        if (fprintf(jl, "%s\n", s) < 0) musae_fail("steer.jsonl: write failed: %s", strerror(errno));
        cJSON_free(s);
        cJSON_Delete(j);
    }
    for (int64_t b = 0; b < nb; b++) free(wav_path[b]);
    free(wav_path), free(desc), free(emb);
    if (fflush(jl) || fsync(fileno(jl))) musae_fail("%s/steer.jsonl: write failed: %s", o->out_dir, strerror(errno));
    free(act), free(codes), free(states), free(mask), free(pass), free(norm), free(vec);
}

/* ---- the run --------------------------------------------------------------------------------------------- */

/* STEER/study.json: what decides the clips (model, SAE, features, α, prompts, seeds, length, sampler, branch, random
 * seed). Written by the first run; a later run in the folder must match it, so a continued study is the same study. */
static void check_study(const run *r, const char *dir) {
    const steer_run_opts *o = r->o;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->model_dir);
    cJSON_AddStringToObject(j, "sae", o->sae_dir);
    cJSON_AddStringToObject(j, "sae_sha256", r->sha);
    cJSON_AddNumberToObject(j, "layer", r->layer);
    cJSON *fa = cJSON_AddArrayToObject(j, "features");
    for (int i = 0; i < r->nf; i++) cJSON_AddItemToArray(fa, cJSON_CreateNumber((double)r->feat[i]));
    cJSON *aa = cJSON_AddArrayToObject(j, "alpha");
    for (int i = 0; i < o->n_alpha; i++) cJSON_AddItemToArray(aa, cJSON_CreateNumber(o->alpha[i]));
    cJSON_AddItemToObject(j, "prompts", cJSON_CreateStringArray(o->prompts, o->n_prompts));
    cJSON_AddNumberToObject(j, "seed_base", (double)o->seed0);
    cJSON_AddNumberToObject(j, "seeds", (double)o->seeds);
    cJSON_AddNumberToObject(j, "frames", (double)r->F);
    cJSON_AddNumberToObject(j, "guidance", r->guidance);
    cJSON_AddNumberToObject(j, "temperature", o->sampler.temperature);
    cJSON_AddNumberToObject(j, "top_k", o->sampler.top_k);
    cJSON_AddNumberToObject(j, "top_p", o->sampler.top_p);
    cJSON_AddStringToObject(j, "branch",
                            r->branch == MG_BRANCH_COND     ? "cond"
                            : r->branch == MG_BRANCH_UNCOND ? "uncond"
                                                            : "both");
    cJSON_AddNumberToObject(j, "random_seed", (double)o->random_seed);
    cJSON_AddNumberToObject(j, "random_draws", (double)r->R);
    cJSON_AddBoolToObject(j, "audio", r->have_codec);
    if (r->have_clap) {
        cJSON_AddStringToObject(j, "clap", r->clap.j.identity);
        if (o->labels) cJSON_AddStringToObject(j, "labels", o->labels);
        else cJSON_AddNullToObject(j, "labels");
        cJSON *la = cJSON_AddArrayToObject(j, "label");
        for (int i = 0; i < r->nf; i++)
            cJSON_AddItemToArray(la, r->clap.label[i] ? cJSON_CreateString(r->clap.label[i]) : cJSON_CreateNull());
    } else {
        cJSON_AddNullToObject(j, "clap");
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/study.json", dir);
    FILE *f = fopen(path, "rb");
    if (f) {
        char *line = NULL;
        size_t cap = 0;
        const ssize_t n = getline(&line, &cap, f);
        fclose(f);
        if (n <= 0 || strncmp(line, s, strlen(s)) || line[strlen(s)] != '\n')
            musae_fail(
                "-o %s holds another study (study.json differs: model, SAE, features, α, prompts, seeds, length, "
                "sampler, branch, --random-seed, --random-draws or CLAP and labels): use a new folder",
                dir);
        free(line);
    } else {
        snprintf(tmp, sizeof tmp, "%s.partial", path);
        FILE *w = fopen(tmp, "wb");
        if (!w || fprintf(w, "%s\n", s) < 0 || fflush(w) || fsync(fileno(w)) || fclose(w) || rename(tmp, path))
            musae_fail("%s: cannot be written: %s", path, strerror(errno));
    }
    cJSON_free(s);
}

static void make_dir(const char *path) {
    if (mkdir(path, 0777) && errno != EEXIST) musae_fail("-o %s: cannot be created: %s", path, strerror(errno));
    struct stat sb;
    if (stat(path, &sb) || !S_ISDIR(sb.st_mode)) musae_fail("-o %s: not a folder", path);
}

static void validate(const steer_run_opts *o) {
    if (!o->n_alpha) musae_fail("--alpha: give at least one α");
    for (int i = 0; i < o->n_alpha; i++) {
        const double a = o->alpha[i];
        if (!isfinite(a) || a <= 0)
            musae_fail("--alpha %g: expected a finite α > 0 (the baseline is α = 0 already)", a);
        if (a > o->alpha_max)
            musae_fail("--alpha %g exceeds the allowed %g (--alpha-max A allows up to A)", a, o->alpha_max);
    }
    if (!o->n_prompts) musae_fail("--prompt or --prompts: the study needs at least one prompt");
    if (o->random_draws < 1) musae_fail("--random-draws %lld: expected at least 1", (long long)o->random_draws);
    if (o->clap && !o->audio) musae_fail("--clap: the CLAP measures need the clips' audio; drop --no-audio");
    if (o->labels && !o->clap) musae_fail("--labels %s: the label alignment is a CLAP measure; give --clap DIR", o->labels);
    if (o->labeler && !o->labels) musae_fail("--labeler %s: give --labels LABELS.jsonl", o->labeler);
}

int steer_run(const steer_run_opts *o) {
    validate(o);
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    char err[1024];
    musae_model_config cfg;
    if (musae_config_load(&cfg, o->model_dir, err, sizeof err)) musae_fail("%s", err);
    musae_st st;
    if (musae_st_open(&st, o->model_dir, err, sizeof err)) musae_fail("%s", err);
    mg_load_from(&r.m, &st, &cfg, o->ops, o->prec);
    r.H = r.m.H, r.K = r.m.K;
    if (!cfg.has_audio) musae_fail("--seconds: %s/config.json has no audio_encoder frame rate", o->model_dir);
    r.F = (int64_t)llround(o->seconds * cfg.audio.frame_rate);
    if (r.F < 1) musae_fail("--seconds %g is less than one frame", o->seconds);
    if (mg_check_frames(&r.m, r.F, err, sizeof err)) musae_fail("--seconds: %s", err);
    if (sae_load(o->sae_dir, &r.sae, err, sizeof err)) musae_fail("--sae: %s", err);
    /* the checkpoint against the model, through generate --steer's own checks (width, layer, model id) */
    steer_opts so;
    steer_opts_defaults(&so);
    so.sae_dir = o->sae_dir;
    /* a zero-α term on the first latent with a usable decoder row: only the checks matter here */
    int64_t usable = 0;
    while (usable < r.sae.M - 1 && !(row_norm(r.sae.p.W_dec + usable * r.sae.d, r.sae.d) > 0)) usable++;
    char spec[64];
    snprintf(spec, sizeof spec, "%lld:0", (long long)usable);
    so.spec = spec;
    so.beta = 1, so.have_beta = 1;
    so.branch = o->branch;
    r.guidance = (float)(isnan(o->guidance) ? cfg.guidance_scale : o->guidance);
    r.cfg = r.guidance > 1.0f;
    steer_plan sp;
    steer_plan_build(&so, &r.m, o->model_dir, r.F, r.cfg, &sp);
    r.layer = sp.layer;
    r.branch = sp.branch;
    steer_plan_free(&sp);

    musae_features fs;
    steer_features_open("--features", o->features, o->sae_dir, r.sae.M, &fs);
    snprintf(r.sha, sizeof r.sha, "%s", fs.sae_sha256);
    pick_features(&r, &fs);
    r.R = o->random_draws;
    make_controls(&r);
    r.have_codec = o->audio; /* validate() refused --clap without audio */
    if (o->clap) {
        steer_clap_open(&r.clap, o->clap, o->labels, o->labeler, o->features, &fs, r.feat, r.nf, r.m.ops);
        r.have_clap = 1;
    }
    features_free(&fs);
    const int64_t pairs = o->seeds * o->n_prompts;
    r.base_desc = musae_xmalloc((size_t)(pairs * MUSAE_DESC_N_F32) * sizeof(double));
    r.base_desc_ok = musae_xcalloc((size_t)pairs, 1);
    r.base_emb = musae_xmalloc((size_t)(pairs * (r.have_clap ? r.clap.D : 0) + 1) * sizeof(float));
    r.base_emb_ok = musae_xcalloc((size_t)pairs, 1);

    musae_text_cond_run(o->model_dir, &st, &cfg, r.m.ops, o->n_prompts, o->prompts, 0, &r.ts);
    musae_st_close(&st);
    if (r.have_codec) encodec_load(&r.codec, o->model_dir, r.m.ops);

    make_dir(o->out_dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/clips", o->out_dir);
    make_dir(path);
    check_study(&r, o->out_dir);
    int64_t n_clips = 0, n_done = 0;
    clip *cl = make_clips(&r, &n_clips);
    snprintf(path, sizeof path, "%s/steer.jsonl", o->out_dir);
    cJSON **done = read_done(path, &n_done);
    /* the clips are generated in list order and written in it, so the complete lines are a prefix of the list */
    for (int64_t i = 0; i < n_done; i++) {
        const char *id = cJSON_GetObjectItemCaseSensitive(done[i], "id")->valuestring;
        if (i >= n_clips || strcmp(id, cl[i].id))
            musae_fail(
                "%s: line %lld is clip '%s'; this study's clip %lld is '%s' (another study in this folder? use a "
                "new -o)",
                path, (long long)i + 1, id, (long long)i + 1, i < n_clips ? cl[i].id : "none");
    }
    for (int64_t i = 0; i < n_done; i++) cJSON_Delete(done[i]);
    free(done);
    LOG_INFO("steer: %d features x %d alphas x %d prompts x %lld seeds: %lld clips (%lld done), layer %d, %lld frames",
             r.nf, o->n_alpha, o->n_prompts, (long long)o->seeds, (long long)n_clips, (long long)n_done, r.layer,
             (long long)r.F);
    FILE *jl = fopen(path, "ab");
    if (!jl) musae_fail("%s: cannot be written: %s", path, strerror(errno));
    int64_t batches = 0;
    int rc = 0;
    for (int64_t i = n_done; i < n_clips;) {
        if (o->max_batches && batches == o->max_batches) {
            LOG_INFO("steer: stopped after %lld batches (--max-batches); run the same command to continue",
                     (long long)batches);
            rc = 2;
            break;
        }
        /* one seed per batch: the batch's draws come from that seed's stream 0 */
        int64_t nb = 0;
        while (i + nb < n_clips && nb < o->batch && cl[i + nb].seed == cl[i].seed) nb++;
        run_batch(&r, cl + i, nb, jl);
        i += nb;
        batches++;
        LOG_INFO("steer: %lld of %lld clips", (long long)i, (long long)n_clips);
    }
    if (fclose(jl)) musae_fail("%s: write failed: %s", path, strerror(errno));
    if (rc == 0) steer_summarize(o, r.sha, r.layer);
    free(cl);
    if (r.have_codec) encodec_free(&r.codec);
    mg_text_states_free(&r.ts);
    if (r.have_clap) steer_clap_close(&r.clap);
    free(r.base_desc), free(r.base_desc_ok), free(r.base_emb), free(r.base_emb_ok);
    free(r.feat), free(r.beta), free(r.rand_dir), free(r.other);
    sae_model_free(&r.sae);
    mg_free(&r.m);
    return rc;
}
