/**
 * BERT-family encoders against HuggingFace transformers: the tiny random BertForMaskedLM and RobertaForMaskedLM of
 * tests/fixtures/make_bert_fixtures.py (transformers 5.17, float64), a batch of 2 whose first row is a sentence
 * pair (token types 0 and 1) and whose second is one sentence padded at the end. Masked-LM logits, every hidden
 * state (0: the embeddings after their LayerNorm) and every eager attention pattern must agree within 1e-4 at every
 * position, padded ones included; each padded row's real positions must equal that prompt run alone.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { encodeSafetensors, parseSafetensors } from '../src/util/safetensors.js';
import { tmpdir } from 'node:os';
import { saveModel } from '../src/loading/save.js';
import { processWeights } from '../src/model/weight_processing.js';
import { initBackend } from '../src/backend/index.js';
import { loadPretrained } from '../src/loading/load.js';
import { HeadlensError } from '../src/errors.js';
import { scanTask } from '../src/interp/scores/tasks.js';
import { KVCache } from '../src/model/kv_cache.js';
import { encoderFixtureModels, encoderInputs, FIXTURES, maxAbsDiff, reference } from './helpers.js';

const TOL = 1e-4;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

const models = encoderFixtureModels();

it('the encoder fixtures are there (bert and roberta)', () => {
  expect(models).toEqual(['bert', 'roberta']);
});

describe.each(models)('encoder parity with transformers: %s', (name) => {
  it('runWithCache gives transformers’ MLM logits, every hidden state and every attention pattern, padded row included', async () => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    expect(model.cfg.attention_dir).toBe('bidirectional');
    const ref = reference(name);
    const { ids, types, mask } = encoderInputs(name);
    expect(mask[1].includes(0), 'row 1 is padded').toBe(true);
    const L = model.cfg.n_layers;
    const { logits, cache } = model.runWithCache(ids, { attentionMask: mask, tokenTypeIds: types, names: (n) => /hook_resid_pre$|hook_normalized_resid_post$|attn\.hook_pattern$/.test(n) });
    const errors: Record<string, number> = {};
    const diff = (t: tf.Tensor, key: string) => maxAbsDiff(t, ref.float32(key), ref.info(key).shape);
    errors.logits = diff(logits, 'logits');
    for (let l = 0; l < L; l++) {
      errors[`hidden.${l}`] = diff(cache.get(`blocks.${l}.hook_resid_pre`), `hidden_states.${l}`);
      errors[`pattern.${l}`] = diff(cache.get(`blocks.${l}.attn.hook_pattern`), `attentions.${l}`);
    }
    errors[`hidden.${L}`] = diff(cache.get(`blocks.${L - 1}.hook_normalized_resid_post`), `hidden_states.${L}`);
    const worst = Math.max(...Object.values(errors));
    console.log(`encoder parity ${name}: max |error| ${worst.toExponential(2)} (${Object.entries(errors).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')})`);
    for (const [k, v] of Object.entries(errors)) expect(v, `${name} ${k}`).toBeLessThan(TOL);
    cache.dispose();
    logits.dispose();
    model.dispose();
  });

  it('a padded row’s real positions give the logits and patterns of that prompt run alone, padded on either side; padded keys get no attention', async () => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const { ids, types, mask } = encoderInputs(name);
    const n = mask[1].reduce((a, b) => a + b, 0);
    const alone = { ids: [ids[1].slice(0, n)], types: [types[1].slice(0, n)] };
    const keep = (x: string) => /attn\.hook_pattern$/.test(x);
    const batched = model.runWithCache(ids, { attentionMask: mask, tokenTypeIds: types, names: keep });
    const single = model.runWithCache(alone.ids, { tokenTypeIds: model.cfg.type_vocab_size > 0 ? alone.types : undefined, names: keep });
    const real = (t: tf.Tensor) => t.slice([1, 0, 0], [1, n, -1]); // row 1, its real positions
    expect(tf.max(tf.abs(real(batched.logits).sub(single.logits))).dataSync()[0]).toBeLessThan(TOL);
    for (let l = 0; l < model.cfg.n_layers; l++) {
      const p = batched.cache.get(`blocks.${l}.attn.hook_pattern`); // [batch, head, query_pos, key_pos]
      const realRows = p.slice([1, 0, 0, 0], [1, -1, n, n]);
      expect(tf.max(tf.abs(realRows.sub(single.cache.get(`blocks.${l}.attn.hook_pattern`)))).dataSync()[0]).toBeLessThan(TOL);
      expect(tf.max(p.slice([1, 0, 0, n], [1, -1, -1, -1])).dataSync()[0], 'attention to padded keys').toBe(0);
    }
    // left padding too: the real tokens count their positions from the first real one (padding.ts)
    const pad = ids[1][n];
    const left = { ids: [[...new Array(ids[1].length - n).fill(pad), ...alone.ids[0]]], types: [[...new Array(ids[1].length - n).fill(0), ...alone.types[0]]], mask: [[...mask[1].slice(n), ...mask[1].slice(0, n)]] };
    const leftLogits = model.forward(left.ids, { attentionMask: left.mask, tokenTypeIds: model.cfg.type_vocab_size > 0 ? left.types : undefined });
    expect(tf.max(tf.abs(leftLogits.slice([0, ids[1].length - n, 0], [1, n, -1]).sub(single.logits))).dataSync()[0], 'left-padded').toBeLessThan(TOL);
    tf.dispose([batched.logits, single.logits, leftLogits]);
    batched.cache.dispose();
    single.cache.dispose();
    model.dispose();
  });
});

describe('encoders', () => {
  it('hookNames() lists TransformerLens’ HookedEncoder hook points in forward order', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'bert'));
    const names = model.hookNames();
    expect(names.slice(0, 5)).toEqual(['hook_embed', 'hook_pos_embed', 'hook_token_type_embed', 'embed.ln.hook_scale', 'embed.ln.hook_normalized']);
    expect(names.filter((n) => n.startsWith('blocks.0.'))).toEqual(
      ['hook_resid_pre', 'attn.hook_q', 'attn.hook_k', 'attn.hook_v', 'attn.hook_attn_scores', 'attn.hook_pattern', 'attn.hook_z', 'hook_attn_out', 'hook_resid_mid', 'ln1.hook_scale', 'ln1.hook_normalized', 'mlp.hook_pre', 'mlp.hook_post', 'hook_mlp_out', 'hook_resid_post', 'ln2.hook_scale', 'ln2.hook_normalized', 'hook_normalized_resid_post'].map((x) => `blocks.0.${x}`),
    );
    expect(names.slice(-2)).toEqual(['mlm_head.ln.hook_scale', 'mlm_head.ln.hook_normalized']);
    expect(names.some((n) => n.startsWith('ln_final'))).toBe(false);
    model.dispose();
  });

  it.each(['bert', 'roberta'])('%s: toTokens(a, b) gives transformers’ pair ids ([CLS] a [SEP] b [SEP]) and token types; toTokens(texts, { padding }) pads with pad_token_id', async (name) => {
    const model = await loadPretrained(path.join(FIXTURES, name));
    const { ids, types, mask } = encoderInputs(name);
    const pair = JSON.parse(readFileSync(path.join(FIXTURES, name, 'inputs.json'), 'utf8')).pair as string[];
    const n0 = mask[0].reduce((a, b) => a + b, 0);
    const enc = model.toTokens(pair[0], pair[1]);
    expect(enc.tokens).toEqual([ids[0].slice(0, n0)]);
    expect(enc.tokenTypeIds).toEqual([types[0].slice(0, n0)]);
    if (name === 'bert') expect(model.toStrTokens(enc.tokens[0]).filter((t) => t === '[SEP]').length).toBe(2);
    if (name === 'bert') expect(model.toSingleToken('cat')).toBe(ids[0][2]); // without the [CLS] / [SEP] the tokenizer adds
    const padded = model.toTokens([pair[2], pair[0]], { padding: 'right' });
    expect(padded.tokens[0]).toEqual(ids[1].slice(0, padded.tokens[0].length));
    expect(padded.attentionMask[0]).toEqual(mask[1].slice(0, padded.tokens[0].length));
    model.dispose();
  });

  it('token types change the output, and a bad one is an error naming it', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'bert'));
    const { ids } = encoderInputs('bert');
    const row = [ids[0]];
    const zeros = model.forward(row);
    const ones = model.forward(row, { tokenTypeIds: [row[0].map(() => 1)] });
    expect(tf.max(tf.abs(zeros.sub(ones))).dataSync()[0]).toBeGreaterThan(1e-2);
    expect(() => model.forward(row, { tokenTypeIds: [row[0].map(() => 2)] })).toThrow(/tokenTypeIds\[0\]\[0\] is 2, outside \[0, 2\)/);
    tf.dispose([zeros, ones]);
    model.dispose();
  });

  it('generate, a KV cache, the next-token loss and the decoder scan tasks refuse an encoder, saying why', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'roberta'));
    const row = encoderInputs('roberta').ids[1].slice(0, 5);
    expect(() => model.generate([row])).toThrow(HeadlensError);
    expect(() => model.generate([row])).toThrow(/is an encoder \(bidirectional attention, RobertaForMaskedLM\): generate needs a causal decoder/);
    await expect(model.generateAsync([row])).rejects.toThrow(/generate needs a causal decoder/);
    expect(() => model.loss([row])).toThrow(/next-token loss needs a causal decoder/);
    expect(() => model.forward([row], { kvCache: new KVCache(model.cfg.n_layers) })).toThrow(/a KV cache needs a causal decoder/);
    for (const task of ['induction', 'ioi', 'retrieval'] as const) expect(() => scanTask(model, task)).toThrow(/is written for causal decoders/);
    model.dispose();
  });

  it('RoBERTa: sequences past max_position_embeddings − pad_token_id − 1 are refused', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'roberta'));
    expect(() => model.forward([new Array(63).fill(5)])).toThrow(/RoBERTa's positions start at pad_token_id \+ 1 \(2\), so 62 tokens fit/);
    model.dispose();
  });

  it('saveModel writes a BertForMaskedLM / RobertaForMaskedLM folder that loads back bit for bit; weight processing is refused', async () => {
    for (const name of ['bert', 'roberta']) {
      const model = await loadPretrained(path.join(FIXTURES, name));
      const dir = mkdtempSync(path.join(tmpdir(), 'headlens-encoder-save-'));
      await saveModel(model, dir);
      const back = await loadPretrained(dir);
      expect(back.cfg).toEqual({ ...model.cfg, model_name: back.cfg.model_name });
      for (const p of model.paramNames()) expect(Array.from(back.param(p).dataSync()), `${name} ${p}`).toEqual(Array.from(model.param(p).dataSync()));
      const hf = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
      expect(hf.architectures).toEqual([name === 'bert' ? 'BertForMaskedLM' : 'RobertaForMaskedLM']);
      expect(() => processWeights(back, { foldLayerNorm: true })).toThrow(/weight processing is for pre-LN models/);
      rmSync(dir, { recursive: true });
      back.dispose();
      model.dispose();
    }
  });

  it('a BertForPreTraining save with TensorFlow-era LayerNorm.gamma / .beta names, a pooler and a next-sentence head loads to the same logits', async () => {
    const src = path.join(FIXTURES, 'bert');
    const file = parseSafetensors(new Uint8Array(readFileSync(path.join(src, 'model.safetensors'))), 'bert');
    const tensors: Parameters<typeof encodeSafetensors>[0] = {};
    for (const n of file.names) tensors[n.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta')] = { dtype: 'F32', shape: file.info(n).shape, data: file.float32(n) };
    expect(Object.keys(tensors).filter((n) => n.endsWith('gamma')).length).toBeGreaterThan(4);
    const d = 32;
    Object.assign(tensors, {
      'bert.pooler.dense.weight': { dtype: 'F32', shape: [d, d], data: new Float32Array(d * d).fill(0.1) },
      'bert.pooler.dense.bias': { dtype: 'F32', shape: [d], data: new Float32Array(d) },
      'cls.seq_relationship.weight': { dtype: 'F32', shape: [2, d], data: new Float32Array(2 * d) },
      'cls.seq_relationship.bias': { dtype: 'F32', shape: [2], data: new Float32Array(2) },
    });
    const dir = mkdtempSync(path.join(tmpdir(), 'headlens-bert-tf-'));
    writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(tensors));
    for (const f of ['config.json', 'tokenizer.json']) copyFileSync(path.join(src, f), path.join(dir, f));
    const [a, b] = [await loadPretrained(src), await loadPretrained(dir)];
    const { ids, types, mask } = encoderInputs('bert');
    const [la, lb] = [a.forward(ids, { tokenTypeIds: types, attentionMask: mask }), b.forward(ids, { tokenTypeIds: types, attentionMask: mask })];
    expect(Array.from(lb.dataSync())).toEqual(Array.from(la.dataSync()));
    tf.dispose([la, lb]);
    a.dispose();
    b.dispose();
    rmSync(dir, { recursive: true });
  });

  it('the residual-sum helpers of the cache refuse a post-LN encoder', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'bert'));
    const { logits, cache } = model.runWithCache([encoderInputs('bert').ids[0]]);
    expect(() => cache.decomposeResid()).toThrow(/is post-LN \(an encoder\)/);
    expect(() => cache.accumulatedResid()).toThrow(/is post-LN/);
    expect(() => cache.stackHeadResults(undefined, { applyLn: true })).toThrow(/is post-LN/);
    const heads = cache.stackHeadResults(); // each head's output is still defined
    expect(heads.stack.shape[0]).toBe(model.cfg.n_layers * model.cfg.n_heads);
    heads.stack.dispose();
    cache.dispose();
    logits.dispose();
    model.dispose();
  });

  it('forward and runWithCache on an encoder leave no tensor behind', async () => {
    const model = await loadPretrained(path.join(FIXTURES, 'bert'));
    const { ids, types, mask } = encoderInputs('bert');
    const run = () => {
      const { logits, cache } = model.runWithCache(ids, { attentionMask: mask, tokenTypeIds: types, names: 'all' });
      cache.dispose();
      logits.dispose();
      model.forward(ids, { attentionMask: mask, tokenTypeIds: types }).dispose();
    };
    run();
    const before = tf.memory().numTensors;
    run();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
