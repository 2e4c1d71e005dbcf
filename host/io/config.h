/* config.json of a Hugging Face MusicGen composite model (model_type "musicgen") into plain structs.
 * Missing keys take the Hugging Face class defaults (save_pretrained normally writes them all); a key of
 * the wrong type is an error naming the file and the field ("config.json: decoder.hidden_size: expected
 * an integer"). Derived values (frame rate, number of quantizers) are computed here, once, as HF does. */
#ifndef MUSAE_CONFIG_H
#define MUSAE_CONFIG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int vocab_size;              /* 2048 (codes per codebook; embeddings have vocab_size + 1 rows) */
    int max_position_embeddings; /* 2048 */
    int num_hidden_layers;
    int ffn_dim;
    int num_attention_heads;
    int hidden_size;
    int num_codebooks;           /* 4 (mono) */
    int audio_channels;          /* 1 (stereo checkpoints: 2, not supported yet) */
    int pad_token_id, bos_token_id;
    int scale_embedding;         /* read but unused by HF's forward (embed_scale is never applied) */
    char activation_function[16];
} musae_decoder_config;

typedef struct {
    int vocab_size, d_model, d_kv, d_ff, num_layers, num_heads;
    int relative_attention_num_buckets, relative_attention_max_distance;
    double layer_norm_epsilon;
    char feed_forward_proj[24]; /* "relu" (t5-base) or "gated-gelu" (v1.1) */
    int is_gated;               /* derived: feed_forward_proj starts with "gated-" */
    char dense_act_fn[16];      /* derived: "relu" or "gelu_new" (HF maps gated-gelu to gelu_new) */
    int pad_token_id, eos_token_id;
} musae_t5_config;

#define MUSAE_MAX_RATIOS 8
typedef struct {
    int sampling_rate, audio_channels, num_filters, hidden_size, codebook_size, codebook_dim;
    int n_ratios;
    int upsampling_ratios[MUSAE_MAX_RATIOS];
    int kernel_size, last_kernel_size, residual_kernel_size, dilation_growth_rate, num_residual_layers;
    int num_lstm_layers, compress, use_causal_conv, use_conv_shortcut, normalize;
    double trim_right_ratio;
    char pad_mode[16], norm_type[24];
    int n_bandwidths;
    double target_bandwidths[8];
    /* derived */
    int hop_length;     /* product of ratios (640 at 32 kHz) */
    int frame_rate;     /* ceil(sampling_rate / hop_length) (50) */
    int num_quantizers; /* int(1000 * max(target_bandwidths) // (frame_rate * ceil(log2(codebook_size)))) (4) */
} musae_encodec_config;

typedef struct {
    char model_type[32];
    musae_decoder_config decoder;
    musae_t5_config text;
    musae_encodec_config audio;
    int has_text, has_audio;
    /* generation_config.json (defaults as transformers' GenerationConfig + the MusicGen converter) */
    double guidance_scale;
    int max_length, top_k, do_sample;
    double temperature, top_p;
} musae_model_config;

/* Reads DIR/config.json (and DIR/generation_config.json when present). 0, or -1 with a reason in err. */
int musae_config_load(musae_model_config *c, const char *dir, char *err, int errlen);
/* Parses a config.json text (the fuzz target and tests use this); name is used in messages. */
int musae_config_parse(musae_model_config *c, const char *name, const char *json, char *err, int errlen);
/* The EnCodec config of a folder: config.json of a standalone codec (model_type "encodec", e.g.
 * facebook/encodec_32khz) or the "audio_encoder" section of a MusicGen composite. 0, or -1 with a reason. */
int musae_encodec_config_load(musae_encodec_config *a, const char *dir, char *err, int errlen);
int musae_encodec_config_parse(musae_encodec_config *a, const char *name, const char *json, char *err, int errlen);
/* One-paragraph summary for `musae info`. */
void musae_config_print(const musae_model_config *c);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_CONFIG_H */
