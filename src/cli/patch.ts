/**
 * `headlens patch`: one activation-patching sweep from the command line, written as JSON.
 * The metric is the logit difference answer − wrong at the last position, normalised so that 0 is the
 * corrupted run and 1 the clean one.
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { logitDiff, metricMean, normalized } from '../interp/metrics.js';
import { activationPatchingAsync, PATCH_COMPONENTS, type PatchComponent } from '../interp/interventions/patching.js';
import { bosOptions, defineCommand, modelOption, option } from './options.js';
import { progressBar } from './progress.js';
import { prependBosFlag, promptRows, tokenId } from './token_args.js';
import { withModel } from './with_model.js';

export const patchCommand = defineCommand({
  summary: 'one activation-patching sweep, its normalised logit differences written as JSON',
  options: {
    model: modelOption(),
    clean: option(z.string(), { description: 'the clean prompt: text, or token ids "1,2,3"', value: 'TEXT|IDS', example: '"When Mary and John went to the store, John gave a drink to"' }),
    corrupted: option(z.string(), { description: 'the corrupted prompt, as many tokens as --clean', value: 'TEXT|IDS', example: '"When Mary and John went to the store, Mary gave a drink to"' }),
    answer: option(z.string(), { description: 'the right answer: the text of one token, or its id', value: 'TOKEN', example: '" Mary"' }),
    wrong: option(z.string(), { description: 'the wrong answer: the text of one token, or its id', value: 'TOKEN', example: '" John"' }),
    component: option(
      z.enum(PATCH_COMPONENTS as [PatchComponent, ...PatchComponent[]], { error: (iss) => `unknown --component '${String(iss.input)}'` }),
      { description: 'what to patch', value: 'C', example: 'head-out' },
    ),
    'by-pos': option(z.boolean().optional(), { description: 'patch each position separately' }),
    direction: option(z.enum(['denoising', 'noising']).default('denoising'), { description: 'denoising patches clean into corrupted, noising corrupted into clean' }),
    out: option(z.string().optional(), { description: 'the JSON file to write (give this or --json)', value: 'FILE.json', example: 'patching.json' }),
    json: option(z.boolean().optional(), { description: 'print the result as JSON on stdout (with or instead of --out)' }),
    ...bosOptions(),
  },
  async run(v) {
    const { component, direction, out } = v;
    if (!out && !v.json) throw new HeadlensError('say where the result goes: --json (stdout) or --out FILE.json', 'e.g. --json');
    await withModel(v, async (model) => {
      const bos = prependBosFlag(v);
      const clean = promptRows(model, v.clean, 'clean', bos);
      const corrupted = promptRows(model, v.corrupted, 'corrupted', bos);
      if (clean.length !== corrupted.length || clean[0].length !== corrupted[0].length) {
        throw new HeadlensError(`--clean is ${clean.length}×${clean[0].length} tokens but --corrupted is ${corrupted.length}×${corrupted[0].length}`, 'clean and corrupted prompts must have the same length in tokens');
      }
      const answer = tokenId(model, v.answer, 'answer');
      const wrong = tokenId(model, v.wrong, 'wrong');
      const diff = logitDiff(answer, wrong);
      // read asynchronously throughout: the command runs on WebGPU in Node too
      const value = async (rows: number[][]) => {
        const logits = model.forward(rows);
        const mean = metricMean(diff, logits);
        logits.dispose();
        const x = (await mean.data())[0];
        mean.dispose();
        return x;
      };
      const cleanLd = await value(clean);
      const corruptedLd = await value(corrupted);
      const result = await activationPatchingAsync(model, component, {
        clean,
        corrupted,
        metric: normalized(diff, cleanLd, corruptedLd),
        direction,
        byPos: v['by-pos'] === true ? true : undefined,
        onProgress: progressBar('patching', 'variants'),
      });
      const json = {
        model: model.cfg.model_name,
        component,
        direction,
        metric: 'logit difference (answer − wrong) at the last position, normalised: 0 = corrupted, 1 = clean',
        answer,
        wrong,
        clean_tokens: clean,
        corrupted_tokens: corrupted,
        clean_logit_diff: cleanLd,
        corrupted_logit_diff: corruptedLd,
        result: result.toJSON(),
      };
      if (out) writeFileSync(out, JSON.stringify(json, null, 1));
      if (v.json) console.log(JSON.stringify(json));
      const top = result.top(3).map((t) => `${t.labels.join('/')}: ${t.value.toFixed(3)}`).join(', ');
      console.error(`logit diff clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)}; ${result.values.length} patches; top ${top}${out ? `; wrote ${out}` : ''}`);
    });
  },
});
