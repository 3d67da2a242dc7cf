#!/usr/bin/env python3
"""
The kept attention rows of `tests/device/fused_check.ts --rows yes --save DIR` against transformers in float64.

fused_check saves each preset's random model as transformers reads it (DIR/<preset>/config.json and safetensors
shards) and, beside it, rows-<context>.safetensors: the tokens fed (the prompt, then the greedy tokens) and, for
every step of the fused and the plain run, every layer's last attention row, [head, keys]. Causal attention makes
step s's last row the row of position context - 1 + s in one forward over all the tokens, so one transformers
forward per dtype gives every step's rows. This prints, per preset and step, the largest relative difference over
the layers (max |got - want| / max |want|, as tests/helpers.ts relError) of the fused run, the plain run and
transformers' own float32 forward (TF32 off, eager attention) from transformers' float64 forward. The float32 column
says how far float32 itself lands from float64 at that shape.

    python3 tests/device/rows_reference.py DIR [--out FILE.json]

Needs torch and transformers (the GPU machine has both); runs on CUDA when there is one.
"""
import argparse
import glob
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    kinds = {"F32": np.float32, "I32": np.int32, "F64": np.float64}
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=kinds[info["dtype"]]).reshape(info["shape"])
    return out, meta


def rel_error(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        raise ValueError(f"shapes differ: {got.shape} against {want.shape}")
    if np.isnan(got).any() or np.isnan(want).any():
        return float("inf")
    scale = np.abs(want).max()
    diff = np.abs(got - want).max()
    return 0.0 if diff == 0 else float(diff / scale)


def attention_rows(model_dir, tokens, dtype, device):
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    except TypeError:  # transformers before `dtype`
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=dtype, attn_implementation="eager")
    model = model.to(device).eval()
    with torch.no_grad():
        out = model(torch.tensor(tokens[None].astype(np.int64), device=device), output_attentions=True, use_cache=False)
    rows = [a[0].double().cpu().numpy() for a in out.attentions]  # per layer [head, pos, pos]
    del model, out
    if device == "cuda":
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        sys.exit("rows_reference.py needs torch and transformers (the GPU machine has both)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = []
    for rows_file in sorted(glob.glob(os.path.join(args.dir, "*", "rows-*.safetensors"))):
        model_dir = os.path.dirname(rows_file)
        saved, meta = read_safetensors(rows_file)
        tokens = saved["tokens"]
        context, steps = int(meta["context"]), int(meta["steps"])
        runs = ["fused", "plain"] if meta.get("tokens_equal") == "true" else ["fused"]
        want = attention_rows(model_dir, tokens, torch.float64, device)
        f32 = attention_rows(model_dir, tokens, torch.float32, device)
        per_step = []
        for s in range(steps + 1):
            q = context - 1 + s  # this step's last query position
            entry = {}
            for run in runs:
                entry[run] = max(rel_error(saved[f"{run}.s{s}.l{l}.pattern"], want[l][:, q, : q + 1]) for l in range(len(want)))
            entry["transformers_fp32"] = max(rel_error(f32[l][:, q, : q + 1], want[l][:, q, : q + 1]) for l in range(len(want)))
            entry["max_pattern"] = max(float(want[l][:, q, : q + 1].max()) for l in range(len(want)))
            per_step.append(entry)
        row = {"preset": os.path.basename(model_dir), "context": context, "steps": steps, "layers": len(want), "device": device,
               "pattern_rel_to_float64_per_step": per_step, "compared": runs}
        print(json.dumps(row), flush=True)
        results.append(row)
    if not results:
        sys.exit(f"no rows-*.safetensors under {args.dir}/*/: run fused_check.ts with --rows yes --save {args.dir}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"results": results}, f, indent=1)


if __name__ == "__main__":
    main()
