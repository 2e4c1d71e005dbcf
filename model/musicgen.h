/* MusicGen's decoder LM (HF MusicgenForCausalLM inside MusicgenForConditionalGeneration), written once
 * against the kernels/ops.h table. Exact semantics: ../shared/reference/musicgen.md §1.
 *
 *   x      = Σ_k embed_tokens[k](ids[:, k, :]) + pos[position]     cos-first sinusoid, position = step index
 *   layer  x += SelfAttn(LN(x))   causal, K/V cached
 *          x += CrossAttn(LN(x), text)   rows with text only; the encoder mask hides padded text positions
 *          x += fc2(gelu(fc1(LN(x))))    exact erf GELU
 *          hooks of this layer run here (residual stream after the layer, before the next one)
 *   logits[:, k] = lm_heads[k](LN_final(x))
 * All LayerNorms have eps 1e-5 and a bias; no linear layer has a bias.
 *
 * Rows. A state runs `batch` rows in lockstep (same positions). Rows [0, n_cond) are the conditional
 * branch and attend to the text states (when given); rows [n_cond, batch) are the unconditional branch of
 * classifier-free guidance and skip cross-attention entirely: HF feeds them zero states with a zero mask,
 * whose cross-attention output is exactly zero. Item i of the batch is row i and, with CFG, row n_cond + i.
 *
 * Hooks (mg_hook) read or change the residual stream after any layer, in the order given; with none, the
 * forward pays nothing for them. They are how capture (READ) and steering (ADD) see the model. */
#ifndef MUSAE_MUSICGEN_H
#define MUSAE_MUSICGEN_H

#include <stdint.h>

#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MG_LN_EPS 1e-5f

/* A linear layer's weight [n, k] (nn.Linear layout): fp32 rows (f), raw bf16 bits (b) or fp32 packed once in
 * the table's GEMM layout (p: ops->pack_weights; the CPU table in fp32); exactly one is set.
 * bf16 halves the bytes every decoding step streams (the LM is weight-bandwidth bound at small batch); the
 * rounding is done once at load (round to nearest even), activations and accumulation stay fp32. Packed, no
 * product transposes a weight panel again (kernels/cpu/gemm_nt_fma.c); the bits are those of f. */
typedef struct {
    float *f;
    uint16_t *b;
    float *p;
} mg_mat;

/* One decoder layer's weights (device pointers into mg_model.arena). H hidden, F ffn. */
typedef struct {
    float *sa_ln_w, *sa_ln_b; /* [H]      self_attn_layer_norm */
    mg_mat sa_q;              /* [H, H]   self_attn.q_proj */
    mg_mat sa_kv;             /* [2H, H]  self_attn.k_proj rows, then v_proj rows: one GEMM fills a cache row [k | v] */
    mg_mat sa_o;              /* [H, H]   self_attn.out_proj */
    float *ca_ln_w, *ca_ln_b; /* [H]      encoder_attn_layer_norm */
    mg_mat ca_q;              /* [H, H]   encoder_attn.q_proj */
    mg_mat ca_kv;             /* [2H, H]  encoder_attn.k_proj, v_proj */
    mg_mat ca_o;              /* [H, H]   encoder_attn.out_proj */
    float *ff_ln_w, *ff_ln_b; /* [H]      final_layer_norm */
    mg_mat fc1;               /* [F, H] */
    mg_mat fc2;               /* [H, F] */
} mg_layer;

typedef struct {
    musae_decoder_config cfg;
    const musae_ops *ops;
    musae_precision prec; /* of the mg_mat weights; LayerNorms, embeddings and positions are always fp32 */
    int64_t K;        /* codebooks */
    int64_t V;        /* codes per codebook (2048); the BOS/pad id is V */
    int64_t H, n_layers, n_heads, d_head, ffn;
    int64_t max_pos;  /* positions of the sinusoidal table (2048): the longest sequence */
    float *embed;     /* [K, V + 1, H]  embed_tokens.{k} */
    float *pos;       /* [max_pos, H]   computed, never loaded (HF 5.x does not save it) */
    mg_layer *layers; /* [n_layers] (host array of device pointers) */
    float *ln_w, *ln_b; /* [H] final layer_norm */
    mg_mat heads;     /* [K·V, H] lm_heads.{k} stacked: one GEMM gives logits [rows, K, V] */
    void *arena;      /* the one device allocation the weights above point into, but for the mapped ones */
    size_t arena_bytes;
    /* CPU table, fp32, where the weights are not packed (ops->packed_floats gives 0: a CPU without FMA): the
     * matrices stored as F32 that need no stacking (q, out of both attentions, fc1, fc2) are used where they
     * lie in the checkpoint, through the model's own private mappings of its files (page-cache pages: no
     * copy, no fresh memory to fault in and zero; a write copies the page and stays in the process). n_maps
     * mappings. Like any mmap, the file must not be truncated meanwhile. */
    void **maps;
    size_t *map_bytes;
    int n_maps;
    int64_t n_params; /* loaded parameters (the table of positions excluded) */
} mg_model;

/* Loads the decoder from an open checkpoint (a composite MusicGen folder: names start with "decoder.")
 * whose config was read with musae_config_load. Every tensor is checked by name and shape (fp32, fp16 or
 * bf16 stored; converted to f32), non-finite values are refused with the tensor's name, and the decoder
 * tensors no lookup used are reported. A bad checkpoint is a musae_fail naming the file and the tensor.
 * prec MUSAE_PREC_BF16 stores the mg_mat weights as bf16 (rounded on the host, RNE): the arena is then
 * about half the fp32 one (embeddings and positions stay fp32). */
void mg_load_from(mg_model *m, musae_st *st, const musae_model_config *cfg, const musae_ops *ops,
                  musae_precision prec);
/* Opens DIR (config.json + safetensors, single or sharded) and loads the decoder. */
void mg_load(mg_model *m, const char *dir, const musae_ops *ops, musae_precision prec);
/* y[rows, n] = x[rows, k] · Wᵀ + beta·y, through ops->linear (w.f), ops->linear_bf16w (w.b) or
 * ops->linear_packed (w.p). */
void mg_linear(const mg_model *m, float *y, const float *x, mg_mat w, int64_t rows, int64_t n, int64_t k, float beta);
/* mg_linear over `items` items of t rows each (x and y item after item). With t > 1 every item is a product of
 * its own, so an item's rows never depend on what else is in the batch: a GEMM's rounding depends on its row
 * count and on a row's place among them (OpenBLAS's Haswell/Zen kernels, cuBLAS's heuristics), and capture
 * promises rows independent of --batch (docs/CAPTURE.md, determinism). A decoding step's rows (t = 1) go in
 * one product. */
void mg_linear_items(const mg_model *m, float *y, const float *x, mg_mat w, int64_t items, int64_t t, int64_t n,
                     int64_t k, float beta);
void mg_free(mg_model *m);
/* A host copy of weight w [n, k] as fp32 rows, whatever its storage (tests, references); free() it. */
float *mg_mat_rows(const mg_model *m, mg_mat w, int64_t n, int64_t k);
/* The sinusoidal table exactly as HF computes it in fp32: half = H/2, freq_i = exp(i · -(ln 10000 /
 * (half - 1))), row p = [cos(p · freq), sin(p · freq)]. out is host [n, H]. */
void mg_sinusoids(float *out, int64_t n, int64_t H);

/* ---- hooks --------------------------------------------------------------------------------------------- */

typedef enum { MG_HOOK_READ = 0, MG_HOOK_ADD = 1, MG_HOOK_SET = 2, MG_HOOK_MAP = 3 } mg_hook_kind;
typedef enum { MG_BRANCH_COND = 1, MG_BRANCH_UNCOND = 2, MG_BRANCH_BOTH = 3 } mg_branch;
#define MG_POS_END INT64_MAX

/* A hook acts on the residual stream after decoder layer `layer` (0-based; -1 = the embeddings before
 * layer 0), at sequence positions [pos_begin, pos_end) of the rows of `branch` (rows [0, n_cond) for
 * COND, [n_cond, batch) for UNCOND, both for BOTH). A forward call touches the part of that range it
 * computes, so a generation loop can register one hook for all its steps.
 *   READ: copies the rows into dst, host [rows of the branch, dst_t, H]: position p of the r-th row of the
 *         branch lands at dst[(r · dst_t + p) · H]; positions >= dst_t are not copied.
 *   ADD:  x[row, p, :] += alpha · vec[item], alpha = scale · (item_scale ? item_scale[item] : 1) where item
 *         is the row's batch item (row mod n_cond); vec is on the model's device (ops->alloc + upload),
 *         [H] shared by every item (vec_n 0 or 1) or [n_cond, H] with item b's vector at vec + b·H
 *         (vec_n = n_cond): different directions for different items run in one batch (steering controls).
 *   SET:  the mirror of READ: x[row, p, :] = src[(r · src_t + p) · H ...], src host [rows of the branch, src_t,
 *         H]; positions >= src_t are left alone (splicing an SAE reconstruction in: eval/spliced.h).
 *   MAP:  x[row, p0..p1) = map(item, p0, x[row, p0..p1)) on the host: the rows are downloaded, map rewrites them in
 *         place (for example an SAE's reconstruction of each row, per item: steering's passthrough control), and
 *         they are uploaded. The host loop only (the device loop has no host round trip).
 * Hooks run in array order, so a READ after an ADD at the same layer sees the steered residual. */
typedef struct {
    mg_hook_kind kind;
    int layer;
    mg_branch branch;
    int64_t pos_begin, pos_end;
    float *dst;               /* READ */
    int64_t dst_t;
    const float *vec;         /* ADD */
    int64_t vec_n;            /* ADD: vectors in vec, 0 or 1 (shared) or n_cond (one per item) */
    float scale;
    const float *item_scale;  /* host [n_cond] or NULL */
    const float *src;         /* SET */
    int64_t src_t;
    void (*map)(void *ctx, int64_t item, int64_t pos0, float *x, int64_t n_pos, int64_t H); /* MAP */
    void *map_ctx;
} mg_hook;

/* ---- state: K/V caches and activations of one batch ------------------------------------------------------ */

typedef struct {
    int64_t batch;       /* rows of every forward call */
    int64_t n_cond;      /* rows of the conditional branch (batch = n_cond, or 2·n_cond with CFG) */
    int64_t t_max;       /* most positions the state holds */
    int64_t t_call;      /* most positions one call processes */
    int incremental;     /* 1: every layer's K/V is kept, calls continue the sequence (generation);
                            0: one layer's K/V buffer is reused and each call is a whole sequence from
                            position 0 (teacher forcing, capture): memory independent of the depth */
    int logits;          /* allocate the logits buffer */
} mg_state_opts;

typedef struct {
    mg_state_opts o;
    int64_t len;         /* positions processed (incremental): the next call starts here */
    int64_t n_text;      /* rows with text (0 or n_cond) */
    int64_t s_text;      /* text positions S */
    int64_t s_cap;       /* text positions the buffers were sized for */
    /* device buffers */
    float *self_kv;      /* [L or 1, batch, t_max, 2H]  per position: k (H) then v (H) */
    float *text_kv;      /* [L or 1, n_cond, S, 2H] */
    float *text_states;  /* [n_cond, S, H] (kept for the non-incremental per-layer recompute) */
    float *text_mask;    /* [n_cond, S] 1 = real token, 0 = padding */
    float *x;            /* [rows, H] residual stream, rows = batch · t (b-major) */
    float *h;            /* [rows, H] normed input of a sublayer */
    float *q, *attn;     /* [rows, H] */
    float *ff;           /* [rows, F] */
    float *logits;       /* [rows, K · V], i.e. [batch, t, K, V] */
    float *kv_tmp;       /* [batch, 2H] bf16 models only: one decoding step's K/V before the strided cache
                            write (linear_bf16w has no output stride) */
    int64_t *ids;        /* [K, rows] */
    int64_t *ids_host;
} mg_state;

void mg_state_init(mg_state *s, const mg_model *m, const mg_state_opts *o);
void mg_state_free(mg_state *s, const mg_model *m);
/* Forget the sequence (incremental states): the next call starts at position 0; the text stays. */
void mg_state_reset(mg_state *s);
/* Conditions rows [0, n_cond) on text: states host [n_cond, S, H] (enc_to_dec_proj(T5) · mask, as HF
 * feeds the decoder), mask host [n_cond, S] of 0/1. Incremental states compute every layer's
 * cross-attention K/V here, once. */
void mg_state_set_text(mg_state *s, const mg_model *m, const float *states, const float *mask, int64_t S);
/* Drops the text: every row skips cross-attention. */
void mg_state_clear_text(mg_state *s);

/* Runs positions [len, len + t) for every row. ids host [batch, K, t] in [0, V] (V = BOS). With
 * want_logits the final norm and heads fill s->logits [batch, t, K, V]; without, a non-incremental state
 * stops after the deepest hooked layer. */
void mg_forward(const mg_model *m, mg_state *s, const int64_t *ids, int64_t t, const mg_hook *hooks, int n_hooks,
                int want_logits);
/* A layer's feed-forward sublayer on the first items·t rows of s->x: x += fc2(gelu(fc1(LN(x)))), the products
 * per item as mg_linear_items. mg_forward and the device step (model/mg_step.c, t = 1) both run it, so the
 * two stay the same ops. */
void mg_ffn(const mg_model *m, mg_state *s, const mg_layer *w, int64_t items, int64_t t);
/* Copies s->logits of the last call (t positions) to host out [batch, K, t, V] (the forward-dump layout). */
void mg_logits_bktv(const mg_model *m, const mg_state *s, int64_t t, float *out);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_MUSICGEN_H */
