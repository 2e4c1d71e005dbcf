"""Golden SAE training steps: STEPS steps of musae's top-k SAE recipe written plainly in PyTorch autograd.

The recipe (sae/sae.h): pre = ReLU(W_enc (x - b_dec) + b_enc); z = per-row top-k; x_hat = W_dec^T z + b_dec;
loss = FVU + alpha * scale * AuxK, FVU = sum (x - x_hat)^2 / sum (x - mean)^2, AuxK = sum (e_hat - e)^2 / same,
e = (x - x_hat) detached, e_hat = the top-k_aux of the dead latents decoded *without* b_dec (sparsify with the
fix of its issue #132), scale = min(n_dead / k_aux, 1); then the decoder-parallel gradient is removed, one
torch.optim.Adam step (betas 0.9/0.999, eps 6.25e-10), and the decoder rows renormalized.

Several steps, because at step 1 Adam's bias correction makes the update lr·g/|g| whatever the betas are: only
from step 2 on do wrong betas (or a wrong bias correction) change the weights. The dead set follows musae's
counters: a latent is dead when more than DEAD_TOKENS tokens passed since it was last selected with a positive
value; every third latent starts dead (DEAD_TOKENS + 1), the others at 0.

Writes tests/fixtures/golden/sae_step.safetensors: the inputs (x [STEPS, N, D], the initial weights, the
initial dead mask, hparams = k, k_aux, alpha, lr, eps, dead_tokens) and, for each step s = 1..STEPS, under
"step<s>.": the loss terms, the gradients, the weights after the step ("out.") and Adam's moments ("m.",
"v."). The C test tests/test_sae_golden.c runs sae_trainer_step on the same inputs and compares every step.

    python tools/reference/sae_step.py
"""

import os

import torch

from common import GOLDEN_DIR, save_st, setup_determinism

N, D, M, K, K_AUX, STEPS = 48, 16, 64, 4, 8, 3
ALPHA, LR, EPS, DEAD_TOKENS = 1.0 / 32.0, 1e-3, 6.25e-10, 10
NAMES = ("W_enc", "b_enc", "W_dec", "b_dec")


def forward_loss(p, x, dead):
    """The loss of one batch and the latents that fired (selected with a positive value)."""
    pre = torch.relu((x - p["b_dec"]) @ p["W_enc"].T + p["b_enc"])
    vals, idx = pre.topk(K, dim=1)
    z = torch.zeros(N, M).scatter(1, idx, vals)
    x_hat = z @ p["W_dec"] + p["b_dec"]
    e = x - x_hat
    tv = (x - x.mean(0)).pow(2).sum()
    fvu = e.pow(2).sum() / tv
    n_dead = int(dead.sum())
    auxk = torch.zeros(())
    if n_dead > 0:
        k_aux = min(K_AUX, n_dead)
        scale = min(n_dead / K_AUX, 1.0)
        aux_pre = torch.where(dead[None], pre, torch.full_like(pre, -float("inf")))
        avals, aidx = aux_pre.topk(k_aux, dim=1)
        e_hat = torch.zeros(N, M).scatter(1, aidx, avals) @ p["W_dec"]
        auxk = scale * (e_hat - e.detach()).pow(2).sum() / tv
    fired = (z > 0).any(0)
    return fvu + ALPHA * auxk, fvu, auxk, fired


def main():
    setup_determinism(0)
    g = torch.Generator().manual_seed(1234)
    x0 = torch.randn(N, D, generator=g) * 2.0 + 0.5
    W_dec = torch.randn(M, D, generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec + 0.3 * torch.randn(M, D, generator=g)
    b_enc = 0.1 * torch.randn(M, generator=g)
    b_dec = 0.2 * torch.randn(D, generator=g)
    dead0 = torch.zeros(M, dtype=torch.bool)
    dead0[::3] = True  # every third latent has not fired for long
    # later batches: fresh rows from the same distribution (the first is the one the single-step golden used)
    xs = torch.stack([x0] + [torch.randn(N, D, generator=g) * 2.0 + 0.5 for _ in range(STEPS - 1)])

    p = {"W_enc": W_enc.clone().requires_grad_(), "b_enc": b_enc.clone().requires_grad_(),
         "W_dec": W_dec.clone().requires_grad_(), "b_dec": b_dec.clone().requires_grad_()}
    opt = torch.optim.Adam([p[n] for n in NAMES], lr=LR, betas=(0.9, 0.999), eps=EPS)
    since_fired = torch.where(dead0, DEAD_TOKENS + 1, 0).long()
    out = {
        "x": xs,
        "dead": dead0.float(),
        "hparams": torch.tensor([K, K_AUX, ALPHA, LR, EPS, DEAD_TOKENS], dtype=torch.float64),
    }
    for n, v in zip(NAMES, (W_enc, b_enc, W_dec, b_dec)):
        out["in." + n] = v
    for s in range(1, STEPS + 1):
        dead = since_fired > DEAD_TOKENS
        opt.zero_grad()
        loss, fvu, auxk, fired = forward_loss(p, xs[s - 1], dead)
        loss.backward()
        pre = f"step{s}."
        for n in NAMES:
            out[pre + "grad." + n] = p[n].grad.clone()
        with torch.no_grad():
            w = p["W_dec"]
            w.grad -= (w.grad * w).sum(1, keepdim=True) * w
        opt.step()
        with torch.no_grad():
            p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True)
        since_fired += N
        since_fired[fired] = 0
        out[pre + "loss"] = loss.detach().reshape(1)
        out[pre + "fvu"] = fvu.detach().reshape(1)
        out[pre + "auxk"] = auxk.detach().reshape(1)
        out[pre + "n_dead"] = dead.sum().float().reshape(1)
        for n in NAMES:
            st = opt.state[p[n]]
            out[pre + "out." + n] = p[n].detach().clone()
            out[pre + "m." + n] = st["exp_avg"].clone()
            out[pre + "v." + n] = st["exp_avg_sq"].clone()
        print(f"step {s}: loss {loss.item():.6f} (fvu {fvu.item():.6f}, auxk {auxk.item():.6f}), "
              f"{int(dead.sum())} dead")
    path = os.path.join(GOLDEN_DIR, "sae_step.safetensors")
    save_st(path, out, metadata={"generator": "tools/reference/sae_step.py", "torch": torch.__version__})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
