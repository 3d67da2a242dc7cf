/**
 * Circuit evaluation: run the model with only a circuit's edges carrying the prompt's own activations, and
 * everything outside the circuit ablated, edge by edge.
 *
 * This is Hanna et al.'s `evaluate_graph` (hannamw/EAP-IG, src/eap/evaluate.py; vendored by
 * dmis-lab/TemporalHead): every reader d (a head's query, key or value input, an MLP's input, the logits) gets
 *     input(d) = its residual stream in this run + Σ_{u → d not in the circuit} (ablated(u) − u)
 * where u is writer u's output in this (intervened) run and ablated(u) its output under the ablation:
 *  - 'patching' (the reference's default): the corrupted prompts' activations — an interchange intervention;
 *  - 'mean': the mean over `meanOver` prompts of each prompt's mean over positions (reference 'mean');
 *  - 'mean-positional': the mean over `meanOver` prompts at each position (reference 'mean-positional');
 *  - 'zero'.
 * With every edge in, nothing changes and the metric is the full model's; with none in (and 'patching') every
 * reader reads the corrupted residual stream and the metric is the corrupted run's. A head's query, key and
 * value inputs are separate readers: each goes through the head's own ln1 and W_Q / W_K / W_V (TransformerLens'
 * use_split_qkv_input, which the reference requires). Under GQA a key/value group is one reader.
 *
 * Faithfulness (`circuitFaithfulness`) is reported two ways: `ratio` = circuit / full model (the circuit's
 * metric over the full model's), and `normalized` = (circuit − empty) / (full − empty), Hanna et al.'s
 * normalised faithfulness, where "empty" is the circuit with no edges (the ablated model).
 *
 * Circuits are evaluated on the patching engine (stacked_runs.ts): several circuits in one pass, stacked along
 * the batch.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import type { Circuit } from '../circuit.js';
import { metricMean, type Metric } from '../metrics.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import type { Edge } from './eap.js';
import { BaseRun, pipelinedPasses, stackedValues, variantsPerPass, type PassOptions } from './stacked_runs.js';

export type CircuitAblation = 'patching' | 'mean' | 'mean-positional' | 'zero';

export interface CircuitEvalOptions extends PassOptions {
  clean: TokenInput;
  /** The corrupted prompts ('patching'); same batch size and length as clean. */
  corrupted?: TokenInput;
  metric: Metric;
  /** What an edge outside the circuit carries (default 'patching', as the reference). */
  ablation?: CircuitAblation;
  /** The prompts the means are taken over ('mean', 'mean-positional'). */
  meanOver?: TokenInput;
}

/** A circuit, or just its kept edges. */
export type CircuitLike = Circuit | Edge[];

interface Layout {
  writers: string[];
  writerAt: Map<string, number>;
  readerAt: (r: string) => number;
}

function layout(model: HookedTransformer): Layout {
  const { cfg } = model;
  const writers = ['embed'];
  const writerAt = new Map<string, number>([['embed', 0]]);
  for (let l = 0; l < cfg.n_layers; l++) {
    for (let h = 0; h < cfg.n_heads; h++) (writers.push(`L${l}H${h}`), writerAt.set(`L${l}H${h}`, 2 * l + 1));
    if (!cfg.attn_only) (writers.push(`L${l}.mlp`), writerAt.set(`L${l}.mlp`, cfg.parallel_attn_mlp ? 2 * l + 1 : 2 * l + 2));
  }
  const readerAt = (r: string): number => {
    if (r === 'logits') return Infinity;
    const m = /^L(\d+)(?:H(\d+)\.[qkv]|KV(\d+)\.[kv]|\.mlp)$/.exec(r);
    if (!m || Number(m[1]) >= cfg.n_layers) return NaN;
    const l = Number(m[1]);
    if (m[2] !== undefined) return Number(m[2]) < cfg.n_heads && (cfg.n_key_value_heads === cfg.n_heads || r.endsWith('.q')) ? 2 * l + 0.5 : NaN;
    if (m[3] !== undefined) return cfg.n_key_value_heads !== cfg.n_heads && Number(m[3]) < cfg.n_key_value_heads ? 2 * l + 0.5 : NaN;
    return cfg.attn_only ? NaN : cfg.parallel_attn_mlp ? 2 * l + 0.5 : 2 * l + 1.5;
  };
  return { writers, writerAt, readerAt };
}

function edgeKeys(model: HookedTransformer, lay: Layout, c: CircuitLike, i: number): Set<string> {
  const edges = Array.isArray(c) ? c : c?.edges;
  if (!Array.isArray(edges)) throw new HeadlensError(`circuit ${i} has no edge list`, 'pass a Circuit (topNCircuit, greedyCircuit) or an array of edges');
  const keys = new Set<string>();
  for (const e of edges) {
    const w = lay.writerAt.get(e.from);
    const r = lay.readerAt(e.to);
    if (w === undefined || Number.isNaN(r)) throw new HeadlensError(`circuit ${i}: edge ${e.from} → ${e.to} is not an edge of ${model.cfg.model_name}`, "edges use edgeAttribution's node names for this model");
    if (!(w < r)) throw new HeadlensError(`circuit ${i}: ${e.from} does not come before ${e.to}`);
    keys.add(`${e.from}\u0000${e.to}`);
  }
  return keys;
}

/** Writer outputs [rows, pos, n_writers, d_model] of a run (caller owns), from a cache of embed, z and mlp_out. */
function writerOutputs(model: HookedTransformer, get: (n: string) => tf.Tensor): tf.Tensor4D {
  const { cfg } = model;
  return tf.tidy(() => {
    let embed = get('hook_embed');
    if (cfg.positional_embedding_type === 'standard') embed = embed.add(get('hook_pos_embed'));
    const parts: tf.Tensor[] = [embed.expandDims(2)];
    for (let l = 0; l < cfg.n_layers; l++) {
      parts.push(headOutputs(model, l, get(actName('z', l))));
      if (!cfg.attn_only) parts.push(get(actName('mlp_out', l)).expandDims(2));
    }
    return tf.concat(parts, 2) as tf.Tensor4D;
  });
}

/** Each head's output z_h·W_O[h]: z [rows, pos, head, d_head] → [rows, pos, head, d_model]. */
function headOutputs(model: HookedTransformer, l: number, z: tf.Tensor): tf.Tensor {
  const [R, P, H, e] = z.shape;
  const WO = model.param(`blocks.${l}.attn.W_O`); // [head, d_head, d_model]
  return tf.tidy(() => tf.matMul(z.transpose([2, 0, 1, 3]).reshape([H, R * P, e]) as tf.Tensor3D, WO as tf.Tensor3D).reshape([H, R, P, -1]).transpose([1, 2, 0, 3]));
}

function writerNames(model: HookedTransformer): string[] {
  const { cfg } = model;
  return ['hook_embed', ...(cfg.positional_embedding_type === 'standard' ? ['hook_pos_embed'] : []), ...Array.from({ length: cfg.n_layers }, (_, l) => [actName('z', l), ...(cfg.attn_only ? [] : [actName('mlp_out', l)])]).flat()];
}

/** What ablated edges carry: [B or 1, pos or 1, n_writers, d_model] (caller owns). */
function ablatedOutputs(model: HookedTransformer, opts: CircuitEvalOptions, B: number, P: number): tf.Tensor4D {
  const ablation = opts.ablation ?? 'patching';
  const nW = layout(model).writers.length;
  if (ablation === 'zero') return tf.zeros([1, 1, nW, model.cfg.d_model]);
  const from = ablation === 'patching' ? opts.corrupted : opts.meanOver;
  if (from === undefined) throw new HeadlensError(`ablation '${ablation}' needs ${ablation === 'patching' ? 'corrupted' : 'meanOver'} prompts`);
  const { logits, cache } = model.runWithCache(from, { names: writerNames(model) });
  logits.dispose();
  try {
    const out = writerOutputs(model, (n) => cache.get(n));
    const [b, p] = out.shape;
    if (ablation === 'patching') {
      if (b !== B || p !== P) (out.dispose(), fail(`corrupted prompts are ${b} × ${p} tokens but clean are ${B} × ${P}`, 'clean and corrupted prompts must have the same batch size and length in tokens'));
      return out;
    }
    if (ablation === 'mean-positional' && p !== P) (out.dispose(), fail(`meanOver prompts have ${p} tokens but clean have ${P}`, "'mean-positional' needs prompts of the same length; use 'mean'"));
    const mean = tf.tidy(() => (ablation === 'mean' ? out.mean(1, true).mean(0, true) : out.mean(0, true)) as tf.Tensor4D);
    out.dispose();
    return mean;
  } finally {
    cache.dispose();
  }
}

function fail(msg: string, fix: string): never {
  throw new HeadlensError(msg, fix);
}

/**
 * The metric (averaged over the clean prompts) of the model with only each circuit's edges intact, everything
 * else ablated (see the module comment). One number per circuit, in the order given.
 */
export function evaluateCircuits(model: HookedTransformer, circuits: CircuitLike[], opts: CircuitEvalOptions): Float64Array {
  return readSync(evaluateCircuitsReads(model, circuits, opts));
}

/** evaluateCircuits, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function evaluateCircuitsAsync(model: HookedTransformer, circuits: CircuitLike[], opts: CircuitEvalOptions): Promise<Float64Array> {
  return readAsync(evaluateCircuitsReads(model, circuits, opts));
}

function* evaluateCircuitsReads(model: HookedTransformer, circuits: CircuitLike[], opts: CircuitEvalOptions): Reads<Float64Array> {
  const ablation = opts.ablation ?? 'patching';
  if (!['patching', 'mean', 'mean-positional', 'zero'].includes(ablation)) throw new HeadlensError(`unknown ablation '${ablation}'`, "use 'patching', 'mean', 'mean-positional' or 'zero'");
  const lay = layout(model);
  const keys = circuits.map((c, i) => edgeKeys(model, lay, c, i));
  const run = new BaseRun(model, opts.clean);
  const src = ablatedOutputs(model, opts, run.batch, run.pos);
  try {
    const out = new Float64Array(circuits.length);
    const per = variantsPerPass(model, run.batch, run.pos, opts);
    const starts = Array.from({ length: Math.ceil(circuits.length / per) }, (_, i) => i * per);
    yield* pipelinedPasses(
      starts,
      (g) => {
        const kept: tf.Tensor[] = [];
        try {
          return stackedValues(model, run, Math.min(per, circuits.length - g), null, circuitHooks(model, lay, keys.slice(g, g + per), src, run.batch, kept), opts.metric);
        } finally {
          kept.forEach((t) => t.dispose()); // the pass is recorded: what it reads stays on the device until it has run
        }
      },
      (g, vals) => {
        vals.forEach((v, k) => (out[g + k] = v));
        opts.onProgress?.(Math.min(g + per, circuits.length), circuits.length);
      },
    );
    return out;
  } finally {
    src.dispose();
    run.dispose();
  }
}

/**
 * Hooks for V circuits stacked along the batch (rows v·B + b): record each writer's output in this run, and
 * rebuild each reader's input from its residual stream plus the ablated-minus-current output of every writer
 * whose edge to it is not in circuit v. Tensors kept across hooks go into `kept` (the caller disposes them).
 */
function circuitHooks(model: HookedTransformer, lay: Layout, chunk: Set<string>[], src: tf.Tensor4D, B: number, kept: tf.Tensor[]): FwdHook[] {
  const { cfg } = model;
  const V = chunk.length;
  const d = cfg.d_model;
  const keep = <T extends tf.Tensor>(t: T): T => (kept.push(tf.keep(t)), t);
  const diffs = new Map<string, tf.Tensor>(); // per writer: ablated − current, [V·B, pos, d_model]
  const writerIndex = new Map(lay.writers.map((w, i) => [w, i]));
  const srcOf = (w: number, P: number): tf.Tensor => {
    const s = src.slice([0, 0, w, 0], [-1, -1, 1, -1]).squeeze([2]); // [B|1, pos|1, d_model]
    const full = s.shape[0] === 1 ? s.tile([B, 1, 1]) : s;
    return (full.shape[1] === 1 ? full.tile([1, P, 1]) : full).tile([V, 1, 1]); // [V·B, pos, d_model]
  };
  let embedPart: tf.Tensor | undefined;
  // writers are named, not counted: a parallel block may run its MLP before its attention
  const addWriters = (labels: string[], outs: tf.Tensor[]) => {
    outs.forEach((o, k) => diffs.set(labels[k], keep(tf.tidy(() => srcOf(writerIndex.get(labels[k])!, o.shape[1]!).sub(o)))));
  };
  /** The writers before readers `rs` (which share one place in the forward), in writer order. */
  const before = (rs: string[]): string[] => {
    const at = lay.readerAt(rs[0]);
    const ws = lay.writers.filter((w) => lay.writerAt.get(w)! < at);
    const missing = ws.find((w) => !diffs.has(w));
    if (missing) throw new HeadlensError(`internal: ${missing}'s output was not recorded before ${rs[0]} read it`);
    return ws;
  };
  /** The ablation mask of readers `rs`: [V, R, n_writers so far], 1 where the edge is outside circuit v. */
  const maskOf = (rs: string[], ws: string[]): Float32Array | null => {
    const W = ws.length;
    const m = new Float32Array(V * rs.length * W);
    let any = false;
    chunk.forEach((keys, v) => rs.forEach((r, j) => {
      for (let w = 0; w < W; w++) {
        if (!keys.has(`${ws[w]}\u0000${r}`)) (m[(v * rs.length + j) * W + w] = 1, (any = true));
      }
    }));
    return any ? m : null;
  };
  /** Δ for readers rs: [V, R, B, pos, d_model], or null when every edge into them is in every circuit. */
  const deltaOf = (rs: string[], P: number): tf.Tensor | null => {
    const ws = before(rs);
    const m = maskOf(rs, ws);
    if (!m) return null;
    return tf.tidy(() => {
      const mask = tf.tensor3d(m, [V, rs.length, ws.length]);
      const D = tf.stack(ws.map((w) => diffs.get(w)!)).reshape([ws.length, V, B * P * d]).transpose([1, 0, 2]) as tf.Tensor3D; // [V, W, B·pos·d_model]
      return tf.matMul(mask, D).reshape([V, rs.length, B, P, d]);
    });
  };
  let resid: tf.Tensor | undefined; // this block's resid_pre (attention input) or resid_mid (MLP input)
  const hooks: FwdHook[] = [];
  const embedNames = cfg.positional_embedding_type === 'standard' ? ['hook_embed', 'hook_pos_embed'] : ['hook_embed'];
  embedNames.forEach((n, i) => hooks.push([n, (x) => {
    if (i === 0) embedPart = x;
    if (i === embedNames.length - 1) {
      const sum = embedPart === x ? x : embedPart!.add(x);
      addWriters(['embed'], [sum]);
      if (sum !== x) sum.dispose();
    }
    return x;
  }]));
  const kvGroup = cfg.n_heads / cfg.n_key_value_heads;
  const kvLabel = (l: number, g: number) => (kvGroup === 1 ? `L${l}H${g}` : `L${l}KV${g}`);
  for (let l = 0; l < cfg.n_layers; l++) {
    hooks.push([actName('resid_pre', l), (x) => ((resid = keep(x.clone())), x)]);
    for (const [kind, W, n] of [['q', 'W_Q', cfg.n_heads], ['k', 'W_K', cfg.n_key_value_heads], ['v', 'W_V', cfg.n_key_value_heads]] as const) {
      hooks.push([actName(kind, l), (x) => {
        const P = x.shape[1]!;
        const rs = Array.from({ length: n }, (_, h) => (kind === 'q' ? `L${l}H${h}.q` : `${kvLabel(l, h)}.${kind}`));
        const delta = deltaOf(rs, P);
        if (!delta) return x;
        return tf.tidy(() => {
          const input = resid!.reshape([V, 1, B, P, d]).add(delta).reshape([V * n * B, P, d]); // [V·R·B, pos, d_model]
          const normed = model.applyNorm(`blocks.${l}.ln1`, input).reshape([V, n, B * P, d]).transpose([1, 0, 2, 3]).reshape([n, V * B * P, d]);
          const proj = tf.matMul(normed as tf.Tensor3D, model.param(`blocks.${l}.attn.${W}`) as tf.Tensor3D).add(model.param(`blocks.${l}.attn.b_${kind.toUpperCase()}`).expandDims(1)); // [R, V·B·pos, d_head]
          delta.dispose();
          return proj.reshape([n, V * B, P, cfg.d_head]).transpose([1, 2, 0, 3]); // [V·B, pos, R, d_head]
        });
      }]);
    }
    hooks.push([actName('z', l), (z) => {
      const outs = tf.tidy(() => tf.unstack(headOutputs(model, l, z), 2)); // each [V·B, pos, d_model]
      addWriters(outs.map((_, h) => `L${l}H${h}`), outs);
      outs.forEach((t) => t.dispose());
      return z;
    }]);
    if (!cfg.attn_only) {
      if (!cfg.parallel_attn_mlp) hooks.push([actName('resid_mid', l), (x) => ((resid = keep(x.clone())), x)]);
      hooks.push([actName('normalized', l, 'ln2'), (x) => {
        const P = x.shape[1]!;
        const delta = deltaOf([`L${l}.mlp`], P);
        if (!delta) return x;
        const out = tf.tidy(() => model.applyNorm(`blocks.${l}.ln2`, resid!.add(delta.reshape([V * B, P, d]))));
        delta.dispose();
        return out;
      }]);
      hooks.push([actName('mlp_out', l), (x) => (addWriters([`L${l}.mlp`], [x]), x)]);
    }
  }
  hooks.push([actName('resid_post', cfg.n_layers - 1), (x) => {
    const delta = deltaOf(['logits'], x.shape[1]!);
    if (!delta) return x;
    const out = tf.tidy(() => x.add(delta.reshape(x.shape)));
    delta.dispose();
    return out;
  }]);
  return hooks;
}

export interface Faithfulness {
  /** The circuit's metric (everything outside it ablated). */
  circuit: number;
  /** The full model's metric (no ablation). */
  full: number;
  /** The empty circuit's metric (every edge ablated; with 'patching', the corrupted run's). */
  empty: number;
  /** circuit / full. */
  ratio: number;
  /** (circuit − empty) / (full − empty): 0 = ablated model, 1 = full model (Hanna et al.). */
  normalized: number;
  settings: { ablation: CircuitAblation; edges: number; prompts: number };
}

/** Faithfulness of one circuit: its metric against the full model's and the empty circuit's (module comment). */
export function circuitFaithfulness(model: HookedTransformer, circuit: CircuitLike, opts: CircuitEvalOptions): Faithfulness {
  return readSync(circuitFaithfulnessReads(model, circuit, opts));
}

/** circuitFaithfulness, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function circuitFaithfulnessAsync(model: HookedTransformer, circuit: CircuitLike, opts: CircuitEvalOptions): Promise<Faithfulness> {
  return readAsync(circuitFaithfulnessReads(model, circuit, opts));
}

function* circuitFaithfulnessReads(model: HookedTransformer, circuit: CircuitLike, opts: CircuitEvalOptions): Reads<Faithfulness> {
  const [c, empty] = yield* evaluateCircuitsReads(model, [circuit, []], opts);
  const logits = model.forward(opts.clean);
  const prompts = logits.shape[0];
  let mean: tf.Tensor;
  try {
    mean = metricMean(opts.metric, logits);
  } finally {
    logits.dispose();
  }
  const full = (yield mean)[0];
  const edges = Array.isArray(circuit) ? circuit.length : circuit.edges.length;
  return { circuit: c, full, empty, ratio: c / full, normalized: (c - empty) / (full - empty), settings: { ablation: opts.ablation ?? 'patching', edges, prompts } };
}
