/**
 * Large batches on WebGPU, row by row against small batches (issue 18 §1: no silent wrong numbers).
 * Runs on the GPU machine, where vitest cannot (no Node.js there: see ../shared/device); also on wasm here
 * with tiny shapes, so a typo never costs device time:
 *   node --import tsx tests/device/large_batch.ts --backend wasm --preset tiny --pos 6 --batches 2,4,8 \
 *     --ref-chunk 2 --op-batch 8 --op-chunk 2 --sweep-batch 2 --full-batches 4 --out /tmp/lb
 * GPU: `../shared/device/pack.sh tests/device/large_batch.ts "--banner:js=const __import_meta_url =
 * require('url').pathToFileURL(__filename).href;" "--define:import.meta.url=__import_meta_url"
 * '--define:import.meta.dirname="tests"'`, then (carry .device) `bash .device/boot.sh --out $OUT`; add
 * `--scopes no` to leave WebGPU's errors to headlens' own guard (src/backend/webgpu_guard.ts) instead.
 * In one process it
 *  1. prints the adapter's limits and the limits the device was granted (the backend's device);
 *  2. watches every step through WebGPU error scopes (validation, out-of-memory, internal) and the device's
 *     uncapturederror event, so an error Dawn reports but tfjs never reads is seen;
 *  3. runs GPT-2 small's shape (random weights) on growing batches × pos tokens and compares each row's
 *     last-position logits with the same row run in batches of --ref-chunk rows (max |diff| per row);
 *  4. runs each op of the forward once at --op-batch rows and again in slices of --op-chunk rows and compares
 *     them element by element, naming the first wrong element's flat index and byte offset;
 *  5. the batched head-out sweep in one pass against passes of at most 64 MiB of scores (the failing case);
 *  6. full logits [batch, pos, d_vocab] at --full-batches (buffers of GBs: binding and buffer limits).
 * Everything goes into OUT/large_batch.json, rewritten after each step (a timeout still leaves the steps done).
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { PRESETS } from '../../src/bench/bench.js';
import { patchHeadsSweepAsync } from '../../src/bench/head_sweep.js';
import { HookedTransformer } from '../../src/hooks/hooked_transformer.js';
import { activation } from '../../src/model/activation.js';
import { makeConfig } from '../../src/model/config.js';
import { Random } from '../../src/util/random.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const list = (s: string) => s.split(',').filter(Boolean).map(Number);

const outDir = arg('out', process.env.OUT ?? '.');
const report: Record<string, unknown> = { started: new Date().toISOString(), argv: process.argv.slice(2) };
const steps: Record<string, unknown>[] = [];
report.steps = steps;
const save = () => writeFileSync(path.join(outDir, 'large_batch.json'), JSON.stringify(report, null, 1));
const t0 = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${line}`);

// ---- WebGPU errors -------------------------------------------------------------------------------------------
interface GPUErrorish {
  message: string;
  constructor: { name: string };
}
interface Deviceish {
  limits: Record<string, number>;
  features: Set<string>;
  pushErrorScope(f: string): void;
  popErrorScope(): Promise<GPUErrorish | null>;
  addEventListener?(t: string, f: (e: { error: GPUErrorish }) => void): void;
  onuncapturederror?: unknown;
  lost?: Promise<{ reason: string; message: string }>;
}
const uncaptured: string[] = [];
let device: Deviceish | undefined;
const SCOPES = ['validation', 'out-of-memory', 'internal'];
const describe = (e: GPUErrorish) => `${e.constructor?.name ?? 'GPUError'}: ${e.message}`.slice(0, 600);

/** Runs `fn` inside error scopes; returns its value and every error Dawn reported meanwhile. */
async function watched<T>(fn: () => Promise<T>): Promise<{ value?: T; threw?: string; gpu_errors: string[] }> {
  const gpu_errors: string[] = [];
  const scoped = device && arg('scopes', 'yes') === 'yes';
  if (scoped) for (const s of SCOPES) device!.pushErrorScope(s);
  let value: T | undefined;
  let threw: string | undefined;
  try {
    value = await fn();
  } catch (e) {
    threw = `${(e as Error).name}: ${(e as Error).message}`.slice(0, 1000);
  }
  if (scoped) {
    // make sure everything encoded so far is submitted before the scopes close
    const b = tf.backend() as unknown as { submitQueue?: () => void };
    try {
      b.submitQueue?.();
    } catch {
      /* nothing queued */
    }
    for (let i = 0; i < SCOPES.length; i++) {
      const e = await device!.popErrorScope();
      if (e) gpu_errors.push(describe(e));
    }
  }
  if (uncaptured.length) gpu_errors.push(...uncaptured.splice(0).map((m) => `uncaptured ${m}`));
  return { value, threw, gpu_errors };
}

function memory(): Record<string, number> {
  const m = tf.memory() as unknown as Record<string, number>;
  return { numTensors: m.numTensors, numBytes: m.numBytes, numBytesInGPU: m.numBytesInGPU ?? 0, numBytesAllocatedInGPU: m.numBytesAllocatedInGPU ?? 0 };
}

async function step(name: string, fn: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const start = performance.now();
  const r = await watched(fn);
  const entry = { step: name, ms: Math.round(performance.now() - start), ...(r.value ?? {}), threw: r.threw, gpu_errors: r.gpu_errors, memory: memory() };
  steps.push(entry);
  save();
  const brief = Object.fromEntries(Object.entries(entry).filter(([k, v]) => k !== 'memory' && k !== 'rows' && !(Array.isArray(v) && v.length === 0) && v !== undefined));
  log(JSON.stringify(brief));
  return entry;
}

// ---- comparisons ---------------------------------------------------------------------------------------------
interface Comparison {
  max_abs_diff: number;
  max_abs_ref: number;
  n_bad: number;
  first_bad_index?: number;
  first_bad_byte?: number;
  last_bad_index?: number;
  n_nonfinite_ref: number;
}

/** Element by element; `bad` is a difference above tol (NaN against a number counts). Equal non-finite values agree. */
function compare(got: Float32Array, ref: Float32Array, tol = 0): Comparison {
  if (got.length !== ref.length) throw new Error(`compare: ${got.length} values against ${ref.length}`);
  let maxDiff = 0;
  let maxRef = 0;
  let nBad = 0;
  let nonFinite = 0;
  let first: number | undefined;
  let last: number | undefined;
  for (let i = 0; i < got.length; i++) {
    const a = got[i];
    const b = ref[i];
    if (!Number.isFinite(b)) nonFinite++;
    else if (Math.abs(b) > maxRef) maxRef = Math.abs(b);
    if (a === b) continue;
    const d = Math.abs(a - b);
    if (Number.isNaN(d) || d > tol) {
      nBad++;
      first ??= i;
      last = i;
    }
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
  }
  return { max_abs_diff: maxDiff, max_abs_ref: maxRef, n_bad: nBad, first_bad_index: first, first_bad_byte: first === undefined ? undefined : first * 4, last_bad_index: last, n_nonfinite_ref: nonFinite };
}

/** Per row of `width` values: max |diff|. */
function rowDiffs(got: Float32Array, ref: Float32Array, width: number): number[] {
  const rows = got.length / width;
  const out: number[] = [];
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = r * width; i < (r + 1) * width; i++) {
      const d = Math.abs(got[i] - ref[i]);
      m = Number.isNaN(d) ? Infinity : Math.max(m, d);
    }
    out.push(m);
  }
  return out;
}

async function read(t: tf.Tensor): Promise<Float32Array> {
  const d = (await t.data()) as Float32Array;
  t.dispose();
  return d;
}

// ---- the model -----------------------------------------------------------------------------------------------
function tokenRows(n: number, pos: number, vocab: number, seed: number): number[][] {
  const rng = new Random(seed);
  return Array.from({ length: n }, () => Array.from({ length: pos }, () => rng.int(0, vocab)));
}

/** Last-position logits [rows, d_vocab] of one forward over all rows. */
function lastLogits(model: HookedTransformer, rows: number[][]): tf.Tensor2D {
  const { n_layers: L, d_model: d, d_vocab: V } = model.cfg;
  const pos = rows[0].length;
  return tf.tidy(() => {
    const resid = model.forward(rows, { stopAtLayer: L }); // [batch, pos, d_model]
    const last = resid.slice([0, pos - 1, 0], [rows.length, 1, d]); // [batch, 1, d_model]
    return model.unembed(model.applyNorm('ln_final', last)).reshape([rows.length, V]) as tf.Tensor2D;
  });
}

// ---- op isolation --------------------------------------------------------------------------------------------
interface OpCase {
  name: string;
  /** Inputs whose axis 0 is split into slices ([rows, …]); `perRow`: how many axis-0 entries one batch row has. */
  batched: { t: tf.Tensor; perRow: number }[];
  shared: tf.Tensor[];
  fn: (batched: tf.Tensor[], shared: tf.Tensor[]) => tf.Tensor;
}

async function opOnceAndSliced(op: OpCase, rows: number, chunk: number): Promise<Record<string, unknown>> {
  const once = tf.tidy(() => op.fn(op.batched.map((b) => b.t), op.shared));
  const shape = once.shape;
  const full = await read(once);
  const sliced = new Float32Array(full.length);
  let offset = 0;
  for (let lo = 0; lo < rows; lo += chunk) {
    const hi = Math.min(rows, lo + chunk);
    const part = tf.tidy(() =>
      op.fn(
        op.batched.map((b) => b.t.slice(lo * b.perRow, (hi - lo) * b.perRow)),
        op.shared,
      ),
    );
    const v = await read(part);
    sliced.set(v, offset);
    offset += v.length;
  }
  const c = compare(full, sliced);
  return { op: op.name, shape, bytes: full.length * 4, ...c };
}

function opCases(model: HookedTransformer, B: number, pos: number, chunk: number): OpCase[] {
  const { n_heads: h, d_head: e, d_model: d, d_mlp } = model.cfg;
  const m = d_mlp!;
  const rnd = (shape: number[], seed: number, std = 1) => tf.randomNormal(shape, 0, std, 'float32', seed);
  const maskRows = Array.from({ length: pos }, (_, q) => Array.from({ length: pos }, (_, k) => (k <= q ? 0 : -Infinity)));
  const mask = tf.tensor2d(maskRows); // [query_pos, key_pos]
  const q = rnd([B, h, pos, e], 1); // [batch, head, query_pos, d_head]
  const k = rnd([B, h, pos, e], 2);
  const v = rnd([B, h, pos, e], 3);
  const z = rnd([B, pos, h, e], 4); // [batch, pos, head, d_head]
  const scores = rnd([B, h, pos, pos], 5, 3); // [batch, head, query_pos, key_pos]
  const masked = tf.tidy(() => scores.add(mask));
  const x2d = rnd([B * pos, d], 6); // [batch*pos, d_model]
  const hid = rnd([B * pos, m], 7); // [batch*pos, d_mlp]
  const x3d = x2d.reshape([B, pos, d]);
  const Wqkv = rnd([d, 3 * d], 8, 0.02);
  const bqkv = rnd([3 * d], 9, 0.02);
  const Win = rnd([d, m], 10, 0.02);
  const bin = rnd([m], 11, 0.02);
  const Wout = rnd([m, d], 12, 0.02);
  const bout = rnd([d], 13, 0.02);
  const resid0 = rnd([1, pos, d], 14).tile([B, 1, 1]); // for the tile case: [batch, pos, d_model]
  // the patching hook's select (patching.ts stackedHooks): variants of `prompts` rows, one head patched in each
  const prompts = chunk;
  const variants = Math.ceil(B / prompts);
  const headMask = tf.tensor(Array.from({ length: variants * h }, (_, i) => (i % h === Math.floor(i / h) % h ? 1 : 0)), [variants, 1, 1, h, 1], 'bool');
  const zSrc = rnd([prompts, pos, h, e], 15); // [prompts, pos, head, d_head]
  const all = (c: OpCase[]) => c;
  return all([
    { name: 'transpose_0213 [b,pos,h,e]→[b,h,pos,e]', batched: [{ t: z, perRow: 1 }], shared: [], fn: ([x]) => x.transpose([0, 2, 1, 3]) },
    { name: 'matmul_qk q·kᵀ [b,h,pos,pos]', batched: [{ t: q, perRow: 1 }, { t: k, perRow: 1 }], shared: [], fn: ([a, b]) => tf.matMul(a, b, false, true) },
    { name: 'scale_mask s/8+mask', batched: [{ t: scores, perRow: 1 }], shared: [mask], fn: ([s], [mk]) => s.div(8).add(mk) },
    { name: 'softmax [b,h,pos,pos]', batched: [{ t: masked, perRow: 1 }], shared: [], fn: ([s]) => tf.softmax(s, -1) },
    { name: 'matmul_pv pattern·v [b,h,pos,e]', batched: [{ t: masked, perRow: 1 }, { t: v, perRow: 1 }], shared: [], fn: ([s, vv]) => tf.matMul(tf.softmax(s, -1), vv) },
    { name: 'linear_qkv [b*pos,d]·[d,3d]+b', batched: [{ t: x2d, perRow: pos }], shared: [Wqkv, bqkv], fn: ([x], [W, b]) => tf.fused.matMul({ a: x as tf.Tensor2D, b: W as tf.Tensor2D, bias: b }) },
    { name: 'linear_in [b*pos,d]·[d,d_mlp]+b', batched: [{ t: x2d, perRow: pos }], shared: [Win, bin], fn: ([x], [W, b]) => tf.fused.matMul({ a: x as tf.Tensor2D, b: W as tf.Tensor2D, bias: b }) },
    { name: 'gelu_new [b*pos,d_mlp]', batched: [{ t: hid, perRow: pos }], shared: [], fn: ([x]) => activation('gelu_new', x) },
    { name: 'linear_out [b*pos,d_mlp]·[d_mlp,d]+b', batched: [{ t: hid, perRow: pos }], shared: [Wout, bout], fn: ([x], [W, b]) => tf.fused.matMul({ a: x as tf.Tensor2D, b: W as tf.Tensor2D, bias: b }) },
    { name: 'layernorm ln1 [b,pos,d]', batched: [{ t: x3d, perRow: 1 }], shared: [], fn: ([x]) => model.applyNorm('blocks.0.ln1', x) },
    {
      name: 'where_5d patch select [v,prompts,pos,h,e]',
      batched: [{ t: z, perRow: 1 }, { t: headMask, perRow: 1 / prompts }],
      shared: [zSrc],
      fn: ([a, mk], [src]) => tf.where(mk, src.expandDims(0), a.reshape([mk.shape[0], prompts, pos, h, e])).reshape(a.shape),
    },
    { name: 'tile+add resid [b,pos,d]', batched: [{ t: resid0, perRow: 1 }], shared: [], fn: ([x]) => x.add(1) },
    { name: 'block 0 (runFrom 0, stop at 1)', batched: [{ t: x3d, perRow: 1 }], shared: [], fn: ([x]) => model.runFrom(0, x as tf.Tensor3D, { stopAtLayer: 1 }) },
    { name: 'blocks 0-11 (runFrom 0)', batched: [{ t: x3d, perRow: 1 }], shared: [], fn: ([x]) => model.runFrom(0, x as tf.Tensor3D, { stopAtLayer: model.cfg.n_layers }) },
  ]);
}

// ---- main ----------------------------------------------------------------------------------------------------
async function main() {
  const backend = arg('backend', 'webgpu') as BackendName;
  const preset = arg('preset', 'gpt2-small') as keyof typeof PRESETS;
  const pos = Number(arg('pos', '128'));
  const batches = list(arg('batches', '8,32,64,128,192,256,384'));
  const refChunk = Number(arg('ref-chunk', '8'));
  const opBatch = Number(arg('op-batch', '384'));
  const opChunk = Number(arg('op-chunk', '32'));
  const opsWanted = arg('ops', 'all');
  const sweepBatch = Number(arg('sweep-batch', '32'));
  const fullBatches = list(arg('full-batches', '32,64,128'));

  const choice = await initBackend({ backend });
  report.backend = choice;
  log(`backend ${choice.name}: ${choice.reason}`);
  const be = tf.backend() as unknown as { device?: Deviceish; adapterInfo?: unknown };
  if (be.device) {
    device = be.device;
    const names = [
      'maxBufferSize', 'maxStorageBufferBindingSize', 'maxUniformBufferBindingSize', 'maxComputeWorkgroupsPerDimension',
      'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupStorageSize',
      'maxStorageBuffersPerShaderStage', 'maxBindGroups', 'minStorageBufferOffsetAlignment',
    ];
    const lim = (l: Record<string, number>) => {
      const o: Record<string, number> = {};
      for (const n of names) o[n] = l[n];
      for (const n in l) if (typeof l[n] === 'number') o[n] = l[n];
      return o;
    };
    const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(o?: unknown): Promise<{ limits: Record<string, number>; info?: Record<string, string>; features: Set<string> } | null> } } }).navigator.gpu;
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    const info = adapter?.info;
    report.adapter_info = info ? { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description } : undefined;
    report.adapter_limits = adapter ? lim(adapter.limits) : undefined;
    report.device_limits = lim(device.limits);
    report.device_features = [...device.features];
    log(`adapter ${JSON.stringify(report.adapter_info)}`);
    log(`adapter limits ${JSON.stringify(report.adapter_limits)}`);
    log(`device limits  ${JSON.stringify(report.device_limits)}`);
    const onError = (ev: { error: GPUErrorish }) => uncaptured.push(describe(ev.error));
    if (device.addEventListener) device.addEventListener('uncapturederror', onError);
    else device.onuncapturederror = onError;
    device.lost?.then((info) => {
      report.device_lost = { reason: info.reason, message: info.message };
      log(`DEVICE LOST: ${info.reason} ${info.message}`);
      save();
    });
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', Number(arg('submit-batch', '15')));
  }
  save();

  const p = PRESETS[preset];
  const cfg = makeConfig({ ...p.model, n_ctx: Math.max(p.model.n_ctx, pos) });
  const model = HookedTransformer.random(cfg, { seed: 0 });
  const V = cfg.d_vocab;
  const maxB = Math.max(...batches, ...fullBatches, 1);
  const rows = tokenRows(maxB, pos, V, 7);
  report.shape = { preset, pos, d_model: cfg.d_model, n_heads: cfg.n_heads, d_vocab: V };

  // reference: every row's last-position logits from batches of refChunk rows
  const ref = new Float32Array(maxB * V);
  await step(`reference: ${maxB} rows in batches of ${refChunk}`, async () => {
    for (let lo = 0; lo < maxB; lo += refChunk) ref.set(await read(lastLogits(model, rows.slice(lo, lo + refChunk))), lo * V);
    return { max_abs_ref: compare(ref, ref).max_abs_ref };
  });
  // twice: is a small batch deterministic?
  await step(`reference again (rows 0..${refChunk})`, async () => {
    const again = await read(lastLogits(model, rows.slice(0, refChunk)));
    return compare(again, ref.subarray(0, refChunk * V)) as unknown as Record<string, unknown>;
  });

  for (const B of batches) {
    await step(`forward last-position logits, batch ${B} × ${pos}`, async () => {
      const got = await read(lastLogits(model, rows.slice(0, B)));
      const per = rowDiffs(got, ref.subarray(0, B * V), V);
      const bad = per.map((dv, i) => [i, dv] as const).filter(([, dv]) => dv > 1e-4);
      return {
        scores_bytes: B * cfg.n_heads * pos * pos * 4,
        mlp_bytes: B * pos * cfg.d_mlp! * 4,
        max_row_diff: Math.max(...per),
        rows_off_1e4: bad.length,
        first_bad_row: bad[0]?.[0],
        rows: per.map((dv) => Number(dv.toExponential(2))),
      };
    });
  }

  if (opsWanted !== 'none') {
    const cases = opCases(model, opBatch, pos, opChunk);
    for (const op of cases) {
      if (opsWanted !== 'all' && !opsWanted.split(',').some((w) => op.name.startsWith(w))) continue;
      await step(`op ${op.name} at ${opBatch} rows vs slices of ${opChunk}`, () => opOnceAndSliced(op, opBatch, opChunk));
    }
    tf.dispose(cases.flatMap((c) => [...c.batched.map((b) => b.t), ...c.shared]));
  }

  if (sweepBatch > 0) {
    // the batched head-out sweep (activationPatching) on sweepBatch prompts: one pass per layer vs ≤ 64 MiB passes
    const clean = rows.slice(0, sweepBatch);
    let s = 99;
    const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) % V);
    const task = { clean, corrupted: clean.map((r) => r.map((t, i) => (i === 1 || i === pos - 3 ? rnd() : t))), correct: clean.map(() => rnd()), wrong: clean.map(() => rnd()) };
    const results: Record<string, Float32Array> = {};
    const runs = arg('sweep-runs', 'chunked,one-pass,one-pass again,chunked again').split(',');
    for (const name of runs) {
      const maxPassBytes = name.startsWith('one-pass') ? Infinity : undefined;
      await step(`sweep ${name}, ${sweepBatch} × ${pos}`, async () => {
        const v = await read(await patchHeadsSweepAsync(model, task, { maxPassBytes }));
        results[name] = v;
        const c = name !== runs[0] ? compare(v, results[runs[0]]) : undefined;
        return { max_abs_value: compare(v, v).max_abs_ref, [`vs_${runs[0]}`]: c?.max_abs_diff };
      });
    }
  }

  if (device && arg('over-limit', 'yes') === 'yes') {
    // one tensor just over the binding limit: without a guard WebGPU drops the kernels that bind it
    const lim = device.limits.maxStorageBufferBindingSize;
    const n = Math.floor(lim / 4) + 1024;
    await step(`tensor over maxStorageBufferBindingSize: ${n} floats (${lim} + 4096 bytes), sum of ones + 1`, async () => {
      const got = (await read(tf.tidy(() => tf.fill([n], 1).add(1).sum())))[0];
      return { expected: 2 * n, got, right: got === 2 * n };
    });
  }

  for (const B of fullBatches) {
    await step(`full logits [${B}, ${pos}, ${V}] (${((B * pos * V * 4) / 2 ** 30).toFixed(2)} GiB)`, async () => {
      const logits = model.forward(rows.slice(0, B));
      const last = logits.slice([0, pos - 1, 0], [B, 1, V]).reshape([B, V]);
      logits.dispose();
      const got = await read(last);
      const per = rowDiffs(got, ref.subarray(0, B * V), V);
      return { logits_bytes: B * pos * V * 4, max_row_diff: Math.max(...per), rows_off_1e4: per.filter((dv) => dv > 1e-4).length, rows: per.map((dv) => Number(dv.toExponential(2))) };
    });
  }

  model.dispose();
  report.finished = new Date().toISOString();
  report.seconds = (performance.now() - t0) / 1000;
  save();
  log('done');
}

main().catch((e) => {
  console.error(e);
  report.fatal = String((e as Error)?.stack ?? e);
  save();
  process.exit(1);
});
