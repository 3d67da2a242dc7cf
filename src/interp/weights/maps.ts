/**
 * MAPS, "Mapping Attention head ParameterS" (Elhelo & Geva 2025, "Inferring Functionality of Attention
 * Heads from their Parameters", ACL; arXiv 2412.11965; code: github.com/amitelhelo/MAPS, src/maps.py):
 * what a head does, read from its weights alone.
 *
 * The head's full OV circuit M = E'·W_V·W_O·W_U [d_vocab, d_vocab] says, for each source token s the head
 * attends to, how much it raises each target token's logit (row M[s]). E' is the token representation the
 * head reads; as in the authors' code it is
 *
 *     layer 0:      E' = W_E
 *     layers ≥ 1:   E' = MLP_0(ln2_0(W_E))      (block 0's MLP output alone, without the residual W_E)
 *
 * with no ln1 before W_V, no biases and no final norm before W_U (they load models with TransformerLens'
 * `from_pretrained_no_processing`, so W_U is the raw unembedding; headlens computes the checkpoint
 * as-is by default, the same thing). Three questions are asked of M:
 *
 * - `relationScore`: given an operation as token pairs (s, t) — country → capital, name → same name —
 *   the fraction of pairs whose t is among the k highest entries of M[s] (the code's k: 1 for copying
 *   relations, 10 otherwise for GPT-2 / Pythia / Phi, 3 and 25 for Llama-3);
 * - its `suppression` score: the same fraction for −M[s] (the head lowers t's logit);
 * - `salientMappings`: the head's salient operations — the k source tokens whose representation the
 *   head amplifies most, ‖E'[s]·W_V·W_O‖ / ‖E'[s]‖, each with the targets its row raises most.
 *
 * Options keep the earlier headlens variants for comparison: `source: 'raw'` (W_E at every layer),
 * `source: 'embed+mlp0'` (W_E + MLP_0(ln2_0(W_E)), the residual stream after block 0 without attention),
 * `sourceAtLayer0: true` (the transform at layer 0 too: the authors' get_salient_operations does this
 * and their code notes that the paper did it by accident), `salientMappings(…, {select: 'value'})`
 * (the largest entries M[s, t] instead of amplification). An attention-only model has no MLP_0; there the
 * default source is 'raw' and every result says so in its `source` field.
 * Rows are computed one at a time from the factored circuit, so nothing vocab × vocab is ever formed.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { FactoredMatrix } from '../../linalg/factored_matrix.js';
import { checkHead, ovCircuit, paramMatrix, readWeightsAsync } from './head_circuits.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { headLabel } from '../head_label.js';
import { mat, matmul, transpose, type Mat } from '../../linalg/mat.js';

/** The token representation a head past layer 0 reads (see the module comment). */
export type MapsSource = 'mlp0' | 'raw' | 'embed+mlp0';
const SOURCES: readonly MapsSource[] = ['mlp0', 'raw', 'embed+mlp0'];

export interface MapsOptions {
  /**
   * The source representation for heads in layers ≥ 1: 'mlp0' = MLP_0(ln2_0(W_E)) as MAPS' code (the
   * default when block 0 has an MLP), 'raw' = W_E (the default for attention-only models),
   * 'embed+mlp0' = W_E + MLP_0(ln2_0(W_E)) (headlens' earlier `throughMlp0`).
   */
  source?: MapsSource;
  /** Apply `source` at layer 0 too (default false; MAPS' salient-operations code does, by accident per its authors). */
  sourceAtLayer0?: boolean;
  /** @deprecated the earlier flag: true is `source: 'embed+mlp0'` at every layer. */
  throughMlp0?: boolean;
}

/** The settings a result was computed with, written into it so that a JSON result says how it was made. */
export interface MapsSettings {
  /** The representation this head's rows were computed from (after resolving defaults and layer 0). */
  source: MapsSource;
  sourceAtLayer0: boolean;
}

export interface RelationScore extends MapsSettings {
  layer: number;
  head: number;
  label: string;
  k: number;
  /** Pairs whose target is in the top-k of the source's row. */
  hits: number;
  total: number;
  /** hits / total: MAPS' relation score. */
  score: number;
  /** Pairs whose target is in the top-k of the negated row (the head suppresses it). */
  suppressionHits: number;
  /** suppressionHits / total: MAPS' suppression relation score. */
  suppression: number;
}

export interface TokenMapping {
  source: number;
  target: number;
  /** M[source, target]: the logit the head adds to target per unit attention on source. */
  value: number;
  /** ‖E'[source]·OV‖ / ‖E'[source]‖, set when mappings were selected by amplification. */
  amplification?: number;
}

function checkToken(model: HookedTransformer, id: number): void {
  if (!(Number.isInteger(id) && id >= 0 && id < model.cfg.d_vocab)) {
    throw new HeadlensError(`token id ${id} is not in the vocabulary [0, ${model.cfg.d_vocab})`, 'check the tokenizer matches the model');
  }
}

/** The source representation used for a head in `layer`, defaults resolved. */
export function mapsSettings(model: HookedTransformer, layer: number, opts: MapsOptions = {}): MapsSettings {
  if (opts.source !== undefined && !SOURCES.includes(opts.source)) {
    throw new HeadlensError(`MAPS source '${opts.source as string}' is not one of ${SOURCES.join(', ')}`);
  }
  if (opts.throughMlp0 && opts.source !== undefined && opts.source !== 'embed+mlp0') {
    throw new HeadlensError(`throughMlp0 and source '${opts.source}' disagree`, "throughMlp0 is the old name of source 'embed+mlp0'; pass only source");
  }
  const atLayer0 = opts.throughMlp0 ? true : (opts.sourceAtLayer0 ?? false);
  const chosen: MapsSource = opts.throughMlp0 ? 'embed+mlp0' : (opts.source ?? (model.cfg.attn_only ? 'raw' : 'mlp0'));
  if (chosen !== 'raw' && model.cfg.attn_only) {
    throw new HeadlensError(`MAPS source '${chosen}' needs an MLP in block 0, but this model is attention-only`, "use source 'raw'");
  }
  return { source: layer === 0 && !atLayer0 ? 'raw' : chosen, sourceAtLayer0: atLayer0 };
}

/**
 * Rows `ids` of a token representation [ids, d_model]: W_E[ids] ('raw'), MLP_0(ln2_0(W_E[ids])) ('mlp0')
 * or their sum ('embed+mlp0'), computed in tfjs in chunks and freed before returning. The old call
 * `sourceEmbeddings(model, ids, {throughMlp0: true})` still gives 'embed+mlp0'.
 */
export function sourceEmbeddings(model: HookedTransformer, ids: number[], opts: MapsOptions | MapsSource = 'raw'): Mat {
  return readSync(sourceEmbeddingsReads(model, ids, opts));
}

function* sourceEmbeddingsReads(model: HookedTransformer, ids: number[], opts: MapsOptions | MapsSource): Reads<Mat> {
  ids.forEach((id) => checkToken(model, id));
  const { cfg } = model;
  const source: MapsSource = typeof opts === 'string' ? opts : opts.throughMlp0 ? 'embed+mlp0' : (opts.source ?? 'raw');
  if (!SOURCES.includes(source)) throw new HeadlensError(`MAPS source '${source as string}' is not one of ${SOURCES.join(', ')}`);
  const out = mat(ids.length, cfg.d_model);
  if (source === 'raw') {
    const E = paramMatrix(model, 'embed.W_E');
    ids.forEach((id, i) => out.data.set(E.data.subarray(id * cfg.d_model, (id + 1) * cfg.d_model), i * cfg.d_model));
    return out;
  }
  if (cfg.attn_only) throw new HeadlensError(`MAPS source '${source}' needs an MLP in block 0, but this model is attention-only`, "use source 'raw'");
  const chunk = 4096;
  for (let from = 0; from < ids.length; from += chunk) {
    const part = ids.slice(from, from + chunk);
    const data = (yield tf.tidy(() => {
      const e = tf.gather(model.param('embed.W_E'), tf.tensor1d(part, 'int32')).expandDims(0) as tf.Tensor3D; // [1, ids, d_model]
      const m = model.applyMlp(0, model.applyNorm('blocks.0.ln2', e) as tf.Tensor3D); // [1, ids, d_model]
      return source === 'mlp0' ? m : e.add(m);
    })) as Float32Array;
    out.data.set(data, from * cfg.d_model);
  }
  return out;
}

/** The head's OV map from the given source tokens to target logits, factored: (E'[sources]·W_V)·(W_O·W_U). */
function* sourceCircuit(model: HookedTransformer, layer: number, head: number, sources: number[], settings: MapsSettings): Reads<{ M: FactoredMatrix; E: Mat }> {
  checkHead(model, layer, head);
  const ov = ovCircuit(model, layer, head);
  const E = yield* sourceEmbeddingsReads(model, sources, settings.source);
  return { M: new FactoredMatrix(matmul(E, ov.A), matmul(ov.B, paramMatrix(model, 'unembed.W_U'))), E };
}

/** Whether `target` is among the k largest entries of sign·row (ties counted against it). */
function inTopK(row: Float64Array, target: number, k: number, sign: 1 | -1): boolean {
  const v = sign * row[target];
  let above = 0;
  for (let j = 0; j < row.length; j++) {
    if (j !== target && sign * row[j] >= v) {
      above++;
      if (above >= k) return false;
    }
  }
  return true;
}

/**
 * MAPS' relation score of one head: the fraction of (source, target) pairs whose target is in the top-k
 * of the head's row for source, and its suppression score (top-k of the negated row).
 */
export function relationScore(
  model: HookedTransformer,
  layer: number,
  head: number,
  pairs: [number, number][],
  opts: MapsOptions & { k?: number } = {},
): RelationScore {
  return readSync(relationScoreReads(model, layer, head, pairs, opts));
}

function* relationScoreReads(model: HookedTransformer, layer: number, head: number, pairs: [number, number][], opts: MapsOptions & { k?: number }): Reads<RelationScore> {
  const k = opts.k ?? 10;
  if (!(Number.isInteger(k) && k >= 1)) throw new HeadlensError(`k ${k} is not a positive integer`);
  if (pairs.length === 0) throw new HeadlensError('relationScore needs at least one (source, target) pair');
  pairs.forEach(([, t]) => checkToken(model, t));
  const settings = mapsSettings(model, layer, opts);
  const sources = [...new Set(pairs.map(([s]) => s))];
  const rowOf = new Map(sources.map((s, i) => [s, i]));
  const { M } = yield* sourceCircuit(model, layer, head, sources, settings);
  const rows = new Map<number, Float64Array>();
  let hits = 0;
  let suppressionHits = 0;
  for (const [s, t] of pairs) {
    let row = rows.get(s);
    if (!row) rows.set(s, (row = M.row(rowOf.get(s)!)));
    if (inTopK(row, t, k, 1)) hits++;
    if (inTopK(row, t, k, -1)) suppressionHits++;
  }
  const total = pairs.length;
  return { layer, head, label: headLabel(layer, head), k, hits, total, score: hits / total, suppressionHits, suppression: suppressionHits / total, ...settings };
}

/** relationScore for every head, layer by layer. */
export function relationScores(model: HookedTransformer, pairs: [number, number][], opts: MapsOptions & { k?: number } = {}): RelationScore[] {
  return readSync(relationScoresReads(model, pairs, opts));
}

/** relationScores, with the weights (and a source through MLP_0) read asynchronously: the form that runs on WebGPU in Node. */
export async function relationScoresAsync(model: HookedTransformer, pairs: [number, number][], opts: MapsOptions & { k?: number } = {}): Promise<RelationScore[]> {
  await readWeightsAsync(model);
  return readAsync(relationScoresReads(model, pairs, opts));
}

function* relationScoresReads(model: HookedTransformer, pairs: [number, number][], opts: MapsOptions & { k?: number }): Reads<RelationScore[]> {
  const out: RelationScore[] = [];
  for (let l = 0; l < model.cfg.n_layers; l++) for (let h = 0; h < model.cfg.n_heads; h++) out.push(yield* relationScoreReads(model, l, h, pairs, opts));
  return out;
}

export interface SalientOptions extends MapsOptions {
  /**
   * 'amplification' (default, MAPS): the `n` sources with the largest ‖E'[s]·OV‖ / ‖E'[s]‖, each with its
   * `perSource` largest targets; 'value' (headlens' earlier variant): the `n` largest entries M[s, t},
   * at most `perSource` per source.
   */
  select?: 'amplification' | 'value';
  /** Salient source tokens (amplification; default 15, MAPS' notebook) or mappings (value; default 20). */
  n?: number;
  /** Targets per source (default 5 for amplification, MAPS' notebook; 3 for value). */
  perSource?: number;
  /** Candidate source tokens (default: the whole vocabulary). */
  sources?: number[];
}

/** Indices of the `n` largest values, largest first (ties by lower index). */
function topIndices(values: ArrayLike<number>, n: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => values[b] - values[a] || a - b)
    .slice(0, n);
}

/**
 * The head's salient operations (MAPS): source tokens chosen by how much the head amplifies their
 * representation, ‖E'[s]·W_V·W_O‖ / ‖E'[s]‖ (before W_U), each listed with the targets whose logits its
 * row raises most, in that order (sources by amplification, targets by value). Sources with a zero
 * representation have no amplification and are skipped. With `select: 'value'`, the old headlens list:
 * the largest M[s, t] over all sources. Cost: sources × d_vocab × d_head.
 */
export function salientMappings(model: HookedTransformer, layer: number, head: number, opts: SalientOptions = {}): TokenMapping[] {
  return readSync(salientMappingsReads(model, layer, head, opts));
}

/** salientMappings, with the weights (and a source through MLP_0) read asynchronously: the form that runs on WebGPU in Node. */
export async function salientMappingsAsync(model: HookedTransformer, layer: number, head: number, opts: SalientOptions = {}): Promise<TokenMapping[]> {
  await readWeightsAsync(model);
  return readAsync(salientMappingsReads(model, layer, head, opts));
}

function* salientMappingsReads(model: HookedTransformer, layer: number, head: number, opts: SalientOptions): Reads<TokenMapping[]> {
  const select = opts.select ?? 'amplification';
  if (select !== 'amplification' && select !== 'value') throw new HeadlensError(`select '${select as string}' is not amplification or value`);
  const byAmp = select === 'amplification';
  const n = opts.n ?? (byAmp ? 15 : 20);
  const per = opts.perSource ?? (byAmp ? 5 : 3);
  for (const [name, v] of [['n', n], ['perSource', per]] as const) {
    if (!(Number.isInteger(v) && v >= 1)) throw new HeadlensError(`${name} ${v} is not a positive integer`);
  }
  const sources = opts.sources ?? Array.from({ length: model.cfg.d_vocab }, (_, i) => i);
  if (sources.length === 0) throw new HeadlensError('salientMappings needs at least one source token');
  const settings = mapsSettings(model, layer, opts);
  const { M, E } = yield* sourceCircuit(model, layer, head, sources, settings);
  if (!byAmp) {
    const best: TokenMapping[] = [];
    sources.forEach((s, i) => {
      const row = M.row(i);
      for (const t of topIndices(row, per)) best.push({ source: s, target: t, value: row[t] });
    });
    return best.sort((a, b) => b.value - a.value).slice(0, n);
  }
  // ‖E'[s]·W_V·W_O‖² = a_s·(W_O·W_Oᵀ)·a_sᵀ with a_s = E'[s]·W_V, the row of M's left factor
  const { B: W_O } = ovCircuit(model, layer, head);
  const G = matmul(W_O, transpose(W_O)); // [d_head, d_head]
  const A = M.A; // [sources, d_head]
  const e = A.cols;
  const amp = new Float64Array(sources.length).fill(-Infinity);
  for (let i = 0; i < sources.length; i++) {
    let inNorm = 0;
    for (let j = 0; j < E.cols; j++) inNorm += E.data[i * E.cols + j] ** 2;
    if (inNorm === 0) continue;
    let q = 0;
    for (let a = 0; a < e; a++) {
      let ga = 0;
      for (let b = 0; b < e; b++) ga += G.data[a * e + b] * A.data[i * e + b];
      q += A.data[i * e + a] * ga;
    }
    amp[i] = Math.sqrt(Math.max(0, q) / inNorm);
  }
  const out: TokenMapping[] = [];
  for (const i of topIndices(amp, n)) {
    if (amp[i] === -Infinity) break;
    const row = M.row(i);
    for (const t of topIndices(row, per)) out.push({ source: sources[i], target: t, value: row[t], amplification: amp[i] });
  }
  return out;
}
