/* The device-resident decoding step. See mg_step.h. */
#include "model/mg_step.h"

#include <math.h>
#include <string.h>

#include "host/core/check.h"

int mg_step_supports(const mg_hook *hooks, int n_hooks) {
    for (int i = 0; i < n_hooks; i++)
        if (hooks[i].kind != MG_HOOK_ADD && hooks[i].kind != MG_HOOK_READ) return 0;
    return 1;
}

static void init_hooks(mg_step *s, const mg_model *m, const mg_hook *hooks, int n_hooks) {
    const musae_ops *ops = m->ops;
    const int64_t H = m->H, nc = s->B;
    s->n_hooks = n_hooks;
    s->hooks = n_hooks ? musae_xcalloc((size_t)n_hooks, sizeof(mg_step_hook)) : NULL;
    for (int i = 0; i < n_hooks; i++) {
        const mg_hook *k = &hooks[i];
        mg_step_hook *sh = &s->hooks[i];
        MUSAE_ASSERT(k->layer >= -1 && k->layer < m->n_layers, "hook %d: layer %d outside -1..%lld", i, k->layer,
                     (long long)m->n_layers - 1);
        MUSAE_ASSERT(k->branch >= MG_BRANCH_COND && k->branch <= MG_BRANCH_BOTH, "hook %d: branch %d", i, k->branch);
        MUSAE_ASSERT(k->branch != MG_BRANCH_UNCOND || s->cfg, "hook %d: the unconditional branch needs CFG", i);
        MUSAE_ASSERT(k->pos_begin >= 0 && k->pos_end >= k->pos_begin, "hook %d: positions [%lld, %lld)", i,
                     (long long)k->pos_begin, (long long)k->pos_end);
        sh->h = k;
        sh->r0 = k->branch == MG_BRANCH_UNCOND ? nc : 0;
        sh->n_rows = (k->branch == MG_BRANCH_COND ? nc : s->rows) - sh->r0;
        if (k->kind == MG_HOOK_ADD) {
            MUSAE_ASSERT(k->vec && (k->vec_n <= 1 || k->vec_n == nc), "hook %d: ADD needs vec, one or %lld of them "
                         "(vec_n %lld)", i, (long long)nc, (long long)k->vec_n);
            float *a = musae_xmalloc((size_t)sh->n_rows * sizeof(float));
            for (int64_t r = 0; r < sh->n_rows; r++) /* the host loop's alpha, same fp32 product */
                a[r] = k->scale * (k->item_scale ? k->item_scale[(sh->r0 + r) % nc] : 1.0f);
            sh->alpha = ops->alloc((size_t)sh->n_rows * sizeof(float));
            ops->upload(sh->alpha, a, (size_t)sh->n_rows * sizeof(float));
            free(a);
        } else {
            MUSAE_ASSERT(k->kind == MG_HOOK_READ && k->dst && k->dst_t >= 1, "hook %d: the step runs ADD and READ "
                         "hooks (READ needs dst and dst_t)", i);
            const size_t bytes = (size_t)(s->slots * sh->n_rows * H) * sizeof(float);
            sh->ring = ops->alloc(bytes);
            sh->stage[0] = s->so->host_alloc(bytes);
            sh->stage[1] = s->so->host_alloc(bytes);
        }
    }
}

void mg_step_init(mg_step *s, const mg_model *m, const musae_step_ops *so, int64_t B, int cfg, const float *text_states,
                  const float *text_mask, int64_t S, const mg_delay_plan *plan, const mg_sampler *sampler, float guidance,
                  const mg_hook *hooks, int n_hooks, int64_t slots) {
    MUSAE_ASSERT(B >= 1 && slots >= 1 && plan->steps <= m->max_pos, "step: %lld items, %lld slots, %lld steps",
                 (long long)B, (long long)slots, (long long)plan->steps);
    MUSAE_ASSERT(!cfg || text_states, "CFG needs text");
    memset(s, 0, sizeof *s);
    const musae_ops *ops = m->ops;
    const int64_t K = m->K, V = m->V, H = m->H, L = plan->max_length;
    s->so = so;
    s->B = B;
    s->cfg = cfg;
    s->rows = cfg ? 2 * B : B;
    s->plan = *plan;
    s->slots = slots < plan->steps ? slots : plan->steps;
    mg_state_opts o = {.batch = s->rows, .n_cond = B, .t_max = plan->steps, .t_call = 1, .incremental = 1, .logits = 1};
    mg_state_init(&s->st, m, &o);
    if (text_states) mg_state_set_text(&s->st, m, text_states, text_mask, S);

    s->sp = (musae_sample_params){
        .B = B, .K = K, .V = V, .rows = s->rows, .cfg = cfg, .guidance = guidance, .greedy = sampler->greedy,
        .temperature = sampler->temperature, .top_k = sampler->top_k, .top_p = sampler->top_p, .seed = sampler->seed,
        .same_draws = sampler->same_draws,
        .delayed = plan->delayed, .max_length = L,
    };
    MUSAE_ASSERT(V <= MUSAE_SAMPLE_VMAX, "vocabulary of %lld codes; the step sampler takes at most %d", (long long)V,
                 MUSAE_SAMPLE_VMAX);
    MUSAE_ASSERT(sampler->greedy || (sampler->temperature > 0 && sampler->top_k >= 0 && sampler->top_p > 0 &&
                                     sampler->top_p <= 1),
                 "sampler temperature %g top_k %d top_p %g", sampler->temperature, sampler->top_k, sampler->top_p);

    const int64_t zero = 0;
    s->pos = ops->alloc(sizeof(int64_t));
    ops->upload(s->pos, &zero, sizeof zero);
    const int64_t n_seq = B * K * L, n_ids = K * s->rows;
    int64_t *bos = musae_xmalloc((size_t)(n_seq > n_ids ? n_seq : n_ids) * sizeof(int64_t));
    for (int64_t i = 0; i < (n_seq > n_ids ? n_seq : n_ids); i++) bos[i] = V;
    s->ids = ops->alloc((size_t)n_ids * sizeof(int64_t));
    ops->upload(s->ids, bos, (size_t)n_ids * sizeof(int64_t));
    s->seq = ops->alloc((size_t)n_seq * sizeof(int64_t));
    ops->upload(s->seq, bos, (size_t)n_seq * sizeof(int64_t));
    free(bos);
    s->kv_new = ops->alloc((size_t)(s->rows * 2 * H) * sizeof(float));
    s->tok = ops->alloc((size_t)(B * K) * sizeof(int64_t));
    s->scores = cfg ? ops->alloc((size_t)(B * K * V) * sizeof(float)) : s->st.logits;
    init_hooks(s, m, hooks, n_hooks);
    s->ev[0] = so->event_new();
    s->ev[1] = so->event_new();
}

static void run_hooks(const mg_model *m, mg_step *s, int layer) {
    const int64_t H = m->H;
    for (int i = 0; i < s->n_hooks; i++) {
        const mg_step_hook *sh = &s->hooks[i];
        const mg_hook *k = sh->h;
        if (k->layer != layer) continue;
        float *x = s->st.x + sh->r0 * H;
        if (k->kind == MG_HOOK_ADD)
            /* the branch's local row r is item r mod B for every branch (COND and UNCOND start at an item 0) */
            s->so->add_rows_at(x, k->vec, k->vec_n > 1 ? k->vec_n : 1, sh->alpha, sh->n_rows, H, k->pos_begin,
                               k->pos_end, s->pos);
        else
            s->so->capture(sh->ring, x, sh->n_rows, H, s->slots, s->pos);
    }
}

/* mg_forward's layer_forward at t = 1, with the K/V write and the self-attention length on the device */
static void layer_step(const mg_model *m, mg_step *s, int64_t l) {
    const musae_ops *ops = m->ops;
    const musae_step_ops *so = s->so;
    mg_state *st = &s->st;
    const mg_layer *w = &m->layers[l];
    const int64_t H = m->H, H2 = 2 * H, rows = s->rows, TM = st->o.t_max;
    const float scale = (float)pow((double)m->d_head, -0.5);

    ops->layernorm(st->h, st->x, w->sa_ln_w, w->sa_ln_b, rows, H, MG_LN_EPS);
    mg_linear(m, st->q, st->h, w->sa_q, rows, H, H, 0.0f);
    float *kv = st->self_kv + l * rows * TM * H2;
    mg_linear(m, s->kv_new, st->h, w->sa_kv, rows, H2, H, 0.0f);
    so->kv_append(kv, s->kv_new, rows, H2, TM * H2, s->pos);
    musae_attn_params sp = {
        .batch = rows, .heads = m->n_heads, .tq = 1, .dh = m->d_head,
        .q_sb = H, .q_st = H, .k_sb = TM * H2, .k_st = H2, .v_sb = TM * H2, .v_st = H2, .o_sb = H, .o_st = H,
        .scale = scale, .causal = 1,
    };
    so->attention(st->attn, st->q, kv, kv + H, &sp, TM, s->pos);
    mg_linear(m, st->x, st->attn, w->sa_o, rows, H, H, 1.0f);

    if (st->n_text > 0) { /* text positions are fixed, so this part is the host loop's call unchanged */
        const int64_t n = st->n_text, S = st->s_text;
        const float *tkv = st->text_kv + l * n * S * H2;
        ops->layernorm(st->h, st->x, w->ca_ln_w, w->ca_ln_b, n, H, MG_LN_EPS);
        mg_linear(m, st->q, st->h, w->ca_q, n, H, H, 0.0f);
        musae_attn_params cp = {
            .batch = n, .heads = m->n_heads, .tq = 1, .tk = S, .dh = m->d_head,
            .q_sb = H, .q_st = H, .k_sb = S * H2, .k_st = H2, .v_sb = S * H2, .v_st = H2, .o_sb = H, .o_st = H,
            .scale = scale, .key_mask = st->text_mask,
        };
        ops->attention(st->attn, st->q, tkv, tkv + H, &cp);
        mg_linear(m, st->x, st->attn, w->ca_o, n, H, H, 1.0f);
    }

    mg_ffn(m, st, w, rows, 1);
}

void mg_step_run(const mg_model *m, mg_step *s) {
    const musae_ops *ops = m->ops;
    mg_state *st = &s->st;
    const int64_t K = m->K, H = m->H, rows = s->rows;
    s->so->embed(st->x, m->embed, K, m->V + 1, H, s->ids, rows, m->pos, s->pos);
    run_hooks(m, s, -1);
    for (int64_t l = 0; l < m->n_layers; l++) {
        layer_step(m, s, l);
        run_hooks(m, s, (int)l);
    }
    ops->layernorm(st->h, st->x, m->ln_w, m->ln_b, rows, H, MG_LN_EPS);
    mg_linear(m, st->logits, st->h, m->heads, rows, K * m->V, H, 0.0f);
    s->so->sample(st->logits, s->cfg ? s->scores : NULL, s->tok, s->seq, s->ids, &s->sp, s->pos);
    s->so->advance(s->pos);
}

/* A staged chunk into the READ hooks' dst: positions in each hook's range and below its dst_t. */
static void scatter(const mg_model *m, mg_step *s, int b) {
    const int64_t H = m->H;
    for (int i = 0; i < s->n_hooks; i++) {
        const mg_step_hook *sh = &s->hooks[i];
        const mg_hook *k = sh->h;
        if (k->kind != MG_HOOK_READ) continue;
        for (int64_t j = 0; j < s->pend_n[b]; j++) {
            const int64_t p = s->pend_s0[b] + j;
            if (p < k->pos_begin || p >= k->pos_end || p >= k->dst_t) continue;
            for (int64_t r = 0; r < sh->n_rows; r++)
                memcpy(k->dst + (r * k->dst_t + p) * H, sh->stage[b] + (j * sh->n_rows + r) * H,
                       (size_t)H * sizeof(float));
        }
    }
    s->pend_n[b] = 0;
}

void mg_step_after(const mg_model *m, mg_step *s, int64_t step, int last) {
    int reads = 0;
    for (int i = 0; i < s->n_hooks; i++) reads += s->hooks[i].h->kind == MG_HOOK_READ;
    if (!reads || (!last && (step + 1) % s->slots)) return;
    const int b = (int)(s->chunks % 2);
    if (s->pend_n[b]) { /* the chunk before last used this staging buffer */
        s->so->event_sync(s->ev[b]);
        scatter(m, s, b);
    }
    const int64_t s0 = step - step % s->slots, n = step - s0 + 1;
    for (int i = 0; i < s->n_hooks; i++) {
        const mg_step_hook *sh = &s->hooks[i];
        if (sh->h->kind == MG_HOOK_READ)
            s->so->download_async(sh->stage[b], sh->ring, (size_t)(n * sh->n_rows * m->H) * sizeof(float));
    }
    s->so->event_record(s->ev[b]);
    s->pend_s0[b] = s0;
    s->pend_n[b] = n;
    s->chunks++;
    if (last)
        for (int c = 0; c < 2; c++)
            if (s->pend_n[c]) {
                s->so->event_sync(s->ev[c]);
                scatter(m, s, c);
            }
}

void mg_step_free(mg_step *s, const mg_model *m) {
    const musae_ops *ops = m->ops;
    for (int i = 0; i < s->n_hooks; i++) {
        mg_step_hook *sh = &s->hooks[i];
        if (sh->alpha) ops->free(sh->alpha);
        if (sh->ring) ops->free(sh->ring);
        for (int c = 0; c < 2; c++)
            if (sh->stage[c]) s->so->host_free(sh->stage[c]);
    }
    free(s->hooks);
    for (int c = 0; c < 2; c++) s->so->event_free(s->ev[c]);
    if (s->cfg) ops->free(s->scores);
    ops->free(s->tok);
    ops->free(s->kv_new);
    ops->free(s->seq);
    ops->free(s->ids);
    ops->free(s->pos);
    mg_state_free(&s->st, m);
    memset(s, 0, sizeof *s);
}
