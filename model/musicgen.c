/* MusicGen decoder: loader (HF names), state (K/V caches), forward with hooks. See musicgen.h. */
#include "model/musicgen.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/core/check.h"
#include "host/core/dtype.h"
#include "host/core/log.h"
#include "kernels/cpu/cpu_ops.h"

/* ---- loading --------------------------------------------------------------------------------------------- */

void mg_sinusoids(float *out, int64_t n, int64_t H) {
    /* torch: emb = exp(arange(half).float() * -c) with c a Python double applied in fp32, then
     * arange(n).float()[:, None] * emb, then cat(cos, sin) — every step rounded to fp32 as here */
    const int64_t half = H / 2;
    MUSAE_ASSERT(half >= 2, "hidden size %lld too small for the sinusoidal table", (long long)H);
    const float negc = (float)-(log(10000.0) / (double)(half - 1));
    for (int64_t i = 0; i < half; i++) {
        const float freq = expf((float)i * negc);
        for (int64_t p = 0; p < n; p++) {
            const float arg = (float)p * freq;
            out[p * H + i] = cosf(arg);
            out[p * H + half + i] = sinf(arg);
        }
    }
    if (H % 2)
        for (int64_t p = 0; p < n; p++) out[p * H + H - 1] = 0.0f;
}

/* Hands out 64-byte aligned pieces of the weight arena; with base == NULL it only counts (sizing pass). */
typedef struct loader loader;
typedef struct {
    char *base;
    size_t off;
    musae_precision prec; /* of the mg_mat weights */
    loader *ld;           /* resolves matrices used in place (in_place) */
    const musae_ops *ops; /* packs fp32 matrices where it can (carve_mat) */
} carver;

static float *in_place(loader *ld, const char *name, int64_t n);

static void *carve_bytes(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->off : NULL;
    c->off += (bytes + 63) / 64 * 64;
    return p;
}

static float *carve(carver *c, int64_t n) { return carve_bytes(c, (size_t)n * sizeof(float)); }

/* A matrix of rows × k stacked from parts of part_rows rows (K and V: two of H; the heads: K of V; else one).
 * In fp32 on a table that packs weights (ops->packed_floats) it is held packed, provided each part starts a
 * panel of its own (a part packs like a whole matrix: packed_floats(part_rows, k) = part_rows · k), so part i
 * lies at element i · part_rows · k in either layout. Otherwise the arena holds its rows or, with a name the
 * loader can map (see in_place), none of the arena. */
static mg_mat carve_mat(carver *c, int64_t rows, int64_t k, int64_t part_rows, const char *name) {
    mg_mat w = {NULL, NULL, NULL};
    const musae_ops *ops = c->ops;
    if (c->prec == MUSAE_PREC_FP32 && ops->packed_floats) {
        const int64_t np = ops->packed_floats(rows, k);
        if (np > 0 && (part_rows == rows || ops->packed_floats(part_rows, k) == part_rows * k)) {
            w.p = carve(c, np);
            return w;
        }
    }
    if (name && (w.f = in_place(c->ld, name, rows * k))) return w;
    if (c->prec == MUSAE_PREC_BF16)
        w.b = carve_bytes(c, (size_t)(rows * k) * sizeof(uint16_t));
    else
        w.f = carve(c, rows * k);
    return w;
}

static void carve_all(mg_model *m, carver *c) {
    const int64_t H = m->H, F = m->ffn;
    m->embed = carve(c, m->K * (m->V + 1) * H);
    m->pos = carve(c, m->max_pos * H);
    char n[5][160];
    for (int64_t l = 0; l < m->n_layers; l++) {
        mg_layer *w = &m->layers[l];
        const char *sub[5] = {"self_attn.q_proj", "self_attn.out_proj", "encoder_attn.q_proj", "encoder_attn.out_proj",
                              "fc1"};
        for (int i = 0; i < 5; i++)
            snprintf(n[i], sizeof n[i], "decoder.model.decoder.layers.%lld.%s.weight", (long long)l, sub[i]);
        w->sa_ln_w = carve(c, H), w->sa_ln_b = carve(c, H);
        w->sa_q = carve_mat(c, H, H, H, n[0]), w->sa_kv = carve_mat(c, 2 * H, H, H, NULL);
        w->sa_o = carve_mat(c, H, H, H, n[1]);
        w->ca_ln_w = carve(c, H), w->ca_ln_b = carve(c, H);
        w->ca_q = carve_mat(c, H, H, H, n[2]), w->ca_kv = carve_mat(c, 2 * H, H, H, NULL);
        w->ca_o = carve_mat(c, H, H, H, n[3]);
        w->ff_ln_w = carve(c, H), w->ff_ln_b = carve(c, H);
        w->fc1 = carve_mat(c, F, H, F, n[4]);
        snprintf(n[4], sizeof n[4], "decoder.model.decoder.layers.%lld.fc2.weight", (long long)l);
        w->fc2 = carve_mat(c, H, F, H, n[4]);
    }
    m->ln_w = carve(c, H), m->ln_b = carve(c, H);
    m->heads = carve_mat(c, m->K * m->V, H, m->V, NULL);
}

void mg_linear(const mg_model *m, float *y, const float *x, mg_mat w, int64_t rows, int64_t n, int64_t k, float beta) {
    MUSAE_ASSERT((w.f != NULL) + (w.b != NULL) + (w.p != NULL) == 1,
                 "mg_linear: a weight must be exactly one of fp32, bf16 or packed");
    if (w.p)
        m->ops->linear_packed(y, n, x, w.p, rows, n, k, beta, 0);
    else if (w.b)
        m->ops->linear_bf16w(y, x, w.b, NULL, rows, n, k, beta);
    else
        m->ops->linear(y, x, w.f, NULL, rows, n, k, beta);
}

void mg_linear_items(const mg_model *m, float *y, const float *x, mg_mat w, int64_t items, int64_t t, int64_t n,
                     int64_t k, float beta) {
    if (t == 1 || items == 1) {
        mg_linear(m, y, x, w, items * t, n, k, beta);
        return;
    }
    for (int64_t b = 0; b < items; b++) mg_linear(m, y + b * t * n, x + b * t * k, w, t, n, k, beta);
}

/* The mmapped source pages of a tensor are dropped from the process once copied, so peak memory is the
 * f32 weights plus one tensor, not weights plus the touched file (the page cache keeps the data; a
 * MAP_PRIVATE read-only mapping simply faults it back in if read again). */
static void release_source(const musae_st_tensor *t) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t a = (uintptr_t)t->data & ~(pg - 1), e = ((uintptr_t)t->data + t->nbytes + pg - 1) & ~(pg - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

struct loader {
    musae_st *st;
    mg_model *m;
    int host;            /* the table's memory is host memory (CPU): tensors are read straight into the arena */
    float *staging;      /* host, the largest tensor (a bf16 matrix's f32 values; every tensor off the host) */
    uint16_t *staging_b; /* host, the largest matrix in bf16 (bf16 models off the host) */
    int64_t n_params;
    const musae_ops *ops;
};

/* Finds `name` and checks its shape and dtype (a float type). */
static musae_st_tensor *find_tensor(loader *ld, const char *name, int rank, const int64_t *shape) {
    musae_st_tensor *t = musae_st_find(ld->st, name);
    if (!t) musae_fail("%s: tensor '%s' is missing (the MusicGen decoder needs it)", ld->st->path, name);
    musae_st_check_shape(ld->st, t, name, rank, shape);
    const char *file = musae_st_file_of(ld->st, t);
    if (strcmp(t->dtype, "F32") && strcmp(t->dtype, "F16") && strcmp(t->dtype, "BF16") && strcmp(t->dtype, "F64"))
        musae_fail("%s: tensor '%s' has dtype %s, expected a float type (F32, F16, BF16)", file, name, t->dtype);
    return t;
}

static void refuse_nonfinite(loader *ld, const musae_st_tensor *t, const float *x, int64_t bad) {
    if (bad >= 0)
        musae_fail("%s: tensor '%s' holds a non-finite value (%g at flat index %lld)", musae_st_file_of(ld->st, t),
                   t->name, (double)x[bad], (long long)bad);
}

/* Finds `name`, checks shape and dtype, converts to f32 into dst (host memory) with the OpenMP threads
 * (musae_st_read_checked), refuses non-finite values; returns the element count. */
static int64_t read_tensor(loader *ld, const char *name, int rank, const int64_t *shape, float *dst) {
    musae_st_tensor *t = find_tensor(ld, name, rank, shape);
    refuse_nonfinite(ld, t, dst, musae_st_read_checked(ld->st, t, dst, MUSAE_F32));
    release_source(t);
    ld->n_params += musae_st_numel(t);
    return musae_st_numel(t);
}

/* The model's own mapping of checkpoint file fi (made on first use; NULL where it cannot be made). The
 * header bytes must equal those the checkpoint was parsed from, so offsets hold even if the path now
 * names another file. Private and writable, like any host buffer: a write (tests round weights in place)
 * copies that page for the process and never reaches the file. */
static const uint8_t *model_map(loader *ld, int fi) {
    mg_model *m = ld->m;
    const musae_st_file *f = &ld->st->files[fi];
    if (!m->maps) {
        m->n_maps = ld->st->n_files;
        m->maps = musae_xcalloc((size_t)m->n_maps, sizeof(void *));
        m->map_bytes = musae_xcalloc((size_t)m->n_maps, sizeof(size_t));
    }
    if (m->maps[fi] == MAP_FAILED) return NULL;
    if (m->maps[fi]) return m->maps[fi];
    void *p = MAP_FAILED;
    const int fd = open(f->path, O_RDONLY);
    if (fd >= 0) {
        struct stat sb;
        if (fstat(fd, &sb) == 0 && (size_t)sb.st_size == f->size) p = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
        close(fd);
    }
    if (p != MAP_FAILED && memcmp(p, f->map, f->data_off)) {
        munmap(p, f->size);
        p = MAP_FAILED;
    }
    if (p == MAP_FAILED) LOG_DEBUG("%s: cannot map it again; its weights are copied", f->path);
    else m->map_bytes[fi] = f->size;
    m->maps[fi] = p;
    return p == MAP_FAILED ? NULL : p;
}

/* The CPU table in fp32 uses a matrix stored as F32 where it lies: a pointer into the model's mapping of
 * its file. NULL where that cannot be (another table or precision, a checkpoint parsed from memory, another
 * dtype or element count, a misaligned offset, no mapping): it is then copied, and the copying path names
 * any problem. Both carving passes get the same answer. */
static float *in_place(loader *ld, const char *name, int64_t n) {
    if (!ld->host || ld->m->prec != MUSAE_PREC_FP32) return NULL;
    musae_st_tensor *t = musae_st_find(ld->st, name);
    if (!t || strcmp(t->dtype, "F32") || musae_st_numel(t) != n || !ld->st->files[t->file].map) return NULL;
    const size_t off = (size_t)(t->data - ld->st->files[t->file].map);
    if (off % sizeof(float)) return NULL;
    const uint8_t *base = model_map(ld, t->file);
    return base ? (float *)(base + off) : NULL;
}

static int is_mapped(const mg_model *m, const void *p) {
    for (int i = 0; i < m->n_maps; i++)
        if (m->maps[i] != MAP_FAILED && m->maps[i] && (const char *)p >= (const char *)m->maps[i] &&
            (const char *)p < (const char *)m->maps[i] + m->map_bytes[i])
            return 1;
    return 0;
}

static void load_tensor(loader *ld, const char *name, float *dst, int rank, const int64_t *shape) {
    if (ld->host) {
        read_tensor(ld, name, rank, shape, dst);
        return;
    }
    const int64_t n = read_tensor(ld, name, rank, shape, ld->staging);
    ld->ops->upload(dst, ld->staging, (size_t)n * sizeof(float));
}

/* A matrix into w at element offset off (k_proj and v_proj share one [2H, H] matrix). bf16 is rounded on
 * the host so the device never holds the fp32 copy: device memory is the bf16 arena alone. */
static void load_mat(loader *ld, const char *name, mg_mat w, int64_t off, const int64_t *shape) {
    if (w.p) { /* packed (carve_mat: part `off` starts a panel, at the same element offset as in rows) */
        musae_st_tensor *t = find_tensor(ld, name, 2, shape);
        const float *src = ld->staging;
        const musae_st_file *f = &ld->st->files[t->file];
        const int direct = !strcmp(t->dtype, "F32") && f->map && (size_t)(t->data - f->map) % sizeof(float) == 0;
        if (direct) { /* packed straight from the file's pages: no fp32 copy first, checked while packed */
            src = (const float *)t->data;
            ld->n_params += musae_st_numel(t);
        } else {
            read_tensor(ld, name, 2, shape, ld->staging);
        }
        if (!ld->ops->pack_weights(w.p + off, src, shape[1], shape[0], shape[1]) && direct) /* the index for the error */
            refuse_nonfinite(ld, t, src, musae_f32_first_nonfinite(src, (size_t)musae_st_numel(t)));
        release_source(t);
        return;
    }
    if (w.f && is_mapped(ld->m, w.f)) { /* used in place: checked where it lies, its pages mapped now */
        musae_st_tensor *t = find_tensor(ld, name, 2, shape);
        refuse_nonfinite(ld, t, w.f, musae_f32_first_nonfinite(w.f, (size_t)musae_st_numel(t)));
        ld->n_params += musae_st_numel(t);
        return;
    }
    if (!w.b) {
        load_tensor(ld, name, w.f + off, 2, shape);
        return;
    }
    const int64_t n = read_tensor(ld, name, 2, shape, ld->staging);
    uint16_t *b = ld->host ? w.b + off : ld->staging_b;
#pragma omp parallel for schedule(static) if (n >= (1 << 20))
    for (int64_t i = 0; i < n; i++) b[i] = musae_f32_to_bf16(ld->staging[i]);
    if (!ld->host) ld->ops->upload(w.b + off, ld->staging_b, (size_t)n * sizeof(uint16_t));
}

/* HF 5.x keeps embed_positions.weights as a non-persistent buffer (not saved) and ignores the key in
 * older checkpoints that have it; so do we, after saying whether it matches the table we compute. */
static void check_stored_positions(loader *ld, const mg_model *m, const float *table) {
    const char *name = "decoder.model.decoder.embed_positions.weights";
    musae_st_tensor *t = musae_st_find(ld->st, name);
    if (!t) return;
    if (t->rank != 2 || t->shape[1] != m->H || t->shape[0] < 1 || !musae_st_dtype_known(t->dtype) ||
        !strcmp(t->dtype, "I64") || !strcmp(t->dtype, "I32")) {
        LOG_WARN("%s: '%s' is not a [n, %lld] float table; ignored (positions are computed, as HF does)",
                 ld->st->path, name, (long long)m->H);
        return;
    }
    const int64_t n = t->shape[0] < m->max_pos ? t->shape[0] : m->max_pos;
    float *stored = musae_xmalloc((size_t)musae_st_numel(t) * sizeof(float));
    musae_st_read(ld->st, t, stored, MUSAE_F32);
    double d = 0;
    for (int64_t i = 0; i < n * m->H; i++) {
        const double e = fabs((double)stored[i] - (double)table[i]);
        d = e > d || isnan(e) ? e : d;
    }
    free(stored);
    release_source(t);
    if (d <= 1e-3)
        LOG_DEBUG("%s: stored '%s' matches the computed sinusoids (max abs diff %.2g); using the computed table",
                  ld->st->path, name, d);
    else
        LOG_WARN("%s: stored '%s' differs from the sinusoidal table (max abs diff %.3g); ignored, as HF 5.x "
                 "ignores it", ld->st->path, name, d);
}

void mg_load_from(mg_model *m, musae_st *st, const musae_model_config *cfg, const musae_ops *ops,
                  musae_precision prec) {
    memset(m, 0, sizeof *m);
    MUSAE_ASSERT(prec == MUSAE_PREC_FP32 || prec == MUSAE_PREC_BF16, "precision %d", (int)prec);
    const musae_decoder_config *d = &cfg->decoder;
    m->cfg = *d;
    m->ops = ops;
    m->prec = prec;
    m->K = d->num_codebooks;
    m->V = d->vocab_size;
    m->H = d->hidden_size;
    m->n_layers = d->num_hidden_layers;
    m->n_heads = d->num_attention_heads;
    m->ffn = d->ffn_dim;
    m->max_pos = d->max_position_embeddings;
    if (m->K < 1 || m->V < 2 || m->H < 4 || m->n_layers < 1 || m->n_heads < 1 || m->ffn < 1 || m->max_pos < 2)
        musae_fail("%s: decoder config out of range (codebooks %lld, vocab %lld, hidden %lld, layers %lld, heads "
                   "%lld, ffn %lld, positions %lld)", st->path, (long long)m->K, (long long)m->V, (long long)m->H,
                   (long long)m->n_layers, (long long)m->n_heads, (long long)m->ffn, (long long)m->max_pos);
    if (m->H % m->n_heads)
        musae_fail("%s: decoder hidden_size %lld is not a multiple of num_attention_heads %lld", st->path,
                   (long long)m->H, (long long)m->n_heads);
    if (d->bos_token_id != m->V)
        musae_fail("%s: decoder bos_token_id is %d, expected vocab_size %lld (MusicGen's special token)", st->path,
                   d->bos_token_id, (long long)m->V);
    m->d_head = m->H / m->n_heads;
    m->layers = musae_xcalloc((size_t)m->n_layers, sizeof(mg_layer));

    const int host = ops->device == MUSAE_DEVICE_CPU;
    loader ld = {.st = st, .m = m, .host = host, .ops = ops};
    carver sizing = {NULL, 0, prec, &ld, ops};
    carve_all(m, &sizing);
    m->arena_bytes = sizing.off;
    m->arena = ops->alloc(m->arena_bytes);
    carver c = {m->arena, 0, prec, &ld, ops};
    carve_all(m, &c);

    const int64_t H = m->H, F = m->ffn, V = m->V;
    int64_t largest = m->max_pos * H;
    if ((V + 1) * H > largest) largest = (V + 1) * H;
    if (F * H > largest) largest = F * H;
    if (H * H > largest) largest = H * H;
    int64_t largest_mat = F * H > V * H ? F * H : V * H;
    if (2 * H * H > largest_mat) largest_mat = 2 * H * H;
    if (!host || prec == MUSAE_PREC_BF16 || m->layers[0].fc1.p) ld.staging = musae_xmalloc((size_t)largest * sizeof(float));
    if (!host && prec == MUSAE_PREC_BF16) ld.staging_b = musae_xmalloc((size_t)largest_mat * sizeof(uint16_t));
    musae_st_prefetch(st, "decoder.");

    char name[256];
    for (int64_t k = 0; k < m->K; k++) {
        snprintf(name, sizeof name, "decoder.model.decoder.embed_tokens.%lld.weight", (long long)k);
        load_tensor(&ld, name, m->embed + k * (V + 1) * H, 2, (int64_t[]){V + 1, H});
        snprintf(name, sizeof name, "decoder.lm_heads.%lld.weight", (long long)k);
        load_mat(&ld, name, m->heads, k * V * H, (int64_t[]){V, H});
    }
    const int64_t vec[1] = {H}, sq[2] = {H, H}, up[2] = {F, H}, down[2] = {H, F};
    for (int64_t l = 0; l < m->n_layers; l++) {
        mg_layer *w = &m->layers[l];
        const struct {
            const char *suffix;
            float *dst;
            const int64_t *shape;
        } vecs[] = {
            {"self_attn_layer_norm.weight", w->sa_ln_w, vec},    {"self_attn_layer_norm.bias", w->sa_ln_b, vec},
            {"encoder_attn_layer_norm.weight", w->ca_ln_w, vec}, {"encoder_attn_layer_norm.bias", w->ca_ln_b, vec},
            {"final_layer_norm.weight", w->ff_ln_w, vec},        {"final_layer_norm.bias", w->ff_ln_b, vec},
        };
        const struct {
            const char *suffix;
            mg_mat dst;
            int64_t off;
            const int64_t *shape;
        } mats[] = {
            {"self_attn.q_proj.weight", w->sa_q, 0, sq},        {"self_attn.k_proj.weight", w->sa_kv, 0, sq},
            {"self_attn.v_proj.weight", w->sa_kv, H * H, sq},   {"self_attn.out_proj.weight", w->sa_o, 0, sq},
            {"encoder_attn.q_proj.weight", w->ca_q, 0, sq},     {"encoder_attn.k_proj.weight", w->ca_kv, 0, sq},
            {"encoder_attn.v_proj.weight", w->ca_kv, H * H, sq}, {"encoder_attn.out_proj.weight", w->ca_o, 0, sq},
            {"fc1.weight", w->fc1, 0, up},                      {"fc2.weight", w->fc2, 0, down},
        };
        for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
            snprintf(name, sizeof name, "decoder.model.decoder.layers.%lld.%s", (long long)l, vecs[i].suffix);
            load_tensor(&ld, name, vecs[i].dst, 1, vecs[i].shape);
        }
        for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
            snprintf(name, sizeof name, "decoder.model.decoder.layers.%lld.%s", (long long)l, mats[i].suffix);
            load_mat(&ld, name, mats[i].dst, mats[i].off, mats[i].shape);
        }
    }
    load_tensor(&ld, "decoder.model.decoder.layer_norm.weight", m->ln_w, 1, vec);
    load_tensor(&ld, "decoder.model.decoder.layer_norm.bias", m->ln_b, 1, vec);

    float *pos = host ? m->pos : ld.staging;
    mg_sinusoids(pos, m->max_pos, H);
    check_stored_positions(&ld, m, pos);
    if (!host) ops->upload(m->pos, pos, (size_t)(m->max_pos * H) * sizeof(float));
    free(ld.staging);
    free(ld.staging_b);
    m->n_params = ld.n_params;
    int unused = musae_st_report_unused(st, "decoder.");
    if (unused) LOG_WARN("%s: %d decoder tensor(s) not used by the MusicGen decoder (listed above)", st->path, unused);
    LOG_DEBUG("musicgen decoder: %lld layers, hidden %lld, %lld heads, ffn %lld, %lld codebooks, %.1f M params, "
              "%s weights, %.1f MiB on %s", (long long)m->n_layers, (long long)H, (long long)m->n_heads, (long long)F,
              (long long)m->K, (double)m->n_params / 1e6, prec == MUSAE_PREC_BF16 ? "bf16" : "fp32",
              (double)m->arena_bytes / 1048576.0, ops->name);
}

void mg_load(mg_model *m, const char *dir, const musae_ops *ops, musae_precision prec) {
    char err[1024];
    musae_model_config cfg;
    if (musae_config_load(&cfg, dir, err, sizeof err)) musae_fail("%s", err);
    musae_st st;
    if (musae_st_open(&st, dir, err, sizeof err)) musae_fail("%s", err);
    mg_load_from(m, &st, &cfg, ops, prec);
    musae_st_close(&st);
}

void mg_free(mg_model *m) {
    if (m->arena) m->ops->free(m->arena);
    for (int i = 0; i < m->n_maps; i++)
        if (m->maps[i] && m->maps[i] != MAP_FAILED) munmap(m->maps[i], m->map_bytes[i]);
    free(m->maps);
    free(m->map_bytes);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

float *mg_mat_rows(const mg_model *m, mg_mat w, int64_t n, int64_t k) {
    float *out = musae_xmalloc((size_t)(n * k > 0 ? n * k : 1) * sizeof(float));
    if (w.p) { /* only the CPU table packs (its layout: kernels/cpu/cpu_ops.h) */
        MUSAE_ASSERT(m->ops->device == MUSAE_DEVICE_CPU, "mg_mat_rows: packed weights off the CPU");
        cpu_unpack_weights(out, w.p, n, k);
    } else if (w.b) {
        uint16_t *h = musae_xmalloc((size_t)(n * k > 0 ? n * k : 1) * sizeof(uint16_t));
        m->ops->download(h, w.b, (size_t)(n * k) * sizeof(uint16_t));
        for (int64_t i = 0; i < n * k; i++) out[i] = musae_bf16_to_f32(h[i]);
        free(h);
    } else {
        m->ops->download(out, w.f, (size_t)(n * k) * sizeof(float));
    }
    return out;
}

/* ---- state ----------------------------------------------------------------------------------------------- */

static int64_t kv_layers(const mg_state *s, const mg_model *m) { return s->o.incremental ? m->n_layers : 1; }

void mg_state_init(mg_state *s, const mg_model *m, const mg_state_opts *o) {
    MUSAE_ASSERT(o->n_cond >= 1 && (o->batch == o->n_cond || o->batch == 2 * o->n_cond),
                 "state rows: batch %lld, n_cond %lld (batch must be n_cond or 2·n_cond)", (long long)o->batch,
                 (long long)o->n_cond);
    MUSAE_ASSERT(o->t_max >= 1 && o->t_max <= m->max_pos, "state holds %lld positions; the model has %lld",
                 (long long)o->t_max, (long long)m->max_pos);
    MUSAE_ASSERT(o->t_call >= 1 && o->t_call <= o->t_max, "positions per call %lld outside 1..%lld",
                 (long long)o->t_call, (long long)o->t_max);
    memset(s, 0, sizeof *s);
    s->o = *o;
    const musae_ops *ops = m->ops;
    const int64_t rows = o->batch * o->t_call, H = m->H;
    s->self_kv = ops->alloc((size_t)(kv_layers(s, m) * o->batch * o->t_max * 2 * H) * sizeof(float));
    s->x = ops->alloc((size_t)(rows * H) * sizeof(float));
    s->h = ops->alloc((size_t)(rows * H) * sizeof(float));
    s->q = ops->alloc((size_t)(rows * H) * sizeof(float));
    s->attn = ops->alloc((size_t)(rows * H) * sizeof(float));
    s->ff = ops->alloc((size_t)(rows * m->ffn) * sizeof(float));
    if (o->logits) s->logits = ops->alloc((size_t)(rows * m->K * m->V) * sizeof(float));
    if (m->prec == MUSAE_PREC_BF16) s->kv_tmp = ops->alloc((size_t)(o->batch * 2 * H) * sizeof(float));
    s->ids = ops->alloc((size_t)(m->K * rows) * sizeof(int64_t));
    s->ids_host = musae_xmalloc((size_t)(m->K * rows) * sizeof(int64_t));
}

static void free_text(mg_state *s, const mg_model *m) {
    if (s->text_kv) m->ops->free(s->text_kv);
    if (s->text_states) m->ops->free(s->text_states);
    if (s->text_mask) m->ops->free(s->text_mask);
    s->text_kv = s->text_states = s->text_mask = NULL;
    s->s_cap = 0;
}

void mg_state_free(mg_state *s, const mg_model *m) {
    const musae_ops *ops = m->ops;
    free_text(s, m);
    float *bufs[] = {s->self_kv, s->x, s->h, s->q, s->attn, s->ff, s->logits, s->kv_tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) ops->free(bufs[i]);
    if (s->ids) ops->free(s->ids);
    free(s->ids_host);
    memset(s, 0, sizeof *s);
}

void mg_state_reset(mg_state *s) { s->len = 0; }

void mg_state_set_text(mg_state *s, const mg_model *m, const float *states, const float *mask, int64_t S) {
    MUSAE_ASSERT(S >= 1, "text of %lld positions", (long long)S);
    const musae_ops *ops = m->ops;
    const int64_t n = s->o.n_cond, H = m->H;
    if (S > s->s_cap) {
        free_text(s, m);
        s->text_kv = ops->alloc((size_t)(kv_layers(s, m) * n * S * 2 * H) * sizeof(float));
        s->text_states = ops->alloc((size_t)(n * S * H) * sizeof(float));
        s->text_mask = ops->alloc((size_t)(n * S) * sizeof(float));
        s->s_cap = S;
    }
    ops->upload(s->text_states, states, (size_t)(n * S * H) * sizeof(float));
    ops->upload(s->text_mask, mask, (size_t)(n * S) * sizeof(float));
    s->n_text = n;
    s->s_text = S;
    if (s->o.incremental)
        for (int64_t l = 0; l < m->n_layers; l++)
            mg_linear_items(m, s->text_kv + l * n * S * 2 * H, s->text_states, m->layers[l].ca_kv, n, S, 2 * H, H,
                            0.0f);
}

void mg_state_clear_text(mg_state *s) {
    s->n_text = 0;
    s->s_text = 0;
}

/* ---- forward --------------------------------------------------------------------------------------------- */

static void run_hooks(const mg_model *m, mg_state *s, int layer, int64_t t, int64_t pos0, const mg_hook *hooks,
                      int n_hooks) {
    const int64_t H = m->H, nc = s->o.n_cond, B = s->o.batch;
    for (int i = 0; i < n_hooks; i++) {
        const mg_hook *k = &hooks[i];
        if (k->layer != layer) continue;
        const int64_t r0 = k->branch == MG_BRANCH_UNCOND ? nc : 0;
        const int64_t r1 = k->branch == MG_BRANCH_COND ? nc : B;
        int64_t p0 = k->pos_begin > pos0 ? k->pos_begin : pos0;
        int64_t p1 = k->pos_end < pos0 + t ? k->pos_end : pos0 + t;
        if (k->kind == MG_HOOK_READ && k->dst_t < p1) p1 = k->dst_t;
        if (k->kind == MG_HOOK_SET && k->src_t < p1) p1 = k->src_t;
        if (p1 <= p0) continue;
        for (int64_t r = r0; r < r1; r++) {
            float *x = s->x + (r * t + (p0 - pos0)) * H;
            if (k->kind == MG_HOOK_READ) {
                m->ops->download(k->dst + ((r - r0) * k->dst_t + p0) * H, x, (size_t)((p1 - p0) * H) * sizeof(float));
            } else if (k->kind == MG_HOOK_SET) {
                m->ops->upload(x, k->src + ((r - r0) * k->src_t + p0) * H, (size_t)((p1 - p0) * H) * sizeof(float));
            } else if (k->kind == MG_HOOK_MAP) {
                const size_t bytes = (size_t)((p1 - p0) * H) * sizeof(float);
                float *buf = musae_xmalloc(bytes);
                m->ops->download(buf, x, bytes);
                k->map(k->map_ctx, r % nc, p0, buf, p1 - p0, H);
                m->ops->upload(x, buf, bytes);
                free(buf);
            } else {
                const float alpha = k->scale * (k->item_scale ? k->item_scale[r % nc] : 1.0f);
                m->ops->add_rows(x, k->vec + (k->vec_n > 1 ? (r % nc) * H : 0), alpha, p1 - p0, H);
            }
        }
    }
}

static void validate_hooks(const mg_model *m, const mg_state *s, const mg_hook *hooks, int n_hooks) {
    for (int i = 0; i < n_hooks; i++) {
        const mg_hook *k = &hooks[i];
        MUSAE_ASSERT(k->layer >= -1 && k->layer < m->n_layers, "hook %d: layer %d outside -1..%lld", i, k->layer,
                     (long long)m->n_layers - 1);
        MUSAE_ASSERT(k->branch >= MG_BRANCH_COND && k->branch <= MG_BRANCH_BOTH, "hook %d: branch %d", i, k->branch);
        MUSAE_ASSERT(k->branch != MG_BRANCH_UNCOND || s->o.batch > s->o.n_cond,
                     "hook %d: the unconditional branch needs a CFG state", i);
        MUSAE_ASSERT(k->pos_begin >= 0 && k->pos_end >= k->pos_begin, "hook %d: positions [%lld, %lld)", i,
                     (long long)k->pos_begin, (long long)k->pos_end);
        if (k->kind == MG_HOOK_READ)
            MUSAE_ASSERT(k->dst && k->dst_t >= 1, "hook %d: READ needs dst and dst_t", i);
        else if (k->kind == MG_HOOK_SET)
            MUSAE_ASSERT(k->src && k->src_t >= 1, "hook %d: SET needs src and src_t", i);
        else if (k->kind == MG_HOOK_MAP)
            MUSAE_ASSERT(k->map, "hook %d: MAP needs map", i);
        else
            MUSAE_ASSERT(k->kind == MG_HOOK_ADD && k->vec && (k->vec_n <= 1 || k->vec_n == s->o.n_cond),
                         "hook %d: ADD needs vec, one or n_cond = %lld of them (vec_n %lld)", i,
                         (long long)s->o.n_cond, (long long)k->vec_n);
    }
}

/* Self-attention K/V of the t new positions into the cache rows (b, pos0 .. pos0 + t - 1), straight from
 * the GEMM. A decoding step (t = 1) is one product whose row stride ldc reaches every item's cache row; bf16
 * weights have no strided-output GEMM, so its rows go through kv_tmp (one weight pass, then a copy per row).
 * With t > 1 each item is its own product (mg_linear_items says why) into its contiguous cache rows. */
static void self_kv_write(const mg_model *m, const mg_state *s, const mg_layer *w, float *kv, int64_t t, int64_t pos0) {
    const int64_t H = m->H, H2 = 2 * H, B = s->o.batch, TM = s->o.t_max;
    const musae_ops *ops = m->ops;
    if (t == 1 && B > 1) {
        if (w->sa_kv.b) {
            mg_linear(m, s->kv_tmp, s->h, w->sa_kv, B, H2, H, 0.0f);
            for (int64_t b = 0; b < B; b++)
                ops->copy(kv + (b * TM + pos0) * H2, s->kv_tmp + b * H2, (size_t)H2 * sizeof(float));
        } else if (w->sa_kv.p) {
            ops->linear_packed(kv + pos0 * H2, TM * H2, s->h, w->sa_kv.p, B, H2, H, 0.0f, 0);
        } else {
            ops->gemm(0, 1, B, H2, H, 1.0f, s->h, H, w->sa_kv.f, H, 0.0f, kv + pos0 * H2, TM * H2);
        }
        return;
    }
    for (int64_t b = 0; b < B; b++)
        mg_linear(m, kv + (b * TM + pos0) * H2, s->h + b * t * H, w->sa_kv, t, H2, H, 0.0f);
}

static void layer_forward(const mg_model *m, mg_state *s, int64_t l, int64_t t, int64_t pos0) {
    const musae_ops *ops = m->ops;
    const mg_layer *w = &m->layers[l];
    const int64_t H = m->H, H2 = 2 * H, B = s->o.batch, TM = s->o.t_max, rows = B * t;
    const float scale = (float)pow((double)m->d_head, -0.5);

    /* self-attention (causal; keys are every cached position up to the query's own) */
    ops->layernorm(s->h, s->x, w->sa_ln_w, w->sa_ln_b, rows, H, MG_LN_EPS);
    mg_linear_items(m, s->q, s->h, w->sa_q, B, t, H, H, 0.0f);
    float *kv = s->self_kv + (s->o.incremental ? l : 0) * B * TM * H2;
    self_kv_write(m, s, w, kv, t, pos0);
    musae_attn_params sp = {
        .batch = B, .heads = m->n_heads, .tq = t, .tk = pos0 + t, .dh = m->d_head,
        .q_sb = t * H, .q_st = H, .k_sb = TM * H2, .k_st = H2, .v_sb = TM * H2, .v_st = H2, .o_sb = t * H, .o_st = H,
        .scale = scale, .causal = 1, .q_pos0 = pos0,
    };
    ops->attention(s->attn, s->q, kv, kv + H, &sp);
    mg_linear_items(m, s->x, s->attn, w->sa_o, B, t, H, H, 1.0f);

    /* cross-attention: only the rows with text; the unconditional rows would add exactly zero */
    if (s->n_text > 0) {
        const int64_t n = s->n_text, S = s->s_text, trows = n * t;
        float *tkv = s->text_kv;
        if (s->o.incremental)
            tkv += l * n * S * H2;
        else
            mg_linear_items(m, tkv, s->text_states, w->ca_kv, n, S, H2, H, 0.0f);
        ops->layernorm(s->h, s->x, w->ca_ln_w, w->ca_ln_b, trows, H, MG_LN_EPS);
        mg_linear_items(m, s->q, s->h, w->ca_q, n, t, H, H, 0.0f);
        musae_attn_params cp = {
            .batch = n, .heads = m->n_heads, .tq = t, .tk = S, .dh = m->d_head,
            .q_sb = t * H, .q_st = H, .k_sb = S * H2, .k_st = H2, .v_sb = S * H2, .v_st = H2, .o_sb = t * H, .o_st = H,
            .scale = scale, .key_mask = s->text_mask,
        };
        ops->attention(s->attn, s->q, tkv, tkv + H, &cp);
        mg_linear_items(m, s->x, s->attn, w->ca_o, n, t, H, H, 1.0f);
    }

    mg_ffn(m, s, w, B, t);
}

void mg_ffn(const mg_model *m, mg_state *s, const mg_layer *w, int64_t items, int64_t t) {
    const int64_t H = m->H, rows = items * t;
    m->ops->layernorm(s->h, s->x, w->ff_ln_w, w->ff_ln_b, rows, H, MG_LN_EPS);
    if ((w->fc1.f && m->ops->linear_gelu) || w->fc1.p) { /* fused where the backend has it: the same bits, one pass less */
        const int64_t per = t == 1 || items == 1 ? items : 1, n_calls = items / per;
        for (int64_t b = 0; b < n_calls; b++) {
            float *y = s->ff + b * per * t * m->ffn;
            const float *x = s->h + b * per * t * H;
            if (w->fc1.p)
                m->ops->linear_packed(y, m->ffn, x, w->fc1.p, per * t, m->ffn, H, 0.0f, 1);
            else
                m->ops->linear_gelu(y, x, w->fc1.f, per * t, m->ffn, H);
        }
    } else {
        mg_linear_items(m, s->ff, s->h, w->fc1, items, t, m->ffn, H, 0.0f);
        m->ops->gelu(s->ff, s->ff, rows * m->ffn);
    }
    mg_linear_items(m, s->x, s->ff, w->fc2, items, t, H, m->ffn, 1.0f);
}

void mg_forward(const mg_model *m, mg_state *s, const int64_t *ids, int64_t t, const mg_hook *hooks, int n_hooks,
                int want_logits) {
    const musae_ops *ops = m->ops;
    const int64_t K = m->K, H = m->H, B = s->o.batch, rows = B * t;
    const int64_t pos0 = s->o.incremental ? s->len : 0;
    MUSAE_ASSERT(t >= 1 && t <= s->o.t_call, "forward of %lld positions; the state takes 1..%lld per call",
                 (long long)t, (long long)s->o.t_call);
    MUSAE_ASSERT(pos0 + t <= s->o.t_max, "positions %lld..%lld exceed the state's %lld", (long long)pos0,
                 (long long)(pos0 + t - 1), (long long)s->o.t_max);
    MUSAE_ASSERT(!want_logits || s->logits, "logits asked of a state made without them");
    validate_hooks(m, s, hooks, n_hooks);

    /* embeddings: Σ_k embed_k(ids[:, k, :]) in codebook order, as HF sums them, then + positions */
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t i = 0; i < t; i++) {
                const int64_t id = ids[(b * K + k) * t + i];
                MUSAE_ASSERT(id >= 0 && id <= m->V, "token %lld (item %lld, codebook %lld, position %lld) outside "
                             "0..%lld", (long long)id, (long long)b, (long long)k, (long long)(pos0 + i), (long long)m->V);
                s->ids_host[k * rows + b * t + i] = id;
            }
    ops->upload(s->ids, s->ids_host, (size_t)(K * rows) * sizeof(int64_t));
    for (int64_t k = 0; k < K; k++)
        ops->embedding(s->x, m->embed + k * (m->V + 1) * H, m->V + 1, H, s->ids + k * rows, rows, k > 0);
    for (int64_t b = 0; b < B; b++) ops->add(s->x + b * t * H, s->x + b * t * H, m->pos + pos0 * H, t * H);
    run_hooks(m, s, -1, t, pos0, hooks, n_hooks);

    /* without logits and without a cache to keep complete, layers past the deepest hook are dead work */
    int64_t last = m->n_layers - 1;
    if (!want_logits && !s->o.incremental) {
        last = -1;
        for (int i = 0; i < n_hooks; i++)
            if (hooks[i].layer > last) last = hooks[i].layer;
    }
    for (int64_t l = 0; l <= last; l++) {
        layer_forward(m, s, l, t, pos0);
        run_hooks(m, s, (int)l, t, pos0, hooks, n_hooks);
    }
    if (want_logits) {
        ops->layernorm(s->h, s->x, m->ln_w, m->ln_b, rows, H, MG_LN_EPS);
        mg_linear_items(m, s->logits, s->h, m->heads, B, t, K * m->V, H, 0.0f);
    }
    if (s->o.incremental) s->len += t;
}

void mg_logits_bktv(const mg_model *m, const mg_state *s, int64_t t, float *out) {
    const int64_t K = m->K, V = m->V, B = s->o.batch;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < t; i++)
            for (int64_t k = 0; k < K; k++)
                m->ops->download(out + ((b * K + k) * t + i) * V, s->logits + ((b * t + i) * K + k) * V,
                                 (size_t)V * sizeof(float));
}
