/**
 * Which heads attend along dependency arcs (Clark et al. 2019, "What Does BERT Look At?", §4.1–4.2, Table 1):
 * a head "predicts" a word's syntactic head as the word it attends to most, and is scored per relation by how
 * often that prediction is right. No single BERT-base head did syntax as a whole, but some did single relations
 * well, e.g. a head finding direct objects' verbs at 86.8 % (offset baseline 40.0 %) and one finding
 * determiners' nouns at 94.3 % (baseline 51.7 %).
 *
 * As their Syntax_Analysis notebook and bpe_utils.py compute it:
 * - word-level attention from token-level maps: attention *to* a word is the sum over its tokens; attention
 *   *from* a word is the mean over its tokens (`fromWord: 'mean'`, what their paper §4.1 states and their code
 *   comment says the paper used; their extraction script's default is 'first', the first token's row, offered
 *   here too). Tokens in no word ([CLS], [SEP], BOS) are left out, as their probe drops those rows and columns;
 * - `dep->head`: dependent d predicts argmax_{w ≠ d} W[d][w] (the dependent attends to its head);
 *   `head->dep` (their "head<-dep", the transposed map): d predicts argmax_{w ≠ d} W[w][d] (the word that
 *   attends most to d). Ties go to the first word (numpy's argmax). A root arc is never predicted by attention;
 * - per relation, the share of arcs predicted right, and over all arcs ('all');
 * - their possessive rule (PTB tokenises "John 's"): with `words` given, a `poss` arc whose dependent is
 *   followed by the word "'s" or "s'" is judged by that next word's prediction, when the dependent's own
 *   prediction is not the last word (their condition, kept as it is);
 * - the offset baseline: every word predicts the word `offset` places away (clamped: before the first word is
 *   ROOT, past the last is the last word), for offsets −3 … 2 as theirs; per relation the best offset
 *   (ties: the larger offset, as their max over (accuracy, offset) pairs).
 * The best head per relation is the best over both directions and all heads (ties: the later layer and head, as
 * their sort).
 */
import { HeadlensError } from '../../errors.js';
import { attentionMaps, type AttentionMaps, type AttentionMapsInput } from './attention_maps.js';

/** One dependency arc: word indices from 0; `head` null for the root. */
export interface DependencyArc {
  dependent: number;
  head: number | null;
  relation: string;
}

export interface DependencyExample {
  /** Token-level maps [layer, head, query_pos, key_pos]. */
  maps: AttentionMapsInput;
  /** For each word, the token positions it spans, in order (tokens in no word are left out). */
  wordTokens: number[][];
  arcs: DependencyArc[];
  /** The words, for the possessive rule (optional). */
  words?: string[];
}

export type ProbeDirection = 'dep->head' | 'head->dep';
export const PROBE_DIRECTIONS: readonly ProbeDirection[] = ['dep->head', 'head->dep'];

export interface SyntaxProbeOptions {
  /** Attention from a word split into tokens: the mean of its tokens' rows (default, the paper) or the first token's. */
  fromWord?: 'mean' | 'first';
  /** Offsets of the baseline (default −3 … 2, theirs). */
  offsets?: number[];
  /** Apply their possessive rule where `words` are given (default true). */
  possessive?: boolean;
}

export interface BestHead {
  layer: number;
  head: number;
  direction: ProbeDirection;
  accuracy: number;
}

export interface SyntaxProbe {
  /** 'all' first, then the relations by arc count, most first. */
  relations: string[];
  counts: Record<string, number>;
  /** accuracy[direction][relation][layer][head]. */
  accuracy: Record<ProbeDirection, Record<string, number[][]>>;
  best: Record<string, BestHead>;
  /** The offset baseline's accuracy per offset and relation. */
  offsets: Record<string, Record<string, number>>;
  /** Per relation the best offset. */
  baseline: Record<string, { offset: number; accuracy: number }>;
  settings: { fromWord: 'mean' | 'first'; possessive: boolean; reference: string };
}

/** Word-level attention [layer·heads][word][word] of one example. */
function wordLevel(maps: AttentionMaps, wordTokens: number[][], fromWord: 'mean' | 'first'): Float64Array[][] {
  const { layers, heads, n, data } = maps;
  const W = wordTokens.length;
  const out: Float64Array[][] = [];
  for (let lh = 0; lh < layers * heads; lh++) {
    const base = lh * n * n;
    const rows: Float64Array[] = [];
    for (let i = 0; i < W; i++) {
      const from = fromWord === 'first' ? wordTokens[i].slice(0, 1) : wordTokens[i];
      const row = new Float64Array(W);
      for (let j = 0; j < W; j++) {
        let s = 0;
        for (const t of from) for (const k of wordTokens[j]) s += data[base + t * n + k];
        row[j] = s / from.length;
      }
      rows.push(row);
    }
    out.push(rows);
  }
  return out;
}

function checkExample(e: DependencyExample, i: number, n: number): void {
  const where = `syntax probe: example ${i}`;
  if (!Array.isArray(e.wordTokens) || e.wordTokens.length === 0) throw new HeadlensError(`${where} has no words (wordTokens)`, 'pass each word\'s token positions');
  const seen = new Set<number>();
  e.wordTokens.forEach((ts, w) => {
    if (!Array.isArray(ts) || ts.length === 0) throw new HeadlensError(`${where}: word ${w} spans no tokens`, 'every word needs at least one token position');
    for (const t of ts) {
      if (!Number.isInteger(t) || t < 0 || t >= n) throw new HeadlensError(`${where}: word ${w} has token position ${t}, outside the ${n} positions of its maps`);
      if (seen.has(t)) throw new HeadlensError(`${where}: token position ${t} belongs to two words`, 'each token belongs to at most one word');
      seen.add(t);
    }
  });
  const W = e.wordTokens.length;
  if (!Array.isArray(e.arcs)) throw new HeadlensError(`${where} has no arcs`, 'pass { dependent, head, relation } triples');
  e.arcs.forEach((a, k) => {
    if (!Number.isInteger(a.dependent) || a.dependent < 0 || a.dependent >= W) throw new HeadlensError(`${where}: arc ${k}'s dependent ${a.dependent} is not a word index in [0, ${W})`);
    if (a.head !== null && (!Number.isInteger(a.head) || a.head < 0 || a.head >= W)) throw new HeadlensError(`${where}: arc ${k}'s head ${a.head} is not a word index in [0, ${W}) or null (root)`);
    if (typeof a.relation !== 'string' || !a.relation) throw new HeadlensError(`${where}: arc ${k} has no relation name`);
  });
  if (e.words !== undefined && (!Array.isArray(e.words) || e.words.length !== W)) throw new HeadlensError(`${where}: ${e.words?.length} words for ${W} wordTokens entries`, 'pass one word per wordTokens entry');
}

/** argmax over w ≠ d of score(w), first on ties. */
function argmaxOther(W: number, d: number, score: (w: number) => number): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let w = 0; w < W; w++) {
    const s = w === d ? 0 : score(w); // the diagonal is zeroed, not skipped, as theirs
    if (s > bestScore) (best = w), (bestScore = s);
  }
  return best;
}

/** Per relation accuracy of every head in both directions, the best heads and the offset baseline. */
export function syntaxProbe(examples: DependencyExample[], opts: SyntaxProbeOptions = {}): SyntaxProbe {
  if (!Array.isArray(examples) || examples.length === 0) throw new HeadlensError('syntax probe: no examples given', 'pass { maps, wordTokens, arcs } per sentence');
  const fromWord = opts.fromWord ?? 'mean';
  if (fromWord !== 'mean' && fromWord !== 'first') throw new HeadlensError(`syntax probe: fromWord '${fromWord}' must be 'mean' or 'first'`);
  const offsets = opts.offsets ?? [-3, -2, -1, 0, 1, 2];
  if (!offsets.every(Number.isInteger) || offsets.length === 0) throw new HeadlensError(`syntax probe: offsets ${JSON.stringify(offsets)} must be a non-empty list of integers`);
  const possessive = opts.possessive ?? true;
  const counts: Record<string, number> = { all: 0 };
  let layers = 0;
  let heads = 0;
  // correct[direction][relation][layer·heads + head]
  const correct: Record<ProbeDirection, Record<string, number[]>> = { 'dep->head': {}, 'head->dep': {} };
  const offsetCorrect: Record<string, Record<string, number>> = Object.fromEntries(offsets.map((o) => [String(o), {}]));
  examples.forEach((e, i) => {
    const maps = attentionMaps(e.maps, `syntax probe: example ${i}'s attention maps`);
    if (i === 0) ((layers = maps.layers), (heads = maps.heads));
    else if (maps.layers !== layers || maps.heads !== heads) throw new HeadlensError(`syntax probe: example ${i} has ${maps.layers}×${maps.heads} heads, example 0 has ${layers}×${heads}`);
    checkExample(e, i, maps.n);
    const W = e.wordTokens.length;
    const word = wordLevel(maps, e.wordTokens, fromWord);
    // predictions[direction][lh][word]
    const predict = (dir: ProbeDirection, lh: number, d: number) => argmaxOther(W, d, (w) => (dir === 'dep->head' ? word[lh][d][w] : word[lh][w][d]));
    for (const a of e.arcs) {
      const rels = ['all', a.relation];
      counts[a.relation] = (counts[a.relation] ?? 0) + 1;
      counts.all++;
      // their possessive rule: "John 's": the arc is judged by the prediction of the word after the dependent
      const possFollows = possessive && a.relation === 'poss' && e.words !== undefined && a.dependent + 1 < W && (e.words[a.dependent + 1] === "'s" || e.words[a.dependent + 1] === "s'");
      // theirs switches only when the dependent's own prediction is not the last word (p < len(words), 1-based)
      const judge = (own: number, next: () => number) => (possFollows && own < W - 1 ? next() : own);
      for (const dir of PROBE_DIRECTIONS) {
        for (const r of rels) correct[dir][r] ??= new Array<number>(layers * heads).fill(0);
        for (let lh = 0; lh < layers * heads; lh++) {
          const p = judge(predict(dir, lh, a.dependent), () => predict(dir, lh, a.dependent + 1));
          if (a.head !== null && p === a.head) for (const r of rels) correct[dir][r][lh]++;
        }
      }
      for (const o of offsets) {
        // 0-based: −1 is ROOT; clamped as theirs, max(0, min(i + o + 1, n)) in 1-based indices
        const at = (d: number) => Math.max(-1, Math.min(d + o, W - 1));
        const p = judge(at(a.dependent), () => at(a.dependent + 1));
        const right = a.head === null ? p === -1 : p === a.head;
        for (const r of rels) offsetCorrect[String(o)][r] = (offsetCorrect[String(o)][r] ?? 0) + (right ? 1 : 0);
      }
    }
  });
  const relations = ['all', ...Object.keys(counts).filter((r) => r !== 'all').sort((a, b) => counts[b] - counts[a] || (a < b ? -1 : 1))];
  if (counts.all === 0) throw new HeadlensError('syntax probe: the examples hold no arcs, so every accuracy would be computed on nothing', 'pass { dependent, head, relation } arcs');
  const accuracy = Object.fromEntries(
    PROBE_DIRECTIONS.map((dir) => [dir, Object.fromEntries(relations.map((r) => [r, Array.from({ length: layers }, (_, l) => Array.from({ length: heads }, (_, h) => correct[dir][r][l * heads + h] / counts[r]))]))]),
  ) as Record<ProbeDirection, Record<string, number[][]>>;
  const best: Record<string, BestHead> = {};
  for (const r of relations) {
    let b: BestHead | undefined;
    for (const direction of PROBE_DIRECTIONS) {
      for (let l = 0; l < layers; l++) for (let h = 0; h < heads; h++) {
        const acc = accuracy[direction][r][l][h];
        if (!b || acc >= b.accuracy) b = { layer: l, head: h, direction, accuracy: acc };
      }
    }
    best[r] = b!;
  }
  const offsetAcc = Object.fromEntries(offsets.map((o) => [String(o), Object.fromEntries(relations.map((r) => [r, (offsetCorrect[String(o)][r] ?? 0) / counts[r]]))]));
  const baseline = Object.fromEntries(
    relations.map((r) => {
      let bo = offsets[0];
      for (const o of offsets) {
        const a = offsetAcc[String(o)][r];
        const cur = offsetAcc[String(bo)][r];
        if (a > cur || (a === cur && o > bo)) bo = o;
      }
      return [r, { offset: bo, accuracy: offsetAcc[String(bo)][r] }];
    }),
  );
  return { relations, counts, accuracy, best, offsets: offsetAcc, baseline, settings: { fromWord, possessive, reference: 'Clark et al. 2019, Syntax_Analysis.ipynb and bpe_utils.py' } };
}
