/**
 * toy-bert, the masked-LM encoder the zoo ships (datasets/zoo/toy-bert): this test measures what its model card
 * reports and prints it, so the card's numbers are the output of this file (wasm):
 *   - masked-LM accuracy on 512 examples drawn with seed 2027 (training drew with seed 0, its evaluation batches
 *     with 1,000,003), masked as in training; by the hidden word; and on the examples none of whose documents
 *     occur verbatim in the replayed training stream;
 *   - each head's mean attention to [CLS], [SEP] and punctuation over 64 single-document examples (seed 2028).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { initBackend } from '../src/backend/index.js';
import { loadPretrained, ZOO_DIR } from '../src/loading/load.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { makeConfig } from '../src/model/config.js';
import { recipe } from '../src/zoo/recipes.js';
import { siteOptions } from '../src/cli/explore.js';
import { formatInfo, modelInfo } from '../src/cli/model_info.js';
import { mlmAccuracy, toyBertSpecialAttention, trainingDocuments } from '../src/zoo/toy_bert_findings.js';

let model: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained(path.join(ZOO_DIR, 'toy-bert'));
});

const pct = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} % (${a} of ${b})`;

describe('toy-bert (datasets/zoo/toy-bert)', () => {
  it('is the recipe’s model: its config, a BertForMaskedLM with the recipe’s tokenizer', () => {
    const r = recipe('toy-bert');
    expect(model.cfg).toEqual({ ...makeConfig(r.config), model_name: model.cfg.model_name });
    expect(model.toStrTokens('Mary went to the store.')).toEqual(['[CLS]', 'Mary', 'went', 'to', 'the', 'store', '.', '[SEP]']);
    expect(formatInfo(modelInfo(model))).toContain('layout      LN norm (post-LN), standard positions, bidirectional attention (encoder, masked-LM logits)');
  });

  it('the explorer (next-token logits) leaves it out of its list and refuses it by name', async () => {
    expect(Object.keys((await siteOptions('toy-lm')).models)).not.toContain('toy-bert');
    await expect(siteOptions('toy-bert')).rejects.toThrow(/toy-bert is an encoder; the explorer compares next-token logits/);
  });

  it('masked-LM accuracy on held-out draws, as its model card states', () => {
    const r = recipe('toy-bert');
    const trainDocs = trainingDocuments(r.data(0), { seed: r.train.seed, steps: r.train.steps, batchSize: r.train.batchSize });
    const acc = mlmAccuracy(model, { seed: 2027, n: 512, trainDocs });
    const lines = [
      `all          ${pct(acc.correct, acc.selected)}`,
      ...Object.entries(acc.byWord).map(([k, v]) => `${k.padEnd(12)} ${pct(v.correct, v.selected)}`),
      `novel        ${pct(acc.novel!.correct, acc.novel!.selected)} on ${acc.novel!.examples} of ${acc.examples} examples with no document seen in training (${trainDocs.size} distinct training documents)`,
    ];
    console.log(`toy-bert masked-LM accuracy (seed 2027, 512 examples)\n${lines.join('\n')}`);
    expect(acc).toEqual(CARD.accuracy);
  });

  it('attention to [CLS], [SEP] and punctuation per head (Clark et al.’s tables), as its model card states', () => {
    const a = toyBertSpecialAttention(model, { seed: 2028, n: 64 });
    const fmt = (m: number[][]) => m.map((row, l) => `  L${l}: ${row.map((x) => x.toFixed(2)).join(' ')}`).join('\n');
    const shown = ['cls', 'sep', 'punct', 'sep->sep', 'rest->sep', 'prev', 'next', 'self'];
    console.log(`toy-bert attention (${a.examples} single-document examples, seed 2028; uniform: ${Object.entries(a.uniform).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')})\n${shown.map((k) => `${k}\n${fmt(a.tables[k])}`).join('\n')}`);
    const round = (m: number[][]) => m.map((r) => r.map((x) => Math.round(x * 100) / 100));
    expect(a.absent).toEqual([]);
    expect(Object.fromEntries(['cls', 'sep', 'punct'].map((k) => [k, round(a.tables[k])]))).toEqual(CARD.attention);
  });
});

/** The numbers datasets/zoo/toy-bert/README.md states (this test's output when the weights were shipped). */
const CARD = {
  accuracy: {
    examples: 512,
    selected: 1803,
    correct: 1077,
    byWord: { name: { selected: 171, correct: 4 }, punctuation: { selected: 331, correct: 320 }, other: { selected: 1301, correct: 753 } },
    novel: { examples: 313, selected: 1150, correct: 717 },
  },
  attention: {
    cls: [
      [0.02, 0.03, 0.01, 0],
      [0.01, 0.01, 0.01, 0.01],
      [0.02, 0.01, 0, 0.01],
      [0.02, 0.01, 0.02, 0.02],
    ],
    sep: [
      [0.02, 0.03, 0.02, 0.06],
      [0.11, 0.08, 0.04, 0.05],
      [0.07, 0.11, 0.06, 0.1],
      [0.07, 0.06, 0.08, 0.05],
    ],
    punct: [
      [0.1, 0.12, 0.09, 0.1],
      [0.08, 0.03, 0.17, 0.19],
      [0.11, 0.16, 0.14, 0.28],
      [0.06, 0.14, 0.09, 0.12],
    ],
  },
};
