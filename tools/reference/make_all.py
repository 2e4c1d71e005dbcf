"""Regenerate every fixture under tests/fixtures/ and write tests/fixtures/MANIFEST.json.

    python tools/reference/make_all.py            # regenerate + manifest
    python tools/reference/make_all.py --check    # regenerate, then fail if any sha256 differs from
                                                  # the MANIFEST.json that was there before

Each step runs in a fresh interpreter (PYTHONHASHSEED=0, torch single-threaded, fixed seeds), so a re-run
produces byte-identical files on the same software versions.  Neither the C build nor the tests need
any of this.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

# (script, outputs relative to tests/fixtures/ -- a trailing "/" means every file of that folder)
STEPS = [
    ("train_spm.py", ["tiny-musicgen/spiece.model"]),
    ("make_tiny_musicgen.py", ["tiny-musicgen/"]),
    ("make_sharded.py", ["tiny-musicgen-sharded/"]),
    ("golden_t5.py", ["golden/t5.safetensors", "golden/t5_prompts.json"]),
    ("golden_lm.py", ["golden/lm_forward_uncond.safetensors", "golden/lm_forward_text.safetensors",
                      "golden/lm_generate.safetensors"]),
    ("golden_encodec.py", ["golden/encodec.safetensors"]),
    ("make_encodec32k_hash.py", ["encodec32k-hash/", "golden/encodec32k_hash.safetensors"]),
    ("t5_extra.py", ["golden/t5_extra_gated.safetensors", "golden/t5_extra_tokens.safetensors"]),
    ("lm_extra.py", ["golden/lm_extra_forward20.safetensors"]),
    ("encodec_extra.py", ["golden/encodec_extra_constant.safetensors", "golden/encodec_extra_shortcut.safetensors"]),
    ("sae_step.py", ["golden/sae_step.safetensors"]),
    ("golden_steer.py", ["golden/steer_generate.safetensors", "sae/steer_tiny/cfg.json", "sae/steer_tiny/musae.json",
                         "sae/steer_tiny/sae.safetensors"]),
    ("make_clap.py", ["tiny-clap/", "tiny-clap-bin/", "golden/clap_tokens.json", "golden/clap_tiny.safetensors",
                      "golden/clap_fe48k.safetensors"]),
    # needs the eai-sparsify wheel (see requirements.txt); run with the "fixture" mode
    ("sae_sparsify.py fixture", ["sae/"]),
]
MAX_TOTAL_BYTES = 20 * 1024 * 1024


def script_of(rel):
    owner = None
    for script, outs in STEPS:
        for o in outs:
            if rel == o or (o.endswith("/") and rel.startswith(o)):
                if owner is None or rel == o:  # exact match wins over folder match
                    owner = script
    return owner


def manifest():
    files = {}
    for root, _, names in os.walk(common.FIXTURES):
        for n in names:
            p = os.path.join(root, n)
            rel = os.path.relpath(p, common.FIXTURES).replace(os.sep, "/")
            if rel == "MANIFEST.json":
                continue
            s = script_of(rel)
            assert s is not None, f"fixture {rel} has no generating script"
            files[rel] = {"script": "tools/reference/" + s.split()[0], "sha256": common.sha256_file(p),
                          "bytes": os.path.getsize(p)}
    total = sum(f["bytes"] for f in files.values())
    m = {
        "generated_by": "python tools/reference/make_all.py",
        "versions": common.versions(),
        "total_bytes": total,
        "files": dict(sorted(files.items())),
    }
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="fail if regenerated files differ from MANIFEST.json")
    ap.add_argument("--manifest-only", action="store_true", help="only rewrite MANIFEST.json for the files present")
    a = ap.parse_args()
    man_path = os.path.join(common.FIXTURES, "MANIFEST.json")
    if a.manifest_only:
        m = manifest()
        assert m["total_bytes"] < MAX_TOTAL_BYTES, f"fixtures too large: {m['total_bytes']} bytes"
        common.write_json(man_path, m)
        print(f"wrote {man_path}: {len(m['files'])} files, {m['total_bytes'] / 1e6:.2f} MB")
        return
    before = json.load(open(man_path)) if os.path.exists(man_path) else None

    # start clean: everything below is regenerated
    for d in ("golden", "encodec32k-hash", "tiny-musicgen", "tiny-musicgen-sharded", "sae", "tiny-clap", "tiny-clap-bin"):
        shutil.rmtree(os.path.join(common.FIXTURES, d), ignore_errors=True)
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for script, _ in STEPS:
        t0 = time.time()
        print(f"== {script}", flush=True)
        name, *args = script.split()
        subprocess.run([sys.executable, os.path.join(HERE, name), *args], check=True, env=env)
        print(f"   {time.time() - t0:.1f} s", flush=True)

    m = manifest()
    assert m["total_bytes"] < MAX_TOTAL_BYTES, f"fixtures too large: {m['total_bytes']} bytes"
    common.write_json(man_path, m)
    print(f"wrote {man_path}: {len(m['files'])} files, {m['total_bytes'] / 1e6:.2f} MB")

    if a.check:
        if before is None:
            sys.exit("--check: no previous MANIFEST.json to compare with")
        bad = [k for k in set(before["files"]) | set(m["files"])
               if before["files"].get(k, {}).get("sha256") != m["files"].get(k, {}).get("sha256")]
        if bad:
            sys.exit("--check: regenerated fixtures differ: " + ", ".join(sorted(bad)))
        print("--check: all fixtures byte-identical to the previous MANIFEST.json")


if __name__ == "__main__":
    main()
