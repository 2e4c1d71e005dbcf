"""Interoperability with EleutherAI's sparsify (pip install eai-sparsify; it imports accelerate, datasets,
einops, natsort, schedulefree, simple_parsing).

  python tools/reference/sae_sparsify.py fixture
      Saves a tiny SparseCoder with sparsify's own save_to_disk into tests/fixtures/sae/sparsify_tiny/ and
      its encodings and reconstructions of fixed inputs into tests/fixtures/sae/sparsify_tiny_expected.safetensors
      (tests/test_sae_golden.c loads the folder with musae and compares).

  python tools/reference/sae_sparsify.py check --musae BUILD/musae [--workdir DIR]
      Trains a small SAE with `musae train`, loads the checkpoint with SparseCoder.load_from_disk, and compares
      sparsify's reconstructions of the store's first rows (read with h5py) against `musae evaluate --split all`
      on the same rows, and against musae's recipe computed here in torch.
"""

import argparse
import json
import os
import subprocess
import sys

# sparsify's Triton decoder needs a GPU; its documented switch selects the embedding_bag fallback on CPU
os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from common import FIXTURES, setup_determinism  # noqa: E402


def make_fixture():
    from sparsify import SparseCoder, SparseCoderConfig

    setup_determinism(0)
    d, m, k, n = 16, 64, 4, 32
    sae = SparseCoder(d, SparseCoderConfig(k=k, num_latents=m))
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        sae.b_dec.copy_(0.3 * torch.randn(d, generator=g))
        sae.encoder.bias.copy_(0.05 * torch.randn(m, generator=g))
    out_dir = os.path.join(FIXTURES, "sae", "sparsify_tiny")
    sae.save_to_disk(out_dir)
    x = torch.randn(n, d, generator=g)
    with torch.no_grad():
        enc = sae.encode(x)
        order = enc.top_acts.argsort(dim=1, descending=True)
        acts = enc.top_acts.gather(1, order)
        idx = enc.top_indices.gather(1, order)
        out = sae(x)
    save_file(
        {"x": x, "top_acts": acts.contiguous(), "top_indices": idx.to(torch.int64).contiguous(),
         "sae_out": out.sae_out.contiguous(), "fvu": out.fvu.reshape(1)},
        os.path.join(FIXTURES, "sae", "sparsify_tiny_expected.safetensors"),
        metadata={"generator": "tools/reference/sae_sparsify.py fixture"},
    )
    print(f"wrote {out_dir} and its expected encodings (fvu {out.fvu.item():.6f})")


def check(musae, work):
    import h5py
    from sparsify import SparseCoder

    os.makedirs(work, exist_ok=True)
    store, sae_dir, rows = os.path.join(work, "acts.h5"), os.path.join(work, "sae"), 8192
    run = lambda *a: subprocess.run([musae, *a], check=True, capture_output=True, text=True).stdout
    if not os.path.exists(store):
        run("synth_acts", "-o", store, "--d", "64", "--concepts", "256", "--k-true", "4", "--rows", "60000")
    if not os.path.exists(os.path.join(sae_dir, "sae.safetensors")):
        run("train", "--acts", store, "--layer", "0", "--k", "8", "--expansion", "4", "--tokens", "400000",
            "--batch", "1024", "--warmup", "50", "-o", sae_dir)
    ours = json.loads(run("evaluate", "--sae", sae_dir, "--acts", store, "--layer", "0", "--split", "all",
                          "--tokens", str(rows)))
    sae = SparseCoder.load_from_disk(sae_dir)
    with h5py.File(store, "r") as f:
        x = torch.from_numpy(f["layers/0/acts"][:rows].astype("float32"))
    with torch.no_grad():
        out = sae(x)
        enc = sae.encode(x)
        # musae's recipe written out here, as a second opinion on sparsify's reading of the weights
        pre = torch.relu((x - sae.b_dec) @ sae.encoder.weight.T + sae.encoder.bias)
        v, i = pre.topk(sae.cfg.k, dim=1)
        ref = torch.zeros_like(pre).scatter(1, i, v) @ sae.W_dec + sae.b_dec
    sq = (out.sae_out - x).pow(2).sum().item()
    var = (x - x.mean(0)).pow(2).sum().item()
    result = {
        "rows": rows,
        "musae_fvu": ours["fvu"],
        "sparsify_fvu": sq / var,
        "fvu_rel_diff": abs(ours["fvu"] - sq / var) / ours["fvu"],
        "musae_l0": ours["l0"],
        "sparsify_l0": float((enc.top_acts > 0).sum(1).float().mean()),
        "max_abs_diff_sparsify_vs_recipe": (out.sae_out - ref).abs().max().item(),
    }
    print(json.dumps(result, indent=1))
    ok = result["fvu_rel_diff"] < 1e-4 and result["max_abs_diff_sparsify_vs_recipe"] < 1e-4
    print("OK: sparsify reproduces musae's reconstructions" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["fixture", "check"])
    ap.add_argument("--musae", default=os.path.join(os.path.dirname(FIXTURES), "..", "build", "musae"))
    ap.add_argument("--workdir", default="/tmp/musae_sparsify_check")
    a = ap.parse_args()
    if a.mode == "fixture":
        make_fixture()
    else:
        sys.exit(check(a.musae, a.workdir))
