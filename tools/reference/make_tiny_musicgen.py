"""Build the tiny random-weight MusicGen checkpoint -> tests/fixtures/tiny-musicgen/

  config.json, generation_config.json, model.safetensors   (MusicgenForConditionalGeneration.save_pretrained)
  spiece.model                                             (train_spm.py)
  tokenizer.json, tokenizer_config.json                    (T5Tokenizer.save_pretrained)
  preprocessor_config.json                                 (MusicgenProcessor.save_pretrained)

`python make_tiny_musicgen.py --search N` re-runs the seed search: it builds the model for seeds
0..N-1, keeps those whose greedy goldens have a top-1/top-2 margin >= LM_MARGIN everywhere, and prints
the one with the most robust EnCodec RVQ decisions.  SEED below is the result, fixed so that
regeneration is fast and deterministic.
"""

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import tiny_model  # noqa: E402

SEED = 6  # chosen by --search 80 (best RVQ margin among seeds with greedy margin >= LM_MARGIN)
LM_MARGIN = 5e-3
MODEL_MAX_LENGTH = 512  # as t5-base's tokenizer_config.json


def build_tokenizer():
    from transformers import T5Tokenizer

    spm_path = os.path.join(common.TINY_DIR, "spiece.model")
    if not os.path.exists(spm_path):
        import train_spm

        train_spm.main()
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(spm_path, os.path.join(d, "spiece.model"))
        tok = T5Tokenizer.from_pretrained(d, model_max_length=MODEL_MAX_LENGTH, extra_ids=tiny_model.EXTRA_IDS)
    assert len(tok) == tiny_model.SPM_VOCAB + tiny_model.EXTRA_IDS, len(tok)
    assert tok.pad_token_id == 0 and tok.eos_token_id == 1 and tok.unk_token_id == 2
    return tok


def score_seed(seed, tok):
    import golden_encodec
    import golden_lm

    model = tiny_model.build(seed)
    _, _, lm = golden_lm.make_generate(model, tok, check=False)
    _, _, rvq = golden_encodec.make(model.audio_encoder)
    return lm, rvq


def search(n):
    tok = build_tokenizer()
    best = None
    for seed in range(n):
        lm, rvq = score_seed(seed, tok)
        ok = lm >= LM_MARGIN
        print(f"seed {seed:3d}: greedy margin {lm:.4g}  rvq margin {rvq:.3g}  {'ok' if ok else 'rejected'}")
        if ok and (best is None or rvq > best[2]):
            best = (seed, lm, rvq)
    print("best:", best)
    return best


def save(seed=SEED):
    import torch
    from transformers import EncodecFeatureExtractor, MusicgenProcessor

    tok = build_tokenizer()
    model = tiny_model.build(seed)
    # clean the folder, keep the trained spiece.model
    os.makedirs(common.TINY_DIR, exist_ok=True)
    for f in os.listdir(common.TINY_DIR):
        if f != "spiece.model":
            p = os.path.join(common.TINY_DIR, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    model.save_pretrained(common.TINY_DIR)
    fe = EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0, chunk_length_s=None,
                                 overlap=None)
    proc = MusicgenProcessor(feature_extractor=fe, tokenizer=tok)
    proc.save_pretrained(common.TINY_DIR)
    tok.save_pretrained(common.TINY_DIR)
    assert os.path.exists(os.path.join(common.TINY_DIR, "spiece.model"))

    # ---- reload checks
    re = common.load_tiny()
    sd0, sd1 = model.state_dict(), re.state_dict()
    assert sd0.keys() == sd1.keys()
    for k in sd0:
        assert torch.equal(sd0[k], sd1[k]), k
    rt = common.load_tokenizer()
    probe = ["90s rock song with loud guitars and heavy drums", "crème brûlée 🎸 音楽", ""]
    assert rt(probe).input_ids == tok(probe).input_ids
    print("wrote", common.TINY_DIR, sorted(os.listdir(common.TINY_DIR)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--search", type=int, default=0, help="search seeds 0..N-1 instead of writing")
    a = ap.parse_args()
    common.setup_determinism()
    if a.search:
        search(a.search)
    else:
        save()


if __name__ == "__main__":
    main()
