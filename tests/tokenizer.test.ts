/**
 * HFTokenizer against Python's tokenizers: the ids and decoded texts in tests/fixtures/hf/tokenizers/
 * *.expected.json were written by tokenizers (make_fixtures.py) for a byte-level BPE (GPT-2 style) and a
 * Metaspace BPE with byte fallback (Llama style). Python's decode skips special tokens, and in the
 * Metaspace fixture the byte-fallback tokens <0xNN> are special, so decoded texts are compared only
 * where no special token occurs; elsewhere decoding must give the text back.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HeadlensError } from '../src/errors.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { HFTokenizer } from '../src/loading/tokenizer.js';
import { makeConfig } from '../src/model/config.js';
import { FIXTURES } from './helpers.js';

interface Expected {
  texts: string[];
  ids: number[][];
  decoded: string[];
}

const TOKENIZERS = path.join(FIXTURES, 'tokenizers');
const KINDS = ['byte_level_bpe', 'metaspace_bpe'] as const;

function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

function tokenizer(kind: string): { tok: HFTokenizer; expected: Expected; special: Set<number> } {
  const json = readJson<Record<string, unknown>>(path.join(TOKENIZERS, `${kind}.json`));
  const special = new Set(((json.added_tokens ?? []) as { id: number; special: boolean }[]).filter((a) => a.special).map((a) => a.id));
  return { tok: new HFTokenizer(json), expected: readJson<Expected>(path.join(TOKENIZERS, `${kind}.expected.json`)), special };
}

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'headlens-tokenizer-'));
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

describe.each(KINDS)('HFTokenizer(%s) against Python tokenizers', (kind) => {
  const { tok, expected, special } = tokenizer(kind);

  it('encode gives Python’s ids for every text', () => {
    expect(expected.texts.length).toBeGreaterThanOrEqual(5);
    expected.texts.forEach((text, i) => expect(tok.encode(text), JSON.stringify(text)).toEqual(expected.ids[i]));
  });

  it('decode gives Python’s text wherever no special token is involved', () => {
    let compared = 0;
    expected.ids.forEach((ids, i) => {
      if (ids.some((id) => special.has(id))) return;
      expect(tok.decode(ids), JSON.stringify(expected.texts[i])).toBe(expected.decoded[i]);
      compared++;
    });
    expect(compared).toBeGreaterThanOrEqual(4);
  });

  it('decode(encode(text)) gives the text back, byte fallback included', () => {
    for (const text of expected.texts) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it("decode([]) is ''", () => {
    expect(tok.decode([])).toBe('');
  });

  it('tokenText spells a token as text, with a leading space marker shown as a space', () => {
    const ids = tok.encode('When Mary and John');
    const texts = ids.map((id) => tok.tokenText(id));
    expect(texts.join('').trim()).toBe('When Mary and John');
    expect(texts.some((t) => t.startsWith(' '))).toBe(true);
    expect(texts.join('')).not.toMatch(/[Ġ▁]/);
    expect(tok.tokenText(100000)).toBe('<100000>');
  });
});

describe('the tokenizer of a loaded model', () => {
  beforeAll(async () => {
    await initBackend({ backend: 'wasm' });
  });

  it('model.toTokens(text) uses the folder’s tokenizer.json: Python’s ids, as one row', async () => {
    for (const [model, kind] of [['gpt2', 'byte_level_bpe'], ['llama-gqa', 'metaspace_bpe']] as const) {
      const m = await loadPretrained(path.join(FIXTURES, model));
      const { expected } = tokenizer(kind);
      expect(m.tokenizer).toBeInstanceOf(HFTokenizer);
      // prependBos: false, the tokenizer's own ids (the default puts BOS first where the vocabulary has one)
      expected.texts.forEach((text, i) => expect(m.toTokens(text, { prependBos: false }), `${model}: ${JSON.stringify(text)}`).toEqual([expected.ids[i]]));
      expect(m.toTokens([expected.texts[2], expected.texts[2]], { prependBos: false })).toEqual([expected.ids[2], expected.ids[2]]);
      expect(m.toText(expected.ids[0])).toBe(expected.texts[0]);
      expect(m.toText([])).toBe('');
      const labels = m.tokenLabels(expected.ids[2].slice(0, 2));
      expect(labels[0]).toMatch(/^\(0\) /);
      expect(labels[1]).toMatch(/^\(1\) /);
      // and the ids run: toTokens gives the model input it expects
      const logits = m.forward(m.toTokens(expected.texts[1], { prependBos: false }));
      expect(logits.shape).toEqual([1, expected.ids[1].length, m.cfg.d_vocab]);
      logits.dispose();
      m.dispose();
    }
  });

  it('a model without tokenizer.json says so when asked for tokens or text', () => {
    const m = HookedTransformer.random(makeConfig({ model_name: 'no-tok', d_model: 8, n_layers: 1, n_heads: 2, d_head: 4, d_vocab: 10, n_ctx: 8, attn_only: true }));
    expect(() => m.toTokens('hi')).toThrow(HeadlensError);
    expect(() => m.toText([1])).toThrow(/no tokenizer/);
    expect(m.tokenLabels([3, 4])).toEqual(['(0) 3', '(1) 4']);
    m.dispose();
  });

  it('HFTokenizer.fromDir: undefined without tokenizer.json, a HeadlensError for one that is not JSON', () => {
    const empty = fs.mkdtempSync(path.join(TMP, 'empty-'));
    expect(HFTokenizer.fromDir(empty)).toBeUndefined();
    const broken = fs.mkdtempSync(path.join(TMP, 'broken-'));
    fs.writeFileSync(path.join(broken, 'tokenizer.json'), '{"model": ');
    expect(() => HFTokenizer.fromDir(broken)).toThrow(HeadlensError);
    expect(() => HFTokenizer.fromDir(broken)).toThrow(/tokenizer\.json is not valid JSON/);
  });
});
