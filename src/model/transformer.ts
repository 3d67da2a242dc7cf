/**
 * The transformer itself: embeddings, blocks (attention then MLP, sequential or parallel), final norm,
 * unembedding; for BERT-family encoders (config attention_dir 'bidirectional', norm_placement 'post') token-type
 * embeddings, the embeddings' LayerNorm, post-LN blocks and the masked-LM head instead of the final norm. It computes exactly what the checkpoint computes; weight processing is a separate,
 * opt-in step (weight_processing.ts). Hook points are named as in TransformerLens and visited in the
 * order `hookNames()` lists them; src/hooks builds caching and interventions on top.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import { attention, type AttentionContext } from './attention.js';
import { isEncoder, type HookedConfig } from './config.js';
import { activation } from './activation.js';
import { blockHooks, hookNames, normHooks } from './hook_names.js';
import { HookPoints, type Interceptor } from './hook_point.js';
import type { KVCache } from './kv_cache.js';
import { linear, mlp } from './mlp.js';
import { norm } from './norm.js';
import { countParams, paramShapes } from './params.js';
import { PackedLinear, packedParamNames, packLayer, type Format16, type Weights16 } from './weights16.js';
import { encoderPositionIds, hasPadding, maskRows, paddedMask, positionIds, type AttentionMaskInput } from './padding.js';
import { rotaryTables, rotaryTablesAt } from './rotary.js';
import { fusedAdd3, fusedKernelsActive, fusedNormOfSum, fusedNormWith, multiOutputActive } from '../backend/webgpu_kernels/index.js';

/** Token ids [batch, pos]: nested arrays, one sequence, or an int32 tensor. */
export type TokenInput = number[][] | number[] | tf.Tensor;

/**
 * Switches for the forward pass's speed-ups, all on by default. They exist so that `headlens bench --ablate`
 * can time each one against the plain path in the same run; switching one off never changes a result
 * beyond float rounding.
 *   cachedWeights  W_Q, W_K, W_V fused into one pre-transposed [d_model, (head + 2·kv_head)·d_head] matrix
 *                  per layer, made on first use and kept until setParams or dispose (skipped for tf.Variable
 *                  parameters, which the trainer updates in place and differentiates through);
 *   blockScopes    a tf.tidy per block, norm, activation function and attention step, so temporaries are
 *                  freed when their step ends rather than when the whole forward does;
 *   fusedMatMul    bias added inside the matmul kernel (tf.fused.matMul) instead of a separate add (one
 *                  kernel launch fewer per linear layer on a GPU; not used on wasm, where it is slower);
 *   lazyHooks      activations that exist only to be hooked (hook_pos_embed's [batch, pos, d_model] copy)
 *                  are made only when a hook or cache asks for them;
 *   fusedKernels   on the webgpu backend, norms, the MLP's activation, rotary, the KV cache's append and attention
 *                  (when nobody asks for scores or patterns; prefills tiled, flash_attention.ts) each run
 *                  as one dispatch of headlens' own WGSL (src/backend/webgpu_kernels) instead of one per tfjs op,
 *                  and where nobody hooks resid_mid or ln2's scale a block's two residual adds are one dispatch.
 *                  Never on other backends, and never while a gradient is recorded (the kernels have none).
 */
export const optimisations = { cachedWeights: true, blockScopes: true, fusedMatMul: true, lazyHooks: true, fusedKernels: true };

export { attentionSlicing, fusedAttentionRows } from './attention.js';

export interface ForwardOptions {
  interceptor?: Interceptor;
  /** Stop before this block and return its resid_pre [batch, pos, d_model] instead of logits. */
  stopAtLayer?: number;
  /**
   * Past keys and values (kv_cache.ts): the tokens given are the positions after the cached ones, at absolute
   * positions cache.length…; they attend to the cached keys too, and the cache is extended with theirs. Every
   * activation then covers only the new positions, except key_pos of hook_attn_scores / hook_pattern, which
   * covers all of them: [batch, head, new_pos, key_pos]. hook_k, hook_v and hook_rot_k see the new positions'
   * keys only. The cache grows only when the forward succeeds; not with stopAtLayer.
   */
  kvCache?: KVCache;
  /**
   * [batch, pos], 1 for a real token and 0 for padding (padding.ts): padded keys are masked out and positions
   * count real tokens only, so each row's real positions compute what that prompt computes alone. With a KV
   * cache it covers the new positions; the cache remembers the mask of the positions it holds.
   */
  attentionMask?: AttentionMaskInput;
  /**
   * 'last': norm and unembed the last position only and return [batch, 1, d_vocab] (decoding, long prompts: a
   * 16K-token prompt's full logits alone would be 16K × d_vocab floats). ln_final's hook points then see that
   * one position. Default 'all'.
   */
  logits?: 'all' | 'last';
  /**
   * Encoders with token-type (segment) embeddings: [batch, pos] of ids below type_vocab_size, e.g. 0 for a pair's
   * first sentence and 1 for its second (toTokens(a, b) on an encoder gives them). Default all 0, as transformers.
   */
  tokenTypeIds?: number[][] | tf.Tensor;
}

/** A padded batch as the forward uses it (padding.ts). */
interface Padding {
  /** Every key position so far (cached and new), 1 real, 0 padding. [batch][key_pos] */
  keyRows: number[][];
  /** The new positions' mask. [batch][pos] */
  rows: number[][];
  /** The new positions' position ids (real tokens counted). [batch][pos] */
  positions: number[][];
}

/**
 * Fused attention input weights of one layer: [d_model, (head + 2·kv_head)·d_head] and [(head + 2·kv_head)·d_head].
 * W is 16-bit (weights16.ts) in a model that keeps 16-bit weights (useWeights16).
 */
export interface QKVWeights {
  W: tf.Tensor2D | PackedLinear;
  b: tf.Tensor1D;
}

/** The weights useWeights16 keeps 16-bit, by layer: the attention's fused QKV and W_O, the MLP's matrices; then W_U. */
function weights16Names(cfg: HookedConfig): string[] {
  const names: string[] = [];
  for (let l = 0; l < cfg.n_layers; l++) {
    names.push(`blocks.${l}.attn.W_Q`, `blocks.${l}.attn.W_K`, `blocks.${l}.attn.W_V`, `blocks.${l}.attn.W_O`);
    if (!cfg.attn_only) names.push(...(cfg.gated_mlp ? ['W_gate', 'W_in', 'W_out'] : ['W_in', 'W_out']).map((w) => `blocks.${l}.mlp.${w}`));
  }
  names.push('unembed.W_U');
  return names;
}

// the forward-order lists of hook names are made from the hook table, which owns every name
export { blockHookNames, hookNames } from './hook_names.js';

export class Transformer {
  readonly cfg: HookedConfig;
  protected params: Map<string, tf.Tensor>;
  /** Weight processing applied so far (weight_processing.ts); empty: the checkpoint as it is. */
  readonly processing: string[] = [];
  /** Per layer, the fused QKV weights made from the current parameters (optimisations.cachedWeights). */
  private qkvCache = new Map<number, { W: tf.Tensor2D; b: tf.Tensor1D }>();
  /** The names of every parameter, in paramShapes order. */
  private readonly names: string[];
  /**
   * 16-bit weights (useWeights16), by name: `blocks.{l}.attn.qkv` (W_Q, W_K, W_V fused as qkvWeights makes them,
   * with their fused bias), `blocks.{l}.attn.W_O` ([head·d_head, d_model]), the MLP matrices, `unembed.W_U`.
   */
  private packed = new Map<string, PackedLinear>();
  private packedQKVBias = new Map<number, tf.Tensor1D>();
  /** float32 copies of 16-bit weights that param() made on request, kept (owned by the model) until released. */
  private float32Copies = new Map<string, tf.Tensor>();
  /** 'f16' or 'bf16' when the linear weights are kept 16-bit on the GPU (useWeights16); null: all float32. */
  weights16: Format16 | null = null;

  /**
   * Takes ownership of `params` (TransformerLens names and shapes, see params.ts). Every expected
   * parameter must be there with the right shape, and nothing else: checked before anything is kept.
   */
  constructor(cfg: HookedConfig, params: Record<string, tf.Tensor>, weights16?: Weights16) {
    this.cfg = cfg;
    const expected = paramShapes(cfg);
    const problems: string[] = [];
    // with 16-bit weights (loading packs them layer by layer), the packed names come packed, not in params
    const packedNames = new Set(weights16 ? [...Array.from({ length: cfg.n_layers }, (_, l) => packedParamNames(cfg, l)).flat(), 'unembed.W_U'] : []);
    if (weights16) {
      for (let l = 0; l < cfg.n_layers; l++) {
        if (!weights16.weights.has(`blocks.${l}.attn.qkv`) || !weights16.qkvBias.has(l)) problems.push(`missing the 16-bit QKV weights of layer ${l}`);
      }
      for (const n of packedNames) if (!/\.W_[QKV]$/.test(n) && !weights16.weights.has(n)) problems.push(`missing the 16-bit ${n}`);
    }
    for (const [name, shape] of Object.entries(expected)) {
      if (packedNames.has(name)) {
        if (params[name]) problems.push(`${name} is given both 16-bit and float32`);
        continue;
      }
      const t = params[name];
      if (!t) problems.push(`missing ${name} [${shape}]`);
      else if (t.shape.join() !== shape.join()) problems.push(`${name} is [${t.shape}], expected [${shape}]`);
    }
    for (const name of Object.keys(params)) if (!(name in expected)) problems.push(`unexpected parameter ${name}`);
    if (problems.length) {
      throw new HeadlensError(`parameters do not fit the config: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? ` (and ${problems.length - 8} more)` : ''}`);
    }
    this.names = Object.keys(expected);
    this.params = new Map(this.names.filter((n) => !packedNames.has(n)).map((n) => [n, params[n].dtype === 'float32' ? params[n] : params[n].toFloat()]));
    if (weights16) {
      this.packed = weights16.weights;
      this.packedQKVBias = weights16.qkvBias;
      this.weights16 = weights16.format;
    }
  }

  /** A model with random weights (normal, std 0.02 by default; norms at 1, biases 0). For tests and benchmarks. */
  static random(cfg: HookedConfig, opts: RandomInit = {}): Transformer {
    return new Transformer(cfg, randomParams(cfg, opts));
  }

  /**
   * A parameter by its TransformerLens name, e.g. `blocks.0.attn.W_Q` [head, d_model, d_head], float32. Owned by
   * the model. A weight the model keeps 16-bit (useWeights16) is unpacked to a float32 copy on the first request
   * and that copy is kept (owned by the model) until releaseFloat32Copies(), setParams or dispose: analyses that
   * read weights (SVD, composition, …) get float32 as always, at 4 bytes a value for each weight they touch.
   */
  param(name: string): tf.Tensor {
    const t = this.params.get(name) ?? this.float32Copies.get(name);
    if (t) return t;
    const made = this.unpackParam(name);
    if (!made) throw new HeadlensError(`no parameter ${name}`, `known: ${this.names.slice(0, 6).join(', ')}, …`);
    const copy = tf.keep(made); // kept: the request may come inside a caller's tidy
    this.float32Copies.set(name, copy);
    return copy;
  }

  paramNames(): string[] {
    return [...this.names];
  }

  /** A 16-bit weight as a new float32 tensor in its TransformerLens shape, or undefined if `name` is not one. */
  private unpackParam(name: string): tf.Tensor | undefined {
    const { d_model: d, n_heads: h, n_key_value_heads: kv, d_head: e } = this.cfg;
    const qkv = /^blocks\.(\d+)\.attn\.W_([QKV])$/.exec(name);
    if (qkv) {
      const W = this.packed.get(`blocks.${qkv[1]}.attn.qkv`);
      if (!W) return undefined;
      const [start, heads] = qkv[2] === 'Q' ? [0, h] : qkv[2] === 'K' ? [h * e, kv] : [(h + kv) * e, kv];
      // [d_model, heads·d_head] columns of the fused matrix → [heads, d_model, d_head]
      return tf.tidy(() => W.unpack().slice([0, start], [d, heads * e]).reshape([d, heads, e]).transpose([1, 0, 2]));
    }
    const W = this.packed.get(name);
    if (!W) return undefined;
    if (/\.attn\.W_O$/.test(name)) return tf.tidy(() => W.unpack().reshape([h, e, d])); // [head, d_head, d_model]
    return W.unpack();
  }

  /** A linear layer's weight as the forward uses it: 16-bit where the model keeps it so, else the parameter. */
  linearWeight(name: string): tf.Tensor2D | PackedLinear {
    return this.packed.get(name) ?? (this.param(name) as tf.Tensor2D);
  }

  /**
   * The tensors that hold the parameters as the model stores them: float32 parameters and, with 16-bit weights,
   * the packed int32 tensors and their fused QKV biases (no float32 copies, no fused float32 QKV). Owned by the model.
   */
  storedTensors(): tf.Tensor[] {
    return [...this.params.values(), ...[...this.packed.values()].map((W) => W.packed), ...this.packedQKVBias.values()];
  }

  /** Frees the float32 copies param() made of 16-bit weights; returns their bytes. */
  releaseFloat32Copies(): number {
    let bytes = 0;
    for (const t of this.float32Copies.values()) {
      bytes += t.size * 4;
      t.dispose();
    }
    this.float32Copies.clear();
    return bytes;
  }

  /**
   * Keeps the linear weights 16-bit on the GPU (webgpu backend only): W_Q, W_K, W_V (fused, as the forward uses
   * them), W_O, the MLP matrices and the unembedding, each packed two values per 32 bits and computed in float32
   * (weights16.ts). Embeddings, norms and biases stay float32. Values are rounded to the format (nearest, ties to
   * even): exact for a checkpoint stored in that format, which is how loadPretrained uses it; on float32 weights it
   * changes them. One weight at a time: its float32 tensor is freed as soon as its packed copy exists.
   * Afterwards param() unpacks on request (see there); setParams on a 16-bit weight makes that weight (for W_Q,
   * W_K, W_V, b_Q, b_K, b_V: the layer's three) float32 again.
   */
  useWeights16(format: Format16): void {
    if (this.weights16) {
      if (this.weights16 === format) return;
      throw new HeadlensError(`this model's weights are already ${this.weights16}`, 'reload the checkpoint to choose another format');
    }
    if (format !== 'f16' && format !== 'bf16') throw new HeadlensError(`useWeights16: '${String(format)}' is not a 16-bit format`, "use 'f16' or 'bf16'");
    if (tf.getBackend() !== 'webgpu') {
      throw new HeadlensError(
        `16-bit weights are kept on the webgpu backend only (running: ${tf.getBackend()}); tfjs has no 16-bit dtype and headlens' packed kernels are WebGPU programs`,
        'run on --backend webgpu, or keep float32 weights (twice the memory)',
      );
    }
    const variables = weights16Names(this.cfg).filter((n) => this.params.get(n) instanceof tf.Variable);
    if (variables.length) throw new HeadlensError(`useWeights16: ${variables[0]} is a tf.Variable (a model being trained)`, 'pack after training, on a model loaded from its saved checkpoint');
    this.releaseFloat32Copies();
    const free = (name: string) => {
      const t = this.params.get(name)!;
      this.params.delete(name);
      // a tensor another parameter still holds (a tied unembedding) is not freed
      if (![...this.params.values()].includes(t)) t.dispose();
    };
    const into: Weights16 = { format, weights: this.packed, qkvBias: this.packedQKVBias };
    for (let l = 0; l < this.cfg.n_layers; l++) {
      packLayer(this.cfg, l, (n) => this.param(n), into); // one layer at a time: its float32 weights go at once
      this.dropQKV(l);
      for (const n of packedParamNames(this.cfg, l)) free(n);
    }
    this.packed.set('unembed.W_U', PackedLinear.pack(this.param('unembed.W_U') as tf.Tensor2D, format));
    free('unembed.W_U');
    this.weights16 = format;
  }

  /** Makes a 16-bit weight float32 again (for setParams), with the rest of its layer's QKV if it is one of them. */
  private unpackForUpdate(name: string): void {
    const attn = /^blocks\.(\d+)\.attn\.[Wb]_[QKV]$/.exec(name);
    if (attn) {
      const l = Number(attn[1]);
      const key = `blocks.${l}.attn.qkv`;
      const W = this.packed.get(key);
      if (!W) return;
      for (const x of ['Q', 'K', 'V']) {
        const n = `blocks.${l}.attn.W_${x}`;
        const t = this.float32Copies.get(n) ?? this.unpackParam(n)!;
        this.float32Copies.delete(n);
        this.params.set(n, t);
      }
      W.dispose();
      this.packed.delete(key);
      this.packedQKVBias.get(l)?.dispose();
      this.packedQKVBias.delete(l);
      return;
    }
    const W = this.packed.get(name);
    if (!W) return;
    this.params.set(name, this.float32Copies.get(name) ?? this.unpackParam(name)!);
    this.float32Copies.delete(name);
    W.dispose();
    this.packed.delete(name);
  }

  /** Replaces parameters (same names, same shapes); the model takes ownership and disposes the old ones. */
  setParams(updates: Record<string, tf.Tensor>): void {
    for (const [name, t] of Object.entries(updates)) {
      this.unpackForUpdate(name);
      const old = this.param(name);
      if (old.shape.join() !== t.shape.join()) {
        throw new HeadlensError(`setParams: ${name} is [${old.shape}], got [${t.shape}]`);
      }
      if (old !== t) old.dispose();
      this.params.set(name, t);
      const attn = /^blocks\.(\d+)\.attn\.[Wb]_[QKV]$/.exec(name);
      if (attn) this.dropQKV(Number(attn[1]));
    }
  }

  /**
   * The fused, pre-transposed QKV weights of layer l, made once and kept (owned by the model) unless a
   * parameter is a tf.Variable: then they are made anew inside the caller's scope, so gradients reach the
   * variables and in-place updates are seen.
   */
  qkvWeights(l: number): QKVWeights {
    const packed = this.packed.get(`blocks.${l}.attn.qkv`);
    if (packed) return { W: packed, b: this.packedQKVBias.get(l)! };
    const cached = this.qkvCache.get(l);
    if (cached) return cached;
    const n = `blocks.${l}.attn`;
    const parts = ['Q', 'K', 'V'].map((x) => [this.param(`${n}.W_${x}`), this.param(`${n}.b_${x}`)] as const);
    const make = (): { W: tf.Tensor2D; b: tf.Tensor1D } => ({
      // [head, d_model, d_head] → [d_model, head·d_head], Q then K then V along the columns
      W: tf.concat(parts.map(([W]) => W.transpose([1, 0, 2]).reshape([this.cfg.d_model, -1])), 1) as tf.Tensor2D,
      b: tf.concat(parts.map(([, b]) => b.reshape([-1])), 0) as tf.Tensor1D,
    });
    if (!optimisations.cachedWeights || parts.some(([W, b]) => W instanceof tf.Variable || b instanceof tf.Variable)) return make();
    const [W, b] = tf.tidy(() => {
      const m = make();
      return [m.W, m.b];
    }) as [tf.Tensor2D, tf.Tensor1D];
    const made = { W: tf.keep(W), b: tf.keep(b) }; // kept: the first forward may run inside a caller's tidy
    this.qkvCache.set(l, made);
    return made;
  }

  private dropQKV(l: number): void {
    const c = this.qkvCache.get(l);
    if (c) tf.dispose([c.W, c.b]);
    this.qkvCache.delete(l);
  }

  /**
   * A norm of the model applied to any residual-shaped tensor [..., d_model]: `ln_final`, `blocks.{l}.ln1` or
   * `blocks.{l}.ln2`. With `scale` ([..., 1], e.g. a cached `hook_scale`) the divisor is that one, frozen, as
   * TransformerLens' apply_ln_to_stack does for linear attributions; without it the norm is recomputed from x.
   * Identity for models without norms. Returns a new tensor (caller owns); no hook point is visited.
   */
  applyNorm(name: string, x: tf.Tensor, opts: { scale?: tf.Tensor } = {}): tf.Tensor {
    const { cfg } = this;
    if (!/^(ln_final|embed\.ln|mlm_head\.ln|blocks\.\d+\.ln[12])$/.test(name)) throw new HeadlensError(`applyNorm: '${name}' is not a norm`, "use 'ln_final', 'blocks.{l}.ln1' or 'blocks.{l}.ln2' (encoders: 'embed.ln', 'mlm_head.ln', no 'ln_final')");
    if (cfg.normalization_type !== null && !/^blocks\./.test(name) && !this.params.has(`${name}.w`)) {
      throw new HeadlensError(`applyNorm: ${cfg.model_name} has no norm '${name}'`, cfg.norm_placement === 'post' ? "a post-LN encoder has 'embed.ln', 'blocks.{l}.ln1', 'blocks.{l}.ln2' and 'mlm_head.ln'" : "use 'ln_final', 'blocks.{l}.ln1' or 'blocks.{l}.ln2'");
    }
    const l = /^blocks\.(\d+)\./.exec(name);
    if (l && Number(l[1]) >= cfg.n_layers) throw new HeadlensError(`applyNorm: layer ${l[1]} is out of range (${cfg.n_layers} layers)`);
    if (x.shape[x.rank - 1] !== cfg.d_model) throw new HeadlensError(`applyNorm: x is [${x.shape}], its last axis must be d_model (${cfg.d_model})`);
    if (cfg.normalization_type === null) return x.clone();
    const [w, b] = this.normParams(name);
    return tf.tidy(() => {
      if (!opts.scale) {
        const lead = x.shape.slice(0, -1).reduce((a, c) => a * c, 1);
        return norm(cfg, x.reshape([1, lead, cfg.d_model]) as tf.Tensor3D, w, b, name, new HookPoints()).reshape(x.shape);
      }
      const centred = cfg.normalization_type === 'LN' ? x.sub(x.mean(-1, true)) : x;
      const out = centred.div(opts.scale).mul(w!); // [..., d_model]; w exists: this model has a norm
      return b ? out.add(b) : out;
    });
  }

  /** The weight and bias of the norm at `prefix` (no weight without a norm; a bias only for LayerNorm). */
  /** A norm left to the 16-bit QKV product's prologue (AttentionContext.prenorm): its parameters and kind. */
  private prenormOf(prefix: string): { w: tf.Tensor; b?: tf.Tensor; eps: number; type: 'LN' | 'RMS' } {
    const [w, b] = this.normParams(prefix);
    return { w: w!, b, eps: this.cfg.eps, type: this.cfg.normalization_type! };
  }

  private normParams(prefix: string): readonly [tf.Tensor | undefined, tf.Tensor | undefined] {
    const type = this.cfg.normalization_type;
    return [type ? this.param(`${prefix}.w`) : undefined, type === 'LN' ? this.param(`${prefix}.b`) : undefined];
  }

  /** x [..., d_model] → logits [..., d_vocab] = x·W_U + b_U, without the final norm (apply it first). Caller owns. */
  unembed(x: tf.Tensor): tf.Tensor {
    const { cfg } = this;
    if (x.shape[x.rank - 1] !== cfg.d_model) throw new HeadlensError(`unembed: x is [${x.shape}], its last axis must be d_model (${cfg.d_model})`);
    return tf.tidy(() => {
      const rows = x.reshape([-1, cfg.d_model]) as tf.Tensor2D;
      const fused = optimisations.fusedMatMul;
      return linear(rows, this.linearWeight('unembed.W_U'), this.param('unembed.b_U'), fused).reshape([...x.shape.slice(0, -1), cfg.d_vocab]);
    });
  }

  /** Block l's MLP on x [batch, pos, d_model] (no norm before it, no hook point visited). Caller owns. */
  applyMlp(l: number, x: tf.Tensor3D): tf.Tensor3D {
    const { cfg } = this;
    if (cfg.attn_only) throw new HeadlensError(`model ${cfg.model_name} is attention-only and has no MLPs`);
    if (!(Number.isInteger(l) && l >= 0 && l < cfg.n_layers)) throw new HeadlensError(`applyMlp: layer ${l} is out of range (${cfg.n_layers} layers)`);
    return tf.tidy(() => mlp(cfg, l, x, (n) => this.param(n), new HookPoints(), false, false, (n) => this.linearWeight(n)));
  }

  /** Parameters as the checkpoint counts them. */
  get nParams(): number {
    return countParams(this.cfg);
  }

  hookNames(opts: { withResult?: boolean } = {}): string[] {
    return hookNames(this.cfg, opts);
  }

  /** Checks token ids and returns them as an int32 tensor [batch, pos] that the caller owns. */
  tokensTensor(tokens: TokenInput): tf.Tensor2D {
    const rows = this.tokenRows(tokens);
    return tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
  }

  /** Checks token ids (vocabulary, equal lengths, n_ctx) and returns them as rows [batch][pos]. */
  tokenRows(tokens: TokenInput): number[][] {
    let rows: number[][];
    if (tokens instanceof tf.Tensor) {
      if (tokens.rank !== 2 && tokens.rank !== 1) {
        throw new HeadlensError(`tokens must be [batch, pos], got a tensor of shape [${tokens.shape}]`);
      }
      const t2 = tokens.rank === 1 ? tokens.reshape([1, -1]) : tokens;
      rows = t2.arraySync() as number[][];
      if (t2 !== tokens) t2.dispose();
    } else {
      rows = tokens.length > 0 && Array.isArray(tokens[0]) ? (tokens as number[][]) : [tokens as number[]];
    }
    const { d_vocab, n_ctx } = this.cfg;
    if (rows.length === 0 || rows[0].length === 0) throw new HeadlensError('no tokens given', 'pass at least one token id');
    const len = rows[0].length;
    rows.forEach((r, i) => {
      if (r.length !== len) {
        throw new HeadlensError(`token rows differ in length (row 0 has ${len}, row ${i} has ${r.length})`, 'pad or trim the rows to one length');
      }
      r.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= d_vocab) {
          throw new HeadlensError(`token id ${id} at [${i}, ${j}] is not in the vocabulary [0, ${d_vocab})`, 'check the tokenizer matches the model');
        }
      });
    });
    if (len > n_ctx) {
      throw new HeadlensError(`sequence of ${len} tokens is longer than the model's context (n_ctx ${n_ctx})`, `shorten it to at most ${n_ctx} tokens`);
    }
    const { positions_after_pad: afterPad, pad_token_id: padId } = this.cfg;
    if (afterPad && padId !== null && len > n_ctx - padId - 1) {
      throw new HeadlensError(`sequence of ${len} tokens is longer than the model's context: RoBERTa's positions start at pad_token_id + 1 (${padId + 1}), so ${n_ctx - padId - 1} tokens fit its ${n_ctx} position embeddings`, `shorten it to at most ${n_ctx - padId - 1} tokens`);
    }
    return rows;
  }

  /**
   * Runs the model. Returns logits [batch, pos, d_vocab] (or the residual stream at `stopAtLayer`),
   * owned by the caller. Every intermediate tensor is freed unless an interceptor kept it.
   */
  forward(tokens: TokenInput, opts: ForwardOptions = {}): tf.Tensor3D {
    const { cfg } = this;
    if (opts.stopAtLayer !== undefined && !(Number.isInteger(opts.stopAtLayer) && opts.stopAtLayer >= 0 && opts.stopAtLayer <= cfg.n_layers)) {
      throw new HeadlensError(`stopAtLayer ${opts.stopAtLayer} is not a layer index`, `use 0..${cfg.n_layers}`);
    }
    const kv = opts.kvCache;
    if (kv && opts.stopAtLayer !== undefined) throw new HeadlensError('forward: stopAtLayer cannot be used with a KV cache', 'the cache needs every layer\'s keys; run the whole model');
    if (kv) refuseEncoder(cfg, 'a KV cache');
    const rows = this.tokenRows(tokens);
    const types = this.tokenTypeRows(opts.tokenTypeIds, rows.length, rows[0].length);
    const ids = tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
    const hp = new HookPoints(opts.interceptor);
    try {
      // the fused path (the test blocks() makes) holds the cache in slabs written in place
      kv?.begin(ids.shape[0], ids.shape[1], cfg.n_ctx, optimisations.fusedKernels && fusedKernelsActive());
      const pad = padding(ids.shape[0], ids.shape[1], opts.attentionMask, kv);
      const out = tf.tidy(() => this.run(ids, hp, opts.stopAtLayer, kv, pad, opts.logits === 'last', rows, types));
      kv?.commit(ids.shape[0], pad?.keyRows);
      return out;
    } catch (e) {
      kv?.discard();
      throw e;
    } finally {
      hp.release();
      ids.dispose();
    }
  }

  /**
   * Runs blocks `layer`…n_layers-1 on a given resid_pre [batch, pos, d_model] (the caller keeps it), skipping
   * the embeddings and earlier blocks: for sweeps whose variants agree up to a layer, such as patching one
   * layer's heads (the patching engine, src/interp/interventions/stacked_runs.ts). Hook points before blocks.{layer}.hook_resid_pre are not visited.
   * Returns logits, or the residual stream at `stopAtLayer`; caller owns it.
   */
  runFrom(layer: number, resid: tf.Tensor3D, opts: ForwardOptions = {}): tf.Tensor3D {
    const { cfg } = this;
    if (!(Number.isInteger(layer) && layer >= 0 && layer <= cfg.n_layers)) {
      throw new HeadlensError(`runFrom: layer ${layer} is not a layer index`, `use 0..${cfg.n_layers}`);
    }
    if (resid.rank !== 3 || resid.shape[2] !== cfg.d_model || resid.shape[1] > cfg.n_ctx) {
      throw new HeadlensError(`runFrom: resid is [${resid.shape}], expected [batch, pos ≤ ${cfg.n_ctx}, ${cfg.d_model}]`);
    }
    if (opts.stopAtLayer !== undefined && !(Number.isInteger(opts.stopAtLayer) && opts.stopAtLayer >= layer && opts.stopAtLayer <= cfg.n_layers)) {
      throw new HeadlensError(`stopAtLayer ${opts.stopAtLayer} is not a layer index from ${layer}`, `use ${layer}..${cfg.n_layers}`);
    }
    if (opts.kvCache) throw new HeadlensError('runFrom: a KV cache cannot be used when starting mid-model', 'the cache needs every layer\'s keys; use forward(tokens, { kvCache })');
    const pad = padding(resid.shape[0], resid.shape[1], opts.attentionMask);
    const hp = new HookPoints(opts.interceptor);
    try {
      return tf.tidy(() => this.blocks(resid, layer, hp, opts.stopAtLayer, undefined, pad));
    } finally {
      hp.release();
    }
  }

  /** Token types checked against the tokens' shape and type_vocab_size, as rows; undefined where the model has none. */
  private tokenTypeRows(types: number[][] | tf.Tensor | undefined, batch: number, pos: number): number[][] | undefined {
    const { cfg } = this;
    if (types === undefined) return cfg.type_vocab_size > 0 ? Array.from({ length: batch }, () => new Array<number>(pos).fill(0)) : undefined;
    if (cfg.type_vocab_size === 0) throw new HeadlensError(`tokenTypeIds given, but ${cfg.model_name} has no token-type embeddings`, 'leave tokenTypeIds out (only BERT-family encoders take them)');
    const rows = types instanceof tf.Tensor ? (types.arraySync() as number[][]) : types;
    if (!Array.isArray(rows) || rows.length !== batch || rows.some((r) => !Array.isArray(r) || r.length !== pos)) {
      throw new HeadlensError(`tokenTypeIds must be [batch, pos] = [${batch}, ${pos}] like the tokens`, 'give one row of token types per token row (toTokens(a, b) returns them)');
    }
    rows.forEach((r, i) =>
      r.forEach((t, j) => {
        if (!Number.isInteger(t) || t < 0 || t >= cfg.type_vocab_size) throw new HeadlensError(`tokenTypeIds[${i}][${j}] is ${t}, outside [0, ${cfg.type_vocab_size})`, 'token types are 0 (first segment) or 1 (second); RoBERTa has only 0');
      }),
    );
    return rows;
  }

  private run(ids: tf.Tensor2D, hp: HookPoints, stopAtLayer?: number, kv?: KVCache, pad?: Padding, lastOnly = false, idRows?: number[][], types?: number[][]): tf.Tensor3D {
    const { cfg } = this;
    const P = (n: string) => this.param(n);
    const [batch, pos] = ids.shape;
    const offset = kv?.length ?? 0; // absolute position of the first token fed
    let x = hp.point('hook_embed', tf.gather(P('embed.W_E'), ids) as tf.Tensor3D); // [batch, pos, d_model]
    if (isEncoder(cfg) && cfg.positional_embedding_type === 'standard' && (pad || cfg.positions_after_pad)) {
      // transformers' position ids, padded positions included (padding.ts)
      const at = encoderPositionIds(idRows ?? (ids.arraySync() as number[][]), pad?.rows, cfg.positions_after_pad, cfg.pad_token_id);
      x = x.add(hp.point('hook_pos_embed', tf.gather(P('pos_embed.W_pos'), tf.tensor2d(at, [batch, pos], 'int32')) as tf.Tensor3D)); // [batch, pos, d_model]
    } else if (cfg.positional_embedding_type === 'standard' && pad) {
      // each row's own positions; 0 at padded positions, as TransformerLens' PosEmbed
      const rows = tf.gather(P('pos_embed.W_pos'), tf.tensor2d(pad.positions, [batch, pos], 'int32')); // [batch, pos, d_model]
      x = x.add(hp.point('hook_pos_embed', rows.mul(tf.tensor3d(pad.rows.flat(), [batch, pos, 1])) as tf.Tensor3D));
    } else if (cfg.positional_embedding_type === 'standard') {
      const posRows = P('pos_embed.W_pos').slice([offset, 0], [pos, cfg.d_model]); // [pos, d_model]
      // broadcast unless someone looks: the [batch, pos, d_model] copy is only made for a hook
      if (!optimisations.lazyHooks || hp.wants('hook_pos_embed')) {
        x = x.add(hp.point('hook_pos_embed', posRows.expandDims(0).tile([batch, 1, 1]) as tf.Tensor3D));
      } else {
        x = x.add(posRows);
      }
    }
    if (types) x = x.add(hp.point('hook_token_type_embed', tf.gather(P('token_type_embed.W_token_type'), tf.tensor2d(types, [batch, pos], 'int32')) as tf.Tensor3D)); // [batch, pos, d_model]
    if (cfg.norm_placement === 'post') x = norm(cfg, x, P('embed.ln.w'), P('embed.ln.b'), 'embed.ln', hp); // BERT's embedding LayerNorm
    return this.blocks(x, 0, hp, stopAtLayer, kv, pad, lastOnly);
  }

  /** Blocks from `first` on, then the final norm and unembedding. x is resid_pre of block `first`. */
  private blocks(x: tf.Tensor3D, first: number, hp: HookPoints, stopAtLayer?: number, kvCache?: KVCache, pad?: Padding, lastOnly = false): tf.Tensor3D {
    const { cfg } = this;
    const P = (n: string) => this.param(n);
    const [batch, pos] = x.shape;
    // not on wasm, whose fused kernel measured 3–12% slower than matmul + add on the forward's shapes
    const fused = optimisations.fusedMatMul && tf.getBackend() !== 'wasm';
    const offset = kvCache?.length ?? 0; // positions already in the cache: the mask and rotation use absolute positions
    // the whole mask [query_pos, key_pos] is made on first use (attention slicing long prompts never asks for it)
    let whole: tf.Tensor2D | tf.Tensor4D | undefined;
    const bidirectional = isEncoder(cfg);
    // fused kernels: checked once per forward (the backend, and whether a gradient is being recorded)
    const kernels = optimisations.fusedKernels && fusedKernelsActive();
    let keyMask: tf.Tensor2D | undefined; // a padded batch's key mask [batch, key_pos] for the fused attention
    const keyMaskOf = () => (keyMask ??= tf.keep(tf.tensor2d(pad!.keyRows, [batch, pad!.keyRows[0].length])));
    const mask = () => {
      if (whole) return whole;
      // encoders: every key may be attended to, only padded ones are masked
      const causal = bidirectional ? tf.zeros([pos, offset + pos]) as tf.Tensor2D : causalMask(pos, cfg.sliding_window, offset);
      // a padded batch: padded keys masked per row (padding.ts)
      whole = tf.keep(pad ? paddedMask(causal, pad.keyRows) : causal);
      if (pad) causal.dispose();
      return whole;
    };
    const causalRows = (rows: number[]) => (bidirectional ? (tf.zeros([rows.length, offset + pos]) as tf.Tensor2D) : causalMaskRows(rows, offset + pos, cfg.sliding_window, offset));
    // each row's rotary positions count its real tokens in a padded batch (padding.ts)
    const rotary = cfg.rotary_dim ? (pad ? rotaryTablesAt(cfg, pad.positions) : rotaryTables(cfg, pos, offset)) : {};
    const ctx = { mask, causalRows, padded: pad !== undefined, fused, kvCache, ...rotary, ...(kernels ? { kernels: { keyMask: keyMaskOf } } : {}) };
    try {
      return this.blocksWith(x, first, hp, ctx, stopAtLayer, lastOnly);
    } finally {
      whole?.dispose();
      keyMask?.dispose();
    }
  }

  private blocksWith(x: tf.Tensor3D, first: number, hp: HookPoints, ctx: Omit<AttentionContext, 'qkv' | 'scoped'>, stopAtLayer: number | undefined, lastOnly: boolean): tf.Tensor3D {
    const { cfg } = this;
    const P = (n: string) => this.param(n);
    const [batch, pos] = x.shape;
    const fused = ctx.fused ?? false;
    const kernels = ctx.kernels !== undefined;
    const W = (n: string) => this.linearWeight(n);
    // a norm's temporaries (centred, squared, …) freed as soon as it returns
    const readOnlyOrNone = (name: string) => !hp.wants(name) || hp.readsOnly(name);
    const ln = (x: tf.Tensor3D, p: string) => (optimisations.blockScopes ? tf.tidy(() => norm(cfg, x, ...this.normParams(p), p, hp, kernels)) : norm(cfg, x, ...this.normParams(p), p, hp, kernels));
    const block = (l: number, x: tf.Tensor3D): tf.Tensor3D => {
      const b = `blocks.${l}`; // the norms' prefix: their parameters and hook points are named under it
      const H = blockHooks(l);
      // 16-bit QKV weights exist only fused: the model uses them whatever optimisations.cachedWeights says
      const qkv = optimisations.cachedWeights || this.packed.has(`${b}.attn.qkv`) ? this.qkvWeights(l) : undefined;
      const W_O16 = this.packed.get(`${b}.attn.W_O`);
      const resid = hp.point(H['hook_resid_pre'], x);
      if (cfg.norm_placement === 'post') {
        // BERT (post-LN): each sublayer's residual sum is normalised, and ln2's output is the block's output
        const attnOut = hp.point(H['hook_attn_out'], attention(cfg, l, resid, P, hp, { ...ctx, qkv, scoped: optimisations.blockScopes }));
        const mid = hp.point(H['hook_resid_mid'], resid.add(attnOut) as tf.Tensor3D);
        const normMid = ln(mid, `${b}.ln1`);
        const mlpOut = hp.point(H['hook_mlp_out'], mlp(cfg, l, normMid, P, hp, fused, optimisations.blockScopes));
        const post = hp.point(H['hook_resid_post'], normMid.add(mlpOut) as tf.Tensor3D);
        return hp.point(H['hook_normalized_resid_post'], ln(post, `${b}.ln2`));
      }
      // ln1 left to attention where nobody hooks it and the QKV weights are 16-bit: the packed product computes it
      const ln1 = normHooks(`${b}.ln1`);
      const leaveLn1 = kernels && cfg.normalization_type !== null && this.packed.has(`${b}.attn.qkv`) && !hp.wants(ln1.normalized) && !hp.wants(ln1.scale);
      const prenorm = leaveLn1 ? this.prenormOf(`${b}.ln1`) : undefined;
      const attnIn = leaveLn1 ? resid : ln(resid, `${b}.ln1`);
      const attnOut = hp.point(H['hook_attn_out'], attention(cfg, l, attnIn, P, hp, { ...ctx, qkv, W_O16, scoped: optimisations.blockScopes, prenorm }));
      if (cfg.attn_only) {
        return hp.point(H['hook_resid_post'], resid.add(attnOut) as tf.Tensor3D);
      } else if (cfg.parallel_attn_mlp) {
        const normed = ln(resid, `${b}.ln2`);
        // nothing reads mlp_out: the MLP adds the residual stream itself (with 16-bit weights, in its last product)
        if (!hp.wants(H['hook_mlp_out'])) return hp.point(H['hook_resid_post'], mlp(cfg, l, normed, P, hp, fused, optimisations.blockScopes, W, kernels, [resid, attnOut]));
        const mlpOut = hp.point(H['hook_mlp_out'], mlp(cfg, l, normed, P, hp, fused, optimisations.blockScopes, W, kernels));
        return hp.point(H['hook_resid_post'], (kernels ? fusedAdd3(resid, attnOut, mlpOut) : resid.add(attnOut).add(mlpOut)) as tf.Tensor3D);
      } else if (
        kernels && cfg.normalization_type !== null && readOnlyOrNone(H['hook_resid_mid']) && readOnlyOrNone(normHooks(`${b}.ln2`).scale) &&
        (multiOutputActive() || (!hp.wants(H['hook_resid_mid']) && !hp.wants(normHooks(`${b}.ln2`).scale)))
      ) {
        // ln2 normalises resid + attn_out as it reads them, and the block's output is (resid + attn_out) + mlp_out in
        // one dispatch, rounded as the two adds would be. resid_mid and ln2's scale are made only for a listener that
        // just reads them (a cache), written by the norm's dispatch beside its output
        const ln2 = normHooks(`${b}.ln2`);
        const [w, bias] = this.normParams(`${b}.ln2`);
        const want = { sum: hp.wants(H['hook_resid_mid']), scale: hp.wants(ln2.scale) };
        let normalized: tf.Tensor;
        if (want.sum || want.scale) {
          const made = fusedNormWith(resid, attnOut, w!, bias, cfg.eps, cfg.normalization_type, want);
          if (made.sum) hp.point(H['hook_resid_mid'], made.sum as tf.Tensor3D);
          if (made.scale) hp.point(ln2.scale, made.scale);
          normalized = made.normalized;
        } else if (!hp.wants(ln2.normalized) && !hp.wants(H['hook_mlp_out'])) {
          // nobody looks at ln2 or mlp_out: the MLP normalises resid + attn_out itself (in its gated product, with
          // 16-bit weights at decode-sized rows) and adds the residual stream
          const prenorm = { addend: attnOut, w: w!, b: bias, eps: cfg.eps, type: cfg.normalization_type! };
          return hp.point(H['hook_resid_post'], mlp(cfg, l, resid, P, hp, fused, optimisations.blockScopes, W, kernels, [resid, attnOut], prenorm));
        } else normalized = fusedNormOfSum(resid, attnOut, w!, bias, cfg.eps, cfg.normalization_type);
        const normed = hp.point(ln2.normalized, normalized as tf.Tensor3D);
        if (!hp.wants(H['hook_mlp_out'])) return hp.point(H['hook_resid_post'], mlp(cfg, l, normed, P, hp, fused, optimisations.blockScopes, W, kernels, [resid, attnOut]));
        const mlpOut = hp.point(H['hook_mlp_out'], mlp(cfg, l, normed, P, hp, fused, optimisations.blockScopes, W, kernels));
        return hp.point(H['hook_resid_post'], fusedAdd3(resid, attnOut, mlpOut) as tf.Tensor3D);
      } else {
        const mid = hp.point(H['hook_resid_mid'], resid.add(attnOut) as tf.Tensor3D);
        const mlpOut = hp.point(H['hook_mlp_out'], mlp(cfg, l, ln(mid, `${b}.ln2`), P, hp, fused, optimisations.blockScopes, W, kernels));
        return hp.point(H['hook_resid_post'], mid.add(mlpOut) as tf.Tensor3D);
      }
    };
    // tensors made from here on have ids from this probe's on
    const probe = tf.scalar(0);
    const firstId = probe.id;
    probe.dispose();
    for (let l = first; l < cfg.n_layers; l++) {
      if (stopAtLayer === l) return x.clone(); // a new handle: x may be a tensor a hook or cache owns
      const input = x;
      // a block's temporaries die with its scope; what a hook or cache kept, and the block's output, live on
      x = optimisations.blockScopes ? tf.tidy(() => block(l, input)) : block(l, input);
      // the previous block's output, once read, is freed now rather than with the whole forward (n_layers residual
      // streams alive at once: 8 GiB for the llama-7b shape at 16K tokens), unless it is not ours to free: the
      // caller's input, a tensor a hook kept (HookPoints keeps what hooks saw) or handed in from outside
      if (l > first && input !== x && !input.kept && !input.isDisposed && input.id >= firstId) input.dispose();
    }
    if (stopAtLayer === cfg.n_layers) return x.clone();
    const rows = lastOnly ? 1 : pos;
    const last = lastOnly ? (x.slice([0, pos - 1, 0], [batch, 1, cfg.d_model]) as tf.Tensor3D) : x;
    let final = cfg.norm_placement === 'post' ? last : ln(last, 'ln_final');
    if (cfg.mlm_head) {
      // the masked-LM head's transform: dense, activation, LayerNorm (transformers' BertPredictionHeadTransform)
      const dense = linear(final.reshape([batch * rows, cfg.d_model]) as tf.Tensor2D, P('mlm_head.W') as tf.Tensor2D, P('mlm_head.b'), fused);
      final = ln(activation(cfg.act_fn, dense).reshape([batch, rows, cfg.d_model]) as tf.Tensor3D, 'mlm_head.ln');
    }
    // fused even on wasm: a separate bias add would need a second [batch·pos, d_vocab] buffer, the largest of the run
    const logits = linear(final.reshape([batch * rows, cfg.d_model]) as tf.Tensor2D, W('unembed.W_U'), P('unembed.b_U'), optimisations.fusedMatMul);
    return logits.reshape([batch, rows, cfg.d_vocab]) as tf.Tensor3D;
  }

  dispose(): void {
    for (const l of [...this.qkvCache.keys()]) this.dropQKV(l);
    this.releaseFloat32Copies();
    for (const W of this.packed.values()) W.dispose();
    this.packed.clear();
    tf.dispose([...this.packedQKVBias.values()]);
    this.packedQKVBias.clear();
    const seen = new Set<tf.Tensor>();
    for (const t of this.params.values()) if (!seen.has(t)) (seen.add(t), t.dispose());
    this.params.clear();
  }
}

/** Refuses what only decoders can do (a KV cache, generate, next-token loss) on an encoder, saying why. */
export function refuseEncoder(cfg: HookedConfig, what: string): void {
  if (!isEncoder(cfg)) return;
  throw new HeadlensError(
    `${cfg.model_name} is an encoder (bidirectional attention, ${cfg.original_architecture}): ${what} needs a causal decoder`,
    'run the whole sequence with forward / runWithCache / runWithHooks (masked-LM logits at every position)',
  );
}

/**
 * The padding of a forward: the mask given for the new positions, after the mask the KV cache keeps for the
 * positions it holds. Undefined where nothing is padding (the plain path, bit for bit).
 */
function padding(batch: number, pos: number, mask: AttentionMaskInput | undefined, kv?: KVCache): Padding | undefined {
  const rows = mask === undefined ? undefined : maskRows(mask, batch, pos);
  const past = kv?.mask;
  if (!past && !(rows && hasPadding(rows))) return undefined;
  const held = kv?.length ?? 0;
  const newRows = rows ?? Array.from({ length: batch }, () => new Array<number>(pos).fill(1));
  const keyRows = newRows.map((r, b) => [...(past ? past[b] : new Array<number>(held).fill(1)), ...r]);
  return { keyRows, rows: newRows, positions: positionIds(keyRows, pos) };
}

/**
 * 0 where key ≤ query (and within the sliding window, if any), -Infinity elsewhere. [query_pos, key_pos]
 * With `offset` positions already cached, the queries are the positions offset…offset+pos-1 and the keys
 * 0…offset+pos-1: [pos, offset + pos], distances measured between absolute positions.
 */
/**
 * Rows of the causal mask, made on the device: for each query (a new-position index; its absolute position is
 * offset + index) 0 where it may attend and −Infinity elsewhere, over `keys` key positions. [rows, keys]
 */
export function causalMaskRows(rows: number[], keys: number, window: number | null, offset = 0): tf.Tensor2D {
  return tf.tidy(() => {
    const q = tf.tensor2d(rows.map((r) => r + offset), [rows.length, 1], 'int32');
    const k = tf.range(0, keys, 1, 'int32').reshape([1, keys]);
    let ok = tf.lessEqual(k, q);
    if (window !== null) ok = tf.logicalAnd(ok, tf.less(tf.sub(q, k), window));
    return tf.where(ok, tf.zeros([rows.length, keys]), tf.fill([rows.length, keys], -Infinity)) as tf.Tensor2D;
  });
}

export function causalMask(pos: number, window: number | null, offset = 0): tf.Tensor2D {
  const keys = offset + pos;
  const m = new Float32Array(pos * keys);
  for (let i = 0; i < pos; i++) {
    const q = offset + i;
    for (let k = 0; k < keys; k++) {
      m[i * keys + k] = k <= q && (window === null || q - k < window) ? 0 : -Infinity;
    }
  }
  return tf.tensor2d(m, [pos, keys]);
}

/** How random weights are drawn (Transformer.random). */
export interface RandomInit {
  seed?: number;
  /** Standard deviation of each weight (default 0.02); norm weights are 1 and biases 0. */
  std?: number;
  /**
   * Draw each weight matrix as A·B / √r with A [rows, r] and B [r, cols] standard normal: entries with the
   * given std, made on the backend by one matmul. tfjs draws normals in JavaScript (about 7M a second here),
   * so a 7B-parameter shape would take minutes to draw in full; benchmarks of real shapes use r = 64. The
   * weights are then of rank r, which changes no timing and no memory use.
   */
  lowRank?: number;
}

function lowRankNormal(shape: number[], std: number, r: number, seed: number): tf.Tensor {
  const cols = shape[shape.length - 1];
  const rows = shape.reduce((a, b) => a * b, 1) / cols;
  return tf.tidy(() => {
    const a = tf.randomNormal([rows, r], 0, 1, 'float32', seed);
    const b = tf.randomNormal([r, cols], 0, std / Math.sqrt(r), 'float32', seed + 1);
    return tf.matMul(a, b).reshape(shape);
  });
}

/**
 * tfjs' random ops take a seed of 0 for "no seed" (`seed ? seed : Math.random()`), so seed 0 is mapped to
 * another fixed value; every other seed is passed as it is (the toy zoo's recipes were trained with those).
 */
function tfjsSeed(seed: number): number {
  return seed === 0 ? 0x9e3779b9 : seed;
}

/** A seeded random parameter set: a small normal everywhere, norms at 1, biases at 0. */
export function randomParams(cfg: HookedConfig, opts: RandomInit = {}): Record<string, tf.Tensor> {
  const std = opts.std ?? 0.02;
  let seed = opts.seed ?? 0;
  const out: Record<string, tf.Tensor> = {};
  for (const [name, shape] of Object.entries(paramShapes(cfg))) {
    const leaf = name.slice(name.lastIndexOf('.') + 1);
    if (leaf === 'w') out[name] = tf.ones(shape);
    else if (leaf.startsWith('b')) out[name] = tf.zeros(shape);
    else if (opts.lowRank) out[name] = lowRankNormal(shape, std, opts.lowRank, tfjsSeed(seed++));
    else out[name] = tf.randomNormal(shape, 0, std, 'float32', tfjsSeed(seed++));
  }
  if (cfg.tie_word_embeddings) {
    out['unembed.W_U'].dispose();
    out['unembed.W_U'] = out['embed.W_E'].transpose();
  }
  return out;
}
