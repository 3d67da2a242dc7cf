/**
 * Attribution patching: activation patching to first order, every site from one forward and one
 * backward pass.
 *
 * Patching site a from the corrupted run into the clean one changes the metric by M(a_corr) − M(a_clean);
 * to first order that is (a_corr − a_clean) · ∂M/∂a at the clean run (Nanda 2023, "Attribution Patching:
 * Activation Patching At Industrial Scale"; Syed et al. 2023). One gradient gives the estimate for every
 * head, position and layer at once, where real patching needs a forward per site. The approximation is
 * good when the activation moves little and the metric is near-linear there (a logit difference is
 * linear in the final residual before the norm); it is known to fail where attention saturates and for
 * large changes such as whole-residual patches in early layers (Kramár et al. 2024, AtP*), so check the
 * sites that matter with real patching. 'noising' (default) takes the gradient at the clean run with
 * Δ = corrupted − clean; 'denoising' at the corrupted run with Δ = clean − corrupted. Results are the
 * estimated change of the metric (averaged over prompts), not the patched metric itself.
 *
 * The gradient is taken with tf.grads with respect to zero tensors added at the hook points, so the
 * forward is the model's own (hooks and all) and nothing is approximated but the first order.
 */
import * as tf from '@tensorflow/tfjs';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import { headAxisLabels, Labelled, layerAxis, posAxis, type Axis } from '../labelled.js';
import type { Metric } from '../metrics.js';
import type { PatchComponent } from './patching.js';

/** Prompts, optionally with hooks that change the run (e.g. noise at hook_embed as the corruption). */
export type RunSpec = TokenInput | { tokens: TokenInput; fwdHooks?: FwdHook[] };

export interface AttributionOptions {
  clean: RunSpec;
  corrupted: RunSpec;
  metric: Metric;
  direction?: 'noising' | 'denoising';
  /** One value per position (default true for residual/attn_out/mlp_out, false for heads). */
  byPos?: boolean;
}

export function runSpec(spec: RunSpec): { tokens: TokenInput; fwdHooks: FwdHook[] } {
  if (spec instanceof tf.Tensor || Array.isArray(spec)) return { tokens: spec, fwdHooks: [] };
  return { tokens: spec.tokens, fwdHooks: spec.fwdHooks ?? [] };
}

const HOOK: Partial<Record<PatchComponent, Parameters<typeof actName>[0]>> = {
  'resid-pre': 'resid_pre', 'resid-mid': 'resid_mid', 'resid-post': 'resid_post', 'attn-out': 'attn_out', 'mlp-out': 'mlp_out',
  'head-out': 'z', 'head-q': 'q', 'head-k': 'k', 'head-v': 'v', 'head-pattern': 'pattern',
};

/**
 * Δ · ∂metric/∂activation at every hook of `names`, each returned as a tensor of its activation's shape
 * (caller owns). Δ and the gradient are taken as `direction` says.
 */
export function attributionTerms(model: HookedTransformer, names: string[], opts: Omit<AttributionOptions, 'byPos'>): { terms: tf.Tensor[]; baseline: number } {
  return readSync(attributionTermsReads(model, names, opts));
}

/** attributionTerms, read asynchronously (WebGPU in Node). */
export function attributionTermsAsync(model: HookedTransformer, names: string[], opts: Omit<AttributionOptions, 'byPos'>): Promise<{ terms: tf.Tensor[]; baseline: number }> {
  return readAsync(attributionTermsReads(model, names, opts));
}

function* attributionTermsReads(model: HookedTransformer, names: string[], opts: Omit<AttributionOptions, 'byPos'>): Reads<{ terms: tf.Tensor[]; baseline: number }> {
  const noising = (opts.direction ?? 'noising') === 'noising';
  const at = runSpec(noising ? opts.clean : opts.corrupted);
  const other = runSpec(noising ? opts.corrupted : opts.clean);
  const a = model.runWithCache(at.tokens, { names, fwdHooks: at.fwdHooks });
  const b = model.runWithCache(other.tokens, { names, fwdHooks: other.fwdHooks });
  let out: { terms: tf.Tensor[]; baseline: tf.Tensor };
  try {
    out = tf.tidy(() => {
      const zeros = names.map((n) => tf.zerosLike(a.cache.get(n)));
      let baseline: tf.Tensor | undefined;
      const f = (...deltas: tf.Tensor[]) => {
        const hooks: FwdHook[] = [...at.fwdHooks, ...names.map((n, i): FwdHook => [n, (act) => act.add(deltas[i])])];
        const logits = model.runWithHooks(at.tokens, { fwdHooks: hooks });
        const m = opts.metric(logits).mean() as tf.Scalar;
        baseline = tf.keep(m.clone()); // read after the gradient, not inside it
        return m;
      };
      const grads = tf.grads(f)(zeros);
      const terms = names.map((n, i) => tf.keep(b.cache.get(n).sub(a.cache.get(n)).mul(grads[i])));
      return { terms, baseline: baseline! };
    });
  } finally {
    a.cache.dispose();
    b.cache.dispose();
    a.logits.dispose();
    b.logits.dispose();
  }
  let baseline: number;
  try {
    baseline = (yield out.baseline)[0];
  } catch (e) {
    tf.dispose(out.terms);
    throw e;
  }
  return { terms: out.terms, baseline };
}

/**
 * Attribution patching of a component over every layer (× head) (× position), shaped like
 * activationPatching's result: [layer, pos] / [layer] for residual-like components, [layer, pos, head]
 * / [layer, head] for heads. Values are estimated metric changes; meta.baseline is the metric where the
 * gradient was taken.
 */
export function attributionPatching(model: HookedTransformer, component: PatchComponent, opts: AttributionOptions): Labelled {
  return readSync(attributionPatchingReads(model, component, opts));
}

/** attributionPatching, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function attributionPatchingAsync(model: HookedTransformer, component: PatchComponent, opts: AttributionOptions): Promise<Labelled> {
  return readAsync(attributionPatchingReads(model, component, opts));
}

function* attributionPatchingReads(model: HookedTransformer, component: PatchComponent, opts: AttributionOptions): Reads<Labelled> {
  const { cfg } = model;
  const short = HOOK[component];
  if (!short) throw new HeadlensError(`unknown component '${component}'`, `use one of ${Object.keys(HOOK).join(', ')}`);
  if (component === 'resid-mid' && (cfg.parallel_attn_mlp || cfg.attn_only)) throw new HeadlensError(`model ${cfg.model_name} has no resid_mid`);
  if (component === 'mlp-out' && cfg.attn_only) throw new HeadlensError(`model ${cfg.model_name} has no MLPs`);
  const names = Array.from({ length: cfg.n_layers }, (_, l) => actName(short, l));
  const { terms, baseline } = yield* attributionTermsReads(model, names, opts);
  const isHead = component.startsWith('head-');
  const byPos = opts.byPos ?? !isHead;
  try {
    const perLayer: Float32Array[] = [];
    for (const t of terms) {
      const summed = tf.tidy(() => {
        let x: tf.Tensor;
        if (component === 'head-pattern') x = t.sum([0, 3]).transpose(); // [batch, head, query_pos, key_pos] → [query_pos, head]
        else if (isHead) x = t.sum([0, 3]); // [batch, pos, head, d_head] → [pos, head]
        else x = t.sum([0, 2]); // [batch, pos, d_model] → [pos]
        return byPos ? x : x.sum(0);
      });
      perLayer.push((yield summed) as Float32Array);
    }
    const nPos = component === 'head-pattern' ? terms[0].shape[2] : terms[0].shape[1];
    const nH = isHead ? (component === 'head-k' || component === 'head-v' ? cfg.n_key_value_heads : cfg.n_heads) : 1;
    const axes: Axis[] = [layerAxis(cfg.n_layers)];
    if (byPos) axes.push(posAxis(nPos!));
    if (isHead) axes.push(headAxisLabels(nH, nH === cfg.n_heads ? 'head' : 'kv_head'));
    const values = new Float64Array(perLayer.reduce((s, a) => s + a.length, 0));
    let off = 0;
    for (const a of perLayer) (values.set(a, off), (off += a.length));
    return new Labelled(axes, values, { component, method: 'attribution', direction: opts.direction ?? 'noising', baseline });
  } finally {
    terms.forEach((t) => t.dispose());
  }
}
