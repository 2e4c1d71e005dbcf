/* config.json reader: valid configs with defaults and derived values, and bad configs, each rejected with its
 * own message naming the file and the field. Configs are built as a base text plus a JSON merge patch
 * (RFC 7386: objects merge, null deletes), so every case states only what it changes. Also musae_read_file, the
 * whole-file reader config.json goes through. */
#include <cjson/cJSON.h>
#include <unistd.h>

#include <errno.h>
#include <sys/stat.h>

#include "host/io/config.h"
#include "host/io/path.h"
#include "test.h"

#ifndef MUSAE_CORPUS
#define MUSAE_CORPUS "tests/corpus"
#endif

/* The tiny fixture's shape: 32 kHz EnCodec with ratios [8,5,4,4] and one bandwidth of 2.2 kbps. */
static const char *k_base = "{"
                            "\"model_type\": \"musicgen\","
                            "\"decoder\": {\"vocab_size\": 2048, \"num_hidden_layers\": 2, \"hidden_size\": 32,"
                            "  \"num_attention_heads\": 4, \"ffn_dim\": 128, \"num_codebooks\": 4,"
                            "  \"max_position_embeddings\": 2048, \"activation_function\": \"gelu\","
                            "  \"audio_channels\": 1, \"scale_embedding\": false},"
                            "\"text_encoder\": {\"model_type\": \"t5\", \"vocab_size\": 1152, \"d_model\": 24,"
                            "  \"d_kv\": 8, \"d_ff\": 64, \"num_layers\": 2, \"num_heads\": 4,"
                            "  \"feed_forward_proj\": \"relu\"},"
                            "\"audio_encoder\": {\"model_type\": \"encodec\", \"sampling_rate\": 32000,"
                            "  \"codebook_size\": 2048, \"upsampling_ratios\": [8, 5, 4, 4],"
                            "  \"target_bandwidths\": [2.2], \"num_filters\": 4, \"hidden_size\": 16,"
                            "  \"audio_channels\": 1}"
                            "}";

static void merge_patch(cJSON *target, const cJSON *patch) {
    for (const cJSON *p = patch->child; p; p = p->next) {
        cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
        } else if (cJSON_IsObject(p) && cJSON_IsObject(t)) {
            merge_patch(t, p);
        } else {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
            cJSON_AddItemToObject(target, p->string, cJSON_Duplicate(p, 1));
        }
    }
}

/* base + patch as JSON text (malloc'd). */
static char *patched(const char *patch) {
    cJSON *b = cJSON_Parse(k_base), *p = cJSON_Parse(patch);
    if (!b || !p) {
        fprintf(stderr, "test bug: unparsable patch %s\n", patch);
        exit(1);
    }
    merge_patch(b, p);
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    cJSON_Delete(p);
    return s;
}

static int parse_patch(musae_model_config *c, const char *patch, char *err, int n) {
    char *txt = patched(patch);
    int rc = musae_config_parse(c, "cfg/config.json", txt, err, n);
    free(txt);
    return rc;
}

static void test_valid(void) {
    musae_model_config c;
    char err[512] = "";
    CHECK(parse_patch(&c, "{}", err, sizeof err) == 0, "base: %s", err);
    CHECK(!strcmp(c.model_type, "musicgen") && c.has_text && c.has_audio, "base kind");
    const musae_decoder_config *d = &c.decoder;
    CHECK(d->num_hidden_layers == 2 && d->hidden_size == 32 && d->num_attention_heads == 4 && d->ffn_dim == 128 &&
              d->num_codebooks == 4 && d->vocab_size == 2048 && d->max_position_embeddings == 2048,
          "decoder fields");
    CHECK(d->pad_token_id == 2048 && d->bos_token_id == 2048 && !d->scale_embedding, "decoder defaults");
    CHECK(!strcmp(d->activation_function, "gelu"), "activation");
    const musae_t5_config *t = &c.text;
    CHECK(t->vocab_size == 1152 && t->d_model == 24 && t->d_kv == 8 && t->d_ff == 64 && t->num_layers == 2 &&
              t->num_heads == 4,
          "t5 fields");
    CHECK(t->relative_attention_num_buckets == 32 && t->relative_attention_max_distance == 128 &&
              t->layer_norm_epsilon == 1e-6 && t->pad_token_id == 0 && t->eos_token_id == 1,
          "t5 defaults");
    CHECK(!t->is_gated && !strcmp(t->dense_act_fn, "relu"), "t5 relu");
    const musae_encodec_config *a = &c.audio;
    CHECK(a->hop_length == 640, "hop %d, want 8*5*4*4 = 640", a->hop_length);
    CHECK(a->frame_rate == 50, "frame rate %d, want 32000/640 = 50", a->frame_rate);
    CHECK(a->num_quantizers == 4, "quantizers %d, want 1000*2.2 // (50*11) = 4", a->num_quantizers);
    CHECK(a->n_ratios == 4 && a->upsampling_ratios[3] == 4 && a->n_bandwidths == 1, "ratios/bandwidths");
    CHECK(a->codebook_dim == 16 && a->kernel_size == 7 && a->last_kernel_size == 7 && a->residual_kernel_size == 3 &&
              a->dilation_growth_rate == 2 && a->num_residual_layers == 1 && a->num_lstm_layers == 2 &&
              a->compress == 2 && a->use_causal_conv && a->use_conv_shortcut && !a->normalize &&
              a->trim_right_ratio == 1.0 && !strcmp(a->pad_mode, "reflect") && !strcmp(a->norm_type, "weight_norm"),
          "encodec defaults");
    CHECK(c.guidance_scale == 3.0 && c.max_length == 1500 && c.top_k == 50 && c.do_sample && c.temperature == 1.0 &&
              c.top_p == 1.0,
          "generation defaults");

    /* the smallest accepted config: every decoder field defaulted (musicgen-medium's decoder) */
    CHECK(musae_config_parse(&c, "min.json", "{\"model_type\": \"musicgen\", \"decoder\": {}}", err, sizeof err) == 0,
          "minimal: %s", err);
    CHECK(!c.has_text && !c.has_audio && c.decoder.num_hidden_layers == 24 && c.decoder.hidden_size == 1024 &&
              c.decoder.num_attention_heads == 16 && c.decoder.ffn_dim == 4096 && c.decoder.num_codebooks == 4,
          "minimal defaults");

    /* EnCodec defaults (24 kHz, ratios [8,5,4,2] -> hop 320, 75 frames/s, 24 kbps -> 32 quantizers of 1024) */
    CHECK(parse_patch(&c, "{\"audio_encoder\": {\"sampling_rate\": null, \"codebook_size\": null,"
                          " \"upsampling_ratios\": null, \"target_bandwidths\": null, \"hidden_size\": null},"
                          " \"decoder\": {\"num_codebooks\": 32, \"vocab_size\": 1024}}",
                      err, sizeof err) == 0,
          "encodec defaults: %s", err);
    CHECK(c.audio.hop_length == 320 && c.audio.frame_rate == 75 && c.audio.num_quantizers == 32 &&
              c.audio.codebook_size == 1024 && c.audio.codebook_dim == 128,
          "encodec derived: hop %d rate %d q %d", c.audio.hop_length, c.audio.frame_rate, c.audio.num_quantizers);
    /* the largest bandwidth decides; frame rate rounds up (HF: math.ceil) */
    CHECK(parse_patch(&c, "{\"audio_encoder\": {\"target_bandwidths\": [1.0, 2.2, 1.5]}}", err, sizeof err) == 0 &&
              c.audio.num_quantizers == 4,
          "max bandwidth: %s", err);
    /* 2200 // (51 · 11 bits) = 3 (HF: codebook_nbits = ceil(log2(2048))) */
    CHECK(parse_patch(&c, "{\"audio_encoder\": {\"sampling_rate\": 32001, \"target_bandwidths\": [2.2]},"
                          " \"decoder\": {\"num_codebooks\": 3}}",
                      err, sizeof err) == 0 &&
              c.audio.frame_rate == 51 && c.audio.num_quantizers == 3,
          "ceil frame rate: %d (%s)", c.audio.frame_rate, err);
    /* gated T5 v1.1 */
    CHECK(parse_patch(&c, "{\"text_encoder\": {\"feed_forward_proj\": \"gated-gelu\"}}", err, sizeof err) == 0, "%s",
          err);
    CHECK(c.text.is_gated && !strcmp(c.text.dense_act_fn, "gelu_new"), "gated-gelu -> gelu_new");
    /* ... but a plain "gelu" is HF's exact erf GELU, and "gated-relu" keeps relu */
    CHECK(parse_patch(&c, "{\"text_encoder\": {\"feed_forward_proj\": \"gelu\"}}", err, sizeof err) == 0 &&
              !c.text.is_gated && !strcmp(c.text.dense_act_fn, "gelu"),
          "gelu -> gelu (%s)", err);
    CHECK(parse_patch(&c, "{\"text_encoder\": {\"feed_forward_proj\": \"gated-relu\"}}", err, sizeof err) == 0 &&
              c.text.is_gated && !strcmp(c.text.dense_act_fn, "relu"),
          "gated-relu -> relu (%s)", err);
    CHECK(parse_patch(&c, "{\"text_encoder\": {\"feed_forward_proj\": \"gated-silu\"}}", err, sizeof err) != 0 &&
              strstr(err, "feed_forward_proj"),
          "gated-silu refused: %s", err);
    /* JSON null means "default"; booleans are accepted where HF stores them for ints */
    CHECK(parse_patch(&c, "{\"decoder\": {\"ffn_dim\": null, \"scale_embedding\": true, \"pad_token_id\": true}}", err,
                      sizeof err) == 0 &&
              c.decoder.ffn_dim == 4096 && c.decoder.scale_embedding && c.decoder.pad_token_id == 1,
          "null/bool: %s", err);
    /* unknown keys are ignored (HF configs carry many we do not need) */
    CHECK(parse_patch(&c, "{\"transformers_version\": \"4.45.0\", \"decoder\": {\"dropout\": 0.1, \"x\": [1, {}]}}", err,
                      sizeof err) == 0,
          "unknown keys: %s", err);
}

typedef struct {
    const char *name;
    const char *patch; /* merged into k_base; NULL: `raw` is the whole text */
    const char *raw;
    const char *msg;   /* substring of the error; it always starts with the file name */
} bad_cfg;

static const bad_cfg k_bad[] = {
    {"invalid_json", NULL, "{\"model_type\": \"musicgen\",", "not valid JSON"},
    {"root_array", NULL, "[{\"model_type\": \"musicgen\"}]", "not a JSON object"},
    {"missing_model_type", "{\"model_type\": null}", NULL, "model_type: missing (expected \"musicgen\")"},
    {"model_type_not_string", "{\"model_type\": 7}", NULL, "model_type: expected a string"},
    {"melody", "{\"model_type\": \"musicgen_melody\"}", NULL,
     "model_type: \"musicgen_melody\" checkpoints are not supported yet"},
    {"unknown_model_type", "{\"model_type\": \"gpt2\"}", NULL, "model_type: \"gpt2\" is not a MusicGen model"},
    {"missing_decoder", "{\"decoder\": null}", NULL, "decoder: missing or not an object"},
    {"decoder_not_object", "{\"decoder\": [1]}", NULL, "decoder: missing or not an object"},
    {"hidden_size_string", "{\"decoder\": {\"hidden_size\": \"32\"}}", NULL, "decoder.hidden_size: expected an integer"},
    {"codebooks_fraction", "{\"decoder\": {\"num_codebooks\": 4.5}}", NULL, "decoder.num_codebooks: expected an integer"},
    {"layers_zero", "{\"decoder\": {\"num_hidden_layers\": 0}}", NULL,
     "decoder.num_hidden_layers: must be positive, got 0"},
    {"int_too_big", "{\"decoder\": {\"ffn_dim\": 1e12}}", NULL, "decoder.ffn_dim: expected an integer"},
    {"heads_not_divisible", "{\"decoder\": {\"hidden_size\": 30}}", NULL,
     "decoder.hidden_size: 30 is not divisible by num_attention_heads 4"},
    {"activation", "{\"decoder\": {\"activation_function\": \"relu\"}}", NULL,
     "decoder.activation_function: \"relu\" is not supported"},
    {"activation_long", "{\"decoder\": {\"activation_function\": \"a-very-long-activation-name\"}}", NULL,
     "decoder.activation_function: string too long"},
    {"stereo", "{\"decoder\": {\"audio_channels\": 2}}", NULL,
     "decoder.audio_channels: 2: stereo MusicGen is not supported yet"},
    {"bool_wrong_type", "{\"decoder\": {\"scale_embedding\": \"yes\"}}", NULL,
     "decoder.scale_embedding: expected true or false"},
    {"text_not_object", "{\"text_encoder\": 5}", NULL, "text_encoder: not an object"},
    {"text_model_type", "{\"text_encoder\": {\"model_type\": \"bert\"}}", NULL,
     "text_encoder.model_type: \"bert\" is not supported (expected \"t5\")"},
    {"text_ffn_proj", "{\"text_encoder\": {\"feed_forward_proj\": \"gated-silu\"}}", NULL,
     "text_encoder.feed_forward_proj: \"gated-silu\" is not supported"},
    {"text_eps_type", "{\"text_encoder\": {\"layer_norm_epsilon\": \"1e-6\"}}", NULL,
     "text_encoder.layer_norm_epsilon: expected a number"},
    {"audio_not_object", "{\"audio_encoder\": \"encodec\"}", NULL, "audio_encoder: not an object"},
    {"audio_model_type", "{\"audio_encoder\": {\"model_type\": \"dac\"}}", NULL,
     "audio_encoder.model_type: \"dac\" is not supported (expected \"encodec\")"},
    {"ratios_empty", "{\"audio_encoder\": {\"upsampling_ratios\": []}}", NULL,
     "audio_encoder.upsampling_ratios: expected an array of 1..8 positive integers"},
    {"ratios_zero", "{\"audio_encoder\": {\"upsampling_ratios\": [8, 0]}}", NULL,
     "audio_encoder.upsampling_ratios: element 1 is not an integer in 1..64"},
    {"hop_overflow", "{\"audio_encoder\": {\"upsampling_ratios\": [64, 64, 64, 64, 64, 64, 64, 64]}}", NULL,
     "audio_encoder.upsampling_ratios: their product 281474976710656 (the hop length) is above 2^20"},
    {"bandwidths_type", "{\"audio_encoder\": {\"target_bandwidths\": 2.2}}", NULL,
     "audio_encoder.target_bandwidths: expected an array of 1..8 numbers"},
    {"bandwidth_negative", "{\"audio_encoder\": {\"target_bandwidths\": [-1]}}", NULL,
     "audio_encoder.target_bandwidths: element 0 is not a positive number"},
    {"no_quantizers", "{\"audio_encoder\": {\"target_bandwidths\": [0.1]}}", NULL,
     "audio_encoder.target_bandwidths: gives 0 quantizers"},
    {"codebook_dim", "{\"audio_encoder\": {\"codebook_dim\": -1}}", NULL, "audio_encoder.codebook_dim: must be positive"},
    {"pad_mode", "{\"audio_encoder\": {\"pad_mode\": \"zeros\"}}", NULL,
     "audio_encoder.pad_mode: \"zeros\" is not supported (reflect, constant)"},
    {"norm_type", "{\"audio_encoder\": {\"norm_type\": \"batch\"}}", NULL, "audio_encoder.norm_type: \"batch\" is not"},
    {"audio_stereo", "{\"audio_encoder\": {\"audio_channels\": 2}}", NULL,
     "audio_encoder.audio_channels: 2: only mono EnCodec is supported"},
    {"codebooks_mismatch", "{\"decoder\": {\"num_codebooks\": 8}}", NULL,
     "decoder.num_codebooks: 8 does not match the audio encoder's 4 quantizers"},
    {"vocab_mismatch", "{\"decoder\": {\"vocab_size\": 1024}}", NULL,
     "decoder.vocab_size: 1024 does not match the audio codebook size 2048"},
};
#define N_BAD ((int)(sizeof k_bad / sizeof k_bad[0]))

static void test_bad(void) {
    for (int i = 0; i < N_BAD; i++) {
        char name[128], err[512] = "";
        snprintf(name, sizeof name, "bad/%s.json", k_bad[i].name);
        char *txt = k_bad[i].patch ? patched(k_bad[i].patch) : strdup(k_bad[i].raw);
        musae_model_config c;
        int rc = musae_config_parse(&c, name, txt, err, sizeof err);
        CHECK(rc != 0, "%s: accepted", k_bad[i].name);
        CHECK(!strncmp(err, name, strlen(name)) && err[strlen(name)] == ':', "%s: '%s' does not start with the file",
              k_bad[i].name, err);
        CHECK(strstr(err, k_bad[i].msg) != NULL, "%s: '%s' lacks '%s'", k_bad[i].name, err, k_bad[i].msg);
        /* specific: no other case's text matches (two cases deliberately share the decoder message) */
        for (int j = 0; j < N_BAD; j++)
            if (j != i && strcmp(k_bad[i].msg, k_bad[j].msg))
                CHECK(strstr(err, k_bad[j].msg) == NULL, "%s: '%s' also matches case %s", k_bad[i].name, err,
                      k_bad[j].name);
        free(txt);
    }
    /* a short error buffer truncates but stays a string */
    char tiny[12];
    musae_model_config c;
    CHECK(musae_config_parse(&c, "cfg/config.json", "[]", tiny, sizeof tiny) != 0 && strlen(tiny) == sizeof tiny - 1,
          "truncated error");
    printf("bad configs: %d rejected with their own message\n", N_BAD);
}

static void write_file(const char *path, const char *txt) {
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(txt, f);
    fclose(f);
}

static void test_load(void) {
    char dir[4096], path[4200], err[512] = "";
    snprintf(dir, sizeof dir, "%s/config_load", test_tmp());
    snprintf(path, sizeof path, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    CHECK(system(path) == 0, "mkdir");
    musae_model_config c;
    CHECK(musae_config_load(&c, dir, err, sizeof err) != 0, "no config.json");
    CHECK(strstr(err, "config.json: cannot read") && strstr(err, dir), "%s", err);

    snprintf(path, sizeof path, "%s/config.json", dir);
    char *txt = patched("{}");
    write_file(path, txt);
    free(txt);
    CHECK(musae_config_load(&c, dir, err, sizeof err) == 0, "load: %s", err);
    CHECK(c.guidance_scale == 3.0 && c.top_k == 50, "defaults without generation_config.json");

    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    write_file(path, "{\"guidance_scale\": 4.5, \"max_length\": 256, \"top_k\": 250, \"do_sample\": false,"
                     " \"temperature\": 0.7, \"top_p\": 0.9, \"pad_token_id\": 2048}");
    CHECK(musae_config_load(&c, dir, err, sizeof err) == 0, "load with generation config: %s", err);
    CHECK(c.guidance_scale == 4.5 && c.max_length == 256 && c.top_k == 250 && !c.do_sample && c.temperature == 0.7 &&
              c.top_p == 0.9,
          "generation_config.json values");
    write_file(path, "{\"top_k\": \"many\"}");
    CHECK(musae_config_load(&c, dir, err, sizeof err) != 0, "bad generation config");
    CHECK(strstr(err, "generation_config.json: top_k: expected an integer") != NULL, "%s", err);
    write_file(path, "[1]");
    CHECK(musae_config_load(&c, dir, err, sizeof err) != 0, "generation config not an object");
    CHECK(strstr(err, "generation_config.json: not a JSON object") != NULL, "%s", err);
    unlink(path);

    /* the bad message from a file names the file's path */
    snprintf(path, sizeof path, "%s/config.json", dir);
    txt = patched("{\"model_type\": \"musicgen_melody\"}");
    write_file(path, txt);
    free(txt);
    CHECK(musae_config_load(&c, dir, err, sizeof err) != 0, "melody from file");
    CHECK(strstr(err, path) && strstr(err, "not supported yet"), "%s", err);

    /* the committed fixture model and the fuzz seed configs */
    snprintf(dir, sizeof dir, "%s/tiny-musicgen", test_fixtures());
    CHECK(musae_config_load(&c, dir, err, sizeof err) == 0, "fixture: %s", err);
    CHECK(c.audio.hop_length == 640 && c.audio.frame_rate == 50 && c.audio.num_quantizers == 4 &&
              c.decoder.num_codebooks == 4 && c.has_text && c.has_audio,
          "fixture derived values");
    const char *seeds[] = {"minimal.json", "tiny.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/config/%s", MUSAE_CORPUS, seeds[i]);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL, "seed %s", path);
        if (!f) continue;
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        CHECK(musae_config_parse(&c, seeds[i], buf, err, sizeof err) == 0, "seed %s: %s", seeds[i], err);
    }
}

/* musae_read_file (host/io/path.h), through which config.json and musae's other whole JSON and text files are
 * read: every byte and the length (a NUL inside too), an empty file, and a missing file, a file over
 * MUSAE_READ_FILE_MAX and a folder refused with errno and "PATH: cannot read: <reason>". */
static void test_read_file(void) {
    char dir[4096], path[4200], want[4400], err[4400] = "";
    snprintf(dir, sizeof dir, "%s/read_file_%d", test_tmp(), (int)getpid());
    CHECK(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s", dir);
    snprintf(path, sizeof path, "%s/a.bin", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite("ab\0cd", 1, 5, f) == 5 && fclose(f) == 0, "write %s", path);
    size_t n = 99;
    char *s = musae_read_file(path, &n, err, sizeof err);
    CHECK(s && n == 5 && !memcmp(s, "ab\0cd", 6), "a.bin: %zu bytes", n);
    free(s);
    write_file(path, "");
    s = musae_read_file(path, &n, err, sizeof err);
    CHECK(s && n == 0 && s[0] == 0, "an empty file is an empty string");
    free(s);
    unlink(path);
    errno = 0;
    CHECK(musae_read_file(path, &n, err, sizeof err) == NULL && errno == ENOENT, "a missing file");
    snprintf(want, sizeof want, "%s: cannot read: %s", path, strerror(ENOENT));
    CHECK(!strcmp(err, want), "'%s', want '%s'", err, want);
    errno = 0;
    CHECK(musae_read_file(path, NULL, NULL, 0) == NULL && errno == ENOENT, "a missing file, no message wanted");
    /* one byte over MUSAE_READ_FILE_MAX (sparse: no disk used) is refused before any allocation */
    f = fopen(path, "wb");
    CHECK(f && ftruncate(fileno(f), (off_t)MUSAE_READ_FILE_MAX + 1) == 0 && fclose(f) == 0, "a sparse %s", path);
    errno = 0;
    CHECK(musae_read_file(path, &n, err, sizeof err) == NULL && errno == EFBIG, "a file over the limit");
    snprintf(want, sizeof want, "%s: cannot read: %s", path, strerror(EFBIG));
    CHECK(!strcmp(err, want), "'%s', want '%s'", err, want);
    unlink(path);
    errno = 0;
    CHECK(musae_read_file(dir, &n, err, sizeof err) == NULL && errno != 0, "a folder is read as a file");
    snprintf(want, sizeof want, "%s: cannot read: ", dir);
    CHECK(!strncmp(err, want, strlen(want)), "'%s'", err);
    rmdir(dir);
}

int main(void) {
    test_read_file();
    test_valid();
    test_bad();
    test_load();
    TEST_END();
}
