/**
 * Opt-in weight processing, as TransformerLens does by default and headlens does only when asked:
 *   foldLayerNorm        folds each norm's weight (and LayerNorm's bias) into the weights that read it
 *                        (W_Q/K/V, W_in/W_gate, W_U), leaving the norm as pure normalisation;
 *   centerWritingWeights removes the mean over d_model from everything that writes to the residual
 *                        stream (W_E, W_pos, W_O, b_O, W_out, b_out); LayerNorm models only, since the
 *                        next LayerNorm removes that mean anyway, RMSNorm does not;
 *   centerUnembed        removes the mean over the vocabulary from W_U and b_U (shifts every logit of a
 *                        position by the same amount: probabilities unchanged, logits not).
 * Folding and centring leave the logits unchanged up to float rounding; hook_normalized and the
 * per-head weights change meaning, which is why none of this happens by default.
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';
import type { Transformer } from './transformer.js';

export interface ProcessingOptions {
  foldLayerNorm?: boolean;
  centerWritingWeights?: boolean;
  centerUnembed?: boolean;
}

/** Applies the requested steps in TransformerLens' order (fold, centre writing, centre unembed). */
export function processWeights(model: Transformer, opts: ProcessingOptions): void {
  if (model.cfg.norm_placement === 'post' && (opts.foldLayerNorm || opts.centerWritingWeights || opts.centerUnembed)) {
    // folding and centring rely on a norm reading the residual stream before each sublayer; a post-LN block normalises the sum after it
    throw new HeadlensError(`weight processing is for pre-LN models; ${model.cfg.model_name} is post-LN (${model.cfg.original_architecture})`, 'load it without processing: the model then computes exactly what the checkpoint computes');
  }
  if (opts.foldLayerNorm) foldLayerNorm(model);
  if (opts.centerWritingWeights) centerWritingWeights(model);
  if (opts.centerUnembed) centerUnembed(model);
}

export function foldLayerNorm(model: Transformer): void {
  const { cfg } = model;
  if (cfg.normalization_type === null) throw new HeadlensError('foldLayerNorm: this model has no norms to fold');
  once(model, 'foldLayerNorm');
  const P = (n: string) => model.param(n);
  const updates = tf.tidy(() => {
    const u: Record<string, tf.Tensor> = {};
    // W' = w ⊙ W along d_model; b' = b_W + LN bias · W
    const fold = (norm: string, W: string, bias: string, dAxis: number) => {
      const w = P(`${norm}.w`);
      const Wt = P(W);
      const shape = Wt.shape.map((n, i) => (i === dAxis ? n : 1));
      u[W] = Wt.mul(w.reshape(shape));
      if (cfg.normalization_type === 'LN') {
        const b = P(`${norm}.b`);
        u[bias] = P(bias).add(Wt.mul(b.reshape(shape)).sum(dAxis));
      }
    };
    const reset = (norm: string) => {
      u[`${norm}.w`] = tf.onesLike(P(`${norm}.w`));
      if (cfg.normalization_type === 'LN') u[`${norm}.b`] = tf.zerosLike(P(`${norm}.b`));
    };
    for (let l = 0; l < cfg.n_layers; l++) {
      const b = `blocks.${l}`;
      for (const x of ['Q', 'K', 'V']) fold(`${b}.ln1`, `${b}.attn.W_${x}`, `${b}.attn.b_${x}`, 1); // [head, d_model, d_head]
      reset(`${b}.ln1`);
      if (!cfg.attn_only) {
        fold(`${b}.ln2`, `${b}.mlp.W_in`, `${b}.mlp.b_in`, 0); // [d_model, d_mlp]
        if (cfg.gated_mlp) fold(`${b}.ln2`, `${b}.mlp.W_gate`, `${b}.mlp.b_gate`, 0);
        reset(`${b}.ln2`);
      }
    }
    fold('ln_final', 'unembed.W_U', 'unembed.b_U', 0); // [d_model, d_vocab]
    reset('ln_final');
    return u;
  });
  model.setParams(updates);
}

export function centerWritingWeights(model: Transformer): void {
  const { cfg } = model;
  if (cfg.normalization_type !== 'LN') {
    throw new HeadlensError(
      `centerWritingWeights needs LayerNorm; this model uses ${cfg.normalization_type ?? 'no norm'}`,
      'RMSNorm does not remove the mean, so centring would change the output: leave it off',
    );
  }
  once(model, 'centerWritingWeights');
  const updates = tf.tidy(() => {
    const u: Record<string, tf.Tensor> = {};
    const centre = (n: string) => (u[n] = model.param(n).sub(model.param(n).mean(-1, true)));
    centre('embed.W_E');
    if (cfg.positional_embedding_type === 'standard') centre('pos_embed.W_pos');
    for (let l = 0; l < cfg.n_layers; l++) {
      centre(`blocks.${l}.attn.W_O`);
      centre(`blocks.${l}.attn.b_O`);
      if (!cfg.attn_only) {
        centre(`blocks.${l}.mlp.W_out`);
        centre(`blocks.${l}.mlp.b_out`);
      }
    }
    return u;
  });
  model.setParams(updates);
}

export function centerUnembed(model: Transformer): void {
  once(model, 'centerUnembed');
  const updates = tf.tidy(() => ({
    'unembed.W_U': model.param('unembed.W_U').sub(model.param('unembed.W_U').mean(1, true)),
    'unembed.b_U': model.param('unembed.b_U').sub(model.param('unembed.b_U').mean()),
  }));
  model.setParams(updates);
}

function once(model: Transformer, step: string): void {
  if (model.processing.includes(step)) throw new HeadlensError(`${step} was already applied to this model`);
  model.processing.push(step);
}
