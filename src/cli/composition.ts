/**
 * `headlens composition`: Q-, K- or V-composition scores (Elhage et al. 2021) between every pair of
 * heads in different layers, highest first, with the score of random weights of the same shapes.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { COMPOSITION_KINDS, compositionScoresAsync, type CompositionKind, type CompositionScores } from '../interp/weights/composition.js';
import { defineCommand, modelOption, nonNegativeInt, option } from './options.js';
import { checkAtMost, headPairCount } from './size_bounds.js';
import { withModel } from './with_model.js';

export function formatComposition(r: CompositionScores, model: string, top: number): string {
  const lines = [
    `${r.kind.toUpperCase()}-composition of ${model}: ${r.pairs.length} head pairs; random baseline ${r.baseline.mean.toFixed(4)} ± ${r.baseline.std.toFixed(4)}`,
  ];
  for (const p of r.pairs.slice(0, top)) lines.push(`  ${p.from.label} → ${p.to.label}  ${p.score.toFixed(4)}  (${(p.score / r.baseline.mean).toFixed(2)}× baseline)`);
  return lines.join('\n');
}

export const compositionCommand = defineCommand({
  summary: 'Q-, K- or V-composition scores of every pair of heads in different layers, against a random baseline',
  options: {
    model: modelOption(),
    kind: option(z.enum(COMPOSITION_KINDS as [CompositionKind, ...CompositionKind[]]), { description: 'which input of the later head reads the earlier head’s output', example: 'k' }),
    top: option(nonNegativeInt().optional(), { description: "how many pairs to print, highest first (at most the model's number of head pairs)", value: 'N', example: '10', default: '10; with --json every pair' }),
    json: option(z.boolean().optional(), { description: 'print one JSON object with the pairs (the --top N highest, or every pair) and total_pairs' }),
  },
  async run(v) {
    await withModel(v, async (model) => {
      if (model.cfg.n_layers < 2) throw new HeadlensError(`${model.cfg.model_name} has one layer: no pair of heads in different layers`, 'composition needs at least 2 layers');
      // bounded before the scores are computed: a --top beyond the pairs there are is a mistake, said at once
      const pairs = headPairCount(model.cfg);
      checkAtMost('top', v.top, pairs, `pairs of heads in different layers of ${model.cfg.model_name}`, false, 'the number of');
      const r = await compositionScoresAsync(model, v.kind); // the weights read with await: runs on WebGPU in Node
      const top = v.top ?? (v.json ? pairs : 10);
      console.log(v.json ? JSON.stringify({ model: model.cfg.model_name, ...r, pairs: r.pairs.slice(0, top), total_pairs: r.pairs.length }) : formatComposition(r, model.cfg.model_name, top));
    });
  },
});
