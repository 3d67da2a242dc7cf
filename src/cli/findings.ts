import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { loadPretrained } from '../loading/load.js';
import { FINDINGS, type FindingTask } from '../zoo/findings.js';
import { required, type Command } from './main.js';

/**
 * `headlens findings`: what a zoo model's card reports about its heads (src/zoo/findings.ts), one JSON line
 * per task, for the shipped toy-lm or any folder a `headlens train` run wrote.
 */
export const findingsCommand: Command = {
  options: { model: { type: 'string' }, tasks: { type: 'string' } },
  async run(v) {
    const names = Object.keys(FINDINGS) as FindingTask[];
    const tasks = ((v.tasks as string | undefined)?.split(',').map((t) => t.trim()) ?? names) as FindingTask[];
    const bad = tasks.filter((t) => !names.includes(t));
    if (bad.length) throw new HeadlensError(`findings: no task '${bad.join("', '")}'`, `--tasks takes a comma-separated list of ${names.join(', ')}`);
    const model = await loadPretrained(required(v, 'model', 'toy-lm'), { backend: v.backend as BackendName });
    try {
      if (!model.tokenizer) throw new HeadlensError(`findings: ${model.cfg.model_name} has no tokenizer`, 'use a folder with tokenizer.json (toy-lm or a toy-lm run)');
      for (const t of tasks) {
        const t0 = Date.now();
        const found = FINDINGS[t](model);
        console.log(JSON.stringify({ task: t, ...found, seconds: (Date.now() - t0) / 1000 }));
      }
    } finally {
      model.dispose();
    }
  },
};
