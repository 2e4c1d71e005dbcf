/* Spliced SAE evaluation: clean / SAE-spliced / zero-ablated next-code cross-entropy. See spliced.h. */
#include "eval/spliced.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/capture.h"
#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/io/config.h"
#include "host/io/json.h"
#include "host/io/safetensors.h"
#include "host/io/store.h"
#include "kernels/sae_ops.h"
#include "model/delay.h"
#include "model/encodec.h"
#include "model/lm_files.h"
#include "model/text_cond.h"

void spliced_opts_defaults(spliced_opts *o) {
    memset(o, 0, sizeof *o);
    o->layer = -1;
    o->clip_seconds = 0; /* from the SAE's store, else 10 */
    o->ops = musae_ops_cpu();
    o->prec = MUSAE_PREC_FP32;
}

/* log Σ exp(l) over V logits, in double. */
static double lse(const float *l, int64_t V) {
    float mx = l[0];
    for (int64_t v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
    double s = 0;
    for (int64_t v = 0; v < V; v++) s += exp((double)l[v] - mx);
    return mx + log(s);
}

/* Sums over the scored predictions of one clip. */
typedef struct {
    double ce[3][SPLICED_MAX_K]; /* clean, sae, zero: Σ −log p(target) per codebook */
    double kl[2];                /* Σ KL(clean ‖ sae), Σ KL(clean ‖ zero) */
} clip_sums;

/* clean [K, T, V] and mod [2, K, T, V] logits (mg_logits_bktv; row 0 spliced, row 1 zero-ablated). The
 * per-prediction terms are computed in parallel and summed in a fixed order, so the result does not depend
 * on the thread count. */
static void score(const float *clean, const float *mod, const int64_t *codes, int64_t K, int64_t F, int64_t T,
                  int64_t V, clip_sums *s) {
    double *term = musae_xmalloc((size_t)(F * 5) * sizeof(double));
    for (int64_t k = 0; k < K; k++) {
#pragma omp parallel for schedule(static)
        for (int64_t t = 0; t < F; t++) {
            const int64_t j = t + k, y = codes[k * F + t];
            const float *lc = clean + (k * T + j) * V;
            const double zc = lse(lc, V);
            term[t * 5] = zc - lc[y];
            for (int b = 0; b < 2; b++) {
                const float *lm = mod + ((b * K + k) * T + j) * V;
                const double zm = lse(lm, V);
                double kl = 0;
                for (int64_t v = 0; v < V; v++) {
                    const double lpc = lc[v] - zc, lpm = lm[v] - zm;
                    kl += exp(lpc) * (lpc - lpm);
                }
                term[t * 5 + 1 + b] = zm - lm[y];
                term[t * 5 + 3 + b] = kl;
            }
        }
        for (int64_t t = 0; t < F; t++) {
            for (int i = 0; i < 3; i++) s->ce[i][k] += term[t * 5 + i];
            s->kl[0] += term[t * 5 + 3];
            s->kl[1] += term[t * 5 + 4];
        }
    }
    free(term);
}

/* Everything one clip's evaluation needs; buffers grow to the longest clip seen. */
typedef struct {
    const mg_model *m;
    const sae_model *sae;
    int layer;
    int64_t cap_T;
    int64_t *delayed;   /* [2, K, T] */
    float *x, *src;     /* [T + 1, H], [2, T + 1, H] */
    float *xhat, *xc, *pre;
    sae_codes sc;
    float *lclean, *lmod; /* [K, T, V], [2, K, T, V] */
    mg_state s1, s2;
    int64_t T_state;
    sae_eval_acc acc;
    clip_sums sums;
    int64_t clips, frames;
} evaluator;

static void ev_reserve(evaluator *e, int64_t T) {
    if (T <= e->cap_T) return;
    const int64_t K = e->m->K, V = e->m->V, H = e->m->H, k = e->sae->k;
    free(e->delayed), free(e->x), free(e->src), free(e->xhat), free(e->xc), free(e->pre);
    free(e->sc.ptr), free(e->sc.idx), free(e->sc.val), free(e->lclean), free(e->lmod);
    e->delayed = musae_xmalloc((size_t)(2 * K * T) * sizeof(int64_t));
    e->x = musae_xcalloc((size_t)((T + 1) * H), sizeof(float));
    e->src = musae_xcalloc((size_t)(2 * (T + 1) * H), sizeof(float));
    e->xhat = musae_xmalloc((size_t)(T * H) * sizeof(float));
    e->xc = musae_xmalloc((size_t)(T * H) * sizeof(float));
    e->pre = e->sae->batch_topk ? musae_xmalloc((size_t)(T * e->sae->M) * sizeof(float)) : NULL;
    e->sc = (sae_codes){0, T * k, musae_xcalloc((size_t)T + 1, sizeof(int64_t)),
                        musae_xmalloc(sizeof(int32_t) * (size_t)(T * k + 1)),
                        musae_xmalloc(sizeof(float) * (size_t)(T * k + 1))};
    e->lclean = musae_xmalloc((size_t)(K * T * V) * sizeof(float));
    e->lmod = musae_xmalloc((size_t)(2 * K * T * V) * sizeof(float));
    e->cap_T = T;
}

/* One clip: codes [K, F]; ts (may be NULL) its text states. */
static void ev_clip(evaluator *e, const int64_t *codes, int64_t F, const musae_text_states *ts) {
    const mg_model *m = e->m;
    const int64_t K = m->K, V = m->V, H = m->H, T = F + K;
    ev_reserve(e, T);
    mg_delay_codes(codes, 1, K, F, V, e->delayed);
    memcpy(e->delayed + K * T, e->delayed, (size_t)(K * T) * sizeof(int64_t));
    if (T != e->T_state) { /* full clips share one pair of states; a tail gets its own */
        if (e->T_state) mg_state_free(&e->s1, m), mg_state_free(&e->s2, m);
        mg_state_opts o1 = {.batch = 1, .n_cond = 1, .t_max = T, .t_call = T, .incremental = 0, .logits = 1};
        mg_state_opts o2 = {.batch = 2, .n_cond = 2, .t_max = T, .t_call = T, .incremental = 0, .logits = 1};
        mg_state_init(&e->s1, m, &o1);
        mg_state_init(&e->s2, m, &o2);
        e->T_state = T;
    }
    if (ts) {
        float *mask = musae_xmalloc((size_t)(2 * ts->len) * sizeof(float));
        float *states2 = musae_xmalloc((size_t)(2 * ts->len * H) * sizeof(float));
        for (int b = 0; b < 2; b++) {
            for (int64_t i = 0; i < ts->len; i++) mask[b * ts->len + i] = (float)ts->mask[i];
            memcpy(states2 + b * ts->len * H, ts->states, (size_t)(ts->len * H) * sizeof(float));
        }
        mg_state_set_text(&e->s1, m, states2, mask, ts->len);
        mg_state_set_text(&e->s2, m, states2, mask, ts->len);
        free(mask);
        free(states2);
    }
    /* clean, reading x at positions 1..F */
    mg_hook rd = {.kind = MG_HOOK_READ, .layer = e->layer, .branch = MG_BRANCH_COND, .pos_begin = 1,
                  .pos_end = F + 1, .dst = e->x, .dst_t = F + 1};
    mg_forward(m, &e->s1, e->delayed, T, &rd, 1, 1);
    mg_logits_bktv(m, &e->s1, T, e->lclean);
    /* x̂ = SAE(x), and the reconstruction metrics of these rows */
    sae_model_encode(e->sae, e->x + H, F, &e->sc, e->xc, e->pre);
    sae_cpu_decode(&e->sc, e->sae->p.W_dec, e->sae->p.b_dec, e->sae->d, e->xhat);
    sae_eval_batch(&e->acc, e->sae, e->x + H, F);
    memcpy(e->src + H, e->xhat, (size_t)(F * H) * sizeof(float));
    memset(e->src + (F + 1) * H, 0, (size_t)((F + 1) * H) * sizeof(float));
    /* spliced (row 0) and zero-ablated (row 1) in one forward */
    mg_hook set = {.kind = MG_HOOK_SET, .layer = e->layer, .branch = MG_BRANCH_COND, .pos_begin = 1,
                   .pos_end = F + 1, .src = e->src, .src_t = F + 1};
    mg_forward(m, &e->s2, e->delayed, T, &set, 1, 1);
    mg_logits_bktv(m, &e->s2, T, e->lmod);
    score(e->lclean, e->lmod, codes, K, F, T, V, &e->sums);
    e->clips++;
    e->frames += F;
}

static void ev_free(evaluator *e) {
    if (e->T_state) mg_state_free(&e->s1, e->m), mg_state_free(&e->s2, e->m);
    sae_eval_free(&e->acc);
    free(e->delayed), free(e->x), free(e->src), free(e->xhat), free(e->xc), free(e->pre);
    free(e->sc.ptr), free(e->sc.idx), free(e->sc.val), free(e->lclean), free(e->lmod);
}

/* A clip name and its caption (NULL: none), for the lookup of the store's held-out clips. */
typedef struct {
    char *name, *caption;
} held_clip;

static int held_cmp(const void *a, const void *b) {
    return strcmp(((const held_clip *)a)->name, ((const held_clip *)b)->name);
}

/* The held-out clips of the SAE's store (its musae.json split), sorted by name, and their files in store order;
 * counts into *n_held and *n_files. */
static held_clip *held_out_clips(musae_store *store, const sae_model *sae, int64_t *n_held, char ***files,
                                 int64_t *n_files) {
    const musae_store_info *in = musae_store_get_info(store);
    const double vf = sae->has_split ? sae->val_fraction : 0.05;
    const uint64_t seed = sae->has_split ? sae->split_seed : 0;
    held_clip *h = musae_xcalloc((size_t)in->n_clips + 1, sizeof *h);
    *files = musae_xcalloc((size_t)in->n_clips + 1, sizeof **files);
    *n_held = *n_files = 0;
    for (int64_t c = 0; c < in->n_clips; c++) {
        if (!musae_store_clip_held_out(seed, vf, in->n_clips, c)) continue;
        char *name = musae_store_clip_path(store, c), *cap = musae_store_clip_caption(store, c);
        h[(*n_held)++] = (held_clip){name, cap && cap[0] ? cap : NULL};
        if (cap && !cap[0]) free(cap);
        char *frag = strstr(name, "#t=");
        const size_t len = frag ? (size_t)(frag - name) : strlen(name);
        if (*n_files == 0 || strlen((*files)[*n_files - 1]) != len || strncmp((*files)[*n_files - 1], name, len)) {
            char *f = musae_xmalloc(len + 1);
            memcpy(f, name, len);
            f[len] = 0;
            (*files)[(*n_files)++] = f;
        }
    }
    qsort(h, (size_t)*n_held, sizeof *h, held_cmp);
    return h;
}

/* Clips from audio, cut as a capture cuts them: from --audio (every clip), or with neither --audio nor --codes
 * the held-out clips of the store the SAE was trained on (musae.json data.acts), with their stored captions.
 * The clip length is --clip-seconds, else the store's (/capture/params), else 10 s. */
static void eval_audio(const spliced_opts *o, spliced_result *r, const sae_model *sae, const musae_model_config *cfg,
                       musae_st *st, const mg_model *m, evaluator *ev, musae_progress *pg) {
    char err[1024];
    const int rate = cfg->audio.sampling_rate, hop = cfg->audio.hop_length;
    const int from_store = !o->audio;
    musae_store *store = NULL;
    capture_params cp = {0};
    if (sae->acts[0]) {
        store = musae_store_open(sae->acts, err, sizeof err);
        if (store && capture_store_params(store, &cp)) {
            if (from_store)
                musae_fail("%s (the store %s/musae.json names) was not written by musae capture: give --audio or "
                           "--codes", sae->acts, o->sae_dir);
            musae_store_close(store), store = NULL;
        }
        if (!store && from_store) musae_fail("%s/musae.json names the store %s: %s; give --audio or --codes", o->sae_dir, sae->acts, err);
        if (store && cp.rate != rate)
            musae_fail("%s was cut at %d Hz; %s/config.json's EnCodec runs at %d Hz", sae->acts, cp.rate, o->model_dir, rate);
    } else if (from_store) {
        musae_fail("%s/musae.json names no training store (a sparsify SAE?): give --audio or --codes", o->sae_dir);
    }
    if (from_store && (o->clip_seconds > 0 || o->min_seconds > 0 || o->captions))
        musae_fail("--clip-seconds, --min-seconds and --captions go with --audio: the held-out clips of %s are cut "
                   "and conditioned as they were captured", sae->acts);
    int64_t clip_frames, clip_samples, min_samples;
    int captions = o->captions;
    if (o->clip_seconds > 0) {
        clip_frames = llround(o->clip_seconds * cfg->audio.frame_rate);
        if (clip_frames < 1 || fabs((double)clip_frames - o->clip_seconds * cfg->audio.frame_rate) > 1e-6)
            musae_fail("--clip-seconds %g is not a whole number of frames (%d per second)", o->clip_seconds,
                       cfg->audio.frame_rate);
        clip_samples = clip_frames * hop;
    } else {
        clip_samples = store ? cp.clip_samples : 10 * (int64_t)rate;
        clip_frames = clip_samples / hop;
        LOG_INFO("clips of %g s (%s)", (double)clip_samples / rate,
                 store ? "as the SAE's training store was cut: /capture/params" : "the default: no training store");
    }
    if (clip_frames + m->K > m->max_pos)
        musae_fail("clips of %g s need more decoder positions than the model's %lld", (double)clip_samples / rate,
                   (long long)m->max_pos);
    if (o->min_seconds > 0) min_samples = (int64_t)ceil(o->min_seconds * rate - 1e-6);
    else if (o->clip_seconds <= 0 && store) min_samples = cp.min_samples;
    else min_samples = clip_samples;
    if (min_samples < 1) min_samples = 1;
    if (from_store) captions = cp.captions;

    /* the files: every file of --audio, or those holding the store's held-out clips */
    capture_dataset ds = {0};
    held_clip *held = NULL;
    char **files = NULL;
    int64_t n_held = 0, n_files = 0;
    if (from_store) {
        held = held_out_clips(store, sae, &n_held, &files, &n_files);
        LOG_INFO("evaluating on the %lld held-out clip(s) of %s (%s split)", (long long)n_held, sae->acts,
                 sae->has_split ? "the SAE's" : "the default");
        snprintf(r->acts, sizeof r->acts, "%s", sae->acts);
    } else {
        if (capture_dataset_load(o->audio, &ds, err, sizeof err)) musae_fail("--audio: %s", err);
        if (captions && !ds.from_list) musae_fail("--captions needs a list file (path<TAB>caption per line)");
        n_files = ds.n_files;
    }
    if (store) musae_store_close(store);
    if (captions && !cfg->has_text) musae_fail("captions: %s/config.json has no text_encoder", o->model_dir);
    encodec codec;
    encodec_load_st(&codec, &cfg->audio, st, "audio_encoder.", o->ops);
    musae_text_cond tc;
    if (captions && musae_text_cond_load(&tc, o->model_dir, st, cfg, o->ops, err, sizeof err)) musae_fail("%s", err);
    musae_st_close(st);
    if (codec.n_q != m->K)
        musae_fail("%s: EnCodec gives %d codebooks, the decoder takes %lld", o->model_dir, codec.n_q, (long long)m->K);
    const int64_t want = from_store ? (o->max_clips && o->max_clips < n_held ? o->max_clips : n_held) : o->max_clips;
    musae_progress_init(pg, "evaluate", "clips", want);
    musae_text_states ts = {0};
    const char *ts_caption = NULL; /* the caption ts holds */
    for (int64_t fi = 0; fi < n_files && (!o->max_clips || ev->clips < o->max_clips); fi++) {
        const char *path = from_store ? files[fi] : ds.files[fi].path;
        const char *file_caption = from_store ? NULL : ds.files[fi].caption;
        if (!from_store && captions && !file_caption) {
            LOG_WARN("%s: no caption on line %d; skipped", path, ds.files[fi].line);
            r->files_skipped++;
            continue;
        }
        capture_clips *cl = capture_clips_open(path, rate, clip_samples, min_samples, err, sizeof err);
        if (!cl) {
            LOG_WARN("skipped: %s", err);
            r->files_skipped++;
            continue;
        }
        const float *audio;
        int64_t start, n = 0;
        while ((!o->max_clips || ev->clips < o->max_clips) &&
               (n = capture_clips_next(cl, &audio, &start, err, sizeof err)) > 0) {
            const char *caption = file_caption;
            if (from_store) {
                char name[4200];
                capture_clip_name(path, start, n, rate, name, sizeof name);
                const held_clip key = {name, NULL}, *h = bsearch(&key, held, (size_t)n_held, sizeof *held, held_cmp);
                if (!h) continue; /* a training clip */
                caption = h->caption;
            }
            if (captions && caption && (!ts_caption || strcmp(ts_caption, caption))) {
                musae_text_states_free(&ts);
                ts_caption = NULL;
                if (musae_text_cond_prompts(&tc, 1, &caption, 0, &ts, err, sizeof err)) {
                    LOG_WARN("%s: caption '%s': %s; skipped", path, caption, err);
                    continue;
                }
                ts_caption = caption;
            }
            int64_t F;
            int64_t *codes = encodec_encode(&codec, audio, n, &F);
            ev_clip(ev, codes, F, captions && caption ? &ts : NULL);
            free(codes);
            musae_progress_add(pg, 1, NULL);
        }
        if (n < 0) {
            LOG_WARN("%s: read error after %.2f s (its earlier clips are counted): %s", path,
                     (double)capture_clips_pos(cl) / rate, err);
            r->files_skipped++;
        }
        capture_clips_close(cl);
    }
    musae_text_states_free(&ts);
    if (captions) musae_text_cond_free(&tc);
    encodec_free(&codec);
    if (from_store) {
        const int64_t missing = (o->max_clips && o->max_clips < n_held ? o->max_clips : n_held) - ev->clips;
        if (missing > 0)
            LOG_WARN("%lld held-out clip(s) of %s were not found in their files (moved or changed since the capture?)",
                     (long long)missing, sae->acts);
        for (int64_t i = 0; i < n_held; i++) free(held[i].name), free(held[i].caption);
        for (int64_t i = 0; i < n_files; i++) free(files[i]);
        free(held), free(files);
        if (ev->clips == 0)
            musae_fail("none of the held-out clips of %s could be read from their files: give --audio or --codes",
                       sae->acts);
    } else {
        capture_dataset_free(&ds);
        if (ev->clips == 0)
            musae_fail("--audio %s: no clip of at least %g s to evaluate on", o->audio, (double)min_samples / rate);
    }
}

void spliced_evaluate(const spliced_opts *o, spliced_result *r) {
    memset(r, 0, sizeof *r);
    char err[1024];
    if (o->audio && o->codes) musae_fail("evaluate --model: give --audio or --codes, not both");
    sae_model sae;
    if (sae_load(o->sae_dir, &sae, err, sizeof err)) musae_fail("%s", err);
    const int layer = o->layer >= 0 ? o->layer : sae.layer;
    if (layer < 0)
        musae_fail("%s does not say which layer it was trained on (no musae.json): give --layer", o->sae_dir);
    if (o->layer >= 0 && sae.layer >= 0 && sae.layer != o->layer && !o->force)
        musae_fail("%s was trained on layer %d, not %d (--force to evaluate anyway)", o->sae_dir, sae.layer, o->layer);
    capture_model_id(o->model_dir, r->model_id, sizeof r->model_id);
    if (sae.model[0] && !musae_store_same_model(sae.model, r->model_id) && !o->force)
        musae_fail("%s was trained on activations of '%s'; --model %s is '%s' (--force to evaluate anyway)",
                   o->sae_dir, sae.model, o->model_dir, r->model_id);
    if (sae.batch_topk) LOG_INFO("%s selects with batch-top-k: each clip's rows form one batch here", o->sae_dir);

    musae_model_config cfg;
    if (musae_config_load(&cfg, o->model_dir, err, sizeof err)) musae_fail("%s", err);
    if (o->audio && !cfg.has_audio)
        musae_fail("%s/config.json has no audio_encoder: --audio needs a full MusicGen folder", o->model_dir);
    if (o->audio && encodec_config_supported(&cfg.audio, err, sizeof err)) musae_fail("%s/config.json: %s", o->model_dir, err);
    if (layer >= cfg.decoder.num_hidden_layers)
        musae_fail("layer %d does not exist (%s has layers 0..%d)", layer, o->model_dir, cfg.decoder.num_hidden_layers - 1);
    if (sae.d != cfg.decoder.hidden_size)
        musae_fail("%s has d_in %d; the decoder of %s has hidden size %d", o->sae_dir, sae.d, o->model_dir,
                   cfg.decoder.hidden_size);
    if (cfg.decoder.num_codebooks > SPLICED_MAX_K) musae_fail("%d codebooks (at most %d)", cfg.decoder.num_codebooks, SPLICED_MAX_K);
    if (o->captions && o->codes) musae_fail("--captions goes with --audio LIST (the captions are its second column)");

    musae_st st;
    if (musae_st_open(&st, o->model_dir, err, sizeof err)) musae_fail("%s", err);
    mg_model m;
    mg_load_from(&m, &st, &cfg, o->ops, o->prec);
    evaluator ev = {.m = &m, .sae = &sae, .layer = layer};
    sae_eval_init(&ev.acc, sae.d, sae.M);
    musae_progress pg;

    if (o->codes) { /* items of a codes file are the clips */
        musae_st_close(&st);
        int64_t B, F;
        int64_t *codes = mg_read_codes(o->codes, m.K, m.V, &B, &F);
        if (F + m.K > m.max_pos)
            musae_fail("%s: %lld frames need %lld decoder positions; the model has %lld", o->codes, (long long)F,
                       (long long)(F + m.K), (long long)m.max_pos);
        const int64_t n = o->max_clips && o->max_clips < B ? o->max_clips : B;
        musae_progress_init(&pg, "evaluate", "clips", n);
        for (int64_t b = 0; b < n; b++) {
            ev_clip(&ev, codes + b * m.K * F, F, NULL);
            musae_progress_add(&pg, 1, NULL);
        }
        free(codes);
    } else {
        eval_audio(o, r, &sae, &cfg, &st, &m, &ev, &pg);
    }
    if (ev.clips) musae_progress_finish(&pg, NULL);
    if (ev.clips == 0) musae_fail("nothing to evaluate on");

    const int64_t K = m.K;
    r->layer = layer;
    r->K = (int)K;
    r->clips = ev.clips;
    r->frames = ev.frames;
    r->predictions = K * r->frames;
    double tot[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < K; k++) {
            tot[i] += ev.sums.ce[i][k];
            r->ce_k[i][k] = ev.sums.ce[i][k] / (double)r->frames;
        }
    r->ce_clean = tot[0] / (double)r->predictions;
    r->ce_sae = tot[1] / (double)r->predictions;
    r->ce_zero = tot[2] / (double)r->predictions;
    r->ce_increase = r->ce_sae - r->ce_clean;
    const double den = r->ce_zero - r->ce_clean;
    r->loss_recovered = den > 0 ? (r->ce_zero - r->ce_sae) / den : NAN; /* undefined when zeroing does not hurt */
    r->kl_sae = ev.sums.kl[0] / (double)r->predictions;
    r->kl_zero = ev.sums.kl[1] / (double)r->predictions;
    r->kl_score = r->kl_zero > 0 ? (r->kl_zero - r->kl_sae) / r->kl_zero : NAN;
    r->rec = sae_eval_finish(&ev.acc);
    if (!(den > 0))
        LOG_WARN("zero-ablating layer %d does not raise the loss (CE %.6g, clean %.6g): loss recovered is not "
                 "defined here (reported as null; a random or untrained model?)", layer, r->ce_zero, r->ce_clean);
    ev_free(&ev);
    mg_free(&m);
    sae_model_free(&sae);
}

void spliced_summary(char *buf, size_t n, const spliced_result *r) {
    char lr[96], fvu[64];
    if (isfinite(r->loss_recovered)) snprintf(lr, sizeof lr, "%.4f", r->loss_recovered);
    else snprintf(lr, sizeof lr, "undefined (zero-ablation does not raise the CE)");
    if (isfinite(r->rec.fvu)) snprintf(fvu, sizeof fvu, "%.4f", r->rec.fvu);
    else snprintf(fvu, sizeof fvu, "undefined (the spliced rows do not vary)");
    snprintf(buf, n,
             "layer %d, %lld clips, %lld frames: CE clean %.5f, spliced %.5f (%+.5f), zero-ablated %.5f nats; loss "
             "recovered: %s; FVU %s, L0 %.1f",
             r->layer, (long long)r->clips, (long long)r->frames, r->ce_clean, r->ce_sae, r->ce_increase, r->ce_zero, lr,
             fvu, r->rec.l0);
}

/* One JSON line; undefined numbers (loss recovered when zeroing does not hurt) print as null. */
void spliced_print_json(FILE *f, const spliced_opts *o, const spliced_result *r) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "sae", o->sae_dir);
    cJSON_AddStringToObject(j, "model", r->model_id);
    cJSON_AddStringToObject(j, o->audio ? "audio" : o->codes ? "codes" : "acts",
                            o->audio ? o->audio : o->codes ? o->codes : r->acts);
    if (r->acts[0]) cJSON_AddStringToObject(j, "split", "val"); /* the held-out clips of the SAE's store */
    cJSON_AddNumberToObject(j, "layer", r->layer);
    cJSON_AddNumberToObject(j, "clips", (double)r->clips);
    cJSON_AddNumberToObject(j, "frames", (double)r->frames);
    cJSON_AddNumberToObject(j, "predictions", (double)r->predictions);
    const struct {
        const char *key;
        double v;
    } nums[] = {{"ce_clean", r->ce_clean},     {"ce_sae", r->ce_sae},   {"ce_zero", r->ce_zero},
                {"ce_increase", r->ce_increase}, {"loss_recovered", r->loss_recovered},
                {"kl_sae", r->kl_sae},         {"kl_zero", r->kl_zero}, {"kl_score", r->kl_score},
                {"fvu", r->rec.fvu},           {"mse", r->rec.mse},     {"l0", r->rec.l0},
                {"cos", r->rec.cos},           {"dead_frac", r->rec.dead_frac}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) cJSON_AddNumberToObject(j, nums[i].key, nums[i].v);
    static const char *const names[3] = {"clean", "sae", "zero"};
    cJSON *by = cJSON_AddObjectToObject(j, "ce_by_codebook");
    for (int i = 0; i < 3; i++) {
        cJSON *a = cJSON_AddArrayToObject(by, names[i]);
        for (int k = 0; k < r->K; k++) cJSON_AddItemToArray(a, cJSON_CreateNumber(r->ce_k[i][k]));
    }
    musae_json_print_line(f, j);
}
