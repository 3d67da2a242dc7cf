/**
 * Bad input is a HeadlensError that says what is wrong and where: model folders, config.json files,
 * checkpoints and token ids. A config fuzz then checks that no mutation of a real config.json makes
 * `readModelConfig` fail with anything but a HeadlensError (no TypeError or RangeError from deep inside).
 */
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../src/util/random.js';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained, readModelConfig } from '../src/loading/load.js';
import { encodeSafetensors, parseSafetensors } from '../src/util/safetensors.js';
import { FIXTURES } from './helpers.js';
import { headlensError } from './expect_error.js';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'headlens-bad-input-'));
let gpt2: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
});

afterAll(() => {
  gpt2?.dispose();
  fs.rmSync(TMP, { recursive: true, force: true });
});

let dirs = 0;
/** A fresh folder under TMP holding `files` (copied from a fixture unless given as text or bytes). */
function folder(files: Record<string, string | Uint8Array>): string {
  const dir = path.join(TMP, `m${dirs++}`);
  fs.mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

function fixtureFile(model: string, file: string): Buffer {
  return fs.readFileSync(path.join(FIXTURES, model, file));
}

function fixtureConfig(model: string): Record<string, unknown> {
  return JSON.parse(fixtureFile(model, 'config.json').toString('utf8'));
}

/** The gpt2 fixture with its config.json replaced. */
function gpt2WithConfig(edit: (c: Record<string, unknown>) => void): string {
  const cfg = fixtureConfig('gpt2');
  edit(cfg);
  return folder({ 'config.json': JSON.stringify(cfg), 'model.safetensors': fixtureFile('gpt2', 'model.safetensors') });
}

/** The gpt2 fixture with its tensors edited, re-encoded as F32 safetensors. */
function gpt2WithTensors(edit: (tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }>) => void): string {
  const file = parseSafetensors(fixtureFile('gpt2', 'model.safetensors'), 'model.safetensors');
  const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
  for (const name of file.names) tensors[name] = { dtype: 'F32', shape: file.info(name).shape, data: file.float32(name) };
  edit(tensors);
  return folder({ 'config.json': fixtureFile('gpt2', 'config.json'), 'model.safetensors': encodeSafetensors(tensors, { format: 'pt' }) });
}

async function loadError(dir: string): Promise<HeadlensError> {
  try {
    (await loadPretrained(dir)).dispose();
  } catch (e) {
    expect(e).toBeInstanceOf(HeadlensError);
    return e as HeadlensError;
  }
  throw new Error(`loading ${dir} should have failed`);
}

describe('loadPretrained(bad folder)', () => {
  it('a missing folder names the path', async () => {
    const missing = path.join(TMP, 'no-such-model');
    const e = await loadError(missing);
    expect(e.message).toContain(`no model folder at ${missing}`);
  });

  it('a file instead of a folder says so', async () => {
    const dir = folder({ 'weights.txt': 'x' });
    const e = await loadError(path.join(dir, 'weights.txt'));
    expect(e.message).toContain('is a file, not a model folder');
  });

  it('a folder without config.json names the folder and what it needs', async () => {
    const dir = folder({ 'model.safetensors': fixtureFile('gpt2', 'model.safetensors') });
    const e = await loadError(dir);
    expect(e.message).toContain(`no config.json in ${dir}`);
    expect(e.message).toContain('model.safetensors');
  });

  it('a folder without weights says which files it looked for', async () => {
    const dir = folder({ 'config.json': fixtureFile('gpt2', 'config.json') });
    const e = await loadError(dir);
    expect(e.message).toContain('model.safetensors');
    expect(e.message).toContain('model.safetensors.index.json');
  });

  it('an unsupported model_type lists the supported types', async () => {
    const e = await loadError(gpt2WithConfig((c) => (c.model_type = 't5')));
    expect(e.message).toContain('model_type "t5" is not supported');
    expect(e.message).toContain('gpt2, gpt_neox, llama, mistral, qwen2, bert, roberta, headlens');
    const none = await loadError(gpt2WithConfig((c) => delete c.model_type));
    expect(none.message).toContain('model_type undefined is not supported');
  });

  it('config.json that is not JSON names the file and the parse error', async () => {
    const dir = folder({ 'config.json': '{"model_type": "gpt2", "n_embd": 32,', 'model.safetensors': fixtureFile('gpt2', 'model.safetensors') });
    const e = await loadError(dir);
    expect(e.message).toContain(path.join(dir, 'config.json'));
    expect(e.message).toContain('is not valid JSON');
    for (const text of ['[1, 2]', 'null', '"gpt2"', '42']) {
      expect(headlensError(() => readModelConfig(folder({ 'config.json': text }))).message).toContain('is not a JSON object');
    }
  });

  it('config.json missing a field (n_embd) names the file and the field it feeds', async () => {
    const dir = gpt2WithConfig((c) => delete c.n_embd);
    const e = await loadError(dir);
    expect(e.message).toContain(path.join(dir, 'config.json'));
    expect(e.message).toContain('invalid model config');
    expect(e.message).toContain('n_embd');
  });

  it('config.json fields of the wrong type or range name the config.json key', () => {
    const cases: [string, (c: Record<string, unknown>) => void, string][] = [
      ['gpt2', (c) => (c.n_head = 'four'), 'n_head'],
      ['gpt2', (c) => (c.n_layer = -1), 'n_layer'],
      ['gpt2', (c) => (c.n_head = 5), 'n_head'], // 32 is not divisible by 5: d_head 6.4
      ['gpt2', (c) => (c.activation_function = 'swish'), 'activation_function'],
      ['llama-gqa', (c) => delete c.hidden_size, 'hidden_size'],
      ['llama-gqa', (c) => (c.num_key_value_heads = 3), 'n_key_value_heads'],
      ['llama-gqa', (c) => (c.vocab_size = 0), 'vocab_size'],
      ['pythia-parallel', (c) => ((c.rope_parameters as Record<string, unknown>).partial_rotary_factor = 0), 'rotary'],
      ['mistral-sliding', (c) => (c.sliding_window = 2.5), 'sliding_window'],
    ];
    for (const [model, edit, mentions] of cases) {
      const cfg = fixtureConfig(model);
      edit(cfg);
      const e = headlensError(() => readModelConfig(folder({ 'config.json': JSON.stringify(cfg) })));
      expect(e.message, `${model}: ${e.message}`).toContain(mentions);
    }
  });

  it("an unsupported rope type ('yarn') is named, with the supported ones", () => {
    const cfg = fixtureConfig('llama-gqa');
    cfg.rope_parameters = { rope_type: 'yarn', rope_theta: 10000, factor: 4 };
    const dir = folder({ 'config.json': JSON.stringify(cfg) });
    const e = headlensError(() => readModelConfig(dir));
    expect(e.message).toContain(path.join(dir, 'config.json'));
    expect(e.message).toContain("rope type 'yarn' is not supported");
    expect(e.message).toContain('llama3');
    // the older top-level spelling too
    const legacy = fixtureConfig('llama-gqa');
    delete legacy.rope_parameters;
    legacy.rope_scaling = { type: 'dynamic', factor: 2 };
    expect(headlensError(() => readModelConfig(folder({ 'config.json': JSON.stringify(legacy) }))).message).toContain("'dynamic'");
  });

  it('a checkpoint missing a tensor names the tensor and its shape', async () => {
    const dir = gpt2WithTensors((t) => delete t['transformer.h.1.attn.c_attn.bias']);
    const e = await loadError(dir);
    expect(e.message).toContain('missing tensor h.1.attn.c_attn.bias [96]');
    expect(e.message).toContain(dir);
  });

  it('a tensor of the wrong shape names the tensor and both shapes', async () => {
    const dir = gpt2WithTensors((t) => {
      const wpe = t['transformer.wpe.weight'];
      t['transformer.wpe.weight'] = { dtype: 'F32', shape: [31, 32], data: wpe.data.slice(0, 31 * 32) };
    });
    const e = await loadError(dir);
    expect(e.message).toContain('transformer.wpe.weight');
    expect(e.message).toContain('[31,32]');
    expect(e.message).toContain('[32,32]');
  });

  it('an unexpected tensor is named', async () => {
    const dir = gpt2WithTensors((t) => (t['transformer.h.2.ln_1.weight'] = { dtype: 'F32', shape: [32], data: new Float32Array(32) }));
    const e = await loadError(dir);
    expect(e.message).toContain('unexpected tensors transformer.h.2.ln_1.weight');
  });

  it('every problem of a checkpoint is listed in one error', async () => {
    const dir = gpt2WithTensors((t) => {
      delete t['transformer.ln_f.bias'];
      t['transformer.h.0.ln_1.weight'] = { dtype: 'F32', shape: [33], data: new Float32Array(33) };
    });
    const e = await loadError(dir);
    expect(e.message).toContain('missing tensor ln_f.bias [32]');
    expect(e.message).toContain('transformer.h.0.ln_1.weight is [33]');
  });
});

describe('loadPretrained(weights holding NaN or Inf)', () => {
  const poisoned = () =>
    gpt2WithTensors((t) => {
      t['transformer.h.1.mlp.c_fc.weight'].data[7] = NaN;
      t['transformer.h.1.mlp.c_fc.weight'].data[9] = Infinity;
      t['transformer.wte.weight'].data[0] = -Infinity;
    });

  it('is refused, naming every tensor with non-finite values and how many, and the way to load it anyway', async () => {
    const before = tf.memory().numTensors;
    const e = await loadError(poisoned());
    expect(e.message).toContain('NaN or Inf weights in 2 tensors');
    expect(e.message).toContain('transformer.h.1.mlp.c_fc.weight (2 of 4096 values)');
    expect(e.message).toContain('transformer.wte.weight (1 of');
    expect(e.message).toContain('allowNonFinite');
    expect(e.message).toContain('HEADLENS_ALLOW_NONFINITE=1');
    expect(tf.memory().numTensors).toBe(before); // the converted weights are freed
  });

  it('loads with { allowNonFinite: true }, and the logits then show the NaN', async () => {
    const model = await loadPretrained(poisoned(), { allowNonFinite: true });
    const logits = model.forward([[1, 2, 3]]);
    expect(Array.from(logits.dataSync()).some(Number.isNaN)).toBe(true);
    logits.dispose();
    model.dispose();
  });
});

describe('forward(bad token ids)', () => {
  // gpt2 fixture: d_vocab 257, n_ctx 32
  it('a token id ≥ d_vocab names the id, its position and the vocabulary size', () => {
    const e = headlensError(() => gpt2.forward([[1, 2, 3], [4, 257, 6]]));
    expect(e.message).toContain('token id 257 at [1, 1]');
    expect(e.message).toContain('[0, 257)');
  });

  it('a negative or non-integer id is refused', () => {
    for (const bad of [-1, 1.5, NaN, Infinity]) {
      expect(headlensError(() => gpt2.forward([[0, bad]])).message).toContain(`token id ${bad}`);
    }
    const t = tf.tensor2d([[0, -3]], [1, 2], 'int32');
    expect(headlensError(() => gpt2.forward(t)).message).toContain('token id -3');
    t.dispose();
  });

  it('rows of unequal length name both lengths', () => {
    const e = headlensError(() => gpt2.forward([[1, 2, 3], [4, 5]]));
    expect(e.message).toContain('row 0 has 3, row 1 has 2');
  });

  it('a sequence longer than n_ctx names both lengths', () => {
    const e = headlensError(() => gpt2.forward([Array.from({ length: 33 }, (_, i) => i)]));
    expect(e.message).toContain('33 tokens');
    expect(e.message).toContain('n_ctx 32');
    gpt2.forward([Array.from({ length: 32 }, (_, i) => i)]).dispose(); // exactly n_ctx is fine
  });

  it('no tokens, or a tensor of the wrong rank, is refused', () => {
    expect(headlensError(() => gpt2.forward([])).message).toContain('no tokens');
    expect(headlensError(() => gpt2.forward([[]])).message).toContain('no tokens');
    const t = tf.zeros([1, 2, 3], 'int32');
    expect(headlensError(() => gpt2.forward(t)).message).toContain('[1,2,3]');
    t.dispose();
  });

  it('toTokens of texts that encode to different lengths says so', () => {
    expect(headlensError(() => gpt2.toTokens(['a', 'abc'])).message).toContain('different lengths');
  });
});

// ---- config fuzz ----

/** The project's seeded generator, so every failure can be replayed from its iteration number. */
function prng(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

/** Raw JSON spellings JSON.stringify cannot produce: they parse to ±Infinity, -0 and a denormal. */
const RAW = { inf: '1e999', negInf: '-1e999', negZero: '-0', tiny: '5e-324' } as const;
const RAW_MARK = '\u0000raw:';

const VALUES: unknown[] = [
  null, true, false, 0, 1, -1, 2, 3, 7, 0.5, -0.5, 2.5, 1e-12, 1e308, 2 ** 31, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER,
  '', 'abc', '32', 'NaN', 'Infinity', '-1', 'null', 'gelu', 'silu', 'relu', 'llama3', 'linear', 'yarn', 'default',
  [], [1, 2], ['full_attention'], {}, { a: 1 }, { toString: 1 }, { valueOf: {}, toString: 'x' }, { rope_type: 'yarn' },
  { rope_type: 'llama3' }, { rope_type: 'linear', factor: 'x' }, { type: { toString: null } }, JSON.parse('{"__proto__": {"n_embd": 1}}'),
  `${RAW_MARK}inf`, `${RAW_MARK}negInf`, `${RAW_MARK}negZero`, `${RAW_MARK}tiny`,
];
const MODEL_TYPES = ['gpt2', 'gpt_neox', 'llama', 'mistral', 'qwen2', 'headlens', 'bert', 'roberta', 't5', '__proto__', 'constructor', 'toString', 'GPT2', ''];
const EXTRA_KEYS = ['head_dim', 'rope_scaling', 'rope_theta', 'rotary_pct', 'rotary_emb_base', 'partial_rotary_factor', 'use_sliding_window', 'sliding_window',
  'scale_attn_weights', 'scale_attn_by_inverse_layer_idx', 'headlens_config', 'n_inner', 'attention_bias', 'mlp_bias', '_name_or_path', '__proto__', 'constructor'];

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)];
}

function clone<T>(x: T): T {
  return JSON.parse(JSON.stringify(x));
}

/** JSON text of a mutated config, with the RAW markers written as raw numbers. */
function toJson(cfg: unknown): string {
  return JSON.stringify(cfg).replace(new RegExp(`"\\\\u0000raw:(\\w+)"`, 'g'), (_, k: keyof typeof RAW) => RAW[k]);
}

/** One random edit somewhere in the config (top level, or inside a nested object). */
function mutate(rand: () => number, cfg: Record<string, unknown>): void {
  const nested = Object.values(cfg).filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v));
  const target = nested.length && rand() < 0.3 ? pick(rand, nested) : cfg;
  const keys = Object.keys(target);
  const r = rand();
  if (r < 0.25 && keys.length) delete target[pick(rand, keys)];
  else if (r < 0.75 && keys.length) target[pick(rand, keys)] = clone(pick(rand, VALUES));
  else if (r < 0.85) cfg.model_type = pick(rand, MODEL_TYPES);
  else if (r < 0.95) Object.defineProperty(target, pick(rand, EXTRA_KEYS), { value: clone(pick(rand, VALUES)), enumerable: true, configurable: true, writable: true });
  else {
    // a number nudged: off by one, negated, scaled
    const numeric = keys.filter((k) => typeof target[k] === 'number');
    if (numeric.length) {
      const k = pick(rand, numeric);
      const v = target[k] as number;
      target[k] = pick(rand, [v + 1, v - 1, -v, v * 1000, v / 3, 0]);
    }
  }
}

/** A headlens-native (model_type 'headlens') config.json, as saveModel writes one for an attention-only model. */
const NATIVE_CONFIG = {
  model_type: 'headlens',
  architectures: ['HeadlensTransformer'],
  headlens_config: {
    model_name: 'attn-only', original_architecture: 'HeadlensAttnOnly', d_model: 16, n_layers: 2, n_heads: 2, n_key_value_heads: 2, d_head: 8,
    d_mlp: null, d_vocab: 20, n_ctx: 16, act_fn: 'gelu_new', normalization_type: 'LN', eps: 1e-5, positional_embedding_type: 'standard',
    rotary_dim: null, rotary_base: 10000, rope_scaling: null, parallel_attn_mlp: false, attn_only: true, gated_mlp: false,
    tie_word_embeddings: false, attn_scale: 2.8284271247461903, scale_attn_by_inverse_layer_idx: false, attn_qkv_bias: true,
    attn_out_bias: true, mlp_bias: true, unembed_bias: false, sliding_window: null, bos_token_id: null, eos_token_id: null,
  },
};

describe('config fuzz', () => {
  it('2,400 seeded mutations of the fixture config.json files: readModelConfig throws only HeadlensError', () => {
    const bases: Record<string, Record<string, unknown>> = { native: NATIVE_CONFIG };
    for (const m of ['gpt2', 'pythia-parallel', 'neox-sequential', 'llama-gqa', 'llama-mqa-tied-bias-bf16', 'llama3-rope-scaling', 'mistral-sliding', 'qwen2', 'bert', 'roberta']) {
      bases[m] = fixtureConfig(m);
    }
    // every unmutated base reads
    for (const [name, base] of Object.entries(bases)) expect(() => readModelConfig(folder({ 'config.json': toJson(base) })), name).not.toThrow();

    const dir = folder({});
    const file = path.join(dir, 'config.json');
    const rand = prng(20261123);
    const outcomes = { ok: 0, headlensError: 0 };
    const names = Object.keys(bases);
    for (let i = 0; i < 2400; i++) {
      const base = names[i % names.length];
      const cfg = clone(bases[base]);
      const edits = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < edits; j++) mutate(rand, cfg);
      const text = toJson(cfg);
      fs.writeFileSync(file, text);
      try {
        const { cfg: read } = readModelConfig(dir);
        // what comes out is a config headlens can use: positive integer sizes
        for (const k of ['d_model', 'n_layers', 'n_heads', 'n_key_value_heads', 'd_head', 'd_vocab', 'n_ctx'] as const) {
          expect(Number.isSafeInteger(read[k]) && read[k] > 0, `mutation ${i} (${base}): ${k} = ${read[k]}\n${text}`).toBe(true);
        }
        outcomes.ok++;
      } catch (e) {
        if (!(e instanceof HeadlensError)) {
          throw new Error(`mutation ${i} (${base}) threw ${(e as Error).name}: ${(e as Error).message}\nconfig.json: ${text}`);
        }
        expect(e.message.length, text).toBeGreaterThan(10);
        outcomes.headlensError++;
      }
    }
    // the fuzz exercises both sides
    expect(outcomes.ok).toBeGreaterThan(100);
    expect(outcomes.headlensError).toBeGreaterThan(500);
  });
});
