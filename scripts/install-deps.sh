#!/usr/bin/env bash
# The one list of Debian packages musae needs to build and test. Idempotent: when every package is
# already installed it prints nothing and returns in well under a second.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-dev              # CPU GEMMs
  libhdf5-dev hdf5-tools       # activation store (+ h5dump: inspection, test_store, test_capture)
  libsndfile1-dev libsoxr-dev  # audio in/out, resampling
  libcjson-dev                 # safetensors headers, config.json, metrics
  libfftw3-dev libaubio-dev libebur128-dev   # DSP descriptors
  libcurl4-openssl-dev         # LLM labeling endpoint
  libssl-dev                   # SHA-256 of weights (OpenSSL libcrypto)
  libopenmpi-dev openmpi-bin   # distributed training (CPU path runs in CI)
  libsentencepiece-dev         # T5 tokenizer
  libicu-dev                   # CLAP tokenizer (Unicode general categories)
  clang libclang-rt-14-dev     # libFuzzer targets and sanitizer runtimes
  sox                          # synthesized test clips
  zlib1g-dev                   # the dashboard's PNG encoder
  chromium                     # the dashboard's headless browser test (tests/dashboard_browser.sh)
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${#missing[@]} package(s): ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
