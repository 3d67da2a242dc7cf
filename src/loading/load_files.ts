/**
 * Loading from a model's files already in memory: the parsed config.json, the bytes of model.safetensors and
 * the parsed tokenizer.json. No file system: a browser page that read them with fetch or a file picker builds
 * its model here, and loadPretrained (which reads them from a folder) ends here too, so both check the same
 * things in the same words.
 */
import * as tf from '@tensorflow/tfjs';
import { placeOnDevice } from '../backend/device_upload.js';
import { HeadlensError } from '../errors.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { makeConfig, type HookedConfig } from '../model/config.js';
import { processWeights, type ProcessingOptions } from '../model/weight_processing.js';
import { PackedLinear, packedParamNames, packLayer, type Weights16 } from '../model/weights16.js';
import { parseSafetensors } from '../util/safetensors.js';
import type { CheckpointTensors } from './checkpoint_files.js';
import type { Family, HFConfig } from './families/family.js';
import { familyFor } from './families/index.js';
import { HFTokenizer } from './tokenizer.js';

/** How many values of `a` are NaN or ±Inf: one pass over the data as it is read. */
export function countNonFinite(a: Float32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) n++;
  return n;
}

/** A parsed config.json → a headlens config and the family that reads it. `source` names the file in errors. */
export function configFromHF(hf: unknown, fallbackName: string, source: string): { cfg: HookedConfig; family: Family; hf: HFConfig } {
  if (typeof hf !== 'object' || hf === null || Array.isArray(hf)) throw new HeadlensError(`${source} is not a JSON object`);
  const h = hf as HFConfig;
  const family = familyFor(h.model_type, source);
  const name = typeof h._name_or_path === 'string' && h._name_or_path ? h._name_or_path : fallbackName;
  try {
    const input = family.config(h, h.model_type as string);
    return { cfg: makeConfig({ model_name: name, ...input }, family.hfKeys), family, hf: h };
  } catch (e) {
    if (e instanceof HeadlensError) throw new HeadlensError(`${source}: ${e.message}`);
    throw e;
  }
}

export interface BuildOptions {
  processing?: ProcessingOptions;
  allowNonFinite?: boolean;
  /** Keep the linear weights 16-bit (an F16 or BF16 checkpoint, webgpu only; see LoadOptions.weights). */
  weights16?: boolean;
}

/** Checks the checkpoint against the config, converts it and returns the model (no tokenizer yet). */
export function buildModel(cfg: HookedConfig, family: Family, ckpt: CheckpointTensors, where: string, opts: BuildOptions = {}): HookedTransformer {
  const names = matchCheckpoint(family, cfg, ckpt, where);
  const format = opts.weights16 ? format16(ckpt, [...names.values()], where) : undefined;
  const nonFinite: string[] = [];
  const read = (hfName: string) => {
    const stored = names.get(hfName)!;
    const data = ckpt.float32(stored);
    const bad = opts.allowNonFinite ? 0 : countNonFinite(data);
    if (bad > 0) nonFinite.push(`${stored} (${bad} of ${data.length} values)`);
    const t = tf.tensor(data, ckpt.info(stored).shape, 'float32');
    placeOnDevice(t); // on WebGPU the host copy goes now, not at the first forward
    return t;
  };
  const weights16: Weights16 | undefined = format ? { format, weights: new Map(), qkvBias: new Map() } : undefined;
  let params: Record<string, tf.Tensor>;
  try {
    params = convert(cfg, family, read, weights16);
  } catch (e) {
    if (weights16) disposeWeights16(weights16);
    throw e;
  }
  if (nonFinite.length) {
    tf.dispose(Object.values(params));
    if (weights16) disposeWeights16(weights16);
    throw new HeadlensError(
      `checkpoint in ${where} has NaN or Inf weights in ${nonFinite.length} tensor${nonFinite.length > 1 ? 's' : ''}: ${nonFinite.slice(0, 5).join(', ')}${nonFinite.length > 5 ? ` (and ${nonFinite.length - 5} more)` : ''}`,
      'the weights are corrupt (download or save them again); to load them anyway pass { allowNonFinite: true } to loadPretrained, or set HEADLENS_ALLOW_NONFINITE=1 for the CLI',
    );
  }
  const model = new HookedTransformer(cfg, params, weights16);
  if (opts.processing) processWeights(model, opts.processing);
  return model;
}

function disposeWeights16(w: Weights16): void {
  for (const W of w.weights.values()) W.dispose();
  tf.dispose([...w.qkvBias.values()]);
}

/**
 * The family's conversion, a layer at a time where the family's names allow it: the embeddings, final norm and
 * unembedding first (the family run on the config with no layers), then each layer (the family run on one layer,
 * its names mapped to layer l), so the checkpoint's float32 tensors of one layer (or of the globals) at most
 * coexist with their converted copies, instead of the whole checkpoint's. With `weights16`, each layer's linear weights are packed as
 * soon as they are converted, so a 16-bit model never holds its float32 weights all at once. Families whose
 * layer names do not map (none of today's) are converted whole.
 */
function convert(cfg: HookedConfig, family: Family, read: (hfName: string) => tf.Tensor, weights16?: Weights16): Record<string, tf.Tensor> {
  const plan = layerPlan(cfg, family);
  if (!plan) {
    const params = tf.tidy(() => {
      const made = new Map<string, tf.Tensor>();
      return family.toHooked(cfg, (n) => made.get(n) ?? (made.set(n, read(n)), made.get(n)!)) as never;
    }) as Record<string, tf.Tensor>;
    if (weights16) {
      for (let l = 0; l < cfg.n_layers; l++) packLayer(cfg, l, (n) => params[n], weights16);
      packUnembed(params, weights16);
      for (let l = 0; l < cfg.n_layers; l++) for (const n of packedParamNames(cfg, l)) disposeUnshared(params, n);
    }
    return params;
  }
  const params: Record<string, tf.Tensor> = {};
  // the embeddings, final norm and unembedding: their checkpoint tensors are freed when this pass ends
  Object.assign(params, tf.tidy(() => {
    const made = new Map<string, tf.Tensor>(); // a tied embedding is asked for twice, read once
    return family.toHooked({ ...cfg, n_layers: 0 }, (n) => made.get(n) ?? (made.set(n, read(n)), made.get(n)!)) as never;
  }));
  // each layer: the family run on one layer, with a one-token vocabulary and context so that the global tensors it
  // asks for again (and converts again, e.g. transposing the unembedding) are [1, d_model] stand-ins, not copies
  const one = { ...cfg, n_layers: 1, d_vocab: 1, n_ctx: 1 };
  const standIns = family.hfShapes(one);
  for (let l = 0; l < cfg.n_layers; l++) {
    const toLayer = plan.get(l)!;
    const layer = tf.tidy(() => {
      const made = new Map<string, tf.Tensor>();
      const get = (n: string) => made.get(n) ?? (made.set(n, toLayer.has(n) ? read(toLayer.get(n)!) : tf.zeros(standIns[n])), made.get(n)!);
      const out = family.toHooked(one, get);
      const mine: Record<string, tf.Tensor> = {};
      // layer 0's parameters, renamed to layer l; the stand-ins' conversions are freed with the scope
      for (const [name, t] of Object.entries(out)) if (name.startsWith('blocks.0.')) mine[name.replace(/^blocks\.0\./, `blocks.${l}.`)] = t;
      return mine as never;
    }) as Record<string, tf.Tensor>;
    Object.assign(params, layer);
    if (weights16) {
      packLayer(cfg, l, (n) => params[n], weights16);
      for (const n of packedParamNames(cfg, l)) disposeUnshared(params, n);
    }
  }
  if (weights16) packUnembed(params, weights16);
  return params;
}

function packUnembed(params: Record<string, tf.Tensor>, weights16: Weights16): void {
  weights16.weights.set('unembed.W_U', PackedLinear.pack(params['unembed.W_U'] as tf.Tensor2D, weights16.format));
  disposeUnshared(params, 'unembed.W_U');
}

/** Removes a parameter that is now packed, freeing its tensor unless another parameter is that same tensor. */
function disposeUnshared(params: Record<string, tf.Tensor>, name: string): void {
  const t = params[name];
  delete params[name];
  if (!Object.values(params).includes(t)) t.dispose();
}

/**
 * For each layer l ≥ 0, the map from layer 0's checkpoint names (as the family names them for a one-layer config)
 * to layer l's; undefined when the family's names do not follow that pattern (then the model is converted whole).
 */
export function layerPlan(cfg: HookedConfig, family: Family): Map<number, Map<string, string>> | undefined {
  const all = new Set(Object.keys(family.hfShapes(cfg)));
  const globals = new Set(Object.keys(family.hfShapes({ ...cfg, n_layers: 0 })));
  const layer0 = Object.keys(family.hfShapes({ ...cfg, n_layers: 1, d_vocab: 1, n_ctx: 1 })).filter((n) => !globals.has(n));
  if (layer0.length === 0 || !layer0.every((n) => /(^|\.)0\./.test(n))) return undefined;
  const plan = new Map<number, Map<string, string>>();
  let covered = globals.size;
  for (let l = 0; l < cfg.n_layers; l++) {
    const m = new Map(layer0.map((n) => [n, n.replace(/(^|\.)0\./, `$1${l}.`)]));
    if (![...m.values()].every((n) => all.has(n))) return undefined;
    covered += m.size;
    plan.set(l, m);
  }
  return covered === all.size ? plan : undefined;
}

/**
 * The 16-bit format of a checkpoint's matrices (every tensor of rank ≥ 2): F16 or BF16 throughout. Packing float32
 * weights would round them, so a float32 or mixed checkpoint is refused rather than changed.
 */
function format16(ckpt: CheckpointTensors, names: string[], where: string): 'f16' | 'bf16' {
  const dtypes = new Map<string, string>();
  for (const n of names) {
    const info = ckpt.info(n);
    if (info.shape.length >= 2 && !dtypes.has(info.dtype)) dtypes.set(info.dtype, n);
  }
  const kinds = [...dtypes.keys()];
  if (kinds.length === 1 && (kinds[0] === 'F16' || kinds[0] === 'BF16')) return kinds[0] === 'F16' ? 'f16' : 'bf16';
  throw new HeadlensError(
    `16-bit weights need a checkpoint whose matrices are all F16 or all BF16; ${where} has ${kinds.map((k) => `${k} (e.g. ${dtypes.get(k)})`).join(' and ')}`,
    'load it with float32 weights (the default); 16-bit weights would round its values',
  );
}

/**
 * Maps each expected HF name to the name stored in the checkpoint (some saves add a prefix such as
 * 'transformer.'), after checking names and shapes. Throws one error listing every problem.
 */
function matchCheckpoint(family: Family, cfg: HookedConfig, ckpt: CheckpointTensors, where: string): Map<string, string> {
  const expected = family.hfShapes(cfg);
  const stored = new Set(ckpt.names);
  const used = new Set<string>();
  const map = new Map<string, string>();
  const problems: string[] = [];
  for (const [name, shape] of Object.entries(expected)) {
    const names = [name, ...(family.aliases?.(name) ?? [])];
    const found = names.flatMap((x) => [x, ...family.prefixes.map((p) => p + x)]).find((n) => stored.has(n));
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
      `checkpoint in ${where} does not match its config.json: ${problems.slice(0, 8).join('; ')}${problems.length > 8 ? `; and ${problems.length - 8} more` : ''}`,
      'check that config.json belongs to these weights',
    );
  }
  return map;
}

/** A model's files in memory. `name` labels the model when config.json has no _name_or_path, and names it in errors. */
export interface ModelFiles {
  name: string;
  /** config.json, parsed (or its text). */
  config: unknown;
  /** The bytes of model.safetensors. */
  weights: Uint8Array;
  /** tokenizer.json, parsed (or its text), if the model has one. */
  tokenizer?: unknown;
  /** tokenizer_config.json, parsed (or its text), if any. */
  tokenizerConfig?: unknown;
}

/** A model from its files in memory (a browser's fetch or file picker): the same checks as loadPretrained. Start a backend first (initBackend). */
export function loadFromFiles(files: ModelFiles, opts: BuildOptions = {}): HookedTransformer {
  const json = (v: unknown, file: string): unknown => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v);
    } catch (e) {
      throw new HeadlensError(`${files.name}/${file} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const { cfg, family } = configFromHF(json(files.config, 'config.json'), files.name, `${files.name}/config.json`);
  const file = parseSafetensors(files.weights, `${files.name}/model.safetensors`);
  const ckpt: CheckpointTensors = {
    names: file.names,
    has: (n) => file.names.includes(n),
    info: (n) => ({ ...file.info(n), file: file.source }),
    float32: (n) => file.float32(n),
  };
  const model = buildModel(cfg, family, ckpt, files.name, opts);
  if (files.tokenizer !== undefined) {
    try {
      const tj = json(files.tokenizer, 'tokenizer.json');
      const tc = files.tokenizerConfig === undefined ? {} : json(files.tokenizerConfig, 'tokenizer_config.json');
      model.tokenizer = new HFTokenizer(tj as Record<string, unknown>, tc as Record<string, unknown>);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return model;
}
