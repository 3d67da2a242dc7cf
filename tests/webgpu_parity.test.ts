/**
 * The forward on the webgpu backend against transformers, for every fixture, on SwiftShader (a CPU Vulkan): tfjs'
 * WebGPU kernels and headlens' WebGPU paths (rank-4 patch select, sliced attention, the async reads) are checked in
 * every test run, not only in the GPU machine's calls. Speed on SwiftShader means nothing; correctness does.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionSlicing } from '../src/model/attention.js';
import { fixtureErrors, fixtureTokens } from './device/fixture_parity.js';
import { encoderFixtureModels, encoderInputs, fixtureModels, maxAbsDiffAsync, reference, startSoftwareWebGPU } from './helpers.js';
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

  it.each(encoderFixtureModels())('encoder %s: MLM logits, every hidden state and every pattern within 1e-4 (token types, padded row)', async (name) => {
    const before = tf.memory().numTensors;
    const model = await loadPretrained(path.join(FIXTURES, name));
    const ref = reference(name);
    const { ids, types, mask } = encoderInputs(name);
    const L = model.cfg.n_layers;
    const { logits, cache } = model.runWithCache(ids, { attentionMask: mask, tokenTypeIds: types, names: (n) => /hook_resid_pre$|hook_normalized_resid_post$|attn\.hook_pattern$/.test(n) });
    const errors: Record<string, number> = { logits: await maxAbsDiffAsync(logits, ref.float32('logits')) };
    for (let l = 0; l < L; l++) {
      errors[`hidden.${l}`] = await maxAbsDiffAsync(cache.get(`blocks.${l}.hook_resid_pre`), ref.float32(`hidden_states.${l}`));
      errors[`pattern.${l}`] = await maxAbsDiffAsync(cache.get(`blocks.${l}.attn.hook_pattern`), ref.float32(`attentions.${l}`));
    }
    errors[`hidden.${L}`] = await maxAbsDiffAsync(cache.get(`blocks.${L - 1}.hook_normalized_resid_post`), ref.float32(`hidden_states.${L}`));
    cache.dispose();
    logits.dispose();
    model.dispose();
    for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k}`).toBeLessThan(TOL);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('attention in slices of 2 query rows gives the same logits on webgpu (gpt2, llama-gqa, bert)', async () => {
    const saved = attentionSlicing.maxBytes;
    try {
      for (const name of ['gpt2', 'llama-gqa', 'bert']) {
        const model = await loadPretrained(path.join(FIXTURES, name));
        // bert: its unpadded first row (slices run only without padding), bidirectional rows of the mask
        const tokens = name === 'bert' ? [encoderInputs(name).ids[0]] : fixtureTokens(name);
        attentionSlicing.maxBytes = 2 * tokens.length * model.cfg.n_heads * tokens[0].length * 4;
        const logits = model.runWithHooks(tokens, name === 'bert' ? { tokenTypeIds: [encoderInputs(name).types[0]] } : {});
        const err = await maxAbsDiffAsync(logits, reference(name).float32('logits').subarray(0, logits.size));
        logits.dispose();
        model.dispose();
        expect(err, name).toBeLessThan(TOL);
      }
    } finally {
      attentionSlicing.maxBytes = saved;
    }
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
