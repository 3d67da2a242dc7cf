/**
 * `headlens function-vector`: Todd et al.'s (2024) function vectors for one in-context word-mapping task
 * (src/datasets/icl_tasks.ts): the few-shot and shuffled-label accuracy, each head's indirect effect, the top
 * heads, and zero-shot accuracy without and with the FV at every layer (functionVectors in
 * src/interp/interventions/function_vectors.ts computes them; this file prints them).
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { ICL_TASKS, iclTaskTokens } from '../datasets/icl_tasks.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { functionVectorsAsync, type FunctionVectorResult, type IclTemplate } from '../interp/interventions/function_vectors.js';
import { defineCommand, modelOption, nonNegativeInt, option, positiveInt } from './options.js';
import { progressBar } from './progress.js';
import { writeAtlas } from '../viz/atlas.js';
import { withModel } from './with_model.js';

const TASKS = Object.keys(ICL_TASKS) as [string, ...string[]];

export function formatFunctionVector(model: string, task: string, r: FunctionVectorResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const lines = [
    `${model}, task ${task}: ${r.counts.shots}-shot accuracy ${pct(r.iclAccuracy)} (${r.counts.meanPrompts} prompts), shuffled labels ${pct(r.shuffledAccuracy)} (${r.counts.effectPrompts} prompts)`,
    `indirect effect (Δ p(answer) on shuffled prompts, from ${r.corruptedProbability.toFixed(4)}), top heads: ${r.top.map((h) => `${h.label} ${h.effect >= 0 ? '+' : ''}${h.effect.toFixed(4)}`).join(', ')}`,
    `zero-shot accuracy (${r.counts.evalPrompts} prompts) without → with the FV of ${r.top.length} heads at resid_post of each layer:`,
    ...r.byLayer.map((e, l) => `  layer ${l}${l === r.layer ? ' (default)' : ''}: ${pct(e.accuracy.without)} → ${pct(e.accuracy.with)}   p(answer) ${e.probability.without.toFixed(4)} → ${e.probability.with.toFixed(4)}`),
  ];
  if (r.iclAccuracy < 0.5) lines.push(`note: the model solves only ${pct(r.iclAccuracy)} of the few-shot prompts; with no in-context behaviour to carry, the heads and the FV say little`);
  return lines.join('\n');
}

function tokensOf(model: HookedTransformer, text: string | undefined, flag: string): number[] {
  if (text === undefined) return [];
  if (!model.tokenizer) throw new HeadlensError(`--${flag} is text but the model has no tokenizer`);
  return model.tokenizer.encode(text);
}

export const functionVectorCommand = defineCommand({
  summary: "function vectors (Todd et al. 2024): heads whose mean output carries an in-context task, and the task's vector added to zero-shot prompts",
  options: {
    model: modelOption('toy-lm'),
    task: option(z.enum(TASKS, { error: (iss) => `unknown --task '${String(iss.input)}'; use one of ${TASKS.join(', ')}` }), { description: 'the word-mapping task', value: 'T', example: 'category' }),
    shots: option(positiveInt({ max: 50, why: 'longer prompts than any toy model’s context are not useful here' }).default(10), { description: 'demonstrations per prompt', value: 'N', example: '10' }),
    'mean-prompts': option(positiveInt({ max: 1000, why: 'each prompt is one row of one forward pass' }).default(100), { description: 'clean prompts averaged for the mean head outputs', value: 'N', example: '100' }),
    'effect-prompts': option(positiveInt({ max: 200, why: 'each prompt is patched once per head' }).default(25), { description: 'shuffled-label prompts for the indirect effect', value: 'N', example: '25' }),
    'eval-prompts': option(positiveInt({ max: 1000, why: 'each prompt is one row of one forward pass' }).default(50), { description: 'zero-shot prompts evaluated', value: 'N', example: '50' }),
    top: option(positiveInt({ max: 1000, why: 'more heads than a model has are capped anyway' }).default(10), { description: 'heads summed into the function vector', value: 'K', example: '10' }),
    layer: option(nonNegativeInt().optional(), { description: 'the layer whose resid_post gets the FV for the default line', value: 'L', default: '⌊n_layers/3⌋' }),
    sep: option(z.string().optional(), { description: 'text between an input and its output (and after the query)', value: 'TEXT', example: '":"' }),
    end: option(z.string().optional(), { description: 'text after each demonstration', value: 'TEXT', example: '","' }),
    seed: option(nonNegativeInt().default(0), { description: 'seed of the prompts', value: 'S', example: '0' }),
    json: option(z.boolean().optional(), { description: 'print one JSON object' }),
    report: option(z.string().optional(), { description: 'also write the head atlas with the indirect effects as a head grid', value: 'FILE.html' }),
  },
  async run(v) {
    await withModel(v, async (model) => {
      if (!model.tokenizer) throw new HeadlensError(`${model.cfg.model_name} has no tokenizer`, 'the tasks are words: use a model with a tokenizer.json');
      if (v.layer !== undefined && v.layer >= model.cfg.n_layers) throw new HeadlensError(`--layer ${v.layer} is not a layer`, `use 0..${model.cfg.n_layers - 1}`);
      const pairs = iclTaskTokens(ICL_TASKS[v.task], model.tokenizer);
      const bos = model.bosToken();
      const template: IclTemplate = { ...(bos === null ? {} : { bos }), sep: tokensOf(model, v.sep, 'sep'), end: tokensOf(model, v.end, 'end') };
      const r = await functionVectorsAsync(model, pairs, {
        shots: v.shots,
        meanPrompts: v['mean-prompts'],
        effectPrompts: v['effect-prompts'],
        evalPrompts: v['eval-prompts'],
        topHeads: v.top,
        layer: v.layer,
        template,
        seed: v.seed,
        onProgress: v.json ? undefined : progressBar('indirect effects', 'patches'),
      });
      if (v.report) {
        const file = writeAtlas(v.report, {
          title: `function vectors: ${model.cfg.model_name}, task ${v.task}`,
          model: { name: model.cfg.model_name },
          note: `${r.counts.shots}-shot accuracy ${r.iclAccuracy.toFixed(3)}, shuffled labels ${r.shuffledAccuracy.toFixed(3)}; zero-shot accuracy at layer ${r.layer} without → with the FV of ${r.top.map((h) => h.label).join(', ')}: ${r.zeroShot.accuracy.without.toFixed(3)} → ${r.zeroShot.accuracy.with.toFixed(3)}. Written by headlens function-vector.`,
          scorers: [{ name: 'indirect effect', description: "Δp(answer) on shuffled-label prompts when the head's mean output over clean prompts is patched in at the last token (Todd et al. 2024)", scores: r.effects, diverging: true }],
        });
        console.error(`wrote ${file}`);
      }
      if (v.json) {
        const { fv, ...rest } = r;
        console.log(JSON.stringify({ model: model.cfg.model_name, task: v.task, ...rest, top: r.top.map((h) => ({ head: h.label, layer: h.layer, head_index: h.head, effect: h.effect })), fv_norm: Math.hypot(...fv) }));
      } else {
        console.log(formatFunctionVector(model.cfg.model_name, v.task, r));
      }
    });
  },
});
