/**
 * The parity check of the GPU programs (parity_gpu.ts, bench_gpu.ts): one fixture model against
 * transformers' logits, hidden states and attentions, read back asynchronously (WebGPU has no sync readback).
 */
import type { HookedTransformer } from '../../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../../src/loading/load.js';
import path from 'node:path';
import { FIXTURES, maxAbsDiffAsync, reference } from '../helpers.js';

/** The fixture's token rows [batch][pos]. */
export function fixtureTokens(name: string): number[][] {
  const ref = reference(name);
  const [batch, pos] = ref.info('input_ids').shape;
  const ids = ref.int32('input_ids');
  return Array.from({ length: batch }, (_, b) => Array.from(ids.subarray(b * pos, (b + 1) * pos)));
}

/** Largest |error| of logits, every resid_pre and pattern, and ln_final, by name. The caller disposes the model. */
export async function fixtureErrors(name: string): Promise<{ model: HookedTransformer; errors: Record<string, number> }> {
  const model = await loadPretrained(path.join(FIXTURES, name));
  return { model, errors: await modelFixtureErrors(model, name) };
}

/** The same errors for a model already loaded (e.g. with other options) from the fixture `name`. */
export async function modelFixtureErrors(model: HookedTransformer, name: string): Promise<Record<string, number>> {
  const ref = reference(name);
  const { logits, cache } = model.runWithCache(fixtureTokens(name), { names: 'all' });
  const errors: Record<string, number> = { logits: await maxAbsDiffAsync(logits, ref.float32('logits')) };
  for (let l = 0; l < model.cfg.n_layers; l++) {
    errors[`resid_pre.${l}`] = await maxAbsDiffAsync(cache.get(`blocks.${l}.hook_resid_pre`), ref.float32(`hidden_states.${l}`));
    errors[`pattern.${l}`] = await maxAbsDiffAsync(cache.get(`blocks.${l}.attn.hook_pattern`), ref.float32(`attentions.${l}`));
  }
  errors.ln_final = await maxAbsDiffAsync(cache.get('ln_final.hook_normalized'), ref.float32(`hidden_states.${model.cfg.n_layers}`));
  cache.dispose();
  logits.dispose();
  return errors;
}
