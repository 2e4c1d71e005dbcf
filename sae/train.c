/* `musae train` as a library call: the grid, the stream, metrics, evaluation, checkpoints (sae/train.h); the
 * exact-resume state it saves and resumes from is sae/train_state.c's. */
#include "sae/train.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "host/io/json.h"
#include "sae/sae_dist.h"
#include "sae/sae_gpu.h"
#include "sae/train_state.h"
#ifdef MUSAE_NCCL
#include "host/dist/nccl.h"
#endif

void sae_train_opts_defaults(sae_train_opts *o) {
    memset(o, 0, sizeof *o);
    sae_config_defaults(&o->recipe, 0, 0, 0);
    o->recipe.k_aux = -1;
    o->recipe.warmup_steps = -1; /* sae_default_warmup */
    o->recipe.benc_lr_mult = SAE_DEFAULT_BENC_LR_MULT;
    o->tokens = 0;               /* SAE_DEFAULT_EPOCHS passes */
    o->batch = 4096;
    o->val_fraction = 0.05;
    o->shuffle_rows = 131072;
    o->init_rows = 32768;
    o->save_every = 1000;
    o->log_every = 50;
    o->eval_tokens = 1 << 20;
    o->device = MUSAE_DEVICE_CPU;
    o->precision = MUSAE_F32;
}

const char *sae_train_gpu_unsupported(const sae_train_opts *o) {
    if (!o->dist || o->dist->world == 1) return NULL; /* --dist is ignored by one process */
    if (o->dist_mode == SAE_DIST_LATENT)
        return "latent-sharded training (--dist latent) is not built on the GPU: use --dist data on GPUs, "
               "or --dist latent --device cpu";
    if (o->recipe.batch_topk)
        return "data-parallel GPU training takes per-row top-k only (--batch-topk needs the global selection "
               "exchange, built on the CPU): drop --batch-topk, train on one GPU, or use --device cpu";
    for (int i = 0; i < o->n_k; i++)
        if (o->batch * o->ks[i] >= (1 << 24))
            return "data-parallel GPU training counts a batch's batch·k selections in fp32, exact below 2^24: "
                   "lower --batch or --k, train on one GPU, or use --device cpu";
#if defined(MUSAE_CUDA) && !defined(MUSAE_NCCL)
    return "data-parallel GPU training needs NCCL, and this musae was built without it (MUSAE_NCCL): "
           "use one GPU, or --device cpu";
#else
    return NULL;
#endif
}

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) { g_stop = sig; }

/* The checks a run can make before it reads a row: a failure past this point would leave the stream's reader
 * thread inside HDF5 while the process exits. */
static void check_upfront(const sae_train_opts *o) {
    struct stat sb;
    if (stat(o->out, &sb) == 0 && !S_ISDIR(sb.st_mode))
        musae_fail("-o %s: exists and is not a folder (the output is a folder: sae.safetensors, cfg.json, "
                   "metrics.jsonl, ...)", o->out);
    /* the loss is normalized by the batch's variance about its mean (FVU), which a single row does not have */
    if (o->batch < 2)
        musae_fail("--batch %lld: a step needs at least 2 rows (the loss divides by the batch's variance about its "
                   "mean, which one row lacks)", (long long)o->batch);
    if (o->tokens > 0 && o->tokens % o->batch == 1) /* a length from --epochs is rounded in sae_train_plan_resolve */
        musae_fail("--tokens %lld with --batch %lld leaves a last step of 1 row, which has no variance to normalize "
                   "the loss by: use --tokens %lld or %lld", (long long)o->tokens, (long long)o->batch,
                   (long long)(o->tokens - 1), (long long)(o->tokens + 1));
}

/* The grid of the run in progress. A refusal further in (a resume whose settings differ) exits through
 * musae_fail with the grid live; held here, it stays reachable, so a leak checker (LSan in the ASan tests) reads
 * that exit as the deliberate one it is rather than as a leak. */
static grid_sae *volatile g_run_grid;

static void eval_many(sae_model *models, sae_eval_acc *acc, const int *li, int n_models, musae_store *s,
                      const int *layers, int n_layers, musae_split split, double val_fraction, uint64_t split_seed,
                      int64_t max_tokens, int64_t batch, int skip_nonfinite) {
    const int d = musae_store_get_info(s)->d_model;
    musae_stream_opts so = {0};
    so.split = split;
    so.val_fraction = val_fraction;
    so.split_seed = split_seed;
    so.shuffle = 0;
    so.window_rows = batch * 4;
    so.loop = 0;
    so.n_layers = n_layers;
    memcpy(so.layers, layers, sizeof(int) * (size_t)n_layers);
    so.skip_nonfinite = skip_nonfinite;
    musae_stream *st = musae_stream_open(s, &so);
    float *buf[MUSAE_STORE_MAX_LAYERS];
    for (int l = 0; l < n_layers; l++) buf[l] = musae_xmalloc(sizeof(float) * (size_t)(batch * d));
    for (int i = 0; i < n_models; i++) sae_eval_init(&acc[i], d, models[i].M);
    int64_t done = 0;
    musae_progress pr;
    int64_t total = musae_stream_split_rows(st);
    if (max_tokens > 0 && max_tokens < total) total = max_tokens;
    musae_progress_init(&pr, "evaluate", "tok", total);
    while (max_tokens <= 0 || done < max_tokens) {
        int64_t want = batch;
        if (max_tokens > 0 && max_tokens - done < want) want = max_tokens - done;
        int64_t got = musae_stream_next(st, want, buf);
        if (got == 0) break;
        for (int i = 0; i < n_models; i++) sae_eval_batch(&acc[i], &models[i], buf[li[i]], got);
        done += got;
        musae_progress_add(&pr, got, NULL);
        if (got < want) break;
    }
    musae_progress_finish(&pr, NULL);
    musae_stream_close(st);
    for (int l = 0; l < n_layers; l++) free(buf[l]);
}

static void fill_recovered(sae_eval_result *r, const sae_model *m, musae_store *s) {
    int rank = 0;
    int64_t shape[4];
    float *truth = musae_store_get_f32(s, "/truth/directions", &rank, shape);
    if (!truth) return;
    if (rank == 2 && shape[1] == m->d) r->recovered = sae_recovered_fraction(m, truth, shape[0], 0.9);
    else LOG_WARN("/truth/directions is not [G, %d]; concept recovery not reported", m->d);
    free(truth);
}

sae_eval_result sae_evaluate_store(const sae_model *m, musae_store *s, int layer, musae_split split,
                                   double val_fraction, uint64_t split_seed, int64_t max_tokens, int64_t batch,
                                   int skip_nonfinite) {
    sae_eval_acc acc;
    int li = 0;
    eval_many((sae_model *)m, &acc, &li, 1, s, &layer, 1, split, val_fraction, split_seed, max_tokens, batch,
              skip_nonfinite);
    sae_eval_result r = sae_eval_finish(&acc);
    sae_eval_free(&acc);
    fill_recovered(&r, m, s);
    return r;
}

static void log_metrics(FILE *f, const grid_sae *g, int64_t step, int64_t tokens, float lr, double tok_s) {
    const double n = (double)g->acc_n;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "sae", g->name);
    cJSON_AddNumberToObject(j, "layer", g->layer);
    cJSON_AddNumberToObject(j, "k", g->k);
    cJSON_AddNumberToObject(j, "expansion", g->exp);
    cJSON_AddNumberToObject(j, "step", (double)step);
    cJSON_AddNumberToObject(j, "tokens", (double)tokens);
    /* %.6g-rounded, as the lines always were: a resumed run's lines equal an uninterrupted run's */
    const struct {
        const char *key;
        double v;
    } nums[] = {{"loss", g->acc.loss / n}, {"fvu", g->acc.fvu / n},       {"auxk", g->acc.auxk / n},
                {"l0", g->acc.l0 / n},     {"dead_frac", g->acc.dead_frac / n}, {"lr", lr}};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char b[32];
        snprintf(b, sizeof b, "%.6g", nums[i].v);
        cJSON_AddNumberToObject(j, nums[i].key, strtod(b, NULL));
    }
    cJSON_AddNumberToObject(j, "tokens_per_s", round(tok_s * 10) / 10);
    musae_json_print_line(f, j);
}

/* The run loop's bookkeeping, shared by the CPU and GPU loops: metric sums, progress, metric lines, states. */
typedef struct {
    const sae_train_opts *o;
    const musae_store_info *in;
    grid_sae *g;
    int n;
    int64_t total_steps;
    FILE *mf;                  /* metrics.jsonl on rank 0, else NULL */
    musae_progress pr;
    double t_log;              /* time and tokens at the last metric line */
    int64_t tok_log;
    int64_t last_saved;        /* step of the newest state on disk, -1 for none */
    char extra[128];           /* the progress line's numbers */
} run_log;

static int save_point(const run_log *r, int64_t step) {
    return r->o->save_every > 0 && step % r->o->save_every == 0 && step < r->total_steps;
}

/* After step `step` (the trainers' counter, tokens after it): s[i] is SAE i's statistics. Returns the signal
 * that asks to stop (all ranks agree: a signal may reach one rank only, or at different steps), else 0. */
static int64_t end_of_step(run_log *r, int64_t step, int64_t tokens, int64_t rows, const sae_step_stats *s) {
    const sae_train_opts *o = r->o;
    for (int i = 0; i < r->n; i++) {
        grid_sae *gs = &r->g[i];
        if (!isfinite(s[i].loss))
            musae_fail("%s: the loss became %g at step %" PRId64 " (lr too high?)", gs->name, s[i].loss, step);
        gs->acc.loss += s[i].loss;
        gs->acc.fvu += s[i].fvu;
        gs->acc.auxk += s[i].auxk;
        gs->acc.l0 += s[i].l0;
        gs->acc.dead_frac += s[i].dead_frac;
        gs->acc_n++;
    }
    const grid_sae *g0 = &r->g[0];
    snprintf(r->extra, sizeof r->extra, "fvu %.4f L0 %.1f dead %.3f", g0->acc.fvu / g0->acc_n, g0->acc.l0 / g0->acc_n,
             g0->acc.dead_frac / g0->acc_n);
    musae_progress_add(&r->pr, rows, r->extra);
    if (step % o->log_every == 0 || step == r->total_steps) {
        const double now = musae_now(), tok_s = (double)(tokens - r->tok_log) / fmax(now - r->t_log, 1e-9);
        for (int i = 0; i < r->n; i++) {
            if (r->mf) log_metrics(r->mf, &r->g[i], step, tokens, sae_lr_at(&r->g[i].t.cfg, step - 1), tok_s);
            memset(&r->g[i].acc, 0, sizeof r->g[i].acc);
            r->g[i].acc_n = 0;
        }
        if (r->mf) fflush(r->mf);
        r->t_log = now;
        r->tok_log = tokens;
    }
    int64_t stop = g_stop;
    if (o->dist) musae_dist_allreduce_i64(o->dist, &stop, 1, MUSAE_DIST_MAX);
    return stop;
}

/* Saves the state of step `step` (the CPU trainers hold it) at stream position pos; after a stop signal,
 * returns 130 for the run to end. Collective. */
static int save_and_maybe_stop(run_log *r, int64_t step, musae_stream_pos pos, int64_t stop) {
    sae_train_state_save(r->g, r->n, r->o->out, pos, r->o, r->in, r->last_saved);
    r->last_saved = step;
    if (!stop) return 0;
    musae_progress_finish(&r->pr, r->extra);
    LOG_WARN("interrupted by signal %d at step %" PRId64 "; the state is saved: continue with --resume", (int)stop,
             step);
    return 130;
}

/* The CPU trainers step on batches read here. */
static int train_cpu(run_log *r, musae_stream *st, float **buf, musae_stream_pos *end_pos) {
    const sae_train_opts *o = r->o;
    grid_sae *g = r->g;
    sae_step_stats *s = musae_xcalloc((size_t)r->n, sizeof *s);
    int rc = 0;
    while (rc == 0 && g[0].t.step < r->total_steps) {
        int64_t want = o->tokens - g[0].t.tokens < o->batch ? o->tokens - g[0].t.tokens : o->batch;
        int64_t got = musae_stream_next(st, want, buf);
        MUSAE_ASSERT(got == want, "endless stream returned %lld of %lld rows", (long long)got, (long long)want);
        for (int i = 0; i < r->n; i++) sae_trainer_step(&g[i].t, buf[g[i].li], got, &s[i]);
        const int64_t step = g[0].t.step, stop = end_of_step(r, step, g[0].t.tokens, got, s);
        if (stop || save_point(r, step)) rc = save_and_maybe_stop(r, step, musae_stream_tell(st), stop);
    }
    free(s);
    *end_pos = musae_stream_tell(st);
    return rc;
}

#ifdef MUSAE_CUDA
/* The GPU trainers step on batches the feed streams to the device (docs/CUDA_SAE.md): one compute stream for
 * every SAE, statistics read one step behind so the GPU never waits for the host. A step whose state is saved
 * (or the last, or the one after a stop signal) is finished before the next is enqueued, so the CPU trainers
 * receive exactly that step's weights, and the stream position saved is the feed's for its batch (the reader
 * runs ahead of training). */
static int train_gpu(run_log *r, musae_stream *st, musae_stream_pos start, musae_stream_pos *end_pos) {
    const sae_train_opts *o = r->o;
    grid_sae *g = r->g;
    const int n = r->n;
    const int world = o->dist ? o->dist->world : 1;
    musae_nccl *nccl = NULL;
#ifdef MUSAE_NCCL
    if (world > 1) nccl = musae_nccl_init(o->dist); /* selects this rank's GPU before anything is allocated */
#endif
    sae_gpu_trainer **gpu = musae_xcalloc((size_t)n, sizeof *gpu);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        gpu[i] = sae_gpu_trainer_init(&g[i].t.cfg, o->batch, o->precision, i ? sae_gpu_trainer_stream(gpu[0]) : NULL);
        if (nccl) sae_gpu_trainer_set_data_parallel(gpu[i], nccl, o->dist->rank, world);
        sae_gpu_trainer_load_from_cpu(gpu[i], &g[i].t);
        bytes += sae_gpu_trainer_device_bytes(gpu[i]);
    }
    LOG_INFO("GPU trainer: %d SAE(s) in %s, %.2f GiB of device memory%s", n, musae_dtype_name(o->precision),
             (double)bytes / (1 << 30), nccl ? ", gradients all-reduced over NCCL" : "");
    sae_gpu_feed *feed = sae_gpu_feed_open(st, o->n_layers, g[0].t.cfg.d, o->batch, o->tokens - g[0].t.tokens,
                                           sae_gpu_trainer_stream(gpu[0]));
    sae_step_stats *s = musae_xcalloc((size_t)n, sizeof *s);
    /* steps finished and enqueued (1-based counters), tokens of each; rows[j % 2]: rows of 0-based step j */
    int64_t done = g[0].t.step, enq = done, tokens = g[0].t.tokens, tok_enq = tokens, rows[2] = {0, 0}, stop = 0;
    musae_stream_pos pos = start; /* after the newest batch enqueued */
    int rc = 0;
    while (rc == 0 && done < r->total_steps) {
        /* step enq (1-based) is in flight when enq > done: hold the next one while it must be finished alone */
        const int hold = enq > done && (enq == r->total_steps || stop || save_point(r, enq));
        if (!hold) {
            const float *dev[MUSAE_STORE_MAX_LAYERS];
            const int64_t want = o->tokens - tok_enq < o->batch ? o->tokens - tok_enq : o->batch;
            const int64_t got = sae_gpu_feed_next(feed, dev, &pos);
            MUSAE_ASSERT(got == want, "the feed gave %lld of %lld rows at step %lld", (long long)got, (long long)want,
                         (long long)enq);
            for (int i = 0; i < n; i++) sae_gpu_trainer_step(gpu[i], dev[g[i].li], got);
            rows[enq % 2] = got;
            tok_enq += got;
            enq++;
            if (enq == done + 1) continue; /* nothing finished yet to read */
        }
        for (int i = 0; i < n; i++) {
            const int ok = sae_gpu_trainer_stats(gpu[i], done, &s[i]) == 0;
            MUSAE_ASSERT(ok, "the statistics of step %lld are gone", (long long)done);
        }
        tokens += rows[done % 2];
        done++;
        const int64_t sig = end_of_step(r, done, tokens, rows[(done - 1) % 2], s);
        if (sig) stop = sig;
        if (enq == done && (stop || save_point(r, done))) {
            for (int i = 0; i < n; i++) sae_gpu_trainer_store_to_cpu(gpu[i], &g[i].t);
            rc = save_and_maybe_stop(r, done, pos, stop);
        }
    }
    const sae_gpu_feed_stats fs = sae_gpu_feed_get_stats(feed);
    LOG_INFO("GPU feed: %" PRId64 " batches; the GPU waited %.2f s for data, the reader read for %.2f s", fs.batches,
             fs.gpu_wait_s, fs.read_s);
    sae_gpu_feed_close(feed); /* before the trainer that owns the compute stream */
    for (int i = 0; i < n; i++) sae_gpu_trainer_store_to_cpu(gpu[i], &g[i].t);
    for (int i = n - 1; i >= 0; i--) sae_gpu_trainer_free(gpu[i]);
    free(gpu);
    free(s);
#ifdef MUSAE_NCCL
    musae_nccl_free(nccl);
#endif
    *end_pos = pos;
    return rc;
}
#else
static int train_gpu(run_log *r, musae_stream *st, musae_stream_pos start, musae_stream_pos *end_pos) {
    (void)r, (void)st, (void)start, (void)end_pos;
    musae_fail("--device cuda: musae was built without CUDA (configure with -DMUSAE_CUDA=ON)");
}
#endif

int sae_train_run(const sae_train_opts *given) {
    char err[600], path[4400];
    sae_train_opts resolved = *given; /* the run length and warmup get filled in from the store */
    const sae_train_opts *o = &resolved;
    check_upfront(o);
    musae_store *store = musae_store_open(o->acts, err, sizeof err);
    if (!store) musae_fail("%s", err);
    const musae_store_info *in = musae_store_get_info(store);
    sae_train_state_bind_store(store);
    const int d = in->d_model;
    if (o->batch <= 0 || o->tokens < 0) musae_fail("--batch and --tokens must be positive");
    for (int l = 0; l < o->n_layers; l++)
        if (musae_store_layer_index(store, o->layers[l]) < 0)
            musae_fail("%s: no layer %d in the store (see musae info %s)", o->acts, o->layers[l], o->acts);
    if (!in->complete) LOG_WARN("%s: the store is not marked complete (a capture still running or killed?)", o->acts);

    /* the training stream: its first rows initialize (a fresh run), its split size sets the default length */
    musae_stream_opts so = {0};
    so.split = MUSAE_SPLIT_TRAIN;
    so.val_fraction = o->val_fraction;
    so.split_seed = o->split_seed;
    so.seed = o->data_seed;
    so.shuffle = 1;
    so.window_rows = o->shuffle_rows;
    so.loop = 1;
    so.n_layers = o->n_layers;
    memcpy(so.layers, o->layers, sizeof(int) * (size_t)o->n_layers);
    so.skip_nonfinite = o->skip_nonfinite;
    musae_stream *init_st = musae_stream_open(store, &so);
    sae_train_plan plan;
    sae_train_plan_resolve(&resolved, musae_stream_split_rows(init_st), &plan);

    /* the grid */
    const int n = o->n_layers * o->n_exp * o->n_k;
    MUSAE_ASSERT(n >= 1 && n <= 4096, "grid of %d", n);
    const int world = o->dist ? o->dist->world : 1, root = !o->dist || o->dist->rank == 0;
    const sae_dist_mode mode = world == 1 ? SAE_DIST_NONE : o->dist_mode ? (sae_dist_mode)o->dist_mode : SAE_DIST_DATA;
    if (world == 1 && o->dist_mode) LOG_INFO("--dist is ignored: one process (launch with mpirun or srun)");
    if (mode == SAE_DIST_DATA && o->batch < world)
        musae_fail("--batch %lld is smaller than the %d ranks of a data-parallel run", (long long)o->batch, world);
    if (o->device == MUSAE_DEVICE_CUDA && sae_train_gpu_unsupported(o))
        musae_fail("--device cuda: %s", sae_train_gpu_unsupported(o));
    MUSAE_ASSERT(o->precision == MUSAE_F32 || (o->device == MUSAE_DEVICE_CUDA && o->precision == MUSAE_BF16),
                 "a %s trainer in %s (the CPU's is f32 only, the GPU's f32 or bf16)",
                 o->device == MUSAE_DEVICE_CUDA ? "GPU" : "CPU", musae_dtype_name(o->precision));
    if (mode != SAE_DIST_NONE)
        LOG_INFO("%s over %d ranks (%s): global batch %lld", mode == SAE_DIST_DATA ? "data-parallel" : "latent-sharded",
                 world, o->dist->launcher, (long long)o->batch);
    grid_sae *g = musae_xcalloc((size_t)n, sizeof *g);
    g_run_grid = g;
    const int64_t total_steps = plan.total_steps;
    int gi = 0;
    for (int l = 0; l < o->n_layers; l++)
        for (int e = 0; e < o->n_exp; e++)
            for (int k = 0; k < o->n_k; k++, gi++) {
                grid_sae *s = &g[gi];
                s->layer = o->layers[l];
                s->li = l;
                s->k = o->ks[k];
                s->exp = o->exps[e];
                snprintf(s->name, sizeof s->name, "layer%d_k%d_x%d", s->layer, s->k, s->exp);
                if (n == 1) snprintf(s->dir, sizeof s->dir, "%s", o->out);
                else snprintf(s->dir, sizeof s->dir, "%s/%s", o->out, s->name);
                sae_config c = o->recipe;
                c.d = d;
                c.M = d * s->exp;
                c.k = s->k;
                if (c.k > c.M) musae_fail("--k %d exceeds the %d latents of expansion %d", c.k, c.M, s->exp);
                c.k_aux = o->recipe.k_aux < 0 ? d / 2 : o->recipe.k_aux;
                if (c.k_aux > c.M) c.k_aux = c.M;
                c.total_steps = total_steps;
                if (mode == SAE_DIST_LATENT && c.M < world)
                    musae_fail("%s: %d latents cannot be sharded over %d ranks", s->name, c.M, world);
                sae_dist_trainer_init(&s->t, &c, o->batch, o->dist, mode);
            }
    if (root) sae_train_mkdirs(o->out);

    const musae_stream_pos start = sae_train_state_resume(g, n, o, in, root);

    float *buf[MUSAE_STORE_MAX_LAYERS];
    const int64_t brows = o->batch > o->init_rows ? o->batch : o->init_rows;
    for (int l = 0; l < o->n_layers; l++) buf[l] = musae_xmalloc(sizeof(float) * (size_t)(brows * d));

    if (!o->resume) { /* init from the first rows of the stream: the scale, b_dec */
        int64_t rows = o->init_rows;
        if (rows > musae_stream_split_rows(init_st)) rows = musae_stream_split_rows(init_st);
        rows = musae_stream_next(init_st, rows, buf);
        for (int i = 0; i < n; i++) sae_trainer_init_weights(&g[i].t, buf[g[i].li], rows);
        LOG_INFO("initialized %d SAE(s) from %" PRId64 " rows: input scale %.4g (layer %d)", n, rows, g[0].t.scale,
                 g[0].layer);
    }
    musae_stream_close(init_st);

    /* opened before the stream: a failure here must not exit under the stream's reader thread */
    snprintf(path, sizeof path, "%s/metrics.jsonl", o->out);
    FILE *mf = root ? fopen(path, o->resume ? "a" : "w") : NULL;
    if (root && !mf) musae_fail("%s: cannot write: %s", path, strerror(errno));
    so.start = start;
    musae_stream *st = musae_stream_open(store, &so);

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_stop = 0;

    run_log rl = {.o = o, .in = in, .g = g, .n = n, .total_steps = total_steps, .mf = mf, .t_log = musae_now(),
                  .tok_log = g[0].t.tokens, .last_saved = o->resume ? g[0].t.step : -1};
    musae_progress_init(&rl.pr, "train", "tok", o->tokens);
    rl.pr.done = g[0].t.tokens;
    musae_stream_pos end_pos = start;
    const int rc =
        o->device == MUSAE_DEVICE_CUDA ? train_gpu(&rl, st, start, &end_pos) : train_cpu(&rl, st, buf, &end_pos);
    const int64_t last_saved = rl.last_saved;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    musae_stream_close(st);
    if (end_pos.skipped > 0)
        LOG_WARN("skipped %" PRId64 " rows holding NaN/Inf (--skip-nonfinite) in %" PRId64 " rows streamed", end_pos.skipped,
                 end_pos.delivered + end_pos.skipped);
    if (rc == 0 && !root) { /* the shards go to rank 0, which evaluates and writes */
        for (int i = 0; i < n; i++) {
            sae_trainer tmp;
            sae_dist_full(&g[i].t, &tmp);
            sae_dist_full_free(&tmp);
        }
        if (o->keep_state) sae_train_state_save(g, n, o->out, end_pos, o, in, last_saved);
    } else if (rc == 0) {
        musae_progress_finish(&rl.pr, NULL);
        sae_model *models = musae_xcalloc((size_t)n, sizeof *models);
        sae_eval_acc *acc = musae_xcalloc((size_t)n, sizeof *acc);
        int *li = musae_xcalloc((size_t)n, sizeof(int));
        double *train_dead = musae_xcalloc((size_t)n, sizeof(double));
        for (int i = 0; i < n; i++) {
            sae_trainer tmp;
            const sae_trainer *full = sae_dist_full(&g[i].t, &tmp);
            sae_model_from_trainer(&models[i], full, g[i].layer, in->model);
            train_dead[i] = sae_trainer_dead_fraction(full);
            sae_dist_full_free(&tmp);
            li[i] = g[i].li;
        }
        if (o->val_fraction > 0 && o->eval_tokens != 0)
            eval_many(models, acc, li, n, store, o->layers, o->n_layers, MUSAE_SPLIT_VAL, o->val_fraction,
                      o->split_seed, o->eval_tokens, o->batch, o->skip_nonfinite);
        for (int i = 0; i < n; i++) {
            sae_meta meta = {0};
            meta.layer = g[i].layer;
            snprintf(meta.model, sizeof meta.model, "%s", in->model);
            snprintf(meta.acts, sizeof meta.acts, "%s", o->acts);
            meta.val_fraction = o->val_fraction;
            meta.split_seed = o->split_seed;
            meta.data_seed = o->data_seed;
            meta.device = o->device == MUSAE_DEVICE_CUDA ? "cuda" : "cpu";
            meta.precision = musae_dtype_name(o->precision);
            meta.train_rows = plan.train_rows;
            meta.epochs = (double)g[i].t.tokens / (double)plan.train_rows;
            meta.tokens_rule = plan.tokens_rule;
            meta.warmup_rule = plan.warmup_rule;
            meta.warnings = plan.warnings;
            char measured[128];
            snprintf(measured, sizeof measured, "not fired in the last %" PRId64 " training tokens",
                     sae_dead_window(&g[i].t));
            meta.dead_frac = train_dead[i];
            meta.dead_measured = measured;
            if (o->val_fraction > 0 && o->eval_tokens != 0) {
                meta.has_eval = 1;
                meta.eval = sae_eval_finish(&acc[i]);
                fill_recovered(&meta.eval, &models[i], store);
                sae_eval_free(&acc[i]);
                cJSON *ej = cJSON_CreateObject(), *ev = cJSON_CreateObject();
                cJSON_AddStringToObject(ej, "sae", g[i].name);
                cJSON_AddStringToObject(ev, "split", "val");
                sae_eval_to_json(ev, &meta.eval);
                cJSON_AddItemToObject(ej, "eval", ev);
                musae_json_print_line(mf, ej);
                LOG_INFO("%s: held-out FVU %.4f, L0 %.1f, never fired %.1f%%%s", g[i].name, meta.eval.fvu, meta.eval.l0,
                         100 * meta.eval.dead_frac, meta.eval.recovered >= 0 ? "" : "");
                if (meta.eval.recovered >= 0)
                    LOG_INFO("%s: recovered %.1f%% of the planted directions (cos > 0.9)", g[i].name,
                             100 * meta.eval.recovered);
            }
            sae_check_dead(&meta.warnings, g[i].name, meta.dead_frac, meta.dead_measured);
            sae_save(g[i].dir, &models[i], &g[i].t, &meta);
            sae_model_free(&models[i]);
        }
        free(models);
        free(acc);
        free(li);
        free(train_dead);
        if (!o->keep_state) sae_train_state_remove(g, n, o->out, last_saved);
        else sae_train_state_save(g, n, o->out, end_pos, o, in, last_saved);
        LOG_INFO("wrote %d SAE(s) to %s", n, o->out);
        for (int w = 0; w < plan.warnings.n; w++) /* said before a long progress bar: said again where it is seen */
            LOG_WARN("(again) %s", plan.warnings.text[w]);
    }
    if (mf) fclose(mf);
    for (int l = 0; l < o->n_layers; l++) free(buf[l]);
    for (int i = 0; i < n; i++) sae_trainer_free(&g[i].t);
    free(g);
    g_run_grid = NULL;
    musae_store_close(store);
    return rc;
}
