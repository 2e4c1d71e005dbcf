"""Random-weight musicgen-small and musicgen-large checkpoints for the GPU benchmark (bench/run_lm_gpu.sh).

Made on the GPU machine, never committed (small ~1.2 GB, large ~6.8 GB in fp16). Every size is the real one
(../shared/reference/musicgen.md §1.1): the decoder (small: hidden 1024, 24 layers, 16 heads, ffn 4096;
large: 2048, 48, 32, 8192; both 4 codebooks of 2048 and 2048 positions), t5-base as the text encoder for
both (d_model 768, 12 layers, 12 heads, d_ff 3072, relu, vocab 32128) and facebook/encodec_32khz's EnCodec
(tools/reference/make_encodec32k_hash.config()), with the real generation_config.json
(tools/reference/tiny_model.generation_config()). Weights are HF's own init (N(0, 0.02), LayerNorms 1 and 0),
seeded, made on the GPU when there is one (seconds instead of minutes for large) and saved in --dtype
(default fp16, what the HF peer runs; musae reads fp16 and rounds to bf16 itself) as sharded safetensors
(5 GB shards, as the Hub's musicgen-large), so musae's sharded loader is what the benchmark exercises.

    python bench/make_gpu_configs.py OUT_ROOT [--sizes small,large] [--dtype fp16|bf16|fp32] [--tiny]
      -> OUT_ROOT/musicgen-small-random, OUT_ROOT/musicgen-large-random
    --tiny: decoder 2 layers, hidden 64 (a seconds-long smoke test of this script and of the peer on a CPU)
"""

import argparse
import os
import sys
import time

import torch

REF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference")
sys.path.insert(0, REF)

# decoder sizes of facebook/musicgen-{small,large} (convert_musicgen_transformers; ffn = 4 · hidden)
SIZES = {
    "small": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096),
    "large": dict(hidden_size=2048, num_hidden_layers=48, num_attention_heads=32, ffn_dim=8192),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=256),
}
DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def config(size):
    from transformers import MusicgenConfig, MusicgenDecoderConfig, T5Config

    import make_encodec32k_hash

    t5 = T5Config(vocab_size=32128, d_model=768, d_kv=64, num_heads=12, num_layers=12, num_decoder_layers=12,
                  d_ff=3072, feed_forward_proj="relu", relative_attention_num_buckets=32,
                  relative_attention_max_distance=128, layer_norm_epsilon=1e-6, is_encoder_decoder=True,
                  pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                  architectures=["T5ForConditionalGeneration"])
    if size == "tiny":  # the smoke test keeps the text encoder and codec small too
        t5.num_layers = t5.num_decoder_layers = 1
    dec = MusicgenDecoderConfig(vocab_size=2048, max_position_embeddings=2048, activation_function="gelu",
                                num_codebooks=4, audio_channels=1, pad_token_id=2048, bos_token_id=2048,
                                tie_word_embeddings=False, **SIZES[size])
    cfg = MusicgenConfig(text_encoder=t5, audio_encoder=make_encodec32k_hash.config(), decoder=dec)
    cfg.architectures = ["MusicgenForConditionalGeneration"]
    return cfg


def make(size, out, dtype, device):
    import tiny_model
    from transformers import MusicgenForConditionalGeneration

    t0 = time.time()
    torch.manual_seed(0)
    with torch.device(device):
        model = MusicgenForConditionalGeneration(config(size)).eval()
    model = model.to(DTYPES[dtype])
    model.generation_config = tiny_model.generation_config()
    t1 = time.time()
    model.save_pretrained(out, max_shard_size="5GB")
    n_dec = sum(p.numel() for n, p in model.named_parameters() if n.startswith("decoder."))
    n_all = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: decoder {n_dec / 1e6:.1f} M parameters, all {n_all / 1e6:.1f} M, {dtype}; "
          f"init {t1 - t0:.1f} s on {device}, save {time.time() - t1:.1f} s", flush=True)
    del model
    if device == "cuda":
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_root")
    ap.add_argument("--sizes", default="small,large")
    ap.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--force", action="store_true", help="rewrite folders that already hold a checkpoint")
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for size in ["tiny"] if a.tiny else a.sizes.split(","):
        if size not in SIZES:
            sys.exit(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
        out = os.path.join(a.out_root, f"musicgen-{size}-random")
        if not a.force and os.path.exists(os.path.join(out, "config.json")):
            print(f"{out}: exists (--force rewrites it)")
            continue
        make(size, out, a.dtype, device)


if __name__ == "__main__":
    main()
