/**
 * Path patching (Wang et al. 2022, "Interpretability in the Wild": the IOI circuit in GPT-2 small).
 *
 * Activation patching a head measures everything downstream of it. Path patching isolates one path:
 * the effect of sender heads on receivers *directly*, not through other heads. Wang et al. used it to
 * find IOI's circuit one class at a time: the name movers (9.9, 9.6, 10.0) by their direct path to the
 * logits, the S-inhibition heads (7.3, 7.9, 8.6, 8.10) by their path to the name movers' queries, and so
 * on, 26 heads in 7 classes that together keep 87% of the logit difference of the full model (3.56).
 *
 * What is run here (orig = clean prompts, new = corrupted prompts), exactly:
 *  1. Two caches: every head's z on orig, the senders' z on new.
 *  2. A run on orig in which every head's z, in every layer, is frozen to its orig value, except the
 *     senders, whose z is their new value. MLPs are recomputed from the residual they see (as Wang et al.
 *     do; `freezeMlps: true` freezes hook_mlp_out to orig as well). Embeddings and biases are orig.
 *     So the residual stream downstream of the senders differs from orig by the senders' change, carried
 *     directly and through MLPs only, never through another head.
 *  3a. Receiver 'logits': the metric of run 2 is the answer (every head being frozen, only direct and
 *     MLP-mediated paths from the senders reach the unembedding).
 *  3b. Receiver heads' q, k or v: run 2's hook_q/hook_k/hook_v of those heads (computed from the
 *     recomputed residual through ln1, W_Q/W_K/W_V and rotary where the model has it) are kept; then a
 *     fresh run on orig in which only those inputs are replaced, everything else computed freely, gives
 *     the metric. Under GQA a receiver's k or v is its key/value head's, which the other query heads of
 *     its group read too: patching it changes them all (there is no per-query-head key in the model).
 *
 * `senderPositions` and `receiverPositions` restrict steps 2 and 3b to some positions (Wang et al.
 * patch e.g. the S-inhibition heads' output at END only): one list for every prompt, or one list per prompt
 * (prompts of one length whose names sit at different positions, as ABBA and BABA prompts do).
 *
 * Many sender sets are evaluated in one forward pass each step by stacking them along the batch axis, on
 * the patching engine (stacked_runs.ts): step 2 starts at the chunk's first sender layer and stops after the
 * last receiver, step 3 starts at the first receiver, and a one-position metric unembeds that position only.
 * Each function is one computation (util/reads.ts) with a synchronous form and an `…Async` form, the one that
 * runs on WebGPU in Node.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import type { ActivationCache } from '../../hooks/activation_cache.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import type { HeadRef } from './ablation.js';
import { headAxisLabels, Labelled, layerAxis } from '../labelled.js';
import { metricMean, type Metric } from '../metrics.js';
import type { AttentionMaskInput } from '../../model/padding.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { BaseRun, pipelinedPasses, stackedValues, variantsPerPass } from './stacked_runs.js';

export type Receiver = { kind: 'logits' } | { kind: 'heads'; heads: HeadRef[]; inputs: ('q' | 'k' | 'v')[] };

export interface PathPatchingOptions {
  /** The original prompts (orig). */
  clean: TokenInput;
  /** The prompts the senders' activations come from (new). */
  corrupted: TokenInput;
  metric: Metric;
  /**
   * [batch, pos] of 1 (real token) and 0 (padding) for a padded batch, one mask for the clean and the corrupted
   * prompts (src/model/padding.ts); a metric at one position must read a real token in every prompt (pad on the left).
   */
  attentionMask?: AttentionMaskInput;
  /** Freeze MLP outputs to the clean run too (default false: recomputed, as in the IOI paper). */
  freezeMlps?: boolean;
  /** Sender sets per forward pass (default 32), within maxPassBytes. */
  batchSize?: number;
  /** The most bytes of attention scores one pass may hold (default 64 MiB; see stacked_runs.ts). */
  maxPassBytes?: number;
  /** Called after each chunk of sender sets with the sets done so far and in all. */
  onProgress?: (done: number, total: number) => void;
  /** Only at these positions do senders take their new z (default all); e.g. IOI's END token. One list, or one per prompt. */
  senderPositions?: number[] | number[][];
  /** Only at these positions are the receivers' q/k/v patched (default all). One list, or one per prompt. */
  receiverPositions?: number[] | number[][];
}

/** The metric after patching the path senders → receiver. */
export function pathPatch(model: HookedTransformer, senders: HeadRef[], receiver: Receiver, opts: PathPatchingOptions): number {
  return pathPatchMany(model, [senders], receiver, opts)[0];
}

/** pathPatch, read asynchronously (WebGPU in Node). */
export async function pathPatchAsync(model: HookedTransformer, senders: HeadRef[], receiver: Receiver, opts: PathPatchingOptions): Promise<number> {
  return (await pathPatchManyAsync(model, [senders], receiver, opts))[0];
}

/**
 * Every head before the receivers' first layer as a sender on its own: axes [layer, head] (layers
 * 0 … first receiver layer − 1; all layers for 'logits'). meta holds the clean and corrupted metrics.
 */
export function pathPatchingSweep(model: HookedTransformer, receiver: Receiver, opts: PathPatchingOptions): Labelled {
  return readSync(pathPatchingSweepReads(model, receiver, opts));
}

/** pathPatchingSweep, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function pathPatchingSweepAsync(model: HookedTransformer, receiver: Receiver, opts: PathPatchingOptions): Promise<Labelled> {
  return readAsync(pathPatchingSweepReads(model, receiver, opts));
}

/** pathPatchingSweep as a computation (util/reads.ts). */
export function* pathPatchingSweepReads(model: HookedTransformer, receiver: Receiver, opts: PathPatchingOptions): Reads<Labelled> {
  const { n_layers, n_heads } = model.cfg;
  // the receiver first: the senders below are derived from it, so a bad receiver would surface as a sender the caller never named
  checkReceiver(model, receiver);
  const upTo = receiver.kind === 'logits' ? n_layers : Math.min(...receiver.heads.map((h) => h.layer));
  if (upTo === 0) throw new HeadlensError('receivers in layer 0 have no sender heads before them', 'choose receivers in a later layer');
  const sets: HeadRef[][] = [];
  for (let l = 0; l < upTo; l++) for (let h = 0; h < n_heads; h++) sets.push([{ layer: l, head: h }]);
  const vals = yield* pathPatchManyReads(model, sets, receiver, opts);
  const values: number[] = [];
  for (const t of [opts.clean, opts.corrupted]) {
    const logits = model.forward(t, { attentionMask: opts.attentionMask });
    let mean: tf.Tensor;
    try {
      mean = metricMean(opts.metric, logits);
    } finally {
      logits.dispose();
    }
    values.push((yield mean)[0]);
  }
  const [clean, corrupted] = values;
  return new Labelled([layerAxis(upTo), headAxisLabels(n_heads)], vals, { method: 'path patching', receiver, clean, corrupted });
}

/** The metric for each sender set (one value per set). */
export function pathPatchMany(model: HookedTransformer, senderSets: HeadRef[][], receiver: Receiver, opts: PathPatchingOptions): Float64Array {
  return readSync(pathPatchManyReads(model, senderSets, receiver, opts));
}

/** pathPatchMany, read asynchronously (WebGPU in Node). */
export function pathPatchManyAsync(model: HookedTransformer, senderSets: HeadRef[][], receiver: Receiver, opts: PathPatchingOptions): Promise<Float64Array> {
  return readAsync(pathPatchManyReads(model, senderSets, receiver, opts));
}

function* pathPatchManyReads(model: HookedTransformer, senderSets: HeadRef[][], receiver: Receiver, opts: PathPatchingOptions): Reads<Float64Array> {
  const { cfg } = model;
  checkReceiver(model, receiver);
  checkHeads(model, senderSets.flat(), 'sender');
  const base = new BaseRun(model, opts.clean, opts.attentionMask);
  const B = base.batch;
  const P = base.pos;
  const zNames = Array.from({ length: cfg.n_layers }, (_, l) => actName('z', l));
  const mlpNames = opts.freezeMlps && !cfg.attn_only ? Array.from({ length: cfg.n_layers }, (_, l) => actName('mlp_out', l)) : [];
  const orig = model.runWithCache(opts.clean, { names: [...zNames, ...mlpNames], attentionMask: base.mask });
  const fresh = model.runWithCache(opts.corrupted, { names: zNames, attentionMask: base.mask });
  orig.logits.dispose();
  fresh.logits.dispose();
  try {
    if (fresh.cache.get(zNames[0]).shape.slice(0, 2).join() !== [B, P].join()) {
      throw new HeadlensError('clean and corrupted prompts must have the same batch size and length in tokens');
    }
    for (const [what, ps] of [['senderPositions', opts.senderPositions], ['receiverPositions', opts.receiverPositions]] as const) {
      if (ps && ps.length && Array.isArray(ps[0]) && ps.length !== B) {
        throw new HeadlensError(`${what} has ${ps.length} lists of positions for ${B} prompts`, 'give one list for every prompt, or one list per prompt');
      }
      for (const p of (ps ?? []).flat()) {
        if (!Number.isInteger(p) || p < 0 || p >= P) throw new HeadlensError(`position ${p} is outside the sequence (${P} tokens)`);
      }
    }
    const per = variantsPerPass(model, B, P, { batchSize: opts.batchSize ?? 32, maxPassBytes: opts.maxPassBytes });
    const out = new Float64Array(senderSets.length);
    // sets in order of their first sender's layer, so the base run walks forward once
    const first = (set: HeadRef[]) => Math.min(cfg.n_layers, ...set.map((h) => h.layer));
    const order = senderSets.map((set, i) => ({ set, i })).sort((x, y) => first(x.set) - first(y.set) || x.i - y.i);
    let done = 0;
    const chunks = Array.from({ length: Math.ceil(order.length / per) }, (_, i) => order.slice(i * per, (i + 1) * per));
    yield* pipelinedPasses(
      chunks,
      (chunk) => runChunk(model, base, chunk.map((c) => c.set), receiver, orig.cache, fresh.cache, zNames, mlpNames, opts),
      (chunk, vals) => {
        chunk.forEach((c, k) => (out[c.i] = vals[k]));
        done += chunk.length;
        opts.onProgress?.(done, senderSets.length);
      },
    );
    return out;
  } finally {
    base.dispose();
    orig.cache.dispose();
    fresh.cache.dispose();
  }
}

/**
 * One pass per step for a chunk of sender sets, giving the metric per set as a tensor [sets] to read. Step 2
 * starts at the chunk's first sender layer: before it, freezing every head to orig changes nothing, so the orig
 * run's resid_pre there is the right input.
 */
function runChunk(
  model: HookedTransformer,
  base: BaseRun,
  chunk: HeadRef[][],
  receiver: Receiver,
  orig: ActivationCache,
  fresh: ActivationCache,
  zNames: string[],
  mlpNames: string[],
  opts: PathPatchingOptions,
): tf.Tensor1D {
  const { cfg } = model;
  const { metric } = opts;
  const V = chunk.length;
  const P = base.pos;
  const B = base.batch;
  // [batch][pos]: 1 where the position is patched (one list for every prompt, or one per prompt)
  const posMask = (positions: number[] | number[][] | undefined) =>
    Array.from({ length: B }, (_, b) => {
      const row = positions && (Array.isArray(positions[0]) ? (positions as number[][])[b] : (positions as number[]));
      return Array.from({ length: P }, (_, p) => (!row || row.includes(p) ? 1 : 0));
    });
  const senderPos = posMask(opts.senderPositions);
  const receiverPos = posMask(opts.receiverPositions);
  const senderStart = Math.min(cfg.n_layers, ...chunk.flat().map((h) => h.layer));
  // step 2: every head frozen to orig, the senders set to new
  const frozen: FwdHook[] = zNames.map((name, l): FwdHook => [
    name,
    (z) => {
      const H = cfg.n_heads;
      const E = z.shape[3]!;
      const m = new Float32Array(V * B * P * H);
      chunk.forEach((set, v) => set.forEach((s) => {
        if (s.layer === l) for (let b = 0; b < B; b++) for (let p = 0; p < P; p++) m[((v * B + b) * P + p) * H + s.head] = senderPos[b][p];
      }));
      // rank 4 throughout: tfjs' WebGPU backend has no 5-d where, and tiles a 5-d tensor on the CPU
      const sender = tf.tensor(m, [V, B * P, H, 1]).cast('bool'); // [variant, batch·pos, head, 1]
      const mixed = tf.where(sender, fresh.get(name).reshape([1, B * P, H, E]), orig.get(name).reshape([1, B * P, H, E])); // [variant, batch·pos, head, d_head]
      return mixed.reshape(z.shape);
    },
  ]);
  for (const name of mlpNames) frozen.push([name, (x) => tf.tile(orig.get(name), [V, 1, 1]).reshape(x.shape)]);
  if (receiver.kind === 'logits') return stackedValues(model, base, V, Math.min(senderStart, cfg.n_layers - 1), frozen, metric);
  // step 3: only the receivers' q/k/v from step 2, everything else recomputed on orig
  const group = cfg.n_heads / cfg.n_key_value_heads;
  const targets = new Map<string, Set<number>>();
  for (const h of receiver.heads) {
    for (const input of receiver.inputs) {
      const name = actName(input, h.layer);
      const idx = input === 'q' ? h.head : Math.floor(h.head / group);
      targets.set(name, (targets.get(name) ?? new Set()).add(idx));
    }
  }
  const receiverFirst = Math.min(...receiver.heads.map((h) => h.layer));
  const receiverLast = Math.max(...receiver.heads.map((h) => h.layer));
  // step 2 runs only as far as the last receiver reads, keeping the receivers' inputs (as runWithCache keeps a view)
  const step2 = new Map<string, tf.Tensor>();
  const keep: FwdHook[] = [...targets.keys()].map((name): FwdHook => [name, (act) => void step2.set(name, tf.keep(act.reshape(act.shape)))]);
  const start2 = Math.min(senderStart, receiverFirst);
  try {
    tf.tidy(() => model.runWithHooksFrom(start2, base.residPre(start2).tile([V, 1, 1]) as tf.Tensor3D, { fwdHooks: [...frozen, ...keep], stopAtLayer: receiverLast + 1, attentionMask: base.stackedMask(V) }).dispose());
    const hooks: FwdHook[] = [...targets].map(([name, idx]): FwdHook => [
      name,
      (act) => {
        const n = act.shape[2]!;
        // variants are stacked variant-major on the batch axis: row v·B + b is prompt b
        const m = Array.from({ length: V * B * P * n }, (_, i) => {
          const b = Math.floor(i / (P * n)) % B;
          const p = Math.floor(i / n) % P;
          return idx.has(i % n) ? receiverPos[b][p] : 0;
        });
        const sel = tf.tensor(m, [V * B, P, n, 1]).cast('bool'); // [variant·batch, pos, head, 1]
        return tf.where(sel, step2.get(name)!, act);
      },
    ]);
    return stackedValues(model, base, V, receiverFirst, hooks, metric);
  } finally {
    for (const t of step2.values()) t.dispose();
  }
}

function checkReceiver(model: HookedTransformer, receiver: Receiver): void {
  if (receiver?.kind === 'heads') {
    if (!Array.isArray(receiver.heads) || !Array.isArray(receiver.inputs) || receiver.heads.length === 0 || receiver.inputs.length === 0) {
      throw new HeadlensError('receiver heads need at least one head and one input (q, k or v)', "e.g. { kind: 'heads', heads: [{ layer: 1, head: 0 }], inputs: ['q'] }");
    }
    checkHeads(model, receiver.heads, 'receiver');
    for (const i of receiver.inputs) if (!['q', 'k', 'v'].includes(i)) throw new HeadlensError(`receiver input '${i}' is not q, k or v`);
  } else if (receiver?.kind !== 'logits') {
    throw new HeadlensError(`unknown receiver kind '${(receiver as { kind?: string } | undefined)?.kind}'`, "use { kind: 'logits' } or { kind: 'heads', heads, inputs }");
  }
}

function checkHeads(model: HookedTransformer, heads: HeadRef[], what: string): void {
  const { n_layers, n_heads } = model.cfg;
  for (const h of heads) {
    if (!h || !Number.isInteger(h.layer) || h.layer < 0 || h.layer >= n_layers || !Number.isInteger(h.head) || h.head < 0 || h.head >= n_heads) {
      throw new HeadlensError(`${what} head ${JSON.stringify(h)} is not in the model`, `layers 0..${n_layers - 1}, heads 0..${n_heads - 1}`);
    }
  }
}
