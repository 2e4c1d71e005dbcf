#include "model/generate.h"

#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "host/core/progress.h"

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

int64_t mg_generate(const mg_model *m, int64_t B, const mg_text *text, const mg_gen_params *p, const mg_hook *hooks,
                    int n_hooks, mg_step_fn on_step, void *ctx, int64_t *codes) {
    const int64_t K = m->K, V = m->V;
    const mg_delay_plan plan = mg_delay_plan_steps(K, p->steps);
    MUSAE_ASSERT(B >= 1, "generate for %lld items", (long long)B);
    MUSAE_ASSERT(plan.steps <= m->max_pos, "%lld steps exceed the model's %lld positions", (long long)plan.steps,
                 (long long)m->max_pos);
    const int has_text = text && text->states;
    /* without text the two CFG branches are the same rows, and u + (u - u)·g = u exactly: skip the batch */
    const int cfg = has_text && p->guidance > 1.0f;
    const int64_t rows = cfg ? 2 * B : B, L = plan.max_length;

    mg_state st;
    mg_state_opts o = {.batch = rows, .n_cond = B, .t_max = plan.steps, .t_call = 1, .incremental = 1, .logits = 1};
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
    if (p->progress) musae_progress_init(&pg, "generate", "steps", plan.steps);
    for (int64_t s = 0; s < plan.steps; s++) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < K; k++) in[r * K + k] = seq[((r % B) * K + k) * L + s];
        mg_forward(m, &st, in, 1, hooks, n_hooks, 1);
        m->ops->download(lg, st.logits, (size_t)(rows * K * V) * sizeof(float));
        if (cfg) mg_cfg_combine(scores, lg, lg + B * K * V, p->guidance, B * K * V);
#pragma omp parallel for schedule(static) if (!p->sampler.greedy && B * K > 1)
        for (int64_t bk = 0; bk < B * K; bk++) {
            const float u = p->sampler.greedy ? 0.0f : mg_sample_uniform(p->sampler.seed, bk / K, bk % K, K, s);
            tok[bk] = mg_sample_row(scores + bk * V, V, &p->sampler, u, work + wbytes * (size_t)omp_get_thread_num());
        }
        for (int64_t b = 0; b < B; b++)
            for (int64_t k = 0; k < K; k++)
                seq[(b * K + k) * L + s + 1] = mg_delay_free(&plan, k, s + 1) ? tok[b * K + k] : V;
        if (on_step) on_step(ctx, s, scores, tok);
        if (p->progress) musae_progress_add(&pg, 1, NULL);
    }
    if (p->progress) musae_progress_finish(&pg, NULL);

    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t f = 0; f < plan.frames; f++)
                codes[(b * K + k) * plan.frames + f] = seq[(b * K + k) * L + mg_delay_pos(&plan, k, f)];
    free(work);
    if (cfg) free(scores);
    free(lg);
    free(tok);
    free(in);
    free(seq);
    mg_state_free(&st, m);
    return plan.frames;
}
