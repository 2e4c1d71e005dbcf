"""The PyTorch peer of `musae analyze` (bench/run_analyze_cpu.sh): the same statistics over the same store with
the same SAE, the way one would write them in PyTorch: h5py reads the rows block by block, then encode
(x - b_dec) @ W_enc.T + b_enc, ReLU, top-k per row; per feature active-frame counts, sums, maxima and a
64-bin log histogram; per clip the time-mean and max of every feature (scatter into a dense [clips in block, M]
table, then the nonzero entries); the clip rate; the top-N clips per feature by max (merged with topk); the
8 nearest decoder directions of every feature. One JSON
line: rows/s and CPU seconds. Not musae's file format: the point is the cost of the computation.

    python3 bench/analyze_torch.py --acts acts.h5 --sae DIR --layer L [--threads T] [--block 4096] [--top 20]
"""
import argparse
import json
import os
import resource
import struct
import time

import h5py
import numpy as np
import torch


def load_sae(path):
    raw = open(os.path.join(path, "sae.safetensors"), "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8 : 8 + n])
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=np.float32).reshape(t["shape"]).copy())
    cfg = json.load(open(os.path.join(path, "cfg.json")))
    return out, int(cfg["k"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acts", required=True)
    ap.add_argument("--sae", required=True)
    ap.add_argument("--layer", type=int, required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--block", type=int, default=4096)
    ap.add_argument("--top", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    w, k = load_sae(a.sae)
    W_enc, b_enc, b_dec = w["encoder.weight"], w["encoder.bias"], w["b_dec"]
    M = W_enc.shape[0]
    f = h5py.File(a.acts, "r")
    n_rows = int(f.attrs["n_rows"])
    acts = f[f"layers/{a.layer}/acts"]
    clip_of = torch.from_numpy(f["frames/clip"][:n_rows].astype(np.int64))
    n_clips = int(f.attrs["n_clips"])
    edges = torch.logspace(-8, 8, 65, base=2.0)
    t0, c0 = time.time(), time.process_time()
    n_active = torch.zeros(M, dtype=torch.int64)
    total = torch.zeros(M, dtype=torch.float64)
    vmax = torch.zeros(M)
    hist = torch.zeros(M * 64, dtype=torch.int64)
    top_v = torch.full((M, a.top), -1.0)
    top_c = torch.full((M, a.top), -1, dtype=torch.int64)
    table = []  # per block: (clip, feature, mean, max) of nonzero entries
    for r0 in range(0, n_rows, a.block):
        r1 = min(n_rows, r0 + a.block)
        x = torch.from_numpy(acts[r0:r1].astype(np.float32))
        clips = clip_of[r0:r1]
        finite = torch.isfinite(x).all(dim=1)
        x, clips = x[finite], clips[finite]
        pre = torch.relu((x - b_dec) @ W_enc.T + b_enc)
        val, idx = pre.topk(k, dim=1)
        keep = val > 0
        rows = torch.arange(x.shape[0]).unsqueeze(1).expand_as(idx)[keep]
        val, idx = val[keep], idx[keep]
        n_active += torch.bincount(idx, minlength=M)
        total.index_add_(0, idx, val.double())
        vmax.scatter_reduce_(0, idx, val, reduce="amax")
        b = torch.bucketize(val, edges).clamp(1, 64) - 1
        hist += torch.bincount(idx * 64 + b, minlength=M * 64)
        # per clip: dense [clips in block, M] sums and maxima
        uc, local = torch.unique(clips, return_inverse=True)
        lc = local[rows]
        csum = torch.zeros(len(uc), M, dtype=torch.float64)
        cmax = torch.zeros(len(uc), M)
        csum.index_put_((lc, idx), val.double(), accumulate=True)
        cmax.view(-1).scatter_reduce_(0, lc * M + idx, val, reduce="amax")
        frames = torch.bincount(local, minlength=len(uc)).double()
        nz = cmax.nonzero()
        table.append((uc[nz[:, 0]], nz[:, 1], (csum[nz[:, 0], nz[:, 1]] / frames[nz[:, 0]]).float(), cmax[nz[:, 0], nz[:, 1]]))
        # top-N clips per feature by max
        cand_v = torch.cat([top_v, cmax.T], dim=1)
        cand_c = torch.cat([top_c, uc.unsqueeze(0).expand(M, -1)], dim=1)
        top_v, pos = cand_v.topk(a.top, dim=1)
        top_c = cand_c.gather(1, pos)
    # the clip rate: distinct (clip, feature) pairs (a clip cut by a block boundary appears in two blocks)
    cl = torch.cat([t[0] for t in table]) * M + torch.cat([t[1] for t in table])
    uniq = torch.unique(cl)
    rate = torch.bincount(uniq % M, minlength=M).double() / n_clips
    mean_act = (total / n_active.clamp(min=1)).float()
    # decoder neighbours: the 8 largest cosines of each row (itself excluded), in blocks of 1024 rows
    Wd = torch.nn.functional.normalize(w["W_dec"], dim=1)
    neighbors = torch.empty(M, 8, dtype=torch.int64)
    for i0 in range(0, M, 1024):
        sim = Wd[i0 : i0 + 1024] @ Wd.T
        sim[torch.arange(sim.shape[0]), torch.arange(i0, i0 + sim.shape[0])] = -2
        neighbors[i0 : i0 + 1024] = sim.topk(8, dim=1).indices
    wall, cpu = time.time() - t0, time.process_time() - c0
    print(json.dumps({"impl": "torch", "rows": n_rows, "threads": a.threads, "rows_per_s": n_rows / wall,
                      "rows_per_cpu_s": n_rows / cpu, "wall_s": wall, "kept": int(((rate >= 0.01) & (rate <= 0.25)).sum()),
                      "dead": int((n_active == 0).sum()), "mean_act0": float(mean_act[0]),
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
