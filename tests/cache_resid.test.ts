/**
 * ActivationCache's TransformerLens helpers: accumulatedResid, decomposeResid, stackHeadResults,
 * applyLnToStack and logitAttrs. Checked against the run itself: the decomposition sums to the residual it
 * decomposes, the frozen-scale norm of the components sums to the norm's output less its bias, and the
 * logit attributions plus the constant term sum to the logit (difference) of every prompt and position;
 * head results computed from hook_z equal the hooked ones; misuse is a HeadlensError; nothing leaks.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { actName } from '../src/hooks/act_name.js';
import { ActivationCache } from '../src/hooks/activation_cache.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { directBias, directLogitAttribution } from '../src/interp/attribution/dla.js';
import { loadPretrained } from '../src/loading/load.js';
import { headlensError } from './expect_error.js';
import { FIXTURES } from './helpers.js';

// gpt2: 2 layers, 4 heads, d_model 32, learned positions, LayerNorm; llama-gqa: RMSNorm, rotary; pythia-parallel: parallel blocks
const TOKENS = [
  [3, 14, 15, 92, 65, 35],
  [2, 71, 82, 81, 82, 84],
];
const FAMILIES = ['gpt2', 'llama-gqa', 'pythia-parallel'];
const models = new Map<string, HookedTransformer>();

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const f of FAMILIES) models.set(f, await loadPretrained(path.join(FIXTURES, f)));
});
afterAll(() => models.forEach((m) => m.dispose()));

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

function withRun<T>(model: HookedTransformer, fn: (cache: ActivationCache, logits: tf.Tensor3D) => T, names?: string[]): T {
  const { logits, cache } = model.runWithCache(TOKENS, names ? { names } : {});
  try {
    return fn(cache, logits);
  } finally {
    cache.dispose();
    logits.dispose();
  }
}

describe('ActivationCache residual helpers (TransformerLens semantics)', () => {
  it('accumulatedResid() stacks resid_pre of every layer and the final resid_post, labelled as TransformerLens does', () => {
    const model = models.get('gpt2')!;
    withRun(model, (cache) => {
      const all = cache.accumulatedResid();
      expect(all.labels).toEqual(['0_pre', '1_pre', 'final_post']);
      expect(all.stack.shape).toEqual([3, 2, 6, 32]);
      expect(maxDiff(all.stack.slice([1], [1]).squeeze([0]), cache.get(actName('resid_pre', 1)))).toBe(0);
      expect(maxDiff(all.stack.slice([2], [1]).squeeze([0]), cache.get(actName('resid_post', 1)))).toBe(0);
      const mid = cache.accumulatedResid(1, { inclMid: true, mlpInput: true });
      expect(mid.labels).toEqual(['0_pre', '0_mid', '1_pre', '1_mid']);
      const minus1 = cache.accumulatedResid(-1, { posSlice: -1 });
      expect(minus1.labels).toEqual(all.labels);
      expect(minus1.stack.shape).toEqual([3, 2, 32]); // a numeric posSlice removes the pos axis
      expect(maxDiff(minus1.stack, all.stack.slice([0, 0, 5, 0], [-1, -1, 1, -1]).squeeze([2]))).toBe(0);
      tf.dispose([all.stack, mid.stack, minus1.stack]);
    });
  });

  for (const f of FAMILIES) {
    it(`accumulatedResid(applyLn) on ${f}: the final entry is ln_final.hook_normalized; entry l through ln1's frozen scale is ln1.hook_normalized less its bias`, () => {
      const model = models.get(f)!;
      withRun(model, (cache) => {
        const { stack } = cache.accumulatedResid(undefined, { applyLn: true });
        expect(maxDiff(stack.slice([model.cfg.n_layers], [1]).squeeze([0]), cache.get(actName('normalized')))).toBeLessThan(1e-5);
        const { stack: at1 } = cache.accumulatedResid(1, { applyLn: true }); // ['0_pre', '1_pre'] through blocks.1.ln1
        const bias = model.cfg.normalization_type === 'LN' ? model.param('blocks.1.ln1.b') : tf.scalar(0);
        const got = at1.slice([1], [1]).squeeze([0]).add(bias);
        expect(maxDiff(got, cache.get(actName('normalized', 1, 'ln1')))).toBeLessThan(1e-5);
        tf.dispose([stack, at1, got]);
      });
    });

    it(`decomposeResid on ${f}: embeddings, attn_out and mlp_out sum to resid_pre of the layer asked for (resid_mid with mlpInput) and to the final residual`, () => {
      const model = models.get(f)!;
      withRun(model, (cache) => {
        const { n_layers, positional_embedding_type, parallel_attn_mlp } = model.cfg;
        const full = cache.decomposeResid();
        const emb = positional_embedding_type === 'standard' ? ['embed', 'pos_embed'] : ['embed'];
        expect(full.labels).toEqual([...emb, ...Array.from({ length: n_layers }, (_, l) => [`${l}_attn_out`, `${l}_mlp_out`]).flat()]);
        const sum = full.stack.sum(0);
        expect(maxDiff(sum, cache.get(actName('resid_post', n_layers - 1)))).toBeLessThan(1e-5);
        const one = cache.decomposeResid(1);
        const sum1 = one.stack.sum(0);
        expect(maxDiff(sum1, cache.get(actName('resid_pre', 1)))).toBeLessThan(1e-5);
        const attn = cache.decomposeResid(undefined, { mode: 'attn', inclEmbeds: false });
        expect(attn.labels).toEqual(Array.from({ length: n_layers }, (_, l) => `${l}_attn_out`));
        const tensors = [full.stack, sum, one.stack, sum1, attn.stack];
        if (!parallel_attn_mlp) {
          const mlpIn = cache.decomposeResid(1, { mlpInput: true });
          expect(mlpIn.labels.at(-1)).toBe('1_attn_out');
          const s = mlpIn.stack.sum(0);
          expect(maxDiff(s, cache.get(actName('resid_mid', 1)))).toBeLessThan(1e-5);
          tensors.push(mlpIn.stack, s);
        }
        tf.dispose(tensors);
      });
    });

    it(`applyLnToStack on ${f}: the decomposed final residual through ln_final's cached scale sums to ln_final.hook_normalized less its bias`, () => {
      const model = models.get(f)!;
      withRun(model, (cache) => {
        const { stack } = cache.decomposeResid(undefined, { applyLn: true });
        const bias = model.cfg.normalization_type === 'LN' ? model.param('ln_final.b') : tf.scalar(0);
        const got = stack.sum(0).add(bias);
        expect(maxDiff(got, cache.get(actName('normalized')))).toBeLessThan(1e-5);
        // the same at one position, with the posSlice the stack was made with
        const { stack: last } = cache.decomposeResid(undefined, { posSlice: [5], applyLn: true });
        const got5 = last.sum(0).add(bias);
        expect(maxDiff(got5, cache.get(actName('normalized')).slice([0, 5, 0], [-1, 1, -1]))).toBeLessThan(1e-5);
        tf.dispose([stack, got, last, got5]);
      });
    });

    it(`logitAttrs on ${f}: the decomposed residual's attributions plus the constant term are the logit difference at every prompt and position`, () => {
      const model = models.get(f)!;
      withRun(model, (cache, logits) => {
        const ans = [5, 7];
        const wrong = [9, 40];
        const { stack } = cache.decomposeResid();
        const attrs = cache.logitAttrs(stack, ans, wrong); // [component, batch, pos]
        expect(attrs.shape).toEqual([stack.shape[0], 2, 6]);
        const bias = directBias(model, ans, wrong);
        const sums = attrs.sum(0).arraySync() as number[][];
        const l = logits.arraySync() as number[][][];
        sums.forEach((row, b) => row.forEach((s, p) => expect(Math.abs(s + bias[b] - (l[b][p][ans[b]] - l[b][p][wrong[b]])), `prompt ${b} pos ${p}`).toBeLessThan(1e-4)));
        // one token for all, and one per prompt and position
        const single = cache.logitAttrs(stack, 5);
        const perPos = cache.logitAttrs(stack, [[5, 5, 5, 5, 5, 5], [5, 5, 5, 5, 5, 5]]);
        expect(maxDiff(single, perPos)).toBe(0);
        tf.dispose([stack, attrs, single, perPos]);
      });
    });
  }

  it('stackHeadResults from hook_z and W_O equals the hooked attn.hook_result; heads plus b_O sum to attn_out', () => {
    const model = models.get('gpt2')!;
    const { n_layers, n_heads } = model.cfg;
    const result = Array.from({ length: n_layers }, (_, l) => actName('result', l));
    const z = Array.from({ length: n_layers }, (_, l) => actName('z', l));
    const fromResult = withRun(model, (c) => c.stackHeadResults(undefined, { posSlice: [1, 4] }), result);
    const fromZ = withRun(model, (c) => c.stackHeadResults(undefined, { posSlice: [1, 4] }), z);
    expect(fromResult.labels).toEqual(['L0H0', 'L0H1', 'L0H2', 'L0H3', 'L1H0', 'L1H1', 'L1H2', 'L1H3']);
    expect(fromZ.labels).toEqual(fromResult.labels);
    expect(fromResult.stack.shape).toEqual([n_layers * n_heads, 2, 2, 32]);
    expect(maxDiff(fromZ.stack, fromResult.stack)).toBeLessThan(1e-5);
    withRun(model, (c) => {
      const { stack } = c.stackHeadResults(1);
      const attnOut = stack.sum(0).add(model.param('blocks.0.attn.b_O'));
      expect(maxDiff(attnOut, c.get(actName('attn_out', 0)))).toBeLessThan(1e-5);
      const none = c.stackHeadResults(0);
      expect(none.stack.shape).toEqual([0, 2, 6, 32]);
      expect(none.labels).toEqual([]);
      tf.dispose([stack, attnOut, none.stack]);
    }, [...z, actName('attn_out', 0), 'hook_embed']);
    tf.dispose([fromResult.stack, fromZ.stack]);
  });

  it("logitAttrs of stackHeadResults at one position is directLogitAttribution's head columns", () => {
    const model = models.get('gpt2')!;
    const dla = directLogitAttribution(model, TOKENS, { answer: [5, 7], wrong: [9, 40], pos: 2 });
    withRun(model, (cache) => {
      const { stack, labels } = cache.stackHeadResults(undefined, { posSlice: 2 });
      const attrs = cache.logitAttrs(stack, [5, 7], [9, 40], { posSlice: 2 }).arraySync() as number[][]; // [head, batch]
      labels.forEach((h, i) => [0, 1].forEach((b) => expect(attrs[i][b]).toBeCloseTo(dla.at(String(b), h), 6)));
      stack.dispose();
    });
  });

  it('misuse of the helpers is a HeadlensError that names the problem and the fix', () => {
    const model = models.get('gpt2')!;
    withRun(model, (cache) => {
      expect(headlensError(() => cache.accumulatedResid(3)).message).toMatch(/layer 3 is out of range.*0…2/);
      expect(headlensError(() => cache.decomposeResid(undefined, { posSlice: 6 })).message).toMatch(/posSlice 6 is outside the sequence \(6 positions\)/);
      expect(headlensError(() => cache.decomposeResid(undefined, { mode: 'heads' as 'all' })).message).toMatch(/unknown mode 'heads'/);
      expect(headlensError(() => cache.decomposeResid(2, { mlpInput: true })).message).toMatch(/mlpInput needs a layer below n_layers/);
      const { stack } = cache.decomposeResid(undefined, { posSlice: -1 });
      expect(headlensError(() => cache.applyLnToStack(stack)).message).toMatch(/does not fit ln_final.hook_scale.*pass the posSlice/);
      expect(headlensError(() => cache.logitAttrs(stack, [5, 7], [9])).message).toMatch(/differ in shape/);
      expect(headlensError(() => cache.logitAttrs(stack, [5, 7, 8], undefined, { posSlice: -1 })).message).toMatch(/do not fit the stack/);
      expect(headlensError(() => cache.logitAttrs(stack, 257, undefined, { posSlice: -1 })).message).toMatch(/token 257 is not in the vocabulary/);
      stack.dispose();
    });
    const partial = withRun(model, (cache) => headlensError(() => cache.decomposeResid()), ['hook_embed']);
    expect(partial.message).toMatch(/holds no 'hook_pos_embed'.*runWithCache/);
    const bare = new ActivationCache(new Map([['hook_embed', tf.zeros([1, 2, 32])]]), model.cfg);
    expect(headlensError(() => bare.applyLnToStack(tf.zeros([1, 1, 2, 32]))).message).toMatch(/needs the model that made this cache/);
    bare.dispose();
  });

  it('every helper, called a second time, leaves tf.memory().numTensors unchanged', () => {
    const model = models.get('gpt2')!;
    withRun(model, (cache) => {
      const once = () => {
        const a = cache.accumulatedResid(undefined, { applyLn: true, posSlice: [0, 5] });
        const d = cache.decomposeResid(1, { applyLn: true, mlpInput: true });
        const h = cache.stackHeadResults(undefined, { applyLn: true });
        const s = cache.applyLnToStack(h.stack);
        const l = cache.logitAttrs(h.stack, [5, 7], [9, 40]);
        tf.dispose([a.stack, d.stack, h.stack, s, l]);
        try {
          cache.logitAttrs(h.stack, 999); // a throw leaves nothing behind either
        } catch {
          /* expected */
        }
      };
      once();
      const before = tf.memory().numTensors;
      once();
      expect(tf.memory().numTensors).toBe(before);
    }, undefined);
  });
});
