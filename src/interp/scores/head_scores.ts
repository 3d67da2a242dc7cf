/**
 * What every head scorer returns, and the one loop they share. A scorer is a list of items (prompts, trials)
 * and a function that scores one item: a table [n_layers][n_heads] per named quantity plus a weight (0 leaves
 * the item out, e.g. a needle trial the model failed). The result is the weighted mean of each table over the
 * items. `scan` (../scan.ts) runs the same loop with checkpoints; the plain functions run it in one go.
 * A score alone is a correlation: each technique file says which causal check goes with it.
 * A scorer that reads numbers from the backend mid-way returns its item as a computation (util/reads.ts) rather
 * than a value, so one body runs synchronously (`runScorer`) and asynchronously (`runScorerAsync`, the form for
 * WebGPU in Node).
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { readAsync, readSync, valueOf, type Reads } from '../../util/reads.js';

export interface TopHead {
  layer: number;
  head: number;
  score: number;
}

/** A scorer's answer: the primary table [n_layers][n_heads], the settings that produced it, the best heads. */
export interface HeadScores {
  scores: number[][];
  settings: Record<string, unknown>;
  top: TopHead[];
  /** Further tables of the same shape (e.g. attention next to DLA), named. */
  tables?: Record<string, number[][]>;
  /** How many items counted (weight > 0) out of how many were scored. */
  counted?: { used: number; total: number };
  /** Items left out before scoring because they cannot run on this model (e.g. longer than n_ctx), and why. */
  dropped?: { count: number; of: number; reason: string };
  /** What the caller should know about this result (dropped items); the CLI prints each on stderr. */
  warnings?: string[];
}

/** One item's contribution: tables [n_layers][n_heads] and its weight in the mean. */
export interface ItemScores {
  tables: Record<string, number[][]>;
  weight: number;
  /** Anything worth keeping about the item (JSON-able): a decoded answer, its recall. */
  info?: Record<string, unknown>;
}

/** A scorer as data: what `scan` checkpoints and resumes. */
export interface HeadScorer<S = unknown> {
  task: string;
  /** JSON-able settings; a resumed scan must have the same ones. */
  settings: Record<string, unknown>;
  /** The name of the table reported as `scores`. */
  primary: string;
  items: S[];
  /** One item's tables: the value, or a computation that reads what it needs (util/reads.ts; `scoreItemReads` runs either). */
  scoreItem(model: HookedTransformer, item: S, index: number): ItemScores | Reads<ItemScores>;
  /** Tables computed from the averaged ones (e.g. a difference of two); may define the primary. */
  derive?(tables: Record<string, number[][]>): Record<string, number[][]>;
  /**
   * Why an item cannot be scored on this model (it is longer than n_ctx), with the fix; undefined if it can.
   * Such items are dropped with a warning; none left is an error.
   */
  unfit?(model: HookedTransformer, item: S, index: number): { problem: string; fix: string } | undefined;
  /** What makes an item count (weight > 0), said when none does: "its answer passes the recall gate". */
  counts?: string;
}

/** The items a scorer can score on this model (their indices), and what was dropped; none left is an error. */
export function selectItems(model: HookedTransformer, scorer: HeadScorer<any>): { indices: number[]; dropped?: NonNullable<HeadScores['dropped']> } {
  const total = scorer.items.length;
  if (total === 0) throw new HeadlensError(`${scorer.task}: no items to score`, 'pass at least one sample');
  if (!scorer.unfit) return { indices: scorer.items.map((_, i) => i) };
  const indices: number[] = [];
  let first: { problem: string; fix: string } | undefined;
  scorer.items.forEach((item, i) => {
    const why = scorer.unfit!(model, item, i);
    if (why) first ??= why;
    else indices.push(i);
  });
  if (!first) return { indices };
  const count = total - indices.length;
  if (indices.length === 0) throw new HeadlensError(`${scorer.task}: none of the ${total} items can run on ${model.cfg.model_name}: ${first.problem}`, first.fix);
  return { indices, dropped: { count, of: total, reason: first.problem } };
}

export function zeros(nLayers: number, nHeads: number): number[][] {
  return Array.from({ length: nLayers }, () => new Array<number>(nHeads).fill(0));
}

/**
 * The k heads with the highest score (or |score| with byMagnitude), best first (ties: lower layer, then lower
 * head, first). Scores that are not finite never rank.
 */
export function topHeads(scores: number[][], k = 10, opts: { byMagnitude?: boolean } = {}): TopHead[] {
  const all: TopHead[] = [];
  scores.forEach((row, layer) => row.forEach((score, head) => Number.isFinite(score) && all.push({ layer, head, score })));
  const key = (x: TopHead) => (opts.byMagnitude ? Math.abs(x.score) : x.score);
  all.sort((a, b) => key(b) - key(a) || a.layer - b.layer || a.head - b.head);
  return all.slice(0, Math.max(0, k));
}

/**
 * Weighted means of each table over the item results that have it; a table no counted item had is zeros.
 * Sums run in item order, so the same results give bit-identical means (scan's resume relies on it).
 */
export function combine(results: ItemScores[], nLayers: number, nHeads: number): { tables: Record<string, number[][]>; used: number } {
  const sums: Record<string, number[][]> = {};
  const wsums: Record<string, number> = {};
  let used = 0;
  for (const r of results) {
    for (const name of Object.keys(r.tables)) (sums[name] ??= zeros(nLayers, nHeads), (wsums[name] ??= 0));
    if (!(r.weight > 0)) continue;
    used++;
    for (const [name, t] of Object.entries(r.tables)) {
      wsums[name] += r.weight;
      t.forEach((row, l) => row.forEach((v, h) => (sums[name][l][h] += r.weight * v)));
    }
  }
  for (const [name, t] of Object.entries(sums)) if (wsums[name] > 0) t.forEach((row) => row.forEach((_, h) => (row[h] /= wsums[name])));
  return { tables: sums, used };
}

/**
 * Turns item results into the answer every scorer gives. A result no item counted in (every weight 0) is
 * refused: its table would be zeros computed on nothing.
 */
export function finish(scorer: HeadScorer<any>, model: HookedTransformer, results: ItemScores[], k = 10, dropped?: HeadScores['dropped']): HeadScores {
  const { n_layers, n_heads } = model.cfg;
  const combined = combine(results, n_layers, n_heads);
  const used = combined.used;
  if (used === 0) {
    throw new HeadlensError(
      `${scorer.task}: none of the ${results.length} items scored counted${scorer.counts ? ` (an item counts when ${scorer.counts})` : ' (every weight was 0)'}, so every score would be computed on nothing`,
      'use a model that does the task (a trained one), or other items',
    );
  }
  const tables = { ...combined.tables, ...(scorer.derive ? scorer.derive(combined.tables) : {}) };
  const scores = tables[scorer.primary] ?? zeros(n_layers, n_heads);
  const others = Object.fromEntries(Object.entries(tables).filter(([n]) => n !== scorer.primary));
  return {
    scores,
    settings: { task: scorer.task, ...scorer.settings },
    top: topHeads(scores, k),
    ...(Object.keys(others).length ? { tables: others } : {}),
    counted: { used, total: results.length },
    ...(dropped ? { dropped, warnings: [droppedWarning(scorer.task, dropped)] } : {}),
  };
}

function droppedWarning(task: string, d: NonNullable<HeadScores['dropped']>): string {
  return `${task}: ${d.count} of ${d.of} items were dropped (${d.reason}); the scores use the other ${d.of - d.count}`;
}

/** One item of a scorer as a computation, whether its scoreItem returns the tables or a computation of them. */
export function scoreItemReads<S>(scorer: HeadScorer<S>, model: HookedTransformer, index: number): Reads<ItemScores> {
  return valueOf(scorer.scoreItem(model, scorer.items[index], index));
}

/** Runs a scorer over all its items in one go (no checkpoints; see scan for that). */
export function runScorer(model: HookedTransformer, scorer: HeadScorer<any>, opts: { top?: number; onItem?: (i: number) => void } = {}): HeadScores {
  return readSync(runScorerReads(model, scorer, opts));
}

/** runScorer, reading asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function runScorerAsync(model: HookedTransformer, scorer: HeadScorer<any>, opts: { top?: number; onItem?: (i: number) => void } = {}): Promise<HeadScores> {
  return readAsync(runScorerReads(model, scorer, opts));
}

/** runScorer as a computation (util/reads.ts). */
export function* runScorerReads(model: HookedTransformer, scorer: HeadScorer<any>, opts: { top?: number; onItem?: (i: number) => void }): Reads<HeadScores> {
  const { indices, dropped } = selectItems(model, scorer);
  const results: ItemScores[] = [];
  for (const i of indices) {
    results.push(yield* scoreItemReads(scorer, model, i));
    opts.onItem?.(i);
  }
  return finish(scorer, model, results, opts.top, dropped);
}

/** Token rows as one sequence each; checks they are non-empty integer lists. */
export function checkSequences(task: string, seqs: number[][]): void {
  if (!Array.isArray(seqs) || seqs.length === 0) throw new HeadlensError(`${task}: no sequences given`, 'pass a non-empty list of token-id lists');
  seqs.forEach((s, i) => {
    if (!Array.isArray(s) || s.length < 2) throw new HeadlensError(`${task}: sequence ${i} has fewer than 2 tokens`, 'attention scores need at least two positions');
  });
}
