/** `withModel`: how every `headlens` command that reads a model loads it, and gives it back. */
import type { BackendName } from '../backend/index.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { loadPretrained } from '../loading/load.js';
import { downloadBars } from './progress.js';

/** Env HEADLENS_ALLOW_NONFINITE=1 (or true): load a checkpoint whose weights hold NaN or Inf. */
function allowNonFinite(): boolean {
  const v = process.env.HEADLENS_ALLOW_NONFINITE;
  return v === '1' || v?.toLowerCase() === 'true';
}

/**
 * Loads `--model` on `--backend` (a hub id downloads with a bar per file on a terminal), runs `fn` with it,
 * and disposes the model however `fn` ends.
 */
export async function withModel<T>(v: { model: string; backend?: string }, fn: (model: HookedTransformer) => T | Promise<T>): Promise<T> {
  const bars = downloadBars();
  let model: HookedTransformer;
  try {
    model = await loadPretrained(v.model, { backend: v.backend as BackendName | undefined, onProgress: bars?.onProgress, allowNonFinite: allowNonFinite() });
  } finally {
    bars?.stop();
  }
  try {
    return await fn(model);
  } finally {
    model.dispose();
  }
}
