/**
 * Scans as jobs on a BullMQ queue, with a real redis-server on a free loopback port (tests/redis_server.ts):
 * split over 3 `headlens worker` processes the scan equals the single-process scan exactly; a worker killed
 * with SIGKILL in the middle of a job loses nothing and counts nothing twice (BullMQ hands the job to another
 * worker once its lock expires); an unreachable queue is one clear error; a job that cannot run fails with its
 * reason and the worker goes on; `headlens collect` finishes a scan whose submitter was killed. The local `--workers N` processes are tested in tests/scan_workers.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { runScanJob, scan, ScanCheckpoint, scanJobs } from '../src/interp/scores/scan.js';
import { scanTask } from '../src/interp/scores/tasks.js';
import { loadPretrained } from '../src/loading/load.js';
import type { ScanJobData } from '../src/cli/scan_job_runner.js';
import { parseQueueUrl } from '../src/cli/scan_queue.js';
import { HeadlensError } from '../src/errors.js';
import { BIN, ROOT, runHeadlens } from './helpers.js';
import { freePort, startRedis, type RedisServer } from './redis_server.js';

const SAMPLES = 12;
const SCAN = ['scan', '--model', 'toy-lm', '--task', 'induction', '--samples', String(SAMPLES)];

let redis: RedisServer;
let model: HookedTransformer;
/** The single-process scan, as the CLI's JSON would carry it. */
let reference: Record<string, unknown>;
const workers: ChildProcess[] = [];

/** A `headlens worker` process on `queueName`, its stderr kept. */
function startWorker(queueName: string): { child: ChildProcess; log: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'worker', '--queue', redis.url, '--queue-name', queueName, '--lock-seconds', '2'], { cwd: ROOT, env: { ...process.env, HEADLENS_BACKEND: 'wasm' }, stdio: ['ignore', 'ignore', 'pipe'] });
  workers.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, log: () => log, exited };
}

async function stopWorker(w: ReturnType<typeof startWorker>): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await w.exited;
}

const connection = () => ({ host: '127.0.0.1', port: redis.port });
const completedLines = (log: string) => log.split('\n').filter((l) => / completed$/.test(l));

beforeAll(async () => {
  redis = await startRedis();
  await initBackend({ backend: 'wasm' });
  model = await loadPretrained('toy-lm');
  const r = scan(model, scanTask(model, 'induction', { samples: SAMPLES, seed: 0 }).scorer);
  reference = JSON.parse(JSON.stringify({ scores: r.scores, top: r.top, tables: r.tables, counted: r.counted }));
}, 60_000);

afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  model?.dispose();
  await redis?.stop();
});

const pick = (out: Record<string, unknown>) => ({ scores: out.scores, top: out.top, tables: out.tables, counted: out.counted });

describe('headlens scan --queue', () => {
  it('a scan split over 3 worker processes equals the single-process scan exactly, each job done once', async () => {
    const ws = [startWorker('three'), startWorker('three'), startWorker('three')];
    const r = await runHeadlens([...SCAN, '--queue', redis.url, '--queue-name', 'three', '--job-size', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(pick(JSON.parse(r.stdout))).toEqual(reference);
    await Promise.all(ws.map(stopWorker));
    const lines = ws.flatMap((w) => completedLines(w.log()));
    expect(lines).toHaveLength(SAMPLES); // 12 jobs of one item, each completed by exactly one worker
    expect(new Set(lines.map((l) => l.split(' ')[2])).size).toBe(SAMPLES);
  });

  it('a worker killed with SIGKILL in the middle of a job: another finishes it; nothing lost, nothing counted twice', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-queue-')), 'scan.json');
    // one job of all 12 items, so the kill lands inside it
    // a named checkpoint outlives the finished scan (the default FILE.partial.json is removed): read below
    const submit = runHeadlens([...SCAN, '--queue', redis.url, '--queue-name', 'kill', '--job-size', String(SAMPLES), '--out', out, '--checkpoint', `${out}.checkpoint.json`]);
    const a = startWorker('kill');
    const queue = new Queue('kill', { connection: connection() });
    try {
      let active;
      for (;;) {
        [active] = await queue.getJobs(['active']);
        if (active && Number(active.progress) > 0) break; // at least one item scored, the job not returned
        await new Promise((r) => setTimeout(r, 20));
      }
      a.child.kill('SIGKILL');
      await a.exited;
      const job = (await queue.getJob(active.id!))!;
      expect(await job.getState()).toBe('active'); // killed mid-job: neither completed nor failed
      expect(Number(job.progress)).toBeLessThan(100);
      const b = startWorker('kill');
      const r = await submit;
      expect(r.code, r.stderr).toBe(0);
      await stopWorker(b);
      expect(pick(JSON.parse(readFileSync(out, 'utf8')))).toEqual(reference);
      const cp = JSON.parse(readFileSync(`${out}.checkpoint.json`, 'utf8'));
      expect(cp.results.map((x: { index: number }) => x.index).sort((p: number, q: number) => p - q)).toEqual([...Array(SAMPLES).keys()]);
      expect(cp.jobs).toEqual([active.id]);
      expect(completedLines(a.log())).toEqual([]);
      expect(completedLines(b.log())).toHaveLength(1);
    } finally {
      await queue.close();
    }
  });

  it('headlens collect finishes a queued scan whose submitting command was killed', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-queue-')), 'scan.json');
    const submitter = spawn(process.execPath, [BIN, ...SCAN, '--queue', redis.url, '--queue-name', 'collect', '--job-size', '4', '--out', out], { cwd: ROOT, env: { ...process.env, HEADLENS_BACKEND: 'wasm' }, stdio: 'ignore' });
    const gone = new Promise((r) => submitter.on('exit', r));
    const queue = new Queue('collect', { connection: connection() });
    try {
      // the jobs are on the queue (and the sweep in its checkpoint) before any worker exists; then the submitter dies
      while ((await queue.getJobCounts('waiting')).waiting < 3) await new Promise((r) => setTimeout(r, 50));
      submitter.kill('SIGKILL');
      await gone;
      const w = startWorker('collect');
      const r = await runHeadlens(['collect', '--queue', redis.url, '--queue-name', 'collect', '--out', out]);
      expect(r.code, r.stderr).toBe(0);
      await stopWorker(w);
      expect(pick(JSON.parse(readFileSync(out, 'utf8')))).toEqual(reference);
      expect(completedLines(w.log())).toHaveLength(3); // the three jobs, each once: collect added none again
    } finally {
      await queue.close();
    }
  });

  it('an unreachable queue is one clear error, for scan and for worker', async () => {
    const port = await freePort();
    for (const args of [[...SCAN, '--queue', `redis://127.0.0.1:${port}`, '--json'], ['worker', '--queue', `redis://127.0.0.1:${port}`]]) {
      const r = await runHeadlens(args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('headlens:'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`cannot reach the queue at redis://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
    }
    expect(() => parseQueueUrl('http://127.0.0.1:6379')).toThrow(/only redis:\/\/ queues/);
    expect(() => parseQueueUrl('127.0.0.1:6379')).toThrow(HeadlensError);
    expect(parseQueueUrl('redis://u:secret@10.0.0.5:7000/2')).toEqual({ options: { host: '10.0.0.5', port: 7000, username: 'u', password: 'secret', db: 2 }, shown: 'redis://10.0.0.5:7000/2' });
  });

  it('bad jobs (an unknown model, a task the model cannot run) fail with their reason, at once; the worker goes on', async () => {
    const spec = { model: 'toy-lm', task: 'induction', samples: 4, seed: 0 };
    const scorer = scanTask(model, 'induction', { samples: 4, seed: 0 }).scorer;
    const [good] = scanJobs(ScanCheckpoint.open(model, scorer), { jobSize: 4 });
    const jobs: Record<string, ScanJobData> = {
      unknownModel: { spec: { ...spec, model: '/nonexistent/headlens-model' }, job: { ...good, id: 'unknown-model' } },
      noTokenizer: { spec: { ...spec, model: 'toy-induction-2l', task: 'temporal' }, job: { ...good, id: 'no-tokenizer' } },
      good: { spec, job: good },
    };
    const queue = new Queue('bad', { connection: connection() });
    const w = startWorker('bad');
    try {
      for (const d of Object.values(jobs)) await queue.add('scan', d, { jobId: d.job.id, attempts: 3 });
      const state = async (id: string) => (await queue.getJob(id))!.getState();
      while ((await Promise.all(Object.values(jobs).map((d) => state(d.job.id)))).some((s) => s !== 'completed' && s !== 'failed')) await new Promise((r) => setTimeout(r, 50));
      const unknown = (await queue.getJob('unknown-model'))!;
      expect(await unknown.getState()).toBe('failed');
      expect(unknown.failedReason).toMatch(/nonexistent\/headlens-model/);
      expect(unknown.attemptsMade).toBe(1); // not retried: it would fail again
      const noTok = (await queue.getJob('no-tokenizer'))!;
      expect(await noTok.getState()).toBe('failed');
      expect(noTok.failedReason).toMatch(/task temporal needs a model with a tokenizer/);
      const ok = (await queue.getJob(good.id))!;
      expect(await ok.getState()).toBe('completed');
      expect(ok.returnvalue.results).toEqual(JSON.parse(JSON.stringify(runScanJob(model, scorer, good))));
      expect(w.child.exitCode).toBe(null); // the same worker, still running
      expect(w.log()).toMatch(/job unknown-mode.* failed: /);
    } finally {
      await stopWorker(w);
      await queue.close();
    }
    expect(existsSync(BIN)).toBe(true);
  });
});
