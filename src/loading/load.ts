/**
 * loadPretrained: a HuggingFace folder (or hub id, when online) → HookedTransformer.
 * The checkpoint is checked whole before any tensor is converted: every tensor the family expects must
 * be there with its shape, and nothing unknown may be left over; the error lists every problem.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { initBackend, type BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { makeConfig, type HookedConfig } from '../model/config.js';
import { processWeights, type ProcessingOptions } from '../model/weight_processing.js';
import { openCheckpoint, type CheckpointTensors } from './checkpoint_files.js';
import type { Family, HFConfig } from './families/family.js';
import { familyFor } from './families/index.js';
import { downloadFromHub, isHubId, type HubOptions } from './hub.js';
import { HFTokenizer } from './tokenizer.js';

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

/** How many values of `a` are NaN or ±Inf: one pass over the data as it is read. */
export function countNonFinite(a: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) n++;
  return n;
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
  if (typeof hf !== 'object' || hf === null || Array.isArray(hf)) throw new HeadlensError(`${file} is not a JSON object`);
  const h = hf as HFConfig;
  const family = familyFor(h.model_type, file);
  const name = typeof h._name_or_path === 'string' && h._name_or_path ? h._name_or_path : path.basename(path.resolve(dir));
  try {
    const input = family.config(h, h.model_type as string);
    return { cfg: makeConfig({ model_name: name, ...input }, family.hfKeys), family, hf: h };
  } catch (e) {
    if (e instanceof HeadlensError) throw new HeadlensError(`${file}: ${e.message}`);
    throw e;
  }
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
  const ckpt = openCheckpoint(dir);
  const names = matchCheckpoint(family, cfg, ckpt, dir);
  const nonFinite: string[] = [];
  const params = tf.tidy(() => {
    const made = new Map<string, tf.Tensor>();
    const get = (hfName: string) => {
      let t = made.get(hfName);
      if (!t) {
        const stored = names.get(hfName)!;
        const data = ckpt.float32(stored);
        const bad = opts.allowNonFinite ? 0 : countNonFinite(data);
        if (bad > 0) nonFinite.push(`${stored} (${bad} of ${data.length} values)`);
        t = tf.tensor(data, ckpt.info(stored).shape, 'float32');
        made.set(hfName, t);
      }
      return t;
    };
    return family.toHooked(cfg, get) as Record<string, tf.Tensor> as never;
  }) as Record<string, tf.Tensor>;
  if (nonFinite.length) {
    tf.dispose(Object.values(params));
    throw new HeadlensError(
      `checkpoint in ${dir} has NaN or Inf weights in ${nonFinite.length} tensor${nonFinite.length > 1 ? 's' : ''}: ${nonFinite.slice(0, 5).join(', ')}${nonFinite.length > 5 ? ` (and ${nonFinite.length - 5} more)` : ''}`,
      'the weights are corrupt (download or save them again); to load them anyway pass { allowNonFinite: true } to loadPretrained, or set HEADLENS_ALLOW_NONFINITE=1 for the CLI',
    );
  }
  const model = new HookedTransformer(cfg, params);
  model.tokenizer = HFTokenizer.fromDir(dir);
  if (opts.processing) processWeights(model, opts.processing);
  return model;
}

/**
 * Maps each expected HF name to the name stored in the checkpoint (some saves add a prefix such as
 * 'transformer.'), after checking names and shapes. Throws one error listing every problem.
 */
function matchCheckpoint(family: Family, cfg: HookedConfig, ckpt: CheckpointTensors, dir: string): Map<string, string> {
  const expected = family.hfShapes(cfg);
  const stored = new Set(ckpt.names);
  const used = new Set<string>();
  const map = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, shape] of Object.entries(expected)) {
    const found = [name, ...family.prefixes.map((p) => p + name)].find((n) => stored.has(n));
    if (!found) {
      problems.push(`missing tensor ${name} [${shape}]`);
      continue;
    }
    const got = ckpt.info(found).shape;
    if (got.join() !== shape.join()) problems.push(`tensor ${found} is [${got}] but the config implies [${shape}]`);
    map.set(name, found);
    used.add(found);
  }
  const extra = ckpt.names.filter((n) => !used.has(n) && !family.ignore?.test(n));
  if (extra.length) problems.push(`unexpected tensors ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` (and ${extra.length - 5} more)` : ''}`);
  if (problems.length) {
    throw new HeadlensError(
      `checkpoint in ${dir} does not match its config.json: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`,
      'check that config.json belongs to these weights',
    );
  }
  return map;
}
