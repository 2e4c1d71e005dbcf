/* CLAP's audio encoder: HTSAT (ClapAudioEncoder, a Swin transformer over the folded log-mel image). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "model/clap.h"

#define BN_EPS 1e-5f /* nn.BatchNorm2d's default; HF does not configure it */

/* Mask region of a coordinate in the shifted image, as HF's get_attn_mask: 0 before g - ws, 1 up to g - shift,
 * 2 after. */
static int region(int h, int g, int ws, int shift) { return (h >= g - ws) + (h >= g - shift); }

/* Bias of one block: the table gathered into [heads, T, T] (HF's relative_position_index), then one copy per
 * window type with the -100 mask of that type added. */
static float *block_bias(musae_st *st, const char *p, int heads, int ws, int g, int shift, int *n_types) {
    const int T = ws * ws, R = 2 * ws - 1;
    char name[256];
    snprintf(name, sizeof name, "%s.attention.self.relative_position_bias_table", p);
    const int64_t tshape[2] = {(int64_t)R * R, heads};
    float *table = musae_clap_load_host(st, name, 2, tshape);
    snprintf(name, sizeof name, "%s.attention.self.relative_position_index", p);
    int64_t *index = NULL;
    if (musae_st_find(st, name)) {
        const int64_t ishape[2] = {T, T};
        index = musae_st_load(st, name, MUSAE_I64, 2, ishape);
    }
    *n_types = shift ? 4 : 1;
    float *bias = musae_xmalloc((size_t)*n_types * heads * T * T * sizeof *bias);
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) {
            const int rel = (i / ws - j / ws + ws - 1) * R + (i % ws - j % ws + ws - 1);
            if (index && index[i * T + j] != rel)
                musae_fail("%s: tensor '%s' element [%d, %d] is %lld, want %d (window %d)", st->path, name, i, j,
                           (long long)index[i * T + j], rel, ws);
            for (int h = 0; h < heads; h++) bias[((size_t)h * T + i) * T + j] = table[rel * heads + h];
        }
    for (int t = 1; t < *n_types; t++) {
        /* a representative window of type t: last row if t & 2, last column if t & 1 */
        const int wh = (t & 2) ? g / ws - 1 : 0, ww = (t & 1) ? g / ws - 1 : 0;
        for (int i = 0; i < T; i++)
            for (int j = 0; j < T; j++) {
                const int ri = region(wh * ws + i / ws, g, ws, shift) * 3 + region(ww * ws + i % ws, g, ws, shift);
                const int rj = region(wh * ws + j / ws, g, ws, shift) * 3 + region(ww * ws + j % ws, g, ws, shift);
                for (int h = 0; h < heads; h++)
                    bias[(((size_t)t * heads + h) * T + i) * T + j] =
                        bias[((size_t)h * T + i) * T + j] + (ri != rj ? -100.0f : 0.0f);
            }
    }
    free(table);
    free(index);
    return bias;
}

void musae_clap_htsat_load(musae_clap_htsat *a, musae_st *st, const musae_clap_audio_config *c, const musae_ops *ops) {
    memset(a, 0, sizeof *a);
    const char *E = "audio_model.audio_encoder";
    char name[256];
    const int64_t M = c->n_mels, mshape[1] = {M};
    float *bw, *bb, *rm, *rv;
#define BN(var, suffix) (snprintf(name, sizeof name, "%s.batch_norm.%s", E, suffix), var = musae_clap_load_host(st, name, 1, mshape))
    BN(bw, "weight"), BN(bb, "bias"), BN(rm, "running_mean"), BN(rv, "running_var");
#undef BN
    snprintf(name, sizeof name, "%s.batch_norm.num_batches_tracked", E);
    musae_st_find(st, name); /* a training counter: nothing to check */
    /* eval BatchNorm as torch computes it: alpha = w / sqrt(var + eps), beta = b - mean·alpha, y = x·alpha + beta */
    a->bn_scale = musae_xmalloc((size_t)M * sizeof *a->bn_scale);
    a->bn_shift = musae_xmalloc((size_t)M * sizeof *a->bn_shift);
    for (int64_t m = 0; m < M; m++) {
        if (!(rv[m] >= 0)) musae_fail("%s: %s.batch_norm.running_var[%lld] is negative", st->path, E, (long long)m);
        const float invstd = 1.0f / sqrtf(rv[m] + BN_EPS);
        a->bn_scale[m] = invstd * bw[m];
        a->bn_shift[m] = bb[m] - rm[m] * a->bn_scale[m];
    }
    free(bw), free(bb), free(rm), free(rv);

    const int64_t P = c->patch, Ed = c->embed_dim;
    const int64_t pshape[4] = {Ed, 1, P, P};
    snprintf(name, sizeof name, "%s.patch_embed.proj.weight", E);
    a->patch_w = musae_clap_to_dev(ops, musae_clap_load_host(st, name, 4, pshape), Ed * P * P);
    a->patch_b = musae_clap_load_sub(ops, st, E, "patch_embed.proj.bias", Ed, 0);
    a->patch_ln_w = musae_clap_load_sub(ops, st, E, "patch_embed.norm.weight", Ed, 0);
    a->patch_ln_b = musae_clap_load_sub(ops, st, E, "patch_embed.norm.bias", Ed, 0);

    a->stages = musae_xcalloc((size_t)c->n_stages, sizeof *a->stages);
    int g = c->spec_size / c->patch;
    for (int s = 0; s < c->n_stages; s++) {
        musae_clap_stage *S = &a->stages[s];
        const int64_t C = Ed << s, Mh = c->mlp_hidden[s];
        S->H = S->W = g, S->dim = (int)C, S->heads = c->heads[s], S->window = c->window;
        S->blocks = musae_xcalloc((size_t)c->depths[s], sizeof *S->blocks);
        for (int j = 0; j < c->depths[s]; j++) {
            musae_clap_swin_block *b = &S->blocks[j];
            char p[160];
            snprintf(p, sizeof p, "%s.layers.%d.blocks.%d", E, s, j);
            /* odd blocks shift by half a window, except where the grid is one window (HF sets it to 0) */
            b->shift = (j % 2 && g > c->window) ? c->window / 2 : 0;
            b->ln1_w = musae_clap_load_sub(ops, st, p, "layernorm_before.weight", C, 0);
            b->ln1_b = musae_clap_load_sub(ops, st, p, "layernorm_before.bias", C, 0);
            musae_clap_load_qkv(ops, st, p, C, &b->qkv_w, &b->qkv_b);
            b->o_w = musae_clap_load_sub(ops, st, p, "attention.output.dense.weight", C, C);
            b->o_b = musae_clap_load_sub(ops, st, p, "attention.output.dense.bias", C, 0);
            b->ln2_w = musae_clap_load_sub(ops, st, p, "layernorm_after.weight", C, 0);
            b->ln2_b = musae_clap_load_sub(ops, st, p, "layernorm_after.bias", C, 0);
            b->fc1_w = musae_clap_load_sub(ops, st, p, "intermediate.dense.weight", Mh, C);
            b->fc1_b = musae_clap_load_sub(ops, st, p, "intermediate.dense.bias", Mh, 0);
            b->fc2_w = musae_clap_load_sub(ops, st, p, "output.dense.weight", C, Mh);
            b->fc2_b = musae_clap_load_sub(ops, st, p, "output.dense.bias", C, 0);
            float *bias = block_bias(st, p, S->heads, c->window, g, b->shift, &b->n_types);
            const int64_t T = (int64_t)c->window * c->window;
            b->bias = musae_clap_to_dev(ops, bias, b->n_types * S->heads * T * T);
        }
        if (s + 1 < c->n_stages) {
            char p[160];
            snprintf(p, sizeof p, "%s.layers.%d.downsample", E, s);
            S->merge_ln_w = musae_clap_load_sub(ops, st, p, "norm.weight", 4 * C, 0);
            S->merge_ln_b = musae_clap_load_sub(ops, st, p, "norm.bias", 4 * C, 0);
            S->merge_w = musae_clap_load_sub(ops, st, p, "reduction.weight", 2 * C, 4 * C);
            g /= 2;
        }
    }
    a->norm_w = musae_clap_load_sub(ops, st, E, "norm.weight", c->hidden, 0);
    a->norm_b = musae_clap_load_sub(ops, st, E, "norm.bias", c->hidden, 0);
}

void musae_clap_htsat_free(musae_clap_htsat *a, const musae_clap_audio_config *c, const musae_ops *ops) {
    for (int s = 0; s < c->n_stages; s++) {
        musae_clap_stage *S = &a->stages[s];
        for (int j = 0; S->blocks && j < c->depths[s]; j++) {
            musae_clap_swin_block *b = &S->blocks[j];
            float *ws[] = {b->ln1_w, b->ln1_b, b->qkv_w, b->qkv_b, b->o_w, b->o_b, b->ln2_w,
                           b->ln2_b, b->fc1_w, b->fc1_b, b->fc2_w, b->fc2_b, b->bias};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
                if (ws[i]) ops->free(ws[i]);
        }
        free(S->blocks);
        float *ms[] = {S->merge_ln_w, S->merge_ln_b, S->merge_w};
        for (int i = 0; i < 3; i++)
            if (ms[i]) ops->free(ms[i]);
    }
    free(a->stages);
    float *ws[] = {a->patch_w, a->patch_b, a->patch_ln_w, a->patch_ln_b, a->norm_w, a->norm_b};
    for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
        if (ws[i]) ops->free(ws[i]);
    free(a->bn_scale), free(a->bn_shift);
    memset(a, 0, sizeof *a);
}

/* torch's upsample_bicubic2d weights (A = -0.75) at fraction t, for taps at -1, 0, +1, +2 */
static void cubic_weights(float t, float w[4]) {
    const float A = -0.75f;
    float x = t + 1.0f;
    w[0] = ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
    x = t;
    w[1] = ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
    x = 1.0f - t;
    w[2] = ((A + 2.0f) * x - (A + 3.0f)) * x * x + 1.0f;
    x = 2.0f - t;
    w[3] = ((A * x - 5.0f * A) * x + 8.0f * A) * x - 4.0f * A;
}

/* One clip's features [frames, mels] → its patches [G·G, p·p]: BatchNorm, bicubic time interpolation
 * (align_corners), the fold of r time chunks along frequency, patch extraction in the conv's order. The
 * frequency axis keeps its size, so torch's 2-D bicubic reduces to the 1-D one along time exactly (its
 * frequency weights are 0, 1, 0, 0). */
static void build_patches(const musae_clap_htsat *a, const musae_clap_audio_config *c, const float *feat,
                          int64_t frames, float *patches) {
    const int M = c->n_mels, r = c->freq_ratio, Wt = c->spec_size * r, S = c->spec_size, P = c->patch;
    float *y = musae_xmalloc((size_t)frames * M * sizeof *y), *z = musae_xmalloc((size_t)Wt * M * sizeof *z);
    for (int64_t t = 0; t < frames; t++)
        for (int m = 0; m < M; m++) y[t * M + m] = feat[t * M + m] * a->bn_scale[m] + a->bn_shift[m];
    if (frames == Wt) {
        memcpy(z, y, (size_t)Wt * M * sizeof *z);
    } else {
        /* torch: scale = (in - 1) / (out - 1) in float, src = scale · i, taps clamped to the input */
        const float scale = Wt > 1 ? (float)(frames - 1) / (float)(Wt - 1) : 0.0f;
        for (int i = 0; i < Wt; i++) {
            const float src = scale * (float)i;
            const int64_t i0 = (int64_t)floorf(src);
            float w[4];
            cubic_weights(src - (float)i0, w);
            int64_t idx[4];
            for (int k = 0; k < 4; k++) {
                int64_t q = i0 - 1 + k;
                idx[k] = q < 0 ? 0 : q > frames - 1 ? frames - 1 : q;
            }
            for (int m = 0; m < M; m++)
                z[(int64_t)i * M + m] = y[idx[0] * M + m] * w[0] + y[idx[1] * M + m] * w[1] +
                                        y[idx[2] * M + m] * w[2] + y[idx[3] * M + m] * w[3];
        }
    }
    /* image[ch·M + f][w] = z[ch·(Wt/r) + w][f]; patch (i, j) pixel (u, v) = image[i·P + u][j·P + v] */
    const int G = S / P, Tc = Wt / r;
    for (int i = 0; i < G; i++)
        for (int j = 0; j < G; j++)
            for (int u = 0; u < P; u++)
                for (int v = 0; v < P; v++) {
                    const int row = i * P + u, col = j * P + v, ch = row / M, f = row % M;
                    patches[((int64_t)(i * G + j) * P + u) * P + v] = z[(int64_t)(ch * Tc + col) * M + f];
                }
    free(y);
    free(z);
}

/* Window order of one block for B clips of a g×g grid: rows grouped by window type, then clip, then window
 * (row-major), then token; src[r] is the token (b·g² + h·g + w) that window row r reads after the cyclic
 * shift; counts[t] = windows of type t per clip. */
static void window_order(int64_t B, int g, int ws, int shift, int64_t *src, int64_t counts[4]) {
    const int nw = g / ws, n_types = shift ? 4 : 1;
    int64_t r = 0;
    for (int t = 0; t < n_types; t++) {
        counts[t] = 0;
        for (int64_t b = 0; b < B; b++)
            for (int wh = 0; wh < nw; wh++)
                for (int ww = 0; ww < nw; ww++) {
                    const int type = shift ? (wh == nw - 1) * 2 + (ww == nw - 1) : 0;
                    if (type != t) continue;
                    if (b == 0) counts[t]++;
                    for (int u = 0; u < ws; u++)
                        for (int v = 0; v < ws; v++) {
                            const int h = (wh * ws + u + shift) % g, w = (ww * ws + v + shift) % g;
                            src[r++] = b * g * g + (int64_t)h * g + w;
                        }
                }
    }
    MUSAE_ASSERT(r == B * g * g, "window order covers %lld of %lld rows", (long long)r, (long long)(B * g * g));
}

static int64_t *upload_ids(const musae_ops *ops, const int64_t *host, int64_t n) {
    int64_t *d = ops->alloc((size_t)n * sizeof *d);
    ops->upload(d, host, (size_t)n * sizeof *d);
    return d;
}

void musae_clap_htsat_forward(const musae_clap_htsat *a, const musae_clap_audio_config *c, const musae_ops *ops,
                              const float *features, int64_t B, int64_t frames, float *pooled) {
    const int P = c->patch, G = c->spec_size / P;
    const int64_t L0 = (int64_t)G * G, N0 = B * L0, Ed = c->embed_dim, M = c->n_mels;
    MUSAE_ASSERT(frames <= (int64_t)c->spec_size * c->freq_ratio, "HTSAT: %lld frames", (long long)frames);

    float *patches = musae_xmalloc((size_t)(N0 * P * P) * sizeof *patches);
    for (int64_t b = 0; b < B; b++) build_patches(a, c, features + b * frames * M, frames, patches + b * L0 * P * P);
    float *d_patches = musae_clap_to_dev(ops, patches, N0 * P * P);

    /* buffers sized for stage 0 (the widest in rows·width: merging halves rows·width each stage) */
    int64_t mlp_max = 0;
    for (int s = 0; s < c->n_stages; s++) {
        const int64_t rows_w = (N0 >> (2 * s)) * c->mlp_hidden[s];
        if (rows_w > mlp_max) mlp_max = rows_w;
    }
    const size_t act = (size_t)(N0 * Ed) * sizeof(float);
    float *x = ops->alloc(act), *ln = ops->alloc(act), *win = ops->alloc(act), *att = ops->alloc(act);
    float *qkv = ops->alloc(3 * act), *h1 = ops->alloc((size_t)mlp_max * sizeof(float));
    ops->linear(ln, d_patches, a->patch_w, a->patch_b, N0, Ed, (int64_t)P * P, 0.0f);
    ops->layernorm(x, ln, a->patch_ln_w, a->patch_ln_b, N0, Ed, c->ln_eps);
    ops->free(d_patches);

    int64_t *src = musae_xmalloc((size_t)N0 * sizeof *src), *inv = musae_xmalloc((size_t)N0 * sizeof *inv);
    for (int s = 0; s < c->n_stages; s++) {
        const musae_clap_stage *S = &a->stages[s];
        const int g = S->H, ws = S->window, T = ws * ws;
        const int64_t C = S->dim, L = (int64_t)g * g, N = B * L, Mh = c->mlp_hidden[s], dh = C / S->heads;
        int64_t *d_src[2] = {NULL, NULL}, *d_inv[2] = {NULL, NULL}, counts[2][4];
        for (int j = 0; j < c->depths[s]; j++) {
            const musae_clap_swin_block *b = &S->blocks[j];
            const int k = b->shift != 0;
            if (!d_src[k]) { /* the two orders of this stage (unshifted, shifted), built on first use */
                window_order(B, g, ws, b->shift, src, counts[k]);
                for (int64_t r = 0; r < N; r++) inv[src[r]] = r;
                d_src[k] = upload_ids(ops, src, N), d_inv[k] = upload_ids(ops, inv, N);
            }
            ops->layernorm(ln, x, b->ln1_w, b->ln1_b, N, C, c->ln_eps);
            ops->embedding(win, ln, N, C, d_src[k], N, 0); /* roll + window partition */
            ops->linear(qkv, win, b->qkv_w, b->qkv_b, N, 3 * C, C, 0.0f);
            int64_t row = 0;
            for (int t = 0; t < b->n_types; t++) {
                const int64_t nb = B * counts[k][t];
                if (!nb) continue;
                const musae_attn_params ap = {
                    .batch = nb, .heads = S->heads, .tq = T, .tk = T, .dh = dh,
                    .q_sb = T * 3 * C, .q_st = 3 * C, .k_sb = T * 3 * C, .k_st = 3 * C, .v_sb = T * 3 * C,
                    .v_st = 3 * C, .o_sb = T * C, .o_st = C, .scale = (float)(1.0 / sqrt((double)dh)),
                    .causal = 0, .q_pos0 = 0, .bias = b->bias + (int64_t)t * S->heads * T * T, .bias_tk = T,
                    .key_mask = NULL,
                };
                float *q = qkv + row * 3 * C;
                ops->attention(att + row * C, q, q + C, q + 2 * C, &ap);
                row += nb * T;
            }
            ops->linear(win, att, b->o_w, b->o_b, N, C, C, 0.0f);
            ops->embedding(ln, win, N, C, d_inv[k], N, 0); /* window reverse + roll back */
            ops->add(x, x, ln, N * C);
            ops->layernorm(ln, x, b->ln2_w, b->ln2_b, N, C, c->ln_eps);
            ops->linear(h1, ln, b->fc1_w, b->fc1_b, N, Mh, C, 0.0f);
            ops->gelu(h1, h1, N * Mh);
            ops->linear(x, h1, b->fc2_w, b->fc2_b, N, C, Mh, 1.0f); /* x += W2·h + b2 */
        }
        for (int k = 0; k < 2; k++)
            if (d_src[k]) ops->free(d_src[k]), ops->free(d_inv[k]);
        if (s + 1 < c->n_stages) {
            /* patch merging: token (i, j) of the g/2 grid ← (2i, 2j), (2i+1, 2j), (2i, 2j+1), (2i+1, 2j+1) */
            const int h2 = g / 2;
            int64_t r = 0;
            for (int64_t bb = 0; bb < B; bb++)
                for (int i = 0; i < h2; i++)
                    for (int j = 0; j < h2; j++)
                        for (int q = 0; q < 4; q++)
                            src[r++] = bb * L + (int64_t)(2 * i + (q & 1)) * g + (2 * j + (q >> 1));
            int64_t *d_m = upload_ids(ops, src, N);
            ops->embedding(win, x, N, C, d_m, N, 0); /* [N/4, 4C] */
            ops->layernorm(ln, win, S->merge_ln_w, S->merge_ln_b, N / 4, 4 * C, c->ln_eps);
            ops->linear(x, ln, S->merge_w, NULL, N / 4, 2 * C, 4 * C, 0.0f);
            ops->free(d_m);
        }
    }
    /* final LayerNorm, then the mean over every token of a clip (AdaptiveAvgPool1d over the regrouped map) */
    const musae_clap_stage *last = &a->stages[c->n_stages - 1];
    const int64_t L = (int64_t)last->H * last->W, C = c->hidden;
    ops->layernorm(ln, x, a->norm_w, a->norm_b, B * L, C, c->ln_eps);
    float *ones = musae_xmalloc((size_t)L * sizeof *ones);
    for (int64_t i = 0; i < L; i++) ones[i] = 1.0f;
    float *d_ones = musae_clap_to_dev(ops, ones, L);
    for (int64_t b = 0; b < B; b++)
        ops->gemm(0, 0, 1, C, L, 1.0f / (float)L, d_ones, L, ln + b * L * C, C, 0.0f, pooled + b * C, C);
    ops->free(d_ones);
    float *bufs[] = {x, ln, win, att, qkv, h1};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) ops->free(bufs[i]);
    free(src), free(inv);
}
