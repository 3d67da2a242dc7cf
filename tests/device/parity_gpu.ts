/**
 * The parity check on the GPU machine, where vitest cannot run (no Node.js there: see ../shared/device).
 * Bundled by ../shared/device/pack.sh and run with `bash .device/boot.sh --backend webgpu OUT_DIR`.
 * For every fixture model it compares logits, hidden states and attention patterns with transformers'
 * and writes the largest errors as JSON; it also checks that 100 runWithCache + dispose calls leak nothing.
 */
import * as tf from '@tensorflow/tfjs';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { initBackend, type BackendName } from '../../src/backend/index.js';
import { fixtureModels } from '../helpers.js';
import { fixtureErrors, fixtureTokens } from './fixture_parity.js';

async function main() {
  const args = process.argv.slice(2);
  const backend = (args[args.indexOf('--backend') + 1] ?? 'webgpu') as BackendName;
  const outDir = args[args.length - 1];
  const choice = await initBackend({ backend });
  console.log(`backend ${choice.name}: ${choice.reason}`);
  const results: Record<string, Record<string, number>> = {};
  for (const name of fixtureModels()) {
    const { model, errors: e } = await fixtureErrors(name);
    const rows = fixtureTokens(name);
    // leak check: 100 cached runs
    const before = tf.memory().numTensors;
    for (let i = 0; i < 100; i++) {
      const r = model.runWithCache(rows, { names: 'all' });
      r.cache.dispose();
      r.logits.dispose();
    }
    e.leaked_tensors = tf.memory().numTensors - before;
    results[name] = e;
    const worst = Math.max(...Object.entries(e).filter(([k]) => k !== 'leaked_tensors').map(([, v]) => v));
    console.log(`${name}: max |error| ${worst.toExponential(2)}, leaked ${e.leaked_tensors}`);
    model.dispose();
  }
  writeFileSync(path.join(outDir, `parity-${choice.name}.json`), JSON.stringify({ backend: choice, results }, null, 1));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
