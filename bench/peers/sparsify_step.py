"""EleutherAI sparsify's top-k SAE training step on the GPU: the peer of bench/sae_gpu_bench.cu, same shapes.

sparsify is `pip install eai-sparsify` (1.3.3 read here; PyPI's "sparsify" is an unrelated, deprecated Neural
Magic package). The step is sparsify's Trainer step for one hookpoint with loss_fn=fvu, written out from
sparsify/trainer.py (1.3.3) because the Trainer itself needs a Hugging Face model and dataset:
    sae.set_decoder_norm_to_unit_norm()                 (every forward, as the trainer)
    total_variance = (x - x.mean(0)).pow(2).sum()
    out = sae(x, dead_mask=..., total_variance=...)     (SparseCoder.forward: bf16 autocast, fused encoder with
                                                         its sparse backward, Triton embedding-bag decoder)
    did_fire[out.latent_indices.flatten()] = True; float(out.fvu)   (the trainer's bookkeeping, a host sync)
    (out.fvu + auxk_alpha * out.auxk_loss + out.multi_topk_fvu / 8).backward()
    sae.remove_gradient_parallel_to_decoder_directions()
    optimizer.step(); optimizer.zero_grad(); dead counters updated
Optimizer: torch.optim.Adam at sparsify's lr 2e-4/sqrt(M/2^14) (what sparsify uses for optimizer="adam" when
bitsandbytes is absent; its default optimizer on 1.3.3 is signum, `--optimizer signum` times that instead:
SignSGD under schedulefree's wrapper if installed, else plain SignSGD). The LR scheduler is left out (its cost
is a Python call). Data: uniform with unit variance, fp32, on the GPU (as the C bench).

Prints one JSON line per workload (bench/run_sae_gpu.sh pairs them with the C bench's lines).
"""

import argparse
import importlib.util
import json
import math
import sys
import time
import types

import torch


def load_sparsify():
    # Import sparsify.sparse_coder without running sparsify/__init__.py, which imports the trainer and with it
    # `datasets` and `schedulefree`: not needed for a step, and not on the GPU machine's image.
    if "sparsify" not in sys.modules:
        spec = importlib.util.find_spec("sparsify")
        if spec is None or spec.submodule_search_locations is None:
            raise SystemExit("eai-sparsify is not installed (bench/README.md: the wheels to carry)")
        pkg = types.ModuleType("sparsify")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["sparsify"] = pkg
    from sparsify.config import SparseCoderConfig
    from sparsify.sparse_coder import SparseCoder
    import sparsify.utils as su

    try:
        from importlib.metadata import version

        ver = version("eai-sparsify")
    except Exception:
        ver = "unknown"
    return SparseCoder, SparseCoderConfig, su.decoder_impl.__name__, ver


WORKLOADS = {"a": (1024, 32768, 32), "b": (2048, 65536, 100)}


def run(name, batch, steps, warmup, auxk, optimizer, device="cuda"):
    SparseCoder, SparseCoderConfig, decoder, ver = load_sparsify()
    d, m, k = WORKLOADS[name]
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    mem0 = torch.cuda.memory_allocated() if cuda else 0
    x = (torch.rand(batch, d, device=dev) * 2 - 1) * math.sqrt(3.0)
    sae = SparseCoder(d, SparseCoderConfig(k=k, num_latents=m), device=dev, dtype=torch.float32)
    with torch.no_grad():
        sae.b_dec.copy_(x.mean(0))  # the trainer's first-step init
    lr = 2e-4 / math.sqrt(m / 2**14)
    if optimizer == "adam":
        opt = torch.optim.Adam(sae.parameters(), lr=lr)
    else:
        from sparsify.sign_sgd import SignSGD

        opt = SignSGD(sae.parameters(), lr=5e-3 / math.sqrt(m / 2**14))
    auxk_alpha = 1 / 32 if auxk else 0.0
    since_fired = torch.zeros(m, dtype=torch.long, device=dev)
    dead_threshold = 0 if auxk else 10_000_000
    if auxk:  # every 4th latent dead, as the C bench
        since_fired[torch.arange(m, device=dev) % 4 == 0] = 1

    def step():
        sae.set_decoder_norm_to_unit_norm()
        dead_mask = since_fired > dead_threshold if auxk_alpha > 0 else None
        total_variance = (x - x.mean(0)).pow(2).sum()
        out = sae(x, dead_mask=dead_mask, total_variance=total_variance)
        did_fire = torch.zeros(m, dtype=torch.bool, device=dev)
        did_fire[out.latent_indices.flatten()] = True
        fvu = float(out.fvu.detach())
        loss = out.fvu + auxk_alpha * out.auxk_loss + out.multi_topk_fvu / 8
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        if not auxk:  # keep the planted dead set fixed under --auxk
            since_fired.add_(batch)
            since_fired[did_fire] = 0
        return fvu, out.latent_indices.shape[-1]

    times = []
    fvu = float("nan")
    for s in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        fvu, _ = step()
        sync()
        if s >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    step_ms = times[len(times) // 2]
    peak = torch.cuda.max_memory_allocated() - mem0 if cuda else 0
    print(
        f"sparsify {ver} ({decoder} decoder, torch {torch.__version__}, {optimizer}): workload {name} d {d} M {m} "
        f"k {k} batch {batch}: {step_ms:.3f} ms/step, {batch / (step_ms * 1e-3):.0f} tokens/s, "
        f"peak {peak / 2**30:.2f} GiB",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "impl": "sparsify",
                "version": ver,
                "decoder": decoder,
                "torch": torch.__version__,
                "optimizer": optimizer,
                "workload": name,
                "d": d,
                "latents": m,
                "k": k,
                "batch": batch,
                "auxk": int(auxk),
                "step_ms": step_ms,
                "tokens_per_s": batch / (step_ms * 1e-3),
                "peak_bytes": peak,
                "bytes_per_latent": peak / m,
                "fvu": fvu,
            }
        ),
        flush=True,
    )
    del sae, opt, x
    if cuda:
        torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workload", default="all", choices=["a", "b", "all"])
    ap.add_argument("--batch", type=int, default=16384)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--auxk", action="store_true")
    ap.add_argument("--optimizer", default="adam", choices=["adam", "signum"])
    ap.add_argument("--device", default="cuda", help="cpu: a smoke test of the step (tiny --batch)")
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        print("SKIPPED: no CUDA device for torch")
        sys.exit(77)
    for w in ("a", "b") if a.workload == "all" else (a.workload,):
        run(w, a.batch, a.steps, a.warmup, a.auxk, a.optimizer, a.device)


if __name__ == "__main__":
    main()
