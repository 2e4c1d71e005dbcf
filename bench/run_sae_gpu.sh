#!/usr/bin/env bash
# On a GPU machine: musae's full SAE training step (bench/sae_gpu_bench) and sparsify's
# (bench/peers/sparsify_step.py) on the same shapes, one after the other, then (--trainer) the real GPU trainer from
# in-memory batches and streamed from a store; the ratios in summary.txt. scripts/gpu_check.sh runs it as its sae
# phase; the GPU tests, the trainer tests and the compute-sanitizer runs are that script's other phases.
#   bench/run_sae_gpu.sh [--devpack FILE.tgz | --build DIR] [--wheels DIR] [--workload a|b|all] [--steps N] [--auxk]
#                        [--no-peer] [--trainer] [--budget S]
# --budget: seconds for the whole run (default 560): each program gets what is left less 10 s, so a slow one is cut
#           (and says so) rather than the summary. Order: the step, its peer (together they give the ratio), the
#           trainer.
# --devpack: binaries + libraries made by bench/pack_device.sh (else --build DIR, default build-cusae).
# --wheels: the peer's wheels (pack_device.sh), installed to /tmp/site; else sparsify must be importable already.
# Logs and summary.txt go to $OUT (the device tool's folder) or /tmp/sae-gpu; every program's output also goes to
# stdout. Exit status: non-zero if a program failed or was cut (a missed target is a finding, not a failure).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DEVPACK="" BUILD=build-cusae WHEELS="" WL=all STEPS=10 AUXK="" PEER=1 TRAINER=0 BUDGET=560
while [ $# -gt 0 ]; do
  case $1 in
    --devpack) DEVPACK=$2; shift ;;
    --build) BUILD=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    --trainer) TRAINER=1 ;;
    --workload) WL=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --auxk) AUXK=--auxk ;;
    --no-peer) PEER=0 ;;
    --budget) BUDGET=$2; shift ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
  shift
done
LOG=${OUT:-/tmp/sae-gpu}
mkdir -p "$LOG"
if [ -n "$DEVPACK" ]; then
  . bench/devpack_env.sh "$DEVPACK" || exit 1
  BUILD=$MUSAE_DP_BUILD
fi
BIN=$BUILD/bench/sae_gpu_bench
if [ -n "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv,noheader || true
status=0
t_start=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - t_start) - 10 )); }
# run NAME LOGFILE CMD...: CMD inside what is left of the budget, its output to LOGFILE and stdout
run() {
  local name=$1 log=$2 rc
  shift 2
  if [ "$(left)" -lt 10 ]; then
    echo "$name: skipped, the budget is spent" | tee "$log"; status=1; return
  fi
  echo "== $name ($(( $(date +%s) - t_start )) s in, $(left) s left)"
  timeout -k 5 "$(left)" "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  case $rc in
    0) ;;
    124|137) echo "$name: cut at the budget" | tee -a "$log"; status=1 ;;
    *) echo "$name failed (exit $rc)" | tee -a "$log"; status=1 ;;
  esac
}
run "musae (CUDA) step" "$LOG/bench_musae.log" "$BIN" --workload "$WL" --steps "$STEPS" $AUXK
[ $PEER = 1 ] && run "sparsify step" "$LOG/bench_sparsify.log" \
  python3 bench/peers/sparsify_step.py --workload "$WL" --steps "$STEPS" $AUXK
[ $TRAINER = 1 ] && run "musae trainer: in memory vs streamed from a store" "$LOG/bench_trainer.log" \
  "$BIN" --trainer --workload "$WL" --steps "$STEPS"
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
