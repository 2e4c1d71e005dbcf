"""EnCodec goldens of the tiny model's audio_encoder -> golden/encodec.safetensors

Per test signal <name> (mono, 32 kHz, float32):
  audio.<name>       f32 [1,1,N]   input
  embeddings.<name>  f32 [1,D,F]   encoder output (before RVQ), D = hidden_size
  codes.<name>       i64 [1,4,F]   codec.encode(audio, bandwidth=2.2).audio_codes[0]
  margin.<name>      f32 [1,4,F]   robustness of each RVQ decision (see rvq_margins)
  decoded.<name>     f32 [1,1,640F] codec.decode(codes[None], [None]).audio_values
plus decoded_random (from codes_random [1,4,10]) and the resampling cases.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402
import signals  # noqa: E402
import torch  # noqa: E402

BANDWIDTH = 2.2


@torch.no_grad()
def rvq_margins(codec, emb, codes):
    """emb [1,D,F] encoder output, codes [1,nq,F].  Re-runs the residual VQ in float64 and returns
    margin [1,nq,F] = (d2 - d1) / (2 * |e| * |E[c1] - E[c2]|): d1 <= d2 the two smallest squared
    distances of the stage's residual to the codebook, e the full encoder output vector of that frame.
    This is the smallest perturbation of e, relative to |e|, that can flip the decision.  Also checks that
    the float64 decisions equal HF's float32 ones."""
    e = emb[0].double().t()  # [F, D]
    en = e.norm(dim=1).clamp_min(1e-30)
    r = e.clone()
    out = []
    for q in range(codes.shape[1]):
        E = codec.quantizer.layers[q].codebook.embed.double()
        d = (r * r).sum(1, keepdim=True) - 2 * r @ E.t() + (E * E).sum(1)[None]
        v, i = torch.topk(-d, 2, dim=1)
        gap = v[:, 0] - v[:, 1]
        m = gap / (2 * en * (E[i[:, 0]] - E[i[:, 1]]).norm(dim=1).clamp_min(1e-30))
        if not torch.equal(i[:, 0], codes[0, q]):
            bad = (i[:, 0] != codes[0, q]).nonzero()[:, 0].tolist()
            # a float32 vs float64 disagreement is only acceptable on a true near-tie
            assert m[bad].max().item() < 1e-6, ("float64 RVQ disagrees with HF", q, bad)
        out.append(m)
        r = r - E[codes[0, q]]
    return torch.stack(out, 0)[None].float()


@torch.no_grad()
def encode_decode(codec, x):
    """x float32 numpy [N] -> dict of tensors for one signal."""
    xt = torch.from_numpy(np.ascontiguousarray(x))[None, None]
    emb = codec.encoder(xt)
    enc = codec.encode(xt, bandwidth=BANDWIDTH)
    assert enc.audio_codes.shape[0] == 1 and enc.audio_scales == [None] and enc.last_frame_pad_length == 0
    codes = enc.audio_codes[0]
    assert codes.shape[1] == 4
    dec = codec.decode(enc.audio_codes, [None]).audio_values
    return {"audio": xt, "embeddings": emb, "codes": codes, "margin": rvq_margins(codec, emb, codes),
            "decoded": dec}


def make(codec):
    t = {}
    md = {
        "encode_call": "codec.encode(audio[1,1,N], bandwidth=2.2) -> audio_codes [1,1,4,F]; codes = audio_codes[0]",
        "decode_call": "codec.decode(codes[None], [None]).audio_values -> [1,1,640*F]",
        "frames": "F = ceil(N / 640)",
        "resample_call": "mono = x.mean(axis=1) (float32); soxr.resample(mono, sr_in, 32000, quality='HQ')",
    }
    min_margin = float("inf")
    for name, x in signals.tiny_signals().items():
        r = encode_decode(codec, x)
        for k, v in r.items():
            t[f"{k}.{name}"] = v
        min_margin = min(min_margin, r["margin"].min().item())
    g = torch.Generator().manual_seed(2024)
    rc = torch.randint(0, 2048, (1, 4, 10), generator=g, dtype=torch.long)
    with torch.no_grad():
        t["codes_random"] = rc
        t["decoded_random"] = codec.decode(rc[None], [None]).audio_values
    for name, (sr, x) in signals.resample_inputs().items():
        y = signals.downmix_resample(x, sr)
        t[f"resample_in.{name}"] = torch.from_numpy(x)
        t[f"resample_sr.{name}"] = torch.tensor(sr, dtype=torch.long)
        t[f"resample_out.{name}"] = torch.from_numpy(y)
        r = encode_decode(codec, y)
        for k in ("embeddings", "codes", "margin"):
            t[f"{k}.resampled_{name}"] = r[k]
        min_margin = min(min_margin, r["margin"].min().item())
    md["min_margin"] = min_margin
    return t, md, min_margin


def main():
    common.setup_determinism()
    model = common.load_tiny()
    t, md, mm = make(model.audio_encoder)
    path = os.path.join(common.GOLDEN_DIR, "encodec.safetensors")
    common.save_st(path, t, {"info": md})
    print("wrote", path, "min RVQ margin %.3g" % mm)
    for k, v in sorted(t.items()):
        print("  ", k, list(v.shape), v.dtype)


if __name__ == "__main__":
    main()
