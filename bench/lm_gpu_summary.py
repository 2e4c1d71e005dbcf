"""Tables and target verdicts of the GPU MusicGen benchmark (issue cuda-lm) from the JSON lines of
bench/lm_gpu_bench (impl "musae") and bench/peers/hf_musicgen_gpu.py (impl "hf"), as markdown ready for
bench/results/. bench/run_lm_gpu.sh runs it on the GPU machine; it also runs anywhere on fetched logs.

    python bench/lm_gpu_summary.py LOG... [--gpu LINE] [--commit C] [--note TEXT]

Targets (issue cuda-lm): decode at batch 1 with CFG >= 10x HF on small and >= 5x on large; >= 60% of the HBM
roofline on large at batch 1; capture >= 3x HF; GPU memory <= (weights + K/V cache) x 1.10.
"""

import argparse
import datetime
import json

SPEEDUP_TARGET = {"small": 10.0, "large": 5.0}
ROOFLINE_TARGET = 0.60
CAPTURE_TARGET = 3.0
MEMORY_TARGET = 1.10


def read(paths):
    """The JSON lines of the logs at paths (other lines, unreadable files and bytes that are not UTF-8 passed over)."""
    out = []
    for p in paths:
        try:
            lines = open(p, errors="replace").read().splitlines()
        except OSError:
            continue
        for line in lines:
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
    return out


def pick(recs, **kw):
    return [r for r in recs if all(r.get(k) == v for k, v in kw.items())]


def one(recs, **kw):
    r = pick(recs, **kw)
    return r[-1] if r else None


def main_decode(recs, model):
    """musae's decode records of the default loop (auto), by batch."""
    rs = [r for r in pick(recs, impl="musae", model=model, measure="decode") if r.get("loop", "auto") == "auto"]
    return sorted(rs, key=lambda r: r["batch"])


def f(x, fmt):
    return "–" if x is None else format(x, fmt)


def verdict(ok):
    return "–" if ok is None else ("**pass**" if ok else "**FAIL**")


def render(recs, gpu="", commit="", notes=()):
    """The markdown lines of the report and the target checks [(target, measured, True/False/None)]."""
    dev = one(recs, impl="musae", measure="device") or {}
    hfdev = one(recs, impl="hf", measure="device") or {}
    peak = dev.get("peak_bw_gbs")
    models = [m for m in ("small", "medium", "large") if pick(recs, model=m)]
    models += sorted({r["model"] for r in recs if "model" in r} - set(models))

    out = ["# MusicGen decoder on the GPU: musae vs HF transformers", ""]
    out.append(f"- GPU: {gpu or dev.get('gpu', '?')}; {dev.get('sm', '?')} SMs; HBM peak "
               f"{f(peak, '.0f')} GB/s (2 × {f(dev.get('mem_clock_mhz'), '.0f')} MHz × {dev.get('bus_bits', '?')} bit, "
               f"from the device attributes); CUDA driver {dev.get('cuda_driver', '?')}, runtime {dev.get('cuda_runtime', '?')}")
    hfload = one(recs, impl="hf", measure="load") or {}
    out.append(f"- musae commit {commit or '?'}; HF peer: torch {hfdev.get('torch', '?')}, transformers "
               f"{hfdev.get('transformers', '?')}, {hfload.get('precision', '?')}, decoder attention "
               f"{hfdev.get('attn', '?')}")
    out.append(f"- {datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}; random-weight "
               "checkpoints of the real sizes (bench/make_gpu_configs.py), text of 12 tokens, greedy unless stated")
    for n in notes:
        out.append(f"- {n}")
    out.append("")

    checks = []
    out += ["## Decode (generate with text + CFG, ms per step)", "",
            "| model | batch | steps | musae ms/step (loop) | HF ms/step | speedup | musae × real time | HF × real time "
            "| musae roofline (weights) | (weights + K/V) | HF roofline (weights) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        for r in main_decode(recs, m):
            h = one(recs, impl="hf", model=m, measure="decode", batch=r["batch"])
            sp = h["ms_per_step"] / r["ms_per_step"] if h else None
            hroof = (h["weight_bytes_per_step"] / (h["ms_per_step"] * 1e-3) / (peak * 1e9)) if h and peak else None
            steps = f"{r['steps']}" + (f" (HF {h['steps']})" if h and h["steps"] != r["steps"] else "")
            out.append(f"| {m} | {r['batch']} | {steps} | {r['ms_per_step']:.3f} ({r.get('loop_ran', '?')}) "
                       f"| {f(h and h['ms_per_step'], '.3f')} "
                       f"| {f(sp, '.2f')}× | {r['x_realtime']:.1f} | {f(h and h['x_realtime'], '.1f')} "
                       f"| {100 * r['roofline_weights']:.1f}% | {100 * r['roofline_weights_kv']:.1f}% "
                       f"| {f(hroof and 100 * hroof, '.1f')}% |")
            if r["batch"] == 1 and m in SPEEDUP_TARGET:
                checks.append((f"{m}: decode speedup at batch 1 ≥ {SPEEDUP_TARGET[m]:.0f}×", f(sp, ".2f") + "×",
                               None if sp is None else sp >= SPEEDUP_TARGET[m]))
            if r["batch"] == 1 and m == "large":
                checks.append((f"large: HBM roofline at batch 1 ≥ {100 * ROOFLINE_TARGET:.0f}%",
                               f"{100 * r['roofline_weights']:.1f}%", r["roofline_weights"] >= ROOFLINE_TARGET))
    others = [r for m in models for r in pick(recs, impl="musae", model=m, measure="decode")
              if r.get("loop", "auto") != "auto"]
    if others:
        out += ["", "musae's other generation loops (model/generate.h; the table above is the default, auto):", "",
                "| model | batch | loop | ms/step | × real time | roofline (weights) |", "|---|---|---|---|---|---|"]
        out += [f"| {r['model']} | {r['batch']} | {r['loop_ran']} | {r['ms_per_step']:.3f} | {r['x_realtime']:.1f} "
                f"| {100 * r['roofline_weights']:.1f}% |" for r in others]
    out += ["", "Roofline = linear-layer weight bytes one step streams / ms per step / peak bandwidth (K/V: the "
            "cache positions a step reads, on average (steps + 1) / 2, and the text K/V). × real time = seconds of "
            "audio (50 frames/s) per second of wall time, for one item of the batch.", ""]

    out += ["## Teacher-forced capture (frames/s)", "",
            "| model | batch × frames | layers | musae frames/s | HF frames/s | ratio |", "|---|---|---|---|---|---|"]
    for m in models:
        r = one(recs, impl="musae", model=m, measure="capture")
        if not r:
            continue
        h = one(recs, impl="hf", model=m, measure="capture")
        ratio = r["frames_per_s"] / h["frames_per_s"] if h else None
        out.append(f"| {m} | {r['batch']} × {r['frames']} | {r['layers']} | {r['frames_per_s']:.0f} "
                   f"| {f(h and h['frames_per_s'], '.0f')} | {f(ratio, '.2f')}× |")
        checks.append((f"{m}: capture ≥ {CAPTURE_TARGET:.0f}× HF", f(ratio, ".2f") + "×",
                       None if ratio is None else ratio >= CAPTURE_TARGET))
    out += ["", "musae: mg_forward without logits, READ hooks copying the layers' rows to host memory; HF: the "
            "decoder's forward with output_hidden_states, the same layers copied to host memory.", ""]

    out += ["## GPU memory during generation (MiB)", "",
            "| model | batch | musae peak | weights | K/V cache | musae / (weights + K/V) | HF peak allocated "
            "| HF weights (all) | HF K/V |", "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        for r in main_decode(recs, m):
            h = one(recs, impl="hf", model=m, measure="decode", batch=r["batch"])
            out.append(f"| {m} | {r['batch']} | {r['mem_peak_mib']:.0f} | {r['mem_weights_mib']:.0f} "
                       f"| {r['mem_kv_mib']:.0f} | {r['mem_over_weights_kv']:.3f} | {f(h and h['mem_peak_mib'], '.0f')} "
                       f"| {f(h and h['mem_weights_mib'], '.0f')} | {f(h and h['mem_kv_mib'], '.0f')} |")
            checks.append((f"{m} batch {r['batch']}: memory ≤ (weights + K/V) × {MEMORY_TARGET:.2f}",
                           f"{r['mem_over_weights_kv']:.3f}", r["mem_over_weights_kv"] <= MEMORY_TARGET))
    out += ["", "musae: device memory in use (cudaMemGetInfo, polled during the warm-up run) minus what was in use "
            "before the weights were loaded (CUDA context, cuBLASLt workspace); weights = the loaded arena (bf16 "
            "linear layers, fp32 embeddings and norms). HF: torch.cuda.max_memory_allocated (its caching allocator "
            "reserves more), all parameters (T5 and EnCodec included), fp16 K/V.", ""]

    out += ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    out += [f"| {t} | {v} | {verdict(ok)} |" for t, v, ok in checks]
    return out, checks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--gpu", default="")
    ap.add_argument("--commit", default="")
    ap.add_argument("--note", action="append", default=[])
    a = ap.parse_args()
    recs = read(a.logs)
    out, _ = render(recs, a.gpu, a.commit, a.note)
    out += ["", "## Raw JSON lines", "", "```"] + [json.dumps(r) for r in recs] + ["```", ""]
    print("\n".join(out))


if __name__ == "__main__":
    main()
