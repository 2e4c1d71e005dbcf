#!/usr/bin/env bash
# One call on the lent GPU machine (bench/README.md, "A GPU session"): the phases named, in order, each
# inside its share of the 10-minute call limit, logs in $OUT (at most 8 files, 2 folders deep come back).
#   scripts/gpu_session.sh --devpack BUILD/devpack.tgz [--wheels BUILD/whl] [--budget S] [--lm-args "..."] PHASE...
# PHASE:
#   tests       every gpu-labelled ctest of the packed build (ctest -L gpu): the plain ones first (-j2), then
#               the compute-sanitizer variants (-j4) until the budget ends (ctest --stop-time; a test cut
#               there reads as failed/timeout in the log: see tests_summary.txt)
#               -> tests_gpu.log (ctest -V), tests_summary.txt
#   tests-fast  the plain gpu tests only
#   sae         the SAE training-step benchmark and sparsify (bench/run_sae_gpu.sh; needs --wheels) -> sae/
#   lm-small, lm-large, lm
#               the MusicGen benchmark (bench/run_lm_gpu.sh) for that size, or both -> lm/
# --budget S: seconds this call may use in all (default 560: the call limit is 600, the fetch needs a little).
# --lm-args: more options for bench/run_lm_gpu.sh, e.g. "--loops auto,host" or "--peer-steps 200".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DEVPACK="" WHEELS="" BUDGET=560 LM_ARGS="" PHASES=()
while [ $# -gt 0 ]; do
  case $1 in
    --devpack) DEVPACK=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --lm-args) LM_ARGS=$2; shift ;;
    tests|tests-fast|sae|lm|lm-small|lm-large) PHASES+=("$1") ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
  shift
done
[ -n "$DEVPACK" ] && [ ${#PHASES[@]} -gt 0 ] || { echo "usage: $0 --devpack FILE [--wheels DIR] [--budget S] PHASE..."; exit 2; }
LOG=${OUT:-/tmp/gpu-session}
mkdir -p "$LOG"
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
. bench/devpack_env.sh "$DEVPACK" || exit 1
echo "== $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1); commit $MUSAE_DP_COMMIT; phases ${PHASES[*]}"
status=0

run_tests() { # $1: 1 = sanitizer variants too
  local sum=$LOG/tests_summary.txt
  command -v ctest >/dev/null || { echo "no ctest on this machine" | tee "$sum"; status=1; return; }
  echo "== gpu tests (plain), $(left) s left"
  {
    echo "commit $MUSAE_DP_COMMIT"
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null
    compute-sanitizer --version 2>/dev/null | tail -1 || echo "compute-sanitizer: not on PATH"
  } > "$sum"
  # ctest reports the plain run then the sanitizer run; -V keeps every test's own table in the log
  ctest --test-dir "$MUSAE_DP_BUILD" -L gpu -E 'memcheck|racecheck' -j2 --timeout 300 \
    --stop-time "$(date -d "+$(( $(left) - 30 )) seconds" +%H:%M:%S)" -V > "$LOG/tests_gpu.log" 2>&1 || status=1
  if [ "$1" = 1 ]; then
    local stop=$(( $(left) - 20 ))
    if [ $stop -gt 60 ]; then
      echo "== gpu tests (compute-sanitizer), $stop s"
      { echo; echo "######## compute-sanitizer variants (stop after $stop s)"; } >> "$LOG/tests_gpu.log"
      ctest --test-dir "$MUSAE_DP_BUILD" -L gpu -R 'memcheck|racecheck' -j4 \
        --stop-time "$(date -d "+$stop seconds" +%H:%M:%S)" -V >> "$LOG/tests_gpu.log" 2>&1 || status=1
    else
      echo "sanitizer variants skipped: $(left) s left" | tee -a "$sum"
    fi
  fi
  grep -E '^ *[0-9]+/[0-9]+ Test +#|tests passed|tests failed|Total Test time|SKIPPED|\*\*\*' "$LOG/tests_gpu.log" \
    | sed 's/^[0-9]*: //' >> "$sum"
  # ctest counts a skip as a pass: on the GPU machine a skip means a test did not see the GPU (or a sanitizer)
  printf 'passed %d, failed %d, skipped %d (a skip here is a finding: read its SKIPPED line)\n' \
    "$(grep -cE 'Test +#.* Passed' "$sum")" "$(grep -cE 'Test +#.*(Failed|Timeout|Exception|Not Run)' "$sum")" \
    "$(grep -cE 'Test +#.*Skipped' "$sum")" | tee -a "$sum"
  cat "$sum"
}

for ph in "${PHASES[@]}"; do
  [ "$(left)" -gt 30 ] || { echo "== $ph skipped: the budget is spent"; status=1; continue; }
  case $ph in
    tests) run_tests 1 ;;
    tests-fast) run_tests 0 ;;
    sae)
      echo "== SAE benchmark, $(left) s left"
      mkdir -p "$LOG/sae"
      peer=(--no-peer)
      [ -n "$WHEELS" ] && peer=(--wheels "$WHEELS")
      # --build: the restored build and the libraries chosen above (its --devpack would put every packed
      # library ahead of the machine's own, python's too)
      OUT=$LOG/sae timeout "$(left)" bash bench/run_sae_gpu.sh --build "$MUSAE_DP_BUILD" "${peer[@]}" --steps 20 || status=1 ;;
    lm|lm-small|lm-large)
      sizes=small,large
      [ "$ph" = lm-small ] && sizes=small
      [ "$ph" = lm-large ] && sizes=large
      echo "== LM benchmark ($sizes), $(left) s left"
      mkdir -p "$LOG/lm"
      # shellcheck disable=SC2086
      OUT=$LOG/lm bash bench/run_lm_gpu.sh --devpack "$DEVPACK" --sizes "$sizes" --budget "$(left)" $LM_ARGS || status=1 ;;
  esac
done
echo "== done in $(( $(date +%s) - T0 )) s, status $status"
exit $status
