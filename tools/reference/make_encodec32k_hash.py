"""Real-size EnCodec 32 kHz with hash-defined weights.

Writes
  tests/fixtures/encodec32k-hash/config.json          EncodecConfig of facebook/encodec_32khz
  tests/fixtures/encodec32k-hash/tensors.json         every state_dict entry: name, shape, rule, scale,
                                                      and checksums so a C re-implementation of the
                                                      rule can be verified tensor by tensor
  tests/fixtures/golden/encodec32k_hash.safetensors   audio [1,1,64000] -> codes [1,4,100] -> decoded

The weights themselves (~59M parameters) are NOT committed: they are a pure function of the tensor
name and shape (see hash_tensor / README.md "Hash-defined EnCodec 32 kHz"), so the C side rebuilds
the same checkpoint bit-exactly with its own safetensors writer.
"""

import hashlib
import json
import math
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402
import signals  # noqa: E402
import torch  # noqa: E402

GOLDEN = os.path.join(common.GOLDEN_DIR, "encodec32k_hash.safetensors")
GOLDEN_RATIO_32 = 2654435761
CLIP_SEED = 3


def config():
    from transformers import EncodecConfig

    # facebook/encodec_32khz config.json (current revision; use_conv_shortcut false)
    return EncodecConfig(
        sampling_rate=32000, audio_channels=1, upsampling_ratios=[8, 5, 4, 4], codebook_size=2048,
        codebook_dim=128, hidden_size=128, num_filters=64, num_residual_layers=1, kernel_size=7,
        last_kernel_size=7, residual_kernel_size=3, dilation_growth_rate=2, compress=2, num_lstm_layers=2,
        target_bandwidths=[2.2], normalize=False, use_causal_conv=False, pad_mode="reflect",
        norm_type="weight_norm", trim_right_ratio=1.0, chunk_length_s=None, overlap=None,
        use_conv_shortcut=False, architectures=["EncodecModel"],
    )


def fnv1a32(s):
    h = 2166136261
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h


def fmix32(x):
    """murmur3 32-bit finalizer on a uint64 numpy array holding uint32 values."""
    m = np.uint64(0xFFFFFFFF)
    x = x ^ (x >> np.uint64(16))
    x = (x * np.uint64(0x85EBCA6B)) & m
    x = x ^ (x >> np.uint64(13))
    x = (x * np.uint64(0xC2B2AE35)) & m
    x = x ^ (x >> np.uint64(16))
    return x


def rule(name, shape):
    """-> (kind, scale) for the state_dict entry `name` of shape `shape`."""
    n = int(np.prod(shape)) if len(shape) else 1
    if name.endswith("codebook.inited") or name.endswith("codebook.cluster_size"):
        return "ones", 1.0
    if name.endswith("codebook.embed") or name.endswith("codebook.embed_avg"):
        return "uniform", 0.25
    if name.endswith("parametrizations.weight.original0") or name.endswith("weight_g"):
        return "gain", 1.0
    if "bias" in name.rsplit(".", 1)[-1]:  # conv .bias, lstm bias_ih_l0 / bias_hh_l0
        return "uniform", 0.1
    # conv weight_v (original1), plain conv weight, lstm weight_ih_l* / weight_hh_l*
    fan_in = n // shape[0]
    return "uniform", 2.0 / math.sqrt(fan_in)


def hash_tensor(name, shape):
    """float32 numpy array of `shape` for the tensor `name` (HF state_dict key)."""
    kind, scale = rule(name, shape)
    n = int(np.prod(shape)) if len(shape) else 1
    if kind == "ones":
        return np.ones(shape, dtype=np.float32)
    h = np.uint64(fnv1a32(name))
    i = np.arange(n, dtype=np.uint64)
    x = fmix32((h + i * np.uint64(GOLDEN_RATIO_32)) & np.uint64(0xFFFFFFFF))
    u = x.astype(np.float64) / 4294967296.0 - 0.5  # exact in float64
    if kind == "gain":
        v = 0.5 + np.abs(u)
    else:
        v = u * scale  # one float64 rounding
    return v.astype(np.float32).reshape(shape)  # one rounding to float32 (round to nearest even)


def build():
    from transformers import EncodecModel

    torch.manual_seed(0)
    model = EncodecModel(config())
    sd = model.state_dict()
    new = {k: torch.from_numpy(hash_tensor(k, tuple(v.shape))) for k, v in sd.items()}
    model.load_state_dict(new, strict=True)
    model.eval()
    return model, new


def describe(tensors):
    out = []
    for name, t in tensors.items():
        a = t.numpy()
        kind, scale = rule(name, tuple(a.shape))
        flat = a.reshape(-1)
        out.append({
            "name": name, "shape": list(a.shape), "dtype": "F32", "rule": kind, "scale": scale,
            "fnv1a32": fnv1a32(name),
            "first4_hex": [float(v).hex() for v in flat[:4]],
            "sum_f64": float(flat.astype(np.float64).sum()),
            "sha256_le_f32": hashlib.sha256(np.ascontiguousarray(flat, dtype="<f4").tobytes()).hexdigest(),
        })
    return out


@torch.no_grad()
def run(model, x):
    import golden_encodec

    xt = torch.from_numpy(x)[None, None]
    emb = model.encoder(xt)
    enc = model.encode(xt, bandwidth=2.2)
    codes = enc.audio_codes[0]
    dec = model.decode(enc.audio_codes, [None]).audio_values
    margin = golden_encodec.rvq_margins(model, emb, codes)
    return {"audio": xt, "embeddings": emb, "codes": codes, "margin": margin, "decoded": dec}


def main():
    common.setup_determinism()
    from transformers import EncodecModel

    model, tensors = build()
    n_params = sum(t.numel() for t in tensors.values())
    x = signals.clip_2s(CLIP_SEED)
    out = run(model, x)

    # ---- round trip: write the rule-built checkpoint with save_pretrained, reload, re-run
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        re = EncodecModel.from_pretrained(d, dtype=torch.float32).eval()
        for k, v in re.state_dict().items():
            assert torch.equal(v, tensors[k]), k
        out2 = run(re, x)
        for k in out:
            assert torch.equal(out[k], out2[k]), k
        from safetensors import safe_open

        with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
            saved_names = sorted(f.keys())
    # ---- rebuild from the rule alone (fresh model, fresh arrays) and compare
    model3, tensors3 = build()
    for k in tensors:
        assert torch.equal(tensors[k], tensors3[k]), k
    assert torch.equal(run(model3, x)["codes"], out["codes"])

    os.makedirs(common.HASH32K_DIR, exist_ok=True)
    model.config.save_pretrained(common.HASH32K_DIR)
    codes = out["codes"]
    info = {
        "n_params_and_buffers": n_params,
        "encode_call": "EncodecModel.encode(audio[1,1,64000], bandwidth=2.2).audio_codes[0]",
        "decode_call": "EncodecModel.decode(codes[None], [None]).audio_values",
        "min_margin": out["margin"].min().item(),
        "distinct_codes_per_codebook": [len(set(codes[0, q].tolist())) for q in range(codes.shape[1])],
        "decoded_rms": out["decoded"].pow(2).mean().sqrt().item(),
        "embeddings_rms": out["embeddings"].pow(2).mean().sqrt().item(),
    }
    common.write_json(os.path.join(common.HASH32K_DIR, "tensors.json"), {
        "rule": "see tools/reference/README.md, section 'Hash-defined EnCodec 32 kHz'",
        "saved_names_transformers_5": saved_names,
        "tensors": describe(tensors),
    })
    common.save_st(GOLDEN, out, {"info": info})
    print("wrote", GOLDEN, json.dumps(info))


if __name__ == "__main__":
    main()
