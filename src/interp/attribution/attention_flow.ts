/**
 * Attention flow (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"), and the token
 * importances they judge it against.
 *
 * Rollout (attention_rollout.ts) multiplies the layers' attention: it assumes information from a token is
 * split in proportion along every path. Flow instead treats the layered attention graph as a network of
 * pipes and asks how much can get from an input token to an output position at most. The graph is the one
 * of their code (attention_graph_util.py, get_adjmat / compute_node_flow): a node (i, k) for every layer
 * boundary i = 0…L (0: the input tokens, i: the output of block i − 1) and position k; an edge from (i, q) to
 * (i − 1, k) whose capacity is Â_{i−1}[q, k], with Â = 0.5·mean_h(A) + 0.5·I, rows renormalised (their
 * `A + I` renormalised is the same matrix, as A's rows sum to 1). The flow of input token k at output position
 * p is the maximum flow from the source (L, p) to the sink (0, k) (Edmonds–Karp, as their networkx call);
 * `normalized` divides the values of p by their sum over k, as compute_node_flow does; `raw` keeps them.
 *
 * Their finding, on a transformer trained for subject–verb agreement and on BERT-family classifiers: rollout
 * and flow correlate better than raw attention with two importance scores, blank-out (replace a token by UNK,
 * see the drop in the right answer's probability) and input gradients (|Σ_d ∂ logit / ∂ x_{k,d}| of the input
 * embedding x; see GradientImportanceOptions for why headlens takes the norm instead), most clearly in the higher layers, where raw attention says little. `flowCorrelations` computes
 * those Spearman correlations per prompt, with their mean and standard deviation, as their script does.
 *
 * Decoder models are causal: only tokens 0…p can reach position p, so flow, rollout and the importances
 * are reported (and correlated) over those tokens only. A max-flow per input token costs far more than
 * rollout: (L+1)·n nodes and L·n² edges per query, n queries per output position; fine for the prompts of
 * the toy zoo and tens of tokens, slow for thousands.
 */
import * as tf from '@tensorflow/tfjs';
import { readAsync, readNested, readSync, type Reads, readNestedPair } from '../../util/reads.js';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { FlowNetwork, type FlowEdge } from '../../util/max_flow.js';
import { spearman } from '../../util/rank_correlation.js';
import { rolloutFromPatterns } from './attention_rollout.js';

export interface FlowOptions {
  /** The output position whose sources are traced (negative: from the end; default −1). */
  pos?: number;
  /** Weight of the identity (the residual stream) in each layer's matrix (default 0.5, as in the paper). */
  residualWeight?: number;
  /** Trace back from the output of this block (default: the last). */
  layer?: number;
}

/** Flow into one output position, for each prompt: over input tokens 0…pos. */
export interface TokenFlow {
  /** The output position (non-negative). */
  pos: number;
  /** Max-flow values [batch][key_pos ≤ pos]. */
  raw: number[][];
  /** raw divided by its sum over key positions [batch][key_pos ≤ pos] (their compute_node_flow). */
  normalized: number[][];
}

/** Â = (1 − w)·mean_h A + w·I, rows renormalised: [layer][batch][query_pos][key_pos] as numbers. */
function* residualMatrices(patterns: tf.Tensor4D[], w: number): Reads<number[][][][]> {
  const out: number[][][][] = [];
  for (const p of patterns) {
    const [, , q, k] = p.shape;
    if (q !== k) throw new HeadlensError(`patterns must be square (query_pos = key_pos), got [${p.shape}]`);
    const m = tf.tidy(() => {
      const a = p.mean(1).mul(1 - w).add(tf.eye(q).expandDims(0).mul(w)); // [batch, query_pos, key_pos]
      return a.div(a.sum(-1, true));
    });
    out.push(yield* readNested<number[][][]>(m));
  }
  return out;
}

/**
 * The layered graph of one prompt's matrices Â_0 … Â_{L−1} ([layer][query_pos][key_pos]): node i·n + k is
 * position k after i layers; edges run from layer i to layer i − 1 with capacity Â_{i−1}[q, k]. Zero
 * capacities are left out (a causal mask's upper triangle).
 */
export function attentionGraph(mats: number[][][]): { nodes: number; edges: FlowEdge[] } {
  const L = mats.length;
  const n = mats[0]?.length ?? 0;
  if (L === 0 || n === 0) throw new HeadlensError('attentionGraph: no layers or no positions');
  const edges: FlowEdge[] = [];
  for (let i = 1; i <= L; i++) {
    for (let q = 0; q < n; q++) {
      for (let k = 0; k < n; k++) {
        const c = mats[i - 1][q][k];
        if (c > 0) edges.push({ from: i * n + q, to: (i - 1) * n + k, capacity: c });
      }
    }
  }
  return { nodes: (L + 1) * n, edges };
}

/**
 * Flow from patterns [batch, head, query_pos, key_pos], first layer first, into output position `pos` of the
 * last given layer.
 */
export function flowFromPatterns(patterns: tf.Tensor4D[], opts: Omit<FlowOptions, 'layer'> = {}): TokenFlow {
  return readSync(flowFromPatternsReads(patterns, opts));
}

/** flowFromPatterns, read asynchronously (WebGPU in Node). */
export function flowFromPatternsAsync(patterns: tf.Tensor4D[], opts: Omit<FlowOptions, 'layer'> = {}): Promise<TokenFlow> {
  return readAsync(flowFromPatternsReads(patterns, opts));
}

function* flowFromPatternsReads(patterns: tf.Tensor4D[], opts: Omit<FlowOptions, 'layer'>): Reads<TokenFlow> {
  if (patterns.length === 0) throw new HeadlensError('no attention patterns to trace flow through');
  const w = opts.residualWeight ?? 0.5;
  if (!(w >= 0 && w <= 1)) throw new HeadlensError(`residualWeight ${w} must be in [0, 1]`);
  const [batch, , n] = patterns[0].shape;
  const pos = resolvePos(opts.pos ?? -1, n);
  const mats = yield* residualMatrices(patterns, w); // [layer][batch][q][k]
  const L = mats.length;
  const raw: number[][] = [];
  for (let b = 0; b < batch; b++) {
    const { nodes, edges } = attentionGraph(mats.map((m) => m[b]));
    const net = new FlowNetwork(nodes, edges);
    raw.push(Array.from({ length: pos + 1 }, (_, k) => net.maxFlow(L * n + pos, k)));
  }
  return { pos, raw, normalized: raw.map(normalise) };
}

/** Attention flow of a model on `tokens` into output position `pos` after block `layer` (default the last). */
export function attentionFlow(model: HookedTransformer, tokens: number[][], opts: FlowOptions = {}): TokenFlow {
  return readSync(attentionFlowReads(model, tokens, opts));
}

/** attentionFlow, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function attentionFlowAsync(model: HookedTransformer, tokens: number[][], opts: FlowOptions = {}): Promise<TokenFlow> {
  return readAsync(attentionFlowReads(model, tokens, opts));
}

function* attentionFlowReads(model: HookedTransformer, tokens: number[][], opts: FlowOptions): Reads<TokenFlow> {
  const names = patternNames(model, opts.layer);
  const { logits, cache } = model.runWithCache(tokens, { names });
  try {
    return yield* flowFromPatternsReads(names.map((nm) => cache.get(nm) as tf.Tensor4D), opts);
  } finally {
    cache.dispose();
    logits.dispose();
  }
}

function patternNames(model: HookedTransformer, layer?: number): string[] {
  const last = layer ?? model.cfg.n_layers - 1;
  if (!Number.isInteger(last) || last < 0 || last >= model.cfg.n_layers) throw new HeadlensError(`layer ${layer} is not a layer`, `use 0..${model.cfg.n_layers - 1}`);
  return Array.from({ length: last + 1 }, (_, l) => actName('pattern', l));
}

function resolvePos(pos: number, n: number): number {
  const p = pos < 0 ? n + pos : pos;
  if (!Number.isInteger(p) || p < 0 || p >= n) throw new HeadlensError(`position ${pos} is outside the sequence (${n} tokens)`);
  return p;
}

function normalise(xs: number[]): number[] {
  const s = xs.reduce((a, b) => a + b, 0);
  return s > 0 ? xs.map((x) => x / s) : xs.map(() => 0);
}

// ---------------------------------------------------------------------------------------------------
// The importances flow is judged against

export interface ImportanceOptions {
  /** The output position (default −1). */
  pos?: number;
  /** The answer token at that position, one per prompt or one for all (default: the model's top token). */
  answer?: number | number[];
}

function* answers(model: HookedTransformer, tokens: number[][], pos: number, answer?: number | number[]): Reads<number[]> {
  if (answer === undefined) {
    const top = tf.tidy(() => {
      const logits = model.forward(tokens);
      return logits.slice([0, pos, 0], [-1, 1, -1]).argMax(-1).reshape([-1]); // [batch]
    });
    return Array.from(yield top);
  }
  const list = typeof answer === 'number' ? tokens.map(() => answer) : answer;
  if (list.length !== tokens.length) throw new HeadlensError(`${list.length} answers for ${tokens.length} prompts`, 'give one answer, or one per prompt');
  for (const a of list) if (!Number.isInteger(a) || a < 0 || a >= model.cfg.d_vocab) throw new HeadlensError(`answer token ${a} is not in the vocabulary [0, ${model.cfg.d_vocab})`);
  return list;
}

export interface GradientImportanceOptions extends ImportanceOptions {
  /**
   * How a token's gradient [d_model] becomes one number: 'l2', its Euclidean norm (default), or 'abs-sum',
   * |Σ_d g_d| as Abnar & Zuidema's script. Their DistilBERT feeds the embeddings to attention directly (post-LN);
   * in a pre-LN model every reader of the residual stream starts with a LayerNorm, which subtracts the mean over
   * d_model, so Σ_d g_d is zero up to rounding for every token and 'abs-sum' ranks noise. 'l2' is the usual
   * gradient saliency and defined for both.
   */
  reduce?: 'l2' | 'abs-sum';
}

/**
 * The gradient of the answer's logit at `pos` with respect to the input of the first block
 * (blocks.0.hook_resid_pre: token plus position embeddings; their script differentiates the output of
 * DistilBERT's embedding layer, the same place). [batch][pos][d_model], every position (those after `pos` are 0).
 */
export function inputGradients(model: HookedTransformer, tokens: number[][], opts: ImportanceOptions = {}): number[][][] {
  return readSync(inputGradientsReads(model, tokens, opts));
}

/** inputGradients, read asynchronously (WebGPU in Node). */
export function inputGradientsAsync(model: HookedTransformer, tokens: number[][], opts: ImportanceOptions = {}): Promise<number[][][]> {
  return readAsync(inputGradientsReads(model, tokens, opts));
}

function* inputGradientsReads(model: HookedTransformer, tokens: number[][], opts: ImportanceOptions): Reads<number[][][]> {
  const n = checkRows(tokens);
  const pos = resolvePos(opts.pos ?? -1, n);
  const ans = yield* answers(model, tokens, pos, opts.answer);
  const name = actName('resid_pre', 0);
  const grad = tf.tidy(() => {
    const zero = tf.zeros([tokens.length, n, model.cfg.d_model]);
    const pick = tf.oneHot(tf.tensor1d(ans, 'int32'), model.cfg.d_vocab); // [batch, d_vocab]
    const grad = tf.grad((delta: tf.Tensor) => {
      const hooks: FwdHook[] = [[name, (act) => act.add(delta)]];
      const logits = model.runWithHooks(tokens, { fwdHooks: hooks });
      return logits.slice([0, pos, 0], [-1, 1, -1]).reshape(pick.shape).mul(pick).sum() as tf.Scalar;
    })(zero); // [batch, pos, d_model]
    return grad;
  });
  return yield* readNested<number[][][]>(grad);
}

/** Input-gradient importance of tokens 0…pos: each token's gradient (inputGradients) reduced to one number. [batch][key_pos ≤ pos]. */
export function inputGradientImportance(model: HookedTransformer, tokens: number[][], opts: GradientImportanceOptions = {}): number[][] {
  return readSync(inputGradientImportanceReads(model, tokens, opts));
}

/** inputGradientImportance, read asynchronously (WebGPU in Node). */
export function inputGradientImportanceAsync(model: HookedTransformer, tokens: number[][], opts: GradientImportanceOptions = {}): Promise<number[][]> {
  return readAsync(inputGradientImportanceReads(model, tokens, opts));
}

function* inputGradientImportanceReads(model: HookedTransformer, tokens: number[][], opts: GradientImportanceOptions): Reads<number[][]> {
  const reduce = opts.reduce ?? 'l2';
  if (reduce !== 'l2' && reduce !== 'abs-sum') throw new HeadlensError(`unknown gradient reduction '${String(reduce)}'`, "use 'l2' or 'abs-sum'");
  const pos = resolvePos(opts.pos ?? -1, checkRows(tokens));
  const g = yield* inputGradientsReads(model, tokens, opts);
  const one = (v: number[]) => (reduce === 'l2' ? Math.sqrt(v.reduce((a, x) => a + x * x, 0)) : Math.abs(v.reduce((a, x) => a + x, 0)));
  return g.map((row) => row.slice(0, pos + 1).map(one));
}

/**
 * Blank-out importance (Abnar & Zuidema 2020, after Kádár et al.): replace token k by `blank` (e.g. [UNK]) and
 * take the drop in the answer's probability at `pos`, p(answer) − p_blanked(answer). [batch][key_pos ≤ pos].
 */
export function blankOutImportance(model: HookedTransformer, tokens: number[][], blank: number, opts: ImportanceOptions = {}): number[][] {
  return readSync(blankOutImportanceReads(model, tokens, blank, opts));
}

/** blankOutImportance, read asynchronously (WebGPU in Node). */
export function blankOutImportanceAsync(model: HookedTransformer, tokens: number[][], blank: number, opts: ImportanceOptions = {}): Promise<number[][]> {
  return readAsync(blankOutImportanceReads(model, tokens, blank, opts));
}

function* blankOutImportanceReads(model: HookedTransformer, tokens: number[][], blank: number, opts: ImportanceOptions): Reads<number[][]> {
  const n = checkRows(tokens);
  if (!Number.isInteger(blank) || blank < 0 || blank >= model.cfg.d_vocab) throw new HeadlensError(`blank token ${blank} is not in the vocabulary [0, ${model.cfg.d_vocab})`, "pass the tokenizer's unknown token ([UNK]) or another neutral token");
  const pos = resolvePos(opts.pos ?? -1, n);
  const ans = yield* answers(model, tokens, pos, opts.answer);
  const out: number[][] = [];
  for (const [b, row] of tokens.entries()) {
    const variants = [row, ...Array.from({ length: pos + 1 }, (_, k) => row.map((t, j) => (j === k ? blank : t)))];
    const probs = tf.tidy(() => {
      const logits = model.forward(variants).slice([0, pos, 0], [-1, 1, -1]).reshape([variants.length, model.cfg.d_vocab]);
      return tf.softmax(logits).slice([0, ans[b]], [-1, 1]); // [variant, 1]
    });
    const p = Array.from(yield probs);
    out.push(p.slice(1).map((x) => p[0] - x));
  }
  return out;
}

function checkRows(tokens: number[][]): number {
  if (!Array.isArray(tokens) || tokens.length === 0 || !Array.isArray(tokens[0]) || tokens[0].length === 0) throw new HeadlensError('no prompt tokens given', 'pass rows of token ids, e.g. [[0, 5, 9]]');
  const n = tokens[0].length;
  if (tokens.some((r) => r.length !== n)) throw new HeadlensError('prompts of different lengths', 'pass prompts of one length (or one prompt at a time)');
  return n;
}

// ---------------------------------------------------------------------------------------------------
// Their comparison

export interface FlowCorrelationOptions extends ImportanceOptions {
  residualWeight?: number;
  /** How input gradients are reduced per token (default 'l2'; see GradientImportanceOptions). */
  reduce?: GradientImportanceOptions['reduce'];
  /** The blank token for blank-out importance; without it only input gradients are compared. */
  blank?: number;
}

/** Mean and standard deviation over prompts of Spearman's ρ (prompts where ρ is undefined are dropped and counted). */
export interface RhoSummary {
  mean: number;
  std: number;
  /** ρ of each prompt (NaN where undefined: a constant score). */
  perPrompt: number[];
  /** How many prompts gave no ρ. */
  undefinedCount: number;
}

export interface FlowCorrelations {
  pos: number;
  /** Per prompt, over key positions 0…pos: mean-head attention of the last layer at pos, rollout, flow (normalised). */
  scores: { raw: number[][]; rollout: number[][]; flow: number[][] };
  importance: { gradient: number[][]; blankOut?: number[][] };
  /** ρ[method][importance]. */
  rho: Record<'raw' | 'rollout' | 'flow', { gradient: RhoSummary; blankOut?: RhoSummary }>;
}

/**
 * Abnar & Zuidema's comparison on a model's prompts: raw attention (last layer, mean over heads), rollout and
 * flow at output position `pos`, each correlated (Spearman) with input-gradient and, given `blank`, blank-out
 * importance, prompt by prompt, over the tokens 0…pos.
 */
export function flowCorrelations(model: HookedTransformer, tokens: number[][], opts: FlowCorrelationOptions = {}): FlowCorrelations {
  return readSync(flowCorrelationsReads(model, tokens, opts));
}

/** flowCorrelations, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function flowCorrelationsAsync(model: HookedTransformer, tokens: number[][], opts: FlowCorrelationOptions = {}): Promise<FlowCorrelations> {
  return readAsync(flowCorrelationsReads(model, tokens, opts));
}

function* flowCorrelationsReads(model: HookedTransformer, tokens: number[][], opts: FlowCorrelationOptions): Reads<FlowCorrelations> {
  const n = checkRows(tokens);
  const pos = resolvePos(opts.pos ?? -1, n);
  if (pos < 1) throw new HeadlensError(`output position ${pos} sees one token: nothing to rank`, 'choose a later position');
  const names = patternNames(model);
  const { logits, cache } = model.runWithCache(tokens, { names });
  let raw: number[][];
  let rollout: number[][];
  let flow: TokenFlow;
  try {
    const patterns = names.map((nm) => cache.get(nm) as tf.Tensor4D);
    flow = yield* flowFromPatternsReads(patterns, { pos, residualWeight: opts.residualWeight });
    const [rawT, rolloutT] = tf.tidy(() => {
      const row = (t: tf.Tensor3D) => t.slice([0, pos, 0], [-1, 1, pos + 1]).reshape([tokens.length, pos + 1]); // [batch, key_pos ≤ pos]
      const r = rolloutFromPatterns(patterns, opts.residualWeight ?? 0.5);
      return [row(patterns[patterns.length - 1].mean(1) as tf.Tensor3D), row(r)];
    });
    [raw, rollout] = yield* readNestedPair<number[][], number[][]>(rawT, rolloutT);
  } finally {
    cache.dispose();
    logits.dispose();
  }
  const gradient = yield* inputGradientImportanceReads(model, tokens, { pos, answer: opts.answer, reduce: opts.reduce });
  const blankOut = opts.blank === undefined ? undefined : yield* blankOutImportanceReads(model, tokens, opts.blank, { pos, answer: opts.answer });
  const summary = (a: number[][], b: number[][]): RhoSummary => {
    const perPrompt = a.map((x, i) => spearman(x, b[i]));
    const ok = perPrompt.filter((r) => !Number.isNaN(r));
    const mean = ok.length ? ok.reduce((s, r) => s + r, 0) / ok.length : NaN;
    const std = ok.length ? Math.sqrt(ok.reduce((s, r) => s + (r - mean) ** 2, 0) / ok.length) : NaN;
    return { mean, std, perPrompt, undefinedCount: perPrompt.length - ok.length };
  };
  const scores = { raw, rollout, flow: flow.normalized };
  const rho = Object.fromEntries(
    (['raw', 'rollout', 'flow'] as const).map((m) => [m, { gradient: summary(scores[m], gradient), ...(blankOut ? { blankOut: summary(scores[m], blankOut) } : {}) }]),
  ) as FlowCorrelations['rho'];
  return { pos, scores, importance: { gradient, ...(blankOut ? { blankOut } : {}) }, rho };
}
