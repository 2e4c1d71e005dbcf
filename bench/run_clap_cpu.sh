#!/usr/bin/env bash
# CPU benchmark and real-size check of CLAP (issue 18): musae clap against HF transformers' ClapModel on a
# random-weight model of laion/larger_clap_music's size (HTSAT-base 128/[2,2,12,2], RoBERTa-base, 512-d),
# the same clips, texts and threads, in one invocation. Prints both timings, the ratios, and how far musae's
# embeddings and logits are from HF's at this size.
#   bench/run_clap_cpu.sh [BUILD_DIR]     (needs BUILD_DIR/musae, torch + transformers + soundfile)
# MODEL (default /tmp/musae-bench/clap-large-random, ~800 MB, not committed) is made once by
# bench/clap_peer.py. CLIPS (default 4) 10 s clips at 48 kHz, TEXTS (default 16) texts, THREADS (default
# nproc) for OMP_NUM_THREADS and torch.set_num_threads alike.
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
MODEL=${MODEL:-/tmp/musae-bench/clap-large-random}
THREADS=${THREADS:-$(nproc)}
CLIPS=${CLIPS:-4}
TEXTS=${TEXTS:-16}
export OMP_NUM_THREADS=$THREADS
[ -f "$MODEL/model.safetensors" ] || python3 "$HERE/clap_peer.py" make "$MODEL"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
python3 - "$W" "$CLIPS" "$TEXTS" <<'PY'
import os, sys
import numpy as np, soundfile as sf
w, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{w}/clips")
rng = np.random.default_rng(0)
t = np.arange(480000) / 48000
for i in range(n):
    x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in rng.uniform(60, 8000, 4)) + 0.02 * rng.standard_normal(t.size)
    sf.write(f"{w}/clips/c{i:03d}.wav", x.astype(np.float32), 48000, subtype="FLOAT")
words = "calm piano melody upbeat electronic dance heavy bass rock guitar riff jazz saxophone ambient drone".split()
with open(f"{w}/texts.txt", "w") as f:
    for i in range(m):
        f.write(" ".join(rng.choice(words, 3 + i % 12)) + "\n")
PY
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
args=()
while IFS= read -r line; do args+=(--text "$line"); done < "$W/texts.txt"
MUSAE_LOG=info "$BUILD/musae" clap --model "$MODEL" --audio "$W/clips" "${args[@]}" -o "$W/musae.safetensors" \
  --device cpu 2> "$W/musae.log"
python3 "$HERE/clap_peer.py" run "$MODEL" "$W/clips" "$W/peer.safetensors" --threads "$THREADS" \
  --texts-file "$W/texts.txt" 2>/dev/null | tail -1 > "$W/peer.json"
echo "   (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$W" "$CLIPS" "$TEXTS" <<'PY'
import json, re, sys
from safetensors.numpy import load_file
w, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
log = open(f"{w}/musae.log").read()
ta = float(re.search(r"embedded \d+ clip\(s\) in ([0-9.]+) s", log).group(1))
tt = float(re.search(r"embedded \d+ text\(s\) in ([0-9.]+) s", log).group(1))
p = json.load(open(f"{w}/peer.json"))
mu, pe = load_file(f"{w}/musae.safetensors"), load_file(f"{w}/peer.safetensors")
print(f"musae   audio {n / ta:7.3f} clips/s   text {m / tt:8.2f} texts/s")
print(f"peer    audio {p['clips_per_s']:7.3f} clips/s   text {p['texts_per_s']:8.2f} texts/s   (transformers, {p['threads']} threads)")
print(f"ratio   audio {(n / ta) / p['clips_per_s']:.2f}x   text {(m / tt) / p['texts_per_s']:.2f}x")
for k in ("audio_embeds", "text_embeds", "logits_per_text"):
    print(f"max |musae - HF| {k}: {abs(mu[k] - pe[k]).max():.3g}")
PY
