/**
 * scan: a scan killed after k items and resumed gives results identical to an uninterrupted one, recomputing
 * nothing; a checkpoint is only resumed for the same task, settings, model and items.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { inductionSequences } from '../src/datasets/induction.js';
import { needleTokenTrials } from '../src/datasets/needle.js';
import { HeadlensError } from '../src/errors.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { scan } from '../src/interp/scores/scan.js';
import type { HeadScorer } from '../src/interp/scores/head_scores.js';
import { inductionScorer } from '../src/interp/scores/induction.js';
import { retrievalScorer } from '../src/interp/scores/retrieval.js';
import { plantedModel, PLANTED_TOK as TOK } from '../src/zoo/planted.js';

let model: HookedTransformer;
const tmp = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'headlens-scan-')), 'scan.json');

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  model = plantedModel();
});
afterAll(() => model.dispose());

/** The scorer, counting calls, and throwing (a simulated crash) when item `crashAt` is reached. */
function instrumented<S>(scorer: HeadScorer<S>, crashAt = -1): { scorer: HeadScorer<S>; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    scorer: {
      ...scorer,
      scoreItem: (m, item, i) => {
        if (i === crashAt) throw new Error('killed');
        calls.push(i);
        return scorer.scoreItem(m, item, i);
      },
    },
  };
}

const needle = () =>
  retrievalScorer(
    needleTokenTrials({ contextLengths: [20, 30], depths: [0, 50, 100], haystackPool: TOK.CONTENT, needlePool: [...TOK.LABELS, ...TOK.YEAR_ANSWERS], needleLength: 4, bos: TOK.BOS, seed: 5 }).trials,
    { maxNewTokens: 6 },
  );
const induction = () => inductionScorer(inductionSequences({ n: 6, halfLength: 12, pool: TOK.CONTENT, bos: TOK.BOS, seed: 8 }).sequences);

describe('scan', () => {
  it.each([
    { name: 'induction', make: induction as () => HeadScorer<unknown>, k: 2 },
    { name: 'retrieval', make: needle as () => HeadScorer<unknown>, k: 4 },
  ])('scan(model, $name scorer, {checkpoint}) killed after $k items, then resumed, equals an uninterrupted scan', ({ make, k }) => {
    const whole = scan(model, make());
    const file = tmp();
    const crashing = instrumented(make(), k);
    expect(() => scan(model, crashing.scorer, { checkpoint: file })).toThrow('killed');
    expect(JSON.parse(readFileSync(file, 'utf8')).results).toHaveLength(k);
    const resumed = instrumented(make());
    const r = scan(model, resumed.scorer, { checkpoint: file, resume: true });
    expect(resumed.calls).toEqual(Array.from({ length: make().items.length - k }, (_, i) => k + i)); // nothing recomputed
    expect(r).toEqual(whole); // bit-identical tables, top and counts
    // resuming a finished scan computes nothing and gives the same answer
    const again = instrumented(make());
    expect(scan(model, again.scorer, { checkpoint: file, resume: true })).toEqual(whole);
    expect(again.calls).toEqual([]);
  });

  it('scan refuses to resume a checkpoint of other items or settings, and to overwrite one', () => {
    const file = tmp();
    scan(model, induction(), { checkpoint: file });
    expect(existsSync(file)).toBe(true);
    expect(() => scan(model, induction(), { checkpoint: file })).toThrow(HeadlensError);
    const other = inductionScorer(inductionSequences({ n: 6, halfLength: 12, pool: TOK.CONTENT, bos: TOK.BOS, seed: 9 }).sequences);
    expect(() => scan(model, other, { checkpoint: file, resume: true })).toThrow(/items differ/);
    const otherSettings = inductionScorer(inductionSequences({ n: 6, halfLength: 12, pool: TOK.CONTENT, bos: TOK.BOS, seed: 8 }).sequences, { excludeBos: true });
    expect(() => scan(model, otherSettings, { checkpoint: file, resume: true })).toThrow(/settings differ/);
  });
});
