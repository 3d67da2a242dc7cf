/**
 * The training data of toy-bert, a small masked-LM encoder: the sentences toy-lm is trained on (toy_lm_data.ts:
 * IOI stories, multiple-choice questions, year-dependent facts and their controls, sentences about people, the
 * needle haystack's filler, needles and their questions), each example one document or, half of the time, two
 * (a sentence pair: [CLS] a [SEP] b [SEP], token types 0 then 1), masked as BERT (Devlin et al. 2019): 15 % of
 * the word positions selected (at least one), of those 80 % replaced by [MASK], 10 % by a random word, 10 % left
 * as they are; the loss is the cross-entropy of the original word at the selected positions. There is no
 * next-sentence objective (RoBERTa showed it is not needed); the second text is drawn independently of the first.
 * Rows are right-padded with [PAD] to the longest of the batch.
 */
import { fillerSentence, needleVariant } from '../datasets/needle.js';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { Random } from '../util/random.js';
import type { Batch, DataSource } from '../train/trainer.js';
import { shortDocument } from './toy_lm_data.js';
import { ENCODER_SPECIALS } from './word_tokenizer.js';

const [PAD, , CLS, SEP, MASK] = ENCODER_SPECIALS.map((_, i) => i);
/** The first id that is a word (ids below are the special tokens). */
export const FIRST_WORD_ID = ENCODER_SPECIALS.length;

/** The document kinds and their shares. */
export const TOY_BERT_MIX = { ioi: 0.25, mcq: 0.15, temporal: 0.2, people: 0.2, filler: 0.1, needle: 0.1 } as const;
export type ToyBertKind = keyof typeof TOY_BERT_MIX;

/** One document's text, of a kind drawn by TOY_BERT_MIX. */
export function toyBertDocument(rng: Random): { kind: ToyBertKind; text: string } {
  let r = rng.next();
  let kind: ToyBertKind = 'needle';
  for (const [k, share] of Object.entries(TOY_BERT_MIX) as [ToyBertKind, number][]) {
    if (r < share) {
      kind = k;
      break;
    }
    r -= share;
  }
  if (kind === 'filler') return { kind, text: fillerSentence(rng) };
  if (kind === 'needle') {
    const v = needleVariant(rng);
    return { kind, text: rng.next() < 0.5 ? v.needle : `${v.question} ${v.answer}` };
  }
  const d = shortDocument(kind, rng);
  return { kind, text: d.prompt + d.answer };
}

export interface ToyBertExample {
  /** [CLS] a [SEP] (b [SEP]) before masking */
  ids: number[];
  types: number[];
  kinds: ToyBertKind[];
}

/** One example of at most nCtx tokens: one document, or two as a sentence pair when both fit. */
export function toyBertExample(tok: TextTokenizer, rng: Random, nCtx: number): ToyBertExample {
  if (!tok.encodePair) throw new HeadlensError('toy-bert data needs a tokenizer that encodes sentence pairs');
  for (let tries = 0; tries < 100; tries++) {
    const a = toyBertDocument(rng);
    if (rng.next() < 0.5) {
      const b = toyBertDocument(rng);
      const { ids, typeIds } = tok.encodePair(a.text, b.text);
      if (ids.length <= nCtx) return { ids, types: typeIds, kinds: [a.kind, b.kind] };
    }
    const ids = tok.encode(a.text);
    if (ids.length <= nCtx) return { ids, types: ids.map(() => 0), kinds: [a.kind] };
  }
  throw new HeadlensError(`toy-bert data: no document fits ${nCtx} tokens`, 'raise n_ctx');
}

/**
 * BERT's masking of one example: returns the input ids and the targets (−1 where nothing is predicted). Only
 * words are selected, never [CLS], [SEP] or padding.
 */
export function maskExample(ids: number[], rng: Random, vocabSize: number, rate = 0.15): { input: number[]; targets: number[] } {
  const words = ids.flatMap((id, i) => (id >= FIRST_WORD_ID ? [i] : []));
  const n = Math.max(1, Math.round(rate * words.length));
  const chosen = rng.shuffle(words).slice(0, n);
  const input = [...ids];
  const targets = ids.map(() => -1);
  for (const i of chosen) {
    targets[i] = ids[i];
    const r = rng.next();
    if (r < 0.8) input[i] = MASK;
    else if (r < 0.9) input[i] = rng.int(FIRST_WORD_ID, vocabSize);
  }
  return { input, targets };
}

/** Examples → a right-padded batch with its masked-LM targets, token types and attention mask. */
export function toyBertBatch(examples: ToyBertExample[], rng: Random, vocabSize: number): Batch {
  const len = Math.max(...examples.map((e) => e.ids.length));
  const pad = <T>(r: T[], x: T) => [...r, ...new Array<T>(len - r.length).fill(x)];
  const masked = examples.map((e) => maskExample(e.ids, rng, vocabSize));
  return {
    tokens: masked.map((m) => pad(m.input, PAD)),
    mlmTargets: masked.map((m) => pad(m.targets, -1)),
    tokenTypeIds: examples.map((e) => pad(e.types, 0)),
    attentionMask: examples.map((e) => pad(e.ids.map(() => 1), 0)),
  };
}

export interface ToyBertDataOptions {
  tokenizer: TextTokenizer;
  nCtx: number;
  vocabSize: number;
  evalSeed: number;
  evalBatches?: number;
  evalSize?: number;
}

/** toy-bert's DataSource: training batches from the run's generator, fixed evaluation batches from evalSeed. */
export function toyBertData(opts: ToyBertDataOptions): DataSource {
  const make = (rng: Random, n: number) => toyBertBatch(Array.from({ length: n }, () => toyBertExample(opts.tokenizer, rng, opts.nCtx)), rng, opts.vocabSize);
  const evalRng = new Random(opts.evalSeed);
  const evals = Array.from({ length: opts.evalBatches ?? 4 }, () => make(evalRng, opts.evalSize ?? 32));
  return { batch: make, evalBatches: () => evals };
}

export { CLS, SEP, MASK, PAD };
