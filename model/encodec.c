/* EnCodec (model/encodec.h): architecture from the config, loading (weight-norm folding, layouts for the conv
 * ops), then the decoder pipeline. The finite stacks, their windowed streams and the LSTM are in
 * model/encodec_stream.c, the encoder and the RVQ in model/encodec_encode.c. */
#include "model/encodec.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "model/encodec_pool.h"
#include "model/encodec_stream.h"

/* ---- architecture (HF EncodecEncoder / EncodecDecoder, in their layer order) ------------------------------ */

static encodec_conv make_conv(int c_in, int c_out, int k, int stride, int dilation) {
    encodec_conv c = {.c_in = c_in, .c_out = c_out, .k = k, .stride = stride, .dilation = dilation};
    int total = (k - 1) * dilation + 1 - stride; /* EncodecConv1d.padding_total */
    c.pad_right = total / 2;
    c.pad_left = total - c.pad_right;
    return c;
}

static encodec_layer *add_layer(encodec_stack *s, encodec_layer_kind kind, int hf_index) {
    MUSAE_ASSERT(s->n < ENCODEC_MAX_LAYERS, "encodec: more than %d layers in one stack", ENCODEC_MAX_LAYERS);
    encodec_layer *l = &s->layers[s->n++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->hf_index = hf_index;
    return l;
}

static void add_res(encodec_stack *s, const musae_encodec_config *c, int idx, int dim, int j) {
    encodec_layer *l = add_layer(s, ENCODEC_RES, idx);
    int dil = 1;
    for (int i = 0; i < j; i++) dil *= c->dilation_growth_rate;
    l->res.conv1 = make_conv(dim, dim / c->compress, c->residual_kernel_size, 1, dil);
    l->res.conv2 = make_conv(dim / c->compress, dim, 1, 1, 1);
    if (c->use_conv_shortcut) l->res.shortcut = make_conv(dim, dim, 1, 1, 1);
}

static void build_arch(encodec *m) {
    const musae_encodec_config *c = &m->cfg;
    const int nf = c->num_filters, R = c->n_ratios;
    int idx = 0, scaling = 1;
    encodec_stack *s = &m->enc_front;
    s->c_in = c->audio_channels;
    add_layer(s, ENCODEC_CONV, idx++)->conv = make_conv(c->audio_channels, nf, c->kernel_size, 1, 1);
    for (int i = R - 1; i >= 0; i--) {
        int r = c->upsampling_ratios[i], cur = scaling * nf;
        for (int j = 0; j < c->num_residual_layers; j++) add_res(s, c, idx++, cur, j);
        add_layer(s, ENCODEC_ELU, idx++);
        add_layer(s, ENCODEC_CONV, idx++)->conv = make_conv(cur, 2 * cur, 2 * r, r, 1);
        scaling *= 2;
    }
    s->c_out = scaling * nf;
    s->down = c->hop_length;
    s->up = 1;
    m->enc_lstm = (encodec_lstm){.n_layers = c->num_lstm_layers, .dim = scaling * nf, .hf_index = idx++};
    s = &m->enc_back;
    s->c_in = scaling * nf;
    add_layer(s, ENCODEC_ELU, idx++);
    add_layer(s, ENCODEC_CONV, idx++)->conv = make_conv(scaling * nf, c->hidden_size, c->last_kernel_size, 1, 1);
    s->c_out = c->hidden_size;
    s->down = s->up = 1;

    idx = 0;
    scaling = 1 << R;
    s = &m->dec_front;
    s->c_in = c->hidden_size;
    add_layer(s, ENCODEC_CONV, idx++)->conv = make_conv(c->hidden_size, scaling * nf, c->kernel_size, 1, 1);
    s->c_out = scaling * nf;
    s->down = s->up = 1;
    m->dec_lstm = (encodec_lstm){.n_layers = c->num_lstm_layers, .dim = scaling * nf, .hf_index = idx++};
    s = &m->dec_back;
    s->c_in = scaling * nf;
    for (int i = 0; i < R; i++) {
        int r = c->upsampling_ratios[i], cur = scaling * nf;
        add_layer(s, ENCODEC_ELU, idx++);
        encodec_convt *t = &add_layer(s, ENCODEC_CONVT, idx++)->convt;
        *t = (encodec_convt){.c_in = cur, .c_out = cur / 2, .k = 2 * r, .stride = r};
        int surplus = t->k - t->stride; /* EncodecConvTranspose1d, non-causal: right = surplus // 2 */
        t->crop_left = surplus - surplus / 2;
        for (int j = 0; j < c->num_residual_layers; j++) add_res(s, c, idx++, cur / 2, j);
        scaling /= 2;
    }
    add_layer(s, ENCODEC_ELU, idx++);
    add_layer(s, ENCODEC_CONV, idx++)->conv = make_conv(nf, c->audio_channels, c->last_kernel_size, 1, 1);
    s->c_out = c->audio_channels;
    s->down = 1;
    s->up = c->hop_length;

    m->n_q = c->num_quantizers;
    m->codebook_size = c->codebook_size;
    m->dim = c->hidden_size;
    m->hop = c->hop_length;
    m->reflect = !strcmp(c->pad_mode, "reflect");
}

int encodec_config_supported(const musae_encodec_config *c, char *err, size_t errlen) {
    const char *why = NULL;
    char buf[160];
    if (c->use_causal_conv) why = "use_causal_conv true is not supported (MusicGen's 32 kHz codec is non-causal)";
    else if (strcmp(c->norm_type, "weight_norm")) why = "norm_type must be \"weight_norm\"";
    else if (c->normalize) why = "normalize true (the 48 kHz codec's input scaling) is not supported";
    else if (c->audio_channels != 1) why = "only mono (audio_channels 1) is supported";
    else if (c->codebook_dim != c->hidden_size) why = "codebook_dim must equal hidden_size (HF has no projection)";
    else if (c->num_lstm_layers < 1 || c->num_lstm_layers > ENCODEC_MAX_LSTM) {
        snprintf(buf, sizeof buf, "num_lstm_layers %d is outside 1..%d", c->num_lstm_layers, ENCODEC_MAX_LSTM);
        why = buf;
    } else if (c->num_filters < 1 || c->compress < 1 || (c->num_filters / c->compress) < 1 || c->n_ratios < 1 ||
               c->num_residual_layers < 0 || c->num_residual_layers > 4 || c->kernel_size < 1 ||
               c->last_kernel_size < 1 || c->residual_kernel_size < 1)
        why = "layer sizes out of range";
    else if (c->codebook_size < 2 || (c->codebook_size & (c->codebook_size - 1)))
        why = "codebook_size must be a power of 2 (as HF requires)";
    else if (c->num_quantizers < 1 || c->num_quantizers > 64) why = "the number of quantizers is outside 1..64";
    else if ((int)floor(c->target_bandwidths[0] * 1000.0 / (log2((double)c->codebook_size) * c->frame_rate)) !=
             c->num_quantizers)
        /* HF encodes at target_bandwidths[0] by default, with fewer codebooks than the model has */
        why = "codecs with several target bandwidths are not supported (MusicGen's has one)";
    if (why) {
        snprintf(err, errlen, "EnCodec config: %s", why);
        return -1;
    }
    return 0;
}

/* ---- parameter groups: the one walk over the architecture that loading and listing share ------------------ */

typedef enum { G_CONV, G_CONVT, G_LSTM, G_CODEBOOK } group_kind;
typedef struct {
    group_kind kind;
    char prefix[80];
    encodec_conv *conv;
    encodec_convt *convt;
    encodec_lstm *lstm;
    int q;
} group;

static int stack_groups(encodec_stack *s, const char *side, group *g, int n) {
    for (int i = 0; i < s->n; i++) {
        encodec_layer *l = &s->layers[i];
        char p[64];
        snprintf(p, sizeof p, "%s.layers.%d", side, l->hf_index);
        if (l->kind == ENCODEC_CONV) {
            g[n] = (group){.kind = G_CONV, .conv = &l->conv};
            snprintf(g[n++].prefix, sizeof g->prefix, "%s.conv", p);
        } else if (l->kind == ENCODEC_CONVT) {
            g[n] = (group){.kind = G_CONVT, .convt = &l->convt};
            snprintf(g[n++].prefix, sizeof g->prefix, "%s.conv", p);
        } else if (l->kind == ENCODEC_RES) {
            g[n] = (group){.kind = G_CONV, .conv = &l->res.conv1};
            snprintf(g[n++].prefix, sizeof g->prefix, "%s.block.1.conv", p);
            g[n] = (group){.kind = G_CONV, .conv = &l->res.conv2};
            snprintf(g[n++].prefix, sizeof g->prefix, "%s.block.3.conv", p);
            if (l->res.shortcut.k) {
                g[n] = (group){.kind = G_CONV, .conv = &l->res.shortcut};
                snprintf(g[n++].prefix, sizeof g->prefix, "%s.shortcut.conv", p);
            }
        }
    }
    return n;
}

#define MAX_GROUPS 160
static int arch_groups(encodec *m, group *g) {
    int n = stack_groups(&m->enc_front, "encoder", g, 0);
    g[n] = (group){.kind = G_LSTM, .lstm = &m->enc_lstm};
    snprintf(g[n++].prefix, sizeof g->prefix, "encoder.layers.%d.lstm", m->enc_lstm.hf_index);
    n = stack_groups(&m->enc_back, "encoder", g, n);
    n = stack_groups(&m->dec_front, "decoder", g, n);
    g[n] = (group){.kind = G_LSTM, .lstm = &m->dec_lstm};
    snprintf(g[n++].prefix, sizeof g->prefix, "decoder.layers.%d.lstm", m->dec_lstm.hf_index);
    n = stack_groups(&m->dec_back, "decoder", g, n);
    for (int q = 0; q < m->n_q; q++) {
        g[n] = (group){.kind = G_CODEBOOK, .q = q};
        snprintf(g[n++].prefix, sizeof g->prefix, "quantizer.layers.%d.codebook", q);
    }
    MUSAE_ASSERT(n <= MAX_GROUPS, "encodec: %d parameter groups", n);
    return n;
}

static void add_param(encodec_param *out, int max, int *n, int rank, int64_t s0, int64_t s1, int64_t s2,
                      const char *fmt, ...) MUSAE_PRINTF(8, 9);
static void add_param(encodec_param *out, int max, int *n, int rank, int64_t s0, int64_t s1, int64_t s2,
                      const char *fmt, ...) {
    if (*n < max) {
        encodec_param *p = &out[*n];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->name, sizeof p->name, fmt, ap);
        va_end(ap);
        p->rank = rank;
        p->shape[0] = s0, p->shape[1] = s1, p->shape[2] = s2;
    }
    (*n)++;
}

int encodec_params(const musae_encodec_config *cfg, encodec_param *out, int max) {
    encodec *m = musae_xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    build_arch(m);
    group g[MAX_GROUPS];
    int ng = arch_groups(m, g), n = 0;
    for (int i = 0; i < ng; i++) {
        const char *p = g[i].prefix;
        if (g[i].kind == G_CONV) {
            const encodec_conv *c = g[i].conv;
            add_param(out, max, &n, 1, c->c_out, 0, 0, "%s.bias", p);
            add_param(out, max, &n, 3, c->c_out, 1, 1, "%s.parametrizations.weight.original0", p);
            add_param(out, max, &n, 3, c->c_out, c->c_in, c->k, "%s.parametrizations.weight.original1", p);
        } else if (g[i].kind == G_CONVT) { /* ConvTranspose1d: v is [in, out, k], g is [in, 1, 1] */
            const encodec_convt *c = g[i].convt;
            add_param(out, max, &n, 1, c->c_out, 0, 0, "%s.bias", p);
            add_param(out, max, &n, 3, c->c_in, 1, 1, "%s.parametrizations.weight.original0", p);
            add_param(out, max, &n, 3, c->c_in, c->c_out, c->k, "%s.parametrizations.weight.original1", p);
        } else if (g[i].kind == G_LSTM) {
            const int64_t d = g[i].lstm->dim;
            for (int l = 0; l < g[i].lstm->n_layers; l++) {
                add_param(out, max, &n, 2, 4 * d, d, 0, "%s.weight_ih_l%d", p, l);
                add_param(out, max, &n, 2, 4 * d, d, 0, "%s.weight_hh_l%d", p, l);
                add_param(out, max, &n, 1, 4 * d, 0, 0, "%s.bias_ih_l%d", p, l);
                add_param(out, max, &n, 1, 4 * d, 0, 0, "%s.bias_hh_l%d", p, l);
            }
        } else {
            add_param(out, max, &n, 1, 1, 0, 0, "%s.inited", p);
            add_param(out, max, &n, 1, cfg->codebook_size, 0, 0, "%s.cluster_size", p);
            add_param(out, max, &n, 2, cfg->codebook_size, cfg->codebook_dim, 0, "%s.embed", p);
            add_param(out, max, &n, 2, cfg->codebook_size, cfg->codebook_dim, 0, "%s.embed_avg", p);
        }
    }
    free(m);
    return n;
}

/* ---- loading ---------------------------------------------------------------------------------------------- */

/* musae_st_load, then the tensor's mmapped source pages are dropped from the process (the page cache keeps
 * the data; the read-only private mapping faults it back if read again), so the peak memory of a load is
 * the folded weights plus one tensor, not the weights plus the whole touched file. A checkpoint parsed
 * from memory has no mapping and is left alone: MADV_DONTNEED would zero anonymous pages. */
static float *load_tensor(musae_st *st, const char *name, int rank, const int64_t *shape) {
    float *x = musae_st_load(st, name, MUSAE_F32, rank, shape);
    const musae_st_tensor *t = musae_st_find(st, name);
    if (st->files[t->file].map) {
        const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
        const uintptr_t a = (uintptr_t)t->data & ~(pg - 1), e = ((uintptr_t)t->data + t->nbytes + pg - 1) & ~(pg - 1);
        if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
    }
    return x;
}

static float *to_device(const musae_ops *ops, float *host, size_t n) {
    float *d = ops->alloc(n * sizeof(float));
    ops->upload(d, host, n * sizeof(float));
    free(host);
    return d;
}

/* Weight-norm g and v of a conv (either spelling), folded: w = g · v / ‖v‖ with the norm over every axis
 * but dim 0 (PyTorch weight_norm(dim=0)). Returns the folded weight in PyTorch's layout [a, b, k]. */
static float *load_weight_norm(musae_st *st, const char *prefix, int a, int b, int k) {
    char g5[256], v5[256], gl[256], vl[256], plain[256];
    snprintf(g5, sizeof g5, "%s.parametrizations.weight.original0", prefix);
    snprintf(v5, sizeof v5, "%s.parametrizations.weight.original1", prefix);
    snprintf(gl, sizeof gl, "%s.weight_g", prefix);
    snprintf(vl, sizeof vl, "%s.weight_v", prefix);
    snprintf(plain, sizeof plain, "%s.weight", prefix);
    int has5 = musae_st_find(st, g5) || musae_st_find(st, v5), hasl = musae_st_find(st, gl) || musae_st_find(st, vl);
    if (has5 && hasl)
        musae_fail("%s: '%s' is stored in both weight-norm spellings (parametrizations.weight.original0/1 and "
                   "weight_g/weight_v); keep one",
                   st->path, prefix);
    if (!has5 && !hasl) {
        if (musae_st_find(st, plain))
            musae_fail("%s: '%s' has no weight norm (norm_type is weight_norm: expected g and v)", st->path, plain);
        musae_fail("%s: tensor '%s' is missing (nor legacy '%s')", st->path, v5, vl);
    }
    const char *gn = has5 ? g5 : gl, *vn = has5 ? v5 : vl;
    const int64_t gs[3] = {a, 1, 1}, vs[3] = {a, b, k};
    float *g = load_tensor(st, gn, 3, gs);
    float *v = load_tensor(st, vn, 3, vs);
    const int64_t row = (int64_t)b * k;
    /* rows are independent, so the threads share them out; the checks run after, in row order, so the
     * refusal names the first bad row whatever the thread count */
    double *ss = musae_xmalloc((size_t)a * sizeof(double));
#pragma omp parallel for schedule(dynamic, 8) if ((int64_t)a * row >= (1 << 18))
    for (int i = 0; i < a; i++) {
        double sum = 0;
        for (int64_t j = 0; j < row; j++) sum += (double)v[i * row + j] * v[i * row + j];
        ss[i] = sum;
        if (sum > 0 && isfinite(sum) && isfinite(g[i])) {
            const double scale = g[i] / sqrt(sum);
            for (int64_t j = 0; j < row; j++) v[i * row + j] = (float)(v[i * row + j] * scale);
        }
    }
    for (int i = 0; i < a; i++)
        if (!(ss[i] > 0) || !isfinite(ss[i]) || !isfinite(g[i]))
            musae_fail("%s: '%s' row %d has norm %g (g %g): the weight is undefined", st->path, vn, i, sqrt(ss[i]),
                       (double)g[i]);
    free(ss);
    free(g);
    return v;
}

static float *load_bias(musae_st *st, const char *prefix, int n) {
    char name[256];
    snprintf(name, sizeof name, "%s.bias", prefix);
    const int64_t s[1] = {n};
    return load_tensor(st, name, 1, s);
}

static void load_conv(const musae_ops *ops, musae_st *st, const char *prefix, encodec_conv *c) {
    float *w = load_weight_norm(st, prefix, c->c_out, c->c_in, c->k); /* [c_out, c_in, k] */
    float *t = musae_xmalloc((size_t)c->c_out * c->c_in * c->k * sizeof(float));
#pragma omp parallel for if ((int64_t)c->c_out * c->c_in * c->k >= (1 << 18))
    for (int o = 0; o < c->c_out; o++)
        for (int i = 0; i < c->c_in; i++)
            for (int j = 0; j < c->k; j++)
                t[((size_t)o * c->k + j) * c->c_in + i] = w[((size_t)o * c->c_in + i) * c->k + j];
    free(w);
    c->w = to_device(ops, t, (size_t)c->c_out * c->c_in * c->k);
    c->b = to_device(ops, load_bias(st, prefix, c->c_out), (size_t)c->c_out);
}

static void load_convt(const musae_ops *ops, musae_st *st, const char *prefix, encodec_convt *c) {
    float *w = load_weight_norm(st, prefix, c->c_in, c->c_out, c->k); /* [c_in, c_out, k] */
    const int s = c->stride, J = c->k / s;
    float *t = musae_xmalloc((size_t)c->c_out * c->c_in * c->k * sizeof(float));
#pragma omp parallel for collapse(2) if ((int64_t)c->c_out * c->c_in * c->k >= (1 << 18))
    for (int r = 0; r < s; r++)
        for (int o = 0; o < c->c_out; o++)
            for (int mm = 0; mm < J; mm++)
                for (int i = 0; i < c->c_in; i++)
                    t[(((size_t)r * c->c_out + o) * J + mm) * c->c_in + i] =
                        w[((size_t)i * c->c_out + o) * c->k + r + (J - 1 - mm) * s];
    free(w);
    c->w = to_device(ops, t, (size_t)c->c_out * c->c_in * c->k);
    c->b = to_device(ops, load_bias(st, prefix, c->c_out), (size_t)c->c_out);
}

static void load_lstm(const musae_ops *ops, musae_st *st, const char *prefix, encodec_lstm *l) {
    const int64_t d = l->dim, ws[2] = {4 * d, d}, bs[1] = {4 * d};
    for (int i = 0; i < l->n_layers; i++) {
        char n[256];
        snprintf(n, sizeof n, "%s.weight_ih_l%d", prefix, i);
        l->w_ih[i] = to_device(ops, load_tensor(st, n, 2, ws), (size_t)(4 * d * d));
        snprintf(n, sizeof n, "%s.weight_hh_l%d", prefix, i);
        l->w_hh[i] = to_device(ops, load_tensor(st, n, 2, ws), (size_t)(4 * d * d));
        snprintf(n, sizeof n, "%s.bias_ih_l%d", prefix, i);
        l->b_ih[i] = to_device(ops, load_tensor(st, n, 1, bs), (size_t)(4 * d));
        snprintf(n, sizeof n, "%s.bias_hh_l%d", prefix, i);
        l->b_hh[i] = to_device(ops, load_tensor(st, n, 1, bs), (size_t)(4 * d));
    }
}

void encodec_load_st(encodec *m, const musae_encodec_config *cfg, musae_st *st, const char *prefix,
                     const musae_ops *ops) {
    char err[256];
    if (encodec_config_supported(cfg, err, sizeof err)) musae_fail("%s: %s", st->path, err);
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->ops = ops;
    m->pool = encodec_pool_new(ops);
    build_arch(m);
    group g[MAX_GROUPS];
    int ng = arch_groups(m, g);
    const int64_t S = m->codebook_size, D = m->dim;
    m->codebooks_host = musae_xmalloc((size_t)(m->n_q * S * D) * sizeof(float));
    m->codebook_sq = musae_xmalloc((size_t)(m->n_q * S) * sizeof(float));
    musae_st_prefetch(st, prefix);
    for (int i = 0; i < ng; i++) {
        char p[200];
        snprintf(p, sizeof p, "%s%s", prefix, g[i].prefix);
        if (g[i].kind == G_CONV) load_conv(ops, st, p, g[i].conv);
        else if (g[i].kind == G_CONVT) load_convt(ops, st, p, g[i].convt);
        else if (g[i].kind == G_LSTM) load_lstm(ops, st, p, g[i].lstm);
        else {
            char n[256];
            const int64_t es[2] = {S, D};
            snprintf(n, sizeof n, "%s.embed", p);
            float *e = load_tensor(st, n, 2, es);
            for (int64_t j = 0; j < S * D; j++)
                if (!isfinite(e[j])) musae_fail("%s: '%s' holds a non-finite value at %lld", st->path, n, (long long)j);
            memcpy(m->codebooks_host + (size_t)g[i].q * S * D, e, (size_t)(S * D) * sizeof(float));
            free(e);
            /* training statistics of the EMA codebook: saved by HF, not used for inference */
            static const char *const unused[] = {"inited", "cluster_size", "embed_avg"};
            for (int u = 0; u < 3; u++) {
                snprintf(n, sizeof n, "%s.%s", p, unused[u]);
                musae_st_find(st, n);
            }
        }
    }
    for (int64_t r = 0; r < m->n_q * S; r++) {
        double ss = 0;
        for (int64_t j = 0; j < D; j++) ss += (double)m->codebooks_host[r * D + j] * m->codebooks_host[r * D + j];
        m->codebook_sq[r] = (float)ss;
    }
    m->codebooks = ops->alloc((size_t)(m->n_q * S * D) * sizeof(float));
    ops->upload(m->codebooks, m->codebooks_host, (size_t)(m->n_q * S * D) * sizeof(float));
    int unused = musae_st_report_unused(st, prefix);
    if (unused)
        musae_fail("%s: %d tensor(s) under '%s' are not part of the EnCodec that config.json describes (listed "
                   "above): the checkpoint and its config disagree",
                   st->path, unused, prefix[0] ? prefix : "(root)");
}

void encodec_load(encodec *m, const char *dir, const musae_ops *ops) {
    char err[512];
    musae_encodec_config cfg;
    if (musae_encodec_config_load(&cfg, dir, err, sizeof err)) musae_fail("%s", err);
    musae_st st;
    if (musae_st_open(&st, dir, err, sizeof err)) musae_fail("%s", err);
    /* a MusicGen composite keeps the codec under audio_encoder.; a standalone codec at the root */
    const char *prefix = musae_st_find(&st, "audio_encoder.quantizer.layers.0.codebook.embed") ? "audio_encoder." : "";
    encodec_load_st(m, &cfg, &st, prefix, ops);
    musae_st_close(&st);
}

static void free_stack(const musae_ops *ops, encodec_stack *s) {
    for (int i = 0; i < s->n; i++) {
        encodec_layer *l = &s->layers[i];
        encodec_conv *cs[4] = {&l->conv, &l->res.conv1, &l->res.conv2, &l->res.shortcut};
        for (int j = 0; j < 4; j++)
            if (cs[j]->w) ops->free(cs[j]->w), ops->free(cs[j]->b);
        if (l->convt.w) ops->free(l->convt.w), ops->free(l->convt.b);
    }
}

static void free_lstm(const musae_ops *ops, encodec_lstm *l) {
    for (int i = 0; i < l->n_layers; i++)
        if (l->w_ih[i]) ops->free(l->w_ih[i]), ops->free(l->w_hh[i]), ops->free(l->b_ih[i]), ops->free(l->b_hh[i]);
}

void encodec_free(encodec *m) {
    if (!m->ops) return;
    free_stack(m->ops, &m->enc_front);
    free_stack(m->ops, &m->enc_back);
    free_stack(m->ops, &m->dec_front);
    free_stack(m->ops, &m->dec_back);
    free_lstm(m->ops, &m->enc_lstm);
    free_lstm(m->ops, &m->dec_lstm);
    if (m->codebooks) m->ops->free(m->codebooks);
    free(m->codebooks_host);
    free(m->codebook_sq);
    encodec_pool_free(m->pool);
    memset(m, 0, sizeof *m);
}

/* ---- decoder ---------------------------------------------------------------------------------------------- */

/* Every output row the back stack can compute from its input so far, to the sink. */
static void drain_back(encodec_stream *back, float *y, float *yh, encodec_sink sink, void *ctx) {
    int64_t k;
    while ((k = encodec_stream_pull(back, y)) > 0) {
        back->m->ops->download(yh, y, (size_t)k * sizeof(float));
        sink(ctx, yh, k);
    }
}

void encodec_decode(const encodec *m, const int64_t *codes, int64_t frames, int chunk_frames, encodec_sink sink,
                    void *ctx) {
    const musae_ops *ops = m->ops;
    const int64_t chunk = chunk_frames > 0 ? chunk_frames : ENCODEC_DEFAULT_CHUNK_FRAMES, D = m->dim;
    const int64_t S = m->codebook_size, Q = m->n_q;
    MUSAE_ASSERT(frames > 0, "encodec_decode: %lld frames", (long long)frames);
    for (int64_t i = 0; i < Q * frames; i++)
        MUSAE_ASSERT(codes[i] >= 0 && codes[i] < S, "encodec_decode: code %lld at [%lld, %lld] outside [0, %lld)",
                     (long long)codes[i], (long long)(i / frames), (long long)(i % frames), (long long)S);
    encodec_stream front, back;
    encodec_stream_init(&front, m, &m->dec_front, chunk);
    encodec_stream_init(&back, m, &m->dec_back, chunk * m->hop);
    encodec_lstm_state lstm;
    encodec_lstm_init(&lstm, m, &m->dec_lstm, chunk);
    float *emb = encodec_pool_get(m->pool, (size_t)(chunk * D) * sizeof(float));
    int64_t *ids = encodec_pool_get(m->pool, (size_t)chunk * sizeof(int64_t));
    float *x = encodec_pool_get(m->pool, (size_t)(chunk * m->dec_lstm.dim) * sizeof(float));
    float *y = encodec_pool_get(m->pool, (size_t)(chunk * m->hop) * sizeof(float));
    float *yh = musae_xmalloc((size_t)(chunk * m->hop) * sizeof(float));
    /* On the CPU table the back stack's drain of the rows pushed last runs on one thread while the LSTM
     * recurrence of the next rows (one thread by design, see kernels/cpu/lstm.c) runs on another: one hand-off
     * per chunk, so a busy machine costs no per-step barrier. The stream sees the same pushes and pulls in
     * the same order as without the overlap, so the windows, and the samples, are the same. */
    const int overlap = ops->device == MUSAE_DEVICE_CPU && omp_get_max_threads() >= 2;
    int pending = 0; /* back holds rows pushed but not yet drained */
    for (int64_t f0 = 0; f0 < frames || !encodec_stream_done(&back);) {
        if (f0 < frames) {
            /* RVQ decode: the sum of each codebook's vectors (HF EncodecResidualVectorQuantizer.decode) */
            int64_t n = min64(chunk, frames - f0);
            for (int64_t q = 0; q < Q; q++) {
                ops->upload(ids, codes + q * frames + f0, (size_t)n * sizeof(int64_t));
                ops->embedding(emb, m->codebooks + q * S * D, S, D, ids, n, q > 0);
            }
            encodec_stream_push(&front, emb, n, 0);
            f0 += n;
            if (f0 == frames) encodec_stream_end(&front);
        }
        int64_t k;
        while ((k = encodec_stream_pull(&front, x)) > 0) {
            const float *ly = NULL;
            if (pending) {
#pragma omp parallel sections num_threads(2)
                {
#pragma omp section
                    ly = encodec_lstm_run(&lstm, ops, x, k);
#pragma omp section
                    drain_back(&back, y, yh, sink, ctx);
                }
                pending = 0;
            } else {
                ly = encodec_lstm_run(&lstm, ops, x, k);
            }
            encodec_stream_push(&back, ly, k, 0);
        }
        if (pending) drain_back(&back, y, yh, sink, ctx); /* nothing came out of the front this time */
        pending = 0;
        if (encodec_stream_done(&front) && back.total < 0) encodec_stream_end(&back);
        if (overlap && !encodec_stream_done(&front)) pending = 1;
        else drain_back(&back, y, yh, sink, ctx);
    }
    encodec_stream_free(&front);
    encodec_stream_free(&back);
    encodec_lstm_free(&lstm, m);
    encodec_pool_put(m->pool, emb, (size_t)(chunk * D) * sizeof(float));
    encodec_pool_put(m->pool, ids, (size_t)chunk * sizeof(int64_t));
    encodec_pool_put(m->pool, x, (size_t)(chunk * m->dec_lstm.dim) * sizeof(float));
    encodec_pool_put(m->pool, y, (size_t)(chunk * m->hop) * sizeof(float));
    free(yh);
}

typedef struct {
    float *out;
    int64_t n;
} collect_ctx;

static void collect(void *ctx, const float *s, int64_t n) {
    collect_ctx *c = ctx;
    memcpy(c->out + c->n, s, (size_t)n * sizeof(float));
    c->n += n;
}

float *encodec_decode_all(const encodec *m, const int64_t *codes, int64_t frames) {
    return encodec_decode_chunked(m, codes, frames, 0);
}

float *encodec_decode_chunked(const encodec *m, const int64_t *codes, int64_t frames, int chunk_frames) {
    collect_ctx c = {.out = musae_xmalloc((size_t)(frames * m->hop) * sizeof(float))};
    encodec_decode(m, codes, frames, chunk_frames, collect, &c);
    MUSAE_ASSERT(c.n == frames * m->hop, "encodec_decode gave %lld samples for %lld frames", (long long)c.n,
                 (long long)frames);
    return c.out;
}

typedef struct {
    musae_audio_writer *w;
    musae_progress *progress;
    int64_t hop;
    int failed;
    char *err;
    size_t errlen;
} file_sink_ctx;

static void file_sink(void *ctx, const float *s, int64_t n) {
    file_sink_ctx *c = ctx;
    if (c->failed) return;
    if (musae_audio_write(c->w, s, n, c->err, c->errlen)) c->failed = 1;
    else if (c->progress) musae_progress_add(c->progress, n / c->hop, NULL);
}

int encodec_decode_to_file(const encodec *m, const int64_t *codes, int64_t frames, const char *path,
                           musae_audio_format fmt, int chunk_frames, musae_progress *progress,
                           musae_audio_write_stats *stats, char *err, size_t errlen) {
    file_sink_ctx c = {.progress = progress, .hop = m->hop, .err = err, .errlen = errlen};
    c.w = musae_audio_writer_open(path, m->cfg.sampling_rate, 1, fmt, err, errlen);
    if (!c.w) return -1;
    encodec_decode(m, codes, frames, chunk_frames, file_sink, &c);
    if (c.failed) {
        musae_audio_writer_abort(c.w);
        return -1;
    }
    return musae_audio_writer_close(c.w, stats, err, errlen);
}

/* out.wav → out_3.wav for item 3 (a path without an extension gets the suffix at its end) */
static void item_path(const char *path, int64_t b, int64_t batch, char *buf, size_t n) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (batch == 1) snprintf(buf, n, "%s", path);
    else if (!dot || (slash && dot < slash)) snprintf(buf, n, "%s_%lld", path, (long long)b);
    else snprintf(buf, n, "%.*s_%lld%s", (int)(dot - path), path, (long long)b, dot);
}

int encodec_decode_to_files(const encodec *m, const int64_t *codes, int64_t batch, int64_t frames, const char *path,
                            musae_audio_format fmt, int chunk_frames, char *err, size_t errlen) {
    for (int64_t b = 0; b < batch; b++) {
        char file[4096], clip[256];
        item_path(path, b, batch, file, sizeof file);
        double t0 = musae_now();
        musae_progress p;
        musae_progress_init(&p, "decode", "frames", frames);
        musae_audio_write_stats ws;
        if (encodec_decode_to_file(m, codes + b * m->n_q * frames, frames, file, fmt, chunk_frames, &p, &ws, err,
                                   errlen))
            return -1;
        musae_progress_finish(&p, NULL);
        double secs = musae_now() - t0, audio_s = (double)ws.frames / m->cfg.sampling_rate;
        LOG_INFO("wrote %s: %lld samples (%.2f s) at %d Hz in %.2f s, %.1fx real time, peak %.3f", file,
                 (long long)ws.frames, audio_s, m->cfg.sampling_rate, secs, audio_s / secs, ws.peak);
        musae_audio_clip_message(&ws, clip, sizeof clip);
        if (clip[0]) LOG_WARN("%s: %s", file, clip);
    }
    return 0;
}
