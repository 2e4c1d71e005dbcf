"""The HF transformers peer of bench/lm_gpu_bench.c: MusicgenForConditionalGeneration on the same GPU, fp16,
attn_implementation="sdpa" for the decoder, on the same shapes; prints the same JSON schema (impl "hf").

  decode   model.generate(input_ids, attention_mask, max_new_tokens=STEPS, guidance_scale=G, do_sample=False)
           for each --batch: text of --text-len random ids through T5 (12 tokens of t5-base: well under a
           millisecond per call, against hundreds of steps), CFG in one doubled batch as HF does it. HF's
           generate always ends by decoding the codes to audio with EnCodec, which musae's mg_generate does
           not do: the peer replaces audio_encoder.decode with the identity, so both time the LM's codes only.
           ms/step = median wall time (CUDA synchronized) / STEPS, after a 32-step warm-up run.
  capture  model.decoder(delayed ids [B·K, F + K], output_hidden_states=True) over --capture-batch clips,
           unconditional (as musae capture of uncaptioned clips), and the hidden states of layers L/4, L/2,
           3L/4, L-1 copied to host memory (in the model's dtype): frames/s. HF runs every layer and the heads.
  memory   torch.cuda.max_memory_allocated over the timed runs, against the parameters (all of them: HF holds
           T5 and EnCodec on the GPU too) + the fp16 K/V cache.

    python bench/peers/hf_musicgen_gpu.py --model DIR [--label NAME] [--steps 503] [--batch 1,16]
        [--guidance 3] [--text-len 12] [--capture-batch 8] [--capture-frames 500] [--reps 3] [--sample]
        [--no-decode] [--no-capture] [--device cuda|cpu] [--dtype fp16|bf16|fp32]
  --sample: do_sample=True, top_k=250 (musae's --sample). --device cpu --dtype fp32: a smoke test without a GPU.
"""

import argparse
import json
import statistics
import sys
import time
import types

import torch

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def emit(d):
    print(json.dumps(d), flush=True)


def delay_codes(codes, bos):
    """codes [B, K, F] -> delayed [B, K, F + K]: codebook k of frame t at step t + 1 + k, BOS elsewhere
    (model/delay.h, HF build_delay_pattern_mask)."""
    B, K, F = codes.shape
    out = torch.full((B, K, F + K), bos, dtype=codes.dtype)
    for k in range(K):
        out[:, k, 1 + k:1 + k + F] = codes[:, k]
    return out


def capture_layers(L):
    return [L // 4, L // 2, 3 * L // 4, L - 1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--label", default="model")
    ap.add_argument("--steps", type=int, default=503)
    ap.add_argument("--batch", default="1,16")
    ap.add_argument("--guidance", type=float, default=3.0)
    ap.add_argument("--text-len", type=int, default=12)
    ap.add_argument("--capture-batch", type=int, default=8)
    ap.add_argument("--capture-frames", type=int, default=500)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--no-decode", action="store_true")
    ap.add_argument("--no-capture", action="store_true")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    a = ap.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device visible to torch (--device cpu runs the smoke test)")

    import transformers
    from transformers import MusicgenForConditionalGeneration

    transformers.logging.set_verbosity_error()
    dev, dtype = a.device, DTYPES[a.dtype]
    emit({"impl": "hf", "measure": "device", "gpu": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
          "torch": torch.__version__, "transformers": transformers.__version__,
          "cuda": torch.version.cuda, "attn": "sdpa"})

    # sdpa for the decoder (what is timed); EnCodec has no sdpa path, so the others keep their defaults
    t_load, model = timed(lambda: MusicgenForConditionalGeneration.from_pretrained(
        a.model, dtype=dtype, attn_implementation={"decoder": "sdpa"}).to(dev).eval(), dev)
    assert model.decoder.config._attn_implementation == "sdpa", model.decoder.config._attn_implementation
    # generate's last act is EnCodec decoding of the codes; musae's mg_generate stops at the codes
    model.audio_encoder.decode = lambda codes, audio_scales=None, **kw: types.SimpleNamespace(audio_values=codes)
    dcfg = model.config.decoder
    L, H, F_, K, V = (dcfg.num_hidden_layers, dcfg.hidden_size, dcfg.ffn_dim, dcfg.num_codebooks, dcfg.vocab_size)
    esize = torch.finfo(dtype).bits // 8
    n_dec = sum(p.numel() for n, p in model.named_parameters() if n.startswith("decoder."))
    n_all = sum(p.numel() for p in model.parameters())
    params_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    emit({"impl": "hf", "model": a.label, "measure": "load", "precision": a.dtype, "layers": L, "hidden": H,
          "heads": dcfg.num_attention_heads, "ffn": F_, "params": n_dec, "params_all": n_all, "load_s": round(t_load, 2),
          "weights_mib": round(params_bytes / 2**20, 1)})
    # the linear weights one step streams, as lm_gpu_bench counts them (cross-attention K/V excluded)
    w_bytes = esize * (L * (6 * H * H + 2 * F_ * H) + K * V * H)
    vocab_t5 = model.config.text_encoder.vocab_size
    rows = []

    if not a.no_decode:
        for B in [int(b) for b in a.batch.split(",")]:
            g = torch.Generator().manual_seed(B)
            ids = torch.randint(2, min(vocab_t5, 32000), (B, a.text_len), generator=g)
            ids[:, -1] = 1  # </s>
            ids, mask = ids.to(dev), torch.ones_like(ids).to(dev)
            kw = dict(guidance_scale=a.guidance, do_sample=a.sample)
            if a.sample:
                kw.update(top_k=250, temperature=1.0)

            def gen(steps):
                with torch.inference_mode():
                    return model.generate(input_ids=ids, attention_mask=mask, **{**kw, "max_new_tokens": steps})

            timed(lambda: gen(min(a.steps, 32)), dev)  # warm-up: kernels, cuBLAS heuristics, allocator pools
            if dev == "cuda":
                torch.cuda.reset_peak_memory_stats()
            runs, out = [], None
            for _ in range(a.reps):
                t, out = timed(lambda: gen(a.steps), dev)
                runs.append(t)
            peak = torch.cuda.max_memory_allocated() if dev == "cuda" else 0
            frames = out.shape[-1]
            assert out.shape[-3:] == (B, K, frames) and frames == a.steps - (K - 1), out.shape
            t = statistics.median(runs)
            step_s = t / a.steps
            crow = 2 * B if a.guidance > 1 else B
            kv_bytes = esize * L * 2 * H * (crow * 0.5 * (a.steps + 1) + B * a.text_len)
            kv_alloc = esize * L * 2 * H * (crow * (a.steps + 1) + crow * a.text_len)
            audio_s = frames / 50.0
            emit({"impl": "hf", "model": a.label, "measure": "decode", "precision": a.dtype, "batch": B,
                  "guidance": a.guidance, "sampling": "top_k_250" if a.sample else "greedy", "steps": a.steps,
                  "frames": frames, "ms_per_step": round(1e3 * step_s, 4), "total_s": round(t, 4),
                  "runs_ms": [round(1e3 * r, 1) for r in runs], "x_realtime": round(audio_s / t, 3),
                  "x_realtime_batch": round(audio_s * B / t, 3), "weight_bytes_per_step": w_bytes,
                  "kv_bytes_per_step": kv_bytes, "mem_peak_mib": round(peak / 2**20, 1),
                  "mem_weights_mib": round(params_bytes / 2**20, 1), "mem_kv_mib": round(kv_alloc / 2**20, 1),
                  "mem_over_weights_kv": round(peak / (params_bytes + kv_alloc), 4) if peak else None})
            rows.append((f"decode B={B} ms/step", 1e3 * step_s, "ms"))
            rows.append((f"decode B={B} x real time", audio_s / t, "x"))
            rows.append((f"decode B={B} GPU memory", peak / 2**20, "MiB"))

    if not a.no_capture:
        Bc, Fc = a.capture_batch, a.capture_frames
        g = torch.Generator().manual_seed(1)
        delayed = delay_codes(torch.randint(0, V, (Bc, K, Fc), generator=g), V).reshape(Bc * K, Fc + K).to(dev)
        layers = capture_layers(L)

        def fwd():
            with torch.inference_mode():
                hs = model.decoder(input_ids=delayed, output_hidden_states=True).hidden_states
                # hidden_states[l + 1] is the stream after layer l (the last one after the final LayerNorm)
                return [hs[l + 1][:, 1:Fc + 1].to("cpu") for l in layers]

        timed(fwd, dev)  # warm-up
        runs = [timed(fwd, dev)[0] for _ in range(a.reps)]
        t = statistics.median(runs)
        emit({"impl": "hf", "model": a.label, "measure": "capture", "precision": a.dtype, "batch": Bc, "frames": Fc,
              "positions": Fc + K, "layers": layers, "ms_per_batch": round(1e3 * t, 3),
              "frames_per_s": round(Bc * Fc / t, 1)})
        rows.append(("capture ms/batch", 1e3 * t, "ms"))
        rows.append(("capture frames/s", Bc * Fc / t, "frames/s"))

    print(f"\n{a.label} ({a.model}, HF {a.dtype}, sdpa) on {torch.cuda.get_device_name() if dev == 'cuda' else 'cpu'}")
    for what, v, unit in rows:
        print(f"  {what:34} {v:12.3f} {unit}")


if __name__ == "__main__":
    main()
