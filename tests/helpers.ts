import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseSafetensors, type SafetensorsFile } from '../src/util/safetensors.js';

export const FIXTURES = path.join(import.meta.dirname, 'fixtures', 'hf');

/** model_types of the encoder fixtures (tests/fixtures/make_bert_fixtures.py): masked LMs, not causal ones. */
const ENCODER_TYPES = new Set(['bert', 'roberta']);

function fixtureType(d: string): string {
  return String(JSON.parse(readFileSync(path.join(FIXTURES, d, 'config.json'), 'utf8')).model_type);
}

/** The causal-LM fixture folders made by tests/fixtures/make_fixtures.py (transformers 5.17). */
export function fixtureModels(): string[] {
  return readdirSync(FIXTURES)
    .filter((d) => existsSync(path.join(FIXTURES, d, 'config.json')) && !ENCODER_TYPES.has(fixtureType(d)))
    .sort();
}

/** The encoder fixture folders (BERT, RoBERTa) made by tests/fixtures/make_bert_fixtures.py (transformers 5.17). */
export function encoderFixtureModels(): string[] {
  return readdirSync(FIXTURES)
    .filter((d) => existsSync(path.join(FIXTURES, d, 'config.json')) && ENCODER_TYPES.has(fixtureType(d)))
    .sort();
}

/** An encoder fixture's inputs as rows [batch][pos]: ids, token types and attention mask (row 1 is right-padded). */
export function encoderInputs(name: string): { ids: number[][]; types: number[][]; mask: number[][] } {
  const ref = reference(name);
  const [batch, pos] = ref.info('input_ids').shape;
  const rows = (key: string) => {
    const a = ref.int32(key);
    return Array.from({ length: batch }, (_, b) => Array.from(a.subarray(b * pos, (b + 1) * pos)));
  };
  return { ids: rows('input_ids'), types: rows('token_type_ids'), mask: rows('attention_mask') };
}

export function reference(name: string): SafetensorsFile {
  const file = path.join(FIXTURES, name, 'reference.safetensors');
  return parseSafetensors(new Uint8Array(readFileSync(file)), file);
}

/** Largest absolute difference between a tensor and reference values (shapes must match). */
export function maxAbsDiff(t: tf.Tensor, ref: Float32Array, refShape: number[]): number {
  if (t.shape.join() !== refShape.join()) throw new Error(`shape [${t.shape}] vs reference [${refShape}]`);
  const a = t.dataSync();
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= m)) m = d; // NaN wins
  }
  return m;
}

export const ROOT = path.join(import.meta.dirname, '..');
export const BIN = path.join(ROOT, 'dist', 'cli', 'main.js');

/**
 * Runs the built `headlens` command (dist/cli/main.js) on wasm without blocking the test worker:
 * spawnSync would starve vitest's worker of its event loop on a loaded machine.
 */
export function runHeadlens(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, HEADLENS_BACKEND: 'wasm', ...env }, cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}


/** maxAbsDiff for any backend: reads the tensor asynchronously (WebGPU has no synchronous readback). */
/** Deterministic values in [-1, 1): a seeded LCG, fresh for every call. */
export function randomValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** max |out − ref| / max |ref| over two arrays of the same length (Infinity if out holds a NaN). */
export function relError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (out.length !== ref.length) throw new Error(`relError: ${out.length} values against ${ref.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    if (Number.isNaN(out[i]) || Number.isNaN(ref[i])) return Infinity;
    if (out[i] === ref[i]) continue; // equal infinities (masked scores) agree exactly
    err = Math.max(err, Math.abs(out[i] - ref[i])); // Infinity where only one side is infinite
    if (Number.isFinite(ref[i])) scale = Math.max(scale, Math.abs(ref[i]));
  }
  return err === 0 ? 0 : err / scale;
}

/** Counts the programs the webgpu backend dispatches while f runs, by kind (tfjs class name or headlens kernel). */
export async function countPrograms<T>(f: () => T | Promise<T>): Promise<{ result: T; total: number; kinds: Record<string, number> }> {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: object, ...rest: unknown[]) => unknown };
  const original = be.runWebGPUProgram;
  const kinds: Record<string, number> = {};
  let total = 0;
  be.runWebGPUProgram = function (p: object, ...rest: unknown[]) {
    total++;
    kinds[p.constructor.name] = (kinds[p.constructor.name] ?? 0) + 1;
    return original.call(this, p, ...rest);
  };
  try {
    const result = await f();
    return { result, total, kinds };
  } finally {
    be.runWebGPUProgram = original;
  }
}

export async function maxAbsDiffAsync(t: tf.Tensor, ref: Float32Array): Promise<number> {
  const a = (await t.data()) as Float32Array;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - ref[i]);
    if (!(d <= m)) m = d; // NaN wins
  }
  return m;
}

/** Overwrites head `h` of a per-head parameter ([head, rows, cols]) with fill(i, j), for planted circuits. */
export function setHead(m: { param(n: string): tf.Tensor; setParams(u: Record<string, tf.Tensor>): void }, name: string, h: number, fill: (i: number, j: number) => number): void {
  const old = m.param(name);
  const [n, r, c] = old.shape;
  const data = Float32Array.from(old.dataSync());
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) data[h * r * c + i * c + j] = fill(i, j);
  m.setParams({ [name]: tf.tensor3d(data, [n, r, c]) });
}

/** Two prompts of 5 tokens and a corruption of each (one token changed per row), for the patching tests. */
export const PATCH_CLEAN = [
  [10, 20, 30, 40, 50],
  [11, 21, 31, 41, 51],
];
export const PATCH_CORRUPTED = [
  [10, 20, 33, 40, 50],
  [11, 22, 31, 41, 51],
];

/**
 * Starts the webgpu backend on SwiftShader (HEADLENS_WEBGPU_ADAPTER=swiftshader, src/backend/index.ts), the CPU
 * implementation of Vulkan that Debian's chromium package ships: tests of WebGPU code run without a GPU. Throws,
 * never skips, when it cannot start: .ci/run installs chromium, so a missing adapter is a broken setup.
 */
export async function startSoftwareWebGPU(): Promise<void> {
  process.env.HEADLENS_WEBGPU_ADAPTER = 'swiftshader';
  const { initBackend } = await import('../src/backend/index.js');
  const choice = await initBackend({ backend: 'webgpu' });
  if (!/SwiftShader/.test(choice.reason)) throw new Error(`expected WebGPU on SwiftShader, got: ${choice.reason}`);
}

/** The shape attention64 computes: new query rows after keys − rows cached positions, GQA by ⌊head / group⌋. */
export interface Attention64Shape {
  batch: number;
  rows: number;
  keys: number;
  heads: number;
  kvHeads: number;
  dHead: number;
  window: number | null;
  /** [batch][keys] 1 real, 0 padding */
  keyMask?: number[][];
}

/**
 * Attention in float64 from the definition, softmax(q·kᵀ / scale + mask)·v: z [batch, rows, head, d_head] (zeros
 * without `v`); with `rowsOut`, also the scores (masked keys −Infinity) and the pattern (a row that sees no key all 0)
 * [batch, head, rows, keys]. The rows are the last `rows` of `keys` positions, causal, within `window` if given.
 */
export function attention64(
  c: Attention64Shape,
  q: (b: number, r: number, h: number, e: number) => number,
  k: (b: number, t: number, g: number, e: number) => number,
  v: ((b: number, t: number, g: number, e: number) => number) | undefined,
  scale: number,
  rowsOut?: { scores: Float64Array; pattern: Float64Array },
): Float64Array {
  const { batch, rows, keys, heads, kvHeads, dHead: E, window } = c;
  const start = keys - rows;
  const z = new Float64Array(batch * rows * heads * E);
  for (let b = 0; b < batch; b++)
    for (let r = 0; r < rows; r++)
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / (heads / kvHeads));
        const s: number[] = [];
        let m = -Infinity;
        for (let t = 0; t < keys; t++) {
          const ok = t <= start + r && (window === null || start + r - t < window) && (!c.keyMask || c.keyMask[b][t] === 1);
          let dot = 0;
          for (let e = 0; e < E; e++) dot += q(b, r, h, e) * k(b, t, g, e);
          s.push(ok ? dot / scale : -Infinity);
          if (ok) m = Math.max(m, dot / scale);
        }
        const at = ((b * heads + h) * rows + r) * keys;
        if (rowsOut) rowsOut.scores.set(s, at);
        if (m === -Infinity) continue; // no visible key: z = 0
        let l = 0;
        const p = s.map((x) => (x === -Infinity ? 0 : Math.exp(x - m)));
        for (const x of p) l += x;
        if (rowsOut) rowsOut.pattern.set(p.map((x) => x / l), at);
        if (!v) continue;
        for (let e = 0; e < E; e++) {
          let acc = 0;
          for (let t = 0; t < keys; t++) acc += p[t] * v(b, t, g, e);
          z[((b * rows + r) * heads + h) * E + e] = acc / l;
        }
      }
  return z;
}
