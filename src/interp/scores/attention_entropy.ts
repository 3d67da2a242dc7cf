/**
 * Attention entropy per head (Clark et al. 2019, "What Does BERT Look At?", §3.3, Figure 4): how broadly a head
 * attends. Some of BERT-base's lower-layer heads attend very broadly (entropies near a uniform distribution's,
 * log n); the heads' attention from [CLS] reached entropies near 3.89 nats in the last layer.
 *
 * As their General_Analysis notebook computes it, per example:
 * - the weights are smoothed, p' = 0.9999·p + 0.0001/v (`smoothing` = 1e-4), to keep log finite;
 * - `entropy`: −Σ_k p'·ln p' (nats), averaged over the query positions;
 * - `summary`: the same entropy of one query row, the summary token's: position 0 ([CLS]) on bidirectional maps,
 *   as theirs. On causal maps position 0 sees only itself (entropy 0 whatever the head does), so there the row is
 *   the last position's, the one a decoder predicts from (a headlens choice, named in the result);
 * - `uniform`: the entropy a head spreading evenly would have, ln v averaged over queries (their dashed line).
 * Examples count equally. v is the number of keys the query can see: all n on bidirectional maps (then all of
 * this is exactly theirs), q + 1 on causal maps (theirs smooths over all n keys, which on a causal map would put
 * weight on keys the query cannot see; that would add up to ~1e-3 nats).
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { attentionMaps, readAttentionMaps, visibleKeys, type AttentionMaps, type AttentionMapsInput } from './attention_maps.js';
import { checkSequences, runScorer, zeros, type HeadScorer, type HeadScores } from './head_scores.js';

export interface EntropyOptions {
  /** Mixing weight of the uniform distribution (default 1e-4, theirs; 0 for the exact entropy with 0·ln 0 = 0). */
  smoothing?: number;
}

export interface AttentionEntropyOf {
  /** Mean over queries of each head's attention entropy (nats), [layer][head]. */
  entropy: number[][];
  /** Entropy of the summary position's row (nats), [layer][head]. */
  summary: number[][];
  /** The summary position used: 0 on bidirectional maps, n − 1 on causal ones. */
  summaryPosition: number;
  /** Mean over queries of ln(visible keys): uniform attention's entropy. */
  uniform: number;
}

function checkSmoothing(s: number): void {
  if (!(Number.isFinite(s) && s >= 0 && s < 1)) throw new HeadlensError(`attention entropy: smoothing ${s} must be in [0, 1)`, 'use 1e-4 (Clark et al.) or 0');
}

/** Entropy of a head's row q, smoothed over the visible keys. */
function rowEntropy(maps: AttentionMaps, base: number, q: number, s: number): number {
  const v = visibleKeys(maps, q);
  const row = base + q * maps.n;
  let e = 0;
  for (let k = 0; k < v; k++) {
    const p = (1 - s) * maps.data[row + k] + s / v;
    if (p > 0) e -= p * Math.log(p);
  }
  return e;
}

/** One example's entropies. */
export function attentionEntropyOf(maps: AttentionMaps, opts: EntropyOptions = {}): AttentionEntropyOf {
  const s = opts.smoothing ?? 1e-4;
  checkSmoothing(s);
  const { layers, heads, n } = maps;
  const entropy = zeros(layers, heads);
  const summary = zeros(layers, heads);
  const summaryPosition = maps.causal ? n - 1 : 0;
  for (let l = 0; l < layers; l++) {
    for (let h = 0; h < heads; h++) {
      const base = (l * heads + h) * n * n;
      let sum = 0;
      for (let q = 0; q < n; q++) sum += rowEntropy(maps, base, q, s);
      entropy[l][h] = sum / n;
      summary[l][h] = rowEntropy(maps, base, summaryPosition, s);
    }
  }
  let uniform = 0;
  for (let q = 0; q < n; q++) uniform += Math.log(visibleKeys(maps, q));
  return { entropy, summary, summaryPosition, uniform: uniform / n };
}

export interface AttentionEntropy {
  entropy: number[][];
  summary: number[][];
  /** 'position 0 ([CLS])' or 'last position' (causal maps), as used. */
  summaryRow: string;
  uniform: number;
  examples: number;
}

/** Attention entropy per head averaged over examples (each counts equally), from their maps. */
export function attentionEntropy(examples: AttentionMapsInput[], opts: EntropyOptions = {}): AttentionEntropy {
  if (!Array.isArray(examples) || examples.length === 0) throw new HeadlensError('attention entropy: no examples given', 'pass at least one example\'s maps [layer, head, query_pos, key_pos]');
  const each = examples.map((m, i) => attentionEntropyOf(attentionMaps(m, `example ${i}'s attention maps`), opts));
  const mean = (pick: (e: AttentionEntropyOf) => number[][]) => pick(each[0]).map((row, l) => row.map((_, h) => each.reduce((a, e) => a + pick(e)[l][h], 0) / each.length));
  const rows = new Set(each.map((e) => e.summaryPosition === 0));
  return {
    entropy: mean((e) => e.entropy),
    summary: mean((e) => e.summary),
    summaryRow: rows.size > 1 ? 'mixed (position 0 on bidirectional examples, the last on causal ones)' : each[0].summaryPosition === 0 ? 'position 0 ([CLS])' : 'last position',
    uniform: each.reduce((a, e) => a + e.uniform, 0) / each.length,
    examples: each.length,
  };
}

/**
 * The scan's scorer: `entropy` (primary), `summary` and `uniform` (the same value in every cell: the entropy a
 * uniformly attending head would have on these items).
 */
export function attentionEntropyScorer(sequences: number[][], opts: EntropyOptions = {}): HeadScorer<number[]> {
  checkSequences('attention-entropy', sequences);
  const s = opts.smoothing ?? 1e-4;
  checkSmoothing(s);
  return {
    task: 'attention-entropy',
    settings: { smoothing: s, units: 'nats', summaryRow: 'position 0 ([CLS]) on bidirectional models, the last position on causal ones', reference: 'Clark et al. 2019, General_Analysis.ipynb' },
    primary: 'entropy',
    items: sequences,
    scoreItem: (model, tokens) => {
      const e = attentionEntropyOf(readAttentionMaps(model, tokens), { smoothing: s });
      return { tables: { entropy: e.entropy, summary: e.summary, uniform: e.entropy.map((row) => row.map(() => e.uniform)) }, weight: 1 };
    },
    unfit: (model, tokens) => (tokens.length > model.cfg.n_ctx ? { problem: `a sequence of ${tokens.length} tokens is longer than the context (${model.cfg.n_ctx})`, fix: 'use shorter lines' } : undefined),
  };
}

/** Attention entropy of every head of `model` on token sequences. */
export function attentionEntropyScores(model: HookedTransformer, sequences: number[][], opts: EntropyOptions & { top?: number } = {}): HeadScores {
  return runScorer(model, attentionEntropyScorer(sequences, opts), { top: opts.top });
}
