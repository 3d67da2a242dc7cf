/**
 * How many bytes the running backend can hold, as far as it can be known before anything is allocated.
 *   wasm        a 32-bit WebAssembly memory: 4 GiB for everything (tfjs-backend-wasm 4.22 declares a maximum of
 *               65,536 pages of 64 KiB), weights and activations alike.
 *   webgpu      WebGPU reports no device memory size, only per-buffer limits: maxBufferSize and
 *               maxStorageBufferBindingSize bound each tensor. For the total, a budget the user gives
 *               (`memoryBudget`, or HEADLENS_GPU_MEMORY=GiB for the CLI) wins; otherwise, in Node on an
 *               NVIDIA adapter, `nvidia-smi` is asked for free memory (total − used). Dawn does not say which of
 *               several cards it chose, so with several the largest free amount is taken: the check then refuses
 *               only what fits on no card. Without either there is no total to check, and the report says so.
 *   cpu, tensorflow  no limit known to headlens (host memory).
 */
import * as tf from '@tensorflow/tfjs';
import { HeadlensError } from '../errors.js';

export interface DeviceMemory {
  backend: string;
  /** Bytes the backend can hold in all, if known. */
  totalBytes?: number;
  /** Where totalBytes comes from, or why there is none. */
  source: string;
  /** The largest single tensor the backend can hold (WebGPU's buffer limits), if limited. */
  maxTensorBytes?: number;
}

export const WASM_MEMORY_BYTES = 4 * 2 ** 30;

/** `nvidia-smi --query-gpu=memory.total,memory.used --format=csv,noheader,nounits` → one {total, used} per card, in bytes. */
export function parseNvidiaSmi(text: string): { total: number; used: number }[] {
  const cards: { total: number; used: number }[] = [];
  for (const line of text.split('\n')) {
    const parts = line.split(',').map((p) => p.trim());
    if (parts.length !== 2) continue;
    const [total, used] = parts.map(Number);
    if (Number.isFinite(total) && Number.isFinite(used) && total > 0) cards.push({ total: total * 2 ** 20, used: used * 2 ** 20 }); // MiB
  }
  return cards;
}

/** Runs nvidia-smi (Node only); undefined when it is absent or fails. */
async function runNvidiaSmi(): Promise<string | undefined> {
  if (typeof process === 'undefined' || !process.versions?.node) return undefined;
  try {
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync('nvidia-smi', ['--query-gpu=memory.total,memory.used', '--format=csv,noheader,nounits'], { encoding: 'utf8', timeout: 10_000 });
    return r.status === 0 && typeof r.stdout === 'string' ? r.stdout : undefined;
  } catch {
    return undefined;
  }
}

/** A budget in GiB from the environment (HEADLENS_GPU_MEMORY), in bytes; undefined when unset. */
export function envMemoryBudget(): number | undefined {
  const v = typeof process !== 'undefined' ? process.env?.HEADLENS_GPU_MEMORY : undefined;
  if (v === undefined || v === '') return undefined;
  const gib = Number(v);
  if (!(gib > 0)) throw new HeadlensError(`HEADLENS_GPU_MEMORY='${v}' is not a positive number of GiB`, 'set it to e.g. 80, or unset it');
  return gib * 2 ** 30;
}

interface WebGPULike {
  device?: { limits?: { maxBufferSize: number; maxStorageBufferBindingSize: number } };
  adapterInfo?: { vendor?: string };
}

/**
 * What the running backend can hold. `budget` (bytes) is the user's word for the total and wins where given;
 * `nvidiaSmi` replaces the command (tests).
 */
export async function deviceMemory(opts: { budget?: number; nvidiaSmi?: () => Promise<string | undefined> } = {}): Promise<DeviceMemory> {
  const name = tf.getBackend();
  const budget = opts.budget ?? envMemoryBudget();
  if (budget !== undefined && !(budget > 0)) throw new HeadlensError(`memoryBudget ${budget} is not a positive number of bytes`, 'pass e.g. 24 * 2 ** 30');
  if (name === 'wasm') {
    const total = Math.min(WASM_MEMORY_BYTES, budget ?? Infinity);
    return { backend: name, totalBytes: total, source: budget !== undefined && budget < WASM_MEMORY_BYTES ? 'the budget given' : "a 32-bit WebAssembly memory (tfjs-backend-wasm's 4 GiB maximum)" };
  }
  if (name !== 'webgpu') {
    return budget !== undefined ? { backend: name, totalBytes: budget, source: 'the budget given' } : { backend: name, source: `no memory limit is known for the ${name} backend` };
  }
  const be = tf.backend() as unknown as WebGPULike;
  const limits = be.device?.limits;
  const maxTensorBytes = limits ? Math.min(limits.maxBufferSize, limits.maxStorageBufferBindingSize) : undefined;
  if (budget !== undefined) return { backend: name, totalBytes: budget, source: 'the budget given', maxTensorBytes };
  const vendor = be.adapterInfo?.vendor ?? '';
  if (/nvidia/i.test(vendor)) {
    const cards = parseNvidiaSmi((await (opts.nvidiaSmi ?? runNvidiaSmi)()) ?? '');
    if (cards.length) {
      const free = Math.max(...cards.map((c) => c.total - c.used));
      return { backend: name, totalBytes: free, source: `free memory nvidia-smi reports${cards.length > 1 ? ` (the largest of ${cards.length} cards: Dawn does not say which one it uses)` : ''}`, maxTensorBytes };
    }
  }
  return {
    backend: name,
    source: `WebGPU does not report the device's memory${vendor ? ` (adapter vendor '${vendor}'${/nvidia/i.test(vendor) ? ', and nvidia-smi gave no answer' : ''})` : ''}; only each tensor's size is checked. Give a budget (loadPretrained(dir, { memoryBudget }), or HEADLENS_GPU_MEMORY=GiB for the CLI) to check the total`,
    maxTensorBytes,
  };
}
