#!/usr/bin/env bash
# On a GPU machine: the GPU SAE op tests (optionally under compute-sanitizer), then musae's full training step
# and sparsify's on the same shapes, one after the other, and their ratio.
#   bench/run_sae_gpu.sh [--devpack FILE.tgz | --build DIR] [--wheels DIR] [--tests] [--train-tests] [--sanitize]
#                        [--workload a|b|all] [--steps N] [--auxk] [--no-peer] [--trainer] [--no-step]
# --train-tests: tests/test_sae_gpu_train (the GPU trainer against the CPU trainer, planted concepts, the feed).
# --trainer: the real trainer from in-memory batches and streamed from an HDF5 store (sae_gpu_bench --trainer);
# --no-step: skip the op-level step benchmark (and its peer).
# --devpack: binaries + libraries made by bench/pack_device.sh (default: binaries from --build, default build-cusae).
# Logs and a summary go to $OUT (the device tool's folder) or /tmp/sae-gpu. Exit status: non-zero if a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVPACK="" BUILD=build-cusae WHEELS="" TESTS=0 TTESTS=0 SAN=0 WL=all STEPS=10 AUXK="" PEER=1 TRAINER=0 STEP=1
while [ $# -gt 0 ]; do
  case $1 in
    --devpack) DEVPACK=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    --tests) TESTS=1 ;;
    --train-tests) TTESTS=1 ;;
    --trainer) TRAINER=1 ;;
    --no-step) STEP=0; PEER=0 ;;
    --sanitize) SAN=1 ;;
    --workload) WL=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --auxk) AUXK=--auxk ;;
    --no-peer) PEER=0 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
  shift
done
LOG=${OUT:-/tmp/sae-gpu}
mkdir -p "$LOG"
if [ -n "$DEVPACK" ]; then
  mkdir -p /tmp/musae-dp && tar xzf "$DEVPACK" -C /tmp/musae-dp
  BIN_TEST=/tmp/musae-dp/devpack/bin/test_sae_gpu BIN_BENCH=/tmp/musae-dp/devpack/bin/sae_gpu_bench
  BIN_TTEST=/tmp/musae-dp/devpack/bin/test_sae_gpu_train
  export MUSAE_BIN=/tmp/musae-dp/devpack/bin/musae MUSAE_TEST_TMP=/tmp
  LIBS=/tmp/musae-dp/devpack/lib
else
  BIN_TEST=$BUILD/tests/test_sae_gpu BIN_BENCH=$BUILD/bench/sae_gpu_bench LIBS=""
  BIN_TTEST=$BUILD/tests/test_sae_gpu_train
fi
# CUDA 13's cuBLAS/cudart: the toolkit's, else the nvidia-* wheels PyTorch brought
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c 'import nvidia, os; [print(os.path.join(p, s, "lib")) for p in nvidia.__path__ for s in os.listdir(p)]' 2>/dev/null); do
  [ -e "$d/libcublas.so.13" ] && LIBS=$LIBS:$d
done
export LD_LIBRARY_PATH=${LIBS#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if [ -n "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader || true
status=0
if [ $TESTS = 1 ]; then
  echo "== op tests"
  "$BIN_TEST" 2>&1 | tee "$LOG/test_sae_gpu.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || [ "$rc" = 77 ] || status=1
fi
if [ $TTESTS = 1 ]; then
  echo "== trainer tests"
  "$BIN_TTEST" 2>&1 | tee "$LOG/test_sae_gpu_train.log"
  rc=${PIPESTATUS[0]}
  [ "$rc" = 0 ] || [ "$rc" = 77 ] || status=1
fi
if [ $SAN = 1 ]; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool (--small)"
    sh tests/run_sanitizer.sh $tool "$BIN_TEST" --small >"$LOG/sanitizer_$tool.log" 2>&1
    rc=$?
    tail -5 "$LOG/sanitizer_$tool.log"
    [ $rc = 0 ] || [ $rc = 77 ] || { echo "$tool: exit $rc"; status=1; }
  done
fi
if [ $STEP = 1 ]; then
  echo "== musae (CUDA) step"
  "$BIN_BENCH" --workload "$WL" --steps "$STEPS" $AUXK 2>&1 | tee "$LOG/bench_musae.log"
fi
if [ $TRAINER = 1 ]; then
  echo "== musae trainer: in memory vs streamed from a store"
  "$BIN_BENCH" --trainer --workload "$WL" --steps "$STEPS" 2>&1 | tee "$LOG/bench_trainer.log"
fi
if [ $PEER = 1 ]; then
  echo "== sparsify step"
  python3 bench/peers/sparsify_step.py --workload "$WL" --steps "$STEPS" $AUXK 2>&1 | tee "$LOG/bench_sparsify.log"
fi
python3 - "$LOG/bench_musae.log" "$LOG/bench_sparsify.log" "$LOG/bench_trainer.log" <<'PY' | tee "$LOG/summary.txt"
import json, os, sys
def lines(p):
    if not os.path.exists(p): return {}
    out = {}
    for l in open(p):
        if l.startswith("{"):
            j = json.loads(l); out[j["workload"]] = j
    return out
m, s, t = lines(sys.argv[1]), lines(sys.argv[2]), lines(sys.argv[3])
print(f"{'workload':8} {'musae tok/s':>13} {'sparsify tok/s':>15} {'ratio':>7} {'musae B/latent':>15} {'sparsify B/latent':>18}")
for w in sorted(m):
    a, b = m[w], s.get(w)
    print(f"{w:8} {a['tokens_per_s']:13.0f} " + (f"{b['tokens_per_s']:15.0f} {a['tokens_per_s'] / b['tokens_per_s']:7.2f} "
          if b else f"{'-':>15} {'-':>7} ") + f"{a['bytes_per_latent']:15.0f} " + (f"{b['bytes_per_latent']:18.0f}" if b else ""))
for w in sorted(t):
    a = t[w]
    print(f"trainer {w}: in memory {a['mem_tokens_per_s']:.0f} tok/s, streamed {a['stream_tokens_per_s']:.0f} tok/s "
          f"({100 * a['stream_ratio']:.1f}%, target >= 80%), compute stream waited {a['gpu_wait_s']:.3f} s for data")
PY
exit $status
