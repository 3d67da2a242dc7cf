/**
 * train's pieces: prepareTraining, trainStep and saveCheckpoint drive a run that ends bit-identical to train(),
 * resumable from its checkpoint; progress reaches the caller through onProgress, and the library writes
 * nothing to stdout or stderr.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { endTraining, prepareTraining, saveCheckpoint, train, trainStep, type TrainOptions, type TrainProgress } from '../src/train/trainer.js';
import { repeatedSpans } from '../src/zoo/recipes.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const cfg = () =>
  makeConfig({ model_name: 'tiny-steps', original_architecture: 'HeadlensAttnOnly', attn_only: true, n_layers: 2, n_heads: 2, d_model: 16, d_head: 8, d_vocab: 12, n_ctx: 16, normalization_type: 'LN', bos_token_id: 0 });
const data = () => repeatedSpans({ vocab: 12, minSpan: 3, maxSpan: 6, bos: 0, evalSeed: 99, evalBatches: 1, evalSize: 8 });
// head dropout draws from the same generator as the data order, so this also checks the order of the draws
const opts: TrainOptions = { steps: 6, batchSize: 4, lr: 1e-2, warmup: 2, seed: 3, evalEvery: 3, headDropout: 0.2 };
const weights = (m: HookedTransformer) => Object.fromEntries(m.paramNames().map((n) => [n, Array.from(m.param(n).dataSync())]));

describe('prepareTraining / trainStep / saveCheckpoint', () => {
  it('a loop of trainStep on batches drawn from run.rng ends bit-identical to train(), and resumes from saveCheckpoint like it', async () => {
    const straight = HookedTransformer.random(cfg(), { seed: 1 });
    const res = await train(straight, data(), opts);

    const stepped = HookedTransformer.random(cfg(), { seed: 1 });
    const src = data();
    const run = prepareTraining(stepped, src, opts);
    const losses: number[] = [];
    let afterFirst = 0;
    for (let i = 0; i < 3; i++) {
      const { loss } = trainStep(run, src.batch(run.rng, opts.batchSize));
      losses.push((await loss.data())[0]);
      loss.dispose();
      if (i === 0) afterFirst = tf.memory().numTensors; // the optimizer makes its moments on the first step
    }
    expect(tf.memory().numTensors).toBe(afterFirst);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'headlens-steps-'));
    await saveCheckpoint(run, dir);
    endTraining(run);
    stepped.dispose();

    const resumed = await loadPretrained(dir);
    const rest = await train(resumed, data(), opts, dir);
    expect(rest.step).toBe(6);
    expect(rest.finalLoss).toBe(res.finalLoss);
    expect(losses[2]).toBe(res.history[0].loss); // evalEvery 3: the first line is step 3's loss
    expect(weights(resumed)).toEqual(weights(straight));
    straight.dispose();
    resumed.dispose();
  });

  it('train(…, {onProgress}) reports every step in order, and nothing is written to stdout or stderr', async () => {
    const out = vi.spyOn(process.stdout, 'write');
    const err = vi.spyOn(process.stderr, 'write');
    const model = HookedTransformer.random(cfg(), { seed: 1 });
    const seen: TrainProgress[] = [];
    const res = await train(model, data(), { ...opts, onProgress: (p) => seen.push(p) });
    expect(seen.map((p) => p.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.every((p) => p.steps === 6 && Number.isFinite(p.loss) && p.tokensPerSecond > 0)).toBe(true);
    expect(Number.isNaN(seen[0].evalLoss)).toBe(true); // no evaluation before step 3
    expect(seen[2].evalLoss).toBe(res.history[0].evalLoss);
    expect(seen[5].loss).toBe(res.finalLoss);
    expect(out).not.toHaveBeenCalled();
    expect(err).not.toHaveBeenCalled();
    model.dispose();
  });
});
