/**
 * loadPretrained: a HuggingFace folder (or hub id, when online) → HookedTransformer.
 * The checkpoint is checked whole before any tensor is converted: every tensor the family expects must
 * be there with its shape, and nothing unknown may be left over; the error lists every problem.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import type { HookedConfig } from '../model/config.js';
import type { ProcessingOptions } from '../model/weight_processing.js';
import { openCheckpoint } from './checkpoint_files.js';
import { checkModelFits } from './fit_check.js';
import type { Family, HFConfig } from './families/family.js';
import { downloadFromHub, isHubId, type HubOptions } from './hub.js';
import { buildModel, configFromHF } from './load_files.js';
import { HFTokenizer } from './tokenizer.js';

export { countNonFinite } from './load_files.js';

export interface LoadOptions extends HubOptions {
  /** Start this backend first (default: the one running, or the best available). */
  backend?: BackendName | 'auto';
  /** Opt-in weight processing (fold norms, centre weights); default none: the checkpoint as it is. */
  processing?: ProcessingOptions;
  /**
   * Load weights that hold NaN or ±Inf (default false: such a checkpoint is refused, naming each tensor and
   * how many of its values are not finite, since it can only give NaN logits). The CLI reads env
   * HEADLENS_ALLOW_NONFINITE=1.
   */
  allowNonFinite?: boolean;
  /**
   * 'float32' (default): every weight float32. '16bit': an F16 or BF16 checkpoint's linear weights (W_Q, W_K, W_V,
   * W_O, the MLP matrices, the unembedding) stay 16-bit on the GPU, computed in float32 (Transformer.useWeights16):
   * webgpu only; a float32 checkpoint, other backends and weight processing are refused. CLI: HEADLENS_WEIGHTS=16bit.
   */
  weights?: 'float32' | '16bit';
  /**
   * Bytes of device memory the model may use. WebGPU does not report its device's memory: without a budget,
   * headlens asks nvidia-smi on an NVIDIA adapter, else checks each tensor against WebGPU's buffer limits only.
   * A model whose weights need more is refused before loading, with the numbers. CLI: env
   * HEADLENS_GPU_MEMORY=GiB.
   */
  memoryBudget?: number;
}

/** Reads config.json of a model folder into a headlens config (with the family that reads it). */
export function readModelConfig(dir: string): { cfg: HookedConfig; family: Family; hf: HFConfig } {
  const file = path.join(dir, 'config.json');
  if (!existsSync(file)) {
    throw new HeadlensError(`no config.json in ${dir}`, 'pass a HuggingFace model folder (config.json + model.safetensors)');
  }
  let hf: unknown;
  try {
    hf = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new HeadlensError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return configFromHF(hf, path.basename(path.resolve(dir)), file);
}

/** Where the models headlens ships live (datasets/zoo), from src/loading or dist/loading alike. */
export const ZOO_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'datasets', 'zoo');

/** The names of the shipped models (`--model NAME`). */
export function zooModels(): string[] {
  return existsSync(ZOO_DIR) ? readdirSync(ZOO_DIR).filter((d) => existsSync(path.join(ZOO_DIR, d, 'config.json'))).sort() : [];
}

/** Resolves a folder, a shipped model's name, or a hub id to a local folder. */
export async function resolveModelDir(nameOrDir: string, opts: HubOptions = {}): Promise<string> {
  if (!existsSync(nameOrDir) && zooModels().includes(nameOrDir)) return path.join(ZOO_DIR, nameOrDir);
  if (existsSync(nameOrDir)) {
    if (!statSync(nameOrDir).isDirectory()) throw new HeadlensError(`${nameOrDir} is a file, not a model folder`, 'pass the folder that holds config.json');
    return nameOrDir;
  }
  if (isHubId(nameOrDir) && !nameOrDir.startsWith('.') && !path.isAbsolute(nameOrDir)) return downloadFromHub(nameOrDir, opts);
  throw new HeadlensError(`no model folder at ${nameOrDir}`, `pass a folder holding config.json and model.safetensors, a shipped model (${zooModels().join(', ') || 'none'}), or a hub id such as gpt2`);
}

/** Loads a model folder or hub id. The model computes exactly what the checkpoint computes. */
export async function loadPretrained(nameOrDir: string, opts: LoadOptions = {}): Promise<HookedTransformer> {
  await initBackend({ backend: opts.backend });
  const dir = await resolveModelDir(nameOrDir, opts);
  const { cfg, family } = readModelConfig(dir);
  const weights16 = weightsOption(opts.weights) === '16bit';
  if (weights16) refuse16bit(opts);
  // before any tensor exists: a model that cannot fit fails here, with the numbers
  const globals = family.hfShapes({ ...cfg, n_layers: 0 });
  const layer = Object.fromEntries(Object.entries(family.hfShapes({ ...cfg, n_layers: 1 })).filter(([n]) => !(n in globals)));
  const hf = { globals, layer };
  await checkModelFits(cfg, { weights16, hf, memoryBudget: opts.memoryBudget });
  const model = buildModel(cfg, family, openCheckpoint(dir), dir, { ...opts, weights16 });
  model.tokenizer = HFTokenizer.fromDir(dir);
  return model;
}


/** The weights option, or env HEADLENS_WEIGHTS when it is not given. */
function weightsOption(w: LoadOptions['weights']): 'float32' | '16bit' {
  const v = w ?? (process.env.HEADLENS_WEIGHTS || undefined) ?? 'float32';
  if (v !== 'float32' && v !== '16bit') throw new HeadlensError(`weights '${v}' is not known`, "use 'float32' (default) or '16bit'");
  return v;
}

/** 16-bit weights need the webgpu backend and no weight processing; refused before anything is read. */
function refuse16bit(opts: LoadOptions): void {
  if (tf.getBackend() !== 'webgpu') {
    throw new HeadlensError(
      `16-bit weights are kept on the webgpu backend only (running: ${tf.getBackend()}): tfjs has no 16-bit dtype, and headlens' packed matmul is a WebGPU program`,
      "load with { backend: 'webgpu' }, or leave weights as float32 (every weight at 4 bytes)",
    );
  }
  if (opts.processing && Object.values(opts.processing).some(Boolean)) {
    throw new HeadlensError('weight processing changes the weights, which are then no longer 16-bit values', 'load with weights: "16bit" or with processing, not both');
  }
}
