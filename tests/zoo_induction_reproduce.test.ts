/**
 * Issue 6's "the recipe retrains each model from its seed", for the model trained on the CPU: the recipe of
 * toy-induction-2l, run from its seed through train() on wasm, gives the shipped weights bit for bit. (toy-lm
 * was trained in stages on a GPU, whose arithmetic is not deterministic; its short run is in train.test.ts.)
 * About 3 minutes of one core.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { loadPretrained } from '../src/loading/load.js';
import { makeConfig } from '../src/model/config.js';
import { recipe } from '../src/zoo/recipes.js';
import { train } from '../src/train/trainer.js';

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
});

describe('toy-induction-2l from its recipe', () => {
  it('retraining from seed 0 gives the shipped weights exactly', async () => {
    const r = recipe('toy-induction-2l');
    const model = HookedTransformer.random(makeConfig(r.config), { seed: r.train.seed, std: r.initStd ?? 0.02 });
    const res = await train(model, r.data(r.train.seed), { ...r.train });
    const shipped = await loadPretrained('toy-induction-2l');
    console.log(`toy-induction-2l retrained: ${res.step} steps in ${res.seconds.toFixed(0)} s, eval loss ${res.finalEvalLoss.toFixed(4)}`);
    for (const name of shipped.paramNames()) {
      expect(Array.from(model.param(name).dataSync()), name).toEqual(Array.from(shipped.param(name).dataSync()));
    }
    model.dispose();
    shipped.dispose();
  }, 1_200_000);
});
