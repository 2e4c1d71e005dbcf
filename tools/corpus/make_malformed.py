#!/usr/bin/env python3
"""Writes the safetensors bad-input corpus and the fuzz seed configs (plain Python, no torch).

  tests/corpus/safetensors/bad/*.safetensors   one malformation each
  tests/corpus/safetensors/good/*.safetensors  edge cases that must load (values checked by tests/test_safetensors.c)
  tests/corpus/safetensors/expected.tsv        bad file -> substring of the one-line reason musae must print
  tests/corpus/config/*.json                   seed inputs for tests/fuzz/fuzz_config.c

Deterministic: running it again rewrites identical bytes. The messages in expected.tsv come from
host/io/safetensors.c; each bad file has its own, and tests/test_safetensors.c checks that no other
file's substring matches it. Usage: python3 tools/corpus/make_malformed.py [REPO_ROOT]
"""
import json
import os
import struct
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
ST = os.path.join(ROOT, "tests", "corpus", "safetensors")
CFG = os.path.join(ROOT, "tests", "corpus", "config")


def image(header, data=b"", hlen=None, pad=True):
    """u64 LE header length + header bytes + data. header: dict (dumped compactly), str or bytes."""
    if isinstance(header, dict):
        header = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    if isinstance(header, str):
        header = header.encode("utf-8")
    if pad:  # as the reference writer does: spaces up to a multiple of 8 so data starts aligned
        header += b" " * (-len(header) % 8)
    elif pad is None:  # deliberately misaligned: the data section starts at 8 + hlen = 3 (mod 8)
        header += b" " * ((3 - len(header)) % 8)
    return struct.pack("<Q", len(header) if hlen is None else hlen) + header + data


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


F32x2 = struct.pack("<2f", 1.0, 2.0)  # 8 bytes

# name -> (file bytes, expected substring of the error)
BAD = {
    "truncated": (b"\x10\x00\x00", "truncated: file is 3 bytes"),
    "header_longer_than_file": (image(b"{}", hlen=64, pad=False), "header length 64 is larger than the 2 bytes after the length field"),
    "header_absurd_length": (image(b"{}", hlen=1 << 40, pad=False), "header length 1099511627776 exceeds the 100000000-byte limit"),
    "header_too_short": (image(b"{", pad=False), "header of 1 bytes is too short to be a JSON object"),
    "invalid_json": (image('{"w":{"dtype":"F32","shape":[2],', pad=False), "header is not valid JSON"),
    "header_not_object": (image("[1,2,3]"), "header is not a JSON object (it is a JSON array)"),
    "garbage_after_json": (image(b"{}  xyz", pad=False), "unexpected bytes after the header JSON at byte 4"),
    "entry_not_object": (image({"w": [1, 2]}), "tensor 'w': entry is not an object"),
    "missing_dtype": (image({"w": {"shape": [2], "data_offsets": [0, 8]}}, F32x2), "tensor 'w': missing \"dtype\""),
    "dtype_not_string": (image({"w": {"dtype": 4, "shape": [2], "data_offsets": [0, 8]}}, F32x2), "tensor 'w': \"dtype\" is not a string"),
    "unknown_dtype": (image({"w": t("F12", [2], 0, 8)}, F32x2), "tensor 'w': unknown dtype \"F12\""),
    "missing_shape": (image({"w": {"dtype": "F32", "data_offsets": [0, 8]}}, F32x2), "tensor 'w': missing \"shape\""),
    "shape_not_array": (image({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, F32x2), "tensor 'w': \"shape\" is not an array"),
    "negative_dim": (image({"w": t("F32", [2, -3], 0, 8)}, F32x2), "tensor 'w': shape[1] is negative (-3)"),
    "non_integer_dim": (image({"w": t("F32", [2.5], 0, 8)}, F32x2), "tensor 'w': shape[0] is not an integer (2.5)"),
    "dim_not_number": (image({"w": t("F32", ["2"], 0, 8)}, F32x2), "tensor 'w': shape[0] is not a number"),
    "dim_too_large": (image({"w": t("F32", [1e20], 0, 8)}, F32x2), "tensor 'w': shape[0] is above 2^53 (1e+20)"),
    "rank_too_large": (image({"w": t("F32", [1] * 9, 0, 4)}, F32x2[:4]), "tensor 'w': rank 9 exceeds the supported 8"),
    "shape_product_overflow": (image({"w": t("F32", [1 << 32, 1 << 32, 1 << 32], 0, 0)}), "tensor 'w': shape product overflows"),
    "shape_bytes_overflow": (image({"w": t("F64", [1 << 31, 1 << 31], 0, 0)}), "tensor 'w': shape x dtype size overflows"),
    "missing_data_offsets": (image({"w": {"dtype": "F32", "shape": [2]}}, F32x2), "tensor 'w': missing \"data_offsets\""),
    "data_offsets_not_pair": (image({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8]}}, F32x2), "tensor 'w': \"data_offsets\" is not an array [begin, end]"),
    "data_offsets_negative": (image({"w": {"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}}, F32x2), "tensor 'w': data_offsets[0] is negative (-8)"),
    "end_before_begin": (image({"w": t("F32", [2], 8, 0)}, F32x2), "tensor 'w': data_offsets end 0 is before begin 8"),
    "shape_dtype_mismatch": (image({"w": t("F32", [2, 2], 0, 12)}, F32x2 + F32x2[:4]), "tensor 'w': shape [2, 2] x F32 (4 B) needs 16 bytes but data_offsets span 12"),
    "span_past_end": (image({"w": t("F32", [4], 0, 16)}, F32x2), "tensor 'w': data_offsets [0, 16] run past the end of the data section (8 bytes)"),
    "overlapping_spans": (image({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, F32x2 + F32x2[:4]), "tensor 'b': data_offsets [4, 12] overlap another tensor's bytes"),
    "gap_between_spans": (image({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 12, 20)}, F32x2 * 3)[:-4], "tensor 'b': gap of 4 unused bytes before its data_offsets [12, 20]"),
    "trailing_bytes": (image({"a": t("F32", [2], 0, 8)}, F32x2 + b"\0" * 4), "4 trailing bytes after the last tensor"),
    # the same key twice in the JSON text (a dict cannot hold that, so the text is written out)
    "duplicate_name": (image('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                             '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', F32x2),
                       "tensor 'w' is defined twice in the header"),
    "metadata_not_object": (image({"__metadata__": ["pt"], "a": t("F32", [2], 0, 8)}, F32x2), "__metadata__ is not an object"),
    "metadata_non_string": (image({"__metadata__": {"epoch": 3}, "a": t("F32", [2], 0, 8)}, F32x2), "__metadata__ value of 'epoch' is not a string"),
    "metadata_twice": (image('{"__metadata__":{"format":"pt"},"__metadata__":{"step":"1"},'
                             '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32x2),
                       "__metadata__ appears twice in the header"),
    "metadata_duplicate_key": (image('{"__metadata__":{"format":"pt","format":"np"},'
                                     '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F32x2),
                               "__metadata__ key 'format' appears twice"),
    "empty_name": (image({"": t("F32", [2], 0, 8)}, F32x2), "a tensor has an empty name"),
}

# ---- good files: every value is exact in every float type it is stored in, so tests compare exactly ----
FLOATS = [1.0, -2.0, 0.5, -0.25, 3.0, 1024.0]  # [2, 3]
I32S = [1, -2, 3, -4, 2147483647, -2147483648]
I64S = [1, -2, 3, -4, 5, -6]
I64_BIG = [1 << 40, -(1 << 40)]


def bf16(x):
    return struct.pack("<I", struct.unpack("<I", struct.pack("<f", x))[0])[2:]


def build(tensors, meta=None, pad=True):
    """tensors: list of (name, dtype, shape, bytes) laid out in order."""
    hdr, data = {}, b""
    if meta is not None:
        hdr["__metadata__"] = meta
    for name, dt, shape, raw in tensors:
        hdr[name] = t(dt, shape, len(data), len(data) + len(raw))
        data += raw
    return image(hdr, data, pad=pad)


GOOD = {
    "empty_header": image("{}"),
    "zero_size": build([
        ("empty", "F32", [0, 3], b""),
        ("scalar", "F32", [], struct.pack("<f", 7.5)),
        ("big", "I64", [2], struct.pack("<2q", *I64_BIG)),
        ("empty_end", "F16", [4, 0], b""),
    ]),
    # misaligned data section, so the reader's unaligned-copy path is exercised
    "all_dtypes": build([
        ("f32", "F32", [2, 3], struct.pack("<6f", *FLOATS)),
        ("f16", "F16", [2, 3], struct.pack("<6e", *FLOATS)),
        ("bf16", "BF16", [2, 3], b"".join(bf16(x) for x in FLOATS)),
        ("f64", "F64", [2, 3], struct.pack("<6d", *FLOATS)),
        ("i32", "I32", [2, 3], struct.pack("<6i", *I32S)),
        ("i64", "I64", [2, 3], struct.pack("<6q", *I64S)),
        ("bool", "BOOL", [2], b"\x01\x00"),
        ("u8", "U8", [2], b"\x01\xff"),
        ("i8", "I8", [2], b"\x01\xff"),
        ("i16", "I16", [2], struct.pack("<2h", 1, -1)),
        ("u16", "U16", [2], struct.pack("<2H", 1, 65535)),
        ("u32", "U32", [2], struct.pack("<2I", 1, 1 << 31)),
        ("u64", "U64", [2], struct.pack("<2Q", 1, 1 << 63)),
        ("f8_e4m3", "F8_E4M3", [2], b"\x38\xb8"),
        ("f8_e5m2", "F8_E5M2", [2], b"\x3c\xbc"),
    ], pad=None),
    "metadata": build([("w", "F32", [2], F32x2)],
                      meta={"format": "pt", "note": "caf\u00e9 \u2713", "empty": ""}),
}

CONFIGS = {
    "minimal.json": {"model_type": "musicgen", "decoder": {}},
    "tiny.json": {
        "model_type": "musicgen",
        "decoder": {"vocab_size": 2048, "num_hidden_layers": 2, "hidden_size": 32, "num_attention_heads": 4,
                    "ffn_dim": 128, "num_codebooks": 4, "max_position_embeddings": 2048,
                    "activation_function": "gelu", "audio_channels": 1, "scale_embedding": False},
        "text_encoder": {"model_type": "t5", "vocab_size": 1152, "d_model": 24, "d_kv": 8, "d_ff": 64,
                         "num_layers": 2, "num_heads": 4, "feed_forward_proj": "relu"},
        "audio_encoder": {"model_type": "encodec", "sampling_rate": 32000, "codebook_size": 2048,
                          "upsampling_ratios": [8, 5, 4, 4], "target_bandwidths": [2.2], "num_filters": 4,
                          "hidden_size": 16, "audio_channels": 1},
    },
    "melody.json": {"model_type": "musicgen_melody", "decoder": {}},
    "bad_types.json": {"model_type": "musicgen", "decoder": {"hidden_size": "32", "num_codebooks": 4.5}},
    "gated.json": {"model_type": "musicgen", "decoder": {"hidden_size": 30, "num_attention_heads": 4},
                   "text_encoder": {"feed_forward_proj": "gated-gelu"}},
}


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    for sub in ("bad", "good"):
        d = os.path.join(ST, sub)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):  # stale cases from an older version of this script
            if f.endswith(".safetensors"):
                os.remove(os.path.join(d, f))
    lines = ["# bad file\tsubstring of the error musae must print (written by tools/corpus/make_malformed.py)"]
    for name, (data, msg) in BAD.items():
        write(os.path.join(ST, "bad", name + ".safetensors"), data)
        lines.append(f"{name}.safetensors\t{msg}")
    write(os.path.join(ST, "expected.tsv"), ("\n".join(lines) + "\n").encode())
    for name, data in GOOD.items():
        write(os.path.join(ST, "good", name + ".safetensors"), data)
    for name, obj in CONFIGS.items():
        write(os.path.join(CFG, name), (json.dumps(obj, indent=2) + "\n").encode())
    print(f"{len(BAD)} bad, {len(GOOD)} good safetensors files, {len(CONFIGS)} configs under {os.path.normpath(ROOT)}/tests/corpus")


if __name__ == "__main__":
    main()
