/**
 * Atlas data from a real (tiny, random) checkpoint, for the browser test, the README picture and the
 * notebooks: attention on a repeated prompt, three pattern scores computed here from the patterns, and the
 * OV spectra of the top heads. Plain data out; nothing of it is drawn here.
 */
import * as tf from '@tensorflow/tfjs';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { mat } from '../src/linalg/mat.js';
import { singularValues } from '../src/linalg/svd.js';
import { atlasHeads, type AtlasData } from '../src/viz/atlas.js';
import { CIRCUIT } from './viz_data.js';

export const ATLAS_TEXT = 'the cat sat. the cat sat.';

/** Mean attention from each query to the key `target(q)` (queries where it is defined), per head. */
export function patternScore(patterns: number[][][][], target: (q: number) => number | undefined): number[][] {
  return patterns.map((layer) =>
    layer.map((p) => {
      let sum = 0;
      let n = 0;
      p.forEach((row, q) => {
        const k = target(q);
        if (k !== undefined && k >= 0 && k <= q) {
          sum += row[k];
          n++;
        }
      });
      return n ? sum / n : NaN;
    }),
  );
}

export function modelAtlasData(model: HookedTransformer, text = ATLAS_TEXT): AtlasData {
  const ids = model.toTokens(text, { prependBos: false })[0];
  const { logits, cache } = model.runWithCache([ids], { names: (n) => n.endsWith('attn.hook_pattern') });
  const patterns = Array.from({ length: model.cfg.n_layers }, (_, l) =>
    tf.tidy(() => cache.get(`blocks.${l}.attn.hook_pattern`).squeeze([0]).arraySync() as number[][][]),
  );
  cache.dispose();
  logits.dispose();
  // the prompt repeats after `period` tokens: an induction head at q looks at q - period + 1
  const period = ids.findIndex((id, i) => i > 0 && id === ids[0]);
  const scorers = [
    { name: 'previous token', description: 'mean attention to the token before (q − 1)', scores: patternScore(patterns, (q) => (q >= 1 ? q - 1 : undefined)) },
    { name: 'first token', description: 'mean attention to position 0 (the attention sink)', scores: patternScore(patterns, (q) => (q >= 1 ? 0 : undefined)) },
    { name: 'induction', description: `mean attention from the repeat to the token after the earlier copy (q − ${period} + 1)`, scores: patternScore(patterns, (q) => (period > 0 && q >= period ? q - period + 1 : undefined)) },
  ];
  const data: AtlasData = {
    model: {
      name: model.cfg.model_name,
      family: model.cfg.original_architecture ?? '',
      parameters: model.nParams,
      layers: model.cfg.n_layers,
      heads: model.cfg.n_heads,
      d_model: model.cfg.d_model,
      d_head: model.cfg.d_head,
      d_vocab: model.cfg.d_vocab,
      n_ctx: model.cfg.n_ctx,
    },
    note: `Scores from the attention on ${JSON.stringify(text)} (${ids.length} tokens). The circuit is hand-made example data.`,
    scorers,
    tokens: ids.map((id) => model.toText([id])),
    patterns,
    circuit: { title: 'example circuit (hand-made data)', edges: CIRCUIT },
  };
  const heads = atlasHeads(data).slice(0, 4);
  const ov = (layer: number, head: number) =>
    tf.tidy(() => {
      const wv = model.param(`blocks.${layer}.attn.W_V`); // [head, d_model, d_head] (kv heads under GQA)
      const wo = model.param(`blocks.${layer}.attn.W_O`); // [head, d_head, d_model]
      const kv = Math.floor(head / (model.cfg.n_heads / wv.shape[0]));
      const m = tf.matMul(wv.gather([kv]).squeeze([0]) as tf.Tensor2D, wo.gather([head]).squeeze([0]) as tf.Tensor2D); // [d_model, d_model]
      return Array.from(singularValues(mat(m.shape[0]!, m.shape[1]!, m.dataSync())).slice(0, wv.shape[2]!));
    });
  data.spectra = [{ title: 'OV circuit (W_V·W_O) of the top heads', spectra: heads.map((h) => ({ label: `${h.label} OV`, values: ov(h.layer, h.head) })) }];
  return data;
}
