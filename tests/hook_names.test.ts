/**
 * The hook names are API: notebooks and saved caches refer to them by string. This file freezes the
 * exact ordered list for every family (written out by hand from the TransformerLens naming in
 * STYLE.md), checks that a forward pass visits them in exactly that order, and that every activation
 * has the shape the naming convention promises.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig, type HookedConfig } from '../src/model/config.js';
import { hookNames } from '../src/model/transformer.js';
import { FIXTURES } from './helpers.js';

const BATCH = 2;
const POS = 5;
/** Token ids valid in every model below (the smallest vocabulary has 20 tokens). */
const TOKENS = [
  [1, 7, 3, 12, 5],
  [9, 2, 14, 0, 11],
];

const models: Record<string, HookedTransformer> = {};

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const name of ['gpt2', 'pythia-parallel', 'neox-sequential', 'llama-gqa']) {
    models[name] = await loadPretrained(path.join(FIXTURES, name));
  }
  models['attn-only'] = HookedTransformer.random(ATTN_ONLY_CFG, { seed: 1 });
  models['attn-only-no-norm'] = HookedTransformer.random(makeConfig({ ...ATTN_ONLY_INPUT, normalization_type: null }), { seed: 2 });
});

afterAll(() => {
  for (const m of Object.values(models)) m.dispose();
});

const ATTN_ONLY_INPUT = {
  model_name: 'attn-only-2l',
  d_model: 16,
  n_layers: 2,
  n_heads: 2,
  d_head: 8,
  d_vocab: 20,
  n_ctx: 16,
  attn_only: true,
} as const;
const ATTN_ONLY_CFG = makeConfig(ATTN_ONLY_INPUT);

// ---- the frozen lists, block 0 of each family (block 1 is the same with blocks.1.) ----

const GPT2_BLOCK = (l: number, withResult: boolean) => [
  `blocks.${l}.hook_resid_pre`,
  `blocks.${l}.ln1.hook_scale`,
  `blocks.${l}.ln1.hook_normalized`,
  `blocks.${l}.attn.hook_q`,
  `blocks.${l}.attn.hook_k`,
  `blocks.${l}.attn.hook_v`,
  `blocks.${l}.attn.hook_attn_scores`,
  `blocks.${l}.attn.hook_pattern`,
  `blocks.${l}.attn.hook_z`,
  ...(withResult ? [`blocks.${l}.attn.hook_result`] : []),
  `blocks.${l}.hook_attn_out`,
  `blocks.${l}.hook_resid_mid`,
  `blocks.${l}.ln2.hook_scale`,
  `blocks.${l}.ln2.hook_normalized`,
  `blocks.${l}.mlp.hook_pre`,
  `blocks.${l}.mlp.hook_post`,
  `blocks.${l}.hook_mlp_out`,
  `blocks.${l}.hook_resid_post`,
];

/** GPT-NeoX with use_parallel_residual (Pythia): no resid_mid, ln2 reads resid_pre. */
const PYTHIA_BLOCK = (l: number, withResult: boolean) => [
  `blocks.${l}.hook_resid_pre`,
  `blocks.${l}.ln1.hook_scale`,
  `blocks.${l}.ln1.hook_normalized`,
  `blocks.${l}.attn.hook_q`,
  `blocks.${l}.attn.hook_k`,
  `blocks.${l}.attn.hook_v`,
  `blocks.${l}.attn.hook_rot_q`,
  `blocks.${l}.attn.hook_rot_k`,
  `blocks.${l}.attn.hook_attn_scores`,
  `blocks.${l}.attn.hook_pattern`,
  `blocks.${l}.attn.hook_z`,
  ...(withResult ? [`blocks.${l}.attn.hook_result`] : []),
  `blocks.${l}.hook_attn_out`,
  `blocks.${l}.ln2.hook_scale`,
  `blocks.${l}.ln2.hook_normalized`,
  `blocks.${l}.mlp.hook_pre`,
  `blocks.${l}.mlp.hook_post`,
  `blocks.${l}.hook_mlp_out`,
  `blocks.${l}.hook_resid_post`,
];

const NEOX_SEQUENTIAL_BLOCK = (l: number, withResult: boolean) => [
  `blocks.${l}.hook_resid_pre`,
  `blocks.${l}.ln1.hook_scale`,
  `blocks.${l}.ln1.hook_normalized`,
  `blocks.${l}.attn.hook_q`,
  `blocks.${l}.attn.hook_k`,
  `blocks.${l}.attn.hook_v`,
  `blocks.${l}.attn.hook_rot_q`,
  `blocks.${l}.attn.hook_rot_k`,
  `blocks.${l}.attn.hook_attn_scores`,
  `blocks.${l}.attn.hook_pattern`,
  `blocks.${l}.attn.hook_z`,
  ...(withResult ? [`blocks.${l}.attn.hook_result`] : []),
  `blocks.${l}.hook_attn_out`,
  `blocks.${l}.hook_resid_mid`,
  `blocks.${l}.ln2.hook_scale`,
  `blocks.${l}.ln2.hook_normalized`,
  `blocks.${l}.mlp.hook_pre`,
  `blocks.${l}.mlp.hook_post`,
  `blocks.${l}.hook_mlp_out`,
  `blocks.${l}.hook_resid_post`,
];

/** Llama: RMSNorm (hook_scale too), rotary, gated MLP (hook_pre is the gate's input, hook_pre_linear the up projection). */
const LLAMA_BLOCK = (l: number, withResult: boolean) => [
  `blocks.${l}.hook_resid_pre`,
  `blocks.${l}.ln1.hook_scale`,
  `blocks.${l}.ln1.hook_normalized`,
  `blocks.${l}.attn.hook_q`,
  `blocks.${l}.attn.hook_k`,
  `blocks.${l}.attn.hook_v`,
  `blocks.${l}.attn.hook_rot_q`,
  `blocks.${l}.attn.hook_rot_k`,
  `blocks.${l}.attn.hook_attn_scores`,
  `blocks.${l}.attn.hook_pattern`,
  `blocks.${l}.attn.hook_z`,
  ...(withResult ? [`blocks.${l}.attn.hook_result`] : []),
  `blocks.${l}.hook_attn_out`,
  `blocks.${l}.hook_resid_mid`,
  `blocks.${l}.ln2.hook_scale`,
  `blocks.${l}.ln2.hook_normalized`,
  `blocks.${l}.mlp.hook_pre`,
  `blocks.${l}.mlp.hook_pre_linear`,
  `blocks.${l}.mlp.hook_post`,
  `blocks.${l}.hook_mlp_out`,
  `blocks.${l}.hook_resid_post`,
];

const ATTN_ONLY_BLOCK = (l: number, withResult: boolean) => [
  `blocks.${l}.hook_resid_pre`,
  `blocks.${l}.ln1.hook_scale`,
  `blocks.${l}.ln1.hook_normalized`,
  `blocks.${l}.attn.hook_q`,
  `blocks.${l}.attn.hook_k`,
  `blocks.${l}.attn.hook_v`,
  `blocks.${l}.attn.hook_attn_scores`,
  `blocks.${l}.attn.hook_pattern`,
  `blocks.${l}.attn.hook_z`,
  ...(withResult ? [`blocks.${l}.attn.hook_result`] : []),
  `blocks.${l}.hook_attn_out`,
  `blocks.${l}.hook_resid_post`,
];

const ATTN_ONLY_NO_NORM_BLOCK = (l: number, withResult: boolean) => [
  `blocks.${l}.hook_resid_pre`,
  `blocks.${l}.attn.hook_q`,
  `blocks.${l}.attn.hook_k`,
  `blocks.${l}.attn.hook_v`,
  `blocks.${l}.attn.hook_attn_scores`,
  `blocks.${l}.attn.hook_pattern`,
  `blocks.${l}.attn.hook_z`,
  ...(withResult ? [`blocks.${l}.attn.hook_result`] : []),
  `blocks.${l}.hook_attn_out`,
  `blocks.${l}.hook_resid_post`,
];

const FINAL_LN = ['ln_final.hook_scale', 'ln_final.hook_normalized'];

interface Frozen {
  head: string[];
  block: (l: number, withResult: boolean) => string[];
  tail: string[];
  /** Counts without and with attn.hook_result, and the first and last names, written out literally. */
  count: number;
  countWithResult: number;
  first: string;
  last: string;
}

const FROZEN: Record<string, Frozen> = {
  gpt2: { head: ['hook_embed', 'hook_pos_embed'], block: GPT2_BLOCK, tail: FINAL_LN, count: 38, countWithResult: 40, first: 'hook_embed', last: 'ln_final.hook_normalized' },
  'pythia-parallel': { head: ['hook_embed'], block: PYTHIA_BLOCK, tail: FINAL_LN, count: 39, countWithResult: 41, first: 'hook_embed', last: 'ln_final.hook_normalized' },
  'neox-sequential': { head: ['hook_embed'], block: NEOX_SEQUENTIAL_BLOCK, tail: FINAL_LN, count: 41, countWithResult: 43, first: 'hook_embed', last: 'ln_final.hook_normalized' },
  'llama-gqa': { head: ['hook_embed'], block: LLAMA_BLOCK, tail: FINAL_LN, count: 43, countWithResult: 45, first: 'hook_embed', last: 'ln_final.hook_normalized' },
  'attn-only': { head: ['hook_embed', 'hook_pos_embed'], block: ATTN_ONLY_BLOCK, tail: FINAL_LN, count: 26, countWithResult: 28, first: 'hook_embed', last: 'ln_final.hook_normalized' },
  'attn-only-no-norm': { head: ['hook_embed', 'hook_pos_embed'], block: ATTN_ONLY_NO_NORM_BLOCK, tail: [], count: 20, countWithResult: 22, first: 'hook_embed', last: 'blocks.1.hook_resid_post' },
};

function frozenList(f: Frozen, nLayers: number, withResult: boolean): string[] {
  return [...f.head, ...Array.from({ length: nLayers }, (_, l) => f.block(l, withResult)).flat(), ...f.tail];
}

/** The shape each hook point must have, from its name (DESIGN.md, "Semantics"). */
function expectedShape(cfg: HookedConfig, name: string): number[] {
  const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = cfg;
  const leaf = name.replace(/^blocks\.\d+\./, '');
  if (/hook_scale$/.test(leaf)) return [BATCH, POS, 1];
  if (/^attn\.hook_(q|rot_q|z)$/.test(leaf)) return [BATCH, POS, h, e];
  if (/^attn\.hook_(k|v|rot_k)$/.test(leaf)) return [BATCH, POS, kv, e];
  if (/^attn\.hook_(attn_scores|pattern)$/.test(leaf)) return [BATCH, h, POS, POS];
  if (leaf === 'attn.hook_result') return [BATCH, POS, h, d];
  if (/^mlp\.hook_(pre|pre_linear|post)$/.test(leaf)) return [BATCH, POS, cfg.d_mlp!];
  if (/^(hook_(embed|pos_embed|resid_pre|resid_mid|resid_post|attn_out|mlp_out)|ln[12]\.hook_normalized|ln_final\.hook_normalized)$/.test(leaf)) return [BATCH, POS, d];
  throw new Error(`no shape convention for ${name}`);
}

describe.each(Object.keys(FROZEN))('hook names of %s', (name) => {
  const f = FROZEN[name];

  it('model.hookNames() is the frozen ordered list', () => {
    const model = models[name];
    expect(model.cfg.n_layers).toBe(2);
    const names = model.hookNames();
    expect(names).toEqual(frozenList(f, 2, false));
    expect(names.length).toBe(f.count);
    expect(names[0]).toBe(f.first);
    expect(names[names.length - 1]).toBe(f.last);
    expect(names).not.toContain('blocks.0.attn.hook_result');
    expect(new Set(names).size).toBe(names.length);
  });

  it('hookNames(cfg, {withResult: true}) adds attn.hook_result right after attn.hook_z', () => {
    const model = models[name];
    const names = hookNames(model.cfg, { withResult: true });
    expect(names).toEqual(frozenList(f, 2, true));
    expect(names).toEqual(model.hookNames({ withResult: true }));
    expect(names.length).toBe(f.countWithResult);
    for (const l of [0, 1]) expect(names.indexOf(`blocks.${l}.attn.hook_result`)).toBe(names.indexOf(`blocks.${l}.attn.hook_z`) + 1);
  });

  it('runWithHooks with a hook on every point visits exactly hookNames({withResult: true}), in order', () => {
    const model = models[name];
    const seen: string[] = [];
    const logits = model.runWithHooks(TOKENS, {
      fwdHooks: [
        [
          () => true,
          (_act, { name: n }) => {
            seen.push(n);
          },
        ],
      ],
    });
    logits.dispose();
    expect(seen).toEqual(model.hookNames({ withResult: true }));
  });

  it('every hook point has the conventional shape', () => {
    const model = models[name];
    const shapes = new Map<string, number[]>();
    const logits = model.runWithHooks(TOKENS, {
      fwdHooks: [
        [
          () => true,
          (act, { name: n }) => {
            shapes.set(n, act.shape);
          },
        ],
      ],
    });
    expect(logits.shape).toEqual([BATCH, POS, model.cfg.d_vocab]);
    logits.dispose();
    for (const [n, shape] of shapes) expect(shape, n).toEqual(expectedShape(model.cfg, n));
  });

  it('attn.hook_result summed over heads plus b_O is hook_attn_out', () => {
    const model = models[name];
    const { logits, cache } = model.runWithCache(TOKENS, { names: (n) => /attn\.hook_result$|hook_attn_out$/.test(n) });
    try {
      for (let l = 0; l < model.cfg.n_layers; l++) {
        const diff = tf.tidy(() =>
          cache.get(`blocks.${l}.attn.hook_result`).sum(2).add(model.param(`blocks.${l}.attn.b_O`)).sub(cache.get(`blocks.${l}.hook_attn_out`)).abs().max().dataSync()[0],
        );
        expect(diff, `layer ${l}`).toBeLessThan(1e-5);
      }
    } finally {
      cache.dispose();
      logits.dispose();
    }
  });
});

describe('grouped-query attention (llama-gqa: 8 query heads, 2 key/value heads)', () => {
  it('hook_q has 8 heads, hook_k, hook_v, hook_rot_k have 2, pattern and z have 8', () => {
    const model = models['llama-gqa'];
    expect([model.cfg.n_heads, model.cfg.n_key_value_heads, model.cfg.d_head]).toEqual([8, 2, 8]);
    const { logits, cache } = model.runWithCache(TOKENS, { names: (n) => n.startsWith('blocks.1.attn.') });
    try {
      expect(cache.get('blocks.1.attn.hook_q').shape).toEqual([BATCH, POS, 8, 8]);
      expect(cache.get('blocks.1.attn.hook_rot_q').shape).toEqual([BATCH, POS, 8, 8]);
      expect(cache.get('blocks.1.attn.hook_k').shape).toEqual([BATCH, POS, 2, 8]);
      expect(cache.get('blocks.1.attn.hook_rot_k').shape).toEqual([BATCH, POS, 2, 8]);
      expect(cache.get('blocks.1.attn.hook_v').shape).toEqual([BATCH, POS, 2, 8]);
      expect(cache.get('blocks.1.attn.hook_attn_scores').shape).toEqual([BATCH, 8, POS, POS]);
      expect(cache.get('blocks.1.attn.hook_pattern').shape).toEqual([BATCH, 8, POS, POS]);
      expect(cache.get('blocks.1.attn.hook_z').shape).toEqual([BATCH, POS, 8, 8]);
      expect(cache.get('blocks.1.attn.hook_result').shape).toEqual([BATCH, POS, 8, 64]);
    } finally {
      cache.dispose();
      logits.dispose();
    }
  });
});
