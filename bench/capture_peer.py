"""PyTorch peer of bench/capture_bench.c (issue 23): the same capture as a PyTorch script would do it, on the same
model folder, audio files, clip length, layers and dtype, timed the same way. Prints one JSON line.

Per file: read (soundfile), downmix to mono, resample to the codec's rate (scipy resample_poly), cut into clips of
--clip-seconds (the tail shorter than a clip is dropped, as musae capture does by default); per clip: HF
EncodecModel.encode -> codes [K, F]; the delay pattern (T = F + K, step 0 BOS); the unconditional decoder forward
(MusicgenForConditionalGeneration's decoder, fp32, transformers' default SDPA attention, no cross-attention) with forward hooks on the
chosen layers that copy the residual stream at positions 1..F, the forward stopped after the deepest hooked layer
(as musae computes no layer past it); the rows appended to one h5py dataset per layer ([frames, hidden], f16 or
f32, chunked, clip names beside them). Wall and CPU seconds (all threads) per stage.

--encode-batch B (default 1) encodes B clips at a time, one EncodecModel.encode call on a [B, 1, samples] batch
(the clips are all of one length), as musae's capture encodes the clips already waiting together; the decoder
still runs one clip per forward, as capture_bench's default --batch 1 does.

  python3 bench/capture_peer.py --model DIR --audio DIR --out acts.h5 [--clip-seconds 10]
      [--layers 2,6,12,18,22] [--dtype f16|f32] [--threads 2] [--encode-batch 1]
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import h5py
import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly


class StopForward(Exception):
    """Raised by the deepest hook: the layers after it are not needed."""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--audio", required=True, help="folder of audio files")
    ap.add_argument("--out", required=True)
    ap.add_argument("--clip-seconds", type=float, default=10.0)
    ap.add_argument("--layers", default="2,6,12,18,22")
    ap.add_argument("--dtype", choices=["f16", "f32"], default="f16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encode-batch", type=int, default=1, help="clips per EncodecModel.encode call")
    a = ap.parse_args()
    if a.encode_batch < 1:
        ap.error("--encode-batch must be >= 1")
    torch.set_num_threads(a.threads)
    from transformers import MusicgenForConditionalGeneration
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # the folder has no T5 weights (capture is unconditional)
    t0 = time.perf_counter()
    from transformers import MusicgenConfig

    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    # capture_bench's config comes from the tiny fixture, which writes some float fields as ints (1 for 1.0);
    # transformers 5's strict config classes refuse those: each refused field becomes a float, then retry
    from huggingface_hub.errors import StrictDataclassFieldValidationError

    for _ in range(20):
        try:
            config = MusicgenConfig.from_dict(cfg)
            break
        except StrictDataclassFieldValidationError as e:
            field = str(e).split("'")[1]
            fixed = [p for p in [cfg] + [v for v in cfg.values() if isinstance(v, dict)]
                     if isinstance(p.get(field), int)]
            if not fixed:
                raise
            for p in fixed:
                p[field] = float(p[field])
    # attention: transformers' default, SDPA where a part has it (the decoder)
    model = MusicgenForConditionalGeneration.from_pretrained(a.model, config=config, dtype=torch.float32).eval()
    load_s = time.perf_counter() - t0
    codec, dec = model.audio_encoder, model.decoder
    rate = codec.config.sampling_rate
    K, V, H = dec.config.num_codebooks, dec.config.vocab_size, dec.config.hidden_size
    layers = [int(x) for x in a.layers.split(",")]
    deepest = max(layers)
    np_dtype = np.float16 if a.dtype == "f16" else np.float32

    rows = {}
    stage = {"F": 0}

    def hook(layer):
        def fn(_module, _inputs, output):
            h = output[0] if isinstance(output, tuple) else output
            rows[layer] = h[0, 1:stage["F"] + 1].numpy().astype(np_dtype)
            if layer == deepest:
                raise StopForward
        return fn

    for l in layers:
        dec.model.decoder.layers[l].register_forward_hook(hook(l))

    files = sorted(f for f in os.listdir(a.audio) if f.lower().endswith((".wav", ".flac", ".ogg")))
    wall = {"read": 0.0, "encodec": 0.0, "lm": 0.0, "write": 0.0}
    cpu = dict(wall)
    clip_n = int(round(a.clip_seconds * rate))
    if os.path.exists(a.out):
        os.unlink(a.out)
    h5 = h5py.File(a.out, "w")
    ds = {l: h5.create_dataset(f"layer_{l}", shape=(0, H), maxshape=(None, H), dtype=np_dtype, chunks=(256, H))
          for l in layers}
    names = []
    frames = 0

    def timed(what, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall[what] += time.perf_counter() - w0
        cpu[what] += time.process_time() - c0
        return out

    def capture(clip_names, clips):
        """Encodes the clips (one call), then per clip the decoder forward and the write."""
        nonlocal frames
        batch = torch.from_numpy(np.stack(clips))[:, None]  # [B, 1, samples]
        all_codes = timed("encodec", lambda: codec.encode(batch).audio_codes[0])  # [B, K, F]
        for clip_name, codes in zip(clip_names, all_codes):
            F = codes.shape[-1]
            stage["F"] = F
            delayed = torch.full((K, F + K), V, dtype=torch.long)
            for k in range(K):
                delayed[k, 1 + k:1 + k + F] = codes[k]

            def forward():
                try:
                    dec(input_ids=delayed, use_cache=False)
                except StopForward:
                    pass
            timed("lm", forward)

            def write():
                for l in layers:
                    d = ds[l]
                    d.resize(frames + F, axis=0)
                    d[frames:frames + F] = rows[l]
                h5.flush()
            timed("write", write)
            names.append(clip_name)
            frames += F

    w_start, c_start = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        pending_names, pending = [], []
        for name in files:
            def read():
                x, sr = sf.read(os.path.join(a.audio, name), dtype="float32", always_2d=True)
                x = x.mean(axis=1)
                if sr != rate:
                    g = math.gcd(sr, rate)
                    x = resample_poly(x, rate // g, sr // g).astype(np.float32)
                return x
            audio = timed("read", read)
            for c in range(len(audio) // clip_n):
                pending.append(np.ascontiguousarray(audio[c * clip_n:(c + 1) * clip_n]))
                pending_names.append(f"{name}#t={c * a.clip_seconds:g},{(c + 1) * a.clip_seconds:g}")
                if len(pending) == a.encode_batch:
                    capture(pending_names, pending)
                    pending_names, pending = [], []
        if pending:
            capture(pending_names, pending)
    h5.create_dataset("clips", data=np.array(names, dtype=h5py.string_dtype()))
    h5.close()
    loop_s, cpu_s = time.perf_counter() - w_start, time.process_time() - c_start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"bench": "capture_cpu", "impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
           "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "encode_batch": a.encode_batch,
           "clips": len(names), "frames": frames,
           "layers": a.layers, "dtype": a.dtype, "loop_s": round(loop_s, 3), "frames_per_s": round(frames / loop_s, 2),
           "cpu_s": round(cpu_s, 2), "frames_per_cpu_s": round(frames / cpu_s, 2), "load_s": round(load_s, 2),
           "peak_rss_mib": round(rss)}
    for k in wall:
        out[f"{k}_s"] = round(wall[k], 3)
    out["stage_cpu_s"] = {k: round(v, 2) for k, v in cpu.items()}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
