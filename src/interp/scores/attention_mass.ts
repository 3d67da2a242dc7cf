/**
 * The shared computation of attention_sink.ts and streaming.ts: for each head, the attention mass a set of keys
 * receives, Σ_k A[q, k]·M[q, k], averaged over a set of queries. One sequence per item.
 */
import * as tf from '@tensorflow/tfjs';
import { actName } from '../../hooks/act_name.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { readAsync, readNested, readSync, type Reads } from '../../util/reads.js';

/** Mean over `queries` of the mass each head puts on keys where `inMask(q, k)`. Returns [layer][head]. */
export function attentionMass(model: HookedTransformer, tokens: number[], inMask: (q: number, k: number) => boolean, queries: number[]): number[][] {
  return readSync(attentionMassReads(model, tokens, inMask, queries));
}

/** attentionMass, read asynchronously (WebGPU in Node). */
export function attentionMassAsync(model: HookedTransformer, tokens: number[], inMask: (q: number, k: number) => boolean, queries: number[]): Promise<number[][]> {
  return readAsync(attentionMassReads(model, tokens, inMask, queries));
}

export function* attentionMassReads(model: HookedTransformer, tokens: number[], inMask: (q: number, k: number) => boolean, queries: number[]): Reads<number[][]> {
  const pos = tokens.length;
  const names = Array.from({ length: model.cfg.n_layers }, (_, l) => actName('pattern', l));
  const { logits, cache } = model.runWithCache([tokens], { names });
  let mass: tf.Tensor;
  try {
    mass = tf.tidy(() => {
      const M = tf.tensor2d(Array.from({ length: pos * pos }, (_, i) => (inMask(Math.floor(i / pos), i % pos) ? 1 : 0)), [pos, pos]); // [query_pos, key_pos]
      const qIdx = tf.tensor1d(queries, 'int32');
      const rows = names.map((n) => {
        const A = (cache.get(n) as tf.Tensor4D).squeeze([0]); // [head, query_pos, key_pos]
        const perQuery = A.mul(M).sum(2); // [head, query_pos]
        return tf.gather(perQuery, qIdx, 1).mean(1); // [head]
      });
      return tf.stack(rows); // [layer, head]
    });
  } finally {
    cache.dispose();
    logits.dispose();
  }
  return yield* readNested<number[][]>(mass);
}

/** The integers from, …, to − 1. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}
