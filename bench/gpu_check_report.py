"""The report of scripts/gpu_check.sh, from the files it writes to its output folder (runs anywhere on fetched ones).

    python3 bench/gpu_check_report.py OUTDIR [--budget S] [--quiet]
        writes OUTDIR/<date>-<gpu>.md, the page for bench/results/ (GPU, driver, commit, the peers' versions, every
        test and sanitizer run, both benchmarks' tables, the targets with pass/FAIL, the raw JSON lines), and prints
        the summary table (phases, test counts, what failed or skipped, the targets) unless --quiet
    python3 bench/gpu_check_report.py OUTDIR --ctest PHASE LISTFILE SECONDS_LEFT
        reads the last ctest run of PHASE in OUTDIR/tests.log and appends one line per test listed in LISTFILE to
        OUTDIR/phases.tsv: passed, failed, skipped (with the reason the test printed) or cut (a test that timed
        out, or never reported, when the phase had reached its deadline: SECONDS_LEFT <= 5)

Targets: issue cuda-lm (bench/lm_gpu_summary.py: decode at batch 1 with CFG >= 10x HF on small and >= 5x on large,
>= 60% of the HBM roofline on large, capture >= 3x HF, memory <= 1.10x weights + K/V) and issue cuda-sae (workload
(b): >= 3x sparsify's tokens/s at equal FVU within 1%; the trainer streamed from a store >= 80% of in memory).
"""

import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_gpu_summary  # noqa: E402

SAE_SPEEDUP_TARGET = 3.0
SAE_FVU_TOLERANCE = 0.01
STREAM_TARGET = 0.80
PHASES = ("setup", "tests", "sanitize", "train", "lm", "sae")
# every target the check is meant to measure, so one that was not measured still shows
LM_TARGETS = [
    "small: decode speedup at batch 1 ≥ 10×",
    "large: decode speedup at batch 1 ≥ 5×",
    "large: HBM roofline at batch 1 ≥ 60%",
    "small: capture ≥ 3× HF",
    "large: capture ≥ 3× HF",
    "small batch 1: memory ≤ (weights + K/V) × 1.10",
    "large batch 1: memory ≤ (weights + K/V) × 1.10",
]
SAE_TARGETS = [
    "sae (b): step ≥ 3× sparsify",
    "sae (b): FVU within 1% of sparsify's",
    "sae (b): trainer streamed ≥ 80% of in memory",
]

RESULT = re.compile(r"^\s*\d+/\d+ Test\s+#(\d+): (\S+) \.*\s*(?:\*\*\*)?([A-Za-z][A-Za-z ]*?)\s+([\d.]+) sec")


def read_env(outdir):
    env = {}
    try:
        for line in open(os.path.join(outdir, "env.txt")):
            k, sep, v = line.partition(":")
            if sep:
                env[k.strip()] = v.strip()
    except OSError:
        pass
    return env


def read_rows(outdir):
    rows = []
    try:
        for line in open(os.path.join(outdir, "phases.tsv")):
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 5:
                rows.append(dict(zip(("phase", "item", "status", "seconds", "note"), parts)))
    except OSError:
        pass
    return rows


def results_name(env):
    """<date>-<gpu>.md, in the characters the device tool returns (letters, digits, '.', '_', '-')."""
    date = env.get("date", "0000-00-00").split()[0]
    gpu = env.get("gpu", "").split(",")[0].strip().lower()
    gpu = re.sub(r"^nvidia\s+", "", gpu)
    gpu = re.sub(r"[^a-z0-9.]+", "-", gpu).strip("-") or "nogpu"
    return f"{date}-{gpu}.md"


def ctest_rows(outdir, phase, listfile, seconds_left):
    """Appends one phases.tsv line per listed test from PHASE's last ctest run in tests.log."""
    text = open(os.path.join(outdir, "tests.log"), errors="replace").read()
    start = text.rfind(f"######## {phase}: ctest")
    text = text[start:] if start >= 0 else ""
    names = [n.strip() for n in open(listfile) if n.strip()]
    num, res = {}, {}
    for line in text.splitlines():
        m = re.match(r"^\s*(?:\d+/\d+ )?Test\s+#(\d+): (\S+)", line)
        if m:
            num[m.group(1)] = m.group(2)
        m = RESULT.match(line)
        if m:
            res[m.group(2)] = (m.group(3).strip(), float(m.group(4)))
    skips = {}
    for line in text.splitlines():
        m = re.match(r"^(\d+): (SKIPPED: .*)", line)
        if m and num.get(m.group(1)) not in skips:
            skips[num.get(m.group(1))] = m.group(2)
    at_deadline = seconds_left <= 5
    with open(os.path.join(outdir, "phases.tsv"), "a") as tsv:
        for n in names:
            what, secs = res.get(n, (None, 0.0))
            note = ""
            if what == "Passed":
                st = "passed"
            elif what == "Skipped":
                st, note = "skipped", skips.get(n, "SKIPPED (no reason printed)")
            elif what in ("Timeout", "Not Run") and at_deadline or what is None and at_deadline:
                st, note = "cut", "cut at the phase's deadline" + (f" ({what})" if what else " (no result)")
            elif what is None:
                st, note = "failed", "no result in the ctest log"
            else:
                st, note = "failed", what
            tsv.write(f"{phase}\t{n}\t{st}\t{secs:.1f}\t{note}\n")
            print(f"  {st:8} {n:40} {secs:6.1f} s  {note}")


def sae_section(recs):
    """Markdown lines and checks of the SAE benchmark (workload b) from its JSON lines."""
    m = [r for r in recs if r.get("impl") == "musae-cuda"]
    s = [r for r in recs if r.get("impl") == "sparsify"]
    t = [r for r in recs if r.get("impl") == "musae-cuda-trainer"]
    out = ["## SAE training step: musae vs sparsify (issue cuda-sae)", "",
           "| workload | d | M | k | batch | musae tok/s | sparsify tok/s | ratio | musae FVU | sparsify FVU "
           "| FVU difference | musae B/latent | sparsify B/latent |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    checks = []
    for a in m:
        b = next((r for r in s if r["workload"] == a["workload"]), None)
        ratio = a["tokens_per_s"] / b["tokens_per_s"] if b else None
        dfvu = (a["fvu"] - b["fvu"]) / b["fvu"] if b and b.get("fvu") else None
        fmt = lm_gpu_summary.f
        out.append(f"| {a['workload']} | {a['d']} | {a['latents']} | {a['k']} | {a['batch']} | {a['tokens_per_s']:.0f} "
                   f"| {fmt(b and b['tokens_per_s'], '.0f')} | {fmt(ratio, '.2f')}× | {a['fvu']:.4f} "
                   f"| {fmt(b and b['fvu'], '.4f')} | {fmt(dfvu and 100 * dfvu, '+.2f')}% | {a['bytes_per_latent']:.0f} "
                   f"| {fmt(b and b['bytes_per_latent'], '.0f')} |")
        if a["workload"] == "b":
            checks.append((SAE_TARGETS[0], fmt(ratio, ".2f") + "×", None if ratio is None else ratio >= SAE_SPEEDUP_TARGET))
            checks.append((SAE_TARGETS[1], fmt(dfvu and 100 * dfvu, "+.2f") + "%",
                           None if dfvu is None else abs(dfvu) <= SAE_FVU_TOLERANCE))
    stages = [k[:-3] for k in (m[0] if m else {}) if k.endswith("_ms") and k not in ("step_ms", "gemm_tiles_ms", "gemm_mono_ms")]
    if m:
        out += ["", "musae per-stage medians (ms): " + "; ".join(
            f"{a['workload']}: " + ", ".join(f"{st} {a[st + '_ms']:.3f}" for st in stages) +
            f"; encoder GEMM alone {a['gemm_tiles_ms']:.3f}, one monolithic bf16 GEMM {a['gemm_mono_ms']:.3f}" for a in m)]
    out += ["", "FVU: the last timed step's, both from their own initialisation on the same uniform data (unit "
            "variance) after the same steps; sparsify: Adam at its learning rate, bf16 autocast (bench/README.md).", "",
            "| workload | trainer in memory tok/s | streamed tok/s | streamed / in memory | compute stream waited (s) |",
            "|---|---|---|---|---|"]
    for a in t:
        out.append(f"| {a['workload']} | {a['mem_tokens_per_s']:.0f} | {a['stream_tokens_per_s']:.0f} "
                   f"| {100 * a['stream_ratio']:.1f}% | {a['gpu_wait_s']:.3f} |")
        if a["workload"] == "b":
            checks.append((SAE_TARGETS[2], f"{100 * a['stream_ratio']:.1f}%", a["stream_ratio"] >= STREAM_TARGET))
    return out, checks


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--budget", type=int, default=0)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--ctest", nargs=3, metavar=("PHASE", "LISTFILE", "SECONDS_LEFT"))
    a = ap.parse_args()
    if a.ctest:
        ctest_rows(a.outdir, a.ctest[0], a.ctest[1], float(a.ctest[2]))
        return
    env = read_env(a.outdir)
    rows = read_rows(a.outdir)
    lm_recs = lm_gpu_summary.read([os.path.join(a.outdir, "lm.log")])
    sae_recs = lm_gpu_summary.read([os.path.join(a.outdir, "sae.log")])
    name = results_name(env)
    commit = env.get("commit", "?")

    lm_lines, lm_checks = lm_gpu_summary.render(lm_recs, env.get("gpu", ""), commit)
    lm_lines = [("#" + x if x.startswith("#") else x) for x in lm_lines]
    if "### Targets" in lm_lines:  # they join the one targets table below
        lm_lines = lm_lines[:lm_lines.index("### Targets")]
    sae_lines, sae_checks = sae_section(sae_recs)
    got = {t: (v, ok) for t, v, ok in lm_checks + sae_checks}
    targets = [(t,) + got.get(t, ("not measured", None)) for t in LM_TARGETS + SAE_TARGETS]
    targets += [(t, v, ok) for t, v, ok in lm_checks if t not in LM_TARGETS]

    phase_rows = {r["phase"]: r for r in rows if r["item"] == "-"}
    items = [r for r in rows if r["item"] != "-"]
    count = {}
    for r in items:
        count.setdefault(r["phase"], {}).setdefault(r["status"], 0)
        count[r["phase"]][r["status"]] += 1

    md = [f"# GPU check {env.get('date', '?')}: {env.get('gpu', 'no GPU').split(',')[0] or 'no GPU'}", "",
          f"- GPU: {env.get('gpu', '?')} (name, driver, memory, max SM and memory clocks); {env.get('gpus', '?')} "
          f"visible; {env.get('cuda driver', '?')}; nvcc {env.get('nvcc', '?')}; compute-sanitizer "
          f"{env.get('compute-sanitizer') or 'absent'}; mpirun {env.get('mpirun', '?')}; ctest {env.get('ctest', '?')}",
          f"- musae commit {commit} (the devpack's: bench/pack_device.sh), run by scripts/gpu_check.sh"
          + (f" with a {a.budget} s budget" if a.budget else ""),
          f"- peers: python {env.get('python', '?')}, torch {env.get('torch', '?')}, transformers "
          f"{env.get('transformers', '?')}, triton {env.get('triton', '?')}, eai-sparsify {env.get('eai-sparsify', '?')}",
          f"- machine: cpus {env.get('cpus', '?')}", "",
          "## Phases", "", "| phase | status | used (s) | note |", "|---|---|---|---|"]
    for p in PHASES:
        r = phase_rows.get(p)
        md.append(f"| {p} | {r['status'] if r else 'not run'} | {r['seconds'] if r else '–'} | {r['note'] if r else ''} |")
    md += ["", "## Tests and compute-sanitizer runs", "", "| phase | test / run | result | s | note |",
           "|---|---|---|---|---|"]
    md += [f"| {r['phase']} | {r['item']} | {r['status']} | {r['seconds']} | {r['note']} |" for r in items]
    md += ["", "A skip on the GPU machine is a finding: the row says why. Logs: tests.log (ctest -V, every "
           "test's own table; the sanitizer reports).", ""]
    md += ["## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    md += [f"| {t} | {v} | {lm_gpu_summary.verdict(ok)} |" for t, v, ok in targets]
    md += [""] + lm_lines + [""] + sae_lines + ["", "## Raw JSON lines", "", "```"]
    md += [json.dumps(r) for r in lm_recs + sae_recs] + ["```", ""]
    with open(os.path.join(a.outdir, name + ".tmp"), "w") as fh:
        fh.write("\n".join(md))
    os.replace(os.path.join(a.outdir, name + ".tmp"), os.path.join(a.outdir, name))
    if a.quiet:
        return

    print(f"==== GPU check: {env.get('gpu', '?') or 'no GPU'}; commit {commit}")
    print(f"{'phase':9} {'status':8} {'used':>5} {'tests':>28}  note")
    for p in PHASES:
        r = phase_rows.get(p)
        c = count.get(p, {})
        cs = ", ".join(f"{v} {k}" for k, v in sorted(c.items()))
        print(f"{p:9} {r['status'] if r else 'not run':8} {r['seconds'] if r else '–':>5} {cs:>28}  "
              f"{r['note'] if r else ''}")
    for r in items:
        if r["status"] != "passed":
            print(f"  {r['status']:8} {r['phase']}/{r['item']}: {r['note'][:110]}")
    print(f"{'target':48} {'measured':>12}  verdict")
    for t, v, ok in targets:
        print(f"{t:48} {v:>12}  {lm_gpu_summary.verdict(ok).strip('*')}")
    print(f"results: {name} in the output folder (copy it to bench/results/)")


if __name__ == "__main__":
    main()
