#include "host/io/config.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/core/check.h"
#include "host/io/path.h"

typedef struct {
    const char *file;
    const char *section; /* "decoder", "text_encoder", ... or "" at the root */
    char *err;
    int errlen;
    int failed;
} ctx;

static void cfail(ctx *c, const char *key, const char *fmt, ...) MUSAE_PRINTF(3, 4);
static void cfail(ctx *c, const char *key, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, (size_t)c->errlen, "%s: %s%s%s: %s", c->file, c->section, c->section[0] ? "." : "", key, msg);
}

static int get_int(ctx *c, const cJSON *o, const char *key, int def) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return def;
    if (cJSON_IsBool(j)) return cJSON_IsTrue(j);
    if (!cJSON_IsNumber(j) || floor(j->valuedouble) != j->valuedouble || fabs(j->valuedouble) > INT_MAX) {
        cfail(c, key, "expected an integer");
        return def;
    }
    return (int)j->valuedouble;
}

static int get_pos(ctx *c, const cJSON *o, const char *key, int def) {
    int v = get_int(c, o, key, def);
    if (!c->failed && v <= 0) cfail(c, key, "must be positive, got %d", v);
    return v;
}

static double get_num(ctx *c, const cJSON *o, const char *key, double def) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return def;
    if (!cJSON_IsNumber(j)) {
        cfail(c, key, "expected a number");
        return def;
    }
    return j->valuedouble;
}

static void get_str(ctx *c, const cJSON *o, const char *key, const char *def, char *out, size_t n) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) {
        snprintf(out, n, "%s", def);
        return;
    }
    if (!cJSON_IsString(j)) {
        cfail(c, key, "expected a string");
        snprintf(out, n, "%s", def);
        return;
    }
    if (strlen(j->valuestring) >= n) cfail(c, key, "string too long");
    snprintf(out, n, "%s", j->valuestring);
}

static int get_bool(ctx *c, const cJSON *o, const char *key, int def) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!j || cJSON_IsNull(j)) return def;
    if (cJSON_IsBool(j)) return cJSON_IsTrue(j);
    cfail(c, key, "expected true or false");
    return def;
}

static void parse_decoder(ctx *c, const cJSON *o, musae_decoder_config *d) {
    c->section = "decoder";
    d->vocab_size = get_pos(c, o, "vocab_size", 2048);
    d->max_position_embeddings = get_pos(c, o, "max_position_embeddings", 2048);
    d->num_hidden_layers = get_pos(c, o, "num_hidden_layers", 24);
    d->ffn_dim = get_pos(c, o, "ffn_dim", 4096);
    d->num_attention_heads = get_pos(c, o, "num_attention_heads", 16);
    d->hidden_size = get_pos(c, o, "hidden_size", 1024);
    d->num_codebooks = get_pos(c, o, "num_codebooks", 4);
    d->audio_channels = get_pos(c, o, "audio_channels", 1);
    d->pad_token_id = get_int(c, o, "pad_token_id", 2048);
    d->bos_token_id = get_int(c, o, "bos_token_id", 2048);
    d->scale_embedding = get_bool(c, o, "scale_embedding", 0);
    get_str(c, o, "activation_function", "gelu", d->activation_function, sizeof d->activation_function);
    if (c->failed) return;
    if (d->hidden_size % d->num_attention_heads)
        cfail(c, "hidden_size", "%d is not divisible by num_attention_heads %d", d->hidden_size, d->num_attention_heads);
    else if (strcmp(d->activation_function, "gelu"))
        cfail(c, "activation_function", "\"%s\" is not supported (MusicGen uses \"gelu\")", d->activation_function);
    else if (d->audio_channels != 1)
        cfail(c, "audio_channels", "%d: stereo MusicGen is not supported yet", d->audio_channels);
}

static void parse_t5(ctx *c, const cJSON *o, musae_t5_config *t) {
    c->section = "text_encoder";
    char mt[32];
    get_str(c, o, "model_type", "t5", mt, sizeof mt);
    if (!c->failed && strcmp(mt, "t5")) cfail(c, "model_type", "\"%s\" is not supported (expected \"t5\")", mt);
    t->vocab_size = get_pos(c, o, "vocab_size", 32128);
    t->d_model = get_pos(c, o, "d_model", 512);
    t->d_kv = get_pos(c, o, "d_kv", 64);
    t->d_ff = get_pos(c, o, "d_ff", 2048);
    t->num_layers = get_pos(c, o, "num_layers", 6);
    t->num_heads = get_pos(c, o, "num_heads", 8);
    t->relative_attention_num_buckets = get_pos(c, o, "relative_attention_num_buckets", 32);
    t->relative_attention_max_distance = get_pos(c, o, "relative_attention_max_distance", 128);
    t->layer_norm_epsilon = get_num(c, o, "layer_norm_epsilon", 1e-6);
    t->pad_token_id = get_int(c, o, "pad_token_id", 0);
    t->eos_token_id = get_int(c, o, "eos_token_id", 1);
    get_str(c, o, "feed_forward_proj", "relu", t->feed_forward_proj, sizeof t->feed_forward_proj);
    if (c->failed) return;
    /* HF T5Config: the act is the part after "gated-" (or the whole name), except that exactly "gated-gelu"
     * means "gelu_new" (kept for v1.1 checkpoints); a plain "gelu" is the exact erf GELU. */
    t->is_gated = !strncmp(t->feed_forward_proj, "gated-", 6);
    const char *act = t->is_gated ? t->feed_forward_proj + 6 : t->feed_forward_proj;
    if (!strcmp(act, "relu")) snprintf(t->dense_act_fn, sizeof t->dense_act_fn, "relu");
    else if (!strcmp(act, "gelu"))
        snprintf(t->dense_act_fn, sizeof t->dense_act_fn, "%s", t->is_gated ? "gelu_new" : "gelu");
    else cfail(c, "feed_forward_proj", "\"%s\" is not supported (relu, gelu, gated-relu, gated-gelu)",
               t->feed_forward_proj);
}

static void parse_encodec(ctx *c, const cJSON *o, musae_encodec_config *a) {
    c->section = "audio_encoder";
    char mt[32];
    get_str(c, o, "model_type", "encodec", mt, sizeof mt);
    if (!c->failed && strcmp(mt, "encodec")) cfail(c, "model_type", "\"%s\" is not supported (expected \"encodec\")", mt);
    a->sampling_rate = get_pos(c, o, "sampling_rate", 24000);
    a->audio_channels = get_pos(c, o, "audio_channels", 1);
    a->num_filters = get_pos(c, o, "num_filters", 32);
    a->hidden_size = get_pos(c, o, "hidden_size", 128);
    a->codebook_size = get_pos(c, o, "codebook_size", 1024);
    a->codebook_dim = get_int(c, o, "codebook_dim", a->hidden_size);
    a->kernel_size = get_pos(c, o, "kernel_size", 7);
    a->last_kernel_size = get_pos(c, o, "last_kernel_size", 7);
    a->residual_kernel_size = get_pos(c, o, "residual_kernel_size", 3);
    a->dilation_growth_rate = get_pos(c, o, "dilation_growth_rate", 2);
    a->num_residual_layers = get_pos(c, o, "num_residual_layers", 1);
    a->num_lstm_layers = get_int(c, o, "num_lstm_layers", 2);
    a->compress = get_pos(c, o, "compress", 2);
    a->use_causal_conv = get_bool(c, o, "use_causal_conv", 1);
    a->use_conv_shortcut = get_bool(c, o, "use_conv_shortcut", 1);
    a->normalize = get_bool(c, o, "normalize", 0);
    a->trim_right_ratio = get_num(c, o, "trim_right_ratio", 1.0);
    get_str(c, o, "pad_mode", "reflect", a->pad_mode, sizeof a->pad_mode);
    get_str(c, o, "norm_type", "weight_norm", a->norm_type, sizeof a->norm_type);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "upsampling_ratios");
    if (!r) {
        static const int def[] = {8, 5, 4, 2};
        a->n_ratios = 4;
        memcpy(a->upsampling_ratios, def, sizeof def);
    } else if (!cJSON_IsArray(r) || cJSON_GetArraySize(r) < 1 || cJSON_GetArraySize(r) > MUSAE_MAX_RATIOS) {
        cfail(c, "upsampling_ratios", "expected an array of 1..%d positive integers", MUSAE_MAX_RATIOS);
    } else {
        a->n_ratios = 0;
        for (const cJSON *e = r->child; e; e = e->next) {
            if (!cJSON_IsNumber(e) || e->valuedouble < 1 || e->valuedouble > 64 || floor(e->valuedouble) != e->valuedouble) {
                cfail(c, "upsampling_ratios", "element %d is not an integer in 1..64", a->n_ratios);
                break;
            }
            a->upsampling_ratios[a->n_ratios++] = (int)e->valuedouble;
        }
    }
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "target_bandwidths");
    if (!b) {
        static const double def[] = {1.5, 3.0, 6.0, 12.0, 24.0};
        a->n_bandwidths = 5;
        memcpy(a->target_bandwidths, def, sizeof def);
    } else if (!cJSON_IsArray(b) || cJSON_GetArraySize(b) < 1 || cJSON_GetArraySize(b) > 8) {
        cfail(c, "target_bandwidths", "expected an array of 1..8 numbers");
    } else {
        a->n_bandwidths = 0;
        for (const cJSON *e = b->child; e; e = e->next) {
            if (!cJSON_IsNumber(e) || !(e->valuedouble > 0) || e->valuedouble > 1e4) {
                cfail(c, "target_bandwidths", "element %d is not a positive number", a->n_bandwidths);
                break;
            }
            a->target_bandwidths[a->n_bandwidths++] = e->valuedouble;
        }
    }
    if (c->failed) return;
    /* eight ratios of up to 64 would overflow an int; real models hop a few hundred samples */
    int64_t hop = 1;
    for (int i = 0; i < a->n_ratios; i++) hop *= a->upsampling_ratios[i];
    if (hop > (1 << 20)) {
        cfail(c, "upsampling_ratios", "their product %lld (the hop length) is above 2^20", (long long)hop);
        return;
    }
    a->hop_length = (int)hop;
    a->frame_rate = (int)(((int64_t)a->sampling_rate + hop - 1) / hop);
    /* HF: 1000 · target_bandwidths[-1] // (frame_rate · codebook_nbits), nbits = ceil(log2(codebook_size));
     * the bandwidths are listed in increasing order, so [-1] is the largest */
    double bw = 0;
    for (int i = 0; i < a->n_bandwidths; i++) bw = a->target_bandwidths[i] > bw ? a->target_bandwidths[i] : bw;
    int nbits = 1;
    while (nbits < 31 && (1 << nbits) < a->codebook_size) nbits++;
    a->num_quantizers = (int)floor(1000.0 * bw / (a->frame_rate * (double)nbits));
    if (a->num_quantizers < 1) cfail(c, "target_bandwidths", "gives %d quantizers", a->num_quantizers);
    else if (a->codebook_dim <= 0) cfail(c, "codebook_dim", "must be positive");
    else if (strcmp(a->pad_mode, "reflect") && strcmp(a->pad_mode, "constant"))
        cfail(c, "pad_mode", "\"%s\" is not supported (reflect, constant)", a->pad_mode);
    else if (strcmp(a->norm_type, "weight_norm") && strcmp(a->norm_type, "time_group_norm"))
        cfail(c, "norm_type", "\"%s\" is not supported", a->norm_type);
    else if (a->audio_channels != 1) cfail(c, "audio_channels", "%d: only mono EnCodec is supported", a->audio_channels);
}

int musae_config_parse(musae_model_config *cfg, const char *name, const char *json, char *err, int errlen) {
    memset(cfg, 0, sizeof *cfg);
    ctx c = {.file = name, .section = "", .err = err, .errlen = errlen};
    cJSON *root = cJSON_Parse(json);
    if (!root) {
        snprintf(err, (size_t)errlen, "%s: not valid JSON", name);
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        snprintf(err, (size_t)errlen, "%s: not a JSON object", name);
        cJSON_Delete(root);
        return -1;
    }
    get_str(&c, root, "model_type", "", cfg->model_type, sizeof cfg->model_type);
    if (!c.failed) {
        if (!cfg->model_type[0]) cfail(&c, "model_type", "missing (expected \"musicgen\")");
        else if (!strcmp(cfg->model_type, "musicgen_melody"))
            cfail(&c, "model_type", "\"musicgen_melody\" checkpoints are not supported yet");
        else if (strcmp(cfg->model_type, "musicgen"))
            cfail(&c, "model_type", "\"%s\" is not a MusicGen model (expected \"musicgen\")", cfg->model_type);
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "decoder");
    if (!c.failed && !cJSON_IsObject(dec)) cfail(&c, "decoder", "missing or not an object");
    if (!c.failed) parse_decoder(&c, dec, &cfg->decoder);
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(root, "text_encoder");
    if (!c.failed && te) {
        c.section = "";
        if (!cJSON_IsObject(te)) cfail(&c, "text_encoder", "not an object");
        else {
            parse_t5(&c, te, &cfg->text);
            cfg->has_text = 1;
        }
    }
    const cJSON *ae = cJSON_GetObjectItemCaseSensitive(root, "audio_encoder");
    if (!c.failed && ae) {
        c.section = "";
        if (!cJSON_IsObject(ae)) cfail(&c, "audio_encoder", "not an object");
        else {
            parse_encodec(&c, ae, &cfg->audio);
            cfg->has_audio = 1;
        }
    }
    if (!c.failed && cfg->has_audio) {
        c.section = "";
        if (cfg->audio.num_quantizers != cfg->decoder.num_codebooks)
            cfail(&c, "decoder.num_codebooks", "%d does not match the audio encoder's %d quantizers",
                  cfg->decoder.num_codebooks, cfg->audio.num_quantizers);
        else if (cfg->audio.codebook_size != cfg->decoder.vocab_size)
            cfail(&c, "decoder.vocab_size", "%d does not match the audio codebook size %d", cfg->decoder.vocab_size,
                  cfg->audio.codebook_size);
    }
    cJSON_Delete(root);
    /* generation defaults (generation_config.json overrides them in musae_config_load) */
    cfg->guidance_scale = 3.0;
    cfg->max_length = 1500;
    cfg->top_k = 50;
    cfg->do_sample = 1;
    cfg->temperature = 1.0;
    cfg->top_p = 1.0;
    return c.failed ? -1 : 0;
}

int musae_config_load(musae_model_config *cfg, const char *dir, char *err, int errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *txt = musae_read_file(path, NULL, err, (size_t)errlen);
    if (!txt) return -1;
    int rc = musae_config_parse(cfg, path, txt, err, errlen);
    free(txt);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    txt = musae_read_file(path, NULL, NULL, 0);
    if (!txt) return 0;
    cJSON *g = cJSON_Parse(txt);
    free(txt);
    if (!cJSON_IsObject(g)) {
        cJSON_Delete(g);
        snprintf(err, (size_t)errlen, "%s: not a JSON object", path);
        return -1;
    }
    ctx c = {.file = path, .section = "", .err = err, .errlen = errlen};
    cfg->guidance_scale = get_num(&c, g, "guidance_scale", cfg->guidance_scale);
    cfg->max_length = get_int(&c, g, "max_length", cfg->max_length);
    cfg->top_k = get_int(&c, g, "top_k", cfg->top_k);
    cfg->do_sample = get_bool(&c, g, "do_sample", cfg->do_sample);
    cfg->temperature = get_num(&c, g, "temperature", cfg->temperature);
    cfg->top_p = get_num(&c, g, "top_p", cfg->top_p);
    cJSON_Delete(g);
    /* the ranges --guidance, --top-k, --top-p and --temperature take: a value outside them is a broken file, not
     * a setting to use silently (HF would turn a guidance of -3 into no guidance without a word) */
    if (!(cfg->guidance_scale >= 0 && cfg->guidance_scale <= 1000))
        cfail(&c, "guidance_scale", "%g is outside 0..1000 (1 or less turns guidance off)", cfg->guidance_scale);
    else if (cfg->max_length < 1) cfail(&c, "max_length", "must be positive, got %d", cfg->max_length);
    else if (cfg->top_k < 0) cfail(&c, "top_k", "must be 0 (off) or positive, got %d", cfg->top_k);
    else if (!(cfg->temperature > 0) || !isfinite(cfg->temperature))
        cfail(&c, "temperature", "must be a positive number, got %g", cfg->temperature);
    else if (!(cfg->top_p > 0 && cfg->top_p <= 1)) cfail(&c, "top_p", "%g is outside (0, 1]", cfg->top_p);
    return c.failed ? -1 : 0;
}

int musae_encodec_config_parse(musae_encodec_config *a, const char *name, const char *json, char *err, int errlen) {
    memset(a, 0, sizeof *a);
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        snprintf(err, (size_t)errlen, "%s: not a JSON object", name);
        cJSON_Delete(root);
        return -1;
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (cJSON_IsString(mt) && !strcmp(mt->valuestring, "encodec")) {
        ctx c = {.file = name, .section = "", .err = err, .errlen = errlen};
        parse_encodec(&c, root, a); /* messages say "audio_encoder.<key>" as for a composite: same keys */
        cJSON_Delete(root);
        return c.failed ? -1 : 0;
    }
    cJSON_Delete(root);
    musae_model_config *cfg = musae_xmalloc(sizeof *cfg);
    int rc = musae_config_parse(cfg, name, json, err, errlen);
    if (!rc && !cfg->has_audio) {
        snprintf(err, (size_t)errlen, "%s: no \"audio_encoder\" section (not an EnCodec or MusicGen config)", name);
        rc = -1;
    }
    if (!rc) *a = cfg->audio;
    free(cfg);
    return rc;
}

int musae_encodec_config_load(musae_encodec_config *a, const char *dir, char *err, int errlen) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *txt = musae_read_file(path, NULL, err, (size_t)errlen);
    if (!txt) return -1;
    int rc = musae_encodec_config_parse(a, path, txt, err, errlen);
    free(txt);
    return rc;
}

void musae_config_print(const musae_model_config *c) {
    const musae_decoder_config *d = &c->decoder;
    printf("model_type: %s\n", c->model_type);
    printf("decoder: %d layers, hidden %d, %d heads, ffn %d, %d codebooks x %d codes, %d positions\n",
           d->num_hidden_layers, d->hidden_size, d->num_attention_heads, d->ffn_dim, d->num_codebooks, d->vocab_size,
           d->max_position_embeddings);
    if (c->has_text)
        printf("text encoder: t5, %d layers, d_model %d, %d heads x %d, d_ff %d (%s), vocab %d\n", c->text.num_layers,
               c->text.d_model, c->text.num_heads, c->text.d_kv, c->text.d_ff, c->text.feed_forward_proj,
               c->text.vocab_size);
    if (c->has_audio) {
        printf("audio encoder: encodec %d Hz, hop %d (%d frames/s), %d quantizers x %d, filters %d, hidden %d, ratios [",
               c->audio.sampling_rate, c->audio.hop_length, c->audio.frame_rate, c->audio.num_quantizers,
               c->audio.codebook_size, c->audio.num_filters, c->audio.hidden_size);
        for (int i = 0; i < c->audio.n_ratios; i++) printf("%s%d", i ? ", " : "", c->audio.upsampling_ratios[i]);
        printf("]\n");
    }
    printf("generation: guidance %.2f, top_k %d, top_p %.2f, temperature %.2f, %s, max_length %d\n", c->guidance_scale,
           c->top_k, c->top_p, c->temperature, c->do_sample ? "sampling" : "greedy", c->max_length);
}
