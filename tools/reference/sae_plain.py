"""A plain PyTorch top-k SAE, trained on a musae store (read with h5py), as the quality peer of `musae train`.

The recipe of docs/SAE.md written directly in autograd, with nothing that musae's trainer has and a plain
reference would not: W_dec rows Gaussian then unit norm, W_enc = W_dec, b_enc = 0, b_dec the mean (or the
geometric median, or zero) of the first --init-rows training rows; z = top-k(ReLU(W_enc (x - b_dec) + b_enc));
loss = FVU of the batch (+ AuxK when --auxk-alpha > 0 and latents are dead); Adam (0.9, 0.999, eps 6.25e-10),
lr 2e-4/sqrt(M/16384) unless --lr, linear warmup; the gradient parallel to each decoder row is removed before
the step and the rows renormalized after it. --scale scales the inputs as musae does (E||s x||^2 = d); without
it the SAE sees the raw rows.

The held-out split is musae's (clip c is held out when a Philox draw keyed by (split seed, c) is below
--val-fraction; host/io/store.c), so both evaluate on the same rows. Prints one JSON line: held-out FVU
(against the held-out mean, as `musae evaluate`), L0, the fraction of planted directions recovered (best decoder
row cosine > 0.9) when the store has /truth/directions, steps and seconds.

    python tools/reference/sae_plain.py --acts p.h5 --layer 0 --k 12 --expansion 8 [--epochs 10] [--warmup N]
"""

import argparse
import json
import math
import time

import h5py
import numpy as np
import torch

M32 = 0xFFFFFFFF


def philox(seed, stream, counter):
    """musae_philox (host/core/philox.h): Philox4x32-10, key = seed, counter = {counter, stream}."""
    c = [counter & M32, (counter >> 32) & M32, stream & M32, (stream >> 32) & M32]
    k0, k1 = seed & M32, (seed >> 32) & M32
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c[0], 0xCD9E8D57 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k0) & M32, p1 & M32, ((p0 >> 32) ^ c[3] ^ k1) & M32, p0 & M32]
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c


def val_clips(n_clips, split_seed, frac):
    """musae's held-out clips (host/io/store.c clip_in_val, and the last clip when none was drawn)."""
    val = [(philox(split_seed, 0x5350, c)[0] >> 8) / 16777216.0 < frac for c in range(n_clips)]
    if not any(val) and frac > 0 and n_clips >= 2:
        val[-1] = True
    return np.array(val)


def load(path, layer, val_fraction, split_seed):
    with h5py.File(path, "r") as f:
        x = f[f"layers/{layer}/acts"][:].astype(np.float32)
        off, n = f["clips/offset"][:], f["clips/n_frames"][:]
        truth = f["truth/directions"][:].astype(np.float32) if "truth" in f else None
    val = val_clips(len(n), split_seed, val_fraction)
    is_val = np.zeros(len(x), bool)
    for c in np.nonzero(val)[0]:
        is_val[off[c] : off[c] + n[c]] = True
    return x[~is_val], x[is_val], truth


def geometric_median(x, iters=100, tol=1e-5):
    y = x.mean(0)
    for _ in range(iters):
        w = 1.0 / (x - y).norm(dim=1).clamp_min(1e-8)
        y_new = (w[:, None] * x).sum(0) / w.sum()
        done = (y_new - y).norm() < tol * y_new.norm()
        y = y_new
        if done:
            break
    return y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acts", required=True)
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("--k", type=int, required=True)
    ap.add_argument("--expansion", type=int, required=True)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--tokens", type=int, default=0, help="default: --epochs passes over the training split")
    ap.add_argument("--epochs", type=float, default=10)
    ap.add_argument("--lr", type=float, default=0)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--b-dec", choices=["mean", "median", "zero"], default="mean")
    ap.add_argument("--scale", action="store_true", help="scale the inputs so that E||s x||^2 = d (as musae)")
    ap.add_argument("--auxk-alpha", type=float, default=0.0)
    ap.add_argument("--dead-tokens", type=int, default=10_000_000)
    ap.add_argument("--init-rows", type=int, default=32768)
    ap.add_argument("--val-fraction", type=float, default=0.05)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    xtr, xva, truth = load(a.acts, a.layer, a.val_fraction, a.split_seed)
    xtr, xva = torch.from_numpy(xtr), torch.from_numpy(xva)
    n, d = xtr.shape
    m, k = d * a.expansion, a.k
    tokens = a.tokens or math.ceil(a.epochs * n)
    steps = (tokens + a.batch - 1) // a.batch
    lr = a.lr or 2e-4 / math.sqrt(m / 16384)

    init = xtr[torch.from_numpy(rng.permutation(n)[: a.init_rows])]
    s = math.sqrt(d / init.pow(2).sum(1).mean().item()) if a.scale else 1.0
    init = init * s
    w_dec = torch.randn(m, d)
    w_dec /= w_dec.norm(dim=1, keepdim=True)
    w_dec.requires_grad_(True)
    w_enc = w_dec.detach().clone().requires_grad_(True)
    b_enc = torch.zeros(m, requires_grad=True)
    b0 = {"mean": init.mean(0), "median": geometric_median(init), "zero": torch.zeros(d)}[a.b_dec]
    b_dec = b0.clone().requires_grad_(True)
    params = [w_enc, b_enc, w_dec, b_dec]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=6.25e-10)
    since_fired = torch.zeros(m, dtype=torch.long)
    k_aux = d // 2

    def encode(x):
        pre = torch.relu((x - b_dec) @ w_enc.T + b_enc)
        return pre, pre.topk(k, dim=1)

    t0 = time.time()
    order, at = rng.permutation(n), 0
    for step in range(steps):
        want = min(a.batch, tokens - step * a.batch)
        idx = []
        while want > 0:
            if at == n:
                order, at = rng.permutation(n), 0
            take = min(want, n - at)
            idx.append(order[at : at + take])
            at, want = at + take, want - take
        x = xtr[torch.from_numpy(np.concatenate(idx))] * s
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, (step + 1) / a.warmup) if a.warmup > 0 else lr
        pre, (vals, inds) = encode(x)
        z = torch.zeros_like(pre).scatter(1, inds, vals)
        xhat = z @ w_dec + b_dec
        var = (x - x.mean(0)).pow(2).sum()
        e = x - xhat
        loss = e.pow(2).sum() / var
        fired = torch.zeros(m, dtype=torch.bool)
        fired[inds[vals > 0]] = True
        since_fired += len(x)
        since_fired[fired] = 0
        dead = since_fired >= a.dead_tokens
        if a.auxk_alpha > 0 and dead.any():
            ka = min(k_aux, int(dead.sum()))
            av, ai = (pre * dead).topk(ka, dim=1)
            ehat = torch.zeros_like(pre).scatter(1, ai, av) @ w_dec
            aux = (ehat - e.detach()).pow(2).sum() / var
            loss = loss + a.auxk_alpha * min(1.0, dead.sum().item() / k_aux) * aux
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():
            w_dec.grad -= (w_dec.grad * w_dec).sum(1, keepdim=True) * w_dec
        opt.step()
        with torch.no_grad():
            w_dec /= w_dec.norm(dim=1, keepdim=True)
    secs = time.time() - t0

    with torch.no_grad():
        x = xva * s
        _, (vals, inds) = encode(x)
        xhat = torch.zeros(len(x), m).scatter(1, inds, vals) @ w_dec + b_dec
        fvu = ((x - xhat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()
        l0 = (vals > 0).sum(1).float().mean().item()
        out = {"impl": "torch-plain", "fvu": fvu, "l0": l0, "steps": steps, "tokens": tokens, "lr": lr,
               "warmup": a.warmup, "b_dec": a.b_dec, "scale": s, "seconds": round(secs, 2)}
        if truth is not None:
            t = torch.from_numpy(truth)
            t = t / t.norm(dim=1, keepdim=True)
            out["recovered"] = ((t @ (w_dec / w_dec.norm(dim=1, keepdim=True)).T).max(1).values > 0.9).float().mean().item()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
