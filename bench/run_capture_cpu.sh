#!/usr/bin/env bash
# Capture on the CPU against a PyTorch script doing the same (issue 23): real-size random musicgen-small
# (capture_bench's model: decoder weights stored bf16, computed fp32; the real-size encodec_32khz with hash
# weights), CLIPS files of 10 s + 0.5 s at 44.1 kHz stereo, layers 2,6,12,18,22, f16 rows. musae is
# bench/capture_bench (the capture_run of `musae capture`); the peer is bench/capture_peer.py (HF EnCodec +
# decoder forward with hooks + h5py). One command prints both figures and the ratios.
#   bench/run_capture_cpu.sh [BUILD_DIR]      (needs bench/capture_bench built; torch, transformers, h5py, scipy)
# WORK (default /tmp/musae-bench/capture) keeps the model and audio between runs (not committed). THREADS
# (default nproc) sets OMP_NUM_THREADS and torch.set_num_threads alike. ROUNDS (default 2) alternates the
# programs and keeps each one's best. musae runs with its passive OpenMP wait policy; the peer runs with
# libgomp's default (active) and with passive, and its better figure counts. musae's capture encodes the clips
# already waiting together (up to 4); PEER_ENCODE_BATCH (default "1 4") lists the peer's --encode-batch
# variants (1: one EncodecModel.encode per clip; 4: one call on a batch of 4 clips), each run and reported, and
# the ratios count against the best of all of them.
set -euo pipefail
BUILD=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/musae-bench/capture}
THREADS=${THREADS:-$(nproc)}
CLIPS=${CLIPS:-4}
ROUNDS=${ROUNDS:-2}
PEER_ENCODE_BATCH=${PEER_ENCODE_BATCH:-1 4}
export OMP_NUM_THREADS=$THREADS
mkdir -p "$WORK"
echo "== $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $THREADS threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
M=$(mktemp)
P=$(mktemp)
trap 'rm -f "$M" "$P"' EXIT
for r in $(seq "$ROUNDS"); do
  OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} "$BUILD/bench/capture_bench" --work "$WORK" --clips "$CLIPS" \
    2>/dev/null | tail -1 >> "$M"
  for eb in $PEER_ENCODE_BATCH; do
    for policy in active passive; do
      OMP_WAIT_POLICY=$policy python3 "$HERE/capture_peer.py" --model "$WORK/musicgen-small-random" \
        --audio "$WORK/audio_${CLIPS}_10" --out "$WORK/peer.h5" --threads "$THREADS" --encode-batch "$eb" \
        2>/dev/null | tail -1 >> "$P"
    done
  done
done
echo "   (load after: $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$M" "$P" <<'PY'
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])]
p = [json.loads(l) for l in open(sys.argv[2])]
for x in m: print("musae  ", json.dumps(x))
for x in p: print("pytorch", json.dumps(x))
assert all(x["frames"] == m[0]["frames"] for x in m + p), "musae and the peer captured different frame counts"
fm, fp = max(x["frames_per_s"] for x in m), max(x["frames_per_s"] for x in p)
cm, cp = max(x["frames_per_cpu_s"] for x in m), max(x["frames_per_cpu_s"] for x in p)
print(f"musae at ISA level {m[0].get('isa', '?')}, the decoder's products {m[0].get('cpu_arith', '?')} (MUSAE_ISA=avx512: fma-fp32)")
print(f"capture ({m[0]['clips']} clips of 10 s, layers {m[0]['layers']}): musae {fm:.1f} frames/s | PyTorch {fp:.1f} "
      f"frames/s | {fm / fp:.2f}x (target >= 1.5x)")
print(f"  per CPU-second (all threads; steadier on a shared host): musae {cm:.1f} | PyTorch {cp:.1f} | {cm / cp:.2f}x")
print(f"  EnCodec stage: musae {min(x['encodec_s'] for x in m):.2f} s wall (thread CPU "
      f"{min(x['thread_cpu_s']['encodec'] for x in m):.2f} s, its own thread only)")
for eb in sorted({x.get("encode_batch", 1) for x in p}):
    v = [x for x in p if x.get("encode_batch", 1) == eb]
    fv, cv = max(x["frames_per_s"] for x in v), max(x["frames_per_cpu_s"] for x in v)
    print(f"  PyTorch --encode-batch {eb}: {fv:.1f} frames/s ({fm / fv:.2f}x), {cv:.1f} per CPU-s ({cm / cv:.2f}x), "
          f"EnCodec stage {min(x['encodec_s'] for x in v):.2f} s wall, "
          f"{min(x['stage_cpu_s']['encodec'] for x in v):.2f} CPU-s")
PY
