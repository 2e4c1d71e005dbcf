"""Configuration and deterministic weight init of the tiny random MusicGen.

Sizes (see README.md):
  decoder  : vocab 2048 (+1 BOS row in the embeddings), 4 codebooks, hidden 32,
             2 layers, 4 heads (head_dim 8), ffn 128, 2048 positions, exact gelu
  T5       : d_model 24 (!= 32 so enc_to_dec_proj exists, with bias), d_kv 8,
             4 heads (inner dim 32 != d_model), 2 layers, d_ff 64, relu,
             32 buckets / max distance 128, vocab 1152 (= 1000 spm + 100 extra ids,
             padded to a multiple of 128 like t5-base's 32100 -> 32128)
  EnCodec  : 32 kHz semantics (ratios [8,5,4,4], hop 640, 50 Hz, 4 x 2048 codes,
             bandwidth 2.2, reflect pad, non-causal, weight norm, no conv shortcut,
             2-layer LSTM), widths shrunk: num_filters 4, hidden_size 16.
"""

import math

import torch

SPM_VOCAB = 1000
EXTRA_IDS = 100
T5_VOCAB = 1152  # ceil((SPM_VOCAB + EXTRA_IDS) / 128) * 128

# Logit gain of the LM heads: hidden after the final LayerNorm is ~unit variance,
# so logits have std ~ LM_HEAD_GAIN.  Large enough that greedy decoding has no
# near-ties (checked for every recorded step, see golden_lm.py).
LM_HEAD_GAIN = 4.0


def configs():
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    t5 = T5Config(
        vocab_size=T5_VOCAB, d_model=24, d_kv=8, num_heads=4, num_layers=2, num_decoder_layers=2, d_ff=64,
        feed_forward_proj="relu", relative_attention_num_buckets=32, relative_attention_max_distance=128,
        dropout_rate=0.1, layer_norm_epsilon=1e-6, initializer_factor=1.0, is_encoder_decoder=True,
        use_cache=True, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
        architectures=["T5ForConditionalGeneration"],
    )
    enc = EncodecConfig(
        sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
        codebook_dim=16, hidden_size=16, num_filters=4, num_residual_layers=1, kernel_size=7,
        last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2, compress=2, num_lstm_layers=2,
        target_bandwidths=[2.2], normalize=False, use_causal_conv=False, pad_mode="reflect",
        norm_type="weight_norm", trim_right_ratio=1.0, chunk_length_s=None, overlap=None,
        use_conv_shortcut=False, architectures=["EncodecModel"],
    )
    dec = MusicgenDecoderConfig(
        vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=2, ffn_dim=128, num_attention_heads=4,
        hidden_size=32, activation_function="gelu", num_codebooks=4, audio_channels=1, dropout=0.1,
        attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0, scale_embedding=False,
        pad_token_id=2048, bos_token_id=2048, tie_word_embeddings=False,
    )
    cfg = MusicgenConfig(text_encoder=t5, audio_encoder=enc, decoder=dec)
    cfg.architectures = ["MusicgenForConditionalGeneration"]
    return cfg


def generation_config():
    from transformers import GenerationConfig

    # as facebook/musicgen-{small,medium,large} generation_config.json
    return GenerationConfig(
        bos_token_id=2048, decoder_start_token_id=2048, pad_token_id=2048, do_sample=True,
        guidance_scale=3.0, max_length=1500,
    )


def _normal(g, shape, std):
    return torch.randn(shape, generator=g, dtype=torch.float32) * std


@torch.no_grad()
def init_weights(model, seed):
    """Re-initialise every parameter / persistent buffer from one torch.Generator.

    Iterates state_dict() in its (deterministic) order.  Weight-norm convs are
    set through parametrizations.weight.original0 (g) / original1 (v)."""
    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    new = {}
    for name, t in sd.items():
        shape = tuple(t.shape)
        if name.startswith("decoder."):
            if ".embed_tokens." in name:
                v = _normal(g, shape, 1.0)
            elif name.startswith("decoder.lm_heads."):
                v = _normal(g, shape, LM_HEAD_GAIN / math.sqrt(shape[1]))
            elif "layer_norm" in name and name.endswith(".weight"):
                v = 1.0 + _normal(g, shape, 0.2)
            elif "layer_norm" in name and name.endswith(".bias"):
                v = _normal(g, shape, 0.1)
            elif name.endswith(".weight") and len(shape) == 2:
                v = _normal(g, shape, 1.0 / math.sqrt(shape[1]))
            else:
                raise KeyError(name)
        elif name.startswith("enc_to_dec_proj."):
            v = _normal(g, shape, 1.0 / math.sqrt(shape[1])) if name.endswith("weight") else _normal(g, shape, 0.1)
        elif name.startswith("text_encoder."):
            if name.endswith("shared.weight") or name.endswith("embed_tokens.weight"):
                v = _normal(g, shape, 1.0)
            elif "relative_attention_bias" in name:
                v = _normal(g, shape, 1.0)
            elif "layer_norm" in name:
                v = 1.0 + _normal(g, shape, 0.2)
            elif len(shape) == 2:
                v = _normal(g, shape, 1.0 / math.sqrt(shape[1]))
            else:
                raise KeyError(name)
        elif name.startswith("audio_encoder."):
            if name.endswith("original0"):  # weight-norm g: per-output-row norm of the effective weight
                v = 0.8 + 0.4 * torch.rand(shape, generator=g)
            elif name.endswith("original1"):  # weight-norm v: direction only
                v = _normal(g, shape, 1.0)
            elif name.endswith("conv.bias"):
                v = _normal(g, shape, 0.1)
            elif ".lstm." in name:
                hid = model.audio_encoder.config.num_filters * 2 ** len(model.audio_encoder.config.upsampling_ratios)
                k = 1.0 / math.sqrt(hid)
                v = (torch.rand(shape, generator=g) * 2 - 1) * k
            elif name.endswith("codebook.embed"):
                stage = int(name.split("quantizer.layers.")[1].split(".")[0])
                v = _normal(g, shape, 1.0 * (0.5 ** stage))
            elif name.endswith("codebook.embed_avg"):
                continue  # copied from embed below
            elif name.endswith("codebook.cluster_size"):
                v = torch.ones(shape)
            elif name.endswith("codebook.inited"):
                v = torch.ones(shape)
            else:
                raise KeyError(name)
        else:
            raise KeyError(name)
        new[name] = v.to(t.dtype)
    for name in sd:
        if name.endswith("codebook.embed_avg"):
            new[name] = new[name[: -len("_avg")]].clone()
    missing, unexpected = model.load_state_dict(new, strict=True), None
    return model


def build(seed):
    from transformers import MusicgenForConditionalGeneration

    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(configs())
    init_weights(model, seed)
    model.generation_config = generation_config()
    model.eval()
    return model
