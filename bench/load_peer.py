"""PyTorch peer of bench/load_bench.c: HF transformers' MusicgenForConditionalGeneration.from_pretrained on
the same checkpoint folder (fp32, CPU), timed the same way: one warm-up, then the best of --reps; --cold
times one load after evicting the folder's safetensors files from the page cache (posix_fadvise
DONTNEED; the C bench tries drop_caches first and evicts before calling this too). Prints one JSON line.

  python bench/load_peer.py --model DIR [--reps 3] [--threads N] [--cold]
"""

import argparse
import glob
import json
import os
import time

import torch
import transformers


def evict(folder):
    for f in glob.glob(os.path.join(folder, "*.safetensors")):
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cold", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cls = transformers.MusicgenForConditionalGeneration

    def load():
        t0 = time.perf_counter()
        m = cls.from_pretrained(a.model, dtype=torch.float32)
        s = time.perf_counter() - t0
        del m
        return s

    if a.cold:
        evict(a.model)
        best = load()
    else:
        load()  # warm-up: imports, the page cache
        best = min(load() for _ in range(a.reps))
    print(json.dumps({"impl": "hf", "torch": torch.__version__, "transformers": transformers.__version__,
                      "threads": torch.get_num_threads(), "cold": a.cold, "load_s": best}))


if __name__ == "__main__":
    main()
