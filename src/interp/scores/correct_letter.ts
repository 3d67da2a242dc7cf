/**
 * Correct-letter heads (Lieberum et al. 2023, "Does Circuit Analysis Interpretability Scale? Evidence from
 * Multiple Choice Capabilities in Chinchilla"). In Chinchilla-70B a small set of heads at the final position
 * attends to the label token (A/B/C/D) of the correct option and writes that letter into the logits. The paper
 * finds them by direct logit attribution of each head to the correct label *against the other labels* (what moves
 * the choice, not what raises every letter), looks at their attention, and studies them two ways: under label
 * mutations (the same questions with shuffled labels or random letters) and by compressing their queries and keys
 * to a low-rank subspace (rank 3 kept the performance on ordered labels; their "Nth item in an enumeration"
 * feature), which explained less of the heads' work once the labels were randomised. No code of theirs is public;
 * this file follows the paper's text.
 *
 * Three tables per prompt, at the final position:
 * - `contrast` (the default primary): each head's DLA to the correct label minus the mean of its DLA to the other
 *   labels, DLA(correct) − mean_{j ≠ correct} DLA(j). A head that raises every label alike scores 0.
 * - `raw`: the head's DLA to the correct label alone: its hook_result through the final norm as the clean run
 *   applied it (centred for LayerNorm, divided by ln_final.hook_scale, times the norm's weight; the shared bias
 *   left out) and W_U[:, label], computed by dla.ts (`headDlaFromCache`). Kept as a second table (and as the
 *   primary with `primary: 'raw'`): it was headlens' score before, and it ranks heads that write "a letter".
 * - `attention`: the head's attention from the final position to the correct option's label token.
 * The causal check (tasks/correct_letter.ts): mask the top heads (ablation.ts, 'uniform') and measure letter
 * accuracy against as many random heads. `labelMutationScores` and `qkSubspaceAnalysis` below are the paper's two
 * follow-ups.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { LetterPrompt } from '../../datasets/mcq.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { svd } from '../../linalg/svd.js';
import { mat, type Mat } from '../../linalg/mat.js';
import { headDlaNames, headDlaTensor } from '../attribution/dla.js';
import { readAsync, readNested, readSync, type Reads } from '../../util/reads.js';
import { checkHead, kvHead } from '../weights/head_circuits.js';
import { runScorer, runScorerAsync, runScorerReads, type HeadScorer, type HeadScores } from './head_scores.js';
import { argmax, lastLogProbsReads } from './task_metrics.js';

export interface CorrectLetterOptions {
  top?: number;
  /** Which table ranks the heads (`scores`): 'contrast' (default, the paper's) or 'raw' (DLA to the correct label alone). */
  primary?: 'contrast' | 'raw';
}

function checkPrompts(prompts: LetterPrompt[]): void {
  if (!Array.isArray(prompts) || prompts.length === 0) throw new HeadlensError('correct-letter: no prompts given', 'pass at least one LetterPrompt');
  prompts.forEach((p, i) => {
    const n = p.labelTokens.length;
    if (n < 2 || p.labelPositions.length !== n || !(Number.isInteger(p.correct) && p.correct >= 0 && p.correct < n)) {
      throw new HeadlensError(`correct-letter: prompt ${i} needs ≥ 2 labels, a position for each, and a correct index in range`);
    }
    if (p.labelPositions.some((q) => !(Number.isInteger(q) && q >= 0 && q < p.tokens.length))) {
      throw new HeadlensError(`correct-letter: prompt ${i} has a label position outside its ${p.tokens.length} tokens`);
    }
  });
}

/**
 * Per-head contributions to the logits of `labels` at position `pos`, through the final norm ([layer][head][label],
 * from dla.ts's headDlaFromCache), with each head's attention from `pos` ([layer][head][key_pos]), from one run;
 * `fwdHooks` apply to it (e.g. other heads ablated).
 */
export function headLogitContributions(model: HookedTransformer, tokens: number[], pos: number, labels: number[], fwdHooks: FwdHook[] = []): { dla: number[][][]; attention: number[][][] } {
  return readSync(headLogitContributionsReads(model, tokens, pos, labels, fwdHooks));
}

/** headLogitContributions, read asynchronously (WebGPU in Node). */
export function headLogitContributionsAsync(model: HookedTransformer, tokens: number[], pos: number, labels: number[], fwdHooks: FwdHook[] = []): Promise<{ dla: number[][][]; attention: number[][][] }> {
  return readAsync(headLogitContributionsReads(model, tokens, pos, labels, fwdHooks));
}

function* headLogitContributionsReads(model: HookedTransformer, tokens: number[], pos: number, labels: number[], fwdHooks: FwdHook[]): Reads<{ dla: number[][][]; attention: number[][][] }> {
  const { cfg } = model;
  const names = [...headDlaNames(model), ...Array.from({ length: cfg.n_layers }, (_, l) => actName('pattern', l))];
  const { logits, cache } = model.runWithCache([tokens], { names, fwdHooks });
  let both: tf.Tensor[];
  try {
    both = tf.tidy(() => {
      const rows = Array.from({ length: cfg.n_layers }, (_, l) => cache.get(actName('pattern', l)).slice([0, 0, pos, 0], [1, -1, 1, -1]).reshape([cfg.n_heads, tokens.length]));
      return [headDlaTensor(cache, pos, labels), tf.stack(rows)]; // [layer, head, label], [layer, head, key_pos]
    });
  } finally {
    cache.dispose();
    logits.dispose();
  }
  try {
    const dla = yield* readNested<number[][][]>(both[0]);
    const attention = yield* readNested<number[][][]>(both[1]);
    return { dla, attention };
  } finally {
    tf.dispose(both); // what was read is freed already; this frees the other after a failed read
  }
}

/** DLA to the correct label minus the mean DLA to the other labels (`dla`: one head's DLA per label). */
export function letterContrast(dla: number[], correct: number): number {
  const others = dla.reduce((a, b) => a + b, 0) - dla[correct];
  return dla[correct] - others / (dla.length - 1);
}

export function correctLetterScorer(prompts: LetterPrompt[], opts: CorrectLetterOptions = {}): HeadScorer<LetterPrompt> {
  checkPrompts(prompts);
  const primary = opts.primary ?? 'contrast';
  if (primary !== 'contrast' && primary !== 'raw') throw new HeadlensError(`correct-letter: primary '${primary as string}' is not 'contrast' or 'raw'`);
  return {
    task: 'correct-letter',
    settings: {
      prompts: prompts.length,
      position: 'final',
      primary,
      contrast: 'DLA(correct label) − mean DLA(other labels) (Lieberum et al. 2023)',
      raw: 'DLA(correct label)',
    },
    primary,
    items: prompts,
    scoreItem: function* (model, p) {
      const last = p.tokens.length - 1;
      const { dla, attention } = yield* headLogitContributionsReads(model, p.tokens, last, p.labelTokens, []);
      return {
        tables: {
          contrast: dla.map((row) => row.map((v) => letterContrast(v, p.correct))),
          raw: dla.map((row) => row.map((v) => v[p.correct])),
          attention: attention.map((row) => row.map((a) => a[p.labelPositions[p.correct]])),
        },
        weight: 1,
      };
    },
  };
}

/**
 * Correct-letter scores of every head: the contrast DLA (scores, unless `primary: 'raw'`), with the raw DLA and the
 * attention to the correct label as further tables.
 */
export function correctLetterScores(model: HookedTransformer, prompts: LetterPrompt[], opts: CorrectLetterOptions = {}): HeadScores {
  return runScorer(model, correctLetterScorer(prompts, opts), { top: opts.top });
}

/** correctLetterScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function correctLetterScoresAsync(model: HookedTransformer, prompts: LetterPrompt[], opts: CorrectLetterOptions = {}): Promise<HeadScores> {
  return runScorerAsync(model, correctLetterScorer(prompts, opts), { top: opts.top });
}

// Label mutations

export interface LabelMutationResult {
  /** The conditions in the order given (e.g. ordered, shuffled, random). */
  conditions: string[];
  /** Each condition's full result. */
  results: Record<string, HeadScores>;
  /** The primary score of every head under each condition: [layer][head][condition]. */
  byHead: number[][][];
  /** The `top` heads of the first condition, each with its score and rank (1 = best) under every condition. */
  heads: { layer: number; head: number; scores: Record<string, number>; ranks: Record<string, number> }[];
}

/**
 * Lieberum et al.'s label mutations as head scores: the same heads scored on the same questions under several
 * labellings (`conditions`: name → prompts, e.g. `{ ordered, shuffled, random }` from mcq.ts's `relabelMcq`).
 * A head that reads "the correct option's label" keeps its score and rank when the letters change; one that
 * writes a fixed letter, or an "Nth item" position, does not. (The paper reports the model's loss under each
 * mutation with the heads' outputs patched; the head scores here are the first half of that comparison, and
 * `letterAccuracy` with the heads masked, per condition, the second.)
 */
export function labelMutationScores(model: HookedTransformer, conditions: Record<string, LetterPrompt[]>, opts: CorrectLetterOptions = {}): LabelMutationResult {
  return readSync(labelMutationScoresReads(model, conditions, opts));
}

/** labelMutationScores, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function labelMutationScoresAsync(model: HookedTransformer, conditions: Record<string, LetterPrompt[]>, opts: CorrectLetterOptions = {}): Promise<LabelMutationResult> {
  return readAsync(labelMutationScoresReads(model, conditions, opts));
}

function* labelMutationScoresReads(model: HookedTransformer, conditions: Record<string, LetterPrompt[]>, opts: CorrectLetterOptions): Reads<LabelMutationResult> {
  const names = Object.keys(conditions);
  if (names.length === 0) throw new HeadlensError('labelMutationScores: no conditions given', 'pass e.g. { ordered, shuffled, random }');
  const results: Record<string, HeadScores> = {};
  for (const n of names) results[n] = yield* runScorerReads(model, correctLetterScorer(conditions[n], opts), { top: model.cfg.n_layers * model.cfg.n_heads });
  const byHead = results[names[0]].scores.map((row, l) => row.map((_, h) => names.map((n) => results[n].scores[l][h])));
  const rankOf = (n: string, l: number, h: number) => results[n].top.findIndex((t) => t.layer === l && t.head === h) + 1;
  const heads = results[names[0]].top.slice(0, opts.top ?? 10).map(({ layer, head }) => ({
    layer,
    head,
    scores: Object.fromEntries(names.map((n) => [n, results[n].scores[layer][head]])),
    ranks: Object.fromEntries(names.map((n) => [n, rankOf(n, layer, head)])),
  }));
  return { conditions: names, results, byHead, heads };
}

// Query/key subspaces

export interface QkSubspaceOptions {
  /** The ranks to try (default 0, 1, 2, 4, …, d_head; 0 zeroes the scores: uniform attention). */
  ranks?: number[];
}

export interface QkSubspaceRow {
  rank: number;
  /** Mean attention from the final position to the correct label with queries and keys projected. */
  attention: number;
  /** Letter accuracy (argmax over the labels) with only this head's final-position pattern replaced. */
  accuracy: number;
  /** attention / the unprojected head's attention, accuracy / the model's accuracy. */
  attentionKept: number;
  accuracyKept: number;
}

export interface QkSubspaceResult {
  layer: number;
  head: number;
  dHead: number;
  /** Singular values of the stacked final-position queries and of the stacked label-position keys. */
  singularValues: { query: number[]; key: number[] };
  /** The unprojected head: its attention to the correct label and the model's letter accuracy. */
  full: { attention: number; accuracy: number };
  rows: QkSubspaceRow[];
}

/** Columns of `v` ([d, k], orthonormal) completed to an orthonormal basis of R^d (Gram–Schmidt on the unit vectors). */
function completeBasis(v: Mat): number[][] {
  const d = v.rows;
  const basis: number[][] = Array.from({ length: v.cols }, (_, j) => Array.from({ length: d }, (_, i) => v.data[i * v.cols + j]));
  for (let e = 0; e < d && basis.length < d; e++) {
    const x = new Array<number>(d).fill(0);
    x[e] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (const b of basis) {
        const dot = b.reduce((s, bi, i) => s + bi * x[i], 0);
        for (let i = 0; i < d; i++) x[i] -= dot * b[i];
      }
    }
    const n = Math.sqrt(x.reduce((s, xi) => s + xi * xi, 0));
    if (n > 1e-6) basis.push(x.map((xi) => xi / n));
  }
  return basis;
}

/** x projected onto the span of the first r vectors of `basis`. */
function project(x: number[], basis: number[][], r: number): number[] {
  const out = new Array<number>(x.length).fill(0);
  for (let j = 0; j < r; j++) {
    const b = basis[j];
    const dot = b.reduce((s, bi, i) => s + bi * x[i], 0);
    for (let i = 0; i < x.length; i++) out[i] += dot * b[i];
  }
  return out;
}

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/**
 * The paper's query/key compression, for one head on a set of prompts. What is computed:
 * 1. From one clean run per prompt, the head's query at the final position and its keys at every position (after
 *    rotary embedding where the model has it: hook_rot_q / hook_rot_k, else hook_q / hook_k).
 * 2. A query basis: the right singular vectors of the stacked final-position queries [prompts, d_head]; a key
 *    basis: those of the stacked keys at the label positions [prompts·labels, d_head] (both uncentred, in order of
 *    singular value, completed to a basis of R^d_head when there are fewer rows than d_head).
 * 3. For each rank r: the query projected onto the top r query directions and every key onto the top r key
 *    directions; the head's final-position attention is recomputed from them (softmax over the keys the clean run
 *    let through of q_r·k_r / scale, the scale read off the clean run) and reported at the correct label; then the model is run
 *    again with only this head's final-position pattern replaced by that row (every other head, position and
 *    value untouched) and letter accuracy (argmax over the labels) is measured.
 * At r = d_head the projections are the identity and both numbers are the clean ones; at r = 0 the scores are 0 and
 * the head attends uniformly. How this relates to the paper: Lieberum et al. compress the queries and keys of the
 * correct-letter heads to the top singular directions of their activations on the label tokens and report that a
 * rank-3 subspace keeps the loss on ordered labels; they measure loss with the compressed head in place, we measure
 * attention and accuracy, and we replace only the final-position pattern (the paper does not say how far its
 * replacement reaches). The singular values say how many directions the head actually uses.
 */
export function qkSubspaceAnalysis(model: HookedTransformer, head: { layer: number; head: number }, prompts: LetterPrompt[], opts: QkSubspaceOptions = {}): QkSubspaceResult {
  return readSync(qkSubspaceAnalysisReads(model, head, prompts, opts));
}

/** qkSubspaceAnalysis, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function qkSubspaceAnalysisAsync(model: HookedTransformer, head: { layer: number; head: number }, prompts: LetterPrompt[], opts: QkSubspaceOptions = {}): Promise<QkSubspaceResult> {
  return readAsync(qkSubspaceAnalysisReads(model, head, prompts, opts));
}

function* qkSubspaceAnalysisReads(model: HookedTransformer, head: { layer: number; head: number }, prompts: LetterPrompt[], opts: QkSubspaceOptions): Reads<QkSubspaceResult> {
  checkPrompts(prompts);
  const { layer, head: h } = head;
  checkHead(model, layer, h);
  const { cfg } = model;
  const e = cfg.d_head;
  const kv = kvHead(model, h);
  const rotary = cfg.positional_embedding_type === 'rotary';
  const qName = actName(rotary ? 'rot_q' : 'q', layer);
  const kName = actName(rotary ? 'rot_k' : 'k', layer);
  const sName = actName('attn_scores', layer);
  const pName = actName('pattern', layer);
  const ranks = opts.ranks ?? [0, ...Array.from({ length: Math.floor(Math.log2(e)) + 1 }, (_, i) => 2 ** i), e].filter((r, i, a) => a.indexOf(r) === i && r <= e);
  if (ranks.some((r) => !(Number.isInteger(r) && r >= 0 && r <= e))) throw new HeadlensError(`qkSubspaceAnalysis: ranks must be integers in 0..${e}`);

  // 1. the clean queries, keys, scale and attention
  const runs: { q: number[]; k: number[][]; scores: number[]; pattern: number[]; last: number }[] = [];
  for (const p of prompts) {
    const last = p.tokens.length - 1;
    const { logits, cache } = model.runWithCache([p.tokens], { names: [qName, kName, sName, pName], stopAtLayer: layer + 1 });
    let parts: tf.Tensor[];
    try {
      parts = tf.tidy(() => [
        cache.get(qName).slice([0, last, h, 0], [1, 1, 1, e]).reshape([e]), // [d_head]
        cache.get(kName).slice([0, 0, kv, 0], [1, -1, 1, e]).reshape([p.tokens.length, e]), // [key_pos, d_head]
        cache.get(sName).slice([0, h, last, 0], [1, 1, 1, -1]).reshape([-1]), // [key_pos]
        cache.get(pName).slice([0, h, last, 0], [1, 1, 1, -1]).reshape([-1]), // [key_pos]
      ]);
    } finally {
      cache.dispose();
      logits.dispose();
    }
    try {
      const q = Array.from(yield parts[0]);
      const k = yield* readNested<number[][]>(parts[1]);
      const scores = Array.from(yield parts[2]);
      const pattern = Array.from(yield parts[3]);
      runs.push({ q, k, scores, pattern, last });
    } finally {
      tf.dispose(parts); // what was read is freed already; this frees the rest after a failed read
    }
  }
  const dot = (a: number[], b: number[]) => a.reduce((s, ai, i) => s + ai * b[i], 0);
  // keys the model's mask hides from the final query (a sliding window) stay hidden
  const open = (s: number) => Number.isFinite(s) && s > -1e8;
  // the scale: scores = q·k / scale on the open keys; least squares over all prompts and keys
  const pairs = runs.flatMap((r) => r.k.map((k, j) => [dot(r.q, k), r.scores[j]]).filter(([, s]) => open(s)));
  const sxy = pairs.reduce((a, [qk, s]) => a + qk * s, 0);
  const scale = Math.abs(sxy) > 1e-12 ? pairs.reduce((a, [qk]) => a + qk * qk, 0) / sxy : cfg.attn_scale;

  // 2. the bases
  const Q = mat(runs.length, e, runs.flatMap((r) => r.q));
  const Krows = runs.flatMap((r, i) => prompts[i].labelPositions.map((pos) => r.k[pos]));
  const K = mat(Krows.length, e, Krows.flat());
  const sq = svd(Q);
  const sk = svd(K);
  const qBasis = completeBasis(sq.V);
  const kBasis = completeBasis(sk.V);

  // 3. per rank: the recomputed row, its attention, and accuracy with the row patched in
  const rowAt = (i: number, r: number): number[] => {
    const { q, k, last } = runs[i];
    const qr = r >= e ? q : project(q, qBasis, r);
    const logitsRow = k.slice(0, last + 1).map((kj, j) => (open(runs[i].scores[j]) ? dot(qr, r >= e ? kj : project(kj, kBasis, r)) / scale : -Infinity));
    return softmax(logitsRow);
  };
  const accuracyWith = function* (rows: (number[] | undefined)[]): Reads<number> {
    let hit = 0;
    for (const [i, p] of prompts.entries()) {
      const row = rows[i];
      const hooks: FwdHook[] = row
        ? [
            [
              pName,
              (act) => {
                const [, H, Qn, Kn] = act.shape as number[];
                const keep = tf.buffer([1, H, Qn, Kn], 'float32');
                const put = tf.buffer([1, H, Qn, Kn], 'float32');
                for (let a = 0; a < H; a++) for (let b = 0; b < Qn; b++) for (let c = 0; c < Kn; c++) keep.set(a === h && b === Qn - 1 ? 0 : 1, 0, a, b, c);
                row.forEach((v, c) => put.set(v, 0, h, Qn - 1, c));
                return act.mul(keep.toTensor()).add(put.toTensor());
              },
            ],
          ]
        : [];
      const lp = yield* lastLogProbsReads(model, p.tokens, hooks);
      hit += argmax(p.labelTokens.map((t) => lp[t])) === p.correct ? 1 : 0;
    }
    return hit / prompts.length;
  };
  const meanAttention = (rows: number[][]) => rows.reduce((s, row, i) => s + row[prompts[i].labelPositions[prompts[i].correct]], 0) / rows.length;
  // the recomputed clean row must be the run's own: else the model adds something to the scores this does not model
  runs.forEach((r, i) => {
    const off = Math.max(...rowAt(i, e).map((v, j) => Math.abs(v - r.pattern[j])));
    if (!(off < 1e-3)) throw new HeadlensError(`qkSubspaceAnalysis: L${layer}H${h}'s attention recomputed from its queries and keys differs from the run's by ${off.toExponential(2)} (prompt ${i})`, 'this model adds terms to the attention scores beyond q·k / scale');
  });
  const full = { attention: meanAttention(runs.map((r) => r.pattern)), accuracy: yield* accuracyWith(prompts.map(() => undefined)) };
  const rows: QkSubspaceRow[] = [];
  for (const r of ranks) {
    const patterns = runs.map((_, i) => rowAt(i, r));
    const attention = meanAttention(patterns);
    const accuracy = r >= e ? full.accuracy : yield* accuracyWith(patterns);
    rows.push({ rank: r, attention, accuracy, attentionKept: full.attention > 0 ? attention / full.attention : NaN, accuracyKept: full.accuracy > 0 ? accuracy / full.accuracy : NaN });
  }
  return { layer, head: h, dHead: e, singularValues: { query: Array.from(sq.S), key: Array.from(sk.S) }, full, rows };
}
