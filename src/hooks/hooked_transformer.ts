/**
 * HookedTransformer: the model with TransformerLens' ways in. `runWithCache` keeps named activations,
 * `runWithHooks` runs functions at hook points that may replace an activation (patching, ablation).
 * Hooks given to a run are removed when it ends, also when one throws; `addHook` keeps one across runs
 * until `resetHooks()`. `generate` decodes with a KV cache, hooks applied at every step (generate.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { sharedHandle } from '../util/handles.js';
import { HeadlensError } from '../errors.js';
import { isEncoder, type HookedConfig } from '../model/config.js';
import type { Interceptor } from '../model/hook_point.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import type { KVCache } from '../model/kv_cache.js';
import { maskRows, type AttentionMaskInput } from '../model/padding.js';
import { refuseEncoder, Transformer, type ForwardOptions, type RandomInit, type TokenInput } from '../model/transformer.js';
import { hookAxes, layerOf, nearest } from './act_name.js';
import { ActivationCache } from './activation_cache.js';
import { generate, generateAsync, type GenerateOptions, type GenerateResult } from './generate.js';

export interface HookContext {
  name: string;
  /** The block index, or undefined for embeddings and the final norm. */
  layer: number | undefined;
}

/** A hook: sees an activation, returns a replacement of the same shape or nothing. */
export type HookFn = (act: tf.Tensor, ctx: HookContext) => tf.Tensor | void;
export type HookFilter = string | ((name: string) => boolean);
export type FwdHook = [HookFilter, HookFn];

/** Which activations to keep: 'all' (every hook point but attn.hook_result), a list, or a predicate. */
export type NamesFilter = 'all' | string[] | ((name: string) => boolean);

export interface RunOptions {
  fwdHooks?: FwdHook[];
  stopAtLayer?: number;
  /** 'last': logits of the last position only, [batch, 1, d_vocab] (see ForwardOptions.logits). */
  logits?: 'all' | 'last';
  /** Past keys and values: the tokens given continue the cached sequence, see ForwardOptions.kvCache. */
  kvCache?: KVCache;
  /** [batch, pos], 1 = real token, 0 = padding: a batch of unequal lengths (toTokens(texts, { padding })). */
  attentionMask?: AttentionMaskInput;
  /** Encoders: token types (segments) [batch, pos], default 0 (see ForwardOptions.tokenTypeIds). */
  tokenTypeIds?: number[][] | tf.Tensor;
}

/**
 * Which query rows runWithCache keeps of hook_attn_scores and hook_pattern: 'last' (the final position, what
 * decoding reads) or a list of query positions, in that order. The cached tensor is then [batch, head, rows,
 * key_pos] instead of [batch, head, query_pos, key_pos]. On the tfjs path the forward still computes each
 * layer's full scores (no fused attention kernel yet), but only one layer's at a time: the cache keeps just
 * the rows, so a long prompt never holds [head, pos, pos] for every layer.
 */
export type PatternRows = number[] | 'last';

/** A sentence pair encoded for an encoder: ids [1, pos] and token types [1, pos]. */
export interface PairTokens {
  tokens: number[][];
  tokenTypeIds: number[][];
}

/** A batch of texts padded to one length: ids and the mask that says which are real (1) and which padding (0). */
export interface PaddedTokens {
  /** [batch, pos] */
  tokens: number[][];
  /** [batch, pos], 1 = real token, 0 = padding */
  attentionMask: number[][];
}

export interface LossOptions {
  /** The loss at each position, [batch, pos − 1], instead of the mean. */
  perToken?: boolean;
  attentionMask?: AttentionMaskInput;
  fwdHooks?: FwdHook[];
}

export interface CacheOptions extends RunOptions {
  names?: NamesFilter;
  /** Keep only these query rows of hook_attn_scores / hook_pattern (default: all). */
  patternRows?: PatternRows;
}

export class HookedTransformer extends Transformer {
  private permanent: FwdHook[] = [];
  /** The tokenizer loaded with the model (tokenizer.json), if the folder had one. */
  tokenizer?: TextTokenizer;

  /**
   * Text → token ids [batch, pos], as the tokenizer.json encodes it, with the config's BOS first when
   * `prependBos` (TransformerLens' prepend_bos). The default, as TransformerLens: BOS first whenever the
   * config's bos_token_id is inside the vocabulary (`bosToken()`), none otherwise (no error: tiny checkpoints
   * keep GPT-2's 50256 with a few hundred tokens). A tokenizer that already starts its encoding with BOS gets
   * no second one. Texts of different lengths need `padding`: then `{ tokens, attentionMask }` comes back,
   * each row padded on that side (see padding.ts for what the forward does with the mask).
   */
  toTokens(text: string | string[], opts?: { prependBos?: boolean; padding?: undefined }): number[][];
  toTokens(text: string | string[], opts: { prependBos?: boolean; padding: 'left' | 'right' }): PaddedTokens;
  /**
   * A sentence pair for an encoder, joined by the tokenizer's post-processor ([CLS] a [SEP] b [SEP]), with its
   * token types (0 for a, 1 for b; all 0 where the model has one token type, as RoBERTa, whatever the tokenizer
   * says, as transformers' RobertaTokenizer). Pass `tokenTypeIds` on to forward / runWithCache / runWithHooks.
   */
  toTokens(textA: string, textB: string): PairTokens;
  toTokens(text: string | string[], opts: string | { prependBos?: boolean; padding?: 'left' | 'right' } = {}): number[][] | PaddedTokens | PairTokens {
    if (typeof opts === 'string') return this.encodePair(text, opts);
    const rows = (Array.isArray(text) ? text : [text]).map((t) => this.encode(t, opts.prependBos));
    if (opts.padding !== undefined) return this.pad(rows, opts.padding);
    if (rows.some((r) => r.length !== rows[0].length)) {
      throw new HeadlensError(`texts encode to different lengths (${rows.map((r) => r.length).join(', ')})`, "pad them: toTokens(texts, { padding: 'right' }) returns { tokens, attentionMask } for runWithCache(tokens, { attentionMask })");
    }
    return rows;
  }

  private encodePair(a: string | string[], b: string): PairTokens {
    const tok = this.requireTokenizer();
    if (typeof a !== 'string') throw new HeadlensError('toTokens(a, b): a sentence pair takes two texts', 'pass two strings; encode several pairs one at a time');
    if (!tok.encodePair) throw new HeadlensError(`toTokens(a, b): the tokenizer of ${this.cfg.model_name} cannot encode sentence pairs`, 'load a tokenizer.json with a post-processor');
    const { ids, typeIds } = tok.encodePair(a, b);
    const types = this.cfg.type_vocab_size > 1 ? typeIds : ids.map(() => 0);
    return { tokens: [ids], tokenTypeIds: [types] };
  }

  /**
   * The BOS id that toTokens prepends by default: the config's bos_token_id if it is inside the vocabulary,
   * else null.
   */
  bosToken(): number | null {
    const b = this.cfg.bos_token_id;
    return b !== null && b !== undefined && b < this.cfg.d_vocab ? b : null;
  }

  /** One text's ids, BOS first if asked (default: when bosToken() exists). */
  private encode(text: string, prependBos: boolean | undefined): number[] {
    const tok = this.requireTokenizer();
    const bos = this.bosToken();
    if (prependBos && bos === null) {
      const declared = this.cfg.bos_token_id;
      const why = declared === null || declared === undefined ? 'has no bos_token_id in its config' : `has bos_token_id ${declared}, outside its ${this.cfg.d_vocab}-token vocabulary`;
      throw new HeadlensError(`prependBos: ${this.cfg.model_name} ${why}`, 'encode without prependBos, or set bos_token_id in config.json');
    }
    const ids = tok.encode(text);
    return (prependBos ?? bos !== null) && ids[0] !== bos ? [bos as number, ...ids] : ids;
  }

  /**
   * Rows of unequal length → a rectangle and its mask. Padding ids are EOS (TransformerLens pads GPT-2 with it), else
   * BOS, else 0; encoders pad with their pad_token_id (RoBERTa's positions skip it).
   */
  private pad(rows: number[][], side: 'left' | 'right'): PaddedTokens {
    if (side !== 'left' && side !== 'right') throw new HeadlensError(`padding must be 'left' or 'right', got ${JSON.stringify(side)}`);
    const { eos_token_id: eos, d_vocab, pad_token_id: padId } = this.cfg;
    const id = isEncoder(this.cfg) && padId !== null && padId < d_vocab ? padId : eos !== null && eos < d_vocab ? eos : (this.bosToken() ?? 0);
    const len = Math.max(...rows.map((r) => r.length));
    const fill = (r: number[], x: number) => new Array<number>(len - r.length).fill(x);
    return {
      tokens: rows.map((r) => (side === 'right' ? [...r, ...fill(r, id)] : [...fill(r, id), ...r])),
      attentionMask: rows.map((r) => (side === 'right' ? [...r.map(() => 1), ...fill(r, 0)] : [...fill(r, 0), ...r.map(() => 1)])),
    };
  }

  /**
   * One string per token (TransformerLens' to_str_tokens): each id decoded on its own, so " Mary" keeps its
   * space. Text is encoded as toTokens encodes it (BOS first by default); ids are taken as they are. A list of
   * texts, or rows of ids, gives one list per row.
   */
  toStrTokens(input: string | number[], opts?: { prependBos?: boolean }): string[];
  toStrTokens(input: string[] | number[][] | tf.Tensor, opts?: { prependBos?: boolean }): string[][];
  toStrTokens(input: string | string[] | number[] | number[][] | tf.Tensor, opts: { prependBos?: boolean } = {}): string[] | string[][] {
    const tok = this.requireTokenizer();
    const strs = (ids: number[]) => ids.map((id) => tok.decode([id]));
    if (typeof input === 'string') return strs(this.encode(input, opts.prependBos));
    if (input instanceof tf.Tensor) {
      if (input.rank !== 1 && input.rank !== 2) throw new HeadlensError(`toStrTokens: a tensor of ids must be [pos] or [batch, pos], got [${input.shape}]`);
      const ids = input.arraySync() as number[] | number[][];
      return input.rank === 1 ? [strs(ids as number[])] : (ids as number[][]).map(strs);
    }
    if (input.length > 0 && typeof input[0] === 'string') return (input as string[]).map((t) => strs(this.encode(t, opts.prependBos)));
    if (input.length > 0 && Array.isArray(input[0])) return (input as number[][]).map(strs);
    return strs(input as number[]);
  }

  /**
   * The id of a text that is exactly one token (TransformerLens' to_single_token), without BOS or what the
   * tokenizer's post-processor adds ([CLS] / [SEP]). A text that is
   * several tokens, or none, is an error that shows how it splits.
   */
  toSingleToken(text: string): number {
    const tok = this.requireTokenizer();
    const ids = tok.encode(text, { addSpecialTokens: false }); // an encoder's [CLS] / [SEP] are not part of the text
    if (ids.length !== 1) {
      const parts = ids.map((id) => JSON.stringify(tok.decode([id]))).join(' + ');
      throw new HeadlensError(
        `toSingleToken: ${JSON.stringify(text)} is ${ids.length} tokens${ids.length ? ` (${parts}; ids ${ids.join(', ')})` : ''}, not one`,
        'pass text that is one token (often with its leading space, e.g. " Mary"), or use the id',
      );
    }
    return ids[0];
  }

  /** Token ids → text (TransformerLens' to_string; `toString` is JavaScript's own, so headlens names it toText). */
  toText(ids: number[]): string {
    return this.requireTokenizer().decode(ids);
  }

  /** One label per token, `(i) token`, for axes of pictures. */
  tokenLabels(ids: number[]): string[] {
    return ids.map((id, i) => `(${i}) ${this.tokenizer ? this.tokenizer.tokenText(id) : id}`);
  }

  /**
   * Next-token cross-entropy (TransformerLens' loss, `model(tokens, return_type='loss')`): the mean over every
   * predicted position, a scalar, or with `perToken` the loss at each [batch, pos − 1] (position i predicting
   * token i + 1). With `attentionMask`, a position counts only where it and the next token are real (0 in
   * perToken elsewhere), as TransformerLens. Hooks of this call and addHook's apply. Caller owns the tensor.
   */
  loss(tokens: TokenInput, opts: LossOptions & { perToken: true }): tf.Tensor2D;
  loss(tokens: TokenInput, opts?: LossOptions): tf.Scalar;
  loss(tokens: TokenInput, opts: LossOptions = {}): tf.Tensor {
    refuseEncoder(this.cfg, 'the next-token loss');
    const rows = this.tokenRows(tokens);
    if (rows[0].length < 2) throw new HeadlensError('loss: the tokens are one position long, so nothing is predicted', 'pass at least two tokens per row');
    const logits = this.runWithHooks(rows, { fwdHooks: opts.fwdHooks, attentionMask: opts.attentionMask });
    try {
      return nextTokenLoss(logits, rows, { perToken: opts.perToken, attentionMask: opts.attentionMask === undefined ? undefined : maskRows(opts.attentionMask, rows.length, rows[0].length) });
    } finally {
      logits.dispose();
    }
  }

  private requireTokenizer(): TextTokenizer {
    if (!this.tokenizer) throw new HeadlensError(`model ${this.cfg.model_name} has no tokenizer`, 'its folder needs a tokenizer.json, or pass token ids');
    return this.tokenizer;
  }

  static override random(cfg: HookedConfig, opts: RandomInit = {}): HookedTransformer {
    const base = Transformer.random(cfg, opts);
    return HookedTransformer.from(base);
  }

  /** Wraps a plain Transformer, taking over its parameters. */
  static from(t: Transformer): HookedTransformer {
    const params: Record<string, tf.Tensor> = {};
    for (const n of t.paramNames()) params[n] = t.param(n);
    return new HookedTransformer(t.cfg, params);
  }

  /** Adds a hook that stays for later runs until resetHooks(). */
  addHook(filter: HookFilter, fn: HookFn): void {
    this.checkFilters([[filter, fn]]);
    this.permanent.push([filter, fn]);
  }

  resetHooks(): void {
    this.permanent = [];
  }

  /** A plain run; hooks added with addHook apply here too, as in TransformerLens. */
  override forward(tokens: TokenInput, opts: ForwardOptions = {}): tf.Tensor3D {
    if (opts.interceptor || this.permanent.length === 0) return super.forward(tokens, opts);
    return super.forward(tokens, { ...opts, interceptor: interceptor(this.permanent) });
  }

  /** Runs with hooks for this call only; returns logits [batch, pos, d_vocab] (caller owns). */
  runWithHooks(tokens: TokenInput, opts: RunOptions = {}): tf.Tensor3D {
    const hooks = [...this.permanent, ...(opts.fwdHooks ?? [])];
    this.checkFilters(hooks);
    return this.forward(tokens, { interceptor: interceptor(hooks), stopAtLayer: opts.stopAtLayer, kvCache: opts.kvCache, attentionMask: opts.attentionMask, logits: opts.logits, tokenTypeIds: opts.tokenTypeIds });
  }

  /**
   * Runs blocks `layer`…n_layers−1 on a given resid_pre [batch, pos, d_model] (the caller keeps it), with hooks
   * for this call and addHook's: for sweeps whose variants agree up to a layer (the patching engine starts each
   * variant there). Hook points before blocks.{layer}.hook_resid_pre are not visited. Returns logits, or the
   * residual stream at `stopAtLayer`; caller owns it.
   */
  runWithHooksFrom(layer: number, resid: tf.Tensor3D, opts: RunOptions = {}): tf.Tensor3D {
    if (opts.kvCache) throw new HeadlensError('runWithHooksFrom: a KV cache cannot be used when starting mid-model', 'the cache needs every layer\'s keys; use runWithHooks(tokens, { kvCache })');
    const hooks = [...this.permanent, ...(opts.fwdHooks ?? [])];
    this.checkFilters(hooks);
    return this.runFrom(layer, resid, { interceptor: interceptor(hooks), stopAtLayer: opts.stopAtLayer, attentionMask: opts.attentionMask });
  }

  /** Whether a hook added with addHook applies at `name`. */
  hasPermanentHook(name: string): boolean {
    return interceptor(this.permanent).wants(name);
  }

  /**
   * Runs and keeps the named activations (after any hook of this run changed them).
   * Returns logits and a cache; the caller owns both and disposes them.
   */
  runWithCache(tokens: TokenInput, opts: CacheOptions = {}): { logits: tf.Tensor3D; cache: ActivationCache } {
    const hooks = [...this.permanent, ...(opts.fwdHooks ?? [])];
    this.checkFilters(hooks);
    const keep = this.namesPredicate(opts.names ?? 'all');
    const rows = opts.patternRows === undefined ? undefined : checkPatternRows(opts.patternRows);
    const acts = new Map<string, tf.Tensor>();
    const base = interceptor(hooks);
    const withCache: Interceptor = {
      wants: (n) => keep(n) || base.wants(n),
      // where no hook of this run listens, the cache only reads: the forward may free the activation with its block
      readOnly: (n) => !base.wants(n),
      call: (n, act) => {
        const out = base.wants(n) ? base.call(n, act) : act;
        // the cache's own handle: `out` may be the caller's tensor or another cache's (patching), and one
        // tensor can sit at two points (resid_post of l is resid_pre of l+1). A second handle on the same data
        // (sharedHandle: what a same-shape reshape gives, without the kernel call); clone() copies the data on wasm
        if (keep(n)) acts.set(n, tf.keep(rows && isPerQuery(n) ? queryRows(n, out, rows) : sharedHandle(out)));
        return out;
      },
      // long contexts: the attention may compute only the rows kept (attention.ts); checked as queryRows checks them
      queryRows: (n) => (rows && isPerQuery(n) && keep(n) ? rows : undefined),
      callRows: (n, act) => {
        acts.set(n, tf.keep(sharedHandle(act)));
      },
    };
    try {
      const logits = this.forward(tokens, { interceptor: withCache, stopAtLayer: opts.stopAtLayer, kvCache: opts.kvCache, attentionMask: opts.attentionMask, logits: opts.logits, tokenTypeIds: opts.tokenTypeIds });
      return { logits, cache: new ActivationCache(acts, this.cfg, this) };
    } catch (e) {
      for (const t of acts.values()) t.dispose();
      throw e;
    }
  }

  /**
   * Generates `maxNewTokens` tokens after each row of `tokens`, with a KV cache: greedy by default, sampled with
   * `temperature`. Hooks apply at every step, to the positions fed at that step. See generate.ts.
   */
  generate<T = never>(tokens: TokenInput, opts: GenerateOptions<T> = {}): GenerateResult<T> {
    refuseEncoder(this.cfg, 'generate');
    return generate(this, tokens, opts);
  }

  /** generate with asynchronous reads: the form that runs on WebGPU in Node (see generate.ts). */
  generateAsync<T = never>(tokens: TokenInput, opts: GenerateOptions<T> = {}): Promise<GenerateResult<T>> {
    try {
      refuseEncoder(this.cfg, 'generate');
    } catch (e) {
      return Promise.reject(e);
    }
    return generateAsync(this, tokens, opts);
  }

  private namesPredicate(names: NamesFilter): (n: string) => boolean {
    if (names === 'all') {
      const all = new Set(this.hookNames());
      return (n) => all.has(n);
    }
    if (typeof names === 'function') return names;
    this.checkNames(names);
    const set = new Set(names);
    return (n) => set.has(n);
  }

  private checkFilters(hooks: FwdHook[]): void {
    this.checkNames(hooks.map(([f]) => f).filter((f): f is string => typeof f === 'string'));
  }

  /** Every hook point's name (hook_result included), made on the first check: a sweep checks its hooks at every pass. */
  private known?: { list: string[]; set: Set<string> };

  private checkNames(names: string[]): void {
    if (names.length === 0) return;
    if (!this.known) {
      const list = this.hookNames({ withResult: true });
      this.known = { list, set: new Set(list) };
    }
    const { list, set } = this.known;
    for (const n of names) {
      if (!set.has(n)) {
        throw new HeadlensError(`unknown hook point '${n}'`, `did you mean '${nearest(n, list)}'? model.hookNames() lists them all`);
      }
    }
  }
}

function checkPatternRows(rows: PatternRows): PatternRows {
  if (rows === 'last') return rows;
  if (!Array.isArray(rows) || rows.length === 0 || !rows.every((r) => Number.isInteger(r) && r >= 0)) {
    throw new HeadlensError(`patternRows must be 'last' or a non-empty list of query positions (integers ≥ 0), got ${JSON.stringify(rows)}`, "pass e.g. { patternRows: 'last' } or { patternRows: [0, 5] }");
  }
  return rows;
}

/** hook_attn_scores and hook_pattern: the hook points with a query_pos axis. */
function isPerQuery(name: string): boolean {
  return hookAxes(name)?.[2] === 'query_pos';
}

/** The asked query rows of a pattern-shaped activation [batch, head, query_pos, key_pos] → [batch, head, rows, key_pos]. */
function queryRows(name: string, act: tf.Tensor, rows: PatternRows): tf.Tensor {
  const nQuery = act.shape[2] as number; // [batch, head, query_pos, key_pos]
  if (rows === 'last') return tf.tidy(() => act.slice([0, 0, nQuery - 1, 0], [-1, -1, 1, -1]));
  const bad = rows.find((r) => r >= nQuery);
  if (bad !== undefined) throw new HeadlensError(`patternRows: query row ${bad} is past the ${nQuery} query positions of ${name}`, `use rows 0..${nQuery - 1}`);
  return tf.tidy(() => tf.gather(act, tf.tensor1d(rows, 'int32'), 2));
}

function interceptor(hooks: FwdHook[]): Interceptor {
  const matches = (f: HookFilter, n: string) => (typeof f === 'string' ? f === n : f(n));
  return {
    wants: (n) => hooks.some(([f]) => matches(f, n)),
    call: (n, act) => {
      let x = act;
      for (const [f, fn] of hooks) {
        if (!matches(f, n)) continue;
        const out = fn(x, { name: n, layer: layerOf(n) });
        if (out !== undefined && out !== null) {
          if (!(out instanceof tf.Tensor)) throw new HeadlensError(`hook at ${n} returned something that is not a tensor`, 'return a tf.Tensor or nothing');
          x = out;
        }
      }
      return x;
    },
  };
}

/**
 * Next-token cross-entropy from logits [batch, pos, d_vocab] and the ids they were computed on: −log softmax of
 * the next token, [batch, pos − 1]; the mean over positions (where the mask keeps both ends) unless perToken.
 */
export function nextTokenLoss(logits: tf.Tensor3D, tokens: number[][], opts: { perToken?: boolean; attentionMask?: number[][] } = {}): tf.Tensor {
  const [batch, pos, vocab] = logits.shape;
  const n = pos - 1;
  // flat index of logits[b, i, tokens[b, i + 1]]: one gather, no [batch, pos, d_vocab] one-hot
  const at = new Int32Array(batch * n);
  const keep = new Float32Array(batch * n);
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < n; i++) {
      at[b * n + i] = (b * pos + i) * vocab + tokens[b][i + 1];
      keep[b * n + i] = opts.attentionMask ? opts.attentionMask[b][i] * opts.attentionMask[b][i + 1] : 1;
    }
  }
  const counted = keep.reduce((a, x) => a + x, 0);
  if (counted === 0) throw new HeadlensError('loss: the attention mask leaves no position whose next token is real', 'each row needs two real tokens in a row');
  return tf.tidy(() => {
    const head = logits.slice([0, 0, 0], [batch, n, vocab]); // [batch, pos − 1, d_vocab]
    const target = tf.gather(logits.reshape([-1]), tf.tensor1d(at, 'int32')).reshape([batch, n]); // [batch, pos − 1]
    const keepT = tf.tensor2d(keep, [batch, n]);
    const perToken = tf.logSumExp(head, -1).sub(target).mul(keepT); // [batch, pos − 1]
    return opts.perToken ? perToken : perToken.sum().div(counted);
  });
}
