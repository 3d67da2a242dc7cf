/**
 * The engine under every patching sweep (activation patching, path patching, the temporal scorer, the
 * benchmark): many variants of one run of a prompt batch, each changed at a few hook points, measured by
 * one metric. Three things make a sweep cost far less than one forward pass per variant, none of which
 * changes a number beyond float rounding:
 *  - Variants are stacked along the batch axis: row v·batch + b of a pass is prompt b under variant v. On a
 *    GPU a small batch's time is mostly kernel launches, which a pass of many variants shares.
 *  - A variant that changes nothing before block l agrees with the base run up to there, so its pass
 *    starts at l from the base run's resid_pre of l (`BaseRun`, computed once, block by block):
 *    Σ(n_layers − l) blocks over a sweep of every layer instead of n_layers².
 *  - A metric that reads one position (every metric of metrics.ts) gets the final norm and unembedding of
 *    that position only; for GPT-2 small the unembedding of a position costs as much as five blocks.
 * A pass holds at most `maxPassBytes` of attention scores (default 64 MiB): on WebGPU one pass of 384 rows of
 * 128 tokens (about 300 MB of scores) gave results 5.5e-2 off with no error, while passes under 64 MiB matched
 * the one-forward-per-variant loop exactly (README, Performance).
 * A padded batch (prompts of unequal length) takes the base prompts' attention mask: every pass runs with it,
 * tiled over the variants, so each variant of prompt b masks prompt b's padding (src/model/padding.ts). A metric
 * that reads one position must read a real token in every prompt (left padding, TransformerLens' padding_side
 * 'left', puts every prompt's last token at the last position); one that reads padding is refused.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { layerOf } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { normHooks } from '../../model/hook_names.js';
import { hasPadding, maskRows, type AttentionMaskInput } from '../../model/padding.js';
import type { TokenInput } from '../../model/transformer.js';
import { metricPosition, type Metric } from '../metrics.js';
import { prefetch, type Reads, type Values } from '../../util/reads.js';

export interface PassOptions {
  /** Variants per forward pass (default: enough to fill about 4,096 rows). 1: one forward per variant. */
  batchSize?: number;
  /** The most bytes of attention scores one pass may hold (default 64 MiB); caps batchSize. */
  maxPassBytes?: number;
  /** Called after each pass with the variants done so far and in all (the CLI draws a bar from it). */
  onProgress?: (done: number, total: number) => void;
}

/** Variants per pass for prompts [batch, pos]: batchSize (or the 4,096-row default), within maxPassBytes. */
export function variantsPerPass(model: HookedTransformer, batch: number, pos: number, opts: PassOptions): number {
  if (opts.batchSize !== undefined && !(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) {
    throw new HeadlensError(`batchSize ${opts.batchSize} must be a positive integer`);
  }
  const maxBytes = opts.maxPassBytes ?? 64 * 2 ** 20;
  if (!(maxBytes > 0)) throw new HeadlensError(`maxPassBytes ${opts.maxPassBytes} must be positive`);
  const scoresBytes = batch * model.cfg.n_heads * pos * pos * 4; // one variant's [batch, head, query_pos, key_pos]
  const wanted = opts.batchSize ?? Math.max(1, Math.floor(4096 / (batch * pos)));
  return Math.max(1, Math.min(wanted, Math.floor(maxBytes / scoresBytes)));
}

/**
 * The layer a variant can start at, given the hook points it changes: the earliest block among them, or
 * null when one is outside the blocks (hook_embed, hook_pos_embed, ln_final: the pass runs from the tokens).
 */
export function startLayer(names: Iterable<string>): number | null {
  let first = Infinity;
  for (const n of names) {
    const l = layerOf(n);
    if (l === undefined) return null;
    first = Math.min(first, l);
  }
  return first === Infinity ? 0 : first;
}

/**
 * The unpatched run of the base prompts, block by block: resid_pre of any layer on demand, holding one
 * [batch, pos, d_model] tensor at a time. Layers asked for in increasing order cost one forward pass in all;
 * an earlier layer than the last is recomputed from the embeddings. Hooks added with addHook apply.
 */
export class BaseRun {
  readonly rows: number[][];
  /** The attention mask of the base prompts [batch][pos] where any position is padding; undefined otherwise. */
  readonly mask: number[][] | undefined;
  private layer = -1;
  private resid: tf.Tensor3D | undefined;

  constructor(
    private readonly model: HookedTransformer,
    tokens: TokenInput,
    attentionMask?: AttentionMaskInput,
  ) {
    this.rows = model.tokenRows(tokens);
    const mask = attentionMask === undefined ? undefined : maskRows(attentionMask, this.rows.length, this.rows[0].length);
    this.mask = mask && hasPadding(mask) ? mask : undefined;
  }

  /** The mask for `variants` stacked copies of the base prompts (row v·batch + b is prompt b), or undefined. */
  stackedMask(variants: number): number[][] | undefined {
    return this.mask && Array.from({ length: variants * this.batch }, (_, i) => this.mask![i % this.batch]);
  }

  get batch(): number {
    return this.rows.length;
  }

  get pos(): number {
    return this.rows[0].length;
  }

  /** resid_pre of `layer` [batch, pos, d_model], owned by this BaseRun until the next call or dispose(). */
  residPre(layer: number): tf.Tensor3D {
    if (this.resid && layer === this.layer) return this.resid;
    let next: tf.Tensor3D;
    if (this.resid && layer > this.layer) next = this.model.runWithHooksFrom(this.layer, this.resid, { stopAtLayer: layer, attentionMask: this.mask });
    else next = this.model.forward(this.rows, { stopAtLayer: layer, attentionMask: this.mask });
    this.resid?.dispose();
    [this.resid, this.layer] = [tf.keep(next), layer]; // kept: a caller's tidy must not free what this run owns
    return next;
  }

  dispose(): void {
    this.resid?.dispose();
    this.resid = undefined;
    this.layer = -1;
  }
}

/**
 * One pass of `variants` variants of the base run, stacked along the batch, with `fwdHooks` (which see
 * activations [variants·batch, …]). Starts at `start` (a layer, or null: from the tokens). Returns the
 * metric per variant, averaged over the base prompts.
 */
export function runStacked(model: HookedTransformer, base: BaseRun, variants: number, start: number | null, fwdHooks: FwdHook[], metric: Metric): number[] {
  const values = stackedValues(model, base, variants, start, fwdHooks, metric);
  try {
    return Array.from(values.dataSync());
  } finally {
    values.dispose();
  }
}

/** runStacked's values as a tensor [variants] the caller owns and reads (synchronously or not: util/reads.ts). */
export function stackedValues(model: HookedTransformer, base: BaseRun, variants: number, start: number | null, fwdHooks: FwdHook[], metric: Metric): tf.Tensor1D {
  const { cfg } = model;
  const B = base.batch;
  const rows = variants * B;
  const p = metricPosition(metric, base.pos);
  const padded = base.mask?.findIndex((r) => p !== undefined && r[p] === 0) ?? -1;
  if (padded >= 0) {
    throw new HeadlensError(`the metric reads position ${p}, which is padding in prompt ${padded}`, "pad on the left (toTokens(texts, { padding: 'left' })), so that every prompt ends at the last position");
  }
  const attentionMask = base.stackedMask(variants);
  // the fast tail skips ln_final's hook points: only when nothing hooks them
  const lnFinal = cfg.normalization_type ? Object.values(normHooks('ln_final')) : []; // the hook points the tail skips
  const hooked = (n: string) => fwdHooks.some(([f]) => (typeof f === 'string' ? f === n : f(n))) || model.hasPermanentHook(n);
  const tail = p !== undefined && !lnFinal.some(hooked);
  const stopAtLayer = tail ? cfg.n_layers : undefined;
  let out: tf.Tensor3D;
  if (start === null) {
    out = model.runWithHooks(Array.from({ length: rows }, (_, i) => base.rows[i % B]), { fwdHooks, stopAtLayer, attentionMask });
  } else {
    out = tf.tidy(() => model.runWithHooksFrom(start, base.residPre(start).tile([variants, 1, 1]) as tf.Tensor3D, { fwdHooks, stopAtLayer, attentionMask }));
  }
  try {
    return tf.tidy(() => {
      let values: tf.Tensor1D;
      if (tail) {
        const last = out.slice([0, p, 0], [rows, 1, cfg.d_model]); // [variants·batch, 1, d_model]
        const logits = model.unembed(model.applyNorm('ln_final', last)).reshape([rows, cfg.d_vocab]) as tf.Tensor2D;
        values = metric.at!.fn(logits);
      } else {
        values = metric(out);
      }
      return values.reshape([variants, B]).mean(1) as tf.Tensor1D;
    });
  } finally {
    out.dispose();
  }
}

/**
 * Runs a sweep's passes with each pass's values read after the next pass is recorded: `record` records one pass
 * and returns its values [variants] (a tensor this function then owns), whose read starts at once (prefetch), so
 * the device computes a pass while the host records the next, where reading every pass before recording the next
 * kept each waiting on the other. `use` gets each pass's values in order, one pass late (the last after the loop).
 * If the sweep stops (an error, a failed read), the values recorded but not read are disposed.
 */
export function* pipelinedPasses<C>(chunks: Iterable<C>, record: (chunk: C) => tf.Tensor1D, use: (chunk: C, values: Values) => void): Reads<void> {
  let pending: { chunk: C; values: tf.Tensor1D } | undefined;
  try {
    for (const chunk of chunks) {
      const values = record(chunk);
      prefetch(values);
      const before = pending;
      pending = { chunk, values };
      if (before) use(before.chunk, yield before.values); // the driver disposes what it reads
    }
    const last = pending;
    pending = undefined;
    if (last) use(last.chunk, yield last.values);
  } finally {
    pending?.values.dispose();
  }
}
