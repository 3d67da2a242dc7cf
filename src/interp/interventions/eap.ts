/**
 * Edge attribution patching (EAP) and EAP with integrated gradients (EAP-IG): a score for every edge of
 * the computational graph from two forward passes and one backward pass (or `steps` of them).
 *
 * The residual stream makes a transformer a graph: every component reads the sum of what earlier
 * components wrote. An edge u → d is the part of d's input that u wrote. Corrupting that edge alone
 * changes d's input by Δu = u(corrupted) − u(clean), and to first order the metric by
 *     score(u → d) = Δu · ∂M/∂(input of d)
 * summed over positions and averaged over prompts (Syed, Rager & Conmy 2023, "Attribution Patching
 * Outperforms Automated Circuit Discovery": on IOI and other tasks EAP's edge ranking recovers the known
 * circuits at least as well as ACDC by ROC AUC, from one backward pass instead of one forward per edge).
 * Hanna, Pezzelle & Belinkov 2024 ("Have Faith in Faithfulness") show that the gradient at the clean
 * point can mislead where the metric is far from linear, and replace it by the gradient averaged along
 * a straight path from clean to corrupted input embeddings (integrated gradients, a few steps); the
 * circuits EAP-IG finds are markedly more faithful when ablated to.
 *
 * Nodes here: upstream 'embed' (token + learned position embeddings), each head 'L{l}H{h}' (its output
 * z_h·W_O[h]; b_O is the same in both runs so it has no edge) and each MLP 'L{l}.mlp'; downstream each
 * head's query 'L{l}H{h}.q', each key/value head's 'L{l}H{g}.k' / '.v' (under GQA 'L{l}KV{g}.k': one
 * key per group), each MLP's input 'L{l}.mlp' and 'logits'. An edge exists when the writer comes before
 * the reader (heads of a layer do not feed that layer's MLP in parallel-attention models); other
 * entries of the matrix are 0 and are left out of `edges`.
 *
 * How the input gradient of one reader is separated from the others that share its residual stream:
 * the gradient is taken at the reader's first own activation (hook_q/k/v of its head, the MLP's
 * ln2.hook_normalized, the final residual for the logits) and carried back through the reader's own
 * norm (a vector-Jacobian product through ln1/ln2 at the run's residual) and its weights. That is exact:
 * no approximation enters but the first order. The sign convention is noising (clean → corrupted), the
 * estimated change of the metric when the edge is corrupted; EAP-IG's path runs from clean (α = 0) to
 * corrupted (α = 1) embeddings with a midpoint Riemann sum of `steps` points.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../../errors.js';
import { actName } from '../../hooks/act_name.js';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import type { TokenInput } from '../../model/transformer.js';
import { runSpec, type RunSpec } from './attribution_patching.js';
import { Labelled } from '../labelled.js';
import type { Metric } from '../metrics.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';

export interface EdgeAttributionOptions {
  clean: RunSpec;
  corrupted: RunSpec;
  metric: Metric;
  /** 'eap' (gradient at the clean run, default) or 'eap-ig' (integrated gradients over embeddings). */
  method?: 'eap' | 'eap-ig';
  /** EAP-IG's number of points on the path (default 5). */
  steps?: number;
}

export interface Edge {
  from: string;
  to: string;
  score: number;
}

export interface EdgeAttribution {
  /** [upstream, downstream] scores; 0 where there is no edge. */
  scores: Labelled;
  /** The edges that exist, in matrix order. */
  edges: Edge[];
}

interface Writer {
  label: string;
  /** When it writes: embed 0, layer l attention 2l+1, MLP 2l+2 (2l+1 in parallel blocks). */
  at: number;
}
interface Reader {
  label: string;
  at: number;
}

/** Edge scores between every writer and every reader (see the module comment). */
export function edgeAttribution(model: HookedTransformer, opts: EdgeAttributionOptions): EdgeAttribution {
  return readSync(edgeAttributionReads(model, opts));
}

/** edgeAttribution, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function edgeAttributionAsync(model: HookedTransformer, opts: EdgeAttributionOptions): Promise<EdgeAttribution> {
  return readAsync(edgeAttributionReads(model, opts));
}

/** edgeAttribution as a computation (util/reads.ts). */
export function* edgeAttributionReads(model: HookedTransformer, opts: EdgeAttributionOptions): Reads<EdgeAttribution> {
  const { cfg } = model;
  const method = opts.method ?? 'eap';
  const steps = method === 'eap' ? 1 : (opts.steps ?? 5);
  if (!Number.isInteger(steps) || steps < 1) throw new HeadlensError(`steps ${opts.steps} must be a positive integer`);
  if (!['eap', 'eap-ig'].includes(method)) throw new HeadlensError(`unknown method '${method}'`, "use 'eap' or 'eap-ig'");
  const hasMlp = !cfg.attn_only;
  if (hasMlp && !cfg.normalization_type) throw new HeadlensError('edge attribution needs a norm before the MLP to separate its input', 'models with MLPs and no normalisation are not supported');
  const L = cfg.n_layers;
  const group = cfg.n_heads / cfg.n_key_value_heads;
  const kvLabel = (l: number, g: number) => (group === 1 ? `L${l}H${g}` : `L${l}KV${g}`);
  const mlpAt = (l: number) => (cfg.parallel_attn_mlp ? 2 * l + 1 : 2 * l + 2);

  const writers: Writer[] = [{ label: 'embed', at: 0 }];
  const readers: Reader[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < cfg.n_heads; h++) writers.push({ label: `L${l}H${h}`, at: 2 * l + 1 });
    if (hasMlp) writers.push({ label: `L${l}.mlp`, at: mlpAt(l) });
    for (let h = 0; h < cfg.n_heads; h++) readers.push({ label: `L${l}H${h}.q`, at: 2 * l + 0.5 });
    for (const kind of ['k', 'v']) for (let g = 0; g < cfg.n_key_value_heads; g++) readers.push({ label: `${kvLabel(l, g)}.${kind}`, at: 2 * l + 0.5 });
    if (hasMlp) readers.push({ label: `L${l}.mlp`, at: cfg.parallel_attn_mlp ? 2 * l + 0.5 : 2 * l + 1.5 });
  }
  readers.push({ label: 'logits', at: Infinity });

  const clean = runSpec(opts.clean);
  const corr = runSpec(opts.corrupted);
  const embNames = ['hook_embed', ...(cfg.positional_embedding_type === 'standard' ? ['hook_pos_embed'] : [])];
  const upNames = [...embNames, ...Array.from({ length: L }, (_, l) => [actName('z', l), ...(hasMlp ? [actName('mlp_out', l)] : [])]).flat()];
  const a = model.runWithCache(clean.tokens, { names: upNames, fwdHooks: clean.fwdHooks });
  const b = model.runWithCache(corr.tokens, { names: upNames, fwdHooks: corr.fwdHooks });
  a.logits.dispose();
  b.logits.dispose();
  try {
    if (a.cache.get('hook_embed').shape.join() !== b.cache.get('hook_embed').shape.join()) {
      throw new HeadlensError('clean and corrupted prompts must have the same batch size and length in tokens');
    }
    const [B, P] = a.cache.get('hook_embed').shape;
    const d = cfg.d_model;
    // upstream Δ [n_writers, batch*pos*d_model], in writer order
    const up = tf.tidy(() => {
      const diff = (n: string) => b.cache.get(n).sub(a.cache.get(n));
      const rows: tf.Tensor[] = [embNames.map(diff).reduce((s, t) => s.add(t)).reshape([1, -1])];
      for (let l = 0; l < L; l++) {
        const dz = diff(actName('z', l)); // [batch, pos, head, d_head]
        const WO = model.param(`blocks.${l}.attn.W_O`); // [head, d_head, d_model]
        const perHead = tf.matMul(dz.transpose([2, 0, 1, 3]).reshape([cfg.n_heads, B * P, cfg.d_head]) as tf.Tensor3D, WO as tf.Tensor3D); // [head, batch*pos, d_model]
        rows.push(perHead.reshape([cfg.n_heads, -1]));
        if (hasMlp) rows.push(diff(actName('mlp_out', l)).reshape([1, -1]));
      }
      return tf.concat(rows, 0); // [n_writers, batch*pos*d_model]
    });
    let gradSum: tf.Tensor | undefined;
    let baseline = 0;
    try {
      for (let s = 0; s < steps; s++) {
        const alpha = method === 'eap' ? 0 : (s + 0.5) / steps;
        const interp: FwdHook[] = alpha === 0 ? [] : embNames.map((n): FwdHook => [n, (x) => x.add(b.cache.get(n).sub(x).mul(alpha))]);
        const { grads, metric } = readerGrads(model, clean.tokens, [...clean.fwdHooks, ...interp], opts.metric, B, P);
        const prev = gradSum;
        gradSum = prev ? tf.tidy(() => prev.add(grads)) : grads;
        if (prev) (prev.dispose(), grads.dispose());
        if (s === 0) baseline = (yield metric)[0];
        else metric.dispose();
      }
      const scoresArr = (yield tf.tidy(() => tf.matMul(up, gradSum!.div(steps), false, true))) as Float32Array; // [n_writers, n_readers]
      const values = new Float64Array(writers.length * readers.length);
      const edges: Edge[] = [];
      writers.forEach((w, i) => readers.forEach((r, j) => {
        if (w.at < r.at) {
          values[i * readers.length + j] = scoresArr[i * readers.length + j];
          edges.push({ from: w.label, to: r.label, score: scoresArr[i * readers.length + j] });
        }
      }));
      const scores = new Labelled(
        [{ name: 'upstream', labels: writers.map((w) => w.label) }, { name: 'downstream', labels: readers.map((r) => r.label) }],
        values,
        { method, steps, baseline },
      );
      return { scores, edges };
    } finally {
      up.dispose();
      gradSum?.dispose();
    }
  } finally {
    a.cache.dispose();
    b.cache.dispose();
  }
}

/**
 * ∂metric/∂(input residual of each reader) in reader order, flattened: [n_readers, batch*pos*d_model]
 * (caller owns), at the run of `tokens` with `hooks`, and the metric there (a scalar tensor the caller owns and reads).
 */
function readerGrads(model: HookedTransformer, tokens: TokenInput, hooks: FwdHook[], metric: Metric, B: number, P: number): { grads: tf.Tensor; metric: tf.Tensor } {
  const { cfg } = model;
  const L = cfg.n_layers;
  const hasMlp = !cfg.attn_only;
  const inNames = Array.from({ length: L }, (_, l) => [actName('resid_pre', l), ...(hasMlp && !cfg.parallel_attn_mlp ? [actName('resid_mid', l)] : [])]).flat();
  const gNames: string[] = [];
  for (let l = 0; l < L; l++) {
    gNames.push(actName('q', l), actName('k', l), actName('v', l));
    if (hasMlp) gNames.push(actName('normalized', l, 'ln2'));
  }
  gNames.push(actName('resid_post', L - 1));
  const run = model.runWithCache(tokens, { names: [...inNames, ...gNames], fwdHooks: hooks });
  run.logits.dispose();
  try {
    return tf.tidy(() => {
      let value: tf.Tensor | undefined;
      const f = (...deltas: tf.Tensor[]) => {
        const added: FwdHook[] = gNames.map((n, i): FwdHook => [n, (x) => x.add(deltas[i])]);
        const logits = model.runWithHooks(tokens, { fwdHooks: [...hooks, ...added] });
        const m = metric(logits).mean() as tf.Scalar;
        value?.dispose();
        value = tf.keep(m.clone()); // read by the caller: no read inside the gradient
        return m;
      };
      const g = tf.grads(f)(gNames.map((n) => tf.zerosLike(run.cache.get(n))));
      const byName = new Map(gNames.map((n, i) => [n, g[i]]));
      // J_norm(r)ᵀ·v for a stack of cotangents v [n, batch, pos, d_model] at residual r [batch, pos, d_model]
      const throughNorm = (prefix: string, r: tf.Tensor, v: tf.Tensor): tf.Tensor => {
        if (!cfg.normalization_type) return v;
        const n = v.shape[0];
        const rt = r.expandDims(0).tile([n, 1, 1, 1]).reshape([n * B, P, cfg.d_model]) as tf.Tensor3D;
        const vt = v.reshape([n * B, P, cfg.d_model]);
        const vjp = tf.grad((x: tf.Tensor) => model.applyNorm(prefix, x).mul(vt).sum())(rt);
        return vjp.reshape([n, B, P, cfg.d_model]);
      };
      // per-head cotangent through W [head, d_model, d_head]: g [batch, pos, head, d_head] → [head, batch, pos, d_model]
      const throughW = (gh: tf.Tensor, W: tf.Tensor) => {
        const nH = W.shape[0];
        const gt = gh.transpose([2, 0, 1, 3]).reshape([nH, B * P, cfg.d_head]) as tf.Tensor3D;
        return tf.matMul(gt, W as tf.Tensor3D, false, true).reshape([nH, B, P, cfg.d_model]);
      };
      const rows: tf.Tensor[] = [];
      for (let l = 0; l < L; l++) {
        const r = run.cache.get(actName('resid_pre', l));
        for (const [kind, W] of [['q', 'W_Q'], ['k', 'W_K'], ['v', 'W_V']] as const) {
          const v = throughW(byName.get(actName(kind, l))!, model.param(`blocks.${l}.attn.${W}`));
          rows.push(throughNorm(`blocks.${l}.ln1`, r, v).reshape([v.shape[0], -1]));
        }
        if (hasMlp) {
          const rm = cfg.parallel_attn_mlp ? r : run.cache.get(actName('resid_mid', l));
          rows.push(throughNorm(`blocks.${l}.ln2`, rm, byName.get(actName('normalized', l, 'ln2'))!.expandDims(0)).reshape([1, -1]));
        }
      }
      rows.push(byName.get(actName('resid_post', L - 1))!.reshape([1, -1]));
      return { grads: tf.concat(rows, 0), metric: value! };
    });
  } finally {
    run.cache.dispose();
  }
}
