/**
 * The input of the attention-map analyses of Clark et al. (2019) (special_tokens.ts, attention_entropy.ts,
 * head_distances.ts, syntax_probe.ts): every head's attention on one example, [layer, head, query_pos, key_pos],
 * with the example's token strings. They read maps only, so they run on any model headlens runs (decoders and
 * encoders alike) and on maps that came from elsewhere (another library, a saved file).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';

/**
 * One example's attention: a tensor [layer, head, query_pos, key_pos] (or [1, layer, head, query_pos, key_pos]),
 * the same as nested arrays, or maps already read (`readAttentionMaps`).
 */
export type AttentionMapsInput = tf.Tensor | number[][][][] | AttentionMaps;

/** Attention maps as a flat float32 array with their shape; element (l, h, q, k) at ((l·heads + h)·n + q)·n + k. */
export interface AttentionMaps {
  layers: number;
  heads: number;
  /** Positions (queries = keys). */
  n: number;
  data: Float32Array;
  /**
   * Whether every head is causal (each query sees only keys ≤ itself): true when every weight above the
   * diagonal is exactly 0. Decides which keys a uniform head would spread over and where smoothing goes.
   */
  causal: boolean;
}

/** Reads one example's maps into an `AttentionMaps` (the tensor is read, not disposed: the caller owns it). */
export function attentionMaps(input: AttentionMapsInput, what = 'attention maps'): AttentionMaps {
  let shape: number[];
  let data: Float32Array;
  if (isAttentionMaps(input)) return input;
  if (input instanceof tf.Tensor) {
    shape = input.shape[0] === 1 && input.rank === 5 ? input.shape.slice(1) : input.shape;
    data = Float32Array.from(input.dataSync() as Float32Array);
  } else {
    if (!Array.isArray(input) || !Array.isArray(input[0]) || !Array.isArray(input[0][0]) || !Array.isArray(input[0][0][0])) {
      throw new HeadlensError(`${what} must be [layer, head, query_pos, key_pos] (a tensor or nested arrays)`, 'pass the stacked hook_pattern of one example, e.g. attentionMapsOf(model, tokens)');
    }
    shape = [input.length, input[0].length, input[0][0].length, input[0][0][0].length];
    data = new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]);
    let o = 0;
    input.forEach((layer, l) => {
      if (layer.length !== shape[1]) throw new HeadlensError(`${what}: layer ${l} has ${layer.length} heads, layer 0 has ${shape[1]}`);
      for (const head of layer) {
        if (head.length !== shape[2]) throw new HeadlensError(`${what}: layer ${l} has a head with ${head.length} query rows, not ${shape[2]}`);
        for (const row of head) {
          if (row.length !== shape[3]) throw new HeadlensError(`${what}: layer ${l} has a row of ${row.length} keys, not ${shape[3]}`);
          data.set(row, o);
          o += shape[3];
        }
      }
    });
  }
  if (shape.length !== 4) throw new HeadlensError(`${what} must be [layer, head, query_pos, key_pos], got [${shape}]`, 'pass one example; for a batch, one entry per row');
  const [layers, heads, nq, n] = shape;
  if (nq !== n) throw new HeadlensError(`${what}: ${nq} query rows but ${n} keys`, 'pass the whole map of every position (no patternRows)');
  if (n === 0) throw new HeadlensError(`${what} have no positions`);
  let causal = true;
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (!Number.isFinite(x) || x < 0) throw new HeadlensError(`${what}: weight ${x} at flat index ${i} is not a finite non-negative number`, 'pass softmax attention weights (hook_pattern)');
    if (causal && x !== 0 && i % n > Math.floor(i / n) % n) causal = false;
  }
  return { layers, heads, n, data, causal };
}

function isAttentionMaps(x: unknown): x is AttentionMaps {
  const m = x as AttentionMaps;
  return typeof m === 'object' && m !== null && !Array.isArray(m) && m.data instanceof Float32Array && m.data.length === m.layers * m.heads * m.n * m.n && typeof m.causal === 'boolean';
}

/** Checks that `tokens` has one string per position of the maps. */
export function checkTokens(maps: AttentionMaps, tokens: string[], what = 'tokens'): void {
  if (!Array.isArray(tokens) || tokens.some((t) => typeof t !== 'string')) throw new HeadlensError(`${what} must be a list of token strings`, 'use model.toStrTokens(ids) or the tokenizer\'s token strings');
  if (tokens.length !== maps.n) throw new HeadlensError(`${what}: ${tokens.length} tokens for attention maps over ${maps.n} positions`, 'pass the token strings of the same example');
}

/**
 * Every head's attention on one sequence of token ids, [layer, head, query_pos, key_pos] (the caller owns the
 * tensor). One forward pass keeping only hook_pattern.
 */
export function attentionMapsOf(model: HookedTransformer, tokens: number[]): tf.Tensor4D {
  const names = Array.from({ length: model.cfg.n_layers }, (_, l) => actName('pattern', l));
  const { logits, cache } = model.runWithCache([tokens], { names });
  try {
    return tf.tidy(() => tf.stack(names.map((n) => (cache.get(n) as tf.Tensor4D).squeeze([0]))) as tf.Tensor4D); // [layer, head, query_pos, key_pos]
  } finally {
    cache.dispose();
    logits.dispose();
  }
}

/** The same maps read into an AttentionMaps (no tensor left behind). */
export function readAttentionMaps(model: HookedTransformer, tokens: number[]): AttentionMaps {
  const t = attentionMapsOf(model, tokens);
  try {
    return attentionMaps(t);
  } finally {
    t.dispose();
  }
}

/** The keys query q can see: all of them, or 0..q when causal. */
export function visibleKeys(maps: AttentionMaps, q: number): number {
  return maps.causal ? q + 1 : maps.n;
}
