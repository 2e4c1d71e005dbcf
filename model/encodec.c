/* EnCodec encoder/decoder (model/encodec.h). Layout of this file: architecture from the config, loading
 * (weight-norm folding, layouts for the conv ops), the finite stacks and their windowed streams, the LSTM,
 * the RVQ, then the encoder and decoder pipelines. */
#include "model/encodec.h"

#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/log.h"
#include "model/encodec_pool.h"

#define DEFAULT_CHUNK_FRAMES 200

static int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

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

/* ---- finite stacks: lengths, receptive fields, one run over a window ---------------------------------------- */

/* HF EncodecConv1d._get_extra_padding_for_conv1d, in exact integers. HF computes it with a float32 tensor
 * division, which is exact while the length is below 2^24 rows (8.7 minutes at 32 kHz); beyond that HF's
 * own result can be off by a frame, ours stays the mathematical one. */
static int64_t conv_extra(const encodec_conv *c, int64_t L) {
    int64_t keff = (int64_t)(c->k - 1) * c->dilation + 1, total = keff - c->stride;
    int64_t n = ceil_div(L - keff + total, c->stride);
    return n * c->stride + keff - total - L;
}

static int64_t conv_len(const encodec_conv *c, int64_t L) {
    int64_t keff = (int64_t)(c->k - 1) * c->dilation + 1;
    return (L + c->pad_left + c->pad_right + conv_extra(c, L) - keff) / c->stride + 1;
}

static int64_t stack_len(const encodec_stack *s, int64_t L) {
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        if (l->kind == ENCODEC_CONV) L = conv_len(&l->conv, L);
        else if (l->kind == ENCODEC_CONVT) L *= l->convt.stride;
    }
    return L;
}

/* Input rows [*lo, *hi] the outputs [*lo, *hi] read (away from the signal's edges). */
static void conv_need(const encodec_conv *c, int64_t *lo, int64_t *hi) {
    int64_t keff = (int64_t)(c->k - 1) * c->dilation + 1;
    *lo = *lo * c->stride - c->pad_left;
    *hi = *hi * c->stride - c->pad_left + keff - 1;
}

static void stack_need(const encodec_stack *s, int64_t *lo, int64_t *hi) {
    for (int i = s->n - 1; i >= 0; i--) {
        const encodec_layer *l = &s->layers[i];
        if (l->kind == ENCODEC_CONV) conv_need(&l->conv, lo, hi);
        else if (l->kind == ENCODEC_CONVT) {
            const encodec_convt *t = &l->convt;
            *lo = ceil_div(*lo + t->crop_left - t->k + 1, t->stride);
            *hi = floor_div(*hi + t->crop_left, t->stride);
        } else if (l->kind == ENCODEC_RES) {
            conv_need(&l->res.conv2, lo, hi); /* k 1: the residual's own rows are inside conv1's reach */
            conv_need(&l->res.conv1, lo, hi);
        }
    }
}

/* Input rows a window must span so that no reflect-padded layer in it sees a signal shorter than its
 * padding. HF pads such short signals differently (_pad1d appends zeros first); that is right for a short
 * whole signal, but inside a short window that ends at the signal's end it would change the true right
 * edge. Each layer's length stays >= its k_eff > its largest padding when the stack's input has this many. */
static int64_t stack_min_rows(const encodec_stack *s) {
    int64_t scale_num = 1, scale_den = 1, need = 1; /* input rows per row at the current layer: num / den */
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        const encodec_conv *cs[3] = {NULL, NULL, NULL};
        if (l->kind == ENCODEC_CONV) cs[0] = &l->conv;
        else if (l->kind == ENCODEC_RES) cs[0] = &l->res.conv1, cs[1] = &l->res.conv2, cs[2] = &l->res.shortcut;
        for (int j = 0; j < 3; j++)
            if (cs[j] && cs[j]->k) {
                int64_t keff = (int64_t)(cs[j]->k - 1) * cs[j]->dilation + 1;
                need = max64(need, ceil_div(keff * scale_num, scale_den));
            }
        if (l->kind == ENCODEC_CONV) scale_num *= l->conv.stride;
        else if (l->kind == ENCODEC_CONVT) scale_den *= l->convt.stride;
    }
    return need + s->down;
}

/* Scratch for running a stack: three device buffers of `cap` floats each. */
typedef struct {
    float *buf[3];
    int64_t cap;
} scratch;

/* Largest intermediate (rows × channels) of a stack over n input rows. */
static int64_t stack_peak(const encodec_stack *s, int64_t L) {
    int64_t peak = L * s->c_in, C = s->c_in;
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        if (l->kind == ENCODEC_CONV) L = conv_len(&l->conv, L), C = l->conv.c_out;
        else if (l->kind == ENCODEC_CONVT) L *= l->convt.stride, C = l->convt.c_out;
        peak = max64(peak, L * C);
    }
    return peak;
}

static void scratch_reserve(encodec_pool *pool, scratch *w, int64_t cap) {
    if (cap <= w->cap) return;
    for (int i = 0; i < 3; i++) {
        encodec_pool_put(pool, w->buf[i], (size_t)w->cap * sizeof(float));
        w->buf[i] = encodec_pool_get(pool, (size_t)cap * sizeof(float));
    }
    w->cap = cap;
}

static void scratch_free(encodec_pool *pool, scratch *w) {
    for (int i = 0; i < 3; i++) encodec_pool_put(pool, w->buf[i], (size_t)w->cap * sizeof(float));
    memset(w, 0, sizeof *w);
}

/* One EncodecConv1d over x [L, c_in] → out [conv_len, c_out]: reflect (or zero) padding split as HF, plus the
 * extra right padding that completes the last frame. accumulate adds into out; elu applies an ELU after. */
static void run_conv(const encodec *m, const encodec_conv *c, const float *x, int64_t L, float *out, int accumulate,
                     int elu) {
    const musae_ops *ops = m->ops;
    int64_t extra = conv_extra(c, L);
    musae_conv1d_params p = {.t_in = L, .t_out = conv_len(c, L), .c_in = c->c_in, .c_out = c->c_out, .k = c->k,
                             .stride = c->stride, .dilation = c->dilation, .pad_left = c->pad_left,
                             .pad_right = c->pad_right + (int)extra, .reflect = m->reflect, .accumulate = accumulate,
                             .elu = elu};
    if (!m->reflect || L > max64(p.pad_left, p.pad_right)) {
        ops->conv1d(out, x, c->w, c->b, &p);
        return;
    }
    /* HF _pad1d on an input no longer than the padding: append zeros until reflection is possible, reflect,
     * then cut the appended length off the end. Only very short signals get here; build it on the host. */
    const int64_t C = c->c_in, maxpad = max64(p.pad_left, p.pad_right), ext = maxpad - L + 1, L2 = L + ext;
    const int64_t rows = p.pad_left + L2 + p.pad_right - ext;
    float *h = musae_xcalloc((size_t)(L2 * C), sizeof(float)), *hp = musae_xmalloc((size_t)(rows * C) * sizeof(float));
    ops->download(h, x, (size_t)(L * C) * sizeof(float));
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = i - p.pad_left;
        r = r < 0 ? -r : r >= L2 ? 2 * (L2 - 1) - r : r;
        memcpy(hp + i * C, h + r * C, (size_t)C * sizeof(float));
    }
    float *dp = ops->alloc((size_t)(rows * C) * sizeof(float));
    ops->upload(dp, hp, (size_t)(rows * C) * sizeof(float));
    p.t_in = rows;
    p.pad_left = p.pad_right = 0;
    ops->conv1d(out, dp, c->w, c->b, &p);
    ops->free(dp);
    free(h);
    free(hp);
}

/* The lowest-numbered scratch buffer that is neither a nor b (-1 stands for none). */
static int free_buf(int a, int b) { return a != 0 && b != 0 ? 0 : a != 1 && b != 1 ? 1 : 2; }

/* Runs the stack on x [L, c_in] (device) exactly as HF runs it on a whole signal of L rows. Returns the
 * output (one of the scratch buffers) and its row count in *n_out. */
static const float *stack_run(const encodec *m, const encodec_stack *s, const float *x, int64_t L, scratch *w,
                              int64_t *n_out) {
    const musae_ops *ops = m->ops;
    scratch_reserve(m->pool, w, stack_peak(s, L));
    const float *cur = x;
    int own = -1; /* which scratch buffer cur is, -1 for the caller's input */
    int64_t C = s->c_in;
    for (int i = 0; i < s->n; i++) {
        const encodec_layer *l = &s->layers[i];
        switch (l->kind) {
        case ENCODEC_ELU: {
            int d = own >= 0 ? own : 0;
            ops->elu(w->buf[d], cur, L * C);
            cur = w->buf[own = d];
            break;
        }
        case ENCODEC_CONV: {
            int d = free_buf(own, own);
            run_conv(m, &l->conv, cur, L, w->buf[d], 0, 0);
            L = conv_len(&l->conv, L);
            C = l->conv.c_out;
            cur = w->buf[own = d];
            break;
        }
        case ENCODEC_CONVT: {
            const encodec_convt *t = &l->convt;
            int d = free_buf(own, own);
            musae_convt1d_params p = {.t_in = L, .t_out = L * t->stride, .c_in = t->c_in, .c_out = t->c_out,
                                      .k = t->k, .stride = t->stride, .crop_left = t->crop_left};
            ops->conv_transpose1d(w->buf[d], cur, t->w, t->b, &p);
            L *= t->stride;
            C = t->c_out;
            cur = w->buf[own = d];
            break;
        }
        case ENCODEC_RES: {
            /* y = shortcut(x) + conv2(elu(conv1(elu(x)))), shortcut = identity unless use_conv_shortcut */
            const encodec_resblock *r = &l->res;
            int a = free_buf(own, own), b = free_buf(own, a);
            ops->elu(w->buf[a], cur, L * C);
            run_conv(m, &r->conv1, w->buf[a], L, w->buf[b], 0, 1);
            if (r->shortcut.w) {
                run_conv(m, &r->shortcut, cur, L, w->buf[a], 0, 0);
            } else if (own < 0) {
                ops->copy(w->buf[a], cur, (size_t)(L * C) * sizeof(float));
            } else {
                a = own; /* add the block's output onto x in place */
            }
            /* an ELU next (the front's ELU before each downsampling conv) runs in conv2's pass */
            const int elu_next = i + 1 < s->n && s->layers[i + 1].kind == ENCODEC_ELU;
            run_conv(m, &r->conv2, w->buf[b], L, w->buf[a], 1, elu_next);
            cur = w->buf[own = a];
            i += elu_next;
            break;
        }
        }
    }
    *n_out = L;
    return cur;
}

/* ---- windowed stream over one stack ------------------------------------------------------------------------ */

typedef struct {
    const encodec *m;
    const encodec_stack *s;
    float *in;                     /* device [in_cap, c_in]: input rows [in_first, in_first + in_n) */
    int64_t in_first, in_n, in_cap;
    int64_t total;                 /* input rows in all; -1 while more may come */
    int64_t next_out;              /* first output row not produced yet */
    int64_t chunk;                 /* output rows per window at most */
    int64_t min_rows;              /* stack_min_rows */
    scratch w;
} stream;

static void stream_init(stream *st, const encodec *m, const encodec_stack *s, int64_t chunk_out) {
    memset(st, 0, sizeof *st);
    st->m = m;
    st->s = s;
    st->total = -1;
    st->chunk = chunk_out;
    st->min_rows = stack_min_rows(s);
}

static void stream_free(stream *st) {
    encodec_pool_put(st->m->pool, st->in, (size_t)(st->in_cap * st->s->c_in) * sizeof(float));
    scratch_free(st->m->pool, &st->w);
}

/* Appends n rows (host or device memory). */
static void stream_push(stream *st, const float *x, int64_t n, int from_host) {
    const musae_ops *ops = st->m->ops;
    const int64_t C = st->s->c_in;
    MUSAE_ASSERT(st->total < 0, "encodec: push after the end of the input");
    if (st->in_n + n > st->in_cap) {
        int64_t cap = max64(2 * st->in_cap, st->in_n + n);
        float *in = encodec_pool_get(st->m->pool, (size_t)(cap * C) * sizeof(float));
        if (st->in_n) ops->copy(in, st->in, (size_t)(st->in_n * C) * sizeof(float));
        encodec_pool_put(st->m->pool, st->in, (size_t)(st->in_cap * C) * sizeof(float));
        st->in = in;
        st->in_cap = cap;
    }
    float *dst = st->in + st->in_n * C;
    if (from_host) ops->upload(dst, x, (size_t)(n * C) * sizeof(float));
    else ops->copy(dst, x, (size_t)(n * C) * sizeof(float));
    st->in_n += n;
}

static void stream_end(stream *st) { st->total = st->in_first + st->in_n; }

static int stream_done(const stream *st) { return st->total >= 0 && st->next_out == stack_len(st->s, st->total); }

/* Drops input rows before `keep` (they are read by no future window). The rows move down in steps no longer
 * than the shift, so no copy overlaps itself. */
static void stream_discard(stream *st, int64_t keep) {
    int64_t drop = min64(keep - st->in_first, st->in_n);
    if (drop <= 0) return;
    const int64_t C = st->s->c_in, left = st->in_n - drop;
    for (int64_t off = 0; off < left; off += drop) {
        int64_t n = min64(drop, left - off);
        st->m->ops->copy(st->in + off * C, st->in + (drop + off) * C, (size_t)(n * C) * sizeof(float));
    }
    st->in_first += drop;
    st->in_n = left;
}

/* Computes the next output rows the buffered input determines (at most chunk) into out (device,
 * [rows, c_out]); returns the count, 0 when nothing new can be computed yet. */
static int64_t stream_pull(stream *st, float *out) {
    const encodec_stack *s = st->s;
    const int64_t avail = st->in_first + st->in_n;
    int64_t n_out = -1, o1;
    if (st->total >= 0) {
        n_out = stack_len(s, st->total);
        o1 = min64(n_out, st->next_out + st->chunk);
    } else {
        /* the largest o1 whose last row's inputs are all here: the reach is monotone in the row */
        int64_t lo = st->next_out, hi = st->next_out + st->chunk;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo + 1) / 2, a = mid - 1, b = mid - 1;
            stack_need(s, &a, &b);
            if (b < avail) lo = mid;
            else hi = mid - 1;
        }
        o1 = lo;
    }
    if (o1 <= st->next_out) return 0;
    int64_t a = st->next_out, b = o1 - 1;
    stack_need(s, &a, &b);
    /* a window starting on a multiple of the stack's total stride keeps every layer's rows in phase */
    int64_t ws = a <= 0 ? 0 : a / s->down * s->down;
    int64_t we = st->total >= 0 && (o1 == n_out || b + 1 >= st->total) ? st->total : b + 1;
    if (we == st->total && we - ws < st->min_rows) ws = max64(0, floor_div(we - st->min_rows, s->down) * s->down);
    MUSAE_ASSERT(ws >= st->in_first && we <= avail && we > ws, "encodec: window [%lld, %lld) outside the buffer [%lld, %lld)",
                 (long long)ws, (long long)we, (long long)st->in_first, (long long)avail);
    int64_t n_w;
    const float *y = stack_run(st->m, s, st->in + (ws - st->in_first) * s->c_in, we - ws, &st->w, &n_w);
    int64_t wo = ws / s->down * s->up;
    MUSAE_ASSERT(o1 - wo <= n_w, "encodec: window of %lld rows gave %lld outputs, need %lld", (long long)(we - ws),
                 (long long)n_w, (long long)(o1 - wo));
    st->m->ops->copy(out, y + (st->next_out - wo) * s->c_out, (size_t)((o1 - st->next_out) * s->c_out) * sizeof(float));
    int64_t produced = o1 - st->next_out;
    st->next_out = o1;
    a = b = o1;
    stack_need(s, &a, &b);
    /* keep what the next window reads, and enough to stretch a window that ends at the true end to min_rows */
    int64_t keep = min64(a, st->in_first + st->in_n - st->min_rows);
    stream_discard(st, keep <= 0 ? 0 : floor_div(keep, s->down) * s->down);
    return produced;
}

/* ---- LSTM with residual (EncodecLSTM: y = lstm(x) + x, zero initial state) -------------------------------- */

/* The recurrence is serial in time and bound by reading W_hh (16 MB for the 32 kHz codec) once per step, so
 * splitting one step's product over threads needs a barrier per step, which collapses whenever the machine
 * has fewer free cores than threads (kernels/cpu/lstm.c). The layers are a wavefront instead: on the CPU
 * table each layer runs in blocks of LSTM_BLOCK steps (its input GEMM and its recurrence, one ops->lstm call
 * per block), and layer l's block b needs only layer l - 1's block b. With two threads, layer 0 runs on one
 * and layer 1 follows a block behind on the other: one hand-off per block (a counter and a condition
 * variable), and only the follower ever waits, asleep. The blocks are the same whatever the thread count (one thread
 * runs them in the same (block, layer) order), so the bits are too. Other tables run whole chunks. */
/* A block's input GEMM packs all of W_ih again: 40 rows cost 1.6x the per-row time of 200 (20 rows 2.1x),
 * while the follower's lag, one block, grows with the size; 20-40 give the same wall time, 40 less CPU. */
enum { LSTM_BLOCK = 40 };

typedef struct {
    const encodec_lstm *l;
    float *h[ENCODEC_MAX_LSTM], *c[ENCODEC_MAX_LSTM];    /* device [dim] state per layer */
    float *out[ENCODEC_MAX_LSTM], *work[ENCODEC_MAX_LSTM]; /* device [chunk, dim], [block, 4·dim] per layer */
    int64_t chunk, block;                                 /* block: steps per ops->lstm call */
} lstm_state;

static void lstm_init(lstm_state *s, const encodec *m, const encodec_lstm *l, int64_t chunk) {
    const musae_ops *ops = m->ops;
    memset(s, 0, sizeof *s);
    s->l = l;
    s->chunk = chunk;
    s->block = ops->device == MUSAE_DEVICE_CPU ? min64(LSTM_BLOCK, chunk) : chunk;
    float *zero = musae_xcalloc((size_t)l->dim, sizeof(float));
    for (int i = 0; i < l->n_layers; i++) {
        s->h[i] = encodec_pool_get(m->pool, (size_t)l->dim * sizeof(float));
        s->c[i] = encodec_pool_get(m->pool, (size_t)l->dim * sizeof(float));
        ops->upload(s->h[i], zero, (size_t)l->dim * sizeof(float));
        ops->upload(s->c[i], zero, (size_t)l->dim * sizeof(float));
        s->out[i] = encodec_pool_get(m->pool, (size_t)(chunk * l->dim) * sizeof(float));
        s->work[i] = encodec_pool_get(m->pool, (size_t)(s->block * 4 * l->dim) * sizeof(float));
    }
    free(zero);
}

static void lstm_free(lstm_state *s, const encodec *m) {
    const int64_t d = s->l->dim;
    for (int i = 0; i < s->l->n_layers; i++) {
        encodec_pool_put(m->pool, s->h[i], (size_t)d * sizeof(float));
        encodec_pool_put(m->pool, s->c[i], (size_t)d * sizeof(float));
        encodec_pool_put(m->pool, s->out[i], (size_t)(s->chunk * d) * sizeof(float));
        encodec_pool_put(m->pool, s->work[i], (size_t)(s->block * 4 * d) * sizeof(float));
    }
}

/* Layer i over steps [t0, t1) of x. */
static void lstm_block(lstm_state *s, const musae_ops *ops, const float *x, int i, int64_t t0, int64_t t1) {
    const encodec_lstm *l = s->l;
    const float *in = (i ? s->out[i - 1] : x) + t0 * l->dim;
    ops->lstm(s->out[i] + t0 * l->dim, in, t1 - t0, l->dim, l->dim, l->w_ih[i], l->w_hh[i], l->b_ih[i], l->b_hh[i],
              s->h[i], s->c[i], s->work[i]);
}

/* x [t, dim] (device) → the block's output, valid until the next call. */
static const float *lstm_run(lstm_state *s, const musae_ops *ops, const float *x, int64_t t) {
    MUSAE_ASSERT(t <= s->chunk, "lstm: %lld rows > chunk %lld", (long long)t, (long long)s->chunk);
    const encodec_lstm *l = s->l;
    const int L = l->n_layers;
    const int64_t nb = (t + s->block - 1) / s->block;
    /* blocks finished per layer; a follower that finds its block not ready sleeps on `ready` (spinning
     * would take the core from the very thread it waits for when the machine is busy) */
    int done[ENCODEC_MAX_LSTM] = {0};
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
    /* thread j runs the layers i ≡ j (mod team size), blocks in order; a team of one runs them all */
#pragma omp parallel num_threads(2) if (L > 1 && nb > 1 && ops->device == MUSAE_DEVICE_CPU)
    {
        const int nt = omp_get_num_threads(), me = omp_get_thread_num();
        for (int64_t b = 0; b < nb; b++)
            for (int i = me; i < L; i += nt) {
                if (i > 0 && __atomic_load_n(&done[i - 1], __ATOMIC_ACQUIRE) <= b) {
                    pthread_mutex_lock(&mu);
                    while (__atomic_load_n(&done[i - 1], __ATOMIC_ACQUIRE) <= b) pthread_cond_wait(&ready, &mu);
                    pthread_mutex_unlock(&mu);
                }
                lstm_block(s, ops, x, i, b * s->block, min64(t, (b + 1) * s->block));
                if (nt > 1) {
                    pthread_mutex_lock(&mu); /* under the lock: a follower between its check and its wait */
                    __atomic_store_n(&done[i], (int)b + 1, __ATOMIC_RELEASE);
                    pthread_cond_broadcast(&ready);
                    pthread_mutex_unlock(&mu);
                } else {
                    done[i] = (int)b + 1;
                }
            }
    }
    pthread_cond_destroy(&ready);
    pthread_mutex_destroy(&mu);
    float *o = s->out[L - 1];
    ops->add(o, o, x, t * l->dim);
    return o;
}

/* ---- encoder ---------------------------------------------------------------------------------------------- */

struct encodec_encoder {
    const encodec *m;
    stream front, back;
    lstm_state lstm;
    int64_t chunk;
    float *frames, *emb;       /* device [2·chunk, lstm dim], [chunk, dim] */
    int64_t pending;           /* rows of frames waiting for the LSTM */
    float *resid, *dist_dev;   /* device [chunk, dim], [chunk, codebook_size] */
    float *resid_h, *dist_h;   /* host copies */
    int64_t *codes;            /* host [frames, n_q] while encoding, [n_q, frames] after finish */
    float *emb_keep;           /* host [frames, dim] (keep_embeddings) */
    int64_t n_frames, cap_frames;
    int keep, finished;
};

encodec_encoder *encodec_encoder_new(const encodec *m, int chunk_frames, int keep_embeddings) {
    encodec_encoder *e = musae_xcalloc(1, sizeof *e);
    e->m = m;
    e->chunk = chunk_frames > 0 ? chunk_frames : DEFAULT_CHUNK_FRAMES;
    e->keep = keep_embeddings;
    stream_init(&e->front, m, &m->enc_front, e->chunk);
    stream_init(&e->back, m, &m->enc_back, e->chunk);
    lstm_init(&e->lstm, m, &m->enc_lstm, 2 * e->chunk);
    e->frames = encodec_pool_get(m->pool, (size_t)(2 * e->chunk * m->enc_lstm.dim) * sizeof(float));
    e->emb = encodec_pool_get(m->pool, (size_t)(e->chunk * m->dim) * sizeof(float));
    e->resid = encodec_pool_get(m->pool, (size_t)(e->chunk * m->dim) * sizeof(float));
    e->dist_dev = encodec_pool_get(m->pool, (size_t)(e->chunk * m->codebook_size) * sizeof(float));
    e->resid_h = musae_xmalloc((size_t)(e->chunk * m->dim) * sizeof(float));
    e->dist_h = musae_xmalloc((size_t)(e->chunk * m->codebook_size) * sizeof(float));
    return e;
}

/* Residual vector quantization of n embedding rows (HF EncodecResidualVectorQuantizer.encode): per
 * codebook, the nearest code by squared L2 (ties to the lower index, as torch's max), subtract, repeat.
 * ‖r‖² is the same for every code of a row, so only ‖E‖² − 2 r·E is compared. */
static void rvq_encode(encodec_encoder *e, int64_t n) {
    const encodec *m = e->m;
    const musae_ops *ops = m->ops;
    const int64_t S = m->codebook_size, D = m->dim;
    if (e->n_frames + n > e->cap_frames) {
        e->cap_frames = max64(2 * e->cap_frames, e->n_frames + n);
        e->codes = musae_xrealloc(e->codes, (size_t)(e->cap_frames * m->n_q) * sizeof(int64_t));
        if (e->keep) e->emb_keep = musae_xrealloc(e->emb_keep, (size_t)(e->cap_frames * D) * sizeof(float));
    }
    ops->download(e->resid_h, e->emb, (size_t)(n * D) * sizeof(float));
    if (e->keep) memcpy(e->emb_keep + e->n_frames * D, e->resid_h, (size_t)(n * D) * sizeof(float));
    for (int q = 0; q < m->n_q; q++) {
        const float *E = m->codebooks_host + (size_t)q * S * D, *sq = m->codebook_sq + (size_t)q * S;
        ops->upload(e->resid, e->resid_h, (size_t)(n * D) * sizeof(float));
        ops->gemm(0, 1, n, S, D, 1.0f, e->resid, D, m->codebooks + (size_t)q * S * D, D, 0.0f, e->dist_dev, S);
        ops->download(e->dist_h, e->dist_dev, (size_t)(n * S) * sizeof(float));
        for (int64_t f = 0; f < n; f++) {
            const float *dot = e->dist_h + f * S;
            int64_t best = 0;
            float bd = sq[0] - 2.0f * dot[0];
            for (int64_t c = 1; c < S; c++) {
                float d = sq[c] - 2.0f * dot[c];
                if (d < bd) bd = d, best = c;
            }
            e->codes[(e->n_frames + f) * m->n_q + q] = best;
            float *r = e->resid_h + f * D;
            for (int64_t j = 0; j < D; j++) r[j] -= E[best * D + j];
        }
    }
    e->n_frames += n;
}

/* The front's windows are collected until a chunk's worth is waiting (or the input ended) and the LSTM runs
 * over all of them at once: each LSTM call ends with the wavefront's follower alone for a block, so fewer,
 * longer calls leave the second thread idle less (10 s: two calls instead of three). */
static void encoder_drain(encodec_encoder *e) {
    const musae_ops *ops = e->m->ops;
    const int64_t dim = e->m->enc_lstm.dim;
    for (;;) {
        int64_t k = 0, ran = 0;
        if (e->pending < e->chunk) { /* room for a window of up to chunk rows */
            k = stream_pull(&e->front, e->frames + e->pending * dim);
            e->pending += k;
        }
        const int front_done = stream_done(&e->front);
        if (e->pending >= e->chunk || (front_done && e->pending > 0)) {
            const float *y = lstm_run(&e->lstm, ops, e->frames, e->pending);
            stream_push(&e->back, y, e->pending, 0);
            e->pending = 0;
            ran = 1;
        } else if (front_done && e->back.total < 0) {
            stream_end(&e->back);
        }
        int64_t j, any = 0;
        while ((j = stream_pull(&e->back, e->emb)) > 0) {
            rvq_encode(e, j);
            any = 1;
        }
        if (k == 0 && !ran && !any) break;
    }
}

void encodec_encoder_push(encodec_encoder *e, const float *x, int64_t n) {
    MUSAE_ASSERT(!e->finished, "encodec_encoder_push after finish");
    /* pieces of about one window, so the input buffer never holds much more than a window */
    const int64_t piece = e->chunk * e->m->hop;
    for (int64_t off = 0; off < n; off += piece) {
        stream_push(&e->front, x + off, min64(piece, n - off), 1);
        encoder_drain(e);
    }
}

void encodec_encoder_finish(encodec_encoder *e) {
    MUSAE_ASSERT(!e->finished, "encodec_encoder_finish twice");
    MUSAE_ASSERT(e->front.in_first + e->front.in_n > 0, "encodec: no samples to encode");
    stream_end(&e->front);
    encoder_drain(e);
    MUSAE_ASSERT(stream_done(&e->front) && stream_done(&e->back), "encodec: encoder streams not drained");
    /* [frames, n_q] → [n_q, frames] */
    const int64_t F = e->n_frames, Q = e->m->n_q;
    int64_t *t = musae_xmalloc((size_t)(F * Q > 0 ? F * Q : 1) * sizeof(int64_t));
    for (int64_t f = 0; f < F; f++)
        for (int64_t q = 0; q < Q; q++) t[q * F + f] = e->codes[f * Q + q];
    free(e->codes);
    e->codes = t;
    e->finished = 1;
}

int64_t encodec_encoder_frames(const encodec_encoder *e) { return e->n_frames; }
const int64_t *encodec_encoder_codes(const encodec_encoder *e) {
    MUSAE_ASSERT(e->finished, "encodec_encoder_codes before finish");
    return e->codes;
}
const float *encodec_encoder_embeddings(const encodec_encoder *e) { return e->emb_keep; }

void encodec_encoder_free(encodec_encoder *e) {
    if (!e) return;
    stream_free(&e->front);
    stream_free(&e->back);
    lstm_free(&e->lstm, e->m);
    const encodec *m = e->m;
    encodec_pool_put(m->pool, e->frames, (size_t)(2 * e->chunk * m->enc_lstm.dim) * sizeof(float));
    encodec_pool_put(m->pool, e->emb, (size_t)(e->chunk * m->dim) * sizeof(float));
    encodec_pool_put(m->pool, e->resid, (size_t)(e->chunk * m->dim) * sizeof(float));
    encodec_pool_put(m->pool, e->dist_dev, (size_t)(e->chunk * m->codebook_size) * sizeof(float));
    free(e->resid_h);
    free(e->dist_h);
    free(e->codes);
    free(e->emb_keep);
    free(e);
}

int64_t *encodec_encode(const encodec *m, const float *x, int64_t n, int64_t *frames) {
    encodec_encoder *e = encodec_encoder_new(m, 0, 0);
    encodec_encoder_push(e, x, n);
    encodec_encoder_finish(e);
    *frames = e->n_frames;
    int64_t *codes = e->codes;
    e->codes = NULL;
    encodec_encoder_free(e);
    return codes;
}

/* ---- decoder ---------------------------------------------------------------------------------------------- */

/* Every output row the back stack can compute from its input so far, to the sink. */
static void drain_back(stream *back, float *y, float *yh, encodec_sink sink, void *ctx) {
    int64_t k;
    while ((k = stream_pull(back, y)) > 0) {
        back->m->ops->download(yh, y, (size_t)k * sizeof(float));
        sink(ctx, yh, k);
    }
}

void encodec_decode(const encodec *m, const int64_t *codes, int64_t frames, int chunk_frames, encodec_sink sink,
                    void *ctx) {
    const musae_ops *ops = m->ops;
    const int64_t chunk = chunk_frames > 0 ? chunk_frames : DEFAULT_CHUNK_FRAMES, D = m->dim;
    const int64_t S = m->codebook_size, Q = m->n_q;
    MUSAE_ASSERT(frames > 0, "encodec_decode: %lld frames", (long long)frames);
    for (int64_t i = 0; i < Q * frames; i++)
        MUSAE_ASSERT(codes[i] >= 0 && codes[i] < S, "encodec_decode: code %lld at [%lld, %lld] outside [0, %lld)",
                     (long long)codes[i], (long long)(i / frames), (long long)(i % frames), (long long)S);
    stream front, back;
    stream_init(&front, m, &m->dec_front, chunk);
    stream_init(&back, m, &m->dec_back, chunk * m->hop);
    lstm_state lstm;
    lstm_init(&lstm, m, &m->dec_lstm, chunk);
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
    for (int64_t f0 = 0; f0 < frames || !stream_done(&back);) {
        if (f0 < frames) {
            /* RVQ decode: the sum of each codebook's vectors (HF EncodecResidualVectorQuantizer.decode) */
            int64_t n = min64(chunk, frames - f0);
            for (int64_t q = 0; q < Q; q++) {
                ops->upload(ids, codes + q * frames + f0, (size_t)n * sizeof(int64_t));
                ops->embedding(emb, m->codebooks + q * S * D, S, D, ids, n, q > 0);
            }
            stream_push(&front, emb, n, 0);
            f0 += n;
            if (f0 == frames) stream_end(&front);
        }
        int64_t k;
        while ((k = stream_pull(&front, x)) > 0) {
            const float *ly = NULL;
            if (pending) {
#pragma omp parallel sections num_threads(2)
                {
#pragma omp section
                    ly = lstm_run(&lstm, ops, x, k);
#pragma omp section
                    drain_back(&back, y, yh, sink, ctx);
                }
                pending = 0;
            } else {
                ly = lstm_run(&lstm, ops, x, k);
            }
            stream_push(&back, ly, k, 0);
        }
        if (pending) drain_back(&back, y, yh, sink, ctx); /* nothing came out of the front this time */
        pending = 0;
        if (stream_done(&front) && back.total < 0) stream_end(&back);
        if (overlap && !stream_done(&front)) pending = 1;
        else drain_back(&back, y, yh, sink, ctx);
    }
    stream_free(&front);
    stream_free(&back);
    lstm_free(&lstm, m);
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
    collect_ctx c = {.out = musae_xmalloc((size_t)(frames * m->hop) * sizeof(float))};
    encodec_decode(m, codes, frames, 0, collect, &c);
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
