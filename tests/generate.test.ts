/**
 * model.generate with a KV cache against the reference it must equal: re-running the whole growing sequence at
 * every step (itself checked against transformers by parity.test.ts). Every fixture family: learned positions
 * (gpt2), rotary parallel and sequential (pythia, neox), grouped and multi-query attention (llama), a sliding
 * window shorter than the prompt (mistral), qwen2's biases.
 */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { greedyDecode } from '../src/interp/scores/retrieval.js';
import { actName } from '../src/hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { KVCache } from '../src/model/kv_cache.js';
import { headlensError } from './expect_error.js';
import { FIXTURES, fixtureModels } from './helpers.js';

const models = new Map<string, HookedTransformer>();
const PROMPT = [3, 17, 42, 5, 99, 7, 23, 61, 8, 150];

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  for (const name of fixtureModels()) models.set(name, await loadPretrained(path.join(FIXTURES, name)));
});

afterAll(() => {
  for (const m of models.values()) m.dispose();
});

/** Last-position logits of a full forward on `seq` (hooks applied), as numbers. */
function fullLast(model: HookedTransformer, seq: number[], fwdHooks?: FwdHook[]): Float32Array {
  const logits = model.runWithHooks([seq], { fwdHooks });
  const last = tf.tidy(() => logits.slice([0, seq.length - 1, 0], [1, 1, -1]).reshape([-1]).dataSync() as Float32Array);
  logits.dispose();
  return last;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Generates with the cache, recording each step's last logits, and checks every step against the full re-run. */
function checkAgainstRerun(model: HookedTransformer, prompt: number[], maxNewTokens: number, fwdHooks?: FwdHook[]): { tokens: number[]; worst: number } {
  const r = model.generate<Float32Array>([prompt], { maxNewTokens, fwdHooks, onStep: (s) => s.logits.dataSync().slice() as Float32Array });
  const tokens = r.tokens[0];
  expect(tokens).toHaveLength(maxNewTokens);
  expect(r.records).toHaveLength(maxNewTokens);
  let worst = 0;
  for (let s = 0; s < maxNewTokens; s++) {
    const ref = fullLast(model, [...prompt, ...tokens.slice(0, s)], fwdHooks);
    worst = Math.max(worst, maxDiff(r.records[s], ref));
    expect(tokens[s], `step ${s}`).toBe(argmax(ref));
  }
  return { tokens, worst };
}

describe('generate with a KV cache equals re-running the full sequence', () => {
  it.each(fixtureModels())('%s: the same greedy tokens and last-position logits within 1e-4 at every step', (name) => {
    const model = models.get(name)!;
    const { worst } = checkAgainstRerun(model, PROMPT, 12);
    console.log(`generate ${name}: max |Δlogit| vs full re-run ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  });

  it('forward with a KVCache, fed in chunks (the later ones past the sliding window), gives the full forward\'s logits at those positions', () => {
    for (const name of ['mistral-sliding', 'gpt2', 'pythia-parallel']) {
      const model = models.get(name)!;
      const seq = [...PROMPT, 11, 12, 13, 14, 15, 16];
      const full = model.forward([seq]);
      const kv = new KVCache(model.cfg.n_layers);
      const chunks = [seq.slice(0, 7), seq.slice(7, 8), seq.slice(8)];
      const parts = chunks.map((c) => model.forward([c], { kvCache: kv }));
      expect(kv.length).toBe(seq.length);
      const joined = tf.concat(parts, 1);
      const diff = tf.tidy(() => full.sub(joined).abs().max().dataSync()[0]);
      expect(diff, name).toBeLessThan(1e-4);
      tf.dispose([full, joined, ...parts]);
      kv.dispose();
    }
  });

  it('a batch of two prompts decodes each row as it would alone', () => {
    const model = models.get('llama-gqa')!;
    const other = [...PROMPT].reverse();
    const both = model.generate([PROMPT, other], { maxNewTokens: 6 }).tokens;
    expect(both[0]).toEqual(model.generate([PROMPT], { maxNewTokens: 6 }).tokens[0]);
    expect(both[1]).toEqual(model.generate([other], { maxNewTokens: 6 }).tokens[0]);
  });
});

describe('generate: hooks apply at every step', () => {
  it.each(['gpt2', 'llama-gqa', 'mistral-sliding'])('%s: a head zero-ablated at hook_z gives the full re-run\'s tokens and logits with the same hook', (name) => {
    const model = models.get(name)!;
    const { n_heads } = model.cfg;
    const ablate: FwdHook = [
      actName('z', 0),
      (z) => tf.tidy(() => z.mul(tf.tensor1d(Array.from({ length: n_heads }, (_, h) => (h === 1 ? 0 : 1))).reshape([1, 1, n_heads, 1]))),
    ];
    const hooked = checkAgainstRerun(model, PROMPT, 8, [ablate]);
    expect(hooked.worst).toBeLessThan(1e-4);
    // the hook changed something: the logits differ from the unhooked run's (so the test is not vacuous)
    const plainFirst = fullLast(model, PROMPT);
    const hookedFirst = fullLast(model, PROMPT, [ablate]);
    expect(maxDiff(plainFirst, hookedFirst)).toBeGreaterThan(1e-4);
  });

  it('at a decoding step hook_pattern sees only the new query row, [batch, head, 1, key_pos]', () => {
    const model = models.get('gpt2')!;
    const shapes: number[][] = [];
    model.generate([PROMPT], { maxNewTokens: 3, fwdHooks: [[actName('pattern', 0), (p) => void shapes.push(p.shape)]] });
    expect(shapes).toEqual([
      [1, model.cfg.n_heads, PROMPT.length, PROMPT.length],
      [1, model.cfg.n_heads, 1, PROMPT.length + 1],
      [1, model.cfg.n_heads, 1, PROMPT.length + 2],
    ]);
  });

  it('names: each step\'s cache holds the asked activations, patterns as the last query row', () => {
    const model = models.get('qwen2')!;
    const shapes = model.generate([PROMPT], { maxNewTokens: 3, names: [actName('pattern', 1), actName('resid_post', 1)], onStep: (s) => [s.cache!.get(actName('pattern', 1)).shape, s.cache!.get(actName('resid_post', 1)).shape] }).records;
    const { n_heads, d_model } = model.cfg;
    expect(shapes).toEqual([
      [[1, n_heads, 1, 10], [1, 10, d_model]],
      [[1, n_heads, 1, 11], [1, 1, d_model]],
      [[1, n_heads, 1, 12], [1, 1, d_model]],
    ]);
  });
});

describe('generate: decodeHooks apply from the last prompt token on, the prompt before it intact (Wu et al.\'s masking)', () => {
  /** Zero-ablates head 1's z at the query positions ≥ from (all positions of a forward fed after them). */
  const ablateFrom = (n_heads: number, from: number): FwdHook => [
    actName('z', 0),
    (z) => tf.tidy(() => {
      const [, pos] = z.shape; // [batch, pos, head, d_head]
      const start = pos === 1 ? 0 : from; // a decoding step feeds one position, past `from`
      const m = Array.from({ length: pos * n_heads }, (_, i) => (Math.floor(i / n_heads) >= start && i % n_heads === 1 ? 0 : 1));
      return z.mul(tf.tensor4d(m, [1, pos, n_heads, 1]));
    }),
  ];

  it.each(['gpt2', 'llama-gqa'])('%s: each step equals a full re-run hooked at positions ≥ prompt length − 1 only, and differs from hooking every position', (name) => {
    const model = models.get(name)!;
    const { n_heads } = model.cfg;
    const everywhere = ablateFrom(n_heads, 0);
    const r = model.generate<Float32Array>([PROMPT], { maxNewTokens: 6, decodeHooks: [everywhere], onStep: (s) => s.logits.dataSync().slice() as Float32Array });
    const tokens = r.tokens[0];
    const restricted = ablateFrom(n_heads, PROMPT.length - 1);
    let worst = 0;
    let fromEverywhere = 0;
    for (let s = 0; s < tokens.length; s++) {
      const seq = [...PROMPT, ...tokens.slice(0, s)];
      const ref = fullLast(model, seq, [restricted]);
      worst = Math.max(worst, maxDiff(r.records[s], ref));
      fromEverywhere = Math.max(fromEverywhere, maxDiff(r.records[s], fullLast(model, seq, [everywhere])));
      expect(tokens[s], `step ${s}`).toBe(argmax(ref));
    }
    console.log(`decodeHooks ${name}: max |Δlogit| vs restricted re-run ${worst.toExponential(2)}, vs hooked everywhere ${fromEverywhere.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
    expect(fromEverywhere).toBeGreaterThan(1e-4); // the prompt's own positions matter: not vacuous
    expect(maxDiff(r.records[0], fullLast(model, PROMPT))).toBeGreaterThan(1e-4); // and the hook does act at step 0
  });

  it('the prefill runs the prompt minus its last token without them; decode hooks see step 0 (the last prompt token) and each later step', () => {
    const model = models.get('gpt2')!;
    const all: number[][] = [];
    const decode: number[][] = [];
    model.generate([PROMPT], { maxNewTokens: 3, fwdHooks: [[actName('pattern', 0), (p) => void all.push(p.shape)]], decodeHooks: [[actName('pattern', 0), (p) => void decode.push(p.shape)]] });
    const h = model.cfg.n_heads;
    const P = PROMPT.length;
    expect(all).toEqual([[1, h, P - 1, P - 1], [1, h, 1, P], [1, h, 1, P + 1], [1, h, 1, P + 2]]);
    expect(decode).toEqual([[1, h, 1, P], [1, h, 1, P + 1], [1, h, 1, P + 2]]);
    // without decode hooks nothing changes: the whole prompt is the prefill
    const plain = model.generate([PROMPT], { maxNewTokens: 3 }).tokens;
    expect(model.generate([PROMPT], { maxNewTokens: 3, decodeHooks: [] }).tokens).toEqual(plain);
    expect(model.generate([PROMPT], { maxNewTokens: 3, decodeHooks: [[actName('pattern', 0), () => undefined]] }).tokens).toEqual(plain);
    // a one-token prompt has no prefill
    expect(model.generate([[7]], { maxNewTokens: 2, decodeHooks: [[actName('pattern', 0), () => undefined]] }).tokens).toEqual(model.generate([[7]], { maxNewTokens: 2 }).tokens);
  });

  it('a second call with decodeHooks leaves tf.memory().numTensors unchanged', () => {
    const model = models.get('llama-gqa')!;
    const call = () => model.generate([PROMPT], { maxNewTokens: 4, names: [actName('pattern', 0)], decodeHooks: [[actName('z', 1), (z) => tf.tidy(() => z.mul(0.5))]], onStep: (s) => s.cache!.get(actName('pattern', 0)).shape[3] });
    call();
    const before = tf.memory().numTensors;
    expect(call().records).toEqual([10, 11, 12, 13]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('generate: sampling, stopping, the context', () => {
  it('greedy is the default: temperature 0 and absent give the same tokens', () => {
    const model = models.get('pythia-parallel')!;
    expect(model.generate([PROMPT], { maxNewTokens: 8, temperature: 0 }).tokens).toEqual(model.generate([PROMPT], { maxNewTokens: 8 }).tokens);
  });

  it('seeded sampling is reproducible, other seeds give other samples, and topK keeps every token among the K largest logits', () => {
    const model = models.get('gpt2')!;
    const run = (seed: number, topK?: number) =>
      model.generate<boolean>([PROMPT], {
        maxNewTokens: 12,
        temperature: 5, // random fixture logits are small: a high temperature makes the sample spread
        topK,
        seed,
        onStep: (s) => {
          const row = s.logits.dataSync();
          const kth = [...row].sort((a, b) => b - a)[(topK ?? row.length) - 1];
          return row[s.tokens[0]] >= kth;
        },
      });
    const a = run(7);
    expect(run(7).tokens).toEqual(a.tokens);
    const others = [1, 2, 3].map((s) => run(s).tokens[0]);
    expect(others.some((t) => t.join() !== a.tokens[0].join())).toBe(true);
    const k3 = run(7, 3);
    expect(k3.records.every(Boolean)).toBe(true);
    // with K = 3 over 12 steps at a high temperature, not every token is the argmax
    const greedy = model.generate([PROMPT], { maxNewTokens: 12 }).tokens[0];
    expect(k3.tokens[0].join()).not.toBe(greedy.join());
    // topK 1 is greedy whatever the temperature
    expect(run(7, 1).tokens[0]).toEqual(greedy);
  });

  it('a stop token ends the row, included in the output', () => {
    const model = models.get('llama-gqa')!;
    const free = model.generate([PROMPT], { maxNewTokens: 8 }).tokens[0];
    const stopAt = free.indexOf(free[3]); // the first step that writes free[3]
    const r = model.generate([PROMPT], { maxNewTokens: 8, stopTokens: [free[3]] });
    expect(r.tokens[0]).toEqual(free.slice(0, stopAt + 1));
    expect(r.stop).toBe('stop');
    expect(model.generate([PROMPT], { maxNewTokens: 8 }).stop).toBe('max');
  });

  it('stops when the sequence fills n_ctx (stop: n_ctx), returning the token predicted at the last position', () => {
    const model = models.get('gpt2')!; // n_ctx 32
    const prompt = Array.from({ length: 30 }, (_, i) => (i * 7) % 200);
    const r = model.generate([prompt], { maxNewTokens: 10 });
    expect(r.tokens[0]).toHaveLength(3); // fed positions 29, 30, 31
    expect(r.stop).toBe('n_ctx');
    expect(headlensError(() => model.generate([Array.from({ length: 33 }, () => 1)], { maxNewTokens: 1 })).message).toMatch(/longer than the model's context/);
    const kv = new KVCache(model.cfg.n_layers);
    model.forward([prompt], { kvCache: kv }).dispose();
    expect(headlensError(() => model.forward([[1, 2, 3]], { kvCache: kv })).message).toMatch(/n_ctx 32.*feed at most 2/);
    expect(kv.length).toBe(30); // a refused forward leaves the cache as it was
    kv.dispose();
  });

  it('bad options are HeadlensErrors naming the option', () => {
    const model = models.get('gpt2')!;
    expect(headlensError(() => model.generate([PROMPT], { maxNewTokens: -1 })).message).toMatch(/maxNewTokens/);
    expect(headlensError(() => model.generate([PROMPT], { temperature: -0.5 })).message).toMatch(/temperature/);
    expect(headlensError(() => model.generate([PROMPT], { temperature: 1, topK: 0 })).message).toMatch(/topK/);
    expect(headlensError(() => model.generate([PROMPT], { stopTokens: [9999] })).message).toMatch(/stop token 9999/);
    const kv = new KVCache(model.cfg.n_layers);
    model.forward([PROMPT], { kvCache: kv }).dispose();
    expect(headlensError(() => model.forward([[1], [2]], { kvCache: kv })).message).toMatch(/holds 1 sequences but 2/);
    expect(headlensError(() => model.forward([[1]], { kvCache: kv, stopAtLayer: 1 })).message).toMatch(/stopAtLayer/);
    kv.dispose();
  });

  it('a second call leaves tf.memory().numTensors unchanged (with a step cache and hooks)', () => {
    const model = models.get('mistral-sliding')!;
    const call = () =>
      model.generate([PROMPT, PROMPT], {
        maxNewTokens: 5,
        temperature: 1,
        topK: 4,
        names: [actName('pattern', 0)],
        fwdHooks: [[actName('z', 1), (z) => tf.tidy(() => z.mul(0.5))]],
        onStep: (s) => s.cache!.get(actName('pattern', 0)).shape[3],
      });
    call();
    const before = tf.memory().numTensors;
    const r = call();
    expect(r.records).toEqual([10, 11, 12, 13, 14]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('runWithCache({ patternRows }): patterns by query rows', () => {
  it.each(['gpt2', 'llama-gqa'])('%s: keeps [batch, head, rows, key_pos] of hook_pattern and hook_attn_scores, equal to those rows of the full cache', (name) => {
    const model = models.get(name)!;
    const toks = [PROMPT, [...PROMPT].reverse()];
    const names = [actName('pattern', 0), actName('attn_scores', 1), actName('z', 0)];
    const full = model.runWithCache(toks, { names });
    for (const rows of ['last', [0, 4, 9]] as const) {
      const sliced = model.runWithCache(toks, { names, patternRows: rows as number[] | 'last' });
      const want = rows === 'last' ? [9] : rows;
      for (const n of names.slice(0, 2)) {
        const got = sliced.cache.get(n);
        expect(got.shape).toEqual([2, model.cfg.n_heads, want.length, PROMPT.length]);
        const ref = tf.gather(full.cache.get(n), want, 2);
        // -Infinity (masked scores) equal to -Infinity: compare where finite, and that the masked places agree
        expect(Array.from(got.dataSync())).toEqual(Array.from(ref.dataSync()));
        ref.dispose();
      }
      expect(sliced.cache.get(actName('z', 0)).shape).toEqual(full.cache.get(actName('z', 0)).shape); // other hooks keep every position
      sliced.logits.dispose();
      sliced.cache.dispose();
    }
    full.logits.dispose();
    full.cache.dispose();
  });

  it("with patternRows 'last', no layer's full pattern outlives its block: memory at the final norm grows only by the kept rows", () => {
    const model = models.get('gpt2')!; // n_ctx 32: patterns [1, 4, 32, 32] per layer
    const toks = [Array.from({ length: 32 }, (_, i) => (i * 5) % 250)];
    const patterns = Array.from({ length: model.cfg.n_layers }, (_, l) => actName('pattern', l));
    const bytesAtEnd = (opts: { names: string[]; patternRows?: 'last' }) => {
      let bytes = 0;
      const { logits, cache } = model.runWithCache(toks, { ...opts, fwdHooks: [['ln_final.hook_normalized', () => void (bytes = tf.memory().numBytes)]] });
      tf.dispose(logits);
      cache.dispose();
      return bytes;
    };
    const none = bytesAtEnd({ names: [] });
    const rows = bytesAtEnd({ names: patterns, patternRows: 'last' });
    const full = bytesAtEnd({ names: patterns });
    const rowBytes = model.cfg.n_layers * model.cfg.n_heads * 32 * 4;
    expect(full - none).toBeGreaterThanOrEqual(32 * rowBytes); // every layer's [head, 32, 32] held
    expect(rows - none).toBeLessThanOrEqual(rowBytes);
  });

  it('a row past the query positions, or a malformed list, is a HeadlensError', () => {
    const model = models.get('gpt2')!;
    const before = tf.memory().numTensors;
    expect(headlensError(() => model.runWithCache([PROMPT], { names: [actName('pattern', 0)], patternRows: [10] })).message).toMatch(/query row 10 is past the 10 query positions/);
    expect(headlensError(() => model.runWithCache([PROMPT], { patternRows: [] })).message).toMatch(/patternRows/);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('greedyDecode (the retrieval scorer\'s decoding) through the KV cache', () => {
  it.each(['gpt2', 'llama-gqa', 'mistral-sliding'])('%s: each step\'s top-1 key per head and next token equal the full re-run\'s at the last query', (name) => {
    const model = models.get(name)!;
    const { n_layers, n_heads } = model.cfg;
    const steps: { seq: number[]; topKey: number[][]; next: number }[] = [];
    const out = greedyDecode(model, PROMPT, { maxNewTokens: 6, onStep: (s) => steps.push({ ...s, seq: [...s.seq] }) });
    expect(steps.map((s) => s.next)).toEqual(out);
    const names = Array.from({ length: n_layers }, (_, l) => actName('pattern', l));
    steps.forEach((s, i) => {
      expect(s.seq).toEqual([...PROMPT, ...out.slice(0, i)]);
      const { logits, cache } = model.runWithCache([s.seq], { names });
      const q = s.seq.length - 1;
      const ref = tf.tidy(() => tf.stack(names.map((n) => cache.get(n).slice([0, 0, q, 0], [1, -1, 1, -1]).reshape([n_heads, -1]))).argMax(2).arraySync());
      expect(s.topKey, `step ${i}`).toEqual(ref);
      tf.dispose([logits]);
      cache.dispose();
    });
  });
});

describe('KV cache misuse', () => {
  it('runWithHooksFrom with a KV cache is a HeadlensError (the cache needs every layer)', () => {
    const model = models.get('gpt2')!;
    const kv = new KVCache(model.cfg.n_layers);
    const resid = tf.zeros([1, 3, model.cfg.d_model]) as tf.Tensor3D;
    expect(headlensError(() => model.runWithHooksFrom(1, resid, { kvCache: kv })).message).toMatch(/KV cache cannot be used when starting mid-model/);
    expect(kv.length).toBe(0);
    resid.dispose();
    kv.dispose();
    expect(headlensError(() => kv.past(0)).message).toMatch(/disposed/);
  });
});
