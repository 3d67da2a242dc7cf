/**
 * Activation patching against exact arithmetic: a hand recomputation of one patched head on a tiny
 * attention-only model, "patch everything" giving the clean metric exactly, batched sweeps equal to one
 * forward per variant, GQA/MQA key/value sweeps against a direct hook, and leak tests.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { actName } from '../src/hooks/act_name.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { logitDiff, metricValue, normalized } from '../src/interp/metrics.js';
import {
  activationPatching,
  patchEveryBlock,
  patchEveryHead,
  patchHeadOutByPos,
  patchResidPre,
  patchSites,
  PATCH_COMPONENTS,
} from '../src/interp/interventions/patching.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES, PATCH_CLEAN, PATCH_CORRUPTED } from './helpers.js';

let gpt2: HookedTransformer;
let neox: HookedTransformer;
let gqa: HookedTransformer;
let mqa: HookedTransformer;
let toy: HookedTransformer;

const [CLEAN, CORRUPTED] = [PATCH_CLEAN, PATCH_CORRUPTED];
const metric = logitDiff([7, 8], [9, 12]);

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  neox = await loadPretrained(path.join(FIXTURES, 'pythia-parallel'));
  gqa = await loadPretrained(path.join(FIXTURES, 'llama-gqa'));
  mqa = await loadPretrained(path.join(FIXTURES, 'llama-mqa-tied-bias-bf16'));
  toy = HookedTransformer.random(
    makeConfig({ d_model: 12, n_layers: 2, n_heads: 3, d_head: 4, d_vocab: 64, n_ctx: 8, attn_only: true, normalization_type: 'LN' }),
    { seed: 11, std: 0.5 },
  );
});

afterAll(() => [gpt2, neox, gqa, mqa, toy].forEach((m) => m.dispose()));

const arr = (t: tf.Tensor) => t.arraySync() as never;

function metricOf(model: HookedTransformer, tokens: number[][], m = metric): number {
  const logits = model.forward(tokens);
  const v = metricValue(m, logits);
  logits.dispose();
  return v;
}

describe('activationPatching', () => {
  it("activationPatching('head-out') of a last-layer head equals a hand recomputation (residual + Δz·W_O, LayerNorm, unembed)", () => {
    const L = 1;
    const H = 2;
    const res = activationPatching(toy, 'head-out', { clean: CLEAN, corrupted: CORRUPTED, metric, byPos: false });
    const grab = (tokens: number[][]) => {
      const { logits, cache } = toy.runWithCache(tokens, { names: [actName('z', L), actName('resid_post', L)] });
      const out = { z: arr(cache.get(actName('z', L))) as number[][][][], resid: arr(cache.get(actName('resid_post', L))) as number[][][] };
      cache.dispose();
      logits.dispose();
      return out;
    };
    const clean = grab(CLEAN);
    const corr = grab(CORRUPTED);
    const WO: number[][][] = arr(toy.param(`blocks.${L}.attn.W_O`));
    const w: number[] = arr(toy.param('ln_final.w'));
    const b: number[] = arr(toy.param('ln_final.b'));
    const WU: number[][] = arr(toy.param('unembed.W_U'));
    const bU: number[] = arr(toy.param('unembed.b_U'));
    const { d_model: d, d_head: e, eps } = toy.cfg;
    const p = 4;
    const answers = [[7, 9], [8, 12]];
    let total = 0;
    for (let bi = 0; bi < 2; bi++) {
      const x = Array.from({ length: d }, (_, j) => {
        let delta = 0;
        for (let k = 0; k < e; k++) delta += (clean.z[bi][p][H][k] - corr.z[bi][p][H][k]) * WO[H][k][j];
        return corr.resid[bi][p][j] + delta;
      });
      const mean = x.reduce((s, v) => s + v, 0) / d;
      const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / d + eps);
      const n = x.map((v, j) => ((v - mean) / sd) * w[j] + b[j]);
      const logit = (t: number) => n.reduce((s, v, j) => s + v * WU[j][t], 0) + bU[t];
      total += logit(answers[bi][0]) - logit(answers[bi][1]);
    }
    expect(Math.abs(res.get(L, H) - total / 2)).toBeLessThan(1e-5);
    expect(res.meta.clean).toBeCloseTo(metricOf(toy, CLEAN), 6);
    expect(res.meta.corrupted).toBeCloseTo(metricOf(toy, CORRUPTED), 6);
    // by position, a last-layer head matters only at the read position
    const byPos = patchHeadOutByPos(toy, { clean: CLEAN, corrupted: CORRUPTED, metric });
    expect(byPos.axes.map((a) => a.name)).toEqual(['layer', 'pos', 'head']);
    for (let q = 0; q < 4; q++) expect(byPos.get(L, q, H)).toBe(res.meta.corrupted);
    expect(Math.abs(byPos.get(L, p, H) - res.get(L, H))).toBeLessThan(1e-6);
  });

  it('patching all of resid_pre 0 from clean gives the clean metric exactly; patching nothing the corrupted one', () => {
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [actName('resid_pre', 0)] });
    const clean = metricValue(metric, logits);
    const v = patchSites(gpt2, CORRUPTED, cache, [{ name: actName('resid_pre', 0) }, { name: actName('resid_pre', 0) }], metric);
    expect(v[0]).toBe(clean);
    expect(v[1]).toBe(clean);
    const rp = patchResidPre(gpt2, { clean: CLEAN, corrupted: CORRUPTED, metric });
    // positions the corruption did not touch and no earlier position was changed at: patching them is a no-op
    expect(rp.get(0, 0)).toBe(metricOf(gpt2, CORRUPTED));
    expect(rp.meta.clean).toBe(clean);
    cache.dispose();
    logits.dispose();
  });

  it('batched sweeps equal one forward per variant', () => {
    for (const model of [gpt2, neox]) {
      const a = patchEveryBlock(model, { clean: CLEAN, corrupted: CORRUPTED, metric });
      const b = patchEveryBlock(model, { clean: CLEAN, corrupted: CORRUPTED, metric, batchSize: 1 });
      for (const k of Object.keys(a) as (keyof typeof a)[]) {
        const d = Math.max(...a[k]!.values.map((v, i) => Math.abs(v - b[k]!.values[i])));
        expect(d, k).toBeLessThan(1e-5);
      }
      const h1 = patchEveryHead(model, { clean: CLEAN, corrupted: CORRUPTED, metric, byPos: true, batchSize: 7 });
      const h2 = patchEveryHead(model, { clean: CLEAN, corrupted: CORRUPTED, metric, byPos: true, batchSize: 1 });
      for (const k of Object.keys(h1) as (keyof typeof h1)[]) {
        expect(h1[k]!.shape).toEqual([2, 5, 4]);
        expect(Math.max(...h1[k]!.values.map((v, i) => Math.abs(v - h2[k]!.values[i]))), k).toBeLessThan(1e-5);
      }
    }
  });

  it("noising (corrupted into clean) of resid_pre at the last position of layer 0 gives the corrupted metric when the run's only difference is there", () => {
    const clean = [[10, 20, 30, 40, 50]];
    const corrupted = [[10, 20, 30, 40, 55]];
    const m = logitDiff(7, 9);
    const r = activationPatching(gpt2, 'resid-pre', { clean, corrupted, metric: m, direction: 'noising' });
    expect(r.get(0, 4)).toBe(r.meta.corrupted);
    expect(r.get(0, 1)).toBe(r.meta.clean);
  });

  for (const [label, get] of [
    ['GQA', () => gqa],
    ['MQA', () => mqa],
  ] as const) {
    it(`every component works under ${label}; head-k patches a key/value head exactly as a direct hook does`, () => {
      const model = get();
      const every = patchEveryHead(model, { clean: CLEAN, corrupted: CORRUPTED, metric });
      expect(every['head-k']!.axes[1]).toEqual({ name: 'kv_head', labels: Array.from({ length: model.cfg.n_key_value_heads }, (_, i) => `H${i}`) });
      expect(every['head-out']!.shape).toEqual([2, model.cfg.n_heads]);
      const { logits, cache } = model.runWithCache(CLEAN, { names: [actName('k', 1)] });
      logits.dispose();
      const ck = cache.get(actName('k', 1));
      const g = model.cfg.n_key_value_heads - 1;
      const direct = model.runWithHooks(CORRUPTED, {
        fwdHooks: [[actName('k', 1), (k) => {
          const sel = tf.tensor4d(Array.from({ length: model.cfg.n_key_value_heads }, (_, i) => (i === g ? 1 : 0)), [1, 1, model.cfg.n_key_value_heads, 1]).cast('bool');
          return tf.where(sel, ck, k);
        }]],
      });
      expect(Math.abs(every['head-k']!.get(1, g) - metricValue(metric, direct))).toBeLessThan(1e-6);
      direct.dispose();
      cache.dispose();
      for (const c of PATCH_COMPONENTS.filter((c) => c !== 'resid-mid' || !model.cfg.parallel_attn_mlp)) {
        const r = activationPatching(model, c, { clean: [CLEAN[0]], corrupted: [CORRUPTED[0]], metric: logitDiff(7, 9) });
        expect(r.values.every(Number.isFinite), c).toBe(true);
      }
    });
  }

  it('activationPatching localises a planted copy head (IOI-style prompts, hand-built weights)', () => {
    // 1 layer, 2 heads, no norm. Tokens and positions are one-hot (dims 0–15 and 16–23). Head 0 attends from
    // every position to position 1 (key from the position-1 dim, constant query) and copies its token ×5 into
    // the logits; head 1 attends uniformly and copies ×1 (a distractor that sees both names equally).
    const cfg = makeConfig({ d_model: 32, n_layers: 1, n_heads: 2, d_head: 16, d_vocab: 16, n_ctx: 8, attn_only: true, normalization_type: null });
    const m = HookedTransformer.random(cfg, { seed: 1 });
    const z = (shape: number[]) => tf.buffer(shape);
    const WE = z([16, 32]);
    const Wpos = z([8, 32]);
    const WQ = z([2, 32, 16]);
    const bQ = z([2, 16]);
    const WK = z([2, 32, 16]);
    const WV = z([2, 32, 16]);
    const WO = z([2, 16, 32]);
    const WU = z([32, 16]);
    for (let t = 0; t < 16; t++) (WE.set(1, t, t), WU.set(1, t, t));
    for (let p = 0; p < 8; p++) Wpos.set(1, p, 16 + p);
    bQ.set(40, 0, 0);
    WK.set(1, 0, 17, 0);
    for (let t = 0; t < 16; t++) for (const [h, gain] of [[0, 5], [1, 1]]) (WV.set(1, h, t, t), WO.set(gain, h, t, t));
    m.setParams({
      'embed.W_E': WE.toTensor(), 'pos_embed.W_pos': Wpos.toTensor(), 'blocks.0.attn.W_Q': WQ.toTensor(), 'blocks.0.attn.b_Q': bQ.toTensor(),
      'blocks.0.attn.W_K': WK.toTensor(), 'blocks.0.attn.W_V': WV.toTensor(), 'blocks.0.attn.W_O': WO.toTensor(), 'unembed.W_U': WU.toTensor(),
    });
    const M = 3;
    const J = 4;
    const clean = [[0, M, 5, J, 6, 7, 8]]; // "<bos> M and J … to" → M
    const corrupted = [[0, J, 5, M, 6, 7, 8]]; // names swapped → J
    const ld = logitDiff(M, J);
    const cleanLd = metricOf(m, clean, ld);
    const corruptedLd = metricOf(m, corrupted, ld);
    expect(cleanLd).toBeCloseTo(5, 2);
    expect(corruptedLd).toBeCloseTo(-5, 2);
    const heads = activationPatching(m, 'head-out', { clean, corrupted, metric: normalized(ld, cleanLd, corruptedLd) });
    expect(heads.get(0, 0)).toBeGreaterThan(0.99);
    expect(Math.abs(heads.get(0, 1))).toBeLessThan(0.01);
    const resid = activationPatching(m, 'resid-pre', { clean, corrupted, metric: normalized(ld, cleanLd, corruptedLd) });
    // by hand: patching position 1 (clean M) makes both name slots M, position 3 (clean J) both J. Head 1
    // (uniform over 7 keys, ×1) then adds ±2/7 to the logit difference; head 0 (×5) reads position 1 only.
    expect(resid.get(0, 1)).toBeCloseTo((5 + 2 / 7 + 5) / 10, 3);
    expect(resid.get(0, 3)).toBeCloseTo((-5 - 2 / 7 + 5) / 10, 3);
    m.dispose();
  });

  it('bad sites and mismatched prompts are HeadlensErrors', () => {
    const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [actName('z', 0)] });
    logits.dispose();
    expect(() => patchSites(gpt2, CORRUPTED, cache, [{ name: actName('z', 1) }], metric)).toThrow(/holds no/);
    expect(() => patchSites(gpt2, CORRUPTED, cache, [{ name: actName('z', 0), head: 4 }], metric)).toThrow(HeadlensError);
    expect(() => patchSites(gpt2, [CORRUPTED[0]], cache, [{ name: actName('z', 0) }], metric)).toThrow(/same batch size/);
    expect(() => activationPatching(neox, 'resid-mid', { clean: CLEAN, corrupted: CORRUPTED, metric })).toThrow(HeadlensError);
    expect(() => activationPatching(gpt2, 'nope' as never, { clean: CLEAN, corrupted: CORRUPTED, metric })).toThrow(HeadlensError);
    cache.dispose();
  });

  it('activationPatching / patchEveryHead / patchSites, 5 times, leave numTensors unchanged', () => {
    const once = () => {
      activationPatching(gpt2, 'head-pattern', { clean: CLEAN, corrupted: CORRUPTED, metric, byPos: true });
      patchEveryHead(gqa, { clean: CLEAN, corrupted: CORRUPTED, metric, batchSize: 8 });
      const { logits, cache } = gpt2.runWithCache(CLEAN, { names: [actName('mlp_out', 1)] });
      patchSites(gpt2, CORRUPTED, cache, [{ name: actName('mlp_out', 1), pos: 2 }], metric);
      cache.dispose();
      logits.dispose();
    };
    once();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) once();
    expect(tf.memory().numTensors).toBe(before);
  });
});
