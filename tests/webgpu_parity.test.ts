/**
 * The forward on the webgpu backend against transformers, for every fixture, on SwiftShader (a CPU Vulkan): tfjs'
 * WebGPU kernels and headlens' WebGPU paths (rank-4 patch select, sliced attention, the async reads) are checked in
 * every test run, not only in the GPU machine's calls. Speed on SwiftShader means nothing; correctness does.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionSlicing } from '../src/model/attention.js';
import { optimisations } from '../src/model/transformer.js';
import { fixtureErrors, fixtureTokens } from './device/fixture_parity.js';
import { fixtureModels, maxAbsDiffAsync, reference, startSoftwareWebGPU } from './helpers.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';
import path from 'node:path';

const TOL = 1e-4;

beforeAll(async () => {
  await startSoftwareWebGPU();
});

describe('webgpu (SwiftShader) against transformers', () => {
  it.each(fixtureModels())('%s: logits, every hidden state and every pattern within 1e-4', async (name) => {
    const before = tf.memory().numTensors;
    const { model, errors } = await fixtureErrors(name);
    model.dispose();
    for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k}`).toBeLessThan(TOL);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('attention in slices of 2 query rows gives the same logits on webgpu (gpt2, llama-gqa)', async () => {
    const saved = attentionSlicing.maxBytes;
    optimisations.fusedKernels = false; // the fused attention would take these short prompts in one dispatch
    try {
      for (const name of ['gpt2', 'llama-gqa']) {
        const model = await loadPretrained(path.join(FIXTURES, name));
        const tokens = fixtureTokens(name);
        attentionSlicing.maxBytes = 2 * tokens.length * model.cfg.n_heads * tokens[0].length * 4;
        const logits = model.runWithHooks(tokens);
        const err = await maxAbsDiffAsync(logits, reference(name).float32('logits'));
        logits.dispose();
        model.dispose();
        expect(err, name).toBeLessThan(TOL);
      }
    } finally {
      attentionSlicing.maxBytes = saved;
      optimisations.fusedKernels = true;
    }
  });

  it.each(fixtureModels())('%s: logits through the fused attention (no hooks) within 1e-4', async (name) => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const logits = model.runWithHooks(fixtureTokens(name));
    const err = await maxAbsDiffAsync(logits, reference(name).float32('logits'));
    logits.dispose();
    model.dispose();
    expect(err, name).toBeLessThan(TOL);
  });

  it('a synchronous read is refused with the fix named, not answered with wrong numbers', async () => {
    // above tfjs' CPU hand-off size (1,000 values), so the add runs on the GPU and the result lives only there
    const x = tf.range(0, 5000);
    const t = x.add(1);
    expect(() => t.dataSync()).toThrow(/async/i);
    expect(Array.from((await t.data()).slice(0, 3))).toEqual([1, 2, 3]);
    tf.dispose([x, t]);
  });
});
