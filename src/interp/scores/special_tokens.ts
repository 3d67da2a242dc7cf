/**
 * Attention to special tokens (Clark, Khandelwal, Levy & Manning 2019, "What Does BERT Look At?", §3.1–3.2,
 * Figure 2): the average attention each head pays to [CLS], to [SEP] and to punctuation ("." and ","), and to
 * fixed relative positions. In BERT-base over half of layers 6–10's attention went to [SEP], and heads attending
 * to [SEP] mostly attended from [SEP] to [SEP] in the early layers; they read such attention as a no-op.
 *
 * What is computed for one example, as their General_Analysis notebook does:
 * - class c: Σ_{k ∈ c} A[q, k], averaged over every query q, the class's own tokens included;
 * - `self`, `prev`, `next`: A[q, q], A[q, q − 1], A[q, q + 1], summed over the queries that have such a key and
 *   divided by all n queries (their `eye(n, n, k)` selectors; their Figure 2 legend labels `left`, A[q, q − 1],
 *   "next token" and `right` "prev token", while their clustering cell calls them prev and next; the maths is
 *   what counts here: `prev` is the token before);
 * - for the class named by `split` (default 'sep'): `sep->sep`, the mass on the class from the class's own
 *   queries averaged over them, and `rest->sep`, the same from the other queries. Theirs divide by 2 and by
 *   n − 2, which are those counts when an example holds exactly two [SEP]s, as their data always did; here the
 *   divisor is the actual count (0 when there is none, as theirs).
 * Examples count equally (their sum over documents divided by the number of documents).
 *
 * Token classes are sets of token strings; a token belongs to a class when its string, or the string without
 * one leading word-start mark ('Ġ' of byte-level BPE, '▁' of SentencePiece, a space), is in the set. BERT's
 * WordPiece has no such marks, so on BERT this is their exact string match. The default classes hold BERT's
 * [CLS]/[SEP], RoBERTa's <s>/</s> and the BOS strings of decoders, so `cls` is "the sequence-start token" on
 * every model; a class that occurs in none of the examples is left out of the result and named in `absent`,
 * rather than reported as a table of zeros computed on nothing.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { attentionMaps, checkTokens, readAttentionMaps, type AttentionMaps, type AttentionMapsInput } from './attention_maps.js';
import { checkSequences, runScorer, zeros, type HeadScorer, type HeadScores } from './head_scores.js';

/** Named sets of token strings. */
export type TokenClasses = Record<string, string[]>;

export const PUNCTUATION = ['.', ','];
/** BERT's WordPiece specials (Clark et al.'s classes). */
export const BERT_TOKEN_CLASSES: TokenClasses = { cls: ['[CLS]'], sep: ['[SEP]'], punct: PUNCTUATION };
/** RoBERTa's byte-level BPE specials: <s> opens the sequence, </s> closes each segment. */
export const ROBERTA_TOKEN_CLASSES: TokenClasses = { cls: ['<s>'], sep: ['</s>'], punct: PUNCTUATION };
/** Decoders: the BOS token opens the sequence (GPT-2's <|endoftext|>, Llama's <s>, Llama 3's <|begin_of_text|>, Gemma's <bos>); no separator. */
export const DECODER_TOKEN_CLASSES: TokenClasses = { cls: ['<|endoftext|>', '<s>', '<|begin_of_text|>', '<bos>'], sep: [], punct: PUNCTUATION };
/** The union of the three, the default: the right classes on BERT, RoBERTa and GPT-2-style decoders alike. */
export const DEFAULT_TOKEN_CLASSES: TokenClasses = {
  cls: [...new Set([...BERT_TOKEN_CLASSES.cls, ...ROBERTA_TOKEN_CLASSES.cls, ...DECODER_TOKEN_CLASSES.cls])],
  sep: [...BERT_TOKEN_CLASSES.sep, ...ROBERTA_TOKEN_CLASSES.sep],
  punct: PUNCTUATION,
};

/** The fixed relative positions measured beside the classes. */
export const POSITION_TABLES = ['self', 'prev', 'next'] as const;

export interface SpecialTokenOptions {
  /** The classes (default DEFAULT_TOKEN_CLASSES). */
  classes?: TokenClasses;
  /** The class whose own queries are split from the rest (`sep->sep`, `rest->sep`); default 'sep', null for none. */
  split?: string | null;
}

/** The string a token is matched by: without one leading word-start mark. */
function bare(token: string): string {
  return token.length > 1 && (token[0] === 'Ġ' || token[0] === '▁' || token[0] === ' ') ? token.slice(1) : token;
}

/** Which positions of `tokens` belong to each class. */
export function classPositions(tokens: string[], classes: TokenClasses): Record<string, boolean[]> {
  return Object.fromEntries(
    Object.entries(classes).map(([name, set]) => {
      const s = new Set(set);
      return [name, tokens.map((t) => s.has(t) || s.has(bare(t)))];
    }),
  );
}

function checkClasses(classes: TokenClasses): void {
  const names = Object.keys(classes);
  for (const n of names) {
    if (!Array.isArray(classes[n]) || classes[n].some((t) => typeof t !== 'string')) throw new HeadlensError(`special tokens: class '${n}' must be a list of token strings`);
    if ((POSITION_TABLES as readonly string[]).includes(n) || n.includes('->')) throw new HeadlensError(`special tokens: class name '${n}' is taken by a position table`, 'rename the class');
  }
}

/** One example's tables [layer][head] (see the file comment for each). */
export function specialTokenAttentionOf(maps: AttentionMaps, tokens: string[], opts: SpecialTokenOptions = {}): Record<string, number[][]> {
  const classes = opts.classes ?? DEFAULT_TOKEN_CLASSES;
  checkClasses(classes);
  checkTokens(maps, tokens);
  const { layers, heads, n, data } = maps;
  const where = classPositions(tokens, classes);
  const split = opts.split === undefined ? (Object.hasOwn(classes, 'sep') ? 'sep' : null) : opts.split;
  if (split !== null && !Object.hasOwn(classes, split)) throw new HeadlensError(`special tokens: split class '${split}' is not one of the classes (${Object.keys(classes).join(', ')})`);
  const out: Record<string, number[][]> = {};
  const names = [...Object.keys(classes), ...POSITION_TABLES, ...(split !== null ? [`${split}->${split}`, `rest->${split}`] : [])];
  for (const name of names) out[name] = zeros(layers, heads);
  const nSplit = split !== null ? where[split].filter(Boolean).length : 0;
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const base = (l * heads + h) * n * n;
      for (const [name, inClass] of Object.entries(where)) {
        let sum = 0;
        let fromOwn = 0;
        for (let q = 0; q < n; q++) {
          let row = 0;
          for (let k = 0; k < n; k++) if (inClass[k]) row += data[base + q * n + k];
          sum += row;
          if (name === split && inClass[q]) fromOwn += row;
        }
        out[name][l][h] = sum / n;
        if (name === split) {
          out[`${split}->${split}`][l][h] = nSplit > 0 ? fromOwn / nSplit : 0;
          out[`rest->${split}`][l][h] = n - nSplit > 0 ? (sum - fromOwn) / (n - nSplit) : 0;
        }
      }
      let self = 0;
      let prev = 0;
      let next = 0;
      for (let q = 0; q < n; q++) {
        self += data[base + q * n + q];
        if (q > 0) prev += data[base + q * n + q - 1];
        if (q + 1 < n) next += data[base + q * n + q + 1];
      }
      out.self[l][h] = self / n;
      out.prev[l][h] = prev / n;
      out.next[l][h] = next / n;
    }
  }
  return out;
}

export interface SpecialTokenExample {
  /** One string per position (model.toStrTokens(ids), or the tokenizer's tokens). */
  tokens: string[];
  /** [layer, head, query_pos, key_pos]. */
  maps: AttentionMapsInput;
}

export interface SpecialTokenAttention {
  /** Per table name ([CLS]-class, `sep`, `punct`, `self`, `prev`, `next`, `sep->sep`, `rest->sep`) the mean over examples, [layer][head]. */
  tables: Record<string, number[][]>;
  /** Classes that occur in none of the examples: left out of `tables`. */
  absent: string[];
  examples: number;
}

/** Average attention to each token class and relative position over examples (each counts equally). */
export function specialTokenAttention(examples: SpecialTokenExample[], opts: SpecialTokenOptions = {}): SpecialTokenAttention {
  if (!Array.isArray(examples) || examples.length === 0) throw new HeadlensError('special tokens: no examples given', 'pass at least one { tokens, maps }');
  const classes = opts.classes ?? DEFAULT_TOKEN_CLASSES;
  const absent = Object.keys(classes).filter((c) => !examples.some((e) => Array.isArray(e.tokens) && classPositions(e.tokens, { [c]: classes[c] })[c].some(Boolean)));
  let sums: Record<string, number[][]> | undefined;
  examples.forEach((e, i) => {
    const t = specialTokenAttentionOf(attentionMaps(e.maps, `example ${i}'s attention maps`), e.tokens, opts);
    if (!sums) sums = t;
    else for (const [name, table] of Object.entries(t)) table.forEach((row, l) => row.forEach((v, h) => (sums![name][l][h] += v)));
  });
  const tables = Object.fromEntries(
    Object.entries(sums!)
      .filter(([name]) => !absent.includes(name) && !absent.some((c) => name === `${c}->${c}` || name === `rest->${c}`))
      .map(([name, t]) => [name, t.map((row) => row.map((v) => v / examples.length))]),
  );
  return { tables, absent, examples: examples.length };
}

export interface SpecialTokenScorerOptions extends SpecialTokenOptions {
  top?: number;
}

/**
 * The scan's scorer: token-id sequences, their strings from `tokenText`. The primary table is the first class
 * that occurs in the sequences (with the default classes: `cls`, the sequence-start token); classes that occur
 * in none are left out and listed in the settings (`absent`).
 */
export function specialTokensScorer(sequences: number[][], tokenText: (id: number) => string, opts: SpecialTokenScorerOptions = {}): HeadScorer<number[]> {
  checkSequences('special-tokens', sequences);
  const classes = opts.classes ?? DEFAULT_TOKEN_CLASSES;
  checkClasses(classes);
  const strings = (ids: number[]) => ids.map((id) => tokenText(id));
  const present = Object.keys(classes).filter((c) => sequences.some((s) => classPositions(strings(s), { [c]: classes[c] })[c].some(Boolean)));
  const absent = Object.keys(classes).filter((c) => !present.includes(c));
  const kept = Object.fromEntries(present.map((c) => [c, classes[c]]));
  const split = opts.split === undefined ? 'sep' : opts.split;
  const keptSplit = split !== null && present.includes(split) ? split : null;
  return {
    task: 'special-tokens',
    settings: { classes: kept, absent, split: keptSplit, reference: 'Clark et al. 2019, General_Analysis.ipynb' },
    primary: present[0] ?? 'self',
    items: sequences,
    scoreItem: (model, tokens) => ({
      tables: specialTokenAttentionOf(readAttentionMaps(model, tokens), strings(tokens), { classes: kept, split: keptSplit }),
      weight: 1,
    }),
    unfit: (model, tokens) => (tokens.length > model.cfg.n_ctx ? { problem: `a sequence of ${tokens.length} tokens is longer than the context (${model.cfg.n_ctx})`, fix: 'use shorter lines' } : undefined),
  };
}

/** Attention to special tokens of every head of `model` on token sequences (strings from its tokenizer). */
export function specialTokenScores(model: HookedTransformer, sequences: number[][], opts: SpecialTokenScorerOptions = {}): HeadScores {
  const tok = model.tokenizer;
  if (!tok) throw new HeadlensError('special tokens: the model has no tokenizer, so token strings are unknown', 'load a model folder with tokenizer.json, or call specialTokenAttention with the token strings');
  return runScorer(model, specialTokensScorer(sequences, (id) => tok.tokenText(id), opts), { top: opts.top });
}
