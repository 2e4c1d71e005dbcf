"""A musicgen-small-sized MusicgenForConditionalGeneration with random weights, for bench/run_lm_cpu.sh.

Decoder exactly musicgen-small's (hidden 1024, 24 layers, 16 heads, ffn 4096, 4 codebooks of 2048, 2048
positions; 1.7 GB fp32); the T5 text encoder keeps t5-base's width (768, so enc_to_dec_proj is the real
[1024, 768]) but has one layer and a small vocabulary, and EnCodec is narrow: neither is timed. Weights are
N(0, 0.02) as HF initializes them (LayerNorms 1/0), seeded. Not committed: about 1.8 GB.

    python bench/lm_make_model.py OUT_DIR [--size small|medium]

--size medium gives musicgen-medium's decoder (hidden 1536, 48 layers, 24 heads, ffn 6144: 6 GB fp32), for
bench/load_bench.c; it needs about 13 GB of memory while saving.
"""

import sys

import torch


def main():
    from transformers import (EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, MusicgenForConditionalGeneration,
                              T5Config)

    out = sys.argv[1]
    size = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--size" else "small"
    if size not in ("small", "medium"):
        sys.exit(f"--size {size}: expected small or medium")
    H, L, heads = (1024, 24, 16) if size == "small" else (1536, 48, 24)
    torch.manual_seed(0)
    t5 = T5Config(vocab_size=1024, d_model=768, d_kv=64, num_heads=12, num_layers=1, d_ff=512,
                  feed_forward_proj="relu", is_encoder_decoder=True, pad_token_id=0, eos_token_id=1,
                  decoder_start_token_id=0)
    enc = EncodecConfig(sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
                        codebook_dim=16, hidden_size=16, num_filters=4, num_residual_layers=1, num_lstm_layers=1,
                        target_bandwidths=[2.2], normalize=False, use_causal_conv=False, pad_mode="reflect",
                        norm_type="weight_norm", chunk_length_s=None, overlap=None, use_conv_shortcut=False)
    dec = MusicgenDecoderConfig(vocab_size=2048, max_position_embeddings=2048, num_hidden_layers=L, ffn_dim=4 * H,
                                num_attention_heads=heads, hidden_size=H, activation_function="gelu",
                                num_codebooks=4, audio_channels=1, pad_token_id=2048, bos_token_id=2048)
    cfg = MusicgenConfig(text_encoder=t5, audio_encoder=enc, decoder=dec)
    model = MusicgenForConditionalGeneration(cfg).eval()
    model.generation_config.update(bos_token_id=2048, decoder_start_token_id=2048, pad_token_id=2048,
                                   do_sample=True, guidance_scale=3.0, max_length=1500)
    model.save_pretrained(out, max_shard_size="20GB")
    n = sum(p.numel() for n_, p in model.named_parameters() if n_.startswith("decoder."))
    print(f"wrote {out}: decoder {n / 1e6:.1f} M parameters ({n * 4 / 2**30:.2f} GiB fp32)")


if __name__ == "__main__":
    main()
