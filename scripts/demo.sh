#!/usr/bin/env bash
# The main job on the bundled tiny model (tests/fixtures/tiny-musicgen, random weights in the exact Hugging
# Face layout): installs, builds, and runs every stage the engine has today, writing into out/demo/.
# Point MODEL at a real checkpoint folder (e.g. facebook/musicgen-small as downloaded) to run it for real.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-tests/fixtures/tiny-musicgen}
OUT=${OUT:-out/demo}
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build/release -j "$(nproc)"
musae=build/release/musae
mkdir -p "$OUT"
has_verb() { "$musae" --help | grep -qE "^  $1 "; }

echo "== musae info $MODEL"
"$musae" info "$MODEL" | tee "$OUT/info.txt" | head -n 12
echo "   ... (full listing in $OUT/info.txt)"

if has_verb generate; then
  echo "== musae generate (unconditional, 2 s, seed 1)"
  if "$musae" generate --help 2>&1 | grep -q -- '--seconds'; then
    "$musae" generate --model "$MODEL" --seconds 2 --seed 1 --codes-out "$OUT/codes.safetensors"
  else
    "$musae" generate --model "$MODEL" --frames 100 --seed 1 --codes-out "$OUT/codes.safetensors"
  fi
fi
if has_verb decode && [ -f "$OUT/codes.safetensors" ]; then
  echo "== musae decode -> $OUT/generated.wav"
  "$musae" decode --model "$MODEL" "$OUT/codes.safetensors" -o "$OUT/generated.wav"
fi
echo
echo "outputs in $OUT/:"
ls -l "$OUT"
