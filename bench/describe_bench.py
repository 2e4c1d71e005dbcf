#!/usr/bin/env python3
"""musae describe against librosa + pyloudnorm on the same clips, in the same run (issue describe).

Synthesizes N music-like 10 s clips at 32 kHz with known tempo and key (drums on a grid, a four-chord
progression in the key, a bass line; random tempo 70-170 BPM, key, mode and level; 15 % without drums), writes
them as WAV, then:
  - musae describe --audio DIR -o D.h5 on one thread (OMP_NUM_THREADS=1), CPU time from getrusage;
  - the peer on one thread: librosa.beat.beat_track, chroma_stft (n_fft 4096, hop 1024, as musae) with the same
    Krumhansl-Kessler key profiles, spectral_centroid / rolloff / flatness / bandwidth, zero_crossing_rate, rms,
    and pyloudnorm's integrated loudness (BS.1770, one channel), CPU time from time.process_time, after one
    warm-up clip (numba compiles librosa's kernels on first use).
Prints the speed ratio per core and the agreement: tempo within 4 % or an octave, LUFS within 0.5 dB, key identical
share, and each tool against the synthesized truth; and, where bench/describe_libfloor was built beside musae, the
CPU per clip of the library calls the issue requires, alone, against what 20x the peer leaves. One JSON line at
the end.

  pip install librosa pyloudnorm h5py soundfile     # the peer only; nothing in the tests needs Python
  python3 bench/describe_bench.py --musae build/cpu/musae [--clips 200] [--keep DIR]
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

# one core for the peer too: set before numpy/numba load their thread pools
for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[v] = "1"

import numpy as np  # noqa: E402

SR = 32000
MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]


def ks_key(chroma):
    """Krumhansl-Schmuckler exactly as musae (eval/dsp_chroma.c): best Pearson r over 24 rotations."""
    best = (-2.0, -1, -1)
    if np.ptp(chroma) <= 1e-6:
        return -1, -1
    for mode, prof in ((0, MAJOR), (1, MINOR)):
        for k in range(12):
            r = np.corrcoef(chroma, np.roll(prof, k))[0, 1]
            if r > best[0]:
                best = (r, k, mode)
    return best[1], best[2]


def synth_clip(rng):
    n = SR * 10
    t = np.arange(n) / SR
    bpm = float(rng.uniform(70, 170))
    key = int(rng.integers(12))
    mode = int(rng.integers(2))
    beat = 60.0 / bpm
    x = np.zeros(n)
    scale = [0, 2, 4, 5, 7, 9, 11] if mode == 0 else [0, 2, 3, 5, 7, 8, 10]
    prog = [0, 4, 5, 3] if mode == 0 else [0, 5, 2, 6]  # I V vi IV / i VI III VII
    bar = 4 * beat
    for b in range(int(10 / bar) + 1):
        deg = prog[b % 4]
        notes = [48 + key + scale[(deg + j) % 7] + 12 * ((deg + j) // 7) for j in (0, 2, 4)]
        a, e = int(b * bar * SR), min(n, int((b + 1) * bar * SR))
        if a >= n:
            break
        tt = t[a:e] - t[a]
        env = np.minimum(1, tt / 0.02) * np.exp(-tt * 0.6)
        for m in notes + [notes[0] - 12]:  # the triad and the bass an octave down
            f = 440 * 2 ** ((m - 69) / 12)
            x[a:e] += 0.12 * env * sum(0.5 ** h * np.sin(2 * np.pi * f * (h + 1) * tt) for h in range(3))
    if rng.random() > 0.15:  # drums
        noise = rng.standard_normal(n + 1)
        k = 0
        while k * beat / 2 < 10:
            a = int(k * beat / 2 * SR)
            if k % 2 == 0:  # kick on every beat
                L = min(int(0.15 * SR), n - a)
                tt = np.arange(L) / SR
                x[a:a + L] += 0.9 * np.exp(-tt * 30) * np.sin(2 * np.pi * (50 + 60 * np.exp(-tt * 40)) * tt)
            if k % 4 == 2:  # snare on 2 and 4
                L = min(int(0.12 * SR), n - a)
                x[a:a + L] += 0.35 * np.exp(-np.arange(L) / SR * 35) * noise[a:a + L]
            L = min(int(0.03 * SR), n - a)  # hi-hat on eighths
            hh = np.diff(noise[a:a + L + 1])
            x[a:a + L] += 0.08 * np.exp(-np.arange(L) / SR * 120) * hh
            k += 1
    x *= rng.uniform(0.1, 0.9) / (np.max(np.abs(x)) + 1e-9)
    return x.astype(np.float32), bpm, key, mode


def tempo_agrees(a, b, tol):
    """Within tol, or within tol of an octave (x2, x0.5): returns 'same', 'octave' or 'no'."""
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0 or b <= 0:
        return "no"
    if abs(a / b - 1) <= tol:
        return "same"
    if abs(a / (2 * b) - 1) <= tol or abs(2 * a / b - 1) <= tol:
        return "octave"
    return "no"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--musae", default="build/cpu/musae")
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", help="write the clips and D.h5 here and keep them")
    a = ap.parse_args()
    import h5py
    import librosa
    import pyloudnorm
    import soundfile as sf

    work = a.keep or tempfile.mkdtemp(prefix="describe_bench_")
    clip_dir = os.path.join(work, "clips")
    os.makedirs(clip_dir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    truth = []
    for i in range(a.clips):
        x, bpm, key, mode = synth_clip(rng)
        sf.write(os.path.join(clip_dir, f"c{i:04d}.wav"), x, SR, subtype="FLOAT")
        truth.append((bpm, key, mode))
    files = sorted(os.listdir(clip_dir))

    # ---- musae, one thread
    out = os.path.join(work, "D.h5")
    env = dict(os.environ, OMP_NUM_THREADS="1", MUSAE_LOG="warn")
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run([a.musae, "describe", "--audio", clip_dir, "-o", out], check=True, env=env)
    musae_wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    musae_cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    with h5py.File(out, "r") as f:
        paths = list(f["clips/path"].asstr()[:])
        m = {k: f["clip/" + k][:] for k in ("tempo_bpm", "lufs", "key", "mode", "spectral_centroid_hz",
                                             "spectral_rolloff_hz", "spectral_flatness", "spectral_bandwidth_hz",
                                             "zcr", "rms_db")}
    assert paths == [os.path.join(clip_dir, fn) + "#t=0,10" for fn in files], "musae described other clips"

    # ---- the peer, one thread, after a warm-up clip
    meter = pyloudnorm.Meter(SR)

    def peer(y):
        tempo, _ = librosa.beat.beat_track(y=y, sr=SR)
        chroma = librosa.feature.chroma_stft(y=y, sr=SR, n_fft=4096, hop_length=1024).mean(axis=1)
        key, mode = ks_key(chroma)
        S = np.abs(librosa.stft(y, n_fft=4096, hop_length=1024))
        return {
            "tempo_bpm": float(np.atleast_1d(tempo)[0]),
            "key": key, "mode": mode,
            "spectral_centroid_hz": float(librosa.feature.spectral_centroid(S=S, sr=SR).mean()),
            "spectral_rolloff_hz": float(librosa.feature.spectral_rolloff(S=S, sr=SR).mean()),
            "spectral_flatness": float(librosa.feature.spectral_flatness(S=S).mean()),
            "spectral_bandwidth_hz": float(librosa.feature.spectral_bandwidth(S=S, sr=SR).mean()),
            "zcr": float(librosa.feature.zero_crossing_rate(y, frame_length=4096, hop_length=1024).mean()),
            "rms_db": float(20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-12)),
            "lufs": float(meter.integrated_loudness(y.astype(np.float64))),
        }

    y0, _ = sf.read(os.path.join(clip_dir, files[0]), dtype="float32")
    peer(y0)
    p = []
    c0 = time.process_time()
    w0 = time.perf_counter()
    for fn in files:
        y, sr = sf.read(os.path.join(clip_dir, fn), dtype="float32")
        assert sr == SR
        p.append(peer(y))
    peer_cpu = time.process_time() - c0
    peer_wall = time.perf_counter() - w0

    # ---- the floor the required libraries set (bench/describe_libfloor.c, built beside musae): their calls alone
    floor = None
    lib_bin = os.path.join(os.path.dirname(os.path.abspath(a.musae)), "bench", "describe_libfloor")
    if os.path.exists(lib_bin):
        floor = json.loads(subprocess.run([lib_bin] + [os.path.join(clip_dir, fn) for fn in files], check=True,
                                          capture_output=True, text=True, env=env).stdout)

    # ---- agreement
    n = len(files)
    tempo_cls = [tempo_agrees(m["tempo_bpm"][i], p[i]["tempo_bpm"], 0.04) for i in range(n)]
    lufs_d = np.array([abs(m["lufs"][i] - p[i]["lufs"]) for i in range(n)])
    key_same = np.mean([(m["key"][i], m["mode"][i]) == (p[i]["key"], p[i]["mode"]) for i in range(n)])
    truth_m = [tempo_agrees(m["tempo_bpm"][i], truth[i][0], 0.04) for i in range(n)]
    truth_p = [tempo_agrees(p[i]["tempo_bpm"], truth[i][0], 0.04) for i in range(n)]
    key_m = np.mean([(m["key"][i], m["mode"][i]) == truth[i][1:] for i in range(n)])
    key_p = np.mean([(p[i]["key"], p[i]["mode"]) == truth[i][1:] for i in range(n)])
    rel = {k: float(np.median([abs(m[k][i] / p[i][k] - 1) for i in range(n) if p[i][k] != 0]))
           for k in ("spectral_centroid_hz", "spectral_rolloff_hz", "spectral_bandwidth_hz", "zcr")}
    flat_corr = float(np.corrcoef(m["spectral_flatness"], [q["spectral_flatness"] for q in p])[0, 1])
    res = {
        "clips": n, "seconds_of_audio": 10 * n,
        "musae_cpu_s": round(musae_cpu, 3), "musae_wall_s": round(musae_wall, 3),
        "peer_cpu_s": round(peer_cpu, 3), "peer_wall_s": round(peer_wall, 3),
        "speed_ratio_per_core": round(peer_cpu / musae_cpu, 2),
        "tempo_within_4pct": tempo_cls.count("same") / n, "tempo_octave": tempo_cls.count("octave") / n,
        "tempo_agree_incl_octave": (tempo_cls.count("same") + tempo_cls.count("octave")) / n,
        "lufs_within_0.5dB": float(np.mean(lufs_d <= 0.5)), "lufs_median_abs_diff_db": float(np.median(lufs_d)),
        "key_identical": float(key_same),
        "truth_tempo_within_4pct": {"musae": truth_m.count("same") / n, "librosa": truth_p.count("same") / n},
        "truth_tempo_octave": {"musae": truth_m.count("octave") / n, "librosa": truth_p.count("octave") / n},
        "truth_key": {"musae": float(key_m), "librosa": float(key_p)},
        "median_rel_diff": rel, "flatness_pearson_r": flat_corr,
        "versions": {"librosa": librosa.__version__, "pyloudnorm": getattr(pyloudnorm, "__version__", "?"),
                     "numpy": np.__version__},
    }
    print(f"{n} clips of 10 s at 32 kHz, one core each:")
    print(f"  musae describe   {musae_cpu:8.2f} s CPU ({musae_wall:.2f} s wall)  "
          f"{10 * n / musae_cpu:7.1f}x real time  (every descriptor, per clip and per 1 s window)")
    print(f"  librosa+pyln     {peer_cpu:8.2f} s CPU ({peer_wall:.2f} s wall)  "
          f"{10 * n / peer_cpu:7.1f}x real time  (beat_track, chroma_stft+key, 4 spectral, zcr, rms, LUFS)")
    print(f"  speed ratio per core: {peer_cpu / musae_cpu:.1f}x")
    print(f"agreement: tempo within 4 % {res['tempo_within_4pct']:.1%} (+ octave {res['tempo_octave']:.1%}), "
          f"LUFS within 0.5 dB {res['lufs_within_0.5dB']:.1%} (median |diff| {res['lufs_median_abs_diff_db']:.3f} dB), "
          f"key identical {key_same:.1%}")
    print(f"vs the synthesized truth: tempo within 4 % musae {res['truth_tempo_within_4pct']['musae']:.1%} / librosa "
          f"{res['truth_tempo_within_4pct']['librosa']:.1%} (octave {res['truth_tempo_octave']['musae']:.1%} / "
          f"{res['truth_tempo_octave']['librosa']:.1%}); key musae {key_m:.1%} / librosa {key_p:.1%}")
    print("median relative difference: " + ", ".join(f"{k} {v:.2%}" for k, v in rel.items()) +
          f"; flatness Pearson r {flat_corr:.3f}")
    if floor:
        f_ms = floor["ms_per_clip"]
        need = f_ms["aubio_yinfast_pitch"] + f_ms["libebur128_I_LRA"]
        budget = 1e3 * peer_cpu / n / 20
        res["library_floor_ms_per_clip"] = f_ms
        res["ms_per_clip"] = {"musae": 1e3 * musae_cpu / n, "peer": 1e3 * peer_cpu / n, "budget_20x": budget}
        print(f"per clip: musae {1e3 * musae_cpu / n:.1f} ms, peer {1e3 * peer_cpu / n:.1f} ms; 20x the peer leaves "
              f"{budget:.1f} ms. The required libraries alone: aubio yinfast pitch {f_ms['aubio_yinfast_pitch']:.1f} ms + "
              f"libebur128 I+LRA {f_ms['libebur128_I_LRA']:.1f} ms = {need:.1f} ms ({need / budget:.1f}x the budget); "
              f"aubio's tempo and onset objects as shipped {f_ms['aubio_tempo_object']:.1f} + "
              f"{f_ms['aubio_onset_object']:.1f} ms (musae rebuilds their loops on one spectrum)")
    print(json.dumps(res))
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    sys.exit(main())
