/**
 * loadPretrained: a HuggingFace folder (or hub id, when online) → HookedTransformer.
 * The checkpoint is checked whole before any tensor is converted: every tensor the family expects must
 * be there with its shape, and nothing unknown may be left over; the error lists every problem.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { initBackend, type BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import type { HookedConfig } from '../model/config.js';
import type { ProcessingOptions } from '../model/weight_processing.js';
import { openCheckpoint } from './checkpoint_files.js';
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
  const model = buildModel(cfg, family, openCheckpoint(dir), dir, opts);
  model.tokenizer = HFTokenizer.fromDir(dir);
  return model;
}

