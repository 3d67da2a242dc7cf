/**
 * The asynchronous forms on WebGPU in Node (SwiftShader, a CPU Vulkan), where tfjs refuses synchronous reads: each
 * `…Async` scorer and analysis on the planted model (src/zoo/planted.ts) gives what its synchronous form gives on
 * wasm, computed first in this same process (the model is built again on each backend). The planted model's
 * patterns are [1, 3, pos, pos] with pos ≥ 24 (over tfjs' CPU hand-off of 1,000 values), so the tensors read live
 * on the GPU: the synchronous form on webgpu is refused, which the first case checks. `headlens scan` on WebGPU
 * (a child process) prints the JSON it prints on wasm.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { inductionSequences } from '../src/datasets/induction.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { directLogitAttribution, directLogitAttributionAsync } from '../src/interp/attribution/dla.js';
import { headAblationHooks } from '../src/interp/interventions/ablation.js';
import { edgeAttribution, edgeAttributionAsync } from '../src/interp/interventions/eap.js';
import { attributionPatching, attributionPatchingAsync } from '../src/interp/interventions/attribution_patching.js';
import { logitLensSummary, logitLensSummaryAsync } from '../src/interp/attribution/logit_lens.js';
import { compositionScores, compositionScoresAsync } from '../src/interp/weights/composition.js';
import { circuitSvd, circuitSvdAsync } from '../src/interp/weights/svd_interpreter.js';
import { pathPatchingSweep, pathPatchingSweepAsync } from '../src/interp/interventions/path_patching.js';
import { logitDiff } from '../src/interp/metrics.js';
import { correctLetterScores, correctLetterScoresAsync } from '../src/interp/scores/correct_letter.js';
import { inductionScorer, inductionScores, inductionScoresAsync } from '../src/interp/scores/induction.js';
import { retrievalScores, retrievalScoresAsync, retrievalScoresTeacherForced, retrievalScoresTeacherForcedAsync, decodesExactly, decodesExactlyAsync } from '../src/interp/scores/retrieval.js';
import { scan, scanAsync } from '../src/interp/scores/scan.js';
import { streamingScores, streamingScoresAsync } from '../src/interp/scores/streaming.js';
import { temporalScores, temporalScoresAsync } from '../src/interp/scores/temporal.js';
import { PLANTED, PLANTED_TOK as TOK, plantedIoiPrompts, plantedLetterPrompts, plantedModel, plantedNeedleTrials, plantedTemporalPairs } from '../src/zoo/planted.js';
import { runHeadlens, startSoftwareWebGPU } from './helpers.js';

const TOL = 1e-4;

// the inputs of every case: small, but every pattern is over the CPU hand-off
const seqs = inductionSequences({ n: 2, halfLength: 12, pool: TOK.CONTENT, bos: TOK.BOS, seed: 8 }).sequences; // 25 tokens each
const trials = plantedNeedleTrials().filter((t) => t.tokens.length >= 24 && t.tokens.length <= 40).slice(0, 1);
const letters = plantedLetterPrompts(1, false);
const pairs = plantedTemporalPairs().slice(0, 1); // one time-dependent pair
const ioi = plantedIoiPrompts(1);
const ioiOpts = { clean: ioi.map((p) => p.clean), corrupted: ioi.map((p) => p.corrupted), metric: logitDiff(ioi.map((p) => p.io), ioi.map((p) => p.s)) };
const masked = (m: HookedTransformer) => headAblationHooks(m, [PLANTED.induction], { kind: 'uniform' });

/** Each case: the synchronous form (run on wasm) and the asynchronous one (run on webgpu), on a model of that backend. */
const CASES: Record<string, { sync: (m: HookedTransformer) => unknown; async: (m: HookedTransformer) => Promise<unknown> }> = {
  'inductionScoresAsync (pattern detectors)': { sync: (m) => inductionScores(m, seqs), async: (m) => inductionScoresAsync(m, seqs) },
  'streamingScoresAsync (attention mass)': { sync: (m) => streamingScores(m, seqs, { sinkTokens: 1, recent: 4 }), async: (m) => streamingScoresAsync(m, seqs, { sinkTokens: 1, recent: 4 }) },
  'retrievalScoresAsync (KV-cached decoding, last query rows)': { sync: (m) => retrievalScores(m, trials, { maxNewTokens: 4 }), async: (m) => retrievalScoresAsync(m, trials, { maxNewTokens: 4 }) },
  'retrievalScoresTeacherForcedAsync': { sync: (m) => retrievalScoresTeacherForced(m, trials), async: (m) => retrievalScoresTeacherForcedAsync(m, trials) },
  'decodesExactlyAsync with the retrieval head masked while decoding': {
    sync: (m) => trials.map((t) => decodesExactly(m, t.tokens, t.answer, [], masked(m))),
    async: async (m) => Promise.all(trials.map((t) => decodesExactlyAsync(m, t.tokens, t.answer, [], masked(m)))),
  },
  'correctLetterScoresAsync (DLA and attention)': { sync: (m) => correctLetterScores(m, letters), async: (m) => correctLetterScoresAsync(m, letters) },
  'temporalScoresAsync (activation patching)': { sync: (m) => temporalScores(m, pairs), async: (m) => temporalScoresAsync(m, pairs) },
  // (ioiHeadClassesAsync is these sweeps with more reads around them; on SwiftShader it alone took 25–45 s, so it runs on wasm only, in headlens scan --task ioi's tests)
  'pathPatchingSweepAsync (to a head\'s query: steps 2 and 3)': {
    sync: (m) => labelledJson(pathPatchingSweep(m, { kind: 'heads', heads: [PLANTED.induction], inputs: ['q'] }, ioiOpts)),
    async: async (m) => labelledJson(await pathPatchingSweepAsync(m, { kind: 'heads', heads: [PLANTED.induction], inputs: ['q'] }, ioiOpts)),
  },
  'directLogitAttributionAsync': {
    sync: (m) => labelledJson(directLogitAttribution(m, ioiOpts.clean, { answer: ioi.map((p) => p.io), wrong: ioi.map((p) => p.s) })),
    async: async (m) => labelledJson(await directLogitAttributionAsync(m, ioiOpts.clean, { answer: ioi.map((p) => p.io), wrong: ioi.map((p) => p.s) })),
  },
  'edgeAttributionAsync (EAP) and attributionPatchingAsync (gradients)': {
    sync: (m) => ({ eap: eapJson(edgeAttribution(m, ioiOpts)), atp: labelledJson(attributionPatching(m, 'head-out', ioiOpts)) }),
    async: async (m) => ({ eap: eapJson(await edgeAttributionAsync(m, ioiOpts)), atp: labelledJson(await attributionPatchingAsync(m, 'head-out', ioiOpts)) }),
  },
  'logitLensSummaryAsync': { sync: (m) => logitLensSummary(m, ioiOpts.clean, { answer: ioi.map((p) => p.io) }), async: (m) => logitLensSummaryAsync(m, ioiOpts.clean, { answer: ioi.map((p) => p.io) }) },
  'compositionScoresAsync and circuitSvdAsync (weights read with await)': {
    sync: (m) => ({ comp: compositionScores(m, 'k'), svd: circuitSvd(m, 1, 0, 'ov') }),
    async: async (m) => ({ comp: await compositionScoresAsync(m, 'k'), svd: await circuitSvdAsync(m, 1, 0, 'ov') }),
  },
  'scanAsync (the checkpointed sweep)': { sync: (m) => scan(m, inductionScorer(seqs)), async: (m) => scanAsync(m, inductionScorer(seqs)) },
};

function eapJson(r: { scores: { axes: unknown; values: Float64Array; meta: unknown }; edges: unknown }): unknown {
  return { scores: labelledJson(r.scores), edges: r.edges };
}

function labelledJson(l: { axes: unknown; values: Float64Array; meta: unknown }): unknown {
  return { axes: l.axes, values: Array.from(l.values), meta: l.meta };
}

/** a equals b, numbers within `tol` (NaN equals NaN), everything else exactly. */
function expectClose(a: unknown, b: unknown, where = ''): void {
  if (typeof a === 'number' && typeof b === 'number') {
    if (Number.isNaN(a) || Number.isNaN(b)) expect(Number.isNaN(a) && Number.isNaN(b), where).toBe(true);
    else expect(Math.abs(a - b), `${where}: ${a} vs ${b}`).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(b)));
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    expect(a.length, where).toBe(b.length);
    a.forEach((x, i) => expectClose(x, b[i], `${where}[${i}]`));
    return;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    expect(Object.keys(a).sort(), where).toEqual(Object.keys(b).sort());
    for (const k of Object.keys(a)) expectClose((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${where}.${k}`);
    return;
  }
  expect(a, where).toEqual(b);
}

const onWasm: Record<string, unknown> = {};
let gpu: HookedTransformer;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  const m = plantedModel();
  for (const [name, c] of Object.entries(CASES)) onWasm[name] = JSON.parse(JSON.stringify(c.sync(m)));
  m.dispose();
  await startSoftwareWebGPU();
  gpu = plantedModel(); // its weights made on webgpu
});

describe('the asynchronous forms on WebGPU (SwiftShader) equal the synchronous forms on wasm', () => {
  it('on webgpu the synchronous form is refused (its reads are of GPU tensors), not answered', () => {
    expect(tf.getBackend()).toBe('webgpu');
    expect(() => inductionScores(gpu, seqs)).toThrow(/inductionScores|Async|asynchronous/);
  });

  // the model's cached weights (fused QKV) were made by the first case's forward, so each call must leave numTensors as it found it
  it.each(Object.keys(CASES))('%s, leaving tf.memory().numTensors unchanged', async (name) => {
    const before = tf.memory().numTensors;
    const got = JSON.parse(JSON.stringify(await CASES[name].async(gpu)));
    expect(tf.memory().numTensors, name).toBe(before);
    expectClose(got, onWasm[name], name);
  });
});

// the causal check (taskCausalCheckAsync → maskHeadsCheckAsync) runs in this scan
describe('headlens scan --backend webgpu (SwiftShader) in Node', () => {
  // toy-induction-2l (trained weights) rather than the planted model: the planted logits tie exactly at some positions,
  // and a tie's argmax may differ on the GPU, which would move the causal check's accuracy without anything being wrong
  it('scan --task induction --causal on toy-induction-2l prints the JSON that wasm prints (within 1e-4)', async () => {
    const args = ['scan', '--model', 'toy-induction-2l', '--task', 'induction', '--samples', '2', '--workers', '1', '--causal', '--k', '1', '--draws', '1', '--json'];
    const wasm = await runHeadlens(args);
    const webgpu = await runHeadlens(args, { HEADLENS_BACKEND: 'webgpu', HEADLENS_WEBGPU_ADAPTER: 'swiftshader' });
    expect(wasm.code, wasm.stderr).toBe(0);
    expect(webgpu.code, webgpu.stderr).toBe(0);
    const a = JSON.parse(webgpu.stdout);
    const b = JSON.parse(wasm.stdout);
    expect(b.causal.top.main).toBeLessThan(b.causal.baseline.main); // the check ran: masking the top induction head costs accuracy
    expectClose(a, b, 'scan');
  });
});
