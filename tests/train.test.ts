import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { AdamW, warmupCosine } from '../src/train/adamw.js';
import { recipe, repeatedSpans } from '../src/zoo/recipes.js';
import { Random } from '../src/util/random.js';
import { evaluate, evaluateAttention, headDropoutHooks, lmLoss, train, trainingLoss, type Batch, type DataSource, type TrainOptions } from '../src/train/trainer.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const tinyCfg = () =>
  makeConfig({
    model_name: 'tiny-train',
    original_architecture: 'HeadlensAttnOnly',
    attn_only: true,
    n_layers: 2,
    n_heads: 2,
    d_model: 16,
    d_head: 8,
    d_vocab: 12,
    n_ctx: 16,
    normalization_type: 'LN',
    bos_token_id: 0,
  });
const data = () => repeatedSpans({ vocab: 12, minSpan: 3, maxSpan: 6, bos: 0, evalSeed: 99, evalBatches: 1, evalSize: 8 });
const opts = (steps: number, outDir?: string): TrainOptions => ({ steps, batchSize: 8, lr: 1e-2, warmup: 2, seed: 3, evalEvery: 5, outDir });
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'headlens-train-'));

describe('train', () => {
  it('train(model, data, opts) lowers the loss of a tiny model within 30 steps', async () => {
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const res = await train(model, data(), opts(30));
    console.log(`tiny train: eval loss ${res.history[0].evalLoss!.toFixed(3)} → ${res.finalEvalLoss.toFixed(3)} over ${res.step} steps`);
    expect(res.history[0].evalLoss).toBeGreaterThan(res.finalEvalLoss + 0.1);
    expect(res.finished).toBe(true);
    model.dispose();
  });

  it('a run stopped and resumed from its checkpoint ends bit-identical to an uninterrupted one', async () => {
    const straight = HookedTransformer.random(tinyCfg(), { seed: 1 });
    await train(straight, data(), opts(12));
    const dir = tmp();
    const first = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const part = await train(first, data(), { ...opts(12, dir), checkpointEvery: 5, maxSeconds: 0 }); // stops after one step
    expect(part.finished).toBe(false);
    expect(part.step).toBe(1);
    first.dispose();
    const resumed = await loadPretrained(dir);
    const res = await train(resumed, data(), opts(12, dir), dir);
    expect(res.step).toBe(12);
    for (const n of straight.paramNames()) {
      expect(Array.from(resumed.param(n).dataSync()), n).toEqual(Array.from(straight.param(n).dataSync()));
    }
    const state = JSON.parse(readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'));
    expect(state.step).toBe(12);
    straight.dispose();
    resumed.dispose();
  });

  it('maxSeconds limits each call, not the whole run: a resumed run with the same limit goes on', async () => {
    const dir = tmp();
    const first = HookedTransformer.random(tinyCfg(), { seed: 1 });
    await train(first, data(), { ...opts(6, dir), maxSeconds: 0 }); // one step
    first.dispose();
    // as if the first call had trained for a day (one 10-minute device call after another)
    const file = path.join(dir, 'trainer_state.json');
    writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), seconds: 86_400 }));
    const resumed = await loadPretrained(dir);
    const res = await train(resumed, data(), { ...opts(6, dir), maxSeconds: 600 }, dir);
    expect(res.step).toBe(6);
    expect(res.finished).toBe(true);
    expect(res.seconds).toBeGreaterThanOrEqual(86_400); // the run's total still counts both calls
    resumed.dispose();
  });

  it('train leaves no tensors behind beyond the model’s own parameters', async () => {
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const before = tf.memory().numTensors;
    await train(model, data(), opts(3));
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});

describe('seeded initialisation', () => {
  it('HookedTransformer.random gives the same weights for the same seed, seed 0 included (tfjs reads a seed of 0 as none)', () => {
    const cfg = makeConfig(recipe('toy-induction-2l').config);
    for (const seed of [0, 1]) {
      const [a, b] = [HookedTransformer.random(cfg, { seed }), HookedTransformer.random(cfg, { seed })];
      for (const name of a.paramNames()) expect(Array.from(a.param(name).dataSync()), `${name}, seed ${seed}`).toEqual(Array.from(b.param(name).dataSync()));
      a.dispose();
      b.dispose();
    }
  });
});

describe('the toy-lm recipe', () => {
  it('headlens train --recipe toy-lm: a few steps from its seed lower the loss on its evaluation rows', { timeout: 300_000 }, async () => {
    const r = recipe('toy-lm');
    const model = HookedTransformer.random(makeConfig(r.config), { seed: 0, std: r.initStd });
    model.tokenizer = r.tokenizer!();
    const data = r.data(0);
    const initial = await evaluate(model, data);
    const res = await train(model, data, { ...r.train, steps: 8, batchSize: 2, warmup: 2, evalEvery: 8 });
    console.log(`toy-lm short run: eval loss ${initial.toFixed(3)} (untrained; ln d_vocab = ${Math.log(model.cfg.d_vocab).toFixed(3)}) → ${res.finalEvalLoss.toFixed(3)} after 8 steps`);
    // untrained: no better than uniform over the vocabulary (6.575 from std 0.08, against ln 418 = 6.035)
    expect(initial).toBeGreaterThan(Math.log(model.cfg.d_vocab) - 0.2);
    expect(res.finalEvalLoss).toBeLessThan(initial - 0.5);
    model.dispose();
  });
});

describe('head dropout', () => {
  const batch = (): Batch => ({ tokens: [[0, 1, 2, 3, 4, 5], [0, 5, 4, 3, 2, 1]], headDropRegion: [[0, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0]] });

  it('drops heads inside the region only, with probability p, and scales the heads kept by 1/(1 − p)', () => {
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    expect(headDropoutHooks(model, batch(), 0, new Random(1))).toEqual([]);
    expect(() => headDropoutHooks(model, batch(), 1, new Random(1))).toThrow(/head dropout 1 is not in \[0, 1\)/);
    // an activation of ones through each layer's hook shows the mask
    const masks = headDropoutHooks(model, { ...batch(), tokens: Array.from({ length: 2 }, () => Array(6).fill(1)), headDropRegion: [Array(6).fill(1), Array(6).fill(0)] }, 0.25, new Random(2))
      .map(([, fn]) => tf.tidy(() => (fn(tf.ones([2, 6, 2, 8]), {} as never) as tf.Tensor).arraySync() as number[][][][]));
    expect(masks.length).toBe(2);
    const inside = masks.flatMap((m) => m[0].flatMap((pos) => pos.map((head) => head[0])));
    const outside = masks.flatMap((m) => m[1].flatMap((pos) => pos.map((head) => head[0])));
    expect(new Set(outside)).toEqual(new Set([1]));
    expect(new Set(inside)).toEqual(new Set([0, Math.fround(1 / 0.75)]));
    const dropped = inside.filter((x) => x === 0).length / inside.length;
    expect(dropped).toBeGreaterThan(0.05); // 24 draws at p = 0.25
    expect(dropped).toBeLessThan(0.6);
    model.dispose();
  });

  it('train() with headDropout is seeded (the same run twice gives the same weights), differs from a run without, and leaks nothing', async () => {
    const run = async (p: number) => {
      const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
      const before = tf.memory().numTensors;
      await train(model, data(), { ...opts(6), headDropout: p });
      expect(tf.memory().numTensors).toBe(before);
      const w = Array.from(model.param('blocks.1.attn.W_O').dataSync());
      model.dispose();
      return w;
    };
    const [a, b, none] = [await run(0.3), await run(0.3), await run(0)];
    expect(a).toEqual(b);
    expect(a).not.toEqual(none);
  });
});

describe('attention target', () => {
  // repeated spans with one marked pair per row: from the last position to position 1 (the first span token)
  const marked = (): DataSource => {
    const base = data();
    const mark = (b: Batch): Batch => ({ ...b, attentionPairs: { first: b.tokens.map((row, r) => [r, row.length - 1, 1] as [number, number, number]) } });
    const evals = base.evalBatches().map(mark);
    return { batch: (rng, n) => mark(base.batch(rng, n)), evalBatches: () => evals };
  };
  const target = { layer: 1, head: 0, weight: 0.5, pairs: 'first' };

  it('trainingLoss is lmLoss plus weight × the mean −ln attention over the marked pairs, computed here from the cached pattern', () => {
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const b = marked().evalBatches()[0];
    const lm = lmLoss(model, b);
    const total = trainingLoss(model, b, [], [target]);
    const { logits, cache } = model.runWithCache(b.tokens, { names: ['blocks.1.attn.hook_pattern'] });
    const pat = cache.get('blocks.1.attn.hook_pattern').arraySync() as number[][][][];
    const pairs = b.attentionPairs!.first;
    const byHand = -pairs.reduce((a, [r, q, k]) => a + Math.log(pat[r][0][q][k]), 0) / pairs.length;
    expect(byHand).toBeGreaterThan(0.5); // a random head does not already attend there
    expect(total.dataSync()[0]).toBeCloseTo(lm.dataSync()[0] + 0.5 * byHand, 4);
    // without pairs, or without a target, it is the language-model loss
    expect(trainingLoss(model, { ...b, attentionPairs: { first: [] } }, [], [target]).dataSync()[0]).toBeCloseTo(lm.dataSync()[0], 6);
    expect(trainingLoss(model, b, [], [{ ...target, pairs: 'other' }]).dataSync()[0]).toBeCloseTo(lm.dataSync()[0], 6);
    expect(trainingLoss(model, b).dataSync()[0]).toBeCloseTo(lm.dataSync()[0], 6);
    tf.dispose([lm, total, logits]);
    cache.dispose();
    model.dispose();
  });

  it("trainingLoss with several targets adds each one's term, on its own layer, head and pairs", () => {
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const base = marked().evalBatches()[0];
    const b: Batch = { ...base, attentionPairs: { ...base.attentionPairs, second: base.tokens.map((row, r) => [r, row.length - 2, 2] as [number, number, number]) } };
    const second = { layer: 0, head: 1, weight: 2, pairs: 'second' };
    const { logits, cache } = model.runWithCache(b.tokens, { names: ['blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_pattern'] });
    const term = (layer: number, head: number, pairs: [number, number, number][]) => {
      const pat = cache.get(`blocks.${layer}.attn.hook_pattern`).arraySync() as number[][][][];
      return -pairs.reduce((a, [r, q, k]) => a + Math.log(pat[r][head][q][k]), 0) / pairs.length;
    };
    const lm = lmLoss(model, b);
    const both = trainingLoss(model, b, [], [target, second]);
    const byHand = lm.dataSync()[0] + 0.5 * term(1, 0, b.attentionPairs!.first) + 2 * term(0, 1, b.attentionPairs!.second);
    expect(both.dataSync()[0]).toBeCloseTo(byHand, 4);
    // two targets on one layer: both terms from the one pattern
    const sameLayer = trainingLoss(model, b, [], [target, { ...second, layer: 1 }]);
    expect(sameLayer.dataSync()[0]).toBeCloseTo(lm.dataSync()[0] + 0.5 * term(1, 0, b.attentionPairs!.first) + 2 * term(1, 1, b.attentionPairs!.second), 4);
    tf.dispose([lm, both, sameLayer, logits]);
    cache.dispose();
    model.dispose();
  });

  it('train() with an attention target teaches that head to attend there, logs the term, and leaks nothing', async () => {
    const d = marked();
    const untrained = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const start = await evaluateAttention(untrained, d, target);
    untrained.dispose();
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    const before = tf.memory().numTensors;
    const res = await train(model, d, { ...opts(20), attentionTargets: [{ ...target, weight: 1 }] });
    expect(tf.memory().numTensors).toBe(before);
    const end = await evaluateAttention(model, d, target);
    const held = tf.memory().numTensors; // the first forward pass after training builds the model's caches
    await evaluateAttention(model, d, target);
    expect(tf.memory().numTensors).toBe(held);
    console.log(`attention target: −ln attention ${start.toFixed(3)} untrained → ${end.toFixed(3)} after 20 steps`);
    expect(Math.exp(-end)).toBeGreaterThan(0.5); // attention on the marked key, geometric mean over the pairs
    expect(end).toBeLessThan(start - 1);
    expect(res.history.at(-1)!.evalAttention!['L1H0@first']).toBeCloseTo(end, 5);
    // the other head of the layer was not a target: it does not move there
    expect(await evaluateAttention(model, d, { ...target, head: 1 })).toBeGreaterThan(end + 0.5);
    model.dispose();
  });

  it('refuses a head the model lacks, a weight of 0, and data that marks no pairs', async () => {
    const model = HookedTransformer.random(tinyCfg(), { seed: 1 });
    await expect(train(model, marked(), { ...opts(1), attentionTargets: [{ ...target, layer: 2 }] })).rejects.toThrow(/attention target L2H0 .* does not fit a model of 2 layers × 2 heads/);
    await expect(train(model, marked(), { ...opts(1), attentionTargets: [{ ...target, weight: 0 }] })).rejects.toThrow(/weight 0/);
    await expect(train(model, data(), { ...opts(1), attentionTargets: [target] })).rejects.toThrow(/marks none/);
    await expect(train(model, marked(), { ...opts(1), attentionTargets: [{ ...target, pairs: 'mcq' }] })).rejects.toThrow(/L1H0@mcq needs data that marks 'mcq' pairs, and this data marks 'first'/);
    model.dispose();
  });
});

describe('AdamW', () => {
  it('one step matches the update written out by hand (with decoupled weight decay on matrices only)', () => {
    const W = tf.variable(tf.tensor2d([[1, -2], [3, 0.5]]), true, 'adamw-test-W');
    const b = tf.variable(tf.tensor1d([0.1, -0.1]), true, 'adamw-test-b');
    const gW = tf.tensor2d([[0.5, -1], [0, 2]]);
    const gb = tf.tensor1d([1, -3]);
    const opt = new AdamW({ beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 });
    opt.apply(new Map<string, tf.Variable>([['W', W], ['b', b]]), { W: gW, b: gb }, 0.01);
    // step 1: m̂ = g, v̂ = g², so the Adam part is g/(|g| + eps) = sign(g) (0 where g = 0)
    const expectW = [[1, -2], [3, 0.5]].flat().map((w, i) => {
      const g = [0.5, -1, 0, 2][i];
      return w - 0.01 * ((g === 0 ? 0 : g / (Math.abs(g) + 1e-8)) + 0.1 * w);
    });
    const expectB = [0.1 - 0.01 * (1 / (1 + 1e-8)), -0.1 + 0.01 * (3 / (3 + 1e-8))];
    Array.from(W.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expectW[i], 6));
    Array.from(b.dataSync()).forEach((x, i) => expect(x).toBeCloseTo(expectB[i], 6));
    opt.dispose();
    tf.dispose([W, b, gW, gb]);
  });

  it('clips the global gradient norm over all variables together, before the update', () => {
    // step 1 with Adam's part sign(g): clipping cannot show there, so look at the moment m = (1 − β1)·g·scale
    const W = tf.variable(tf.tensor2d([[1, 2]]), true, 'adamw-clip-W');
    const b = tf.variable(tf.tensor1d([3]), true, 'adamw-clip-b');
    const gW = tf.tensor2d([[3, 0]]);
    const gb = tf.tensor1d([4]); // global norm 5
    const opt = new AdamW({ beta1: 0.5, weightDecay: 0 });
    opt.apply(new Map<string, tf.Variable>([['W', W], ['b', b]]), { W: gW, b: gb }, 0.01, 1);
    const { m, v } = opt.moments();
    expect(Array.from(m.get('W')!.dataSync())).toEqual([expect.closeTo(0.5 * 0.6, 6), 0]);
    expect(m.get('W')!.shape).toEqual([1, 2]);
    expect(m.get('b')!.dataSync()[0]).toBeCloseTo(0.5 * 0.8, 6);
    tf.dispose([...m.values(), ...v.values()]);
    opt.dispose();
    tf.dispose([W, b, gW, gb]);
  });

  it('continues from moments it handed out as if it had never stopped, and names a missing gradient', () => {
    const run = (split: boolean) => {
      const W = tf.tidy(() => tf.variable(tf.tensor2d([[1, -2], [3, 0.5]]), true, `adamw-resume-W-${split}`)); // the initial value freed
      const vars = new Map<string, tf.Variable>([['W', W]]);
      const grads = [tf.tensor2d([[0.5, -1], [0, 2]]), tf.tensor2d([[-0.3, 0.2], [1, -1]])];
      let opt = new AdamW({ weightDecay: 0.1 });
      opt.apply(vars, { W: grads[0] }, 0.01);
      if (split) {
        const { m, v } = opt.moments();
        opt.dispose();
        opt = new AdamW({ weightDecay: 0.1 });
        opt.setMoments(m, v);
        opt.step = 1;
      }
      opt.apply(vars, { W: grads[1] }, 0.01);
      expect(() => opt.apply(vars, {}, 0.01)).toThrow(/no gradient for 'W'/);
      const out = Array.from(W.dataSync());
      opt.dispose();
      tf.dispose([W, ...grads]);
      return out;
    };
    const before = tf.memory().numTensors;
    expect(run(true)).toEqual(run(false));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('warmupCosine rises linearly, then falls from lr to lr·minRatio', () => {
    expect(warmupCosine(0, 100, 1, 10)).toBeCloseTo(0.1);
    expect(warmupCosine(9, 100, 1, 10)).toBeCloseTo(1);
    expect(warmupCosine(10, 100, 1, 10, 0.1)).toBeCloseTo(1);
    expect(warmupCosine(55, 100, 1, 10, 0.1)).toBeCloseTo(0.55);
    expect(warmupCosine(100, 100, 1, 10, 0.1)).toBeCloseTo(0.1);
  });
});

describe('the wasm UnsortedSegmentSum kernel (the gradient of gather)', () => {
  it('gives the gradient of tf.gather that the cpu backend gives', async () => {
    const grad = () => {
      const table = tf.tensor2d(Array.from({ length: 15 }, (_, i) => Math.sin(i)), [5, 3]);
      const ids = tf.tensor2d([[0, 3, 3], [4, 0, 1]], [2, 3], 'int32');
      const g = tf.grad((t: tf.Tensor) => tf.gather(t, ids).mul(tf.range(1, 19).reshape([2, 3, 3])).sum())(table);
      const out = Array.from(g.dataSync());
      tf.dispose([table, ids, g]);
      return out;
    };
    const onWasm = grad();
    await tf.setBackend('cpu');
    const onCpu = grad();
    await tf.setBackend('wasm');
    expect(onWasm).toEqual(onCpu);
    expect(onWasm.some((x) => x !== 0)).toBe(true);
  });
});
