/**
 * `headlens composition`: Q-, K- or V-composition scores (Elhage et al. 2021) between every pair of
 * heads in different layers, highest first, with the score of random weights of the same shapes.
 */
import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { COMPOSITION_KINDS, compositionScores, type CompositionKind, type CompositionScores } from '../interp/weights/composition.js';
import { loadPretrained } from '../loading/load.js';
import { required, type Command } from './main.js';
import { intOption } from './svd.js';

export function formatComposition(r: CompositionScores, model: string, top: number): string {
  const lines = [
    `${r.kind.toUpperCase()}-composition of ${model}: ${r.pairs.length} head pairs; random baseline ${r.baseline.mean.toFixed(4)} ± ${r.baseline.std.toFixed(4)}`,
  ];
  for (const p of r.pairs.slice(0, top)) lines.push(`  ${p.from.label} → ${p.to.label}  ${p.score.toFixed(4)}  (${(p.score / r.baseline.mean).toFixed(2)}× baseline)`);
  return lines.join('\n');
}

export const compositionCommand: Command = {
  options: { model: { type: 'string' }, kind: { type: 'string' }, top: { type: 'string' }, json: { type: 'boolean' } },
  async run(v) {
    const modelArg = required(v, 'model', 'datasets/zoo/tiny-gpt2-random');
    const kind = required(v, 'kind', 'k');
    if (!COMPOSITION_KINDS.includes(kind as CompositionKind)) throw new HeadlensError(`--kind '${kind}' is not q, k or v`, 'use --kind q, --kind k or --kind v');
    const top = v.top === undefined ? 10 : intOption(v.top, 'top', '10');
    const model = await loadPretrained(modelArg, { backend: v.backend as BackendName });
    try {
      if (model.cfg.n_layers < 2) throw new HeadlensError(`${model.cfg.model_name} has one layer: no pair of heads in different layers`, 'composition needs at least 2 layers');
      const r = compositionScores(model, kind as CompositionKind);
      console.log(v.json ? JSON.stringify({ model: model.cfg.model_name, ...r }) : formatComposition(r, model.cfg.model_name, top));
    } finally {
      model.dispose();
    }
  },
};
