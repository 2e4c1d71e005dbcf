#include "model/generate.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"
#include "model/mg_step.h"

/* READ captures of the device loop reach the host in chunks of this many steps (one download per chunk,
 * overlapping the next chunk's steps) */
#define MG_READ_CHUNK 64

int mg_check_frames(const mg_model *m, int64_t frames, char *err, size_t errlen) {
    if (frames < 1) {
        snprintf(err, errlen, "%lld frames requested; at least 1 is needed", (long long)frames);
        return -1;
    }
    /* the delayed regime needs F + K - 1 steps, i.e. positions 0 .. F + K - 2 */
    const int64_t most = m->max_pos - (m->K - 1);
    if (frames > most) {
        snprintf(err, errlen,
                 "%lld frames need %lld positions; the model has %lld, so at most %lld frames (%.2f s at 50 Hz)",
                 (long long)frames, (long long)(frames + m->K - 1), (long long)m->max_pos, (long long)most,
                 (double)most / 50.0);
        return -1;
    }
    return 0;
}

mg_gen_loop mg_gen_loop_for(const mg_model *m, const mg_gen_params *p, const mg_hook *hooks, int n_hooks,
                            const char **why) {
    const musae_step_ops *so = musae_step_ops_for(m->ops);
    const char *w = "the device loop";
    mg_gen_loop l = p->loop;
    if (l == MG_LOOP_HOST) {
        w = "the host loop was asked for";
    } else if (!so) {
        MUSAE_ASSERT(l == MG_LOOP_AUTO, "the device loop was asked for, but the %s table has no step table", m->ops->name);
        w = "the ops table has no step table";
        l = MG_LOOP_HOST;
    } else if (!mg_step_supports(hooks, n_hooks)) {
        MUSAE_ASSERT(l == MG_LOOP_AUTO, "the device loop was asked for, but it runs ADD and READ hooks only");
        w = "a SET or MAP hook needs the host loop";
        l = MG_LOOP_HOST;
    } else if (l == MG_LOOP_AUTO) {
        l = MG_LOOP_GRAPH;
    }
    if (l == MG_LOOP_GRAPH && !so->graph_begin) {
        l = MG_LOOP_DEVICE;
        if (p->loop == MG_LOOP_AUTO) w = "the device loop (no graphs on this device)";
    }
    if (why) *why = w;
    return l;
}

/* Sequence [B, K, L] → codes [B, K, F] through the delay pattern. */
static void read_codes(const mg_delay_plan *plan, int64_t B, int64_t K, const int64_t *seq, int64_t *codes) {
    const int64_t L = plan->max_length;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t f = 0; f < plan->frames; f++)
                codes[(b * K + k) * plan->frames + f] = seq[(b * K + k) * L + mg_delay_pos(plan, k, f)];
}

static void host_loop(const mg_model *m, int64_t B, const mg_text *text, const mg_gen_params *p, const mg_hook *hooks,
                      int n_hooks, mg_step_fn on_step, void *ctx, const mg_delay_plan *plan, int cfg, int64_t *codes) {
    const int64_t K = m->K, V = m->V;
    const int has_text = text && text->states;
    const int64_t rows = cfg ? 2 * B : B, L = plan->max_length;
    mg_state st;
    mg_state_opts o = {.batch = rows, .n_cond = B, .t_max = plan->steps, .t_call = 1, .incremental = 1, .logits = 1};
    mg_state_init(&st, m, &o);
    if (has_text) mg_state_set_text(&st, m, text->states, text->mask, text->S);

    int64_t *seq = musae_xmalloc((size_t)(B * K * L) * sizeof(int64_t)); /* [B, K, L] */
    for (int64_t i = 0; i < B * K * L; i++) seq[i] = V;
    int64_t *in = musae_xmalloc((size_t)(rows * K) * sizeof(int64_t));
    int64_t *tok = musae_xmalloc((size_t)(B * K) * sizeof(int64_t));
    float *lg = musae_xmalloc((size_t)(rows * K * V) * sizeof(float));
    float *scores = cfg ? musae_xmalloc((size_t)(B * K * V) * sizeof(float)) : lg;
    const int nthreads = omp_get_max_threads();
    const size_t wbytes = mg_sample_work_bytes(V);
    char *work = musae_xmalloc(wbytes * (size_t)nthreads);

    musae_progress pg;
    if (p->progress) musae_progress_init(&pg, "generate", "steps", plan->steps);
    for (int64_t s = 0; s < plan->steps; s++) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < K; k++) in[r * K + k] = seq[((r % B) * K + k) * L + s];
        mg_forward(m, &st, in, 1, hooks, n_hooks, 1);
        m->ops->download(lg, st.logits, (size_t)(rows * K * V) * sizeof(float));
        if (cfg) mg_cfg_combine(scores, lg, lg + B * K * V, p->guidance, B * K * V);
#pragma omp parallel for schedule(static) if (!p->sampler.greedy && B * K > 1)
        for (int64_t bk = 0; bk < B * K; bk++) {
            const float u = p->sampler.greedy ? 0.0f : mg_sample_uniform(p->sampler.seed, p->sampler.same_draws ? 0 : bk / K, bk % K, K, s);
            tok[bk] = mg_sample_row(scores + bk * V, V, &p->sampler, u, work + wbytes * (size_t)omp_get_thread_num());
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t k = 0; k < K; k++)
                seq[(b * K + k) * L + s + 1] = mg_delay_free(plan, k, s + 1) ? tok[b * K + k] : V;
        if (on_step) on_step(ctx, s, scores, tok);
        if (p->progress) musae_progress_add(&pg, 1, NULL);
    }
    if (p->progress) musae_progress_finish(&pg, NULL);

    read_codes(plan, B, K, seq, codes);
    free(work);
    if (cfg) free(scores);
    free(lg);
    free(tok);
    free(in);
    free(seq);
    mg_state_free(&st, m);
}

static void device_loop(const mg_model *m, int64_t B, const mg_text *text, const mg_gen_params *p,
                        const mg_hook *hooks, int n_hooks, mg_step_fn on_step, void *ctx, const mg_delay_plan *plan,
                        int cfg, int graph, int64_t *codes) {
    const musae_ops *ops = m->ops;
    const musae_step_ops *so = musae_step_ops_for(ops);
    const int64_t K = m->K, V = m->V;
    const int has_text = text && text->states;
    mg_step s;
    mg_step_init(&s, m, so, B, cfg, has_text ? text->states : NULL, has_text ? text->mask : NULL,
                 has_text ? text->S : 0, plan, &p->sampler, p->guidance, hooks, n_hooks, MG_READ_CHUNK);
    float *scores = on_step ? musae_xmalloc((size_t)(B * K * V) * sizeof(float)) : NULL;
    int64_t *tok = on_step ? musae_xmalloc((size_t)(B * K) * sizeof(int64_t)) : NULL;
    void *g = NULL;
    musae_progress pg;
    if (p->progress) musae_progress_init(&pg, "generate", "steps", plan->steps);
    for (int64_t t = 0; t < plan->steps; t++) {
        /* step 0 runs plainly: it sizes every scratch buffer, so the capture of step 1 allocates nothing */
        if (!graph || t == 0) {
            mg_step_run(m, &s);
        } else {
            if (!g) {
                so->graph_begin();
                mg_step_run(m, &s);
                g = so->graph_end();
            }
            so->graph_launch(g);
        }
        mg_step_after(m, &s, t, t == plan->steps - 1);
        if (on_step) {
            ops->download(scores, s.scores, (size_t)(B * K * V) * sizeof(float));
            ops->download(tok, s.tok, (size_t)(B * K) * sizeof(int64_t));
            on_step(ctx, t, scores, tok);
        }
        if (p->progress) musae_progress_add(&pg, 1, NULL);
    }
    int64_t *seq = musae_xmalloc((size_t)(B * K * plan->max_length) * sizeof(int64_t));
    ops->download(seq, s.seq, (size_t)(B * K * plan->max_length) * sizeof(int64_t));
    if (p->progress) musae_progress_finish(&pg, NULL);
    read_codes(plan, B, K, seq, codes);
    free(seq);
    if (g) so->graph_free(g);
    free(tok);
    free(scores);
    mg_step_free(&s, m);
}

int64_t mg_generate(const mg_model *m, int64_t B, const mg_text *text, const mg_gen_params *p, const mg_hook *hooks,
                    int n_hooks, mg_step_fn on_step, void *ctx, int64_t *codes) {
    const mg_delay_plan plan = mg_delay_plan_steps(m->K, p->steps);
    MUSAE_ASSERT(B >= 1, "generate for %lld items", (long long)B);
    MUSAE_ASSERT(plan.steps <= m->max_pos, "%lld steps exceed the model's %lld positions", (long long)plan.steps,
                 (long long)m->max_pos);
    const int has_text = text && text->states;
    /* without text the two CFG branches are the same rows, and u + (u - u)·g = u exactly: skip the batch */
    const int cfg = has_text && p->guidance > 1.0f;
    const char *why = NULL;
    const mg_gen_loop loop = mg_gen_loop_for(m, p, hooks, n_hooks, &why);
    LOG_DEBUG("generate: %s loop on %s (%s)", loop == MG_LOOP_HOST ? "host" : loop == MG_LOOP_GRAPH ? "graph" : "device",
              m->ops->name, why);
    if (loop == MG_LOOP_HOST)
        host_loop(m, B, text, p, hooks, n_hooks, on_step, ctx, &plan, cfg, codes);
    else
        device_loop(m, B, text, p, hooks, n_hooks, on_step, ctx, &plan, cfg, loop == MG_LOOP_GRAPH, codes);
    return plan.frames;
}
