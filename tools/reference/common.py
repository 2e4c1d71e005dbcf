"""Shared helpers for the reference-fixture scripts (tools/reference/).

Everything here is deterministic: fixed seeds, single-threaded torch, sorted
JSON.  The scripts are only needed to *regenerate* tests/fixtures/; neither the
C build nor the tests run Python.
"""

import hashlib
import json
import os
import random
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
TINY_DIR = os.path.join(FIXTURES, "tiny-musicgen")
SHARDED_DIR = os.path.join(FIXTURES, "tiny-musicgen-sharded")
GOLDEN_DIR = os.path.join(FIXTURES, "golden")
HASH32K_DIR = os.path.join(FIXTURES, "encodec32k-hash")

BOS = 2048  # decoder BOS / pad / decoder_start token of every MusicGen checkpoint


def setup_determinism(seed=0):
    """Single-threaded, deterministic torch on CPU."""
    os.environ.setdefault("PYTHONHASHSEED", "0")
    import numpy as np
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.use_deterministic_algorithms(True)
    try:
        import transformers

        transformers.logging.set_verbosity_error()
    except Exception:  # pragma: no cover
        pass


def versions():
    import numpy
    import sentencepiece
    import torch
    import transformers
    import safetensors

    v = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": numpy.__version__,
        "sentencepiece": sentencepiece.__version__,
        "safetensors": safetensors.__version__,
    }
    try:
        import soxr

        v["soxr"] = soxr.__version__
    except Exception:  # pragma: no cover
        pass
    return v


_DTYPES = {"float32": ("F32", "<f4"), "int64": ("I64", "<i8"), "int32": ("I32", "<i4"), "float64": ("F64", "<f8")}


def save_st(path, tensors, metadata=None):
    """Write a safetensors file deterministically (the safetensors library writes __metadata__ from a hash
    map, so its key order changes from run to run).  Header: compact JSON, raw UTF-8, "__metadata__" first,
    then tensors sorted by name, data in the same order, header padded with spaces to a multiple of 8.
    Metadata values that are not str are JSON-encoded (sorted keys, raw UTF-8)."""
    import numpy as np

    md = {}
    for k, v in sorted((metadata or {}).items()):
        md[k] = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, sort_keys=True)
    header = {"__metadata__": md} if md else {}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        dt, npdt = _DTYPES[str(t.dtype).replace("torch.", "")]
        b = np.ascontiguousarray(t.numpy(), dtype=npdt).tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    # read back with the reference library
    back, md2 = load_st(path)
    assert md2 == md and back.keys() == tensors.keys()
    for k in tensors:
        assert back[k].dtype == tensors[k].dtype and bool((back[k] == tensors[k].detach().cpu()).all()), k


def load_st(path):
    from safetensors import safe_open

    out = {}
    with safe_open(path, "pt") as f:
        for k in f.keys():
            out[k] = f.get_tensor(k)
        md = f.metadata() or {}
    return out, md


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2, sort_keys=True)
        f.write("\n")


def build_delayed(codes, bos=BOS):
    """codes int64 [B,K,F] -> delayed int64 [B,K,F+K] (ARCHITECTURE.md layout:
    step 0 = BOS for all codebooks, codebook k of frame t at step t+1+k,
    BOS everywhere else)."""
    import torch

    B, K, F = codes.shape
    T = F + K
    out = torch.full((B, K, T), bos, dtype=torch.long)
    for k in range(K):
        out[:, k, 1 + k : 1 + k + F] = codes[:, k, :]
    return out


def load_tiny(path=None, attn="eager"):
    import torch
    from transformers import MusicgenForConditionalGeneration

    kw = {} if attn is None else {"attn_implementation": attn}  # None: transformers' default (sdpa where supported)
    model = MusicgenForConditionalGeneration.from_pretrained(path or TINY_DIR, dtype=torch.float32, **kw)
    model.eval()
    return model


def load_tokenizer(path=None):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path or TINY_DIR)
