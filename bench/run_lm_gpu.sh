#!/usr/bin/env bash
# On a GPU machine: the MusicGen decoder benchmark of issue cuda-lm, musae (bench/lm_gpu_bench) and HF
# transformers (bench/peers/hf_musicgen_gpu.py, fp16, sdpa) one after the other on the same GPU and shapes,
# for random-weight musicgen-small and -large checkpoints made there (bench/make_gpu_configs.py, not
# committed), then the ratio tables against the targets in $OUT/lm_gpu_results.md (bench/lm_gpu_summary.py).
#   bench/run_lm_gpu.sh [--devpack FILE.tgz | --build DIR] [--sizes small,large] [--steps 503]
#                       [--peer-steps N] [--batch 1,16] [--loops auto] [--reps 3] [--peer-reps N] [--sample] [--no-peer]
#                       [--no-musae] [--models ROOT] [--budget S] [--reserve S]
# --loops: musae's generation loops to time (lm_gpu_bench --loops; e.g. auto,host shows what the graph buys)
# --devpack: binaries + libraries made by bench/pack_device.sh (else --build DIR, default build-cusae, holds
#            bench/lm_gpu_bench). --peer-steps: fewer steps for HF when the 10-minute call limit demands it
#            (its ms/step then covers a shorter sequence, which flatters it slightly: the table says so).
# --budget: seconds for the whole run (default 560): each program gets what is left less --reserve (default 30 s),
#           so a slow one is cut (and says so) rather than the summary. --peer-reps defaults to 2 (HF's runs are
#           the long ones).
# Logs go to $OUT (the device tool's folder) or /tmp/lm-gpu: lm_<size>_{musae,hf}.log, make_configs.log,
# lm_gpu_results.md. The models stay in --models (default /tmp/musae-gpu-models) while the machine lives.
# Exit status: non-zero if a program failed (a missed target is a finding, not a failure).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DEVPACK="" BUILD=build-cusae SIZES=small,large STEPS=503 PEER_STEPS="" BATCH=1,16 REPS=3 PEER_REPS=2 SAMPLE=""
PEER=1 MUSAE=1 MODELS=/tmp/musae-gpu-models LOOPS=auto BUDGET=560 RESERVE=30
while [ $# -gt 0 ]; do
  case $1 in
    --devpack) DEVPACK=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --peer-steps) PEER_STEPS=$2; shift ;;
    --batch) BATCH=$2; shift ;;
    --loops) LOOPS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --peer-reps) PEER_REPS=$2; shift ;;
    --sample) SAMPLE=--sample ;;
    --no-peer) PEER=0 ;;
    --no-musae) MUSAE=0 ;;
    --models) MODELS=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --reserve) RESERVE=$2; shift ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
  shift
done
LOG=${OUT:-/tmp/lm-gpu}
mkdir -p "$LOG"
# a tree restored by bench/devpack_env.sh has no .git: the pack's commit
COMMIT=${MUSAE_DP_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
if [ -n "$DEVPACK" ]; then
  . bench/devpack_env.sh "$DEVPACK" || exit 1
  BIN=$MUSAE_DP_BUILD/bench/lm_gpu_bench COMMIT=$MUSAE_DP_COMMIT
else
  BIN=$BUILD/bench/lm_gpu_bench
fi
export PYTHONUNBUFFERED=1
GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null | head -1)
echo "== $GPU; commit $COMMIT"
status=0
t_start=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - t_start) - RESERVE )); }

echo "== random-weight checkpoints ($SIZES) in $MODELS"
timeout "$(left)" python3 bench/make_gpu_configs.py "$MODELS" --sizes "$SIZES" 2>&1 | grep -v -i 'warn\|token_id must be' | tee "$LOG/make_configs.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] && { echo "making the checkpoints: cut at the budget"; exit 1; }
[ "$rc" = 0 ] || { echo "making the checkpoints failed (exit $rc)"; exit 1; }

notes=()
for size in ${SIZES//,/ }; do
  dir=$MODELS/musicgen-$size-random
  if [ $MUSAE = 1 ] && [ "$(left)" -lt 20 ]; then
    echo "lm_gpu_bench on $size: skipped, the budget is spent" | tee "$LOG/lm_${size}_musae.log"; status=1
  elif [ $MUSAE = 1 ]; then
    echo "== musae $size ($(( $(date +%s) - t_start )) s in)"
    timeout "$(left)" "$BIN" --model "$dir" --label "$size" --steps "$STEPS" --batch "$BATCH" --loops "$LOOPS" --reps "$REPS" \
      $SAMPLE 2>&1 | tee "$LOG/lm_${size}_musae.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && echo "lm_gpu_bench on $size: cut at the budget" | tee -a "$LOG/lm_${size}_musae.log"
    [ "$rc" = 0 ] || { echo "lm_gpu_bench failed on $size (exit $rc)"; status=1; }
  fi
  if [ $PEER = 1 ] && [ "$(left)" -lt 20 ]; then
    echo "the HF peer on $size: skipped, the budget is spent" | tee "$LOG/lm_${size}_hf.log"; status=1
  elif [ $PEER = 1 ]; then
    echo "== HF transformers $size ($(( $(date +%s) - t_start )) s in)"
    timeout "$(left)" python3 bench/peers/hf_musicgen_gpu.py --model "$dir" --label "$size" --steps "${PEER_STEPS:-$STEPS}" \
      --batch "$BATCH" --reps "${PEER_REPS:-$REPS}" $SAMPLE 2>&1 | grep -v 'Loading weights' | tee "$LOG/lm_${size}_hf.log"
    rc=${PIPESTATUS[0]}
    [ "$rc" = 124 ] && echo "the HF peer on $size: cut at the budget" | tee -a "$LOG/lm_${size}_hf.log"
    [ "$rc" = 0 ] || { echo "the HF peer failed on $size (exit $rc)"; status=1; }
  fi
done
[ $PEER = 1 ] && [ -n "$PEER_STEPS" ] && [ "$PEER_STEPS" != "$STEPS" ] && \
  notes+=(--note "HF decoded $PEER_STEPS steps per run instead of $STEPS (the call's time limit); its ms/step covers a shorter K/V cache")
# the logs of earlier calls on this machine (another size, while the machine stayed warm) join the summary
mkdir -p /tmp/musae-lm-logs && cp "$LOG"/lm_*_*.log /tmp/musae-lm-logs/ 2>/dev/null
echo "== summary of $(ls /tmp/musae-lm-logs | tr '\n' ' ')($(( $(date +%s) - t_start )) s in)"
python3 bench/lm_gpu_summary.py /tmp/musae-lm-logs/lm_*.log --gpu "$GPU" --commit "$COMMIT" "${notes[@]}" \
  > "$LOG/lm_gpu_results.md"
sed -n '/^## Decode/,/^## Raw/p' "$LOG/lm_gpu_results.md" | grep -v '^## Raw'
exit $status
