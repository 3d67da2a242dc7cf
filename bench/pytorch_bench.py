#!/usr/bin/env python3
"""PyTorch reference for `headlens bench` (issue 8): HF transformers' GPT-2 on the same shapes, same card.

Runs on the GPU machine (transformers 5.17, torch 2.11), after the headlens bundle in the same device call:

    bash .device/boot.sh --backend webgpu --out $OUT; python3 bench/pytorch_bench.py --out $OUT

The model is GPT-2 small's shape (n_embd 768, 12 layers, 12 heads, vocabulary 50257, 1024 positions) with
transformers' own random initialisation: nothing is downloaded. fp32, eager attention, TF32 off for matmuls
and cuDNN, no KV cache (headlens makes none). Two variants per shape:
  forward  model(input_ids)                                       -> logits only
  cache    model(input_ids, output_attentions=True, output_hidden_states=True)
           -> every layer's attention pattern and hidden state too: the work of headlens' full cache
Times are CUDA-synchronised: warm-up calls, then the best of `trials` blocks of `reps` calls, each block
closed by torch.cuda.synchronize(). Shapes: those of the bench-webgpu-*.json files headlens wrote into --out
(else 8x16 and 32x128). If those files are there, gpu_forward_vs_pytorch = headlens tokens/s / PyTorch
tokens/s is computed for both variants. Prints one JSON line and writes it to OUT/pytorch-bench.json.
"""
import argparse
import glob
import json
import os
import time

import torch
import transformers


def best_ms_per_call(fn, reps, trials, warmup):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(trials):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) * 1000 / reps)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--shapes", default="", help="BATCHxPOS,… (default: the headlens results' shapes, else 8x16,32x128)")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    args = ap.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")

    headlens = {}
    for f in sorted(glob.glob(os.path.join(args.out, "bench-webgpu-*.json"))):
        with open(f) as fh:
            r = json.load(fh)
        if r.get("preset") == "gpt2-small":
            headlens[(r["batch"], r["pos"])] = {"file": os.path.basename(f), **r["raw"]}
    if args.shapes:
        shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]
    else:
        shapes = sorted(headlens) or [(8, 16), (32, 128)]

    config = transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    # as tests/fixtures/make_fixtures.py does it (checked there with transformers 5.17)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    model = model.to(device=device, dtype=torch.float32).eval()
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    n_params = sum(p.numel() for p in model.parameters())

    results = []
    for batch, pos in shapes:
        gen = torch.Generator().manual_seed(1)
        ids = torch.randint(0, config.vocab_size, (batch, pos), generator=gen).to(device)
        with torch.inference_mode():
            def forward():
                return model(input_ids=ids, use_cache=False).logits

            def cache():
                out = model(input_ids=ids, use_cache=False, output_attentions=True, output_hidden_states=True)
                return out.logits, out.attentions, out.hidden_states

            # the cache variant really returns what it should
            _, att, hid = cache()
            assert len(att) == 12 and tuple(att[0].shape) == (batch, 12, pos, pos) and len(hid) == 13
            fwd_ms = best_ms_per_call(forward, args.reps, args.trials, args.warmup)
            cache_ms = best_ms_per_call(cache, args.reps, args.trials, args.warmup)
        tokens = batch * pos
        row = {
            "batch": batch,
            "pos": pos,
            "forward_ms": fwd_ms,
            "cache_ms": cache_ms,
            "tokens_per_s_forward": tokens / fwd_ms * 1000,
            "tokens_per_s_cache": tokens / cache_ms * 1000,
        }
        h = headlens.get((batch, pos))
        if h:
            row["headlens_file"] = h["file"]
            row["gpu_forward_vs_pytorch"] = h["tokens_per_s_forward"] / row["tokens_per_s_forward"]
            row["gpu_forward_vs_pytorch_cache"] = h["tokens_per_s_cache"] / row["tokens_per_s_cache"]
        results.append(row)

    out = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32},
        "attn_implementation": model.config._attn_implementation,
        "parameters": n_params,
        "reps": args.reps,
        "trials": args.trials,
        "results": results,
    }
    line = json.dumps(out)
    with open(os.path.join(args.out, "pytorch-bench.json"), "w") as fh:
        fh.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
