#!/usr/bin/env bash
# CPU benchmark of `musae analyze` (issue 15), each figure beside its peer from the same run:
#   1. rows/s of musae analyze against the same statistics in PyTorch (bench/analyze_torch.py: encode, top-k,
#      per-clip reductions, top-N) on the same store, SAE and thread count;
#   2. peak RSS of musae analyze on a store and on one 8x larger;
#   3. four SAEs of one layer in one pass against one SAE (and against four separate runs).
# Section 1 runs every top-k encoder this CPU has, each against PyTorch from the same run (eval/analyze_encode.h):
# the default (AMX bf16 screen where the CPU has AMX, else int16), the int16 screen with AMX off
# (MUSAE_ANALYZE_SCREEN=int16: VNNI where the CPU has AVX-512 VNNI), the int16 screen as an AVX2-only CPU runs it
# (MUSAE_ISA=avx2 MUSAE_ANALYZE_SCREEN=int16-avx2 OPENBLAS_CORETYPE=Haswell; also against PyTorch held to AVX2,
# MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2, as PyTorch runs on such a CPU), as an AVX2 CPU with
# AVX-VNNI runs it (where this CPU has AVX-VNNI), and the f32 sgemm encoder (MUSAE_ANALYZE_SCREEN=off).
#   bench/run_analyze_cpu.sh [BUILD_DIR]    (default build; THREADS, D, EXPANSION, K, ROWS override the shapes;
#                                            SECTIONS=1 (or 2, 3, 13...) runs only those sections)
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
THREADS=${THREADS:-$(nproc)}
D=${D:-512}
EXPANSION=${EXPANSION:-16}
K=${K:-32}
ROWS=${ROWS:-20000}
SECTIONS=${SECTIONS:-123}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
musae="$BUILD/musae"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# wall seconds, CPU seconds and peak RSS (MiB) of a command (CPU seconds are steadier on a shared machine)
measure() { python3 "$HERE/measure.py" "$@"; } # prints: wall_s cpu_s peak_rss_mib

if [[ $SECTIONS == *[13]* ]]; then # the store of sections 1 and 3
  "$musae" synth_acts -o "$W/s.h5" --d "$D" --concepts 2048 --k-true 16 --rows "$ROWS" --clip-frames 250 2>/dev/null
fi

if [[ $SECTIONS == *1* ]]; then
echo "== 1. throughput: d $D, $((D * EXPANSION)) latents, k $K, $ROWS rows, $THREADS threads ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
"$musae" train --acts "$W/s.h5" --layer 0 --k "$K" --expansion "$EXPANSION" --tokens 4096 --batch 4096 --warmup 1 \
  --eval-tokens 4096 -o "$W/sae" >/dev/null 2>&1
# which screen a run used (the encoder logs it at debug level)
screen_of() { env "$@" MUSAE_LOG=debug "$musae" analyze --sae "$W/sae" --acts "$W/s.h5" --split all -o "$W/probe.h5" 2>&1 |
  sed -n 's/.*analyze: the \(.*\) screen and f32 rescore.*/\1 screen/p' | head -1 | grep . || echo "f32 sgemm"; }
t=$(python3 "$HERE/analyze_torch.py" --acts "$W/s.h5" --sae "$W/sae" --layer 0 --threads "$THREADS" | tail -1)
t2=$(MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
  python3 "$HERE/analyze_torch.py" --acts "$W/s.h5" --sae "$W/sae" --layer 0 --threads "$THREADS" | tail -1)
lines=()
cfgs=("default" "MUSAE_ANALYZE_SCREEN=int16" "MUSAE_ISA=avx2 MUSAE_ANALYZE_SCREEN=int16-avx2 OPENBLAS_CORETYPE=Haswell")
# AVX2 CPUs with AVX-VNNI (Alder Lake and later, Sierra Forest): the avx2 level's own choice
grep -qw avx_vnni /proc/cpuinfo && cfgs+=("MUSAE_ISA=avx2 OPENBLAS_CORETYPE=Haswell")
cfgs+=("MUSAE_ANALYZE_SCREEN=off")
for cfg in "${cfgs[@]}"; do
  envs=(); [ "$cfg" = default ] || read -r -a envs <<<"$cfg"
  read -r wall cpu rss < <(env "${envs[@]}" python3 "$HERE/measure.py" "$musae" analyze --sae "$W/sae" --acts "$W/s.h5" \
    --split all -o "$W/f.h5")
  lines+=("$cfg|$(screen_of "${envs[@]}")|$wall|$cpu|$rss")
done
python3 - "$ROWS" "$t" "$t2" "${lines[@]}" <<'PY'
import json, sys
rows, t, t2 = int(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])
print(f"PyTorch {t['rows_per_s']:.0f} rows/s, {t['rows_per_cpu_s']:.0f} per CPU-s (peak RSS {t['peak_rss_mib']:.0f} MiB); "
      f"held to AVX2: {t2['rows_per_s']:.0f} rows/s, {t2['rows_per_cpu_s']:.0f} per CPU-s")
for line in sys.argv[4:]:
    cfg, screen, wall, cpu, rss = line.split("|")
    m, mc = rows / float(wall), rows / float(cpu)
    print(f"musae analyze [{cfg}: {screen}] {m:.0f} rows/s, {mc:.0f} rows per CPU-s (whole command, file written; "
          f"peak RSS {float(rss):.0f} MiB) = {m / t['rows_per_s']:.2f}x wall, {mc / t['rows_per_cpu_s']:.2f}x CPU of PyTorch"
          + (f"; {mc / t2['rows_per_cpu_s']:.2f}x CPU of PyTorch held to AVX2" if "avx2" in cfg else ""))
PY
fi

if [[ $SECTIONS == *2* ]]; then
echo "== 2. peak RSS against store size (d 256, 2048 latents, k 16)"
for rows in 100000 800000; do
  "$musae" synth_acts -o "$W/r$rows.h5" --d 256 --concepts 1024 --k-true 8 --rows "$rows" --clip-frames 250 2>/dev/null
  [ -d "$W/small256" ] || "$musae" train --acts "$W/r$rows.h5" --layer 0 --k 16 --expansion 8 --tokens 4096 \
    --batch 4096 --warmup 1 --eval-tokens 4096 -o "$W/small256" >/dev/null 2>&1
  read -r wall cpu rss < <(measure "$musae" analyze --sae "$W/small256" --acts "$W/r$rows.h5" --split all -o "$W/r$rows.features.h5")
  read -r _ _ rss1 < <(measure "$musae" analyze --sae "$W/small256" --acts "$W/r$rows.h5" --split all --regroup 262144 \
                         -o "$W/r$rows.features1.h5")
  echo "store $rows rows ($(du -m "$W/r$rows.h5" | cut -f1) MiB): peak RSS $rss MiB ($rss1 MiB with --regroup 262144), $wall s, $cpu CPU-s"
done

fi

if [[ $SECTIONS == *3* ]]; then
echo "== 3. four SAEs of one layer in one pass (d $D, $((D * EXPANSION)) latents each)"
"$musae" train --acts "$W/s.h5" --layer 0 --k 8,16,24,32 --expansion "$EXPANSION" --tokens 4096 --batch 4096 \
  --warmup 1 --eval-tokens 4096 -o "$W/grid" >/dev/null 2>&1
dirs=$(ls -d "$W"/grid/layer0_k* | paste -sd,)
first=$(ls -d "$W"/grid/layer0_k* | head -1)
read -r one onec _ < <(measure "$musae" analyze --sae "$first" --acts "$W/s.h5" --split all -o "$W/one.h5")
read -r four fourc _ < <(measure "$musae" analyze --sae "$dirs" --acts "$W/s.h5" --split all -o "$W/four")
python3 -c "import sys; one, four, oc, fc = map(float, sys.argv[1:]); print(f'one SAE {one:.2f} s ({oc:.2f} CPU-s), four in one pass {four:.2f} s ({fc:.2f} CPU-s) = {four / one:.2f}x one wall, {fc / oc:.2f}x CPU')" "$one" "$four" "$onec" "$fourc"
fi
