#!/usr/bin/env bash
# On a GPU machine: the GPU SAE op tests (optionally under compute-sanitizer), then musae's full training step
# and sparsify's on the same shapes, one after the other, and their ratio.
#   bench/run_sae_gpu.sh [--devpack FILE.tgz | --build DIR] [--wheels DIR] [--tests] [--sanitize]
#                        [--workload a|b|all] [--steps N] [--auxk] [--no-peer]
# --devpack: binaries + libraries made by bench/pack_device.sh (default: binaries from --build, default build-cusae).
# Logs and a summary go to $OUT (the device tool's folder) or /tmp/sae-gpu. Exit status: non-zero if a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVPACK="" BUILD=build-cusae WHEELS="" TESTS=0 SAN=0 WL=all STEPS=10 AUXK="" PEER=1
while [ $# -gt 0 ]; do
  case $1 in
    --devpack) DEVPACK=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    --tests) TESTS=1 ;;
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
  LIBS=/tmp/musae-dp/devpack/lib
else
  BIN_TEST=$BUILD/tests/test_sae_gpu BIN_BENCH=$BUILD/bench/sae_gpu_bench LIBS=""
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
if [ $SAN = 1 ]; then
  for tool in memcheck racecheck; do
    echo "== compute-sanitizer $tool (--small)"
    sh tests/run_sanitizer.sh $tool "$BIN_TEST" --small >"$LOG/sanitizer_$tool.log" 2>&1
    rc=$?
    tail -5 "$LOG/sanitizer_$tool.log"
    [ $rc = 0 ] || [ $rc = 77 ] || { echo "$tool: exit $rc"; status=1; }
  done
fi
echo "== musae (CUDA) step"
"$BIN_BENCH" --workload "$WL" --steps "$STEPS" $AUXK 2>&1 | tee "$LOG/bench_musae.log"
if [ $PEER = 1 ]; then
  echo "== sparsify step"
  python3 bench/peers/sparsify_step.py --workload "$WL" --steps "$STEPS" $AUXK 2>&1 | tee "$LOG/bench_sparsify.log"
fi
python3 - "$LOG/bench_musae.log" "$LOG/bench_sparsify.log" <<'PY' | tee "$LOG/summary.txt"
import json, os, sys
def lines(p):
    if not os.path.exists(p): return {}
    out = {}
    for l in open(p):
        if l.startswith("{"):
            j = json.loads(l); out[j["workload"]] = j
    return out
m, s = lines(sys.argv[1]), lines(sys.argv[2])
print(f"{'workload':8} {'musae tok/s':>13} {'sparsify tok/s':>15} {'ratio':>7} {'musae B/latent':>15} {'sparsify B/latent':>18}")
for w in sorted(m):
    a, b = m[w], s.get(w)
    print(f"{w:8} {a['tokens_per_s']:13.0f} " + (f"{b['tokens_per_s']:15.0f} {a['tokens_per_s'] / b['tokens_per_s']:7.2f} "
          if b else f"{'-':>15} {'-':>7} ") + f"{a['bytes_per_latent']:15.0f} " + (f"{b['bytes_per_latent']:18.0f}" if b else ""))
PY
exit $status
