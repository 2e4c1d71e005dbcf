"""Tiny random-weight CLAP (HF ClapModel) in the layout of laion/larger_clap_music, plus goldens.

Writes tests/fixtures/tiny-clap/ (what `ClapModel.save_pretrained` + `ClapProcessor.save_pretrained` write:
config.json, model.safetensors, preprocessor_config.json, vocab.json, merges.txt, tokenizer.json,
tokenizer_config.json) and tests/fixtures/golden/clap_*.

Sizes are odd on purpose, so a transposed or mis-strided tensor cannot pass:
  text:  RoBERTa, hidden 24, 3 heads (head dim 8), 2 layers, ffn 40, vocab from a byte-level BPE trained
         here (~600 tokens), max_position_embeddings 80 (77 + padding_idx + 1 = 79 needed).
  audio: HTSAT with 16 mel bins, spec_size 48 (freq_ratio 3: time 101 -> 144 bicubic, folded into a 48x48
         image), patch 4 -> 12x12 tokens, window 3 (shift 1), 3 stages dims 8/16/32, heads 2/2/4,
         depths 2/2/2: stage 3 is 3x3 = one window, so its odd block loses its shift as in the real model.
  projection_dim 20, logit_scale_a != logit_scale_t.
  preprocessor: 16 kHz, 1 s, fft 256, hop 160 (101 frames), fmin 50, fmax 7000, rand_trunc, repeatpad.

Goldens:
  golden/clap_tokens.json          >= 200 strings and their ids/mask at max_length 77 (padding "max_length",
                                   truncation), as ClapProcessor / RobertaTokenizer give them.
  golden/clap_tiny.safetensors     waveforms (16 kHz), input_features, audio/text embeddings, logits.
  golden/clap_fe48k.safetensors    the real front-end config (48 kHz, 10 s, 64 mels, 50-14000 Hz, fft 1024,
                                   hop 480) on a 0.5 s clip (repeat-padded); every 4th frame is stored.
Inputs longer than max_length: musae takes the FIRST max_length samples (HF crops at random); the goldens
for such inputs are HF's features of that crop.
"""

import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

OUT = os.path.join(common.FIXTURES, "tiny-clap")
BIN_DIR = os.path.join(common.FIXTURES, "tiny-clap-bin")
MAXLEN = 77


def corpus():
    """Text the BPE is trained on: English music captions plus unicode, so merges exist inside multi-byte
    characters too."""
    words = ("a calm piano melody with soft strings and a slow tempo; upbeat electronic dance track with heavy "
             "bass drums synth pads; rock guitar riff distorted energetic live recording; jazz saxophone solo "
             "swing rhythm double bass brushes; ambient drone texture reverb; hip-hop beat with vinyl crackle "
             "it's they're we've I'm you'll he'd the band's 1990s 120 bpm 4/4 C# minor").split()
    extra = ["café", "naïve", "Ünïcödé", "日本の音楽", "音楽", "Музыка", "موسيقى", "🎵🎶", "🎸", "ピアノ", "über", "ß"]
    rng = random.Random(1)
    lines = []
    for _ in range(3000):
        n = rng.randint(3, 12)
        lines.append(" ".join(rng.choice(words + extra) for _ in range(n)))
    return lines


def train_tokenizer(tmp):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, min_frequency=2, show_progress=False,
                                  special_tokens=["<s>", "<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    model = json.loads(tok.to_str())["model"]
    vocab = dict(model["vocab"])
    vocab["<mask>"] = len(vocab)  # last, as in roberta-base (50264)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    os.makedirs(tmp, exist_ok=True)
    with open(os.path.join(tmp, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(tmp, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return len(vocab)


def test_strings():
    """>= 200 strings: hand-picked edge cases, then seeded random mixes."""
    s = [
        "", " ", "  ", "\t", "\n", " \n ", "a", "A", "hello world", " hello world", "hello  world",
        "hello world ", "hello world  ", "hello\tworld", "hello\n\nworld", "  leading", "trailing  ",
        "it's", "It'S", "they're we've I'm you'll he'd", "'s 't 're 've 'm 'll 'd", "don't stop",
        "rock'n'roll", "' s", "''", "a calm piano melody with soft strings", "upbeat electronic dance track",
        "120 bpm", "1990s", "12345678901234567890", "3.14159", "C# minor", "4/4 time", "$100", "100%",
        "e-mail", "snake_case", "CamelCase", "ALLCAPS", "x=1+2*3", "a.b,c;d:e!f?g", "(parens) [brackets] {braces}",
        "\"quoted\"", "back\\slash", "tab\there", "mixed 123abc abc123", "..." , "!!!", "?!?!",
        "café", "naïve", "Ünïcödé", "über", "straße", "ß", "日本の音楽", "音楽 と ピアノ", "Музыка", "موسيقى",
        "עברית", "हिन्दी", "ไทย", "한국어", "Ελληνικά", "e\u0301", "a\u0308o\u0308", "\u00a0nbsp", "x\u00a0y",
        "x\u2003y", "x\u3000y", "x\u2028y", "x\u0085y", "x\u200by", "x\u200dy", "\ufeffbom", "²³", "Ⅻ", "١٢٣",
        "½", "x²", "🎵", "🎵🎶", "🎸 guitar", "👨‍👩‍👧‍👦", "🇯🇵", "👍🏽", "❤️", "🎹🎹🎹", "a🎵b", " 🎵 ",
        "<s>", "</s>", "<pad>", "<unk>", "<mask>", " <mask>", "a<mask>b", "a <mask> b", "<s>hello</s>",
        "  <mask>", "<mask><mask>", "<mas k>", "<S>", "\x00", "\x7f", "\x1b[0m", "\r\n", "a\rb",
        "word " * 40, "x" * 300, "🎵" * 60, "a b " * 50, "supercalifragilisticexpialidocious",
        "The quick brown fox jumps over the lazy dog. " * 3,
        "ambient drone texture reverb, ambient drone texture reverb; ambient drone texture reverb!",
    ]
    pieces = ["piano", " piano", "Piano", "'s", "'ll", " ", "  ", "\n", "\t", "123", " 45", "é", "ü", "日本",
              "ピアノ", "🎵", "🎸", "!", "?!", ",", ".", "-", "—", "…", "“", "”", "«", "»", "\u00a0", "\u3000",
              "bass", "drums", "synth", "x", "Z", "<mask>", "<s>", "½", "²", "\u0301", "ß", "Ω", "ж", "ع"]
    rng = random.Random(7)
    while len(s) < 230:
        n = rng.randint(1, 25)
        s.append("".join(rng.choice(pieces) for _ in range(n)))
    return s


def init_weights(model, seed=3):
    """Every float parameter and buffer from one seeded generator: matrices N(0, 1/fan_in), LayerNorm and
    BatchNorm affine 1+N(0,0.04) / N(0,0.05), biases N(0,0.05), BatchNorm running stats varied (var in
    [0.5, 2]), relative-position tables N(0, 0.5) so the bias matters, embeddings N(0, 1)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    sd = model.state_dict()
    with torch.no_grad():
        for name, t in sorted(sd.items()):
            if not t.is_floating_point():
                continue
            shape = t.shape
            if name.endswith("running_var"):
                v = 0.5 + 1.5 * torch.rand(shape, generator=g)
            elif name.endswith("running_mean"):
                v = torch.randn(shape, generator=g) * 3.0 - 20.0  # log-mel dB scale
            elif "relative_position_bias_table" in name:
                v = torch.randn(shape, generator=g) * 0.5
            elif "logit_scale" in name:
                v = torch.tensor(math.log(10.0) if name.endswith("_a") else math.log(14.0))
            elif name.endswith("weight") and t.dim() == 1:
                v = 1.0 + 0.2 * torch.randn(shape, generator=g)
            elif t.dim() == 1:
                v = 0.05 * torch.randn(shape, generator=g)
            elif "embeddings" in name:
                v = torch.randn(shape, generator=g)
            else:
                fan_in = t[0].numel()
                v = torch.randn(shape, generator=g) / math.sqrt(fan_in)
            t.copy_(v.to(t.dtype))


def save_torch_bin(state_dict, path):
    """torch.save of the state_dict, as laion/clap-htsat-unfused ships it (pytorch_model.bin). torch writes a
    random `.data/serialization_id`; it is overwritten with zeros (CRC32 fixed in both zip headers) so the
    fixture is byte-identical from run to run. Everything else is torch's own bytes."""
    import struct
    import zipfile
    import zlib

    import torch

    torch.save(state_dict, path)
    data = bytearray(open(path, "rb").read())
    with zipfile.ZipFile(path) as z:
        infos = {i.filename: i for i in z.infolist()}
    name = next(n for n in infos if n.endswith("/.data/serialization_id"))
    info = infos[name]
    lh = info.header_offset
    nlen, xlen = struct.unpack("<HH", bytes(data[lh + 26:lh + 30]))
    start = lh + 30 + nlen + xlen
    new = b"0" * info.file_size
    data[start:start + info.file_size] = new
    crc = zlib.crc32(new) & 0xFFFFFFFF
    struct.pack_into("<I", data, lh + 14, crc)
    enc = name.encode()
    cd = data.find(b"PK\x01\x02", 0)
    while cd >= 0:
        n = struct.unpack("<H", bytes(data[cd + 28:cd + 30]))[0]
        if bytes(data[cd + 46:cd + 46 + n]) == enc:
            struct.pack_into("<I", data, cd + 16, crc)
            break
        cd = data.find(b"PK\x01\x02", cd + 4)
    with open(path, "wb") as f:
        f.write(data)
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # every CRC right
    back = torch.load(path, weights_only=True)
    assert back.keys() == state_dict.keys() and all(torch.equal(back[k], state_dict[k]) for k in back)


def signal(n, sr, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    f = rng.uniform(100, sr / 4, 3)
    x = sum(0.2 * np.sin(2 * np.pi * fi * t + rng.uniform(0, 6)) for fi in f)
    x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.7 * t)) + 0.05 * rng.standard_normal(n)
    return x.astype(np.float32)


def main():
    common.setup_determinism(0)
    import numpy as np
    import torch
    from transformers import AddedToken, ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer

    os.makedirs(OUT, exist_ok=True)
    n_vocab = train_tokenizer(OUT)
    with open(os.path.join(OUT, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    with open(os.path.join(OUT, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(line.rstrip("\n").split(" ")) for line in f if not line.startswith("#version")]
    # roberta-base's <mask> strips the whitespace before it (lstrip); the other specials do not
    tok = RobertaTokenizer(vocab=vocab, merges=merges, mask_token=AddedToken("<mask>", lstrip=True, rstrip=False),
                           model_max_length=512)
    fe = ClapFeatureExtractor(feature_size=16, sampling_rate=16000, hop_length=160, max_length_s=1,
                              fft_window_size=256, frequency_min=50, frequency_max=7000, truncation="rand_trunc",
                              padding="repeatpad")
    # the files of a laion checkpoint: tokenizer files and preprocessor_config.json (not processor_config.json)
    tok.save_pretrained(OUT)
    fe.save_pretrained(OUT)

    cfg = ClapConfig(
        text_config=dict(vocab_size=n_vocab, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                         intermediate_size=40, max_position_embeddings=80, hidden_act="gelu", layer_norm_eps=1e-5),
        audio_config=dict(num_mel_bins=16, spec_size=48, window_size=3, patch_size=4, patch_stride=[4, 4],
                          patch_embeds_hidden_size=8, depths=[2, 2, 2], num_attention_heads=[2, 2, 4],
                          hidden_size=32, mlp_ratio=2.0, num_classes=5),
        projection_dim=20)
    model = ClapModel(cfg).eval()
    init_weights(model)
    model.save_pretrained(OUT)
    # only what the HF folder of a real checkpoint holds
    for extra in ("special_tokens_map.json", "processor_config.json"):
        p = os.path.join(OUT, extra)
        if os.path.exists(p):
            os.remove(p)

    # reload exactly as a user would, from the folder
    model = ClapModel.from_pretrained(OUT).eval()
    # the same weights as torch.save's zip (clap-htsat-unfused ships only pytorch_model.bin)
    os.makedirs(BIN_DIR, exist_ok=True)
    save_torch_bin(model.state_dict(), os.path.join(BIN_DIR, "pytorch_model.bin"))
    proc = ClapProcessor.from_pretrained(OUT)

    # ---- tokenizer golden ----
    strings = test_strings()
    enc = proc.tokenizer(strings, padding="max_length", truncation=True, max_length=MAXLEN)
    cases = [{"text": s, "ids": ids, "mask": m} for s, ids, m in zip(strings, enc["input_ids"], enc["attention_mask"])]
    assert all(len(c["ids"]) == MAXLEN for c in cases)
    # one case per line, ids without the padding (the mask says how many are real; the rest are <pad>)
    with open(os.path.join(common.GOLDEN_DIR, "clap_tokens.json"), "w", encoding="utf-8") as f:
        f.write('{"max_length": %d, "pad_id": %d, "script": "tools/reference/make_clap.py", "cases": [\n'
                % (MAXLEN, proc.tokenizer.pad_token_id))
        # "utf8": the text's bytes in hex, for readers whose JSON strings stop at U+0000
        rows = [json.dumps({"text": c["text"], "utf8": c["text"].encode("utf-8").hex(),
                            "ids": c["ids"][: sum(c["mask"])]}, ensure_ascii=False)
                for c in cases]
        f.write(",\n".join(rows) + "\n]}\n")
    assert all(c["ids"][sum(c["mask"]):] == [proc.tokenizer.pad_token_id] * (MAXLEN - sum(c["mask"])) for c in cases)

    # ---- model golden ----
    sr = fe.sampling_rate
    lens = [5923, 16000, 25601]  # repeat-padded, exact, longer (musae: first 16000 samples)
    waves = [signal(n, sr, 10 + i) for i, n in enumerate(lens)]
    cropped = [w[: fe.nb_max_samples] for w in waves]
    feats = proc.feature_extractor(cropped, sampling_rate=sr, return_tensors="pt")
    texts = ["a calm piano melody", "upbeat electronic dance track with heavy bass", "🎸 rock guitar riff",
             ""]
    tin = proc.tokenizer(texts, padding="max_length", truncation=True, max_length=MAXLEN, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=tin["input_ids"], attention_mask=tin["attention_mask"],
                    input_features=feats["input_features"], is_longer=feats["is_longer"])
        tout = model.text_model(input_ids=tin["input_ids"], attention_mask=tin["attention_mask"])
        aout = model.audio_model(input_features=feats["input_features"])
    t = {
        "input_features": feats["input_features"].float(),
        "input_ids": tin["input_ids"].long(),
        "attention_mask": tin["attention_mask"].long(),
        "audio_embeds": out.audio_embeds.float(),
        "text_embeds": out.text_embeds.float(),
        "logits_per_text": out.logits_per_text.float(),
        "text_pooler": tout.pooler_output.float(),
        "text_last_hidden": tout.last_hidden_state.float(),
        "audio_pooler": aout.pooler_output.float(),
    }
    for i, w in enumerate(waves):
        t[f"wave{i}"] = torch.from_numpy(w)
    common.save_st(os.path.join(common.GOLDEN_DIR, "clap_tiny.safetensors"), t,
                   {"texts": texts, "sample_rate": str(sr), "script": "tools/reference/make_clap.py"})

    # ---- the real front end (laion/larger_clap_music's preprocessor_config.json values) ----
    fe48 = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=10,
                                fft_window_size=1024, frequency_min=50, frequency_max=14000,
                                truncation="rand_trunc", padding="repeatpad")
    w48 = signal(24007, 48000, 99)
    f48 = fe48(w48, sampling_rate=48000, return_tensors="pt")["input_features"][0, 0]
    assert f48.shape == (1001, 64)
    common.save_st(os.path.join(common.GOLDEN_DIR, "clap_fe48k.safetensors"),
                   {"wave": torch.from_numpy(w48), "features_every4": f48[::4].contiguous().float()},
                   {"frame_stride": "4", "script": "tools/reference/make_clap.py"})
    print(f"tiny-clap: vocab {n_vocab}, {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(cases)} token cases")


if __name__ == "__main__":
    main()
