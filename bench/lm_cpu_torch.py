"""PyTorch peer of bench/lm_cpu_bench.c: HF transformers MusicGen (fp32, transformers' default attention: SDPA in
the decoder, measured ~8 % less CPU than eager on the teacher-forcing shape; --attn eager for the old peer) on the
same checkpoint, shapes and threads, timed the same way (best of reps after a warm-up). Prints one JSON line.

  teacher forcing  model.decoder(delayed codes [K, F+K], encoder_hidden_states [1, S, H], mask, use_cache=False)
  decode (HF)      model.generate(input_ids [1, S], guidance_scale=3, do_sample, top_k=250, max_new_tokens=N):
                   HF's own loop (KV cache, CFG batch, logits processors); its T5 (1 layer) and EnCodec
                   (narrow) are negligible and included
  decode (loop)    the same steps as a bare decoder loop with the KV cache: [cond; uncond] batch, CFG,
                   top-k sampling — PyTorch without generate()'s bookkeeping
"""

import argparse
import json
import os
import resource
import sys
import time

import torch


def best_of(fn, reps, what, cpu=None):
    """Best wall time of reps runs after a warm-up; with cpu (a list), its best CPU time (all threads) is appended:
    on a shared host the wall clock swings with others' load, CPU seconds much less."""
    t0 = time.perf_counter()
    fn()  # warm-up
    best, best_cpu = float("inf"), float("inf")
    print(f"{what}: warm-up {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        print(f"{what}: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    if cpu is not None:
        cpu.append(best_cpu)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--decode-steps", type=int, default=100)
    ap.add_argument("--text-len", type=int, default=12)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--attn", default="default", choices=["default", "eager"],
                    help="attention of the decoder: transformers' default (SDPA) or eager")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import MusicgenForConditionalGeneration

    t0 = time.perf_counter()
    kw = {"attn_implementation": "eager"} if a.attn == "eager" else {}
    model = MusicgenForConditionalGeneration.from_pretrained(a.model, dtype=torch.float32, **kw).eval()
    load_s = time.perf_counter() - t0
    dec = model.decoder
    K, V, H = dec.config.num_codebooks, dec.config.vocab_size, dec.config.hidden_size
    F, S = a.frames, a.text_len
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, V, (1, K, F), generator=g)
    delayed = torch.full((1, K, F + K), V, dtype=torch.long)
    for k in range(K):
        delayed[:, k, 1 + k:1 + k + F] = codes[:, k]
    states = torch.rand(1, S, H, generator=g) - 0.5
    mask = torch.ones(1, S, dtype=torch.long)

    with torch.inference_mode():
        tf_cpu = []
        tf = best_of(lambda: dec(input_ids=delayed.reshape(K, F + K), encoder_hidden_states=states,
                                 encoder_attention_mask=mask, use_cache=False), a.reps, "teacher forcing", tf_cpu)

        ids = torch.randint(2, 1000, (1, S), generator=g)
        n = a.decode_steps

        def hf_generate():
            model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), guidance_scale=3.0, do_sample=True,
                           top_k=250, max_new_tokens=n)

        gen = best_of(hf_generate, 1 if a.reps < 2 else 2, "hf generate") if n > 0 else float("nan")

        def loop():
            enc = torch.cat([states, torch.zeros_like(states)])
            emask = torch.cat([mask, torch.zeros_like(mask)])
            x = torch.full((2 * K, 1), V, dtype=torch.long)
            past = None
            for _ in range(n):
                out = dec(input_ids=x, encoder_hidden_states=enc, encoder_attention_mask=emask, past_key_values=past,
                          use_cache=True)
                past = out.past_key_values
                lg = out.logits[:, -1].reshape(2, K, V)
                sc = lg[1] + (lg[0] - lg[1]) * 3.0
                kth = torch.topk(sc, 250, dim=-1).values[..., -1:]
                sc = sc.masked_fill(sc < kth, float("-inf"))
                tok = torch.multinomial(torch.softmax(sc, -1), 1)
                x = tok.repeat(2, 1)

        bare = best_of(loop, 1 if a.reps < 2 else 2, "decoder loop") if n > 0 else float("nan")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "threads": a.threads,
                      "attn": dec.config._attn_implementation,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "frames": F,
                      "tf_s": round(tf, 4), "tf_frames_per_s": round(F / tf, 2),
                      "tf_cpu_s": round(tf_cpu[0], 4), "tf_frames_per_cpu_s": round(F / tf_cpu[0], 2), "decode_steps": n,
                      "hf_generate_ms_per_step": round(1e3 * gen / n, 3) if n else None,
                      "loop_ms_per_step": round(1e3 * bare / n, 3) if n else None,
                      "load_s": round(load_s, 2), "peak_rss_mib": round(rss)}))


if __name__ == "__main__":
    main()
