/* EnCodec (HF EncodecModel, non-causal, weight norm; the 32 kHz codec of MusicGen): audio ↔ codes.
 * Architecture, padding and names: ../shared/reference/musicgen.md §4 and HF modeling_encodec.py.
 *
 *   encode: samples [N] ─ SEANet encoder ─► embeddings [F, hidden] ─ RVQ ─► codes [n_q, F], F = ceil(N / hop)
 *   decode: codes [n_q, F] ─ Σ codebooks ─► [F, hidden] ─ SEANet decoder ─► samples [hop · F]
 *
 * Activations are time-major ([rows = time, channels contiguous]) so every convolution is a few GEMMs
 * over strided views of its input (kernels/cpu/conv1d.c).
 *
 * Long signals, bounded memory, same result as one pass. Both SEANets are a stack of convolutions with a
 * finite receptive field, one LSTM (causal, exact with its state carried across pieces), and another
 * finite stack. Each finite stack runs over windows aligned to its total stride that reach far enough past
 * the rows they keep for every kept row to see exactly the inputs it sees in one pass; windows that touch
 * the true start or end get HF's edge padding because their edge is the signal's edge. So chunked output
 * equals one-pass output up to float summation order in the GEMMs (tests/test_encodec.c checks codes
 * equal and embeddings/audio within 1e-5 with windows of a few frames), and memory depends on the chunk
 * size, not on the length of the audio. */
#ifndef MUSAE_ENCODEC_H
#define MUSAE_ENCODEC_H

#include <stdint.h>

#include "host/core/progress.h"
#include "host/io/audio.h"
#include "host/io/config.h"
#include "host/io/safetensors.h"
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float *w;      /* [c_out, k, c_in] on the ops device (weight norm folded, taps before channels) */
    float *b;      /* [c_out] */
    int c_in, c_out, k, stride, dilation;
    int pad_left, pad_right; /* HF non-causal split of k_eff - stride: right = total / 2, left the rest */
} encodec_conv;

typedef struct {
    float *w;      /* [stride, c_out, k / stride, c_in] polyphase (kernels/ops.h), weight norm folded */
    float *b;      /* [c_out] */
    int c_in, c_out, k, stride;
    int crop_left; /* of the k - stride surplus rows; right = surplus / 2 is cropped on the right */
} encodec_convt;

typedef struct {
    encodec_conv conv1;    /* block.1: dim → dim / compress, k = residual_kernel_size, dilated */
    encodec_conv conv2;    /* block.3: back to dim, k 1 */
    encodec_conv shortcut; /* use_conv_shortcut only (k 1); w == NULL means identity */
} encodec_resblock;

typedef enum { ENCODEC_CONV, ENCODEC_CONVT, ENCODEC_RES, ENCODEC_ELU } encodec_layer_kind;

typedef struct {
    encodec_layer_kind kind;
    int hf_index; /* index in HF's encoder.layers / decoder.layers */
    encodec_conv conv;
    encodec_convt convt;
    encodec_resblock res;
} encodec_layer;

#define ENCODEC_MAX_LAYERS 40
/* A run of layers with a finite receptive field. One output row per `down` input rows when down > 1, `up`
 * output rows per input row when up > 1. */
typedef struct {
    int n;
    encodec_layer layers[ENCODEC_MAX_LAYERS];
    int c_in, c_out;
    int down, up;
} encodec_stack;

#define ENCODEC_MAX_LSTM 4
typedef struct {
    int n_layers, dim, hf_index;
    float *w_ih[ENCODEC_MAX_LSTM], *w_hh[ENCODEC_MAX_LSTM]; /* [4·dim, dim] */
    float *b_ih[ENCODEC_MAX_LSTM], *b_hh[ENCODEC_MAX_LSTM]; /* [4·dim] */
} encodec_lstm;

typedef struct {
    musae_encodec_config cfg;
    const musae_ops *ops;
    int n_q, codebook_size, dim, hop; /* dim = hidden_size = codebook_dim */
    int reflect;                      /* pad_mode "reflect" (else zeros) */
    encodec_stack enc_front;          /* samples [N, 1] → [F, 2^n·filters]: conv, (resblocks, ELU, down-conv)×n */
    encodec_lstm enc_lstm;            /* with residual */
    encodec_stack enc_back;           /* ELU, conv → embeddings [F, dim] */
    encodec_stack dec_front;          /* conv [F, dim] → [F, 2^n·filters] */
    encodec_lstm dec_lstm;
    encodec_stack dec_back;           /* (ELU, up-conv, resblocks)×n, ELU, conv → samples [hop·F, 1] */
    float *codebooks;                 /* [n_q, codebook_size, dim] on the device */
    float *codebooks_host;            /* the same on the host (RVQ residual updates) */
    float *codebook_sq;               /* [n_q, codebook_size] ‖E‖² (host) */
    struct encodec_pool *pool;        /* work buffers kept between encoders and decodes (model/encodec_pool.h) */
} encodec;

/* Loads the codec from a model folder: a MusicGen composite (config.json "audio_encoder", tensors under
 * "audio_encoder.") or a standalone EnCodec (model_type "encodec", e.g. facebook/encodec_32khz). Weight
 * norm is folded from either spelling (weight_g/weight_v or parametrizations.weight.original0/1). Every
 * tensor is checked by name and shape; tensors of the codec nobody reads are an error (the checkpoint does
 * not match its config). Bad input exits through musae_fail with the file and tensor named. */
void encodec_load(encodec *m, const char *dir, const musae_ops *ops);
/* The same from an open checkpoint: names are prefix + HF's names. */
void encodec_load_st(encodec *m, const musae_encodec_config *cfg, musae_st *st, const char *prefix,
                     const musae_ops *ops);
void encodec_free(encodec *m);

/* The state_dict entries HF's EncodecModel has for a config (transformers-5 spelling, weight norm as
 * parametrizations.weight.original0 = g / original1 = v), in a fixed order. Returns the count; fills at most
 * max entries. For synthetic checkpoints (model/encodec_hash.c) and tests. */
typedef struct {
    char name[96];
    int rank;
    int64_t shape[3];
} encodec_param;
int encodec_params(const musae_encodec_config *cfg, encodec_param *out, int max);

/* Checks a config is one this implementation runs (non-causal, weight norm, no normalization, mono,
 * codebook_dim == hidden_size). 0, or -1 with the reason in err. */
int encodec_config_supported(const musae_encodec_config *cfg, char *err, size_t errlen);

/* ---- encoding: push samples as they arrive, codes come out in order ---------------------------------- */
typedef struct encodec_encoder encodec_encoder;
/* chunk_frames: frames computed per window (memory grows linearly with it; 0 = default 200).
 * keep_embeddings: also record the encoder output before the RVQ (tests). */
encodec_encoder *encodec_encoder_new(const encodec *m, int chunk_frames, int keep_embeddings);
void encodec_encoder_push(encodec_encoder *e, const float *x, int64_t n); /* mono samples at cfg rate (host) */
/* Ends the input and computes the last frames. Codes are [n_q, F] (codebook-major, int64, host). */
void encodec_encoder_finish(encodec_encoder *e);
int64_t encodec_encoder_frames(const encodec_encoder *e); /* frames finished so far */
const int64_t *encodec_encoder_codes(const encodec_encoder *e); /* after finish: [n_q, F] */
const float *encodec_encoder_embeddings(const encodec_encoder *e); /* [F, dim] or NULL */
void encodec_encoder_free(encodec_encoder *e);

/* One-shot convenience: codes [n_q, ceil(n / hop)] into a malloc'd array; *frames gets F. */
int64_t *encodec_encode(const encodec *m, const float *x, int64_t n, int64_t *frames);

/* Encoders stepping together (on the CPU table): clips of one length share the LSTM recurrence's pass over
 * its weights (the encoder's costliest part, bound by reading them), up to this many at once. */
#define ENCODEC_BATCH_MAX 8
/* encodec_encode for nb clips x[b] of n[b] samples: codes[b] gets a malloc'd [n_q, frames[b]], and emb (may be
 * NULL) a malloc'd [frames[b], dim] of encoder outputs (before the RVQ). Each clip's codes and embeddings are
 * bitwise those of encoding it alone, whatever else is in the call: clips of one length run in lockstep in
 * groups of up to ENCODEC_BATCH_MAX (one at a time on other tables), each other length on its own. */
void encodec_encode_batch(const encodec *m, int nb, const float *const *x, const int64_t *n, int64_t **codes,
                          int64_t *frames, float **emb);

/* ---- decoding ------------------------------------------------------------------------------------------- */
/* Receives hop · (frames of the chunk) samples at a time, in order (host memory, valid during the call). */
typedef void (*encodec_sink)(void *ctx, const float *samples, int64_t n);
/* codes [n_q, F] (host, each in [0, codebook_size): asserted). Samples hop·F in total. chunk_frames as above. */
void encodec_decode(const encodec *m, const int64_t *codes, int64_t frames, int chunk_frames, encodec_sink sink,
                    void *ctx);
/* One-shot convenience: malloc'd [hop · F] samples. */
float *encodec_decode_all(const encodec *m, const int64_t *codes, int64_t frames);
/* The same through windows of chunk_frames (as encodec_decode; 0 = encodec_decode_all). */
float *encodec_decode_chunked(const encodec *m, const int64_t *codes, int64_t frames, int chunk_frames);

/* Decodes codes [n_q, F] into an audio file at the codec's rate (mono; format as host/io/audio.h: WAV 16-bit,
 * WAV float or FLAC), streaming, so memory does not grow with F. progress (may be NULL) advances by frames.
 * Samples beyond full scale in integer formats are clipped and counted in *stats (may be NULL): the caller
 * reports them. 0, or -1 with the reason in err (no file is left behind). */
int encodec_decode_to_file(const encodec *m, const int64_t *codes, int64_t frames, const char *path,
                           musae_audio_format fmt, int chunk_frames, musae_progress *progress,
                           musae_audio_write_stats *stats, char *err, size_t errlen);

/* Decodes codes [B, n_q, F] into B files at `path`, or, for B > 1, at path with _<b> before the extension
 * (out.wav → out_0.wav, out_1.wav). Shows progress per item and logs each file written, with a warning
 * when samples were clipped. 0, or -1 with the reason in err. */
int encodec_decode_to_files(const encodec *m, const int64_t *codes, int64_t batch, int64_t frames, const char *path,
                            musae_audio_format fmt, int chunk_frames, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* MUSAE_ENCODEC_H */
