/**
 * What runs one job of a split scan, in whatever process holds it (a local worker process of
 * `headlens scan --workers N`, or `headlens worker --queue …` on another machine). A job names its sweep by
 * what rebuilds it anywhere (the model as given to --model, the task, samples and seed) plus the sweep's
 * identity and item indices (ScanJob, src/interp/scores/scan.ts). The runner keeps the last model it loaded and
 * the scorers it built, so a worker holds its model once however many jobs it runs.
 *
 * A job that cannot run (an unknown model, a task the model cannot do, a job of another sweep) fails with a
 * HeadlensError naming why; the worker that ran it goes on with the next job.
 */
import { z } from 'zod';
import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { scoreItemReads, type HeadScorer } from '../interp/scores/head_scores.js';
import { checkScanJob, type IndexedItemScores, type ScanJob } from '../interp/scores/scan.js';
import { SCAN_TASKS, scanTask } from '../interp/scores/tasks.js';
import { loadPretrained } from '../loading/load.js';
import { readAsync } from '../util/reads.js';

/** What rebuilds a sweep in another process: the model as given to --model, the task, samples and seed. */
export interface SweepSpec {
  model: string;
  task: string;
  samples: number;
  seed: number;
}

/** A job as it travels to a worker (over IPC or a queue). */
export interface ScanJobData {
  spec: SweepSpec;
  job: ScanJob;
}

const jobSchema = z.object({
  spec: z.object({ model: z.string().min(1), task: z.string(), samples: z.number().int().positive(), seed: z.number().int() }),
  job: z.object({
    id: z.string().min(1),
    sweep: z.object({ task: z.string(), settings: z.record(z.string(), z.unknown()), model: z.any(), itemsHash: z.string(), total: z.number().int() }),
    items: z.array(z.number().int().nonnegative()).min(1),
  }),
});

/** Checks a job that came from outside this process; a malformed one is a HeadlensError naming the field. */
export function parseScanJob(data: unknown): ScanJobData {
  const r = jobSchema.safeParse(data);
  if (!r.success) {
    const iss = r.error.issues[0];
    throw new HeadlensError(`malformed scan job: ${iss.path.join('.') || 'the job'}: ${iss.message}`, 'submit jobs with headlens scan --queue or --workers');
  }
  return r.data as ScanJobData;
}

/** Runs jobs in this process, keeping the last model loaded and the scorers built for it. */
export class ScanJobRunner {
  private loaded?: { spec: string; model: HookedTransformer };
  private scorers = new Map<string, HeadScorer<any>>();

  constructor(private readonly backend?: string) {}

  /** Scores the job's items; `onItem(done, total)` after each, awaited (a queue worker renews its lock there). */
  async run(data: unknown, onItem?: (done: number, total: number) => void | Promise<void>): Promise<IndexedItemScores[]> {
    const { spec, job } = parseScanJob(data);
    if (!(SCAN_TASKS as readonly string[]).includes(spec.task) || spec.task === 'ioi') {
      throw new HeadlensError(`task '${spec.task}' cannot run as scan jobs`, `use one of ${SCAN_TASKS.filter((t) => t !== 'ioi').join(', ')}`);
    }
    const model = await this.model(spec.model);
    const key = JSON.stringify([spec.task, spec.samples, spec.seed]);
    let scorer = this.scorers.get(key);
    if (!scorer) {
      scorer = scanTask(model, spec.task as (typeof SCAN_TASKS)[number], { samples: spec.samples, seed: spec.seed }).scorer;
      this.scorers.set(key, scorer);
    }
    checkScanJob(model, scorer, job);
    const results: IndexedItemScores[] = [];
    for (const index of job.items) {
      // read asynchronously: a worker on WebGPU in Node cannot read synchronously
      results.push({ index, ...(await readAsync(scoreItemReads(scorer, model, index))) });
      await onItem?.(results.length, job.items.length);
      // let timers run between items (a queue worker's lock renewal)
      await new Promise((r) => setImmediate(r));
    }
    return results;
  }

  private async model(spec: string): Promise<HookedTransformer> {
    if (this.loaded?.spec === spec) return this.loaded.model;
    const model = await loadPretrained(spec, { backend: this.backend as BackendName | undefined });
    this.dispose();
    this.loaded = { spec, model };
    return model;
  }

  dispose(): void {
    this.loaded?.model.dispose();
    this.loaded = undefined;
    this.scorers.clear();
  }
}
