/**
 * Refuses a model that cannot fit before any of it is loaded, with the numbers: the bytes its weights need
 * (src/model/weight_memory.ts) against what the backend can hold (src/backend/memory_budget.ts). Activations
 * come on top and depend on the batch and context: this check is about the weights only, so a model that passes
 * can still run out of memory on a long enough prompt.
 */
import { deviceMemory, type DeviceMemory } from '../backend/memory_budget.js';
import { webgpuHostTuning } from '../backend/webgpu_uploads.js';
import { HeadlensError } from '../errors.js';
import type { HookedConfig } from '../model/config.js';
import { weightMemory, type WeightMemory } from '../model/weight_memory.js';

const gib = (b: number) => `${(b / 2 ** 30).toFixed(2)} GiB`;

export interface FitOptions {
  weights16?: boolean;
  /** The checkpoint's tensors outside the layers, and those of one layer, for the load peak. */
  hf?: { globals: Record<string, number[]>; layer: Record<string, number[]> };
  /** The user's budget for the device, bytes (wins over what headlens can find out). */
  memoryBudget?: number;
  /** Replaces the nvidia-smi call (tests). */
  nvidiaSmi?: () => Promise<string | undefined>;
}

/** Throws a HeadlensError if the model's weights cannot fit the running backend; returns the numbers otherwise. */
export async function checkModelFits(cfg: HookedConfig, opts: FitOptions = {}): Promise<{ needs: WeightMemory; device: DeviceMemory }> {
  const needs = weightMemory(cfg, { weights16: opts.weights16, hf: opts.hf });
  const device = await deviceMemory({ budget: opts.memoryBudget, nvidiaSmi: opts.nvidiaSmi });
  const smaller = opts.weights16 ? 'a smaller model' : 'a smaller model, or 16-bit weights for an f16/bf16 checkpoint on webgpu (loadPretrained(dir, { weights: "16bit" }), about half the bytes for the linear weights)';
  if (device.maxTensorBytes !== undefined && needs.largest.bytes > device.maxTensorBytes) {
    throw new HeadlensError(
      `${cfg.model_name}: the tensor ${needs.largest.name} needs ${needs.largest.bytes} bytes (${gib(needs.largest.bytes)}) in float32, but a WebGPU buffer on this device holds at most ${device.maxTensorBytes} bytes (${gib(device.maxTensorBytes)}: the smaller of maxBufferSize and maxStorageBufferBindingSize)`,
      'load it on a backend without this limit (--backend tensorflow or wasm, if it fits there), or a smaller model',
    );
  }
  const resident = needs.paramBytes + needs.qkvBytes;
  // in Node, headlens makes WebGPU buffers in size buckets up to 12.5 % larger than their tensors (webgpu_uploads.ts)
  const buckets = device.backend === 'webgpu' && webgpuHostTuning.bucketBuffers && typeof process !== 'undefined' && !!process.versions?.node;
  const peak = Math.ceil(Math.max(resident, needs.loadPeakBytes) * (buckets ? 1.125 : 1));
  if (device.totalBytes !== undefined && peak > device.totalBytes) {
    throw new HeadlensError(
      `${cfg.model_name} does not fit the ${device.backend} backend: its weights need ${peak} bytes (${gib(peak)}: ${gib(needs.paramBytes)} of parameters${opts.weights16 ? ' with 16-bit linear weights' : ' in float32'}, ${gib(needs.qkvBytes)} for the fused QKV copy the forward makes, and loading holds up to ${gib(needs.loadPeakBytes)} at its peak${buckets ? '; with up to 12.5 % more for buffer size buckets' : ''}), but ${device.totalBytes} bytes (${gib(device.totalBytes)}) are available (${device.source})`,
      device.backend === 'webgpu' ? `use a GPU with more free memory, ${smaller}; if the budget is wrong, give the right one (loadPretrained(dir, { memoryBudget }), or HEADLENS_GPU_MEMORY=GiB for the CLI)` : `use --backend webgpu or tensorflow on a machine that can hold it, or ${smaller}`,
    );
  }
  return { needs, device };
}
