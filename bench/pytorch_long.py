#!/usr/bin/env python3
"""PyTorch reference for `headlens bench --long` (src/bench/long_context.ts), on the same card in the same device call.

    python3 bench/pytorch_long.py --preset llama-7b --contexts 1024,4096,16384 --decode 16 --out $OUT

Builds the preset's shape with transformers' own random initialisation on the GPU (nothing downloaded): gpt2-small
(GPT2Config), pythia-1.4b (GPTNeoXConfig: 24 layers, d_model 2048, 16 heads, rotary_pct 0.25, parallel residual),
llama-7b (LlamaConfig: 32 layers, d_model 4096, 32 heads, intermediate 11008, vocabulary 32000). For each variant
and context L, batch 1:
  prefill   model(ids[1, L], use_cache=False, logits_to_keep=1): the last position's logits only, as headlens' run;
  decode    greedy decoding with the KV cache (past_key_values) after that prompt: ms per token over `decode` steps,
            each step's next token taken with argmax on the GPU and the step closed by torch.cuda.synchronize();
  peak      torch.cuda.max_memory_allocated during the prefill, minus the weights.
Variants: fp32 with eager attention (what headlens computes: float32, the whole softmax), fp32 with sdpa, and bf16
with sdpa (what a researcher would run on this card). TF32 is off. A variant or context that runs out of memory is
reported with its error. Writes OUT/pytorch-long-PRESET.json and prints it.
"""
import argparse
import json
import os
import time

import torch
import transformers


def config_for(preset):
    if preset == "gpt2-small":
        return transformers.GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=32768)
    if preset == "pythia-1.4b":
        return transformers.GPTNeoXConfig(hidden_size=2048, num_hidden_layers=24, num_attention_heads=16, intermediate_size=8192,
                                          vocab_size=50304, rotary_pct=0.25, use_parallel_residual=True, max_position_embeddings=32768)
    if preset == "llama-7b":
        return transformers.LlamaConfig(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
                                        intermediate_size=11008, vocab_size=32000, max_position_embeddings=32768, rms_norm_eps=1e-5)
    raise SystemExit(f"no preset {preset}")


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, (time.perf_counter() - t0) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2-small")
    ap.add_argument("--contexts", default="1024,4096,16384")
    ap.add_argument("--decode", type=int, default=16)
    ap.add_argument("--variants", default="fp32-eager,fp32-sdpa,bf16-sdpa")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    contexts = [int(x) for x in args.contexts.split(",")]
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "transformers": transformers.__version__,
              "preset": args.preset, "decode_tokens": args.decode, "variants": []}
    for variant in args.variants.split(","):
        dtype = torch.bfloat16 if variant.startswith("bf16") else torch.float32
        attn = variant.split("-")[1]
        cfg = config_for(args.preset)
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, torch_dtype=dtype).eval()
        weights = torch.cuda.memory_allocated()
        entry = {"variant": variant, "dtype": str(dtype), "attn_implementation": model.config._attn_implementation,
                 "parameters": sum(p.numel() for p in model.parameters()), "weight_bytes": weights, "rows": []}
        for L in contexts:
            row = {"context": L}
            entry["rows"].append(row)
            gen = torch.Generator().manual_seed(1)
            ids = torch.randint(0, cfg.vocab_size, (1, L), generator=gen).to("cuda")
            try:
                with torch.inference_mode():
                    model(input_ids=ids[:, :16], use_cache=False, logits_to_keep=1)  # warm-up
                    torch.cuda.reset_peak_memory_stats()
                    _, ms = timed(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1).logits)
                    row["prefill_peak_bytes"] = torch.cuda.max_memory_allocated() - weights
                    _, ms = timed(lambda: model(input_ids=ids, use_cache=False, logits_to_keep=1).logits)
                    row["prefill_ms"] = ms
                    row["prefill_tokens_per_s"] = L / ms * 1000
                    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
                    past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    for _ in range(args.decode):
                        out = model(input_ids=nxt, past_key_values=past, use_cache=True)
                        past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
                        nxt.item()  # the next step needs the token: headlens reads it back too
                    row["decode_ms_per_token"] = (time.perf_counter() - t0) * 1000 / args.decode
                    row["decode_tokens_per_s"] = 1000 / row["decode_ms_per_token"]
                    del out, past, nxt
            except torch.OutOfMemoryError as e:
                row["error"] = "out of memory: " + str(e).split("\n")[0][:200]
            torch.cuda.empty_cache()
            print(json.dumps({"variant": variant, **row}), flush=True)
        result["variants"].append(entry)
        del model
        torch.cuda.empty_cache()
    line = json.dumps(result)
    with open(os.path.join(args.out, f"pytorch-long-{args.preset}.json"), "w") as fh:
        fh.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
