"""Sharded copy of the tiny model -> tests/fixtures/tiny-musicgen-sharded/

Rebuilds the tiny model (same seed as make_tiny_musicgen.py) and saves it with
`save_pretrained(dir, max_shard_size=MAX_SHARD)` which writes model-00001-of-00002.safetensors,
model-00002-of-00002.safetensors and model.safetensors.index.json exactly as the sharded Hub
checkpoints (musicgen-large, -melody) are laid out.  Config, generation config and tokenizer files are
copied alongside so the folder is a complete model folder.  Verifies that the shards hold exactly the
single-file tensors and that HF loads the folder to the same weights.
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

MAX_SHARD = "3MB"
COPY = ["spiece.model", "tokenizer.json", "tokenizer_config.json", "processor_config.json"]


def main():
    common.setup_determinism()
    import torch

    import make_tiny_musicgen
    import tiny_model

    model = tiny_model.build(make_tiny_musicgen.SEED)
    d = common.SHARDED_DIR
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    model.save_pretrained(d, max_shard_size=MAX_SHARD)
    for f in COPY + ["config.json", "generation_config.json"]:
        if f in ("config.json", "generation_config.json"):
            a = open(os.path.join(common.TINY_DIR, f), "rb").read()
            b = open(os.path.join(d, f), "rb").read()
            assert a == b, f + " differs from the single-file folder"
            continue
        shutil.copy(os.path.join(common.TINY_DIR, f), os.path.join(d, f))
    files = sorted(os.listdir(d))
    shards = [f for f in files if f.startswith("model-") and f.endswith(".safetensors")]
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], files
    index = json.load(open(os.path.join(d, "model.safetensors.index.json")))
    # every tensor of the single file is in exactly one shard, bit-identical
    single, _ = common.load_st(os.path.join(common.TINY_DIR, "model.safetensors"))
    merged = {}
    for s in shards:
        t, md = common.load_st(os.path.join(d, s))
        assert md.get("format") == "pt", md
        for k, v in t.items():
            assert k not in merged
            assert index["weight_map"][k] == s
            merged[k] = v
    assert merged.keys() == single.keys()
    for k in single:
        assert torch.equal(single[k], merged[k]), k
    re = common.load_tiny(d)
    for k, v in re.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in files}
    print("wrote", d, sizes, "index metadata:", index.get("metadata"))


if __name__ == "__main__":
    main()
