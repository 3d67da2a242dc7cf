/**
 * `headlens scan --workers N`: the scan split over local worker processes (dist/, built by npm test) equals the
 * single-process scan exactly, and a job that cannot run comes back with its reason while the others finish.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { runScanJob, scan, ScanCheckpoint, scanJobs } from '../src/interp/scores/scan.js';
import { scanTask } from '../src/interp/scores/tasks.js';
import { loadPretrained } from '../src/loading/load.js';
import { runLocalJobs } from '../src/cli/local_workers.js';
import type { ScanJobData } from '../src/cli/scan_job_runner.js';
import { runHeadlens } from './helpers.js';

const SCAN = ['scan', '--model', 'toy-lm', '--task', 'induction', '--samples', '6', '--json'];

let model: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained('toy-lm');
});
afterAll(() => model.dispose());

describe('headlens scan --workers', () => {
  it('scan --workers 3 gives exactly the single-process scan', async () => {
    const three = await runHeadlens([...SCAN, '--workers', '3']);
    expect(three.code, three.stderr).toBe(0);
    const out = JSON.parse(three.stdout);
    const one = scan(model, scanTask(model, 'induction', { samples: 6, seed: 0 }).scorer);
    expect({ scores: out.scores, top: out.top, tables: out.tables, counted: out.counted }).toEqual(JSON.parse(JSON.stringify({ scores: one.scores, top: one.top, tables: one.tables, counted: one.counted })));
    expect(out.counted).toEqual({ used: 6, total: 6 });
  });

  it('runLocalJobs: a job with an unknown model fails with its reason; the worker goes on with the other jobs', async () => {
    const spec = { model: 'toy-lm', task: 'induction', samples: 4, seed: 0 };
    const scorer = scanTask(model, 'induction', { samples: 4, seed: 0 }).scorer;
    const jobs = scanJobs(ScanCheckpoint.open(model, scorer), { jobSize: 2 });
    const bad: ScanJobData = { spec: { ...spec, model: '/nonexistent/headlens-model' }, job: jobs[0] };
    const got = new Map<string, unknown>();
    const failures = await runLocalJobs([bad, { spec, job: jobs[0] }, { spec, job: jobs[1] }], { workers: 1, backend: 'wasm', onResult: (d, r) => got.set(d.job.id, r) });
    expect(failures).toHaveLength(1);
    expect(failures[0].reason).toMatch(/nonexistent\/headlens-model/);
    expect(got.get(jobs[0].id)).toEqual(runScanJob(model, scorer, jobs[0]));
    expect(got.get(jobs[1].id)).toEqual(runScanJob(model, scorer, jobs[1]));
  });
});
