#!/usr/bin/env bash
# The main job on the bundled tiny model (tests/fixtures/tiny-musicgen, random weights in the exact Hugging
# Face layout): installs, builds, then runs the whole loop into out/demo/:
#   synthesized audio (sox) -> musae capture (EnCodec -> teacher-forced LM -> activation store)
#   -> musae train (top-k SAE) -> musae evaluate (held-out FVU/L0, and spliced into the model: loss recovered)
#   and generation with generation-time capture.
# Point MODEL at a real checkpoint folder (e.g. facebook/musicgen-small as downloaded) and AUDIO at a folder of
# music to run it for real (then use LAYERS=2,6,12,18,22 CLIP_SECONDS=10 and many more tokens).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-tests/fixtures/tiny-musicgen}
OUT=${OUT:-out/demo}
LAYERS=${LAYERS:-0,1}
LAYER=${LAYER:-1}
CLIP_SECONDS=${CLIP_SECONDS:-1}
TOKENS=${TOKENS:-60000}
# The CUDA backend is built only where it can run: a CUDA toolkit AND a usable GPU driver (nvidia-smi lists a
# GPU). MUSAE_DEMO_CUDA=1 builds it anyway (e.g. to check the CUDA build), MUSAE_DEMO_CUDA=0 never.
t_total=$(date +%s)
want_cuda=${MUSAE_DEMO_CUDA:-auto}
case "$want_cuda" in auto|0|1) ;; *) echo "demo.sh: MUSAE_DEMO_CUDA must be 0, 1 or auto, got '$want_cuda'" >&2; exit 1 ;; esac
have_nvcc=0
{ command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; } && have_nvcc=1
if [ "$want_cuda" = auto ]; then
  if [ $have_nvcc = 1 ] && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    cuda=ON why="a CUDA toolkit and a GPU (nvidia-smi -L)"
  elif [ $have_nvcc = 1 ]; then
    cuda=OFF why="no usable GPU driver (nvidia-smi lists no GPU); MUSAE_DEMO_CUDA=1 builds it anyway"
  else
    cuda=OFF why="no CUDA toolkit (nvcc)"
  fi
elif [ "$want_cuda" = 1 ]; then cuda=ON why="MUSAE_DEMO_CUDA=1"
else cuda=OFF why="MUSAE_DEMO_CUDA=0"
fi
echo "== CUDA backend: $cuda ($why)"
bash scripts/install-deps.sh
t_build=$(date +%s)
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMUSAE_CUDA=$cuda >/dev/null
cmake --build build/release --target musae -j "$(nproc)"
build_s=$(( $(date +%s) - t_build ))
musae=build/release/musae
echo "== built $musae in $build_s s (cmake --install build/release --prefix ~/.local puts musae on PATH)"
export OMP_WAIT_POLICY=PASSIVE
t_start=$(date +%s)
mkdir -p "$OUT"
rm -rf "$OUT/acts.h5" "$OUT/sae" "$OUT/gen_acts.h5" "$OUT"/generated*.wav "$OUT/features.h5" "$OUT/excerpts" "$OUT/site"

echo "== musae info $MODEL"
"$musae" info "$MODEL" > "$OUT/info.txt"
head -n 6 "$OUT/info.txt"
echo "   ... (full listing in $OUT/info.txt)"

# ---- a small dataset: 8 synthesized pieces at various rates and channel counts, and one broken file --------
AUDIO=${AUDIO:-}
if [ -z "$AUDIO" ]; then
  AUDIO="$OUT/audio"
  echo "== synthesizing clips into $AUDIO (sox)"
  rm -rf "$AUDIO" && mkdir -p "$AUDIO/strings" "$AUDIO/drums"
  sox -n -r 44100 -c 2 "$AUDIO/pluck_a.wav"          synth 4 pluck A3 pluck C4 pluck E4 fade 0 4 0.5
  sox -n -r 32000 -c 1 "$AUDIO/pluck_d.flac"         synth 4 pluck D3 pluck F#3 pluck A3
  sox -n -r 48000 -c 2 "$AUDIO/strings/chord_c.wav"  synth 4 sawtooth C3 sawtooth E3 sawtooth G3 vol 0.3 lowpass 2000
  sox -n -r 22050 -c 1 "$AUDIO/strings/sweep.wav"    synth 4 sine 200-1600 vol 0.5
  sox -n -r 32000 -c 1 "$AUDIO/strings/tremolo.wav"  synth 3.5 triangle 330 tremolo 6 80 vol 0.5
  sox -n -r 44100 -c 1 "$AUDIO/drums/noise_hits.wav" synth 0.12 whitenoise fade 0 0.12 0.1 pad 0 0.38 repeat 7 vol 0.6
  sox -n -r 32000 -c 1 "$AUDIO/drums/kick.wav"       synth 0.25 sine 150-40 fade 0 0.25 0.2 pad 0 0.25 repeat 7
  sox -n -r 32000 -c 1 "$AUDIO/drums/blip.wav"       synth 0.4 square 880 vol 0.3     # too short for a clip
  echo "this is not audio" > "$AUDIO/drums/broken.wav"                                 # unreadable
fi

echo "== musae capture: $AUDIO -> $OUT/acts.h5 (layers $LAYERS, ${CLIP_SECONDS} s clips)"
"$musae" capture --model "$MODEL" --audio "$AUDIO" --layers "$LAYERS" --clip-seconds "$CLIP_SECONDS" -o "$OUT/acts.h5"
echo "== the same command again continues the store (everything is there already)"
"$musae" capture --model "$MODEL" --audio "$AUDIO" --layers "$LAYERS" --clip-seconds "$CLIP_SECONDS" -o "$OUT/acts.h5" 2>&1 \
  | grep -E "planned|now holds"
"$musae" info "$OUT/acts.h5" > "$OUT/acts_info.txt"
echo "== musae describe: tempo, loudness, key, chords, spectra of the store's clips (docs/DESCRIBE.md)"
"$musae" describe --acts "$OUT/acts.h5" -o "$OUT/descriptors.h5"

echo "== musae train: top-k SAE on layer $LAYER"
"$musae" train --acts "$OUT/acts.h5" --layer "$LAYER" --k 8 --expansion 4 --tokens "$TOKENS" --batch 256 \
  --warmup 20 --log-every 50 -o "$OUT/sae" 2>&1 | grep -vE "^musae: train [ 0-9]+%" || true

echo "== musae evaluate on the store's held-out clips"
"$musae" evaluate --sae "$OUT/sae" --acts "$OUT/acts.h5" --layer "$LAYER" | tee "$OUT/eval_store.json"

echo "== musae analyze: every feature's statistics over all clips (the demo store is too small for a held-out split)"
"$musae" analyze --sae "$OUT/sae" --acts "$OUT/acts.h5" --split all -o "$OUT/features.h5"
"$musae" info "$OUT/features.h5" > "$OUT/features_info.txt"
head -n 12 "$OUT/features_info.txt"
F=$(awk '/top kept features/ { t = 1; next } t && $1 ~ /^[0-9]+$/ { print $1; exit }' "$OUT/features_info.txt")
echo "== musae label --labeler dsp: each kept feature's descriptors against its random non-firing clips"
"$musae" label --labeler dsp --features "$OUT/features.h5" --descriptors "$OUT/descriptors.h5" -o "$OUT/labels.jsonl"
head -n 3 "$OUT/labels.jsonl" | cut -c 1-200
echo "== musae excerpt: feature ${F:-0}'s top clips as OGG with activation traces"
"$musae" excerpt --features "$OUT/features.h5" --feature "${F:-0}" --top 3 --seconds 0.5 -o "$OUT/excerpts"

if command -v python3 >/dev/null 2>&1; then
  echo "== musae label --labeler llm and musae score against the scripted test server (tests/llm_server.py on"
  echo "   127.0.0.1; its labels are canned: docs/LLM_LABEL.md runs it against vLLM or llama-server)"
  rm -f "$OUT/labels_llm.jsonl" "$OUT/llm_server.txt"
  python3 tests/llm_server.py --seconds 120 > "$OUT/llm_server.txt" &
  llm_server=$!
  for _ in $(seq 100); do [ -s "$OUT/llm_server.txt" ] && break; sleep 0.1; done
  llm_url="http://127.0.0.1:$(head -n 1 "$OUT/llm_server.txt")/v1"
  "$musae" label --labeler llm --endpoint "$llm_url" --llm-model test-audio-lm --features "$OUT/features.h5" \
    --max-features 3 --seconds 0.5 --no-cache -o "$OUT/labels_llm.jsonl"
  "$musae" score --endpoint "$llm_url" --llm-model test-audio-lm --labels "$OUT/labels_llm.jsonl" \
    --features "$OUT/features.h5" --negatives 10 --no-cache
  kill "$llm_server" 2>/dev/null || true
  head -c 400 "$OUT/labels_llm.jsonl"; echo
else
  echo "== musae label --labeler llm: skipped (the demo's stand-in LLM server, tests/llm_server.py, needs python3)"
fi

echo "== musae evaluate spliced into the model, on the store's held-out clips (cut from their audio files)"
"$musae" evaluate --sae "$OUT/sae" --model "$MODEL" > "$OUT/eval_spliced_audio.json"
cat "$OUT/eval_spliced_audio.json"

echo "== musae generate (greedy, 2 items, 2 s) with generation-time capture of layer $LAYER"
"$musae" generate --model "$MODEL" --seconds 2 --batch 2 --greedy --codes-out "$OUT/generated.safetensors" \
  -o "$OUT/generated.wav" --capture-layers "$LAYER" --acts "$OUT/gen_acts.h5"
echo "== musae evaluate spliced into the model, on the generated codes"
# A random model's own greedy codes are what it predicts best, so zero-ablation clearly hurts there and the
# loss recovered is meaningful (on the synthesized audio the random model is no better than chance).
"$musae" evaluate --sae "$OUT/sae" --model "$MODEL" --codes "$OUT/generated.safetensors" \
  > "$OUT/eval_spliced_generated.json"
cat "$OUT/eval_spliced_generated.json"

echo "== musae dashboard: a static site of every feature (open $OUT/site/index.html in a browser, no server)"
labels=(--labels "$OUT/labels.jsonl")
[ -s "$OUT/labels_llm.jsonl" ] && labels+=(--labels "$OUT/labels_llm.jsonl")
"$musae" dashboard --features "$OUT/features.h5" "${labels[@]}" --top 3 --seconds 0.5 -o "$OUT/site"

echo
echo "Outputs in $OUT/:"
echo "  $OUT/audio/                      the synthesized dataset (one unreadable and one too-short file on purpose)"
echo "  $OUT/acts.h5                     activation store (layers $LAYERS; musae info: $OUT/acts_info.txt)"
echo "  $OUT/descriptors.h5              music descriptors of each clip and 1 s window (musae describe)"
echo "  $OUT/sae/                        SAE checkpoint (sae.safetensors, cfg.json, musae.json, metrics.jsonl)"
echo "  $OUT/eval_store.json             held-out FVU / L0 on the store"
echo "  $OUT/features.h5                 musae analyze's per-feature statistics ($OUT/features_info.txt)"
echo "  $OUT/labels.jsonl               a dsp label per kept feature (docs/LABELS.md)"
echo "  $OUT/excerpts/                   OGG excerpts of one feature's top clips + activation traces (JSON)"
echo "  $OUT/site/index.html             the feature dashboard (static: index, feature pages with audio, summary)"
echo "  $OUT/labels_llm.jsonl            LLM labels + detection scores of 3 features (from the scripted test server)"
echo "  $OUT/eval_spliced_audio.json     spliced, on the held-out clips: CE clean / SAE / zero-ablated, loss recovered, KL, FVU, L0"
echo "  $OUT/eval_spliced_generated.json the same on the generated codes"
echo "  $OUT/generated_*.wav, $OUT/generated.safetensors, $OUT/gen_acts.h5 (generation-time activations)"
echo
echo "done: build $build_s s, demo $(( $(date +%s) - t_start )) s, total $(( $(date +%s) - t_total )) s (CUDA backend $cuda)"
