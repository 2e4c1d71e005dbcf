#!/usr/bin/env bash
# Capture throughput with one process and with `mpirun -np 2` (issue 21) on the same audio and model: frames/s
# of the whole command (wall clock, the join included) and its CPU seconds (user + sys of the process tree, the
# steadier figure when others share the machine). One JSON line per run, then the ratio.
#   bench/run_capture_dist.sh [BUILD_DIR]
# MODEL (default: the tiny test model; capture_bench's /tmp/musae_capture_bench/musicgen-small-random for real
# sizes), FILES (8) WAVs of DURATION (30) s, CLIP (10) s clips, LAYERS (0,1), REPEAT (2), RANKS (2).
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=${MODEL:-$HERE/../tests/fixtures/tiny-musicgen}
FILES=${FILES:-8} DURATION=${DURATION:-30} CLIP=${CLIP:-10} LAYERS=${LAYERS:-0,1} REPEAT=${REPEAT:-2} RANKS=${RANKS:-2}
MPIRUN=${MPIRUN:-mpirun}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
W=$(mktemp -d /tmp/musae_capture_dist.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/aud"
python3 - "$W/aud" "$FILES" "$DURATION" <<'PY'
import array, math, random, sys, wave
out, files, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for i in range(files):
    random.seed(i)
    n = int(32000 * seconds)
    a = array.array("h", (int(8000 * math.sin(2 * math.pi * 110 * (i + 1) * k / 32000)) + random.randint(-2000, 2000)
                          for k in range(n)))
    with wave.open(f"{out}/f{i}.wav", "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(32000), w.writeframes(a.tobytes())
PY
echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $FILES x $DURATION s, $CLIP s clips, layers $LAYERS, $MODEL"
run() { # ranks omp label -> JSON line
  local ranks=$1 omp=$2 out="$W/s$1_$2.h5" t
  rm -rf "$out" "$out.shards"
  local cmd=("$BUILD/musae" capture --model "$MODEL" --audio "$W/aud" --layers "$LAYERS" --clip-seconds "$CLIP" -o "$out")
  if [ "$ranks" -gt 1 ]; then cmd=("$MPIRUN" -np "$ranks" --oversubscribe -x OMP_NUM_THREADS="$omp" "${cmd[@]}"); fi
  t=$( { OMP_NUM_THREADS=$omp /usr/bin/time -f "%e %U %S" "${cmd[@]}" >/dev/null 2>"$W/log"; } 2>&1; tail -1 "$W/log")
  local rows; rows=$("$BUILD/musae" info "$out" | awk '$1 == "rows" {print $2}')
  python3 -c "import json,sys; e,u,s=map(float,sys.argv[4].split()); r=int(sys.argv[3]); print(json.dumps({'ranks':int(sys.argv[1]),'omp_threads':int(sys.argv[2]),'frames':r,'wall_s':e,'cpu_s':round(u+s,2),'frames_per_s':round(r/e,1),'frames_per_cpu_s':round(r/(u+s),1)}))" "$ranks" "$omp" "$rows" "$t"
}
for rep in $(seq "$REPEAT"); do
  run 1 "$(nproc)"
  run "$RANKS" 1
done
