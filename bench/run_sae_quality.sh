#!/usr/bin/env bash
# SAE quality against a plain PyTorch top-k SAE (tools/reference/sae_plain.py) on the same planted store, split and
# run length: held-out FVU and the share of planted directions recovered, for each and as ratios (musae / peer).
#   bench/run_sae_quality.sh [BUILD_DIR]        (default build; needs torch and h5py)
# The store (STORE_FLAGS) defaults to the one of tests/test_sae_defaults.c: correlated pairs, log-normal
# coefficients, anisotropic noise and a mean offset. MUSAE_FLAGS (default: none, the default recipe) and PEER_FLAGS
# (default: none: raw inputs, b_dec = mean, no warmup, sparsify's lr 2e-4/sqrt(M/16384), batch 4096) are added
# to each trainer's line; SAE sets the shape both get (default "--k 8 --expansion 8"). Example, musae's old recipe
# at the peer's settings (M 512: lr 1.131e-3), the comparison of issue 14:
#   MUSAE_FLAGS="--warmup 0 --benc-lr-mult 1 --lr 1.131e-3" bench/run_sae_quality.sh build/cpu
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
THREADS=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$THREADS
STORE_FLAGS=${STORE_FLAGS:---d 64 --concepts 256 --k-true 4 --rows 300000 --pair-prob 0.5 --lognormal 0.5 --noise 0.1 --noise-aniso 1 --mean-offset 4 --seed 1}
SAE=${SAE:---k 8 --expansion 8}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

"$BUILD/musae" synth_acts -o "$W/p.h5" $STORE_FLAGS 2>/dev/null
t0=$(date +%s.%N)
"$BUILD/musae" train --acts "$W/p.h5" --layer 0 $SAE ${MUSAE_FLAGS:-} -o "$W/sae" 2>"$W/train.log"
t1=$(date +%s.%N)
m=$("$BUILD/musae" evaluate --sae "$W/sae" --acts "$W/p.h5" --layer 0 2>/dev/null)
steps=$(python3 -c "import json; print(json.load(open('$W/sae/musae.json'))['steps'])")
p=$(python3 "$HERE/../tools/reference/sae_plain.py" --acts "$W/p.h5" --layer 0 $SAE --threads "$THREADS" ${PEER_FLAGS:-})
echo "store: $STORE_FLAGS"
echo "musae ($SAE ${MUSAE_FLAGS:-}): $m"
echo "peer  ($SAE ${PEER_FLAGS:-}): $p"
python3 - "$m" "$p" "$steps" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, sys
m, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
steps, secs = int(sys.argv[3]), float(sys.argv[4])
assert steps == p["steps"], f"musae ran {steps} steps, the peer {p['steps']}"
ratio = lambda a, b: f"{a / b:.3f}" if b > 0 else "n/a (the peer's is 0)"
print(f"{steps} steps | musae: recovered {100 * m['recovered']:.1f}%, held-out FVU {m['fvu']:.4f} ({secs:.1f} s) | "
      f"peer: recovered {100 * p['recovered']:.1f}%, held-out FVU {p['fvu']:.4f} ({p['seconds']:.1f} s) | "
      f"ratio musae/peer: recovered {ratio(m['recovered'], p['recovered'])}, FVU {ratio(m['fvu'], p['fvu'])} (< 1 is better)")
PY
