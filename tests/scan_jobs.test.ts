/**
 * A scan split into jobs: job ids come from the jobs' content, results merge into the scan's checkpoint by
 * item so a job merged twice counts once, a sweep planned again after a crash plans only what is missing
 * (with the same ids), and the merged answer equals the uninterrupted scan bit for bit.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { inductionSequences } from '../src/datasets/induction.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { inductionScorer } from '../src/interp/scores/induction.js';
import { runScanJob, scan, ScanCheckpoint, scanJobs } from '../src/interp/scores/scan.js';
import { plantedModel, PLANTED_TOK as TOK } from '../src/zoo/planted.js';

let model: HookedTransformer;
const tmp = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-scan-jobs-')), 'scan.json');
const induction = (seed = 8) => inductionScorer(inductionSequences({ n: 7, halfLength: 10, pool: TOK.CONTENT, bos: TOK.BOS, seed }).sequences);

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
});
afterAll(() => model.dispose());

describe('scan jobs', () => {
  it('scanJobs gives the same ids for the same sweep and other ids for other items or slices', () => {
    const a = scanJobs(ScanCheckpoint.open(model, induction()), { jobSize: 3 });
    const b = scanJobs(ScanCheckpoint.open(model, induction()), { jobSize: 3 });
    expect(a.map((j) => j.items)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
    expect(b.map((j) => j.id)).toEqual(a.map((j) => j.id));
    expect(new Set(a.map((j) => j.id)).size).toBe(3);
    const otherSeed = scanJobs(ScanCheckpoint.open(model, induction(9)), { jobSize: 3 });
    expect(otherSeed.map((j) => j.id).filter((id) => a.some((x) => x.id === id))).toEqual([]);
    const otherSize = scanJobs(ScanCheckpoint.open(model, induction()), { jobSize: 2 });
    expect(otherSize[0].id).not.toBe(a[0].id);
    expect(() => scanJobs(ScanCheckpoint.open(model, induction()), { jobSize: 0 })).toThrow(HeadlensError);
  });

  it('jobs merged out of order, one twice, into a checkpoint give the uninterrupted scan; the repeat counts once', () => {
    const whole = scan(model, induction());
    const file = tmp();
    const scorer = induction();
    const cp = ScanCheckpoint.open(model, scorer, { file });
    const jobs = scanJobs(cp, { jobSize: 2 });
    const results = jobs.map((j) => runScanJob(model, scorer, j));
    for (const k of [3, 1, 0, 2]) expect(cp.addJob(jobs[k], results[k])).toBe(jobs[k].items.length);
    expect(cp.addJob(jobs[1], results[1])).toBe(0); // the same job again: nothing new
    cp.save();
    expect(cp.count).toBe(7);
    const saved = JSON.parse(readFileSync(file, 'utf8'));
    expect(saved.results.map((r: { index: number }) => r.index).sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(cp.finish()).toEqual(whole);
    // and resuming that checkpoint finishes with nothing to do
    expect(scanJobs(ScanCheckpoint.open(model, induction(), { file, resume: true }), { jobSize: 2 })).toEqual([]);
    expect(scan(model, induction(), { checkpoint: file, resume: true })).toEqual(whole);
  });

  it('a sweep resumed after a crash plans only the missing items, under the ids it had', () => {
    const file = tmp();
    const scorer = induction();
    const cp = ScanCheckpoint.open(model, scorer, { file });
    const jobs = scanJobs(cp, { jobSize: 2 });
    cp.addJob(jobs[1], runScanJob(model, scorer, jobs[1]));
    cp.save(); // then the process dies
    const again = scanJobs(ScanCheckpoint.open(model, induction(), { file, resume: true }), { jobSize: 2 });
    expect(again.map((j) => j.id)).toEqual([jobs[0], jobs[2], jobs[3]].map((j) => j.id));
    expect(() => ScanCheckpoint.open(model, induction()).finish()).toThrow(/not scored yet/);
  });

  it('a job of another sweep is refused, by the runner and by the checkpoint', () => {
    const job = scanJobs(ScanCheckpoint.open(model, induction(9)))[0];
    expect(() => runScanJob(model, induction(), job)).toThrow(/another sweep.*items differ/);
    const cp = ScanCheckpoint.open(model, induction());
    expect(() => cp.addJob(job, runScanJob(model, induction(9), job))).toThrow(/another sweep/);
    const mine = scanJobs(cp)[0];
    expect(() => runScanJob(model, induction(), { ...mine, items: [99] })).toThrow(/item 99/);
  });

  it('a checkpoint of the first format (results in item order, no indices) still resumes', () => {
    const whole = scan(model, induction());
    const file = tmp();
    scan(model, induction(), { checkpoint: file });
    const v2 = JSON.parse(readFileSync(file, 'utf8'));
    const v1 = { ...v2, version: 1, results: v2.results.slice(0, 3).map(({ index: _, ...r }: { index: number }) => r) };
    delete v1.jobs;
    writeFileSync(file, JSON.stringify(v1));
    const cp = ScanCheckpoint.open(model, induction(), { file, resume: true });
    expect(cp.missing()).toEqual([3, 4, 5, 6]);
    expect(scan(model, induction(), { checkpoint: file, resume: true })).toEqual(whole);
  });
});
