#!/usr/bin/env bash
# Size and time of `musae dashboard` sites (issue 17):
#   1. the demo-like site (tests/dashboard/make_site.sh: the tiny model's capture -> train -> analyze, labels,
#      steering): a fresh site (every excerpt cut: OGG + trace + spectrogram PNG) and a rerun into it (every
#      excerpt reused);
#   2. a synthetic store with a 4096-latent SAE (synth_acts -> train -> analyze; its clips name no audio, so the
#      figure is the pages, index data and summary alone), with a LABELS.jsonl of two labelers.
#   bench/run_dashboard.sh [BUILD_DIR]    (default build; THREADS overrides the thread count)
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
THREADS=${THREADS:-$(nproc)}
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE
musae="$BUILD/musae"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# wall seconds and CPU seconds of a command (CPU seconds are steadier on a shared machine)
measure() { python3 "$HERE/measure.py" "$@"; } # prints: wall_s cpu_s peak_rss_mib
site_size() { printf '%s MiB in %s files' "$(du -sm "$1" | cut -f1)" "$(find "$1" -type f | wc -l)"; }

echo "== $THREADS threads, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1 /proc/loadavg)"
echo "== 1. demo-like site"
bash "$ROOT/tests/dashboard/make_site.sh" "$musae" "$ROOT" "$W/demo" >/dev/null
M=$(awk '$1 == "latents" { sub(",", "", $2); print $2; exit }' "$W/demo/features_info.txt")
cd "$W/demo"
read -r wall cpu _ < <(measure "$musae" dashboard --features features.h5 --labels LABELS.jsonl --steer steer -o fresh)
cut_n=$(find fresh/audio -name '*.ogg' | wc -l)
echo "   fresh: $M features, $cut_n excerpts cut: ${wall} s wall, ${cpu} s CPU; $(site_size fresh)"
read -r wall cpu _ < <(measure "$musae" dashboard --features features.h5 --labels LABELS.jsonl --steer steer -o fresh)
echo "   rerun (excerpts reused): ${wall} s wall, ${cpu} s CPU"
read -r wall cpu _ < <(measure "$musae" dashboard --features features.h5 --labels LABELS.jsonl --steer steer --no-audio -o noaudio)
echo "   --no-audio: ${wall} s wall, ${cpu} s CPU; $(site_size noaudio)"

echo "== 2. synthetic: 4096 latents"
cd "$W"
"$musae" synth_acts -o s.h5 --d 64 --concepts 2048 --k-true 8 --rows 25000 --clip-frames 250 2>/dev/null
"$musae" train --acts s.h5 --layer 0 --k 16 --expansion 64 --tokens 8192 --batch 4096 --warmup 1 --eval-tokens 4096 \
  -o sae >/dev/null 2>&1
"$musae" analyze --sae sae --acts s.h5 --split all -o f.h5 2>/dev/null
python3 - <<'PY'
import json
with open("L.jsonl", "w") as o:
    for lab in ("dsp", "llm"):
        for i in range(4096):
            o.write(json.dumps({"feature": i, "labeler": lab, "label": f"{lab} label {i} <b>", "score": (i % 97) / 97,
                                "status": "ok", "evidence": [{"descriptor": "tempo_bpm", "auroc": 0.7}]}) + "\n")
PY
read -r wall cpu _ < <(measure "$musae" dashboard --features f.h5 --labels L.jsonl -o site4096)
echo "   4096 features: ${wall} s wall, ${cpu} s CPU ($(python3 -c "print(f'{4096 / $wall:.0f}')") pages/s); $(site_size site4096); index data $(du -k site4096/data/index.js | cut -f1) KiB"
