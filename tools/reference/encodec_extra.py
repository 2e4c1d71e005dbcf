"""EnCodec goldens for the configuration paths MusicGen's codec does not take (owned by the EnCodec engineer;
make_all.py does not run it: `python tools/reference/encodec_extra.py`).

Two tiny standalone EncodecModel configs (hop 8, 16-wide LSTM, 16 codes of 8 dims, 2 quantizers):
  shortcut : use_conv_shortcut true (the shortcut conv), num_residual_layers 2 with dilation_growth_rate 3
             (dilated k5 convs), kernel 5 / last 3, 1 LSTM layer, reflect padding
  constant : pad_mode "constant" (zero padding), 3 LSTM layers, compress 4, ratios [2, 4]
Writes tests/fixtures/golden/encodec_extra_<name>.safetensors with
  weights.<state_dict name>   every tensor of the model (transformers-5 spelling)
  audio [1,1,N], embeddings [1,D,F], codes [1,2,F], margin [1,2,F], decoded [1,1,8F]
and __metadata__["config"] = the model's config.json text, so the C test loads the weights straight from
the golden (prefix "weights.").
Weights: weight-norm g U(0.8,1.2), v N(0,1), biases N(0,0.05), LSTM N(0,1/dim), codebook q N(0,(0.5^q)^2);
the seed is the first whose RVQ decisions all have a margin (golden_encodec.rvq_margins) above 1e-3.
"""

import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import golden_encodec  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

CONFIGS = {
    "shortcut": dict(upsampling_ratios=[4, 2], use_conv_shortcut=True, num_residual_layers=2,
                     dilation_growth_rate=3, kernel_size=5, last_kernel_size=3, residual_kernel_size=5,
                     num_lstm_layers=1, pad_mode="reflect", compress=2),
    "constant": dict(upsampling_ratios=[2, 4], use_conv_shortcut=False, num_residual_layers=1,
                     dilation_growth_rate=2, kernel_size=7, last_kernel_size=7, residual_kernel_size=3,
                     num_lstm_layers=3, pad_mode="constant", compress=4),
}
N = 3203  # 0.1 s, not a multiple of the hop


def config(extra):
    from transformers import EncodecConfig

    # 32 kHz / hop 8 = 4000 frames/s; 16 codes = 4 bits; 32 kbps -> 1000*32 // (4000*4) = 2 quantizers
    return EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=8, codebook_dim=8,
                         codebook_size=16, target_bandwidths=[32.0], normalize=False, use_causal_conv=False,
                         norm_type="weight_norm", trim_right_ratio=1.0, chunk_length_s=None, overlap=None,
                         **extra)


@torch.no_grad()
def encode_decode(model, x):
    xt = torch.from_numpy(x)[None, None]
    emb = model.encoder(xt)
    enc = model.encode(xt, bandwidth=32.0)
    assert enc.audio_codes.shape[0] == 1 and enc.audio_scales == [None] and enc.last_frame_pad_length == 0
    codes = enc.audio_codes[0]
    dec = model.decode(enc.audio_codes, [None]).audio_values
    return {"audio": xt, "embeddings": emb, "codes": codes, "margin": golden_encodec.rvq_margins(model, emb, codes),
            "decoded": dec}


@torch.no_grad()
def init(model, gen):
    for name, p in model.state_dict().items():
        if name.endswith("original0"):
            v = torch.rand(p.shape, generator=gen) * 0.4 + 0.8
        elif name.endswith("original1"):
            v = torch.randn(p.shape, generator=gen)
        elif "lstm" in name and "weight" in name:
            v = torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1])
        elif "codebook" in name:
            if name.endswith("embed") or name.endswith("embed_avg"):
                q = int(name.split(".")[2])
                v = torch.randn(p.shape, generator=torch.Generator().manual_seed(gen.initial_seed() * 31 + q)) * 0.5 ** q
            else:
                v = torch.ones(p.shape)
        else:
            v = torch.randn(p.shape, generator=gen) * 0.05
        p.copy_(v)
    sd = model.state_dict()
    for k in list(sd):
        if k.endswith("embed_avg"):
            sd[k].copy_(sd[k.replace("embed_avg", "embed")])


def signal():
    t = np.arange(N) / 32000.0
    rng = np.random.default_rng(5)
    x = 0.5 * np.sin(2 * np.pi * 523.0 * t) + 0.2 * np.sin(2 * np.pi * 1700.0 * t) + 0.1 * rng.standard_normal(N)
    return x.astype(np.float32)


def make(name, extra):
    from transformers import EncodecModel

    cfg = config(extra)
    x = signal()
    for seed in range(100):
        torch.manual_seed(0)
        model = EncodecModel(cfg).eval()
        init(model, torch.Generator().manual_seed(seed))
        r = encode_decode(model, x)
        if r["margin"].min().item() > 1e-3:
            break
    else:
        raise SystemExit(f"{name}: no seed with RVQ margins above 1e-3")
    t = {f"weights.{k}": v.clone() for k, v in model.state_dict().items()}
    for k in ("audio", "embeddings", "codes", "margin", "decoded"):
        t[k] = r[k]
    path = os.path.join(common.GOLDEN_DIR, f"encodec_extra_{name}.safetensors")
    md = {"config": cfg.to_json_string(), "seed": seed, "min_margin": r["margin"].min().item(),
          "versions": common.versions(),
          "calls": "codes = encode(audio, bandwidth=32.0).audio_codes[0]; decoded = decode(codes[None], [None])"}
    common.save_st(path, t, md)
    print("wrote", path, "seed", seed, "min margin %.3g" % md["min_margin"], "frames", r["codes"].shape[-1])


def main():
    common.setup_determinism()
    for name, extra in CONFIGS.items():
        make(name, extra)


if __name__ == "__main__":
    main()
