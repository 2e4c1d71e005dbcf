#!/usr/bin/env bash
# CPU SAE benchmark: musae against PyTorch (sparsify's SparseCoder, and the recipe in plain autograd) on the
# same machine, threads and shapes; then peak memory of `musae train` on two store sizes. Both wall-clock
# tokens/s and tokens per CPU-second are reported: the second is steadier when others share the machine.
#   bench/run_sae_cpu.sh [BUILD_DIR]        (default build; needs bench/sae_cpu_bench built, eai-sparsify)
# Shapes (issue sae-cpu): d 1024, M 32768, k 32, batch 4096. THREADS (default: nproc) sets OMP_NUM_THREADS and
# torch.set_num_threads alike.
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-4}
export OMP_NUM_THREADS=$THREADS
SHAPE="--d ${D:-1024} --latents ${LATENTS:-32768} --k ${K:-32} --batch ${BATCH:-4096} --steps $STEPS --warmup 1"

echo "== throughput ($THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
for dead in 0 0.1; do
  m=$("$BUILD/bench/sae_cpu_bench" $SHAPE --dead-frac $dead)
  s=$(python3 "$HERE/sae_cpu_torch.py" $SHAPE --dead-frac $dead --threads "$THREADS" --impl sparsify 2>/dev/null | tail -1)
  t=$(python3 "$HERE/sae_cpu_torch.py" $SHAPE --dead-frac $dead --threads "$THREADS" --impl dense 2>/dev/null | tail -1)
  echo "$m"; echo "$s"; echo "$t"
  python3 - "$m" "$s" "$t" <<'PY'
import json, sys
m, s, t = (json.loads(a) for a in sys.argv[1:])
for key, what in (("tokens_per_s", "tok/s"), ("tokens_per_cpu_s", "tok per CPU-s")):
    print(f"dead {m['dead_frac']}: musae {m[key]:.0f} {what} | sparsify {s[key]:.0f} ({m[key] / s[key]:.2f}x) | "
          f"dense autograd {t[key]:.0f} ({m[key] / t[key]:.2f}x)")
PY
done

echo "== peak memory of musae train against store size"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
for rows in 200000 2000000; do
  "$BUILD/musae" synth_acts -o "$W/s$rows.h5" --d 256 --rows $rows 2>/dev/null
  python3 - "$BUILD/musae" "$W" "$rows" <<'PY'
import os, resource, subprocess, sys
musae, w, rows = sys.argv[1:]
subprocess.run([musae, "train", "--acts", f"{w}/s{rows}.h5", "--layer", "0", "--k", "16", "--expansion", "8",
                "--tokens", "200000", "--batch", "4096", "--eval-tokens", "4096", "-o", f"{w}/sae{rows}"],
               check=True, capture_output=True)
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
size = os.path.getsize(f"{w}/s{rows}.h5") / 2**20
print(f"store {rows} rows ({size:.0f} MiB): peak RSS {rss:.0f} MiB")
PY
done
