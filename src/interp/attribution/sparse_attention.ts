/**
 * Sparse attention decomposition (Franco & Crovella 2024, "Sparse Attention Decomposition Applied to
 * Circuit Tracing", arXiv 2410.00340).
 *
 * A head's attention score between a query position and a key position is a bilinear form of the two
 * (normalised) residual vectors. With the biases folded in by homogeneous coordinates, x̂ = [x̃, 1],
 * Ŵ_Q = [W_Q; b_Q] and Ŵ_K = [W_K; b_K] ([d_model + 1, d_head]), it is exactly
 *
 *     q·k = x̂_q·Ω̂·x̂_kᵀ = Σ_i σ_i·(x̂_q·u_i)·(x̂_k·v_i),     Ω̂ = Ŵ_Q·Ŵ_Kᵀ = U·diag(σ)·Vᵀ
 *
 * (before the division by the attention scale), a sum of d_head terms, one per singular component of Ω̂.
 * The paper's observation is that for the scores that matter only a few terms carry the sum (the
 * decomposition is sparse), so each (query, key) interaction is explained by a handful of directions:
 * `carrying` is the smallest set of components, largest |term| first, whose partial sum is within
 * (1 − fraction)·Σ|term| of the whole.
 *
 * The residual stream is a sum of what upstream components wrote: the embeddings, each earlier head's
 * output (hook_result), each layer's attention bias b_O and MLP output. The norm before the head (ln1) is
 * linear once its scale is fixed, so each upstream part y_c maps to ỹ_c = (y_c − mean(y_c))/s·w (RMSNorm:
 * y_c/s·w), and x̂ = Σ_c [ỹ_c, 0] + [b_ln, 1]. The part of term i an upstream head writes through the key
 * side is σ_i·(x̂_q·u_i)·(ỹ_c,k·v_i), through the query side σ_i·(ỹ_c,q·u_i)·(x̂_k·v_i): its write projected
 * on the singular direction, times the other side's factor. Over all parts (with the norm bias and the
 * constant as one more) they sum to the term exactly. An upstream head's contribution to the interaction is
 * its sum over the carrying components.
 *
 * `traceSparseCircuit` follows this backwards, as the paper traces IOI in GPT-2 small: from a head at
 * (query, key), the upstream heads with the largest contributions on each side; each such head wrote at
 * the query position (query side) or the key position (key side), and is traced in turn from there to the
 * key position it attends to most.
 *
 * Deviations: the norm's scale is frozen at its value on the prompt (as in direct logit attribution), so a
 * part's contribution is linear; the paper's exact thresholds for sparsity and edge selection are not
 * reproduced (here `fraction`, `topUpstream` and `depth` say what was used, and every result carries them);
 * the traced head's own source is its argmax key. Rotary models are refused: rotary makes the score
 * depend on the positions, not a fixed bilinear form.
 */
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { mat, type Mat } from '../../linalg/mat.js';
import { svd } from '../../linalg/svd.js';
import { headLabel } from '../head_label.js';
import { checkHead, kvHead } from '../weights/head_circuits.js';

export interface SparseOptions {
  /** Share of Σ|term| within which the carrying components must bring the score (default 0.9). */
  fraction?: number;
  /**
   * Decompose the difference score(query, key) − score(query, contrastKeyPos) instead (headlens' extension,
   * not in the paper): what the softmax sees between two keys, e.g. a name mover's IO against S. The
   * key side is then x̂_k − x̂_k′.
   */
  contrastKeyPos?: number;
}

export interface ScoreTerm {
  component: number;
  singularValue: number;
  /** x̂_q·u_i: the query's coordinate along the component's query direction. */
  queryCoord: number;
  /** x̂_k·v_i: the key's coordinate along the component's key direction. */
  keyCoord: number;
  /** σ_i·queryCoord·keyCoord. */
  term: number;
}

/** An upstream part of the residual stream: a head, a layer's MLP, a layer's b_O, the embeddings, or ln1's bias with the constant. */
export interface UpstreamPart {
  kind: 'head' | 'mlp' | 'attn_bias' | 'embed' | 'pos_embed' | 'ln_bias';
  label: string;
  layer?: number;
  head?: number;
}

export interface UpstreamContribution extends UpstreamPart {
  /** Its part of the carrying terms through the query side (written at the query position). */
  query: number;
  /** Its part through the key side (written at the key position). */
  key: number;
}

export interface ScoreDecomposition {
  layer: number;
  head: number;
  label: string;
  /** Position of the query and of the key in the prompt. */
  queryPos: number;
  keyPos: number;
  /** With SparseOptions.contrastKeyPos: the key whose score is subtracted. */
  contrastKeyPos?: number;
  /** q·k as the model computes it (hook_attn_scores × attention scale), minus the contrast key's if given. */
  score: number;
  /** Σ terms: equals score up to rounding. */
  sum: number;
  /** All d_head terms, largest |term| first. */
  terms: ScoreTerm[];
  /** The components that carry the score (see the module comment), largest |term| first. */
  carrying: number[];
  /** Σ of the carrying terms. */
  carried: number;
  fraction: number;
  /** Every upstream part's contribution through the carrying components, largest |query| + |key| first. */
  upstream: UpstreamContribution[];
}

/** Ω̂ = Ŵ_Q·Ŵ_Kᵀ's SVD for one head, with biases as the last row ([d_model + 1] vectors). */
function augmentedSvd(model: HookedTransformer, layer: number, head: number): { U: Mat; S: Float64Array; V: Mat } {
  const { d_model: d, d_head: e } = model.cfg;
  const a = `blocks.${layer}.attn`;
  const g = kvHead(model, head);
  const read = (name: string, idx: number, rows: number) => {
    const t = model.param(`${a}.${name}`).dataSync() as Float32Array;
    return t.subarray(idx * rows * e, (idx + 1) * rows * e);
  };
  const Wq = read('W_Q', head, d);
  const Wk = read('W_K', g, d);
  const bq = read('b_Q', head, 1);
  const bk = read('b_K', g, 1);
  const Q = mat(d + 1, e);
  const K = mat(d + 1, e);
  Q.data.set(Wq);
  Q.data.set(bq, d * e);
  K.data.set(Wk);
  K.data.set(bk, d * e);
  // Ω̂ = Q̂·K̂ᵀ through its factors: Q̂ = Uq·Sq·Vqᵀ, K̂ = Uk·Sk·Vkᵀ, middle = Sq·Vqᵀ·Vk·Sk
  const sq = svd(Q);
  const sk = svd(K);
  const middle = mat(e, e);
  for (let i = 0; i < e; i++) {
    for (let j = 0; j < e; j++) {
      let s = 0;
      for (let p = 0; p < e; p++) s += sq.V.data[p * e + i] * sk.V.data[p * e + j];
      middle.data[i * e + j] = sq.S[i] * s * sk.S[j];
    }
  }
  const m = svd(middle);
  const mul = (A: Mat, B: Mat) => {
    const out = mat(A.rows, B.cols);
    for (let r = 0; r < A.rows; r++) for (let p = 0; p < A.cols; p++) {
      const x = A.data[r * A.cols + p];
      if (x !== 0) for (let c = 0; c < B.cols; c++) out.data[r * B.cols + c] += x * B.data[p * B.cols + c];
    }
    return out;
  };
  return { U: mul(sq.U, m.U), S: m.S, V: mul(sk.U, m.V) };
}

/** Indices of the carrying components: smallest prefix (by |term|) within (1 − fraction)·Σ|term| of the sum. */
function carryingSet(terms: ScoreTerm[], fraction: number): number[] {
  const total = terms.reduce((s, t) => s + t.term, 0);
  const mass = terms.reduce((s, t) => s + Math.abs(t.term), 0);
  const out: number[] = [];
  let partial = 0;
  for (const t of terms) {
    if (Math.abs(partial - total) <= (1 - fraction) * mass && out.length > 0) break;
    out.push(t.component);
    partial += t.term;
  }
  return out;
}

/** Activations one prompt needs for decompositions at `layer`: every upstream part at every position, float64. */
interface PromptParts {
  parts: UpstreamPart[];
  /** values[c][pos] = the part's vector [d_model]. */
  values: Float64Array[][];
  /** resid_pre of each layer at each position: resid[layer][pos]. */
  resid: Float64Array[][];
  /** Attention patterns per layer [head][query_pos][key_pos] and pre-scale scores, read lazily. */
  pattern: number[][][][];
  score: number[][][][];
}

function readParts(model: HookedTransformer, tokens: number[], maxLayer: number): PromptParts {
  const { cfg } = model;
  const names = [actName('embed')];
  if (cfg.positional_embedding_type === 'standard') names.push(actName('pos_embed'));
  for (let l = 0; l <= maxLayer; l++) {
    names.push(actName('resid_pre', l), actName('pattern', l), actName('attn_scores', l));
    if (l < maxLayer) {
      names.push(actName('result', l));
      if (!cfg.attn_only) names.push(actName('mlp_out', l));
    }
  }
  const { logits, cache } = model.runWithCache([tokens], { names });
  try {
    const rows = (name: string): Float64Array[] => {
      const t = cache.get(name);
      const [, pos, d] = t.shape;
      const a = t.dataSync();
      return Array.from({ length: pos }, (_, p) => Float64Array.from(a.subarray(p * d, (p + 1) * d)));
    };
    const parts: UpstreamPart[] = [{ kind: 'embed', label: 'embed' }];
    const values: Float64Array[][] = [rows(actName('embed'))];
    if (cfg.positional_embedding_type === 'standard') {
      parts.push({ kind: 'pos_embed', label: 'pos_embed' });
      values.push(rows(actName('pos_embed')));
    }
    const T = tokens.length;
    const d = cfg.d_model;
    for (let l = 0; l < maxLayer; l++) {
      const r = cache.get(actName('result', l)).dataSync(); // [1, pos, head, d_model]
      for (let h = 0; h < cfg.n_heads; h++) {
        parts.push({ kind: 'head', label: headLabel(l, h), layer: l, head: h });
        values.push(Array.from({ length: T }, (_, p) => Float64Array.from(r.subarray((p * cfg.n_heads + h) * d, (p * cfg.n_heads + h + 1) * d))));
      }
      const bO = Float64Array.from(model.param(`blocks.${l}.attn.b_O`).dataSync());
      parts.push({ kind: 'attn_bias', label: `b_O${l}`, layer: l });
      values.push(Array.from({ length: T }, () => bO));
      if (!cfg.attn_only) {
        parts.push({ kind: 'mlp', label: `MLP${l}`, layer: l });
        values.push(rows(actName('mlp_out', l)));
      }
    }
    const resid: Float64Array[][] = [];
    const pattern: number[][][][] = [];
    const score: number[][][][] = [];
    for (let l = 0; l <= maxLayer; l++) {
      resid.push(rows(actName('resid_pre', l)));
      pattern.push((cache.get(actName('pattern', l)).arraySync() as number[][][][])[0]);
      score.push((cache.get(actName('attn_scores', l)).arraySync() as number[][][][])[0]);
    }
    return { parts, values, resid, pattern, score };
  } finally {
    logits.dispose();
    cache.dispose();
  }
}

/** ln1 of `layer` as a linear map with frozen scale: (x ↦ x̃ without the bias) and its bias b. */
function frozenNorm(model: HookedTransformer, layer: number, resid: Float64Array): { apply: (y: Float64Array) => Float64Array; bias: Float64Array } {
  const { cfg } = model;
  const d = cfg.d_model;
  if (cfg.normalization_type === null) return { apply: (y) => y, bias: new Float64Array(d) };
  const w = model.param(`blocks.${layer}.ln1.w`).dataSync();
  const bias = cfg.normalization_type === 'LN' ? Float64Array.from(model.param(`blocks.${layer}.ln1.b`).dataSync()) : new Float64Array(d);
  const centre = cfg.normalization_type === 'LN';
  const mean = (v: Float64Array) => (centre ? v.reduce((s, x) => s + x, 0) / d : 0);
  const m = mean(resid);
  const s = Math.sqrt(resid.reduce((acc, x) => acc + (x - m) ** 2, 0) / d + cfg.eps);
  return {
    apply: (y) => {
      const my = mean(y);
      return Float64Array.from(y, (x, k) => ((x - my) / s) * w[k]);
    },
    bias,
  };
}

const dotAug = (y: Float64Array, U: Mat, i: number, one: number): number => {
  let s = one * U.data[y.length * U.cols + i];
  for (let k = 0; k < y.length; k++) s += y[k] * U.data[k * U.cols + i];
  return s;
};

function checkOptions(model: HookedTransformer, fraction: number): void {
  if (model.cfg.positional_embedding_type === 'rotary') {
    throw new HeadlensError('sparse attention decomposition needs a fixed bilinear score, but this model uses rotary embeddings', 'use a model with learned (standard) position embeddings');
  }
  if (!(fraction > 0 && fraction <= 1)) throw new HeadlensError(`fraction ${fraction} is not in (0, 1]`);
}

function decomposeWith(model: HookedTransformer, P: PromptParts, layer: number, head: number, queryPos: number, keyPos: number, fraction: number, contrastKeyPos?: number): ScoreDecomposition {
  const { U, S, V } = augmentedSvd(model, layer, head);
  const nq = frozenNorm(model, layer, P.resid[layer][queryPos]);
  const nk = frozenNorm(model, layer, P.resid[layer][keyPos]);
  const nc = contrastKeyPos === undefined ? undefined : frozenNorm(model, layer, P.resid[layer][contrastKeyPos]);
  const xq = Float64Array.from(nq.apply(P.resid[layer][queryPos]), (x, k) => x + nq.bias[k]);
  const xk = Float64Array.from(nk.apply(P.resid[layer][keyPos]), (x, k) => x + nk.bias[k]);
  const xc = nc && Float64Array.from(nc.apply(P.resid[layer][contrastKeyPos!]), (x, k) => x + nc.bias[k]);
  const terms: ScoreTerm[] = Array.from(S, (sigma, i) => {
    const queryCoord = dotAug(xq, U, i, 1);
    // with a contrast key, the key side is x̂_k − x̂_k′ (the constant coordinate cancels)
    const keyCoord = dotAug(xk, V, i, 1) - (xc ? dotAug(xc, V, i, 1) : 0);
    return { component: i, singularValue: sigma, queryCoord, keyCoord, term: sigma * queryCoord * keyCoord };
  });
  const sum = terms.reduce((s, t) => s + t.term, 0);
  terms.sort((a, b) => Math.abs(b.term) - Math.abs(a.term));
  const carrying = carryingSet(terms, fraction);
  const carried = terms.filter((t) => carrying.includes(t.component)).reduce((s, t) => s + t.term, 0);
  const byComp = new Map(terms.map((t) => [t.component, t]));
  const contribution = (yq: Float64Array, yk: Float64Array, yc: Float64Array | undefined, one: number) => {
    let q = 0;
    let k = 0;
    for (const i of carrying) {
      const t = byComp.get(i)!;
      q += t.singularValue * dotAug(yq, U, i, one) * t.keyCoord;
      k += t.singularValue * t.queryCoord * (dotAug(yk, V, i, one) - (yc ? dotAug(yc, V, i, one) : 0));
    }
    return { query: q, key: k };
  };
  const upstream: UpstreamContribution[] = P.parts
    .map((part, c) => ({
      ...part,
      ...contribution(nq.apply(P.values[c][queryPos]), nk.apply(P.values[c][keyPos]), nc?.apply(P.values[c][contrastKeyPos!]), 0),
    }))
    .filter((u) => u.kind !== 'head' || u.layer! < layer);
  upstream.push({ kind: 'ln_bias', label: `ln1.b${layer}+1`, ...contribution(nq.bias, nk.bias, nc?.bias, 1) });
  upstream.sort((a, b) => Math.abs(b.query) + Math.abs(b.key) - Math.abs(a.query) - Math.abs(a.key));
  const scale = model.cfg.attn_scale * (model.cfg.scale_attn_by_inverse_layer_idx ? layer + 1 : 1);
  const row = P.score[layer][head][queryPos];
  const score = (row[keyPos] - (contrastKeyPos === undefined ? 0 : row[contrastKeyPos])) * scale;
  return { layer, head, label: headLabel(layer, head), queryPos, keyPos, ...(contrastKeyPos === undefined ? {} : { contrastKeyPos }), score, sum, terms, carrying, carried, fraction, upstream };
}

function checkPositions(tokens: number[], queryPos: number, keyPos: number): void {
  if (!(Number.isInteger(queryPos) && queryPos >= 0 && queryPos < tokens.length)) throw new HeadlensError(`query position ${queryPos} is not in the prompt (length ${tokens.length})`);
  if (!(Number.isInteger(keyPos) && keyPos >= 0 && keyPos <= queryPos)) throw new HeadlensError(`key position ${keyPos} is not in 0..${queryPos}`, 'a causal head attends only to earlier positions');
}

/**
 * The attention score of head (layer, head) from `queryPos` to `keyPos` on one prompt, split into its
 * singular components, with the carrying set and every upstream part's contribution through it.
 */
export function decomposeAttentionScore(
  model: HookedTransformer,
  tokens: number[],
  layer: number,
  head: number,
  queryPos: number,
  keyPos: number,
  opts: SparseOptions = {},
): ScoreDecomposition {
  checkHead(model, layer, head);
  checkPositions(tokens, queryPos, keyPos);
  const fraction = opts.fraction ?? 0.9;
  checkOptions(model, fraction);
  if (opts.contrastKeyPos !== undefined) checkPositions(tokens, queryPos, opts.contrastKeyPos);
  return decomposeWith(model, readParts(model, tokens, layer), layer, head, queryPos, keyPos, fraction, opts.contrastKeyPos);
}

export interface SparseTraceOptions extends SparseOptions {
  /** Upstream heads followed per side (query, key) of each traced node (default 2). */
  topUpstream?: number;
  /** Levels traced back from the start (default 2). */
  depth?: number;
}

export interface SparseEdge {
  /** The upstream head and the position it wrote at. */
  from: string;
  fromPos: number;
  /** The traced head and its (query, key) positions. */
  to: string;
  toQuery: number;
  toKey: number;
  side: 'query' | 'key';
  /** Its contribution to `to`'s score through the carrying components. */
  contribution: number;
  /** contribution / score of `to`. */
  share: number;
}

export interface SparseCircuit {
  start: { head: string; queryPos: number; keyPos: number };
  /** The nodes traced, with their decompositions' summary. */
  nodes: { head: string; queryPos: number; keyPos: number; score: number; carrying: number[]; dHead: number }[];
  edges: SparseEdge[];
  settings: { fraction: number; topUpstream: number; depth: number };
}

/**
 * Traces a circuit backwards from head (layer, head) at (queryPos, keyPos) on one prompt: at each node, the
 * `topUpstream` heads with the largest |contribution| on the query side and on the key side become edges,
 * and each is traced from the position it wrote at to the key it attends to most, `depth` levels deep.
 */
export function traceSparseCircuit(
  model: HookedTransformer,
  tokens: number[],
  start: { layer: number; head: number; queryPos: number; keyPos: number },
  opts: SparseTraceOptions = {},
): SparseCircuit {
  checkHead(model, start.layer, start.head);
  checkPositions(tokens, start.queryPos, start.keyPos);
  const fraction = opts.fraction ?? 0.9;
  const topUpstream = opts.topUpstream ?? 2;
  const depth = opts.depth ?? 2;
  checkOptions(model, fraction);
  if (opts.contrastKeyPos !== undefined) throw new HeadlensError('traceSparseCircuit traces scores, not contrasts', 'leave contrastKeyPos out (decomposeAttentionScore takes it)');
  for (const [name, v] of [['topUpstream', topUpstream], ['depth', depth]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new HeadlensError(`${name} ${v} is not a positive integer`);
  }
  const P = readParts(model, tokens, start.layer);
  const nodes: SparseCircuit['nodes'] = [];
  const edges: SparseEdge[] = [];
  const seen = new Set<string>();
  let frontier = [{ layer: start.layer, head: start.head, q: start.queryPos, k: start.keyPos }];
  for (let level = 0; level < depth && frontier.length > 0; level++) {
    const next: typeof frontier = [];
    for (const n of frontier) {
      const key = `${n.layer}.${n.head}@${n.q}>${n.k}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const dec = decomposeWith(model, P, n.layer, n.head, n.q, n.k, fraction);
      nodes.push({ head: dec.label, queryPos: n.q, keyPos: n.k, score: dec.score, carrying: dec.carrying, dHead: dec.terms.length });
      const heads = dec.upstream.filter((u) => u.kind === 'head');
      for (const side of ['query', 'key'] as const) {
        const pos = side === 'query' ? n.q : n.k;
        const top = [...heads].sort((a, b) => Math.abs(b[side]) - Math.abs(a[side])).slice(0, topUpstream);
        for (const u of top) {
          if (u[side] === 0) continue;
          edges.push({ from: u.label, fromPos: pos, to: dec.label, toQuery: n.q, toKey: n.k, side, contribution: u[side], share: dec.score !== 0 ? u[side] / dec.score : 0 });
          const row = P.pattern[u.layer!][u.head!][pos];
          let arg = 0;
          for (let j = 1; j <= pos; j++) if (row[j] > row[arg]) arg = j;
          next.push({ layer: u.layer!, head: u.head!, q: pos, k: arg });
        }
      }
    }
    frontier = next;
  }
  return { start: { head: headLabel(start.layer, start.head), queryPos: start.queryPos, keyPos: start.keyPos }, nodes, edges, settings: { fraction, topUpstream, depth } };
}

/** Σ over prompts of each upstream head's contribution to one head's (query, key) score, per side: a ranking comparable with path patching's. */
export function upstreamHeadRanking(
  model: HookedTransformer,
  prompts: { tokens: number[]; queryPos: number; keyPos: number; contrastKeyPos?: number }[],
  layer: number,
  head: number,
  opts: SparseOptions = {},
): { label: string; layer: number; head: number; query: number; key: number }[] {
  if (prompts.length === 0) throw new HeadlensError('upstreamHeadRanking needs at least one prompt');
  const sums = new Map<string, { label: string; layer: number; head: number; query: number; key: number }>();
  for (const p of prompts) {
    const dec = decomposeAttentionScore(model, p.tokens, layer, head, p.queryPos, p.keyPos, { ...opts, contrastKeyPos: p.contrastKeyPos ?? opts.contrastKeyPos });
    for (const u of dec.upstream) {
      if (u.kind !== 'head') continue;
      const s = sums.get(u.label) ?? { label: u.label, layer: u.layer!, head: u.head!, query: 0, key: 0 };
      s.query += u.query / prompts.length;
      s.key += u.key / prompts.length;
      sums.set(u.label, s);
    }
  }
  return [...sums.values()];
}
