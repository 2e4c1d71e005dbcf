"""Deterministic synthetic test signals (float32, in [-1, 1])."""

import numpy as np

SR = 32000


def _t(n, sr):
    return np.arange(n, dtype=np.float64) / sr


def chord(n=2 * SR, sr=SR):
    t = _t(n, sr)
    x = sum(0.25 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.00))
    x *= np.minimum(1.0, t / 0.05)  # 50 ms fade in
    return x.astype(np.float32)


def noise_bursts(n=2 * SR, sr=SR, seed=7):
    rng = np.random.default_rng(seed)
    t = _t(n, sr)
    gate = (np.mod(t, 0.4) < 0.1).astype(np.float64)
    x = 0.5 * rng.uniform(-1.0, 1.0, n) * gate
    return x.astype(np.float32)


def silence(n=2 * SR, sr=SR):
    return np.zeros(n, dtype=np.float32)


def square_clipped(n=2 * SR, sr=SR):
    t = _t(n, sr)
    x = np.clip(3.0 * np.sin(2 * np.pi * 110.0 * t), -1.0, 1.0)
    return x.astype(np.float32)


def chirp_odd(n=32123, sr=SR):
    """Length not a multiple of the hop (640): exercises the extra right padding."""
    t = _t(n, sr)
    f0, f1 = 100.0, 4000.0
    dur = n / sr
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur))
    return (0.6 * np.sin(phase)).astype(np.float32)


def tiny_signals():
    """name -> mono float32 [N] at 32 kHz, for golden_encodec.py."""
    return {
        "chord": chord(),
        "noise_bursts": noise_bursts(),
        "silence": silence(),
        "square_clipped": square_clipped(),
        "chirp_odd": chirp_odd(),
    }


def stereo(sr, n, seed):
    """Interleaved float32 [n, 2]: L = 440 Hz sine + 3rd harmonic, R = 660 Hz sine + noise."""
    rng = np.random.default_rng(seed)
    t = _t(n, sr)
    left = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * np.sin(2 * np.pi * 1320.0 * t)
    right = 0.4 * np.sin(2 * np.pi * 660.0 * t + 0.3) + 0.05 * rng.uniform(-1, 1, n)
    return np.stack([left, right], axis=1).astype(np.float32)


def resample_inputs():
    """name -> (sr_in, interleaved float32 [N, 2]); 1 s each."""
    return {"44k": (44100, stereo(44100, 44100, 11)), "48k": (48000, stereo(48000, 48000, 12))}


def downmix_resample(x, sr_in, sr_out=SR):
    import soxr

    mono = x.mean(axis=1).astype(np.float32)  # mean of channels, in float32
    return np.asarray(soxr.resample(mono, sr_in, sr_out, quality="HQ"), dtype=np.float32)


def clip_2s(seed=3, sr=SR):
    """2 s clip for the real-size hash EnCodec: decaying plucks + chord + a little noise."""
    rng = np.random.default_rng(seed)
    n = 2 * sr
    t = _t(n, sr)
    x = 0.3 * np.sin(2 * np.pi * 196.0 * t) + 0.2 * np.sin(2 * np.pi * 293.66 * t)
    for k, f in enumerate((440.0, 523.25, 659.25, 880.0)):
        t0 = 0.4 * k + 0.1
        env = np.where(t >= t0, np.exp(-(t - t0) * 6.0), 0.0)
        x += 0.3 * env * np.sin(2 * np.pi * f * (t - t0))
    x += 0.02 * rng.standard_normal(n)
    return np.clip(x, -1.0, 1.0).astype(np.float32)
