#!/usr/bin/env bash
# `mpirun -np P musae analyze` against one process on the same store, SAE and total thread count (issue 21):
# rows/s (wall) and rows per CPU-second of each, the ratio, and whether the files are byte-identical (they must
# be). Runs alternate, REPEAT times each; the best of each is printed.
#   bench/run_analyze_mpi.sh [BUILD_DIR]   (default build; THREADS (total), NP, D, EXPANSION, K, ROWS, REPEAT)
set -euo pipefail
BUILD=${1:-build}
THREADS=${THREADS:-$(nproc)}
NP=${NP:-2}
D=${D:-512}
EXPANSION=${EXPANSION:-16}
K=${K:-32}
ROWS=${ROWS:-40000}
REPEAT=${REPEAT:-2}
export OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1} OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
musae=$(cd "$(dirname "$BUILD/musae")" && pwd)/musae
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
per=$(( THREADS / NP > 0 ? THREADS / NP : 1 ))

# wall seconds and CPU seconds (children, all ranks) of a command
measure() { python3 "$(dirname "$0")/measure.py" "$@"; } # prints: wall_s cpu_s peak_rss_mib

echo "== d $D, $((D * EXPANSION)) latents, k $K, $ROWS rows; 1 process x $THREADS threads vs mpirun -np $NP x $per threads ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
"$musae" synth_acts -o "$W/s.h5" --d "$D" --concepts 2048 --k-true 16 --rows "$ROWS" --clip-frames 250 2>/dev/null
OMP_NUM_THREADS=$THREADS "$musae" train --acts "$W/s.h5" --layer 0 --k "$K" --expansion "$EXPANSION" --tokens 4096 \
  --batch 4096 --warmup 1 --eval-tokens 4096 -o "$W/sae" >/dev/null 2>&1
best1w=1e9 best1c=1e9 bestpw=1e9 bestpc=1e9
for r in $(seq "$REPEAT"); do
  read -r w c _ < <(OMP_NUM_THREADS=$THREADS measure "$musae" analyze --sae "$W/sae" --acts "$W/s.h5" --split all -o "$W/one.h5")
  best1w=$(python3 -c "print(min($best1w, $w))"); best1c=$(python3 -c "print(min($best1c, $c))")
  read -r w c _ < <(OMP_NUM_THREADS=$per measure mpirun -np "$NP" --oversubscribe -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS \
                  -x OMP_WAIT_POLICY "$musae" analyze --sae "$W/sae" --acts "$W/s.h5" --split all -o "$W/np.h5")
  bestpw=$(python3 -c "print(min($bestpw, $w))"); bestpc=$(python3 -c "print(min($bestpc, $c))")
done
same=$(cmp -s "$W/one.h5" "$W/np.h5" && echo "byte-identical" || echo "DIFFERENT (a bug)")
python3 - "$ROWS" "$NP" "$best1w" "$best1c" "$bestpw" "$bestpc" "$same" <<'PY'
import sys
rows, np_, w1, c1, wp, cp, same = int(sys.argv[1]), sys.argv[2], *map(float, sys.argv[3:7]), sys.argv[7]
print(f"musae analyze, mpirun -np {np_}: {rows / wp:.0f} rows/s, {rows / cp:.0f} rows per CPU-s | "
      f"one process: {rows / w1:.0f} rows/s, {rows / c1:.0f} rows per CPU-s | "
      f"{w1 / wp:.2f}x wall, {c1 / cp:.2f}x CPU | files {same}")
PY
