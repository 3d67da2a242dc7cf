/**
 * Park et al.'s temporal-head circuits on toy-lm at their 100 EAP-IG steps, one slice of the tasks per process, on the
 * wasm backend (the GPU machine's CPU cores run several slices at once; nothing here uses the GPU). Writes each task's
 * pruned top-n circuit and its faithfulness as JSON; temporalHeadsOf merges the slices.
 *   ../shared/device/pack.sh tests/device/temporal_circuits_toy.ts "--banner:js=const __import_meta_url =
 *     require('url').pathToFileURL(__filename).href;" "--define:import.meta.url=__import_meta_url"
 *   device: bash .device/boot.sh --part 0 --of 1 --out $OUT/part0.json   (carry [".device"])
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { initBackend } from '../../src/backend/index.js';
import { temporalCircuitData } from '../../src/datasets/temporal.js';
import { circuitFaithfulness } from '../../src/interp/interventions/circuit_faithfulness.js';
import { logitDiff } from '../../src/interp/metrics.js';
import { taskCircuit } from '../../src/interp/scores/temporal_circuits.js';
import { loadPretrained } from '../../src/loading/load.js';

const { values } = parseArgs({ options: { part: { type: 'string', default: '0' }, of: { type: 'string', default: '1' }, steps: { type: 'string', default: '100' }, out: { type: 'string' } } });
const [part, of, steps] = [Number(values.part), Number(values.of), Number(values.steps)];
async function main() {
  await initBackend({ backend: 'wasm' });
  const model = await loadPretrained('datasets/zoo/toy-lm');
  const data = temporalCircuitData(model.tokenizer!, { prefix: [0], unk: 1 });
  const out = [];
  const t0 = Date.now();
  for (const [k, t] of data.tasks.entries()) {
    if (k % of !== part) continue;
    const { circuit, edges } = taskCircuit(model, t, { steps });
    const f = circuitFaithfulness(model, circuit, { clean: t.clean, corrupted: t.corrupted, metric: logitDiff(t.answer, t.wrong) });
    out.push({ name: t.name, kind: t.kind, group: t.group, rows: t.clean.length, edges, circuit, faithfulness: f });
    console.log(`${t.name}: ${circuit.nodes.join(' ')} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const json = JSON.stringify({ part, of, steps, tasks: data.tasks.length, dropped: data.dropped.length, circuits: out });
  if (values.out) writeFileSync(values.out, json);
  else console.log(json);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
