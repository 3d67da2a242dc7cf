/**
 * Sparse attention decomposition (Franco & Crovella 2024, "Sparse Attention Decomposition Applied to
 * Circuit Tracing", arXiv 2410.00340; code: github.com/gaabrielfranco/sparse-attention-decomposition,
 * utils.py and full_tracing_*.py), computed as their code does.
 *
 * A head's attention score between a destination (query) and a source (key) position is a bilinear form of
 * the two normalised residual vectors. Their code loads GPT-2 with TransformerLens' default processing, so
 * ln1's weight and bias are folded into W_Q, W_K and the biases; with homogeneous coordinates x̂ = [x̄, 1]
 * (x̄ = ln1's centred and scaled input, without its weight and bias), Ŵ_Q = [diag(w)·W_Q; b·W_Q + b_Q] and
 * Ŵ_K likewise ([d_model + 1, d_head]), the score is exactly
 *
 *     q·k = x̂_q·Ω̂·x̂_kᵀ = Σ_i σ_i·(x̂_q·u_i)·(x̂_k·v_i),     Ω̂ = Ŵ_Q·Ŵ_Kᵀ = U·diag(σ)·Vᵀ
 *
 * (before the division by the attention scale): d_head terms, one per singular component of Ω̂. The paper
 * finds that few terms carry the score. `carrying` is their set: the terms sorted in the direction of the
 * score's sign, the shortest prefix whose running sum exceeds `fraction` × the score (their full tracing uses
 * 1.0, their per-edge helper 0.7; all terms when no prefix exceeds it).
 *
 * The residual stream is a sum of what upstream parts wrote (embeddings, each earlier head's output, b_O,
 * MLP outputs); with ln1's scale s of that position held fixed, each part y_c enters as ȳ_c = (y_c −
 * mean(y_c))/s (RMSNorm: y_c/s). An upstream part's contribution through the carrying components is, by
 * default, their measure (`measure: 'projection'`): on the key side Σ_i sign(x̂_q·u_i)·√σ_i·(ȳ_c,k·v_i), on the
 * query side Σ_i sign(x̂_q·u_i)·√σ_i·(ȳ_c,q·u_i) — the part's write projected on the singular directions.
 * `measure: 'exact'` gives instead each part's additive share of the carried terms, σ_i·(x̂_q·u_i)·(ȳ_c,k·v_i)
 * (key) and σ_i·(ȳ_c,q·u_i)·(x̂_k·v_i) (query), which over all parts (with the constant coordinate as one
 * more) sum to the carried score exactly.
 *
 * `traceSparseCircuit` is their trace: a head "fires" on (destination, source) when its attention there is at
 * least `attnThreshold` (0.5), its score is not negative and the source is not position 0; from a firing, the
 * upstream heads whose contributions, sorted from the largest, first exceed `edgeFraction` (0.7) of the sum
 * on a side become edges, and each is traced again from its own firings at the token it wrote to (the source
 * for key-side edges, the destination for query-side ones).
 *
 * Deviations from their code: ln1's scale comes from this run, as theirs (hook_scale), and the folding is
 * done here instead of by TransformerLens; their code appends the constant coordinate 1 to every upstream
 * head's output before projecting (an offset equal for every head at a token, which shifts the sum the edge
 * threshold is a share of, so edge sets can differ slightly), which headlens leaves out;
 * `contrastKeyPos` (a score difference between two keys) and `depth` are headlens' additions. Rotary models
 * are refused: rotary makes the score depend on the positions, not a fixed bilinear form.
 */
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { mat, type Mat } from '../../linalg/mat.js';
import { svd } from '../../linalg/svd.js';
import { headLabel } from '../head_label.js';
import { checkHead, kvHead } from '../weights/head_circuits.js';

export interface SparseOptions {
  /** The carrying set reaches beyond this share of the score (default 1.0, their full tracing; their helper uses 0.7). */
  fraction?: number;
  /** 'projection' (default, their measure) or 'exact' (each part's additive share of the carried score). */
  measure?: 'projection' | 'exact';
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

/** An upstream part of the residual stream: a head, a layer's MLP, a layer's b_O, the embeddings, or the constant coordinate. */
export interface UpstreamPart {
  kind: 'head' | 'mlp' | 'attn_bias' | 'embed' | 'pos_embed' | 'constant';
  label: string;
  layer?: number;
  head?: number;
}

export interface UpstreamContribution extends UpstreamPart {
  /** Its contribution through the query side (written at the query position). */
  query: number;
  /** Its contribution through the key side (written at the key position). */
  key: number;
}

export interface ScoreDecomposition {
  layer: number;
  head: number;
  label: string;
  /** Position of the query (destination) and of the key (source) in the prompt. */
  queryPos: number;
  keyPos: number;
  /** With SparseOptions.contrastKeyPos: the key whose score is subtracted. */
  contrastKeyPos?: number;
  /** q·k as the model computes it (hook_attn_scores × attention scale), minus the contrast key's if given. */
  score: number;
  /** The head's attention probability at (query, key). */
  attention: number;
  /** Σ terms: equals score up to rounding. */
  sum: number;
  /** All d_head terms, largest |term| first. */
  terms: ScoreTerm[];
  /** The components that carry the score (see the module comment), in the order they were taken. */
  carrying: number[];
  /** Σ of the carrying terms. */
  carried: number;
  fraction: number;
  measure: 'projection' | 'exact';
  /** Every upstream part's contribution through the carrying components, largest |query| + |key| first. */
  upstream: UpstreamContribution[];
}

const matmulPlain = (A: Mat, B: Mat): Mat => {
  const out = mat(A.rows, B.cols);
  for (let r = 0; r < A.rows; r++) {
    for (let p = 0; p < A.cols; p++) {
      const x = A.data[r * A.cols + p];
      if (x !== 0) for (let c = 0; c < B.cols; c++) out.data[r * B.cols + c] += x * B.data[p * B.cols + c];
    }
  }
  return out;
};

/**
 * The SVD of Ω̂ = Ŵ_Q·Ŵ_Kᵀ for one head, ln1 folded in as TransformerLens' fold_ln does (weight into the
 * rows of W_Q and W_K, bias into b_Q and b_K), the biases as the last row ([d_model + 1] vectors).
 */
function augmentedSvd(model: HookedTransformer, layer: number, head: number): { U: Mat; S: Float64Array; V: Mat } {
  const { d_model: d, d_head: e, normalization_type: norm } = model.cfg;
  const a = `blocks.${layer}.attn`;
  const g = kvHead(model, head);
  const w = norm === null ? null : model.param(`blocks.${layer}.ln1.w`).dataSync();
  const b = norm === 'LN' ? model.param(`blocks.${layer}.ln1.b`).dataSync() : null;
  const folded = (W: string, B: string, idx: number): Mat => {
    const Wd = model.param(`${a}.${W}`).dataSync().subarray(idx * d * e, (idx + 1) * d * e);
    const Bd = model.param(`${a}.${B}`).dataSync().subarray(idx * e, (idx + 1) * e);
    const out = mat(d + 1, e);
    for (let k = 0; k < d; k++) for (let j = 0; j < e; j++) out.data[k * e + j] = (w ? w[k] : 1) * Wd[k * e + j];
    for (let j = 0; j < e; j++) {
      let s = Bd[j];
      if (b) for (let k = 0; k < d; k++) s += b[k] * Wd[k * e + j];
      out.data[d * e + j] = s;
    }
    return out;
  };
  const Q = folded('W_Q', 'b_Q', head);
  const K = folded('W_K', 'b_K', g);
  // Ω̂ = Q̂·K̂ᵀ through its factors: Q̂ = Uq·Sq·Vqᵀ, K̂ = Uk·Sk·Vkᵀ, middle = Sq·Vqᵀ·Vk·Sk [d_head, d_head]
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
  return { U: matmulPlain(sq.U, m.U), S: m.S, V: matmulPlain(sk.U, m.V) };
}

/**
 * Their carrying set: terms sorted in the direction of the sum's sign, the shortest prefix whose running sum
 * over the whole sum exceeds `fraction` (all terms when none does, or when the sum is 0).
 */
function carryingSet(terms: ScoreTerm[], fraction: number): number[] {
  const total = terms.reduce((s, t) => s + t.term, 0);
  const sign = total >= 0 ? 1 : -1;
  const order = [...terms].sort((a, b) => sign * (b.term - a.term));
  if (total === 0) return order.map((t) => t.component);
  const out: number[] = [];
  let partial = 0;
  for (const t of order) {
    out.push(t.component);
    partial += t.term;
    if (partial / total > fraction) return out;
  }
  return out;
}

/** Activations one prompt needs for decompositions up to `maxLayer`: every upstream part at every position, float64. */
interface PromptParts {
  parts: UpstreamPart[];
  /** values[c][pos] = the part's vector [d_model]. */
  values: Float64Array[][];
  /** resid_pre of each layer at each position: resid[layer][pos]. */
  resid: Float64Array[][];
  /** Attention patterns and scores per layer: [head][query_pos][key_pos]. */
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

/** ln1 of `layer` without its weight and bias (folded into Ω̂), as a linear map with the scale of `resid` held fixed. */
function frozenNorm(model: HookedTransformer, resid: Float64Array): (y: Float64Array) => Float64Array {
  const { cfg } = model;
  const d = cfg.d_model;
  if (cfg.normalization_type === null) return (y) => y;
  const centre = cfg.normalization_type === 'LN';
  const mean = (v: Float64Array) => (centre ? v.reduce((s, x) => s + x, 0) / d : 0);
  const m = mean(resid);
  const s = Math.sqrt(resid.reduce((acc, x) => acc + (x - m) ** 2, 0) / d + cfg.eps);
  return (y) => {
    const my = mean(y);
    return Float64Array.from(y, (x) => (x - my) / s);
  };
}

/** [y, one]·M[:, i] for a [d_model + 1, k] matrix M. */
const dotAug = (y: Float64Array, M: Mat, i: number, one: number): number => {
  let s = one * M.data[y.length * M.cols + i];
  for (let k = 0; k < y.length; k++) s += y[k] * M.data[k * M.cols + i];
  return s;
};

function checkOptions(model: HookedTransformer, fraction: number, measure: string): void {
  if (model.cfg.positional_embedding_type === 'rotary') {
    throw new HeadlensError('sparse attention decomposition needs a fixed bilinear score, but this model uses rotary embeddings', 'use a model with learned (standard) position embeddings');
  }
  if (!(fraction > 0 && fraction <= 1)) throw new HeadlensError(`fraction ${fraction} is not in (0, 1]`);
  if (measure !== 'projection' && measure !== 'exact') throw new HeadlensError(`measure '${measure}' is not projection or exact`);
}

function decomposeWith(
  model: HookedTransformer,
  P: PromptParts,
  layer: number,
  head: number,
  queryPos: number,
  keyPos: number,
  fraction: number,
  measure: 'projection' | 'exact',
  contrastKeyPos?: number,
): ScoreDecomposition {
  const { U, S, V } = augmentedSvd(model, layer, head);
  const nq = frozenNorm(model, P.resid[layer][queryPos]);
  const nk = frozenNorm(model, P.resid[layer][keyPos]);
  const nc = contrastKeyPos === undefined ? undefined : frozenNorm(model, P.resid[layer][contrastKeyPos]);
  const xq = nq(P.resid[layer][queryPos]);
  const xk = nk(P.resid[layer][keyPos]);
  const xc = nc && nc(P.resid[layer][contrastKeyPos!]);
  const terms: ScoreTerm[] = Array.from(S, (sigma, i) => {
    const queryCoord = dotAug(xq, U, i, 1);
    // with a contrast key, the key side is x̂_k − x̂_k′ (the constant coordinate cancels)
    const keyCoord = dotAug(xk, V, i, 1) - (xc ? dotAug(xc, V, i, 1) : 0);
    return { component: i, singularValue: sigma, queryCoord, keyCoord, term: sigma * queryCoord * keyCoord };
  });
  const sum = terms.reduce((s, t) => s + t.term, 0);
  const carrying = carryingSet(terms, fraction);
  terms.sort((a, b) => Math.abs(b.term) - Math.abs(a.term));
  const byComp = new Map(terms.map((t) => [t.component, t]));
  const carried = carrying.reduce((s, i) => s + byComp.get(i)!.term, 0);
  const contribution = (yq: Float64Array, yk: Float64Array, yc: Float64Array | undefined, one: number) => {
    let q = 0;
    let k = 0;
    for (const i of carrying) {
      const t = byComp.get(i)!;
      const onU = dotAug(yq, U, i, one);
      const onV = dotAug(yk, V, i, one) - (yc ? dotAug(yc, V, i, one) : 0);
      if (measure === 'exact') {
        q += t.singularValue * onU * t.keyCoord;
        k += t.singularValue * t.queryCoord * onV;
      } else {
        const w = Math.sign(t.queryCoord) * Math.sqrt(t.singularValue);
        q += w * onU;
        k += w * onV;
      }
    }
    return { query: q, key: k };
  };
  const zero = new Float64Array(model.cfg.d_model);
  // only what layers before this one wrote (a trace reads one run for every layer)
  const upstream: UpstreamContribution[] = P.parts.flatMap((part, c) =>
    part.layer !== undefined && part.layer >= layer
      ? []
      : [{ ...part, ...contribution(nq(P.values[c][queryPos]), nk(P.values[c][keyPos]), nc?.(P.values[c][contrastKeyPos!]), 0) }],
  );
  upstream.push({ kind: 'constant', label: 'constant', ...contribution(zero, zero, xc && zero, 1) });
  upstream.sort((a, b) => Math.abs(b.query) + Math.abs(b.key) - Math.abs(a.query) - Math.abs(a.key));
  const scale = model.cfg.attn_scale * (model.cfg.scale_attn_by_inverse_layer_idx ? layer + 1 : 1);
  const row = P.score[layer][head][queryPos];
  const score = (row[keyPos] - (contrastKeyPos === undefined ? 0 : row[contrastKeyPos])) * scale;
  return {
    layer, head, label: headLabel(layer, head), queryPos, keyPos, ...(contrastKeyPos === undefined ? {} : { contrastKeyPos }),
    score, attention: P.pattern[layer][head][queryPos][keyPos], sum, terms, carrying, carried, fraction, measure, upstream,
  };
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
  const fraction = opts.fraction ?? 1;
  const measure = opts.measure ?? 'projection';
  checkOptions(model, fraction, measure);
  if (opts.contrastKeyPos !== undefined) checkPositions(tokens, queryPos, opts.contrastKeyPos);
  return decomposeWith(model, readParts(model, tokens, layer), layer, head, queryPos, keyPos, fraction, measure, opts.contrastKeyPos);
}

export interface SparseTraceOptions {
  /** See SparseOptions (contrastKeyPos does not apply to a trace). */
  fraction?: number;
  measure?: 'projection' | 'exact';
  /** A head fires on (query, key) when its attention there is at least this (default 0.5, theirs). */
  attnThreshold?: number;
  /** Upstream heads are kept until their sorted contributions exceed this share of the side's sum (default 0.7, theirs). */
  edgeFraction?: number;
  /** Levels traced back from the start (default: no limit; every level goes at least one layer down). */
  depth?: number;
  /**
   * Count a firing only where the pre-softmax score is not negative (default true, theirs: in GPT-2 an
   * all-negative row is an early position with few keys). A model whose scores sit below 0 everywhere
   * (toy-lm's name movers) needs false.
   */
  positiveScoresOnly?: boolean;
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
  /** Its contribution to `to`'s score through the carrying components (SparseOptions.measure). */
  contribution: number;
}

export interface SparseCircuit {
  start: { head: string; queryPos: number; keyPos: number };
  /** The firings traced, with their decompositions' summary. */
  nodes: { head: string; queryPos: number; keyPos: number; score: number; attention: number; carrying: number[]; dHead: number }[];
  edges: SparseEdge[];
  /** Why the start was not traced, if it was not (it does not fire, or its source is position 0). */
  skipped?: string;
  settings: { fraction: number; measure: 'projection' | 'exact'; attnThreshold: number; edgeFraction: number; depth: number | null; positiveScoresOnly: boolean };
}

/** Their edge rule: indices whose values, sorted from the largest, are at or above the first one where the running sum exceeds share × the sum. */
function edgeSet(values: number[], share: number): number[] {
  const total = values.reduce((s, x) => s + x, 0);
  const sorted = [...values].sort((a, b) => b - a);
  let running = 0;
  let cutoff = sorted[sorted.length - 1];
  for (const v of sorted) {
    running += v;
    if (running > share * total) {
      cutoff = v;
      break;
    }
  }
  return values.flatMap((v, i) => (v >= cutoff ? [i] : []));
}

/**
 * Their circuit trace on one prompt, from head (layer, head) firing at (queryPos, keyPos): upstream heads
 * that pass the edge rule on the key side (at the key position) and on the query side (at the query
 * position), each traced again from its own firings at that position, down to layer 0.
 */
export function traceSparseCircuit(
  model: HookedTransformer,
  tokens: number[],
  start: { layer: number; head: number; queryPos: number; keyPos: number },
  opts: SparseTraceOptions = {},
): SparseCircuit {
  checkHead(model, start.layer, start.head);
  checkPositions(tokens, start.queryPos, start.keyPos);
  const fraction = opts.fraction ?? 1;
  const measure = opts.measure ?? 'projection';
  const attnThreshold = opts.attnThreshold ?? 0.5;
  const edgeFraction = opts.edgeFraction ?? 0.7;
  checkOptions(model, fraction, measure);
  if ((opts as SparseOptions).contrastKeyPos !== undefined) throw new HeadlensError('traceSparseCircuit traces scores, not contrasts', 'leave contrastKeyPos out (decomposeAttentionScore takes it)');
  for (const [name, v] of [['attnThreshold', attnThreshold], ['edgeFraction', edgeFraction]] as const) {
    if (!(v > 0 && v <= 1)) throw new HeadlensError(`${name} ${v} is not in (0, 1]`);
  }
  if (opts.depth !== undefined && !(Number.isInteger(opts.depth) && opts.depth >= 1)) throw new HeadlensError(`depth ${opts.depth} is not a positive integer`);
  const positiveScoresOnly = opts.positiveScoresOnly ?? true;
  const settings = { fraction, measure, attnThreshold, edgeFraction, depth: opts.depth ?? null, positiveScoresOnly };
  const P = readParts(model, tokens, start.layer);
  const fires = (l: number, h: number, q: number, k: number) => k !== 0 && P.pattern[l][h][q][k] >= attnThreshold && (!positiveScoresOnly || P.score[l][h][q][k] >= 0);
  const circuit: SparseCircuit = { start: { head: headLabel(start.layer, start.head), queryPos: start.queryPos, keyPos: start.keyPos }, nodes: [], edges: [], settings };
  if (!fires(start.layer, start.head, start.queryPos, start.keyPos)) {
    circuit.skipped = start.keyPos === 0
      ? 'the source is position 0, which their trace does not follow'
      : `${circuit.start.head} does not fire there (attention ${P.pattern[start.layer][start.head][start.queryPos][start.keyPos].toFixed(3)} < ${attnThreshold}, or a negative score)`;
    return circuit;
  }
  const seen = new Set<string>();
  const visit = (l: number, h: number, q: number, k: number, level: number): void => {
    const id = `${l}.${h}@${q}>${k}`;
    if (seen.has(id)) return;
    seen.add(id);
    const dec = decomposeWith(model, P, l, h, q, k, fraction, measure);
    circuit.nodes.push({ head: dec.label, queryPos: q, keyPos: k, score: dec.score, attention: dec.attention, carrying: dec.carrying, dHead: dec.terms.length });
    if (l === 0 || (opts.depth !== undefined && level >= opts.depth)) return;
    const heads = dec.upstream.filter((u) => u.kind === 'head');
    for (const side of ['key', 'query'] as const) {
      const pos = side === 'query' ? q : k;
      for (const i of edgeSet(heads.map((u) => u[side]), edgeFraction)) {
        const u = heads[i];
        circuit.edges.push({ from: u.label, fromPos: pos, to: dec.label, toQuery: q, toKey: k, side, contribution: u[side] });
        for (let src = 1; src <= pos; src++) if (fires(u.layer!, u.head!, pos, src)) visit(u.layer!, u.head!, pos, src, level + 1);
      }
    }
  };
  visit(start.layer, start.head, start.queryPos, start.keyPos, 0);
  return circuit;
}

/** Each upstream head's contribution to one head's (query, key) score, averaged over prompts, per side: a ranking to set beside path patching's. */
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
