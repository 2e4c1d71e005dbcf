"""CLAP at the size of laion/larger_clap_music with random weights: make the model (once), then embed the
same clips and texts with HF transformers' ClapModel and print the timings and the embeddings' path.

    python bench/clap_peer.py make MODEL_DIR
    python bench/clap_peer.py run MODEL_DIR CLIPS_DIR OUT.safetensors --threads N --texts-file T

The folder has the layout of the real checkpoint; its tokenizer files are the tiny fixture's (580 ids, well
inside vocab_size 50265), which changes nothing about the encoder's cost at 77 tokens or less."""
import argparse
import json
import math
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "reference"))


def make(out):
    import torch
    from transformers import ClapConfig, ClapModel

    from make_clap import init_weights

    torch.manual_seed(0)
    cfg = ClapConfig(
        text_config=dict(vocab_size=50265, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                         intermediate_size=3072, max_position_embeddings=514, layer_norm_eps=1e-5),
        audio_config=dict(num_mel_bins=64, spec_size=256, window_size=8, patch_size=4, patch_stride=[4, 4],
                          patch_embeds_hidden_size=128, depths=[2, 2, 12, 2], num_attention_heads=[4, 8, 16, 32],
                          hidden_size=1024, mlp_ratio=4.0),
        projection_dim=512)
    model = ClapModel(cfg).eval()
    init_weights(model, seed=5)
    model.save_pretrained(out)
    tiny = os.path.join(REPO, "tests", "fixtures", "tiny-clap")
    for f in ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(tiny, f), out)
    with open(os.path.join(out, "preprocessor_config.json"), "w") as f:
        json.dump({"feature_extractor_type": "ClapFeatureExtractor", "feature_size": 64, "fft_window_size": 1024,
                   "frequency_max": 14000, "frequency_min": 50, "hop_length": 480, "max_length_s": 10,
                   "padding": "repeatpad", "sampling_rate": 48000, "top_db": None, "truncation": "rand_trunc"}, f)
    print(f"made {out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")


def run(a):
    import soundfile as sf
    import torch
    from transformers import ClapFeatureExtractor, ClapModel, RobertaTokenizer

    from common import save_st

    torch.set_num_threads(a.threads)
    model = ClapModel.from_pretrained(a.model).eval()
    fe = ClapFeatureExtractor.from_pretrained(a.model)
    tok = RobertaTokenizer.from_pretrained(a.model)
    clips = sorted(os.path.join(a.clips, f) for f in os.listdir(a.clips) if f.endswith(".wav"))
    texts = [l.rstrip("\n") for l in open(a.texts_file, encoding="utf-8")]
    waves = []
    for c in clips:
        x, sr = sf.read(c, dtype="float32")
        assert sr == 48000 and x.ndim == 1, c
        waves.append(x[: fe.nb_max_samples])  # musae's deterministic crop (these clips are <= 10 s anyway)
    with torch.no_grad():
        # warm-up (first-call allocations, oneDNN/MKL initialisation) outside the timing, on one clip and text
        w1 = fe(waves[:1], sampling_rate=48000, return_tensors="pt")
        model.get_audio_features(input_features=w1["input_features"])
        w1 = tok(texts[:1], padding="max_length", truncation=True, max_length=77, return_tensors="pt")
        model.get_text_features(input_ids=w1["input_ids"], attention_mask=w1["attention_mask"])
        t0 = time.perf_counter()
        feats = fe(waves, sampling_rate=48000, return_tensors="pt")
        a_emb = model.get_audio_features(input_features=feats["input_features"]).pooler_output
        t_audio = time.perf_counter() - t0
        t0 = time.perf_counter()
        tin = tok(texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
        t_emb = model.get_text_features(input_ids=tin["input_ids"], attention_mask=tin["attention_mask"]).pooler_output
        t_text = time.perf_counter() - t0
        logits = t_emb @ a_emb.t() * model.logit_scale_t.exp()
    save_st(a.out, {"audio_embeds": a_emb.float().contiguous(), "text_embeds": t_emb.float().contiguous(),
                    "logits_per_text": logits.float().contiguous()})
    print(json.dumps({"peer": "transformers", "threads": a.threads, "clips": len(clips), "texts": len(texts),
                      "audio_s": round(t_audio, 3), "text_s": round(t_text, 3),
                      "clips_per_s": round(len(clips) / t_audio, 3), "texts_per_s": round(len(texts) / t_text, 2)}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["make", "run"])
    ap.add_argument("model")
    ap.add_argument("clips", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--texts-file")
    a = ap.parse_args()
    make(a.model) if a.cmd == "make" else run(a)
