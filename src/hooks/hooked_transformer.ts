/**
 * HookedTransformer: the model with TransformerLens' ways in. `runWithCache` keeps named activations,
 * `runWithHooks` runs functions at hook points that may replace an activation (patching, ablation).
 * Hooks given to a run are removed when it ends, also when one throws; `addHook` keeps one across runs
 * until `resetHooks()`. `generate` decodes with a KV cache, hooks applied at every step (generate.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import type { HookedConfig } from '../model/config.js';
import type { Interceptor } from '../model/hook_point.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import type { KVCache } from '../model/kv_cache.js';
import { Transformer, type ForwardOptions, type TokenInput } from '../model/transformer.js';
import { hookAxes, layerOf, nearest } from './act_name.js';
import { ActivationCache } from './activation_cache.js';
import { generate, type GenerateOptions, type GenerateResult } from './generate.js';

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
  /** Past keys and values: the tokens given continue the cached sequence, see ForwardOptions.kvCache. */
  kvCache?: KVCache;
}

/**
 * Which query rows runWithCache keeps of hook_attn_scores and hook_pattern: 'last' (the final position, what
 * decoding reads) or a list of query positions, in that order. The cached tensor is then [batch, head, rows,
 * key_pos] instead of [batch, head, query_pos, key_pos]. On the tfjs path the forward still computes each
 * layer's full scores (no fused attention kernel yet), but only one layer's at a time: the cache keeps just
 * the rows, so a long prompt never holds [head, pos, pos] for every layer.
 */
export type PatternRows = number[] | 'last';

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
   * Text → token ids [batch, pos], exactly as the tokenizer.json encodes it (its own special tokens included).
   * `prependBos` puts the config's bos_token_id first (TransformerLens' prepend_bos), as models trained on
   * BOS-separated documents (GPT-2, the toy zoo) expect.
   */
  toTokens(text: string | string[], opts: { prependBos?: boolean } = {}): number[][] {
    const tok = this.requireTokenizer();
    const bos = this.cfg.bos_token_id;
    if (opts.prependBos && (bos === null || bos === undefined)) {
      throw new HeadlensError(`prependBos: ${this.cfg.model_name} has no bos_token_id in its config`, 'encode without prependBos, or set bos_token_id');
    }
    const rows = (Array.isArray(text) ? text : [text]).map((t) => (opts.prependBos ? [bos as number, ...tok.encode(t)] : tok.encode(t)));
    if (rows.some((r) => r.length !== rows[0].length)) {
      throw new HeadlensError(`texts encode to different lengths (${rows.map((r) => r.length).join(', ')})`, 'run them one at a time or make them the same length in tokens');
    }
    return rows;
  }

  /** Token ids → text. */
  toText(ids: number[]): string {
    return this.requireTokenizer().decode(ids);
  }

  /** One label per token, `(i) token`, for axes of pictures. */
  tokenLabels(ids: number[]): string[] {
    return ids.map((id, i) => `(${i}) ${this.tokenizer ? this.tokenizer.tokenText(id) : id}`);
  }

  private requireTokenizer(): TextTokenizer {
    if (!this.tokenizer) throw new HeadlensError(`model ${this.cfg.model_name} has no tokenizer`, 'its folder needs a tokenizer.json, or pass token ids');
    return this.tokenizer;
  }

  static override random(cfg: HookedConfig, opts: { seed?: number; std?: number } = {}): HookedTransformer {
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
    return this.forward(tokens, { interceptor: interceptor(hooks), stopAtLayer: opts.stopAtLayer, kvCache: opts.kvCache });
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
    return this.runFrom(layer, resid, { interceptor: interceptor(hooks), stopAtLayer: opts.stopAtLayer });
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
        // tensor can sit at two points (resid_post of l is resid_pre of l+1). A same-shape reshape gives a new
        // handle on the same data on every backend; clone() copies the data on wasm
        if (keep(n)) acts.set(n, tf.keep(rows && isPerQuery(n) ? queryRows(n, out, rows) : out.reshape(out.shape)));
        return out;
      },
    };
    try {
      const logits = this.forward(tokens, { interceptor: withCache, stopAtLayer: opts.stopAtLayer, kvCache: opts.kvCache });
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
    return generate(this, tokens, opts);
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

  private checkNames(names: string[]): void {
    const known = this.hookNames({ withResult: true });
    const set = new Set(known);
    for (const n of names) {
      if (!set.has(n)) {
        throw new HeadlensError(`unknown hook point '${n}'`, `did you mean '${nearest(n, known)}'? model.hookNames() lists them all`);
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
