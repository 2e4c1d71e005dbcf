"""Tokenizer + T5 encoder goldens -> golden/t5.safetensors, golden/t5_prompts.json

t5.safetensors:
  ids          i64 [P, Lmax]  HF T5Tokenizer (tokenizers backend, tokenizer.json; in transformers 5.x
                              T5TokenizerFast is the same class) ids incl. the final </s>, right-padded with 0
  lengths      i64 [P]
  spm_ids      i64 [P, Lmax2] sentencepiece.SentencePieceProcessor(spiece.model).encode(text) + [</s>=1]
  spm_lengths  i64 [P]
  enc.input_ids i64 [3,S], enc.attention_mask i64 [3,S]   3 prompts, right padded
  enc.embeddings f32 [3,S,24]      shared[input_ids]
  enc.block_out.<j> f32 [3,S,24]   residual stream after T5 block j (no final norm)
  enc.last_hidden_state f32 [3,S,24]  T5 encoder output (final RMS norm applied)
  enc.projected f32 [3,S,32]       enc_to_dec_proj(last_hidden_state) * attention_mask[..., None]
t5_prompts.json: the exact prompt strings (row order of ids), category, and per-prompt notes
(HF vs sentencepiece disagreements, unk counts).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import torch  # noqa: E402

LONG_700 = ("An epic cinematic orchestral piece that begins with soft strings and a gentle piano melody, "
            "slowly building with french horns, timpani rolls and a choir, then exploding into a powerful "
            "climax with brass fanfares, thunderous percussion and soaring violins, before fading out into a "
            "quiet, melancholic outro with a solo cello. ") * 2
LONG_2600 = ("dreamy lo-fi hip hop beat with warm vinyl crackle, mellow rhodes chords, soft boom bap drums, "
             "a deep round bass line and rain sounds in the background, perfect for studying at night; ") * 14

PROMPTS = [
    # ascii
    ("ascii", "90s rock song with loud guitars and heavy drums"),
    ("ascii", "80s pop track with bassy drums and synth"),
    ("ascii", "lo-fi hip hop beat for studying"),
    ("ascii", "A cheerful country song with acoustic guitars"),
    ("ascii", "Epic orchestral music for a movie trailer"),
    ("ascii", "techno"),
    ("ascii", "a"),
    ("ascii", "drum and bass at 174 bpm"),
    ("ascii", "the quick brown fox jumps over the lazy dog"),
    ("ascii", "Supercalifragilisticexpialidocious"),
    ("ascii", "UPPERCASE ROCK SONG"),
    ("ascii", "MiXeD CaSe TeChNo"),
    # empty / whitespace only
    ("empty", ""),
    ("whitespace", " "),
    ("whitespace", "   "),
    ("whitespace", "\t"),
    ("whitespace", "\n"),
    # spaces
    ("spaces", "  leading spaces"),
    ("spaces", "trailing spaces   "),
    ("spaces", "multiple    inner     spaces"),
    ("spaces", " both ends "),
    ("spaces", "\u3000ideographic space\u3000"),
    ("spaces", "no\u00a0break\u00a0space"),
    ("spaces", "zero\u200bwidth space"),
    # newlines / tabs / control
    ("newlines", "line one\nline two"),
    ("newlines", "tab\tseparated\tvalues"),
    ("newlines", "mixed \t\n whitespace"),
    ("newlines", "\r\nwindows newline\r\n"),
    ("newlines", "control \x07 bell \x00 nul"),
    # digits
    ("digits", "120 bpm"),
    ("digits", "3.14159"),
    ("digits", "2024-01-01"),
    ("digits", "1,000,000 notes"),
    ("digits", "007"),
    ("digits", "\u00bd \u00bc \u00be"),
    ("digits", "\u2460\u2461\u2462"),
    ("digits", "\uff12\uff10\uff12\uff14\u5e74"),
    # punctuation
    ("punct", "Hello, world!"),
    ("punct", "what?!..."),
    ("punct", "(parentheses) [brackets] {braces}"),
    ("punct", "quotes \"double\" 'single'"),
    ("punct", "email@example.com #hashtag @mention"),
    ("punct", "a/b\\c|d ~`^_=+*&%$"),
    ("punct", "\u2014em dash\u2013 en dash"),
    ("punct", "\u201ccurly quotes\u201d \u2018single\u2019"),
    ("punct", "\u2026"),
    ("punct", "r&b"),
    # accents / other latin-ish scripts
    ("accents", "cr\u00e8me br\u00fbl\u00e9e"),
    ("accents", "m\u00e9lodie douce au piano"),
    ("accents", "canci\u00f3n espa\u00f1ola con guitarra"),
    ("accents", "Stra\u00dfe"),
    ("accents", "na\u00efve caf\u00e9"),
    ("accents", "\u00c5ngstr\u00f6m"),
    ("accents", "cafe\u0301 (combining acute)"),
    ("accents", "\ufb01ne \ufb02ute ligatures"),
    ("accents", "Dvo\u0159\u00e1k"),
    ("accents", "\u00d8resund \u00c6r\u00f8"),
    ("accents", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ae \u03bc\u03bf\u03c5\u03c3\u03b9\u03ba\u03ae"),
    ("accents", "\u0420\u0443\u0441\u0441\u043a\u0430\u044f \u043c\u0443\u0437\u044b\u043a\u0430"),
    # CJK
    ("cjk", "\u97f3\u697d"),
    ("cjk", "\u30d4\u30a2\u30ce \u9759\u304b\u306a\u591c\u306e\u96e8"),
    ("cjk", "\u94a2\u7434\u97f3\u4e50"),
    ("cjk", "\ud53c\uc544\ub178 \uc74c\uc545"),
    ("cjk", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8"),
    ("cjk", "\uff76\uff80\uff76\uff85"),
    ("cjk", "rock \u97f3\u697d with \u30ae\u30bf\u30fc"),
    # emoji
    ("emoji", "\U0001F3B8"),
    ("emoji", "\U0001F3B8\U0001F3B9\U0001F941"),
    ("emoji", "rock \U0001F525 song"),
    ("emoji", "\U0001F600\U0001F600\U0001F600"),
    ("emoji", "family \U0001F468\u200d\U0001F469\u200d\U0001F467 zwj"),
    ("emoji", "flag \U0001F1EB\U0001F1F7"),
    ("emoji", "heart \u2764\ufe0f vs16"),
    # special-token look-alikes
    ("special", "</s>"),
    ("special", "<pad> and <unk>"),
    ("special", "<extra_id_0> sentinel"),
    ("special", "\u2581 meta symbol"),
    ("special", "<s> not a token"),
    # long
    ("long", LONG_700),
]

ENC_PROMPTS = ["90s rock song with loud guitars and heavy drums", "calm piano",
               "cr\u00e8me br\u00fbl\u00e9e \U0001F3B8 \u97f3\u697d na\u00efve"]


def pad(rows):
    L = max(len(r) for r in rows)
    out = torch.zeros(len(rows), L, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return out, torch.tensor([len(r) for r in rows], dtype=torch.long)


@torch.no_grad()
def encoder_golden(model, tok):
    enc = tok(ENC_PROMPTS, padding=True, return_tensors="pt")
    lens = enc.attention_mask.sum(1).tolist()
    assert len(set(lens)) == 3, lens
    te = model.text_encoder
    captured = {}
    hooks = []
    for j, blk in enumerate(te.encoder.block):
        def hook(mod, inp, out, j=j):
            captured[j] = (out[0] if isinstance(out, tuple) else out).detach().clone()
        hooks.append(blk.register_forward_hook(hook))
    try:
        h = te(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    finally:
        for hk in hooks:
            hk.remove()
    nb = len(te.encoder.block)
    # last block output + final RMS norm == last_hidden_state
    assert torch.allclose(te.encoder.final_layer_norm(captured[nb - 1]), h, atol=1e-6)
    proj = model.enc_to_dec_proj(h) * enc.attention_mask[..., None]
    t = {"enc.input_ids": enc.input_ids, "enc.attention_mask": enc.attention_mask,
         "enc.embeddings": te.shared(enc.input_ids), "enc.last_hidden_state": h, "enc.projected": proj}
    for j in range(nb):
        t[f"enc.block_out.{j}"] = captured[j]
    # the padded batch must agree (real positions) with one-prompt-at-a-time runs
    for i, p in enumerate(ENC_PROMPTS):
        e1 = tok([p], return_tensors="pt")
        h1 = te(input_ids=e1.input_ids, attention_mask=e1.attention_mask).last_hidden_state
        d = (h1[0] - h[i, : lens[i]]).abs().max().item()
        assert d < 1e-5, (p, d)
    return t


def make(model, tok):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(common.TINY_DIR, "spiece.model"))
    hf_rows, sp_rows, notes = [], [], []
    for cat, text in PROMPTS:
        hf = tok(text).input_ids
        sp_ids = sp.encode(text) + [sp.eos_id()]
        hf_rows.append(hf)
        sp_rows.append(sp_ids)
        n = {"category": cat, "text": text, "n_chars": len(text), "hf_len": len(hf), "hf_unk": hf.count(2),
             "hf_equals_spm": hf == sp_ids}
        if hf != sp_ids:
            n["spm_len"] = len(sp_ids)
            n["hf_pieces"] = tok.convert_ids_to_tokens(hf)
            n["spm_pieces"] = [sp.id_to_piece(i) for i in sp.encode(text)] + ["</s>"]
        notes.append(n)
    ids, lengths = pad(hf_rows)
    sids, slengths = pad(sp_rows)
    t = {"ids": ids, "lengths": lengths, "spm_ids": sids, "spm_lengths": slengths}
    t.update(encoder_golden(model, tok))
    # truncation behaviour, on a prompt longer than model_max_length tokens (not stored in the table)
    n_long = len(tok(LONG_2600).input_ids)
    tr = tok(LONG_2600, truncation=True).input_ids
    assert n_long > tok.model_max_length and len(tr) == tok.model_max_length and tr[-1] == 1
    info = {
        "long_prompt_truncation": (
            f"a {len(LONG_2600)}-char prompt gives {n_long} ids > model_max_length {tok.model_max_length}: "
            f"tok(text) does NOT truncate (only warns); tok(text, truncation=True) gives {len(tr)} ids, the last "
            f"one still </s>. MusicgenProcessor/generate never pass truncation, so MusicGen sees all tokens."),
        "tokenizer_call": "AutoTokenizer.from_pretrained(tiny-musicgen)(text).input_ids  (no truncation, no padding)",
        "spm_call": "SentencePieceProcessor(model_file=spiece.model).encode(text) + [1]",
        "model_max_length": tok.model_max_length,
        "n_prompts": len(PROMPTS),
        "n_hf_spm_disagree": sum(1 for n in notes if not n["hf_equals_spm"]),
        "enc_prompts": ENC_PROMPTS,
    }
    return t, notes, info


def main():
    common.setup_determinism()
    model = common.load_tiny()
    tok = common.load_tokenizer()
    t, notes, info = make(model, tok)
    path = os.path.join(common.GOLDEN_DIR, "t5.safetensors")
    common.save_st(path, t, {"info": info})
    common.write_json(os.path.join(common.GOLDEN_DIR, "t5_prompts.json"), {"info": info, "prompts": notes})
    print("wrote", path, {k: list(v.shape) for k, v in t.items()})
    print("HF != sentencepiece for", info["n_hf_spm_disagree"], "of", info["n_prompts"], "prompts:")
    for n in notes:
        if not n["hf_equals_spm"]:
            print("  ", repr(n["text"][:40]), n["hf_pieces"][:12], n["spm_pieces"][:12])


if __name__ == "__main__":
    main()
