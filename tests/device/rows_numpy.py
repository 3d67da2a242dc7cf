#!/usr/bin/env python3
"""
A float64 forward of a saved Llama-family model in numpy, for the rows that `fused_check.ts --rows yes --save DIR`
writes, on a machine without torch (this workplace's CPU). It was written here, so it checks the saved files and
gives a float64 point of comparison for SwiftShader runs; transformers' forward (rows_reference.py, on the GPU
machine) is the reference that counts. Llama only: RMSNorm, rotate_half rotary over the whole head (rope_theta from
config.json), causal softmax attention with key/value heads shared by ⌊head / group⌋, SwiGLU MLP.

    python3 tests/device/rows_numpy.py DIR/llama-7b CONTEXT
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rows_reference import read_safetensors, rel_error  # noqa: E402


def main():
    d, context = sys.argv[1], int(sys.argv[2])
    cfg = json.load(open(os.path.join(d, "config.json")))
    if cfg.get("model_type") != "llama":
        sys.exit(f"rows_numpy.py computes Llama only, not {cfg.get('model_type')}")
    w = {}
    for f in sorted(os.listdir(d)):
        if f.startswith("model") and f.endswith(".safetensors"):
            w.update({k: v.astype(np.float64) for k, v in read_safetensors(os.path.join(d, f))[0].items()})
    rows, meta = read_safetensors(os.path.join(d, f"rows-{context}.safetensors"))
    tok = rows["tokens"]
    T, H, E = len(tok), cfg["num_attention_heads"], cfg["head_dim"]
    KV = cfg.get("num_key_value_heads", H)
    eps = cfg["rms_norm_eps"]
    theta = cfg.get("rope_parameters", {}).get("rope_theta", cfg.get("rope_theta", 10000))
    inv = 1.0 / (theta ** (np.arange(0, E, 2) / E))
    ang = np.arange(T)[:, None] * inv[None]
    ang = np.concatenate([ang, ang], -1)
    cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rotary(x):  # [T, heads, E]
        return x * cos + np.concatenate([-x[..., E // 2:], x[..., : E // 2]], -1) * sin

    x = w["model.embed_tokens.weight"][tok]
    patterns = []
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = rotary((h @ w[p + "self_attn.q_proj.weight"].T).reshape(T, H, E))
        k = np.repeat(rotary((h @ w[p + "self_attn.k_proj.weight"].T).reshape(T, KV, E)), H // KV, axis=1)
        v = np.repeat((h @ w[p + "self_attn.v_proj.weight"].T).reshape(T, KV, E), H // KV, axis=1)
        s = np.einsum("qhe,khe->hqk", q, k) / np.sqrt(E) + mask
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        patterns.append(a)
        x = x + np.einsum("hqk,khe->qhe", a, v).reshape(T, H * E) @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g, u = h @ w[p + "mlp.gate_proj.weight"].T, h @ w[p + "mlp.up_proj.weight"].T
        x = x + ((g / (1 + np.exp(-g))) * u) @ w[p + "mlp.down_proj.weight"].T
    runs = ["fused", "plain"] if meta.get("tokens_equal") == "true" else ["fused"]
    for s in range(int(meta["steps"]) + 1):
        q_at = context - 1 + s
        print(json.dumps({"step": s, **{run: max(rel_error(rows[f"{run}.s{s}.l{l}.pattern"], patterns[l][:, q_at, : q_at + 1]) for l in range(len(patterns))) for run in runs}}))


if __name__ == "__main__":
    main()
