"""Extra LM golden for the lm-cpu acceptance text: a 20-frame teacher-forced forward with text states,
batch 2, prompts of different lengths (golden_lm.py's forward goldens have 12 frames).

  golden/lm_extra_forward20.safetensors
    codes [2,4,20] (torch.Generator().manual_seed(2020)), delayed [2,4,24], text_states [2,S,32],
    text_mask [2,S], logits [2,4,24,2048], hidden.0, hidden.1 [2,24,32] (hook outputs: no final norm)

Same calls as golden_lm.make_forward (eager attention, fp32, use_cache=False). make_all.py runs it; by
hand: python tools/reference/lm_extra.py (about 2 s).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import golden_lm  # noqa: E402
import torch  # noqa: E402

PROMPTS = ["warm analog synth arpeggio over a slow four on the floor kick", "solo cello"]


def main():
    common.setup_determinism()
    model = common.load_tiny()
    tok = common.load_tokenizer()
    g = torch.Generator().manual_seed(2020)
    codes = torch.randint(0, 2048, (2, 4, 20), generator=g, dtype=torch.long)
    delayed = common.build_delayed(codes)
    _, mask, _, states = golden_lm.text_states(model, tok, PROMPTS)
    assert mask.sum(1)[0] != mask.sum(1)[1], "prompts must have different lengths"
    logits, hidden, _ = golden_lm.decoder_forward(model, delayed, states, mask)
    t = {"codes": codes, "delayed": delayed, "logits": logits, "text_states": states, "text_mask": mask}
    for i, h in enumerate(hidden):
        t[f"hidden.{i}"] = h
    path = os.path.join(common.GOLDEN_DIR, "lm_extra_forward20.safetensors")
    common.save_st(path, t, {"info": {"call": "as golden_lm.make_forward, 20 frames", "prompts": PROMPTS}})
    print("wrote", path, {k: list(v.shape) for k, v in t.items()})


if __name__ == "__main__":
    main()
