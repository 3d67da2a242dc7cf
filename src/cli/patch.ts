/**
 * `headlens patch`: one activation-patching sweep from the command line, written as JSON.
 * The metric is the logit difference answer − wrong at the last position, normalised so that 0 is the
 * corrupted run and 1 the clean one.
 */
import { writeFileSync } from 'node:fs';
import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { logitDiff, metricValue, normalized } from '../interp/metrics.js';
import { activationPatching, PATCH_COMPONENTS, type PatchComponent } from '../interp/interventions/patching.js';
import { loadPretrained } from '../loading/load.js';
import { progressBar } from './progress.js';
import { parseTokenRows } from './cache.js';
import { required, type Command } from './main.js';

/** "1,2,3" (or "1,2,3;4,5,6") → token rows; anything else is text for the model's tokenizer. */
export function promptRows(model: HookedTransformer, arg: string, flag: string): number[][] {
  if (/^\s*\d+(\s*,\s*\d+)*(\s*;\s*\d+(\s*,\s*\d+)*)*\s*$/.test(arg)) return parseTokenRows(arg);
  try {
    return model.toTokens(arg);
  } catch (e) {
    if (e instanceof HeadlensError) throw new HeadlensError(`--${flag}: ${e.message}`, 'pass token ids as "1,2,3" instead');
    throw e;
  }
}

/** A token id ("42") or a text that the tokenizer encodes as exactly one token. */
export function tokenId(model: HookedTransformer, arg: string, flag: string): number {
  if (/^\d+$/.test(arg)) {
    const id = Number(arg);
    if (id >= model.cfg.d_vocab) throw new HeadlensError(`--${flag} ${id} is not in the vocabulary [0, ${model.cfg.d_vocab})`);
    return id;
  }
  if (!model.tokenizer) throw new HeadlensError(`--${flag} '${arg}' is text but the model has no tokenizer`, 'pass a token id');
  const ids = model.tokenizer.encode(arg);
  if (ids.length !== 1) throw new HeadlensError(`--${flag} '${arg}' is ${ids.length} tokens (${ids.join(', ')})`, 'pass text that is one token, or its id');
  return ids[0];
}

export const patchCommand: Command = {
  options: {
    model: { type: 'string' },
    clean: { type: 'string' },
    corrupted: { type: 'string' },
    answer: { type: 'string' },
    wrong: { type: 'string' },
    component: { type: 'string' },
    'by-pos': { type: 'boolean' },
    direction: { type: 'string' },
    out: { type: 'string' },
  },
  async run(v) {
    const modelArg = required(v, 'model', 'datasets/zoo/tiny-gpt2-random');
    const cleanArg = required(v, 'clean', '"When Mary and John went to the store, John gave a drink to"');
    const corruptedArg = required(v, 'corrupted', '"When Mary and John went to the store, Mary gave a drink to"');
    const answerArg = required(v, 'answer', '" Mary"');
    const wrongArg = required(v, 'wrong', '" John"');
    const component = required(v, 'component', 'head-out') as PatchComponent;
    const out = required(v, 'out', 'results.json');
    if (!PATCH_COMPONENTS.includes(component)) throw new HeadlensError(`unknown --component '${component}'`, `use one of ${PATCH_COMPONENTS.join(', ')}`);
    const direction = (v.direction as string | undefined) ?? 'denoising';
    if (direction !== 'denoising' && direction !== 'noising') throw new HeadlensError(`--direction ${direction}`, 'use denoising or noising');
    const model = await loadPretrained(modelArg, { backend: v.backend as BackendName });
    try {
      const clean = promptRows(model, cleanArg, 'clean');
      const corrupted = promptRows(model, corruptedArg, 'corrupted');
      if (clean.length !== corrupted.length || clean[0].length !== corrupted[0].length) {
        throw new HeadlensError(`--clean is ${clean.length}×${clean[0].length} tokens but --corrupted is ${corrupted.length}×${corrupted[0].length}`, 'clean and corrupted prompts must have the same length in tokens');
      }
      const answer = tokenId(model, answerArg, 'answer');
      const wrong = tokenId(model, wrongArg, 'wrong');
      const diff = logitDiff(answer, wrong);
      const value = (rows: number[][]) => {
        const logits = model.forward(rows);
        const x = metricValue(diff, logits);
        logits.dispose();
        return x;
      };
      const cleanLd = value(clean);
      const corruptedLd = value(corrupted);
      const result = activationPatching(model, component, {
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
      writeFileSync(out, JSON.stringify(json, null, 1));
      const top = result.top(3).map((t) => `${t.labels.join('/')}: ${t.value.toFixed(3)}`).join(', ');
      console.error(`logit diff clean ${cleanLd.toFixed(4)}, corrupted ${corruptedLd.toFixed(4)}; ${result.values.length} patches; top ${top}; wrote ${out}`);
    } finally {
      model.dispose();
    }
  },
};
