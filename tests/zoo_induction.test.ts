/**
 * Acceptance of the shipped toy-induction-2l (datasets/zoo/toy-induction-2l): the mechanism Olsson et al.
 * 2022 describe is there and headlens' own scorers, ablations and composition scores find it.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { inductionSequences } from '../src/datasets/induction.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { runWithAblatedHeads } from '../src/interp/interventions/ablation.js';
import { kComposition } from '../src/interp/weights/composition.js';
import { inductionScores } from '../src/interp/scores/induction.js';
import { previousTokenScores } from '../src/interp/scores/previous_token.js';
import { loadPretrained } from '../src/loading/load.js';

const HALF = 16;
let model: HookedTransformer;
let seqs: number[][];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained('toy-induction-2l');
  // held-out sequences [BOS, s, s]: a seed the training data never used
  seqs = inductionSequences({ n: 32, halfLength: HALF, low: 1, high: 64, bos: 0, seed: 424242 }).sequences;
});

/** Mean next-token loss over the predictable part of the repeat (second copy, after its first token). */
function repeatLoss(logits: tf.Tensor3D): number {
  return tf.tidy(() => {
    const logp = tf.logSoftmax(logits); // [batch, pos, d_vocab]
    let total = 0;
    let n = 0;
    const lp = logp.arraySync() as number[][][];
    seqs.forEach((s, b) => {
      for (let p = HALF + 1; p < 2 * HALF; p++) {
        total -= lp[b][p][s[p + 1]];
        n++;
      }
    });
    return total / n;
  });
}

/** Mean attention from each query of the second copy to the token after its earlier occurrence. */
function repeatInductionAttention(layer: number, head: number): number {
  const { logits, cache } = model.runWithCache(seqs, { names: [`blocks.${layer}.attn.hook_pattern`] });
  const p = cache.get(`blocks.${layer}.attn.hook_pattern`).arraySync() as number[][][][];
  let total = 0;
  let n = 0;
  for (const b of p) {
    for (let q = HALF + 1; q <= 2 * HALF; q++) {
      total += b[head][q][q - HALF + 1];
      n++;
    }
  }
  cache.dispose();
  logits.dispose();
  return total / n;
}

describe('toy-induction-2l', () => {
  it('has a layer-1 induction head (attention ≥ 0.9 on the induction target) found by inductionScores', () => {
    const scores = inductionScores(model, seqs);
    const best = scores.top[0];
    const attn = repeatInductionAttention(best.layer, best.head);
    console.log(`induction: best L${best.layer}H${best.head} TransformerLens score ${best.score.toFixed(3)}; attention on the target over the repeat ${attn.toFixed(3)}; table ${JSON.stringify(scores.scores.map((r) => r.map((x) => +x.toFixed(3))))}`);
    expect(best.layer).toBe(1);
    expect(attn).toBeGreaterThanOrEqual(0.9);
  });

  it('ablating that head raises the loss on the repeated half by ≥ 1 nat', () => {
    const best = inductionScores(model, seqs).top[0];
    const clean = model.forward(seqs);
    const ablated = runWithAblatedHeads(model, seqs, [{ layer: best.layer, head: best.head }], { kind: 'zero' });
    const [a, b] = [repeatLoss(clean), repeatLoss(ablated)];
    console.log(`repeat loss ${a.toFixed(3)} nats → ${b.toFixed(3)} with L${best.layer}H${best.head} zero-ablated`);
    expect(b - a).toBeGreaterThanOrEqual(1);
    clean.dispose();
    ablated.dispose();
  });

  it('its strongest K-composition comes from the layer-0 previous-token head', () => {
    const best = inductionScores(model, seqs).top[0];
    const prev = previousTokenScores(model, seqs).scores[0];
    const prevHead = prev.indexOf(Math.max(...prev));
    const k = kComposition(model);
    const into = k.pairs.filter((p) => p.to.layer === best.layer && p.to.head === best.head);
    console.log(`previous-token scores of layer 0 ${JSON.stringify(prev.map((x) => +x.toFixed(3)))}; K-composition into L${best.layer}H${best.head}: ${into.map((p) => `${p.from.label} ${p.score.toFixed(3)}`).join(', ')} (random baseline ${k.baseline.mean.toFixed(3)} ± ${k.baseline.std.toFixed(3)})`);
    expect(into[0].from.layer).toBe(0);
    expect(into[0].from.head).toBe(prevHead);
    expect(into[0].score).toBeGreaterThan(k.baseline.mean + 3 * k.baseline.std);
  });
});
