"""PyTorch CPU peer for bench/sae_cpu_bench.c: the same top-k SAE recipe and step, timed the same way.

  --impl sparsify : EleutherAI sparsify's SparseCoder (fused encoder with its sparse backward, embedding_bag
                    decoder), with its AuxK (dead_mask), then the trainer's step: remove the decoder-parallel
                    gradient, torch.optim.Adam (eps 6.25e-10), renormalize the decoder rows.
  --impl dense    : the recipe written directly in autograd (topk + scatter into a dense [N, M] code).

Prints one JSON line like the C bench. bench/run_sae_cpu.sh runs both with the same thread count.
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("SPARSIFY_DISABLE_TRITON", "1")  # sparsify's Triton decoder needs a GPU

import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--d", type=int, default=1024)
    ap.add_argument("--latents", type=int, default=32768)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--dead-frac", type=float, default=0.0)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--impl", choices=["sparsify", "dense"], default="sparsify")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, m, k, n = a.d, a.latents, a.k, a.batch
    x = torch.randn(n, d) + 0.5 * (torch.arange(d) % 7 == 0).float()
    x = x * math.sqrt(d / x.pow(2).sum(1).mean().item())
    dead = (torch.arange(m) % 1000) < a.dead_frac * 1000

    if a.impl == "sparsify":
        from sparsify import SparseCoder, SparseCoderConfig

        sae = SparseCoder(d, SparseCoderConfig(k=k, num_latents=m))
        with torch.no_grad():
            sae.encoder.weight.copy_(sae.W_dec)
            sae.b_dec.copy_(x.mean(0))
        params = list(sae.parameters())

        def loss_fn():
            out = sae(x, dead_mask=dead if dead.any() else None)
            return out.fvu + out.auxk_loss / 32

        def renorm():
            sae.set_decoder_norm_to_unit_norm()

        def fix_grad():
            sae.remove_gradient_parallel_to_decoder_directions()

        wdec = sae.W_dec
    else:
        W_dec = torch.randn(m, d)
        W_dec /= W_dec.norm(dim=1, keepdim=True)
        p = {"W_enc": W_dec.clone().requires_grad_(), "b_enc": torch.zeros(m, requires_grad=True),
             "W_dec": W_dec.requires_grad_(), "b_dec": x.mean(0).clone().requires_grad_()}
        params = list(p.values())
        k_aux = d // 2

        def loss_fn():
            pre = torch.relu((x - p["b_dec"]) @ p["W_enc"].T + p["b_enc"])
            v, i = pre.topk(k, dim=1, sorted=False)
            x_hat = torch.zeros_like(pre).scatter(1, i, v) @ p["W_dec"] + p["b_dec"]
            e = x - x_hat
            tv = (x - x.mean(0)).pow(2).sum()
            loss = e.pow(2).sum() / tv
            nd = int(dead.sum())
            if nd:
                av, ai = torch.where(dead[None], pre, -torch.inf).topk(min(k_aux, nd), dim=1, sorted=False)
                e_hat = torch.zeros_like(pre).scatter(1, ai, av) @ p["W_dec"]
                loss = loss + min(nd / k_aux, 1.0) * (e_hat - e.detach()).pow(2).sum() / tv / 32
            return loss

        def renorm():
            with torch.no_grad():
                p["W_dec"] /= p["W_dec"].norm(dim=1, keepdim=True)

        def fix_grad():
            w = p["W_dec"]
            w.grad -= (w.grad * w.data).sum(1, keepdim=True) * w.data

        wdec = p["W_dec"]

    opt = torch.optim.Adam(params, lr=2e-4 / math.sqrt(m / 16384), betas=(0.9, 0.999), eps=6.25e-10)

    def step():
        loss = loss_fn()
        loss.backward()
        fix_grad()
        opt.step()
        opt.zero_grad(set_to_none=False)
        renorm()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        loss = step()
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert wdec.shape == (m, d)
    print(json.dumps({"impl": f"torch-{a.impl}", "torch": torch.__version__, "d": d, "latents": m, "k": k,
                      "batch": n, "threads": torch.get_num_threads(), "steps": a.steps, "dead_frac": a.dead_frac,
                      "tokens_per_s": round(n * a.steps / el, 1),
                      "tokens_per_cpu_s": round(n * a.steps / cpu, 1), "s_per_step": round(el / a.steps, 4),
                      "loss": round(loss, 4)}))


if __name__ == "__main__":
    main()
