#!/usr/bin/env bash
# The one GPU check (bench/README.md, "A GPU session"): every GPU test, compute-sanitizer on reduced shapes, the
# trainer tests and both benchmarks with their peers, in ONE call of the device tool, each phase inside its share:
#   scripts/gpu_check.sh --devpack BUILD/devpack.tgz [--wheels BUILD/whl] [--budget 480] [--phases a,b,...]
#                        [--share PHASE=S]...
# Phases, in order of value, with their shares at --budget 480 (scaled with --budget; --share sets one outright):
#   setup     20 s  unpack the devpack (bench/devpack_env.sh), install the peer's wheels, env.txt
#   tests     45 s  the plain gpu-labelled ctests, -j4: test_ops_gpu, test_step_gpu, test_sae_gpu, test_philox_gpu,
#                   test_nccl, test_nccl_mpi2, test_model_gpu (any new gpu test joins here)
#   sanitize  75 s  compute-sanitizer (tests/run_sanitizer.sh), reduced shapes, all at once: memcheck on
#                   test_ops_gpu --quick, test_step_gpu --quick --only ops, test_sae_gpu --small; racecheck on the
#                   kernels that use shared memory: test_ops_gpu --quick -o attention|layernorm|rmsnorm|
#                   add_layernorm, test_step_gpu --quick --only ops (step attention, sampler), test_sae_gpu --small
#   train     90 s  the trainer tests, -j2: test_sae_gpu_train, test_sae_train_device_gpu
#   lm       170 s  bench/run_lm_gpu.sh: random-weight musicgen-small and -large (bench/make_gpu_configs.py, started
#                   in the background at the end of setup), batch 1, CFG 3, 256 steps; musae, then HF transformers
#                   fp16/sdpa on the same GPU
#   sae       70 s  bench/run_sae_gpu.sh: workload (b) (d 2048, M 65536, k 100, batch 16384) step against sparsify,
#                   then the trainer in memory vs streamed
#   report    10 s  kept for the last report
# A phase's deadline is the sum of the shares up to it: what a phase leaves goes to the next, and a slow phase is
# cut at its deadline and says so, so the later ones keep their shares; a phase with under 15 s left is skipped and
# says so. Without a visible GPU the tests run and skip (each with its reason) and the benchmarks are skipped.
# $OUT (the device tool brings back at most 8 files; this writes 7), each written as it happens:
#   check.log      this console
#   env.txt        GPU, driver, CUDA, tools present (compute-sanitizer, mpirun), the peers' versions, commit
#   phases.tsv     one line per phase and per test/run: phase, item, status, seconds, note
#   tests.log      ctest -V of tests and train, every compute-sanitizer run
#   lm.log, sae.log  the benchmarks' whole output (their JSON lines feed the report)
#   DATE-GPU.md    what goes to bench/results/ (bench/gpu_check_report.py), rewritten after every phase
# The summary table (phases, test counts, targets) is printed last: the device tool returns the output's tail.
# Exit status: 0 when nothing failed or was cut (a missed speed target is a finding, not a failure).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
DEVPACK="" WHEELS="" BUDGET=480 PHASES=tests,sanitize,train,lm,sae
declare -A SHARE=([setup]=20 [tests]=45 [sanitize]=75 [train]=90 [lm]=170 [sae]=70 [report]=10) SET=()
ORDER=(setup tests sanitize train lm sae report)
while [ $# -gt 0 ]; do
  case $1 in
    --devpack) DEVPACK=$2; shift ;;
    --wheels) WHEELS=$2; shift ;;
    --budget) BUDGET=$2; shift ;;
    --phases) PHASES=$2; shift ;;
    --share)
      p=${2%%=*}
      [ -n "${SHARE[$p]+x}" ] && [[ ${2#*=} =~ ^[0-9]+$ ]] || { echo "--share takes PHASE=SECONDS, PHASE one of ${ORDER[*]}"; exit 2; }
      SHARE[$p]=${2#*=} SET[$p]=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1 (--help)"; exit 2 ;;
  esac
  shift
done
[ -n "$DEVPACK" ] || { echo "usage: $0 --devpack FILE [--wheels DIR] [--budget S] [--phases LIST] (--help)"; exit 2; }
for p in ${PHASES//,/ }; do
  [[ " tests sanitize train lm sae " == *" $p "* ]] || { echo "unknown phase '$p' (tests, sanitize, train, lm, sae)"; exit 2; }
done
[[ $BUDGET =~ ^[0-9]+$ ]] || { echo "--budget takes seconds"; exit 2; }
# shares not set outright scale with the budget; phases not asked for get none
for p in "${ORDER[@]}"; do
  [ -n "${SET[$p]+x}" ] || SHARE[$p]=$(( SHARE[$p] * BUDGET / 480 ))
  [[ $p == setup || $p == report || ",$PHASES," == *",$p,"* ]] || SHARE[$p]=0
done
LOG=${OUT:-/tmp/gpucheck-out}
mkdir -p "$LOG"
WORK=$(mktemp -d /tmp/gpucheck-work.XXXXXX)
T0=$(date +%s)
elapsed() { echo $(( $(date +%s) - T0 )); }
say() { printf '%s\n' "$*" | tee -a "$LOG/check.log"; }
row() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$LOG/phases.tsv"; }   # phase item status seconds note
: > "$LOG/check.log"; : > "$LOG/phases.tsv"; : > "$LOG/tests.log"
END=0    # the current phase's deadline, seconds after T0
# begin PHASE: sets END and ALLOWED (seconds this phase may run); non-zero when it is skipped
begin() {
  local p=$1 q
  END=0
  for q in "${ORDER[@]}"; do END=$(( END + SHARE[$q] )); [ "$q" = "$p" ] && break; done
  ALLOWED=$(( END - $(elapsed) ))
  PHASE_T0=$(date +%s)
  if [ "$p" != setup ] && [ "$ALLOWED" -lt 15 ]; then
    say "== $p: skipped, ${ALLOWED} s left of its share (the budget is spent)"
    row "$p" - skipped 0 "budget spent: ${ALLOWED} s left"
    return 1
  fi
  say "== $p: ${ALLOWED} s ($(elapsed) s in)"
}
# finish PHASE STATUS [NOTE]
finish() {
  local used=$(( $(date +%s) - PHASE_T0 ))
  row "$1" - "$2" "$used" "allowed ${ALLOWED} s${3:+; $3}"
  say "== $1: $2 in $used s of ${ALLOWED}${3:+ ($3)}"
}
report() {
  python3 bench/gpu_check_report.py "$LOG" --budget "$BUDGET" "$@" 2>>"$LOG/check.log"
}
status=0

# ---- setup ---------------------------------------------------------------------------------------------------
begin setup
. bench/devpack_env.sh "$DEVPACK" > "$WORK/setup.log" 2>&1
rc=$?
tee -a "$LOG/check.log" < "$WORK/setup.log"
[ $rc = 0 ] || { say "the devpack did not unpack: nothing can run"; row setup - failed "$(elapsed)" "devpack_env"; exit 1; }
export PYTHONUNBUFFERED=1 MUSAE_TEST_TMP=$WORK
if [ -n "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl >> "$LOG/check.log" 2>&1 && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} \
    || say "the wheels in $WHEELS did not install: the sparsify peer will fail"
fi
# ctest may come with the image's Python (the cmake wheel) rather than on PATH
if ! command -v ctest > /dev/null; then
  d=$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null)
  [ -x "$d/ctest" ] && export PATH=$d:$PATH
fi
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
{
  echo "commit: $MUSAE_DP_COMMIT"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "gpus: $GPUS"
  echo "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader 2>/dev/null | head -1)"
  echo "cuda driver: $(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)"
  echo "nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo absent)"
  echo "compute-sanitizer: $( (compute-sanitizer --version 2>/dev/null || /usr/local/cuda/bin/compute-sanitizer --version 2>/dev/null) | grep -io 'version [0-9.]*' | head -1 || true)"
  echo "mpirun: $(command -v mpirun || echo absent) $(mpirun --version 2>/dev/null | head -1)"
  echo "ctest: $(command -v ctest || echo absent) $(ctest --version 2>/dev/null | head -1)"
  echo "cpus: $(nproc); memory: $(free -g 2>/dev/null | awk '/^Mem:/ {print $2 " GiB"}'); /tmp free: $(df -h --output=avail /tmp 2>/dev/null | tail -1 | tr -d ' '); kernel: $(uname -r)"
  python3 - <<'PY'
from importlib.metadata import version
import sys
print(f"python: {sys.version.split()[0]}")
for p in ("torch", "transformers", "triton", "eai-sparsify", "safetensors", "numpy"):
    try:
        print(f"{p}: {version(p)}")
    except Exception:
        print(f"{p}: absent")
PY
} > "$LOG/env.txt" 2>&1
sed 's/^/  /' "$LOG/env.txt" | tee -a "$LOG/check.log"
[ "$GPUS" -gt 0 ] || say "no GPU visible (nvidia-smi): the tests skip with their reasons, the benchmarks are skipped"
B=$MUSAE_DP_BUILD
MODELS=/tmp/musae-gpu-models MAKE_PID=""
if [ "$GPUS" -gt 0 ] && [[ ",$PHASES," == *",lm,"* ]]; then
  # the lm phase's random-weight checkpoints are made while the tests run (an init on the GPU, then mostly writing
  # 8 GB): the phase only waits for what is left
  python3 bench/make_gpu_configs.py "$MODELS" --sizes small,large > "$WORK/make_configs.log" 2>&1 &
  MAKE_PID=$!
fi
finish setup "done"
report --quiet

# ---- ctest phases --------------------------------------------------------------------------------------------
# ctest_phase PHASE JOBS CTEST-SELECTION...: the tests ctest selects, cut at the phase's deadline
ctest_phase() {
  local p=$1 j=$2 rc
  shift 2
  if ! command -v ctest > /dev/null; then
    say "  no ctest on this machine (PATH, beside python3): the $p phase cannot run"
    finish "$p" failed "no ctest"; status=1; return
  fi
  { echo; echo "######## $p: ctest $* -j$j ($(date -u +%T), ${ALLOWED} s)"; } >> "$LOG/tests.log"
  ctest --test-dir "$B" -N "$@" 2>/dev/null | sed -n 's/^ *Test *#[0-9]*: *//p' > "$WORK/$p.list"
  if [ ! -s "$WORK/$p.list" ]; then
    say "  ctest lists no tests for $* in $B"
    finish "$p" failed "ctest lists no tests"; status=1; return
  fi
  timeout -k 5 "$(( ALLOWED + 10 ))" ctest --test-dir "$B" "$@" -j"$j" -V \
    --stop-time "$(date -d "+${ALLOWED} seconds" +%H:%M:%S)" >> "$LOG/tests.log" 2>&1
  rc=$?
  python3 bench/gpu_check_report.py "$LOG" --ctest "$p" "$WORK/$p.list" "$(( ALLOWED - ($(date +%s) - PHASE_T0) ))" \
    | tee -a "$LOG/check.log"
  grep -qP "^$p\t[^-].*\t(failed|cut)\t" "$LOG/phases.tsv" && status=1
  if [ "$rc" = 124 ] || [ "$rc" = 137 ] || grep -qP "^$p\t[^-].*\tcut\t" "$LOG/phases.tsv"; then
    finish "$p" cut "cut at its deadline"
  else
    finish "$p" "done"
  fi
}

if [[ ",$PHASES," == *",tests,"* ]] && begin tests; then
  ctest_phase tests 4 -L gpu -E 'memcheck|racecheck|_train'
  report --quiet
fi

# ---- compute-sanitizer ---------------------------------------------------------------------------------------
if [[ ",$PHASES," == *",sanitize,"* ]] && begin sanitize; then
  runs=("memcheck tests/test_ops_gpu --quick"
        "memcheck tests/test_step_gpu --quick --only ops"
        "memcheck tests/test_sae_gpu --small")
  for op in attention layernorm rmsnorm add_layernorm; do runs+=("racecheck tests/test_ops_gpu --quick -o $op"); done
  runs+=("racecheck tests/test_step_gpu --quick --only ops" "racecheck tests/test_sae_gpu --small")
  pids=()
  for i in "${!runs[@]}"; do
    (
      read -r tool exe args <<< "${runs[$i]}"
      t=$(date +%s)
      # shellcheck disable=SC2086
      timeout -k 5 "$ALLOWED" sh tests/run_sanitizer.sh "$tool" "$B/$exe" $args > "$WORK/san$i.log" 2>&1
      rc=$? dt=$(( $(date +%s) - t ))
      case $rc in
        0) st=passed note="" ;;
        77) st=skipped note=$(grep -m1 'SKIPPED' "$WORK/san$i.log") ;;
        124|137) st=cut note="cut at the phase's deadline" ;;
        86) st=failed note="compute-sanitizer found errors" ;;
        *) st=failed note="exit $rc" ;;
      esac
      # each report joins tests.log as its run ends (whole: under a lock where flock exists)
      { flock 9 2>/dev/null; echo; echo "######## sanitize: ${runs[$i]}: $st (exit $rc, $dt s)"
        cat "$WORK/san$i.log"; } 9>> "$LOG/tests.log" >&9
      row sanitize "$tool $(basename "$exe") $args" "$st" "$dt" "$note"
    ) &
    pids+=($!)
  done
  wait "${pids[@]}"   # these runs only: a bare wait would also reap the checkpoint maker, whose status lm needs
  awk -F'\t' '$1 == "sanitize" && $2 != "-" {printf "  %-8s %-48s %4s s  %s\n", $3, $2, $4, $5}' "$LOG/phases.tsv" \
    | tee -a "$LOG/check.log"
  grep -qP "^sanitize\t[^-].*\t(failed|cut)\t" "$LOG/phases.tsv" && status=1
  if grep -qP "^sanitize\t[^-].*\tcut\t" "$LOG/phases.tsv"; then finish sanitize cut "cut at its deadline"
  else finish sanitize "done"; fi
  report --quiet
fi

# ---- trainer tests -------------------------------------------------------------------------------------------
if [[ ",$PHASES," == *",train,"* ]] && begin train; then
  # both train on the CPU too (the reference runs): half the cores each
  export OMP_NUM_THREADS=$(( ($(nproc) + 1) / 2 ))
  ctest_phase train 2 -L gpu -R '_train' -E 'memcheck|racecheck'
  unset OMP_NUM_THREADS
  report --quiet
fi

# ---- benchmarks ----------------------------------------------------------------------------------------------
# bench_phase PHASE CMD...: a benchmark driver inside the phase's share, its output to $OUT/PHASE.log
bench_phase() {
  local p=$1 rc
  shift
  if [ "$GPUS" = 0 ]; then
    echo "$p: skipped, no GPU visible (nvidia-smi -L lists none)" >> "$LOG/$p.log"
    row "$p" - skipped 0 "no GPU visible"
    say "== $p: skipped, no GPU visible"
    return
  fi
  OUT=$WORK/$p timeout -k 5 "$ALLOWED" "$@" >> "$LOG/$p.log" 2>&1
  rc=$?
  grep -E '^==|cut at|skipped|failed|SKIPPED' "$LOG/$p.log" | sed 's/^/  /' | tee -a "$LOG/check.log"
  case $rc in
    0) finish "$p" "done" ;;
    124|137) finish "$p" cut "cut at its deadline"; status=1 ;;
    *) if grep -q 'cut at the budget\|budget is spent' "$LOG/$p.log"; then finish "$p" cut "a program was cut at the budget"
       else finish "$p" failed "exit $rc"; fi
       status=1 ;;
  esac
}
if [[ ",$PHASES," == *",lm,"* ]] && begin lm; then
  mkdir -p "$WORK/lm"
  if [ -n "$MAKE_PID" ]; then
    while kill -0 "$MAKE_PID" 2>/dev/null && [ "$(elapsed)" -lt $(( END - 60 )) ]; do sleep 1; done
    kill -0 "$MAKE_PID" 2>/dev/null && { kill "$MAKE_PID"; echo "making the checkpoints: cut at the budget"; } >> "$LOG/lm.log"
    wait "$MAKE_PID" || rm -rf "$MODELS"   # a checkpoint cut while being written must not be taken as made
    grep -v -i 'warn\|token_id must be' "$WORK/make_configs.log" >> "$LOG/lm.log"
    say "  checkpoints made in the background ($(elapsed) s in)"
    ALLOWED=$(( END - $(elapsed) ))
  fi
  bench_phase lm bash bench/run_lm_gpu.sh --build "$B" --sizes small,large --batch 1 --steps 256 --reps 3 \
    --peer-reps 2 --budget "$(( ALLOWED - 5 ))" --reserve 5
  report --quiet
fi
if [[ ",$PHASES," == *",sae,"* ]] && begin sae; then
  mkdir -p "$WORK/sae"
  bench_phase sae bash bench/run_sae_gpu.sh --build "$B" --workload b --steps 20 --trainer --budget "$(( ALLOWED - 5 ))"
  report --quiet
fi

# ---- the summary, last -----------------------------------------------------------------------------------------
say "== done in $(elapsed) s of $BUDGET, status $status"
report | tee -a "$LOG/check.log"
[ -n "$MAKE_PID" ] && kill "$MAKE_PID" 2>/dev/null   # still making checkpoints when the lm phase was skipped
rm -rf "$WORK"
exit $status
