"""Golden SAE training step: one step of musae's top-k SAE recipe written plainly in PyTorch autograd.

The recipe (sae/sae.h): pre = ReLU(W_enc (x - b_dec) + b_enc); z = per-row top-k; x_hat = W_dec^T z + b_dec;
loss = FVU + alpha * scale * AuxK, FVU = sum (x - x_hat)^2 / sum (x - mean)^2, AuxK = sum (e_hat - e)^2 / same,
e = (x - x_hat) detached, e_hat = the top-k_aux of the dead latents decoded *without* b_dec (sparsify with the
fix of its issue #132), scale = min(n_dead / k_aux, 1); then the decoder-parallel gradient is removed, one
torch.optim.Adam step (betas 0.9/0.999, eps 6.25e-10), and the decoder rows renormalized.

Writes tests/fixtures/golden/sae_step.safetensors (inputs, gradients, weights after the step); the C test
tests/test_sae_golden.c runs sae_trainer_step on the same inputs and compares within 1e-5.

    python tools/reference/sae_step.py
"""

import os

import torch
from safetensors.torch import save_file

from common import GOLDEN_DIR, setup_determinism

N, D, M, K, K_AUX = 48, 16, 64, 4, 8
ALPHA, LR, EPS = 1.0 / 32.0, 1e-3, 6.25e-10


def main():
    setup_determinism(0)
    g = torch.Generator().manual_seed(1234)
    x = torch.randn(N, D, generator=g) * 2.0 + 0.5
    W_dec = torch.randn(M, D, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec + 0.3 * torch.randn(M, D, generator=g)
    b_enc = 0.1 * torch.randn(M, generator=g)
    b_dec = 0.2 * torch.randn(D, generator=g)
    dead = torch.zeros(M, dtype=torch.bool)
    dead[::3] = True  # every third latent has not fired for long

    params = {
        "W_enc": W_enc.clone().requires_grad_(),
        "b_enc": b_enc.clone().requires_grad_(),
        "W_dec": W_dec.clone().requires_grad_(),
        "b_dec": b_dec.clone().requires_grad_(),
    }
    p = params
    pre = torch.relu((x - p["b_dec"]) @ p["W_enc"].T + p["b_enc"])
    vals, idx = pre.topk(K, dim=1)
    x_hat = torch.zeros(N, M).scatter(1, idx, vals) @ p["W_dec"] + p["b_dec"]
    e = x - x_hat
    tv = (x - x.mean(0)).pow(2).sum()
    fvu = e.pow(2).sum() / tv
    n_dead = int(dead.sum())
    k_aux = min(K_AUX, n_dead)
    scale = min(n_dead / K_AUX, 1.0)
    aux_pre = torch.where(dead[None], pre, torch.full_like(pre, -float("inf")))
    avals, aidx = aux_pre.topk(k_aux, dim=1)
    e_hat = torch.zeros(N, M).scatter(1, aidx, avals) @ p["W_dec"]
    auxk = scale * (e_hat - e.detach()).pow(2).sum() / tv
    loss = fvu + ALPHA * auxk
    loss.backward()
    grads = {k: v.grad.clone() for k, v in p.items()}

    with torch.no_grad():
        w = p["W_dec"]
        w.grad -= (w.grad * w).sum(1, keepdim=True) * w
    opt = torch.optim.Adam(list(p.values()), lr=LR, betas=(0.9, 0.999), eps=EPS)
    opt.step()
    with torch.no_grad():
        p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True)

    out = {
        "x": x,
        "dead": dead.float(),
        "in.W_enc": W_enc,
        "in.b_enc": b_enc,
        "in.W_dec": W_dec,
        "in.b_dec": b_dec,
        "loss": loss.detach().reshape(1),
        "fvu": fvu.detach().reshape(1),
        "auxk": auxk.detach().reshape(1),
        "hparams": torch.tensor([K, K_AUX, ALPHA, LR, EPS], dtype=torch.float64),
    }
    for k, v in grads.items():
        out["grad." + k] = v
    for k, v in p.items():
        out["out." + k] = v.detach()
    os.makedirs(GOLDEN_DIR, exist_ok=True)
    path = os.path.join(GOLDEN_DIR, "sae_step.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path,
              metadata={"generator": "tools/reference/sae_step.py", "torch": torch.__version__})
    print(f"wrote {path}: loss {loss.item():.6f} (fvu {fvu.item():.6f}, auxk {auxk.item():.6f})")


if __name__ == "__main__":
    main()
