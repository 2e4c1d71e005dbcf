"""Steering golden of the tiny model (musae generate --steer, docs/STEER.md):

  sae/steer_tiny/                       a small musae-format SAE checkpoint on layer 0 of tiny-musicgen
                                        (d_in 32, 16 latents, unit decoder rows; musae.json input_scale 2.5,
                                        folded as musae saves it, so the weights act on raw residuals)
  golden/steer_generate.safetensors     greedy HF generate() with a forward hook on decoder layer L that adds
                                        v = sum_i fl32(fl32(alpha_i) * fl32(beta)) * W_dec[f_i] to the layer's
                                        output (the residual stream after layer L) of the chosen CFG rows at the
                                        chosen positions

Cases (prompts and CFG 3.0 as golden_lm.py's text_cfg3, max_new_tokens 23 = 20 frames):
  both     feature 3, alpha 0.8, beta 6: every position, both CFG branches
  cond     the same on the conditional rows only
  frames   the same, both branches, frames 5..11 only (sequence positions 6..12: frame t's residual is the
           position t + 1 that feeds codebook 0's frame t, where capture stores it)
  two      features 3 (alpha 0.5) and 9 (alpha -0.7), conditional rows: the terms summed in order in float32
Each case stores `.codes` [2,4,20], `.margins` [23] (the greedy top-1 minus top-2 gap, min over kept tokens per
step) and `.vector` [32] (v). Every case differs from the unsteered codes (the hook is not a no-op), and every
kept greedy decision has a margin of at least 1e-3 (musae's logits are within 1e-5 of HF's).
The position of a layer call is the decoder's cache length when it is called (transformers 5.24's generate calls
the decoder twice at position 0, both times without a cache, then once per step; every call holds one position).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from golden_lm import GEN_PROMPTS, _margins, _pattern_free, hf_generate  # noqa: E402

K = 4
B = 2
MNT = 23
LAYER = 0
D, M, TOPK = 32, 16, 4
INPUT_SCALE = 2.5
SAE_DIR = os.path.join(common.FIXTURES, "sae", "steer_tiny")
MARGIN_MIN = 1e-3

CASES = {
    "both": {"terms": [(3, 0.8)], "beta": 6.0, "branch": "both", "frames": None},
    "cond": {"terms": [(3, 0.8)], "beta": 6.0, "branch": "cond", "frames": None},
    "frames": {"terms": [(3, 0.8)], "beta": 6.0, "branch": "both", "frames": (5, 12)},
    "two": {"terms": [(3, 0.5), (9, -0.7)], "beta": 6.0, "branch": "cond", "frames": None},
}


def make_sae():
    """A musae checkpoint as sae_save writes it (raw-space weights: b_enc/s, b_dec/s; W_dec unit rows)."""
    g = torch.Generator().manual_seed(2024)
    W_dec = torch.randn(M, D, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.clone()
    b_enc = torch.randn(M, generator=g) * 0.01 / INPUT_SCALE
    b_dec = torch.randn(D, generator=g) * 0.1 / INPUT_SCALE
    os.makedirs(SAE_DIR, exist_ok=True)
    common.save_st(os.path.join(SAE_DIR, "sae.safetensors"),
                   {"encoder.weight": W_enc, "encoder.bias": b_enc, "W_dec": W_dec, "b_dec": b_dec},
                   {"format": "pt"})
    common.write_json(os.path.join(SAE_DIR, "cfg.json"), {
        "activation": "topk", "expansion_factor": M // D if M % D == 0 else 0, "normalize_decoder": True,
        "num_latents": M, "k": TOPK, "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": D})
    common.write_json(os.path.join(SAE_DIR, "musae.json"), {
        "format": "musae-sae", "format_version": 1, "layer": LAYER, "d_in": D, "num_latents": M, "k": TOPK,
        "selection": "topk", "input_scale": INPUT_SCALE,
        "input_scale_note": "folded into encoder.bias and b_dec: the weights act on raw activations",
        "note": "made by tools/reference/golden_steer.py for the steering golden; no model id, so any model "
                "with hidden size 32 and a layer 0 accepts it"})
    return W_dec


def steer_vector(W_dec, terms, beta):
    v = None
    for f, a in terms:
        s = np.float32(a) * np.float32(beta)  # fl32(alpha * beta), as musae computes it
        t = torch.tensor(float(s), dtype=torch.float32) * W_dec[f]  # each product rounded in float32
        v = t if v is None else v + t
    return v


@torch.no_grad()
def steered_generate(model, ids, mask, v, branch, frames):
    rows = {"both": slice(0, 2 * B), "cond": slice(0, B), "uncond": slice(B, 2 * B)}[branch]
    p0, p1 = (0, 1 << 62) if frames is None else (frames[0] + 1, frames[1] + 1)
    state = {"pos": None, "positions": []}
    dec = model.decoder
    orig_forward = dec.forward

    def forward(*a, **k):
        c = k.get("cache")
        state["pos"] = 0 if c is None else c.get_seq_length()
        state["positions"].append(state["pos"])
        return orig_forward(*a, **k)

    def hook(mod, inp, out):
        h = out[0] if isinstance(out, tuple) else out
        assert h.shape[0] == 2 * B and h.shape[1] == 1, f"layer call with input {tuple(h.shape)}"
        pos = state["pos"]
        if p0 <= pos < p1:
            h = h.clone()
            h[rows, 0, :] = h[rows, 0, :] + v
        return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h

    hd = dec.model.decoder.layers[LAYER].register_forward_hook(hook)
    dec.forward = forward
    try:
        codes, _, scores = hf_generate(model, input_ids=ids, attention_mask=mask, guidance_scale=3.0,
                                       max_new_tokens=MNT)
    finally:
        hd.remove()
        del dec.forward
    assert state["positions"] == [0] + list(range(MNT)), state["positions"]
    return codes, _margins(scores, _pattern_free(MNT, B))


def main():
    common.setup_determinism()
    model = common.load_tiny()
    tok = common.load_tokenizer()
    W_dec = make_sae()
    enc = tok(GEN_PROMPTS, padding=True, return_tensors="pt")
    plain, _, _ = hf_generate(model, input_ids=enc.input_ids, attention_mask=enc.attention_mask, guidance_scale=3.0,
                              max_new_tokens=MNT)
    t = {}
    info = {"layer": LAYER, "prompts": GEN_PROMPTS, "guidance": 3.0, "max_new_tokens": MNT, "sae": "sae/steer_tiny",
            "hook": "register_forward_hook on model.decoder.model.decoder.layers[layer]: output[rows, 0, :] += vector "
                    "when p0 <= position < p1 (position = the call's index)",
            "cases": {}}
    for name, c in CASES.items():
        v = steer_vector(W_dec, c["terms"], c["beta"])
        codes, margins = steered_generate(model, enc.input_ids, enc.attention_mask, v, c["branch"], c["frames"])
        changed = int((codes != plain).sum())
        mm = margins.min().item()
        print(f"{name}: {changed} of {codes.numel()} codes differ from unsteered, min margin {mm:.4g}")
        assert changed > 0, f"{name}: steering changed no code"
        assert mm >= MARGIN_MIN, f"{name}: greedy margin {mm} below {MARGIN_MIN}"
        t[f"{name}.codes"] = codes
        t[f"{name}.margins"] = margins.float()
        t[f"{name}.vector"] = v
        info["cases"][name] = {"terms": [list(x) for x in c["terms"]], "beta": c["beta"], "branch": c["branch"],
                               "frames": list(c["frames"]) if c["frames"] else None, "codes_changed": changed,
                               "min_margin": mm}
    t["plain.codes"] = plain
    path = os.path.join(common.GOLDEN_DIR, "steer_generate.safetensors")
    common.save_st(path, t, {"info": info, "prompts": GEN_PROMPTS})
    print("wrote", path, "and", SAE_DIR)


if __name__ == "__main__":
    main()
