/**
 * toy-bert's pieces: the tokenizer (BERT's [CLS]/[SEP] template over toy-lm's words), BERT's masking, the padded
 * batches, the masked-LM loss against a hand computation, and a few training steps of a shrunken encoder.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { makeConfig } from '../src/model/config.js';
import { maskedLmLoss, prepareTraining, trainStep, endTraining, evaluate } from '../src/train/trainer.js';
import { Random } from '../src/util/random.js';
import { CLS, FIRST_WORD_ID, MASK, maskExample, PAD, SEP, toyBertBatch, toyBertExample } from '../src/zoo/toy_bert_data.js';
import { recipe, toyBertTokenizer } from '../src/zoo/recipes.js';
import { segments } from '../src/zoo/toy_bert_findings.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('toy-bert data', () => {
  it('the tokenizer wraps a text in [CLS] … [SEP] and a pair in [CLS] a [SEP] b [SEP] with token types 0 then 1', () => {
    const tok = toyBertTokenizer();
    const one = tok.encode('Mary went to the store.');
    expect(one[0]).toBe(CLS);
    expect(one.at(-1)).toBe(SEP);
    expect(one.slice(1, -1).map((id) => tok.tokenText(id))).toEqual(['Mary', 'went', 'to', 'the', 'store', '.']);
    const pair = tok.encodePair('Mary left.', 'John painted.');
    expect(pair.ids.map((id) => tok.tokenText(id))).toEqual(['[CLS]', 'Mary', 'left', '.', '[SEP]', 'John', 'painted', '.', '[SEP]']);
    expect(pair.typeIds).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('maskExample selects 15 % of the words (never [CLS], [SEP]), and replaces 80 % of those by [MASK], 10 % by a random word', () => {
    const rng = new Random(7);
    const ids = [CLS, ...Array.from({ length: 40 }, (_, i) => FIRST_WORD_ID + i), SEP];
    let [selected, masked, kept, random] = [0, 0, 0, 0];
    for (let t = 0; t < 500; t++) {
      const { input, targets } = maskExample(ids, rng, 400);
      expect(targets[0]).toBe(-1);
      expect(targets.at(-1)).toBe(-1);
      targets.forEach((x, i) => {
        if (x < 0) return expect(input[i]).toBe(ids[i]);
        expect(x).toBe(ids[i]);
        selected++;
        if (input[i] === MASK) masked++;
        else if (input[i] === ids[i]) kept++;
        else random++;
      });
    }
    expect(selected).toBe(500 * 6); // round(0.15 · 40)
    expect(masked / selected).toBeCloseTo(0.8, 1);
    expect(kept / selected).toBeCloseTo(0.1, 1);
    expect(random / selected).toBeCloseTo(0.1, 1);
  });

  it('toyBertBatch right-pads with [PAD]: mask 0, type 0, no target there; segments() recovers the documents', () => {
    const tok = toyBertTokenizer();
    const rng = new Random(3);
    const examples = Array.from({ length: 6 }, () => toyBertExample(tok, rng, 64));
    const b = toyBertBatch(examples, rng, tok.vocabSize);
    const len = Math.max(...examples.map((e) => e.ids.length));
    examples.forEach((e, r) => {
      expect(b.tokens[r]).toHaveLength(len);
      for (let p = e.ids.length; p < len; p++) {
        expect([b.tokens[r][p], b.attentionMask![r][p], b.tokenTypeIds![r][p], b.mlmTargets![r][p]]).toEqual([PAD, 0, 0, -1]);
      }
      expect(segments(e.ids)).toHaveLength(e.kinds.length);
    });
  });
});

describe('masked-LM training', () => {
  it('maskedLmLoss is the mean −log softmax of the target at the selected positions only', () => {
    const logits = tf.tensor3d([[[1, 2, 3], [0, 0, 5]], [[2, 1, 0], [1, 1, 1]]]); // [batch 2, pos 2, vocab 3]
    const targets = [[2, -1], [-1, 1]];
    const lse = (xs: number[]) => Math.log(xs.reduce((a, x) => a + Math.exp(x), 0));
    const want = ((lse([1, 2, 3]) - 3) + (lse([1, 1, 1]) - 1)) / 2;
    const loss = maskedLmLoss(logits, targets);
    expect(loss.dataSync()[0]).toBeCloseTo(want, 5);
    expect(() => maskedLmLoss(logits, [[-1, -1], [-1, -1]])).toThrow(/no position of the batch is selected/);
    tf.dispose([logits, loss]);
  });

  it('a shrunken toy-bert trains: 40 steps lower the evaluation loss, and the steps leave no tensor behind', async () => {
    const r = recipe('toy-bert');
    const cfg = makeConfig({ ...r.config, n_layers: 1, n_heads: 2, d_model: 32, d_head: 16, d_mlp: 64 });
    const model = HookedTransformer.random(cfg, { seed: 1, std: 0.02 });
    const data = r.data(0);
    const before = await evaluate(model, data);
    const run = prepareTraining(model, data, { ...r.train, steps: 40, batchSize: 8, warmup: 5, lr: 3e-3 });
    const count = () => tf.memory().numTensors;
    trainStep(run, data.batch(run.rng, 8)).loss.dispose();
    const n = count();
    for (let i = 1; i < 40; i++) trainStep(run, data.batch(run.rng, 8)).loss.dispose();
    expect(count()).toBe(n);
    endTraining(run);
    const after = await evaluate(model, data);
    expect(after).toBeLessThan(before - 0.5);
    model.dispose();
  });
});
