/**
 * An ActivationCache owns the activations one run kept, by hook name, until `dispose()`.
 * Tensors from `get` belong to the cache; tensors from `stack`, `head` and the residual helpers below are
 * new and belong to the caller.
 *
 * The residual helpers are TransformerLens' (ActivationCache.accumulated_resid, decompose_resid,
 * stack_head_results, apply_ln_to_stack, logit_attrs), with camelCase options and `{ stack, labels }`
 * returned together. They rest on one fact (Elhage et al. 2021, "A Mathematical Framework for Transformer
 * Circuits"): the residual stream is a sum of what every component wrote, so a stack of components
 * [component, batch, pos, d_model] sums to the residual. A norm is linear once its scale is fixed, so
 * `applyLnToStack` pushes each component through the norm with the scale the run itself computed (the
 * cached hook_scale; frozen, as TransformerLens does), and the normalised components still sum to the
 * normalised residual less the norm's bias. One difference from TransformerLens: headlens does not fold
 * the norm's weight into the next matrix by default, so `applyLnToStack` multiplies by the weight too
 * (TransformerLens' result on a model with fold_ln, where the weight is 1, is the same).
 *
 * `cache.save(file)` writes the activations as one safetensors file, keyed by hook name, float32, with the
 * model's shape in the metadata; `ActivationCache.load(file, model)` reads one back (bit for bit), checking that
 * it fits the model. The codec is src/util/safetensors.ts, a leaf module (it imports only errors.ts), so hooks may use it.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import type { HookedConfig } from '../model/config.js';
import { hookHeadAxis } from '../model/hook_names.js';
import type { Transformer } from '../model/transformer.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { encodeSafetensors, parseSafetensors } from '../util/safetensors.js';
import { actName, nearest, type ActShortName } from './act_name.js';

/** The metadata `format` of a file cache.save writes. */
const CACHE_FORMAT = 'headlens.ActivationCache';
/** The config fields a saved cache records and a load checks against the model. */
const SHAPE_FIELDS = ['n_layers', 'd_model', 'n_heads', 'd_head', 'n_key_value_heads', 'd_vocab'] as const;
/** Tensors `headlens cache` writes beside the activations; load skips them. */
const NOT_ACTIVATIONS = new Set(['logits', 'input_ids']);

/**
 * Which positions a helper keeps, TransformerLens' pos_slice: a number keeps one position and removes the
 * pos axis (negative counts from the end); a list keeps those positions, in that order. Default: all.
 */
export type PosSlice = number | number[];

/** A stack of residual components [component, batch, pos, d_model] (no pos axis for a numeric posSlice) and a label for each. */
export interface ResidStack {
  stack: tf.Tensor;
  labels: string[];
}

export interface AccumulatedResidOptions {
  /** Also each earlier layer's resid_mid, after its resid_pre (default false). */
  inclMid?: boolean;
  /** Also resid_mid of `layer` itself: the input of that layer's MLP rather than its attention (default false). */
  mlpInput?: boolean;
  posSlice?: PosSlice;
  /**
   * Through a norm (default false): for the final entry set (layer = n_layers) ln_final recomputed on each
   * entry, as the logit lens needs (each partial residual is read as if it were the last); otherwise
   * `applyLnToStack` with layer's ln1 (ln2 with mlpInput) scale.
   */
  applyLn?: boolean;
}

export interface DecomposeResidOptions {
  /** 'all' (default), 'attn' (attention outputs only) or 'mlp' (MLP outputs only). */
  mode?: 'all' | 'attn' | 'mlp';
  /** Include hook_embed and hook_pos_embed (default true). */
  inclEmbeds?: boolean;
  /** Also attn_out of `layer` itself: decompose the MLP's input rather than the attention's (default false). */
  mlpInput?: boolean;
  posSlice?: PosSlice;
  /** Through `applyLnToStack` with layer's norm (default false). */
  applyLn?: boolean;
}

/** The axis that indexes heads, for hook points that have one. */
export function headAxis(name: string): number | undefined {
  return hookHeadAxis(name); // from the hook table's axes: 1 for scores and patterns, 2 for q, k, v, z, result
}

export class ActivationCache {
  private disposed = false;

  /**
   * `model` is the one that made the activations: the residual helpers ask it for norms, W_O and W_U.
   * runWithCache passes it; a cache built without one still supports everything else.
   */
  constructor(
    private readonly acts: Map<string, tf.Tensor>,
    readonly cfg: HookedConfig,
    private readonly model?: Transformer,
  ) {}

  keys(): string[] {
    return [...this.acts.keys()];
  }

  has(name: string): boolean {
    return this.acts.has(name);
  }

  get size(): number {
    return this.acts.size;
  }

  /** Bytes held by the cached tensors. */
  get bytes(): number {
    let n = 0;
    for (const t of this.acts.values()) n += t.size * 4;
    return n;
  }

  /** The activation at a hook name (owned by the cache). */
  get(name: string): tf.Tensor {
    this.alive();
    const t = this.acts.get(name);
    if (!t) {
      const near = nearest(name, this.keys());
      throw new HeadlensError(
        `the cache holds no '${name}'`,
        this.size === 0 ? 'the cache is empty: pass the name in runWithCache(…, { names })' : `did you mean '${near}'? Or add it to runWithCache(…, { names })`,
      );
    }
    return t;
  }

  /** `actName`-style access: cache.act('pattern', 0). */
  act(name: ActShortName, layer?: number, sub?: 'ln1' | 'ln2' | 'ln_final'): tf.Tensor {
    return this.get(actName(name, layer, sub));
  }

  /** One activation of every layer stacked on a new first axis: [n_layers, …]. Caller owns the result. */
  stack(name: ActShortName, sub?: 'ln1' | 'ln2'): tf.Tensor {
    this.alive();
    const layers = Array.from({ length: this.cfg.n_layers }, (_, l) => this.get(actName(name, l, sub)));
    return tf.stack(layers);
  }

  /** One head's slice of a per-head activation, the head axis removed. Caller owns the result. */
  head(name: string, head: number): tf.Tensor {
    const t = this.get(name);
    const axis = headAxis(name);
    if (axis === undefined) throw new HeadlensError(`${name} has no head axis`, 'use attn.hook_q/k/v/z/result/pattern/attn_scores');
    if (!Number.isInteger(head) || head < 0 || head >= t.shape[axis]) {
      throw new HeadlensError(`head ${head} is out of range for ${name} (${t.shape[axis]} heads)`);
    }
    return tf.tidy(() => tf.gather(t, head, axis));
  }

  /**
   * The residual stream as it accumulates, TransformerLens' accumulated_resid: resid_pre of layers
   * 0…layer−1 and of `layer` (labels '{l}_pre'), with inclMid each earlier layer's resid_mid ('{l}_mid'),
   * and for layer = n_layers (the default; −1 means the same) the final resid_post ('final_post') instead of
   * a resid_pre. stack: [component, batch, pos, d_model]. Caller owns it.
   */
  accumulatedResid(layer?: number, opts: AccumulatedResidOptions = {}): ResidStack {
    const { n_layers } = this.cfg;
    this.requirePreLN('accumulatedResid');
    const L = this.layerArg('accumulatedResid', layer);
    if (opts.mlpInput && L === n_layers) throw new HeadlensError('accumulatedResid: mlpInput needs a layer below n_layers', 'the final residual feeds no MLP');
    const names: string[] = [];
    const labels: string[] = [];
    for (let l = 0; l <= L; l++) {
      if (l === n_layers) {
        names.push(actName('resid_post', n_layers - 1));
        labels.push('final_post');
        continue;
      }
      names.push(actName('resid_pre', l));
      labels.push(`${l}_pre`);
      if ((opts.inclMid && l < L) || (opts.mlpInput && l === L)) {
        names.push(actName('resid_mid', l));
        labels.push(`${l}_mid`);
      }
    }
    names.forEach((n) => this.get(n)); // a missing activation throws before anything is allocated
    const stack = tf.tidy(() => {
      const raw = tf.stack(names.map((n) => this.slicePos(this.get(n), opts.posSlice))); // [component, batch, pos, d_model]
      if (!opts.applyLn) return raw;
      // the logit lens: each entry read as if it were the final residual, with its own norm statistics
      if (L === n_layers) return this.requireModel('accumulatedResid').applyNorm('ln_final', raw);
      return this.applyLnToStack(raw, L, { posSlice: opts.posSlice, mlpInput: opts.mlpInput });
    });
    return { stack, labels };
  }

  /**
   * The input of `layer` (default n_layers: the final residual) as the sum of what wrote it, TransformerLens'
   * decompose_resid: 'embed', 'pos_embed' (learned positions), then per earlier layer '{l}_attn_out' and
   * '{l}_mlp_out' (attn_out includes b_O), with mlpInput also '{layer}_attn_out'. For sequential blocks these
   * sum to the layer's resid_pre (resid_mid with mlpInput). stack: [component, batch, pos, d_model]. Caller owns it.
   */
  decomposeResid(layer?: number, opts: DecomposeResidOptions = {}): ResidStack {
    const { cfg } = this;
    this.requirePreLN('decomposeResid');
    const L = this.layerArg('decomposeResid', layer);
    const mode = opts.mode ?? 'all';
    if (!['all', 'attn', 'mlp'].includes(mode)) throw new HeadlensError(`decomposeResid: unknown mode '${mode}'`, "use 'all', 'attn' or 'mlp'");
    if (opts.mlpInput && L === cfg.n_layers) throw new HeadlensError('decomposeResid: mlpInput needs a layer below n_layers', 'the final residual feeds no MLP');
    const inclAttn = mode !== 'mlp';
    const inclMlp = mode !== 'attn' && !cfg.attn_only;
    const names: string[] = [];
    const labels: string[] = [];
    const add = (n: string, label: string) => (names.push(n), labels.push(label));
    if (opts.inclEmbeds ?? true) {
      add('hook_embed', 'embed');
      if (cfg.positional_embedding_type === 'standard') add('hook_pos_embed', 'pos_embed');
    }
    for (let l = 0; l < L; l++) {
      if (inclAttn) add(actName('attn_out', l), `${l}_attn_out`);
      if (inclMlp) add(actName('mlp_out', l), `${l}_mlp_out`);
    }
    if (opts.mlpInput && inclAttn) add(actName('attn_out', L), `${L}_attn_out`);
    if (names.length === 0) throw new HeadlensError(`decomposeResid: nothing to stack for layer ${L}`, 'ask for a later layer, or keep the embeddings (inclEmbeds)');
    names.forEach((n) => this.get(n));
    const stack = tf.tidy(() => {
      const raw = tf.stack(names.map((n) => this.slicePos(this.get(n), opts.posSlice))); // [component, batch, pos, d_model]
      return opts.applyLn ? this.applyLnToStack(raw, L, { posSlice: opts.posSlice, mlpInput: opts.mlpInput }) : raw;
    });
    return { stack, labels };
  }

  /**
   * Every head's output of layers 0…layer−1 (default all), TransformerLens' stack_head_results: labels
   * 'L{l}H{h}', stack [layer·head, batch, pos, d_model]. From attn.hook_result where the run kept it, else
   * computed from attn.hook_z and W_O (z_h·W_O[h]), so a cache of hook_z is enough. b_O is in no head.
   * Caller owns the stack.
   */
  stackHeadResults(layer?: number, opts: { posSlice?: PosSlice; applyLn?: boolean } = {}): ResidStack {
    const { cfg } = this;
    const L = this.layerArg('stackHeadResults', layer);
    const sources = Array.from({ length: L }, (_, l) => (this.has(actName('result', l)) ? actName('result', l) : actName('z', l)));
    sources.forEach((n) => this.get(n));
    const model = sources.some((n) => n.endsWith('hook_z')) ? this.requireModel('stackHeadResults') : undefined;
    const labels = Array.from({ length: L * cfg.n_heads }, (_, i) => `L${Math.floor(i / cfg.n_heads)}H${i % cfg.n_heads}`);
    const stack = tf.tidy(() => {
      const perLayer = sources.map((n, l) => {
        const t = this.slicePos(this.get(n), opts.posSlice); // [batch, pos, head, d_model or d_head]
        const headLast = t.rank - 2; // the head axis
        const moved = t.transpose([headLast, ...Array.from({ length: t.rank }, (_, i) => i).filter((i) => i !== headLast)]); // [head, batch, pos, …]
        if (n.endsWith('hook_result')) return moved;
        const lead = moved.shape.slice(1, -1);
        const z = moved.reshape([cfg.n_heads, -1, cfg.d_head]) as tf.Tensor3D; // [head, batch·pos, d_head]
        return tf.matMul(z, model!.param(`blocks.${l}.attn.W_O`) as tf.Tensor3D).reshape([cfg.n_heads, ...lead, cfg.d_model]); // [head, batch, pos, d_model]
      });
      if (perLayer.length === 0) {
        const shape = this.slicePos(this.get('hook_embed'), opts.posSlice).shape; // [batch, pos, d_model]
        return tf.zeros([0, ...shape]);
      }
      const raw = tf.concat(perLayer, 0);
      return opts.applyLn ? this.applyLnToStack(raw, L, { posSlice: opts.posSlice }) : raw;
    });
    return { stack, labels };
  }

  /**
   * A stack of residual components [component, batch, pos, d_model] pushed through the norm that reads
   * `layer` (n_layers or default: ln_final; else blocks.{layer}.ln1, ln2 with mlpInput) with the scale the
   * run computed there, TransformerLens' apply_ln_to_stack: centre(x) / hook_scale · w, centring only for
   * LayerNorm. The norm's bias is left out (it belongs to no component); unlike TransformerLens the weight
   * is applied, as headlens does not fold it by default (see the module comment). `posSlice` must be the
   * one the stack was made with: it is applied to the cached scale. Identity (a copy) for models without
   * norms. Caller owns the result.
   */
  applyLnToStack(stack: tf.Tensor, layer?: number, opts: { posSlice?: PosSlice; mlpInput?: boolean } = {}): tf.Tensor {
    const { cfg } = this;
    this.requirePreLN('applyLnToStack');
    const L = this.layerArg('applyLnToStack', layer);
    if (stack.shape[stack.rank - 1] !== cfg.d_model) throw new HeadlensError(`applyLnToStack: stack is [${stack.shape}], its last axis must be d_model (${cfg.d_model})`);
    if (opts.mlpInput && L === cfg.n_layers) throw new HeadlensError('applyLnToStack: mlpInput needs a layer below n_layers', 'ln_final feeds no MLP');
    if (!cfg.normalization_type) return stack.clone();
    const sub = L === cfg.n_layers ? 'ln_final' : opts.mlpInput ? 'ln2' : 'ln1';
    const scaleName = actName('scale', L === cfg.n_layers ? undefined : L, sub); // that norm's hook_scale
    const w = this.requireModel('applyLnToStack').param(`${scaleName.slice(0, -'.hook_scale'.length)}.w`);
    // inside one tidy: a throw below frees the sliced scale too
    return tf.tidy(() => {
      const scale = this.slicePos(this.get(scaleName), opts.posSlice); // [batch, pos, 1] or [batch, 1]
      if (stack.rank < scale.rank + 1 || stack.shape.slice(stack.rank - scale.rank, -1).join() !== scale.shape.slice(0, -1).join()) {
        throw new HeadlensError(`applyLnToStack: stack [${stack.shape}] does not fit ${scaleName} [${scale.shape}] after posSlice`, 'pass the posSlice the stack was made with');
      }
      const centred = cfg.normalization_type === 'LN' ? stack.sub(stack.mean(-1, true)) : stack;
      return centred.div(scale).mul(w); // [component, batch, pos, d_model]
    });
  }

  /**
   * How much each component of an (un-normalised) stack adds to the logit of `tokens`, or to
   * logit(tokens) − logit(incorrectTokens), directly through the final norm: TransformerLens' logit_attrs,
   * applyLnToStack(stack, n_layers) · (W_U[:, tokens] − W_U[:, incorrect]). tokens: one id, one per prompt
   * [batch], or one per prompt and position [batch, pos]. The final norm's bias and b_U are in no component.
   * stack [component, batch, pos, d_model] → [component, batch, pos]. Caller owns it.
   */
  logitAttrs(stack: tf.Tensor, tokens: number | number[] | number[][], incorrectTokens?: number | number[] | number[][], opts: { posSlice?: PosSlice } = {}): tf.Tensor {
    const model = this.requireModel('logitAttrs');
    const shapeOf = (t: number | number[] | number[][]) => (typeof t === 'number' ? '' : Array.isArray(t[0]) ? `${t.length},${(t[0] as number[]).length}` : `${t.length}`);
    if (incorrectTokens !== undefined && shapeOf(tokens) !== shapeOf(incorrectTokens)) {
      throw new HeadlensError(`logitAttrs: tokens [${shapeOf(tokens)}] and incorrectTokens [${shapeOf(incorrectTokens)}] differ in shape`, 'give one incorrect token for each token');
    }
    const flat = (t: number | number[] | number[][]) => (typeof t === 'number' ? [t] : (t as (number | number[])[]).flat());
    for (const id of [...flat(tokens), ...(incorrectTokens === undefined ? [] : flat(incorrectTokens))]) {
      if (!Number.isInteger(id) || id < 0 || id >= this.cfg.d_vocab) throw new HeadlensError(`logitAttrs: token ${id} is not in the vocabulary [0, ${this.cfg.d_vocab})`);
    }
    // the direction's axes, before d_model: [] for one token, [batch] or [batch, pos]
    const lead = shapeOf(tokens) === '' ? [] : shapeOf(tokens).split(',').map(Number);
    const stackLead = stack.shape.slice(1, -1); // [batch, pos] or [batch]
    if (lead.length > stackLead.length || lead.some((n, i) => n !== stackLead[i])) {
      throw new HeadlensError(`logitAttrs: tokens [${lead}] do not fit the stack [${stack.shape}]`, 'give one token, one per prompt, or one per prompt and position');
    }
    return tf.tidy(() => {
      const normed = this.applyLnToStack(stack, this.cfg.n_layers, opts);
      const WU = model.param('unembed.W_U'); // [d_model, d_vocab]
      const columns = (t: number | number[] | number[][]) => tf.gather(WU, tf.tensor1d(flat(t), 'int32'), 1).transpose(); // [tokens, d_model]
      let dir = columns(tokens);
      if (incorrectTokens !== undefined) dir = dir.sub(columns(incorrectTokens));
      // broadcast over the stack's remaining axes: [batch] directions meet [batch, pos] stacks with a pos axis of 1
      const shape = [...lead, ...stackLead.slice(lead.length).map(() => 1), this.cfg.d_model];
      return normed.mul(dir.reshape(shape)).sum(-1); // [component, batch, pos]
    });
  }

  /**
   * Writes every cached activation to `file` as safetensors (hook names as keys, float32; metadata: the format,
   * the model's name and shape). Read it back with ActivationCache.load(file, model).
   */
  async save(file: string): Promise<void> {
    this.alive();
    const tensors: Parameters<typeof encodeSafetensors>[0] = {};
    for (const [name, t] of this.acts) {
      const data = t.dtype === 'float32' ? ((await t.data()) as Float32Array) : Float32Array.from(await t.data());
      tensors[name] = { dtype: 'F32', shape: t.shape, data };
    }
    const metadata: Record<string, string> = { format: CACHE_FORMAT, model: this.cfg.model_name };
    for (const f of SHAPE_FIELDS) metadata[f] = String(this.cfg[f]);
    try {
      writeFileSync(file, encodeSafetensors(tensors, metadata));
    } catch (e) {
      throw new HeadlensError(`cache.save: cannot write ${file}: ${(e as Error).message}`, 'check that the folder exists and is writable');
    }
  }

  /**
   * Reads a cache that cache.save wrote (or `headlens cache --out`, whose logits and input_ids are skipped) for
   * `model`, which the residual helpers use. Every tensor must be a hook point of the model, and the model's
   * shape must be the one the file records. The caller owns the cache.
   */
  static async load(file: string, model: Transformer): Promise<ActivationCache> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(file));
    } catch (e) {
      throw new HeadlensError(`ActivationCache.load: cannot read ${file}: ${(e as Error).message}`, 'pass the path of a file written by cache.save(file)');
    }
    const st = parseSafetensors(bytes, file);
    const { cfg } = model;
    const meta = st.metadata;
    if (meta.format !== undefined && meta.format !== CACHE_FORMAT) {
      throw new HeadlensError(`${file}: its metadata says format '${meta.format}', not an activation cache`, 'pass a file written by cache.save(file)');
    }
    for (const f of SHAPE_FIELDS) {
      if (meta[f] !== undefined && meta[f] !== String(cfg[f])) {
        throw new HeadlensError(`${file} holds activations of a model with ${f} ${meta[f]}, but ${cfg.model_name} has ${f} ${cfg[f]}`, `load it with the model that made it${meta.model ? ` (${meta.model})` : ''}`);
      }
    }
    const known = model.hookNames({ withResult: true });
    const knownSet = new Set(known);
    const names = st.names.filter((n) => !NOT_ACTIVATIONS.has(n));
    const unknown = names.find((n) => !knownSet.has(n));
    if (unknown !== undefined) {
      throw new HeadlensError(`${file}: '${unknown}' is not a hook point of ${cfg.model_name}`, `the file is not an activation cache of this model (nearest hook point: '${nearest(unknown, known)}'); load it with the model that made it`);
    }
    if (names.length === 0) throw new HeadlensError(`${file} holds no activations`, 'pass a file written by cache.save(file)');
    const acts = new Map<string, tf.Tensor>();
    // in forward order, as runWithCache keeps them (the file sorts its keys)
    for (const n of known.filter((k) => names.includes(k))) acts.set(n, tf.tensor(st.float32(n), st.info(n).shape, 'float32'));
    return new ActivationCache(acts, cfg, model);
  }

  dispose(): void {
    if (this.disposed) return;
    for (const t of this.acts.values()) t.dispose();
    this.acts.clear();
    this.disposed = true;
  }

  /** A layer argument as TransformerLens reads it: undefined or −1 is n_layers. */
  private layerArg(what: string, layer: number | undefined): number {
    const { n_layers } = this.cfg;
    const L = layer === undefined || layer === -1 ? n_layers : layer;
    if (!(Number.isInteger(L) && L >= 0 && L <= n_layers)) throw new HeadlensError(`${what}: layer ${layer} is out of range`, `use 0…${n_layers} (or −1 for ${n_layers}, the final residual)`);
    return L;
  }

  /** The positions `posSlice` keeps of an activation [batch, pos, …] (a new tensor; a number removes the axis). */
  private slicePos(t: tf.Tensor, posSlice: PosSlice | undefined): tf.Tensor {
    if (posSlice === undefined) return t.clone();
    const nPos = t.shape[1] as number;
    const idx = (typeof posSlice === 'number' ? [posSlice] : posSlice).map((p) => (p < 0 ? nPos + p : p));
    if (idx.length === 0 || idx.some((p) => !(Number.isInteger(p) && p >= 0 && p < nPos))) {
      throw new HeadlensError(`posSlice ${JSON.stringify(posSlice)} is outside the sequence (${nPos} positions)`, `use positions in −${nPos}…${nPos - 1}`);
    }
    return tf.tidy(() => {
      const kept = tf.gather(t, tf.tensor1d(idx, 'int32'), 1);
      return typeof posSlice === 'number' ? kept.squeeze([1]) : kept;
    });
  }

  /**
   * The residual helpers read the stream as a sum of what each component wrote, normalised only where a block or
   * the unembedding reads it (pre-LN). A post-LN encoder normalises the sum itself after every sublayer, so no
   * such sum exists there: they refuse rather than return one.
   */
  private requirePreLN(what: string): void {
    if (this.cfg.norm_placement === 'post') {
      throw new HeadlensError(`${what}: ${this.cfg.model_name} is post-LN (an encoder): its residual stream is normalised after every sublayer, so it is no sum of components`, 'read the hook points themselves (blocks.{l}.hook_resid_pre, hook_attn_out, hook_mlp_out, …)');
    }
  }

  private requireModel(what: string): Transformer {
    if (!this.model) throw new HeadlensError(`${what} needs the model that made this cache`, 'use the cache from model.runWithCache, which knows its model');
    return this.model;
  }

  private alive(): void {
    if (this.disposed) throw new HeadlensError('this ActivationCache was disposed', 'use it before calling dispose()');
  }
}
