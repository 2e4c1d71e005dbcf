#!/usr/bin/env bash
# CPU benchmark of the MusicGen decoder (issue lm-cpu): musae against PyTorch (HF transformers, fp32, its default
# SDPA attention in the decoder: ~8 % less CPU than eager on teacher forcing; PEER_ATTN=eager for the old peer)
# on the same machine, threads and shapes, in one invocation; prints both figures and the ratios.
#   bench/run_lm_cpu.sh [BUILD_DIR]      (default build; needs bench/lm_cpu_bench built, torch + transformers)
# The model is a musicgen-small-sized checkpoint with random weights, made once by bench/lm_make_model.py
# into $MODEL (default /tmp/musae-bench/musicgen-small-random, ~1.7 GB, not committed).
# Shapes: teacher forcing over FRAMES (default 500 = 10 s) with 12 text positions; decoding DECODE_STEPS
# (default 100; 0 skips decoding) steps with CFG 3 and top-k 250 sampling. THREADS (default nproc) sets OMP_NUM_THREADS and
# torch.set_num_threads alike. ROUNDS (default 2) alternates the programs and keeps each one's best,
# because a shared machine's load comes and goes. musae runs with OMP_WAIT_POLICY=passive unless the
# environment sets a policy (host/core/omp_env.h); the peer runs both with libgomp's default (active) and
# with passive, and its better figure counts.
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=${MODEL:-/tmp/musae-bench/musicgen-small-random}
THREADS=${THREADS:-$(nproc)}
FRAMES=${FRAMES:-500}
STEPS=${DECODE_STEPS:-100}
ROUNDS=${ROUNDS:-2}
export OMP_NUM_THREADS=$THREADS
[ -f "$MODEL/model.safetensors" ] || python3 "$HERE/lm_make_model.py" "$MODEL"

echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
M=$(mktemp)
P=$(mktemp)
trap 'rm -f "$M" "$P"' EXIT
for r in $(seq "$ROUNDS"); do
  "$BUILD/bench/lm_cpu_bench" --model "$MODEL" --frames "$FRAMES" --decode-steps "$STEPS" | tail -1 >> "$M"
  for policy in "${OMP_WAIT_POLICY:-active}" passive; do
    OMP_WAIT_POLICY=$policy python3 "$HERE/lm_cpu_torch.py" --model "$MODEL" --frames "$FRAMES" \
      --decode-steps "$STEPS" --threads "$THREADS" --attn "${PEER_ATTN:-default}" 2>/dev/null | tail -1 >> "$P"
  done
done
echo "   (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$M" "$P" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
p = [json.loads(l) for l in open(sys.argv[2])]
for x in m: print("musae  ", json.dumps(x))
for x in p: print("pytorch", json.dumps(x))
tf_m = max(x["tf_frames_per_s"] for x in m)
tf_p = max(x["tf_frames_per_s"] for x in p)
cpu_m = max(x["tf_frames_per_cpu_s"] for x in m)
cpu_p = max(x["tf_frames_per_cpu_s"] for x in p)
rss = max(x["peak_rss_mib"] for x in m)
w = m[0]["weights_mib"]
print(f"musae at ISA level {m[0].get('isa', '?')}, its products {m[0].get('cpu_arith', '?')} (MUSAE_ISA=avx512: fma-fp32)")
print(f"teacher forcing ({m[0]['frames']} frames): musae {tf_m:.1f} frames/s | PyTorch {tf_p:.1f} frames/s "
      f"| {tf_m / tf_p:.2f}x (target >= 1.2x)")
print(f"  per CPU-second (all threads; steadier on a shared host): musae {cpu_m:.1f} | PyTorch {cpu_p:.1f} "
      f"| {cpu_m / cpu_p:.2f}x")
print(f"peak RSS: musae {rss:.0f} MiB = {rss / w:.2f}x the {w:.0f} MiB of fp32 decoder weights (limit 1.2x); "
      f"PyTorch {max(x['peak_rss_mib'] for x in p):.0f} MiB")
if m[0]["decode_steps"] == 0:
    sys.exit(0)
dec_m = min(x["decode_ms_per_step"] for x in m)
gen_p = min(x["hf_generate_ms_per_step"] for x in p)
loop_p = min(x["loop_ms_per_step"] for x in p)
print(f"decode with CFG ({m[0]['decode_steps']} steps): musae {dec_m:.1f} ms/step | HF generate {gen_p:.1f} ms/step "
      f"({gen_p / dec_m:.2f}x, target >= 2x) | bare PyTorch decoder loop {loop_p:.1f} ms/step ({loop_p / dec_m:.2f}x)")
PY
