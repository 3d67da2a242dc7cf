/**
 * What toy-bert's model card reports, measured: masked-LM accuracy on examples drawn with a seed training never
 * used (overall, by what the hidden word is, and on the documents that never occur verbatim in the training
 * stream, which is replayed from its seed to find them), and each head's mean attention to [CLS], to [SEP] and to
 * punctuation, the three targets Clark et al. 2019 ("What Does BERT Look At?") found BERT's heads attending to,
 * with their tables (src/interp/scores/special_tokens.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { FIRST_NAMES } from '../datasets/word_lists.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { readAttentionMaps } from '../interp/scores/attention_maps.js';
import { BERT_TOKEN_CLASSES, classPositions, specialTokenAttention, type SpecialTokenAttention, type SpecialTokenExample } from '../interp/scores/special_tokens.js';
import { Random } from '../util/random.js';
import type { DataSource } from '../train/trainer.js';
import { CLS, FIRST_WORD_ID, SEP, toyBertBatch, toyBertExample, type ToyBertExample } from './toy_bert_data.js';

/** The training stream's documents, as id sequences joined by ',' (what a [CLS]/[SEP] pair encloses). */
export function trainingDocuments(data: DataSource, opts: { seed: number; steps: number; batchSize: number }): Set<string> {
  const rng = new Random(opts.seed); // the trainer draws each step's batch from its run generator, seeded so
  const docs = new Set<string>();
  for (let s = 0; s < opts.steps; s++) {
    const b = data.batch(rng, opts.batchSize);
    b.tokens.forEach((row, i) => {
      const ids = row.map((id, j) => (b.mlmTargets![i][j] >= 0 ? b.mlmTargets![i][j] : id)); // the words before masking
      for (const d of segments(ids)) docs.add(d.join(','));
    });
  }
  return docs;
}

/** The documents of an example: the runs of ids between [CLS] / [SEP]. */
export function segments(ids: number[]): number[][] {
  const out: number[][] = [];
  let cur: number[] = [];
  for (const id of ids) {
    if (id === CLS || id === SEP || id < FIRST_WORD_ID) {
      if (cur.length) out.push(cur);
      cur = [];
    } else cur.push(id);
  }
  if (cur.length) out.push(cur);
  return out;
}

export interface MlmAccuracy {
  /** Selected (hidden) positions and how many the model's top prediction got right. */
  selected: number;
  correct: number;
  /** By the hidden word: a first name, punctuation, anything else. */
  byWord: Record<'name' | 'punctuation' | 'other', { selected: number; correct: number }>;
  /** Only the examples none of whose documents occur verbatim in `trainDocs` (when given). */
  novel?: { examples: number; selected: number; correct: number };
  examples: number;
}

/**
 * Masked-LM accuracy on `n` examples drawn with `seed` and masked as in training (15 %: 80 % [MASK], 10 % random,
 * 10 % kept): the share of selected positions whose largest logit is the hidden word.
 */
export function mlmAccuracy(model: HookedTransformer, opts: { seed: number; n: number; trainDocs?: Set<string>; batchSize?: number }): MlmAccuracy {
  const tok = model.tokenizer!;
  const rng = new Random(opts.seed);
  const examples: ToyBertExample[] = Array.from({ length: opts.n }, () => toyBertExample(tok, rng, model.cfg.n_ctx));
  const names = new Set(FIRST_NAMES.map((n) => tok.encode(n).filter((id) => id >= FIRST_WORD_ID)).filter((ids) => ids.length === 1).map((ids) => ids[0]));
  const kindOf = (id: number) => (names.has(id) ? 'name' : /^[^\w]+$/.test(tok.tokenText(id)) ? 'punctuation' : 'other');
  const out: MlmAccuracy = { selected: 0, correct: 0, byWord: { name: { selected: 0, correct: 0 }, punctuation: { selected: 0, correct: 0 }, other: { selected: 0, correct: 0 } }, examples: opts.n };
  if (opts.trainDocs) out.novel = { examples: 0, selected: 0, correct: 0 };
  const size = opts.batchSize ?? 32;
  for (let i = 0; i < examples.length; i += size) {
    const part = examples.slice(i, i + size);
    const batch = toyBertBatch(part, rng, model.cfg.d_vocab);
    const top = tf.tidy(() => model.forward(batch.tokens, { tokenTypeIds: batch.tokenTypeIds, attentionMask: batch.attentionMask }).argMax(-1).arraySync() as number[][]);
    part.forEach((ex, r) => {
      const novel = opts.trainDocs && segments(ex.ids).every((d) => !opts.trainDocs!.has(d.join(',')));
      if (novel) out.novel!.examples++;
      batch.mlmTargets![r].forEach((t, p) => {
        if (t < 0) return;
        const ok = top[r][p] === t ? 1 : 0;
        out.selected++;
        out.correct += ok;
        const w = out.byWord[kindOf(t)];
        w.selected++;
        w.correct += ok;
        if (novel) (out.novel!.selected++, (out.novel!.correct += ok));
      });
    });
  }
  return out;
}

/** toy-bert's attention to special tokens: Clark et al.'s tables (special_tokens.ts) on drawn examples. */
export interface ToyBertAttention extends SpecialTokenAttention {
  /** The mean share of the keys in each class, what a head attending uniformly would put there. */
  uniform: Record<string, number>;
}

/**
 * Clark et al.'s special-token tables (special_tokens.ts: the mean attention of each head to [CLS], to [SEP], to
 * "." and ",", and to itself and its neighbours) over `n` unmasked single-document examples ([CLS] document [SEP],
 * one segment, so no token types are needed) drawn with `seed`.
 */
export function toyBertSpecialAttention(model: HookedTransformer, opts: { seed: number; n: number }): ToyBertAttention {
  const tok = model.tokenizer!;
  const rng = new Random(opts.seed);
  const examples: SpecialTokenExample[] = [];
  const uniform: Record<string, number> = Object.fromEntries(Object.keys(BERT_TOKEN_CLASSES).map((c) => [c, 0]));
  while (examples.length < opts.n) {
    const ex = toyBertExample(tok, rng, model.cfg.n_ctx);
    if (ex.kinds.length !== 1) continue;
    const tokens = ex.ids.map((id) => tok.tokenText(id));
    examples.push({ tokens, maps: readAttentionMaps(model, ex.ids) });
    for (const [c, inClass] of Object.entries(classPositions(tokens, BERT_TOKEN_CLASSES))) uniform[c] += inClass.filter(Boolean).length / tokens.length / opts.n;
  }
  return { ...specialTokenAttention(examples, { classes: BERT_TOKEN_CLASSES }), uniform };
}
