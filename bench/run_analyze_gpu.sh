#!/usr/bin/env bash
# GPU benchmark of `musae analyze --device cuda` (issue 15: the device path, target >= 20x the CPU), both figures from
# the same run on the same store and SAE, plus how far the two files agree (counts exact, values 1e-5 relative).
#   bench/run_analyze_gpu.sh [BUILD_DIR]    (a CUDA build; THREADS, D, EXPANSION, K, ROWS override the shapes)
# Not yet run on a GPU (GPU verification pending).
set -euo pipefail
BUILD=${1:-build}
THREADS=${THREADS:-$(nproc)}
D=${D:-1024}
EXPANSION=${EXPANSION:-16}
K=${K:-32}
ROWS=${ROWS:-100000}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
musae="$BUILD/musae"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# wall seconds and CPU seconds of a command
measure() { python3 "$(dirname "$0")/measure.py" "$@"; } # prints: wall_s cpu_s peak_rss_mib

echo "== d $D, $((D * EXPANSION)) latents, k $K, $ROWS rows; CPU: $THREADS threads ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
"$musae" synth_acts -o "$W/s.h5" --d "$D" --concepts 4096 --k-true 16 --rows "$ROWS" --clip-frames 250 2>/dev/null
"$musae" train --acts "$W/s.h5" --layer 0 --k "$K" --expansion "$EXPANSION" --tokens 65536 --batch 4096 --warmup 1 \
  --eval-tokens 4096 -o "$W/sae" >/dev/null 2>&1
read -r cw cc _ < <(measure "$musae" analyze --sae "$W/sae" --acts "$W/s.h5" --split all --device cpu -o "$W/cpu.h5")
read -r gw gc _ < <(measure "$musae" analyze --sae "$W/sae" --acts "$W/s.h5" --split all --device cuda -o "$W/gpu.h5")
python3 - "$ROWS" "$cw" "$cc" "$gw" "$gc" "$W/cpu.h5" "$W/gpu.h5" <<'PY'
import sys
import h5py
import numpy as np
rows, cw, cc, gw, gc = int(sys.argv[1]), *map(float, sys.argv[2:6])
print(f"musae analyze --device cpu {rows / cw:.0f} rows/s ({cc:.2f} CPU-s) | --device cuda {rows / gw:.0f} rows/s "
      f"({gc:.2f} CPU-s) | {cw / gw:.1f}x wall (whole command: load, hash, pass, statistics, file)")
a, b = h5py.File(sys.argv[6], "r"), h5py.File(sys.argv[7], "r")
for k in ["n_active_frames", "clip_rate", "top_clip", "max_act", "mean_act"]:
    x, y = a["features/" + k][:], b["features/" + k][:]
    rel = np.abs(x.astype(np.float64) - y) / np.maximum(np.abs(x.astype(np.float64)), 1e-30)
    print(f"  {k}: {int((x != y).sum())} of {x.size} differ, max relative {float(rel.max()):.2e}")
PY
