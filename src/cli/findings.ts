/**
 * `headlens findings`: what a zoo model's card reports about its heads (src/zoo/findings.ts), one JSON line
 * per task, for the shipped toy-lm or any folder a `headlens train` run wrote.
 */
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { FINDINGS, type FindingTask } from '../zoo/findings.js';
import { commaList, defineCommand, modelOption, option } from './options.js';
import { withModel } from './with_model.js';

const TASKS = Object.keys(FINDINGS) as FindingTask[];

export const findingsCommand = defineCommand({
  summary: "what a zoo model's card reports about its heads, one JSON line per task",
  options: {
    model: modelOption('toy-lm'),
    tasks: option(
      commaList()
        .refine((ts) => ts.every((t) => (TASKS as string[]).includes(t)), {
          error: (iss) => `findings: no task '${(iss.input as string[]).filter((t) => !(TASKS as string[]).includes(t)).join("', '")}'`,
        })
        .optional(),
      { description: `the tasks to run, comma-separated`, value: 'TASK,…', default: 'all', fix: `--tasks takes a comma-separated list of ${TASKS.join(', ')}` },
    ),
  },
  async run(v) {
    const tasks = (v.tasks ?? TASKS) as FindingTask[];
    await withModel(v, (model) => {
      if (!model.tokenizer) throw new HeadlensError(`findings: ${model.cfg.model_name} has no tokenizer`, 'use a folder with tokenizer.json (toy-lm or a toy-lm run)');
      for (const t of tasks) {
        const t0 = Date.now();
        const found = FINDINGS[t](model);
        console.log(JSON.stringify({ task: t, ...found, seconds: (Date.now() - t0) / 1000 }));
      }
    });
  },
});
