/**
 * The patching engine (src/interp/interventions/stacked_runs.ts) against the plainest possible reference:
 * one runWithHooks per variant over the whole model, full logits, the metric applied to them. Sites at
 * every kind of hook point (embeddings, every block, the final norm), metrics with and without a declared
 * position, passes forced down to one variant, and hooks added with addHook.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { actName } from '../src/hooks/act_name.js';
import type { ActivationCache } from '../src/hooks/activation_cache.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { logitDiff, logProb, metricValue, type Metric } from '../src/interp/metrics.js';
import { patchSites, type PatchSite } from '../src/interp/interventions/patching.js';
import { BaseRun, startLayer, variantsPerPass } from '../src/interp/interventions/stacked_runs.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES, PATCH_CLEAN, PATCH_CORRUPTED } from './helpers.js';

let gpt2: HookedTransformer;
let llama: HookedTransformer;
const [CLEAN, CORRUPTED] = [PATCH_CLEAN, PATCH_CORRUPTED];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  llama = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
});
afterAll(() => [gpt2, llama].forEach((m) => m.dispose()));

/** One full forward per site: the site's slot of the activation replaced by the source's. */
function naive(model: HookedTransformer, source: ActivationCache, sites: PatchSite[], metric: Metric): number[] {
  return sites.map((site) => {
    const logits = model.runWithHooks(CORRUPTED, {
      fwdHooks: [
        [
          site.name,
          (act) =>
            tf.tidy(() => {
              const src = source.get(site.name);
              const per = act.rank === 4 && /hook_(attn_scores|pattern)$/.test(site.name);
              // build a 0/1 mask of the slot by hand: [batch, pos, head?, …] or [batch, head, query_pos, key_pos]
              const shape = act.shape;
              const m = tf.buffer(shape.slice(0, -1).concat([1]) as number[]);
              const idx = (i: number[]) => {
                const pos = per ? i[2] : i[1];
                const head = per ? i[1] : act.rank === 4 ? i[2] : undefined;
                return (site.pos === undefined || pos === site.pos) && (site.head === undefined || head === site.head);
              };
              const walk = (prefix: number[]) => {
                if (prefix.length === shape.length - 1) {
                  if (idx(prefix)) m.set(1, ...prefix, 0);
                  return;
                }
                for (let k = 0; k < shape[prefix.length]; k++) walk([...prefix, k]);
              };
              walk([]);
              const mask = m.toTensor().cast('bool');
              return tf.where(mask, src, act);
            }),
        ],
      ],
    });
    const v = metricValue(metric, logits);
    logits.dispose();
    return v;
  });
}

function sitesOf(model: HookedTransformer): PatchSite[] {
  const last = model.cfg.n_layers - 1;
  return [
    { name: 'hook_embed', pos: 2 },
    { name: actName('resid_pre', 0), pos: 2 },
    { name: actName('z', 0), head: 1 },
    { name: actName('pattern', 1), head: 0, pos: 4 },
    { name: actName('q', last), head: 2 },
    { name: actName('k', 0), head: 0, pos: 2 },
    { name: actName('mlp_out', 0), pos: 1 },
    { name: actName('resid_post', last), pos: 4 },
    { name: 'ln_final.hook_normalized', pos: 4 },
    { name: actName('attn_out', last) },
  ];
}

describe('the patching engine', () => {
  for (const [label, get] of [['gpt2', () => gpt2], ['llama-gqa', () => llama]] as const) {
    it(`patchSites equals one full forward per site, on ${label}, for a declared-position metric, a log-prob and a hand-written metric`, () => {
      const model = get();
      const sites = sitesOf(model);
      const { logits, cache } = model.runWithCache(CLEAN, { names: [...new Set(sites.map((s) => s.name))] });
      logits.dispose();
      const handWritten: Metric = (l) => tf.tidy(() => l.slice([0, 3, 0], [-1, 1, 3]).sum([1, 2]) as tf.Tensor1D); // no `at`: reads position 3
      for (const metric of [logitDiff([7, 8], [9, 12]), logProb(5), handWritten]) {
        const want = naive(model, cache, sites, metric);
        const got = patchSites(model, CORRUPTED, cache, sites, metric);
        const onePerPass = patchSites(model, CORRUPTED, cache, sites, metric, { maxPassBytes: 1 });
        for (let i = 0; i < sites.length; i++) {
          expect(Math.abs(got[i] - want[i]), `${sites[i].name}`).toBeLessThan(1e-5);
          expect(Math.abs(onePerPass[i] - want[i]), `${sites[i].name}, one per pass`).toBeLessThan(1e-5);
        }
      }
      cache.dispose();
    });
  }

  it('hooks added with addHook apply to the base run and to every pass', () => {
    const sites = sitesOf(gpt2);
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [...new Set(sites.map((s) => s.name))] });
    logits.dispose();
    const metric = logitDiff(7, 9);
    gpt2.addHook(actName('mlp_out', 0), (x) => x.mul(0.5));
    gpt2.addHook('ln_final.hook_scale', (x) => x.mul(1.5));
    try {
      const want = naive(gpt2, cache, sites, metric);
      const got = patchSites(gpt2, CORRUPTED, cache, sites, metric);
      for (let i = 0; i < sites.length; i++) expect(Math.abs(got[i] - want[i]), sites[i].name).toBeLessThan(1e-5);
    } finally {
      gpt2.resetHooks();
      cache.dispose();
    }
  });

  it('onProgress hears every pass, ending at the number of sites', () => {
    const sites = sitesOf(gpt2);
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [...new Set(sites.map((s) => s.name))] });
    logits.dispose();
    const calls: [number, number][] = [];
    patchSites(gpt2, CORRUPTED, cache, sites, logitDiff(7, 9), { batchSize: 2, onProgress: (d, t) => calls.push([d, t]) });
    cache.dispose();
    expect(calls.at(-1)).toEqual([sites.length, sites.length]);
    expect(calls.every(([d], i) => i === 0 || d > calls[i - 1][0])).toBe(true);
    expect(calls.length).toBeGreaterThan(sites.length / 2 - 1);
  });

  it('startLayer is the earliest block a variant touches, null outside the blocks', () => {
    expect(startLayer([actName('z', 3), actName('q', 1)])).toBe(1);
    expect(startLayer(['hook_embed', actName('z', 3)])).toBeNull();
    expect(startLayer(['ln_final.hook_scale'])).toBeNull();
  });

  it('variantsPerPass keeps a pass\'s attention scores under maxPassBytes and honours batchSize', () => {
    // gpt2 fixture: one variant of 2 × 5 tokens holds 2·heads·25·4 bytes of scores
    const per = 2 * gpt2.cfg.n_heads * 25 * 4;
    expect(variantsPerPass(gpt2, 2, 5, { maxPassBytes: 3 * per })).toBe(3);
    expect(variantsPerPass(gpt2, 2, 5, { batchSize: 2, maxPassBytes: 3 * per })).toBe(2);
    expect(variantsPerPass(gpt2, 2, 5, { maxPassBytes: 1 })).toBe(1);
    expect(() => variantsPerPass(gpt2, 2, 5, { batchSize: 0 })).toThrow(/positive integer/);
  });

  it('BaseRun gives resid_pre of any layer, in any order, and leaks nothing', () => {
    const { logits, cache } = gpt2.runWithCache(CORRUPTED, { names: (n) => n.endsWith('hook_resid_pre') });
    logits.dispose();
    const before = tf.memory().numTensors;
    const run = new BaseRun(gpt2, CORRUPTED);
    for (const l of [0, 1, 1, 0, 1]) {
      const d = tf.tidy(() => run.residPre(l).sub(cache.get(actName('resid_pre', l))).abs().max().dataSync()[0]);
      expect(d).toBeLessThan(1e-6);
    }
    run.dispose();
    cache.dispose();
    expect(tf.memory().numTensors).toBe(before - gpt2.cfg.n_layers);
  });
});
