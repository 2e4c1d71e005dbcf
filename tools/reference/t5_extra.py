"""Extra T5 goldens for the C text encoder -> golden/t5_extra_gated.safetensors, golden/t5_extra_tokens.safetensors

t5_extra_gated.safetensors: a tiny *gated-gelu* (T5 v1.1) encoder, which the tiny MusicGen (relu, like
t5-base) does not exercise.  Random weights from one seeded generator, saved under the MusicGen prefix
"text_encoder." with the tied embedding stored as encoder.embed_tokens.weight (not shared.weight) to
exercise the loader's fallback.  max_distance 20 with 45 tokens puts pairs in the saturated buckets.
  text_encoder.*      the weights (f32)
  input_ids i64 [2,45], attention_mask i64 [2,45] (lengths 45 and 31, right padded with 0)
  block_out.<j> f32 [2,45,20]   residual after block j (no final norm)
  last_hidden_state f32 [2,45,20]
  __metadata__ config: a MusicGen-style config.json text whose text_encoder is this T5Config

t5_extra_tokens.safetensors: tokenizer and bucket cases golden_t5.py does not store.
  trunc_long i64 [512]       tok(LONG_2600, truncation=True).input_ids (model_max_length 512)
  trunc8 i64 [8]             tok(PROMPT, truncation=True, max_length=8).input_ids
  batch.input_ids, batch.attention_mask i64 [3,L]   tok(BATCH, padding=True)
  buckets i64 [4, 1201]      T5Attention._relative_position_bucket(rel, bidirectional=True, nb, md) for
                             rel = -600..600 and (nb, md) in BUCKET_CFGS
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import golden_t5  # noqa: E402
import torch  # noqa: E402

SEED = 4242
PROMPT = "90s rock song with loud guitars and heavy drums"
BATCH = ["calm piano", "", "80s pop track with bassy drums and synth \U0001F3B8"]
BUCKET_CFGS = [(32, 128), (16, 20), (64, 256), (8, 16)]


@torch.no_grad()
def gated():
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(vocab_size=200, d_model=20, d_kv=6, num_heads=3, num_layers=3, d_ff=40,
                   feed_forward_proj="gated-gelu", relative_attention_num_buckets=16,
                   relative_attention_max_distance=20, layer_norm_epsilon=1e-6, dropout_rate=0.0,
                   pad_token_id=0, eos_token_id=1, is_encoder_decoder=False, use_cache=False)
    model = T5EncoderModel(cfg).eval()
    g = torch.Generator().manual_seed(SEED)
    sd = model.state_dict()
    for name in sorted(sd):
        t = sd[name]
        if name.endswith("layer_norm.weight"):
            t.copy_(1 + 0.2 * torch.randn(t.shape, generator=g))
        elif "relative_attention_bias" in name or name == "shared.weight":
            t.copy_(torch.randn(t.shape, generator=g))
        else:  # linear [out, in]
            t.copy_(torch.randn(t.shape, generator=g) / t.shape[1] ** 0.5)
    S, lens = 45, [45, 31]
    ids = torch.randint(3, cfg.vocab_size, (2, S), generator=g)
    mask = torch.zeros(2, S, dtype=torch.long)
    for b, n in enumerate(lens):
        mask[b, :n] = 1
        ids[b, n - 1] = 1
        ids[b, n:] = 0
    captured = {}
    hooks = [blk.register_forward_hook(lambda m, i, o, j=j: captured.__setitem__(j, o[0].clone()))
             for j, blk in enumerate(model.encoder.block)]
    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
    for hk in hooks:
        hk.remove()
    t = {"input_ids": ids, "attention_mask": mask, "last_hidden_state": h}
    for j in range(cfg.num_layers):
        t[f"block_out.{j}"] = captured[j]
    for name, w in model.state_dict().items():
        if name == "encoder.embed_tokens.weight":
            continue  # tied to shared.weight; stored once, under the other name (below)
        t["text_encoder." + ("encoder.embed_tokens.weight" if name == "shared.weight" else name)] = w.clone()
    te = cfg.to_dict()
    te = {k: v for k, v in te.items() if isinstance(v, (int, float, str, bool)) or v is None}
    config = json.dumps({"model_type": "musicgen", "decoder": {"hidden_size": 32, "num_attention_heads": 4},
                         "text_encoder": te}, sort_keys=True)
    return t, {"config": config}


def tokens():
    from transformers.models.t5.modeling_t5 import T5Attention

    tok = common.load_tokenizer()
    t = {}
    t["trunc_long"] = torch.tensor(tok(golden_t5.LONG_2600, truncation=True).input_ids)
    assert len(t["trunc_long"]) == tok.model_max_length == 512
    t["trunc8"] = torch.tensor(tok(PROMPT, truncation=True, max_length=8).input_ids)
    enc = tok(BATCH, padding=True, return_tensors="pt")
    t["batch.input_ids"], t["batch.attention_mask"] = enc.input_ids, enc.attention_mask
    rel = torch.arange(-600, 601)
    t["buckets"] = torch.stack([T5Attention._relative_position_bucket(rel, True, nb, md) for nb, md in BUCKET_CFGS])
    md = {"prompt": PROMPT, "batch": BATCH, "bucket_cfgs": BUCKET_CFGS, "long_prompt": "golden_t5.LONG_2600",
          "long_n_chars": len(golden_t5.LONG_2600)}
    return t, md


def main():
    common.setup_determinism()
    t, md = gated()
    p = os.path.join(common.GOLDEN_DIR, "t5_extra_gated.safetensors")
    common.save_st(p, t, md)
    print("wrote", p, {k: list(v.shape) for k, v in t.items() if not k.startswith("text_encoder.")})
    t, md = tokens()
    p = os.path.join(common.GOLDEN_DIR, "t5_extra_tokens.safetensors")
    common.save_st(p, t, md)
    print("wrote", p, {k: list(v.shape) for k, v in t.items()})


if __name__ == "__main__":
    main()
