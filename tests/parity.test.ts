/**
 * headlens against HuggingFace transformers: tiny random checkpoints of every family, and transformers'
 * logits, hidden states and eager attentions for a batch of 2 (tests/fixtures/make_fixtures.py, run
 * with transformers 5.17 in float64). Everything must agree within 1e-4.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES, fixtureModels, maxAbsDiff, reference } from './helpers.js';
import path from 'node:path';

const TOL = 1e-4;

beforeAll(async () => {
  await initBackend({ backend: (process.env.HEADLENS_BACKEND as 'wasm') ?? 'wasm' });
});

describe.each(fixtureModels())('parity with transformers: %s', (name) => {
  it('runWithCache gives transformers’ logits, hidden states and attention patterns', async () => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const ref = reference(name);
    const ids = ref.int32('input_ids');
    const [batch, pos] = ref.info('input_ids').shape;
    const rows = Array.from({ length: batch }, (_, b) => Array.from(ids.subarray(b * pos, (b + 1) * pos)));
    const { logits, cache } = model.runWithCache(rows, {
      names: (n) => /hook_resid_pre$|attn\.hook_pattern$|^ln_final\.hook_normalized$/.test(n),
    });
    const errors: Record<string, number> = {};
    errors.logits = maxAbsDiff(logits, ref.float32('logits'), ref.info('logits').shape);
    for (let l = 0; l < model.cfg.n_layers; l++) {
      errors[`resid_pre.${l}`] = maxAbsDiff(cache.get(`blocks.${l}.hook_resid_pre`), ref.float32(`hidden_states.${l}`), ref.info(`hidden_states.${l}`).shape);
      errors[`pattern.${l}`] = maxAbsDiff(cache.get(`blocks.${l}.attn.hook_pattern`), ref.float32(`attentions.${l}`), ref.info(`attentions.${l}`).shape);
    }
    const last = `hidden_states.${model.cfg.n_layers}`;
    errors.ln_final = maxAbsDiff(cache.get('ln_final.hook_normalized'), ref.float32(last), ref.info(last).shape);
    const worst = Math.max(...Object.values(errors));
    console.log(`parity ${name}: max |error| ${worst.toExponential(2)} (${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')})`);
    for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k}`).toBeLessThan(TOL);
    cache.dispose();
    logits.dispose();
    model.dispose();
  });
});
