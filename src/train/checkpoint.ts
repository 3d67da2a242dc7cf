/**
 * A training checkpoint folder: the model in its HF layout (loadPretrained reads it like any other), the
 * optimizer's moments (optimizer_state.safetensors) and the trainer's state (trainer_state.json: step, the
 * generator's state, tokens, seconds, history), which together let a resumed run continue exactly where the
 * checkpoint was taken.
 */
import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { encodeSafetensors, parseSafetensors } from '../util/safetensors.js';
import { saveModel } from '../loading/save.js';
import type { AdamW } from './adamw.js';
import type { TrainLog } from './trainer.js';

/** What trainer_state.json holds. */
export interface TrainerState {
  step: number;
  /** The run's Random state after the step: the next batch and head-dropout draws continue from it. */
  rng: number;
  tokens: number;
  /** Seconds trained over the whole run, resumed parts included. */
  seconds: number;
  history: TrainLog[];
  optimizerStep: number;
  /** The caller's own record of how the run was started (TrainOptions.meta), kept with every checkpoint. */
  meta?: Record<string, string>;
}

const STATE = 'trainer_state.json';
const MOMENTS = 'optimizer_state.safetensors';

/** The `meta` a checkpoint folder's run was started with (TrainOptions.meta), or {} when it has none. */
export function readTrainerMeta(dir: string): Record<string, string> {
  const file = path.join(dir, STATE);
  if (!existsSync(file)) return {};
  return (JSON.parse(readFileSync(file, 'utf8')) as TrainerState).meta ?? {};
}

/** Writes the model (HF layout) and the trainer's state; a crash mid-write leaves the previous checkpoint. */
export async function writeCheckpoint(model: HookedTransformer, opt: AdamW, state: TrainerState, dir: string): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  await saveModel(model, tmp, { metadata: { step: String(state.step) } });
  const moments: Parameters<typeof encodeSafetensors>[0] = {};
  const held = opt.moments();
  try {
    for (const [kind, map] of Object.entries(held)) {
      for (const [name, t] of map) moments[`${kind}.${name}`] = { dtype: 'F32', shape: t.shape, data: (await t.data()) as Float32Array };
    }
  } finally {
    for (const map of Object.values(held)) tf.dispose([...map.values()]);
  }
  writeFileSync(path.join(tmp, MOMENTS), encodeSafetensors(moments));
  writeFileSync(path.join(tmp, STATE), JSON.stringify(state, null, 1));
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

/**
 * The trainer's state from a checkpoint folder, with the optimizer's moments and step restored into `opt`.
 * (The model's weights are the caller's to load: loadPretrained(dir).)
 */
export function readCheckpoint(dir: string, opt: AdamW): TrainerState {
  if (!existsSync(path.join(dir, STATE)) || !existsSync(path.join(dir, MOMENTS))) {
    throw new HeadlensError(`nothing to resume in ${dir}`, `it needs ${STATE} and ${MOMENTS} from an earlier run`);
  }
  const state = JSON.parse(readFileSync(path.join(dir, STATE), 'utf8')) as TrainerState;
  loadMoments(opt, path.join(dir, MOMENTS));
  opt.step = state.optimizerStep;
  return state;
}

function loadMoments(opt: AdamW, file: string): void {
  const f = parseSafetensors(new Uint8Array(readFileSync(file)), file);
  const m = new Map<string, tf.Tensor>();
  const v = new Map<string, tf.Tensor>();
  for (const n of f.names) {
    const [kind, ...rest] = n.split('.');
    (kind === 'm' ? m : v).set(rest.join('.'), tf.tensor(f.float32(n), f.info(n).shape));
  }
  opt.setMoments(m, v);
}
