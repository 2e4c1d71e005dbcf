"""PyTorch peer of bench/encodec_bench.c: HF transformers' EncodecModel (the facebook/encodec_32khz config with
the hash-defined weights of tools/reference/make_encodec32k_hash.py, the same checkpoint the C bench builds)
encoding and decoding the same samples, timed the same way (one warm-up, then the best of --repeats).

  python bench/encodec_peer.py --audio x.f32 --repeats 3 --threads 2 --codes-out codes.i64

--audio is raw little-endian float32 mono at 32 kHz. Writes the codes [4, F] as raw int64 (so the C bench can
check both computed the same thing) and prints one JSON line.

  python bench/encodec_peer.py --audio clips.f32 --batch 4 --repeats 3 --threads 2

--batch B (B > 1): --audio holds B clips of one length back to back; times encoding them one encode call each
("alone") and in one call on a [B, 1, samples] batch ("batched"), wall and CPU seconds (process_time, every
thread), and prints one JSON line (no decode).
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "reference"))
import make_encodec32k_hash  # noqa: E402


def best_time(fn, repeats):
    fn()  # warm-up: first-call allocations, oneDNN kernel selection
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def best_wall_cpu(fn, repeats):
    """(best wall s, best CPU s) of repeats after a warm-up."""
    fn()
    wall, cpu = float("inf"), float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def batch_main(a, model):
    x = torch.from_numpy(np.fromfile(a.audio, dtype="<f4"))
    clips = x.reshape(a.batch, 1, -1)
    with torch.inference_mode():
        alone = best_wall_cpu(lambda: [model.encode(clips[b:b + 1], bandwidth=2.2) for b in range(a.batch)], a.repeats)
        batched = best_wall_cpu(lambda: model.encode(clips, bandwidth=2.2), a.repeats)
    print(json.dumps({
        "impl": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(), "batch": a.batch,
        "seconds": clips.shape[-1] / 32000.0, "alone_encode_s": alone[0], "alone_encode_cpu_s": alone[1],
        "batch_encode_s": batched[0], "batch_encode_cpu_s": batched[1],
    }))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--audio", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--codes-out")
    ap.add_argument("--batch", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model, _ = make_encodec32k_hash.build()
    model.eval()
    if a.batch > 1:
        return batch_main(a, model)
    x = torch.from_numpy(np.fromfile(a.audio, dtype="<f4"))[None, None]
    with torch.inference_mode():
        enc_s, enc = best_time(lambda: model.encode(x, bandwidth=2.2), a.repeats)
        codes = enc.audio_codes
        dec_s, dec = best_time(lambda: model.decode(codes, [None]).audio_values, a.repeats)
    if a.codes_out:
        codes[0, 0].numpy().astype("<i8").tofile(a.codes_out)
    seconds = x.shape[-1] / 32000.0
    print(json.dumps({
        "impl": "torch", "torch": torch.__version__, "threads": torch.get_num_threads(), "seconds": seconds,
        "encode_s": enc_s, "decode_s": dec_s, "encode_rtf": seconds / enc_s, "decode_rtf": seconds / dec_s,
        "samples_out": int(dec.shape[-1]),
    }))


if __name__ == "__main__":
    main()
