/**
 * `headlens collect --queue redis://HOST:PORT --checkpoint FILE`: finishes a queued scan whose submitting
 * command stopped. The checkpoint names the sweep (model, task, samples, seed, job size); collect adds any
 * job that is not on the queue (those that are, by their content-derived ids, are not added twice), waits
 * for the rest, and writes the result as `headlens scan` would have.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { scanTask, SCAN_TASKS, type ScanTask } from '../interp/scores/tasks.js';
import { defineCommand, option } from './options.js';
import type { SweepMeta } from './sweep.js';
import { queueProgress, runSweep } from './sweep.js';
import { withModel } from './with_model.js';

export const collectCommand = defineCommand({
  summary: "wait for a queued scan's jobs and write its result (the submitting `headlens scan --queue` does this itself)",
  options: {
    queue: option(z.string({ error: (iss) => (iss.input === undefined ? '--queue is required' : undefined) }), { description: 'the Redis server of the queue', value: 'redis://HOST:PORT', example: 'redis://127.0.0.1:6379' }),
    'queue-name': option(z.string().optional(), { description: 'the BullMQ queue name', value: 'NAME', default: "the checkpoint's, else headlens-scan" }),
    checkpoint: option(z.string().optional(), { description: 'the checkpoint of the scan', value: 'FILE', default: 'FILE.partial.json for --out FILE' }),
    json: option(z.boolean().optional(), { description: 'print the result as JSON on stdout' }),
    out: option(z.string().optional(), { description: 'write the result as JSON', value: 'FILE.json' }),
  },
  async run(v) {
    if (!v.json && !v.out) throw new HeadlensError('say where the result goes: --json (stdout) or --out FILE', 'e.g. --json');
    const checkpoint = v.checkpoint ?? (v.out ? `${v.out}.partial.json` : undefined);
    if (!checkpoint) throw new HeadlensError('collect needs the checkpoint of the scan: --checkpoint FILE, or --out FILE (it uses FILE.partial.json)');
    let meta: SweepMeta | undefined;
    try {
      meta = JSON.parse(readFileSync(checkpoint, 'utf8')).meta;
    } catch (e) {
      throw new HeadlensError(`cannot read the checkpoint ${checkpoint}: ${(e as Error).message}`, 'pass the checkpoint `headlens scan --queue` wrote (--checkpoint FILE)');
    }
    const spec = meta?.sweep;
    if (!spec || !(SCAN_TASKS as readonly string[]).includes(spec.task)) throw new HeadlensError(`${checkpoint} does not name a queued scan (no sweep in it)`, 'collect only scans started with headlens scan --queue … --out FILE or --checkpoint FILE');
    await withModel({ model: spec.model, backend: v.backend }, async (model) => {
      const setup = scanTask(model, spec.task as ScanTask, { samples: spec.samples, seed: spec.seed });
      const result = await runSweep(model, setup.scorer, spec, {
        checkpoint, resume: true, jobSize: meta!.jobSize, queue: v.queue, queueName: v['queue-name'] ?? meta!.queueName, backend: v.backend,
        onQueue: queueProgress(spec.task),
      });
      for (const w of result.warnings ?? []) console.error(`headlens: warning: ${w}`);
      const report = { model: model.cfg.model_name, task: spec.task, settings: { ...result.settings, samples: spec.samples, seed: spec.seed }, scores: result.scores, top: result.top, ...(result.tables ? { tables: result.tables } : {}), counted: result.counted, ...(result.dropped ? { dropped: result.dropped } : {}) };
      const text = JSON.stringify(report);
      if (v.out) {
        writeFileSync(v.out, text + '\n');
        console.error(`wrote ${spec.task} scores of ${model.cfg.n_layers}×${model.cfg.n_heads} heads to ${v.out}`);
      }
      if (v.json) console.log(text);
    });
  },
});
