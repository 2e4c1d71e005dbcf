#!/usr/bin/env bash
# Builds a demo-like dashboard site from nothing, for tests/dashboard_browser.sh and bench/run_dashboard.sh:
# synthesized audio (sox; file names with a space, a quote and non-ASCII letters) -> musae capture on the bundled
# tiny model -> musae train -> musae analyze -> a LABELS.jsonl with hostile labels (<script>, quotes) and a
# steer folder -> one source removed (a marked gap) -> musae dashboard.
#   usage: make_site.sh MUSAE_BIN REPO_ROOT WORKDIR       (the site is WORKDIR/site dir with spaces)
set -euo pipefail
musae=$1 root=$2 w=$3
export OMP_WAIT_POLICY=PASSIVE
rm -rf "$w" && mkdir -p "$w/audio/strings" "$w/audio/drums" "$w/steer"
cd "$w"
sox -n -r 44100 -c 2 "audio/pluck a.wav"           synth 3 pluck A3 pluck C4 pluck E4 fade 0 3 0.5
sox -n -r 32000 -c 1 "audio/it's é ü.flac"         synth 3 pluck D3 pluck F#3 pluck A3
sox -n -r 48000 -c 2 audio/strings/chord_c.wav     synth 3 sawtooth C3 sawtooth E3 sawtooth G3 vol 0.3 lowpass 2000
sox -n -r 22050 -c 1 audio/strings/sweep.wav       synth 3 sine 200-1600 vol 0.5
sox -n -r 44100 -c 1 audio/drums/noise_hits.wav    synth 0.12 whitenoise fade 0 0.12 0.1 pad 0 0.38 repeat 5 vol 0.6
sox -n -r 32000 -c 1 audio/drums/kick.wav          synth 0.25 sine 150-40 fade 0 0.25 0.2 pad 0 0.25 repeat 5
"$musae" capture --model "$root/tests/fixtures/tiny-musicgen" --audio audio --layers 1 --clip-seconds 1 -o acts.h5 \
  2>capture.log
"$musae" train --acts acts.h5 --layer 1 --k 8 --expansion 4 --tokens 20000 --batch 256 --warmup 20 --log-every 1000 \
  -o sae >train.log 2>&1
"$musae" analyze --sae sae --acts acts.h5 --split all --top 8 --max-rate 0.6 -o features.h5 2>analyze.log
"$musae" info features.h5 > features_info.txt
# the feature to check in the browser: the first kept one with the largest max activation
F=$(awk '/top kept features/ { t = 1; next } t && $1 ~ /^[0-9]+$/ { print $1; exit }' features_info.txt)
M=$(awk '$1 == "latents" { sub(",", "", $2); print $2; exit }' features_info.txt)
[ -n "$F" ] && [ -n "$M" ] || { echo "make_site.sh: no kept feature in $w/features_info.txt" >&2; exit 1; }
echo "$F" > feature.txt
# labels: every feature gets a dsp label; F's is hostile markup; an llm labeler with quotes and a failure
awk -v F="$F" -v M="$M" 'BEGIN {
  for (i = 0; i < M; i++) {
    lab = (i == F) ? "<script>document.title='"'"'pwned'"'"'</script>" : sprintf("tone %d & \\\"bright\\\" <b>", i)
    printf "{\"feature\": %d, \"labeler\": \"dsp\", \"label\": \"%s\", \"score\": %.2f, \"status\": \"ok\", ", i, lab, 0.5 + (i % 7) / 20
    printf "\"evidence\": [{\"descriptor\": \"spectral_centroid_hz\", \"kind\": \"continuous\", \"auroc\": 0.8, "
    printf "\"median_top\": 1200.0, \"median_random\": 700.0, \"note\": \"<i>x</i>\"}]}\n"
  }
  for (i = 0; i < M; i += 3) {
    if (i == 3) {
      printf "{\"feature\": 3, \"labeler\": \"llm\", \"label\": null, \"score\": null, \"status\": \"failed\", "
      printf "\"error\": \"HTTP 500 <html>\", \"evidence\": []}\n"
    } else {
      printf "{\"feature\": %d, \"labeler\": \"llm\", \"label\": \"plucked strings ‘%d’ it'"'"'s\", \"score\": %.1f, ", i, i, (i % 10) / 10
      printf "\"status\": \"ok\", \"evidence\": [{\"description\": \"a plucked <u>string</u>\", \"concepts\": [\"pluck\"]}], "
      printf "\"scores\": {\"clap_alignment\": 0.31}}\n"
    }
  }
}' > LABELS.jsonl
# steering, a musae steer folder (docs/STEER.md) written by hand: baseline / steered / random for F of one prompt and
# seed, the random one missing
sox -n -r 32000 -c 1 "steer/base line.wav" synth 1 sine 440 vol 0.3
sox -n -r 32000 -c 1 "steer/steered é.wav" synth 1 sine 660 vol 0.3
printf '{"features":[%d]}\n' "$F" > steer/study.json
printf '%s\n' \
  "{\"kind\": \"baseline\", \"feature\": null, \"alpha\": 0, \"prompt\": 0, \"seed\": 0, \"audio\": \"base line.wav\", \"act\": [0.1], \"code_diff\": 0, \"clap\": {\"label\": [0.1], \"exemplars\": [0.2], \"dist\": 0}}" \
  "{\"kind\": \"steered\", \"feature\": $F, \"alpha\": 0.5, \"prompt\": 0, \"seed\": 0, \"audio\": \"steered é.wav\", \"act\": [0.4], \"code_diff\": 0.5, \"clap\": {\"label\": [0.25], \"exemplars\": [0.3], \"dist\": 0.2}}" \
  "{\"kind\": \"random\", \"draw\": 0, \"feature\": $F, \"alpha\": 0.5, \"prompt\": 0, \"seed\": 0, \"audio\": \"gone.wav\", \"act\": [0.1], \"code_diff\": 0.4, \"clap\": {\"label\": [0.11], \"exemplars\": [0.2], \"dist\": 0.1}}" \
  > steer/steer.jsonl
rm audio/drums/kick.wav   # a moved source: its clips must show a marked gap
"$musae" dashboard --features features.h5 --labels LABELS.jsonl --steer steer --seconds 0.8 -o "site dir" 2>dashboard.log
