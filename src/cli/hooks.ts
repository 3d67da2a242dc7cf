/** `headlens hooks`: the hook points of a model, with their TransformerLens short names and axes (src/model/hook_names.ts). */
import { z } from 'zod';
import { hookNames, hookPointTable } from '../model/hook_names.js';
import { defineCommand, modelOption, option } from './options.js';
import { withModel } from './with_model.js';

export const hooksCommand = defineCommand({
  summary: "a model's hook points in forward order, with their short names (for cache --names) and axes",
  options: {
    model: modelOption(),
    json: option(z.boolean().optional(), { description: 'print one JSON object: every full hook name, and the table by kind' }),
  },
  async run(v) {
    await withModel(v, (model) => {
      const table = hookPointTable(model.cfg);
      if (v.json) {
        console.log(JSON.stringify({ model: model.cfg.model_name, names: hookNames(model.cfg, { withResult: true }), kinds: table }));
        return;
      }
      const last = model.cfg.n_layers - 1;
      const rows = table.map((t) => [t.layers ? t.name.replace('{l}', `{0…${last}}`) : t.name, t.short.join(', '), `[${t.axes.join(', ')}]${t.onRequest ? ' (made only when named)' : ''}`]);
      const w0 = Math.max(...rows.map((r) => r[0].length)) + 2;
      const w1 = Math.max(...rows.map((r) => r[1].length)) + 2;
      console.log(`hook points of ${model.cfg.model_name} (${model.cfg.n_layers} layers), in forward order:`);
      console.log(`  ${'name'.padEnd(w0)}${'short'.padEnd(w1)}axes`);
      for (const r of rows) console.log(`  ${r[0].padEnd(w0)}${r[1].padEnd(w1)}${r[2]}`);
      console.log('A short name in cache --names stands for every layer\'s hook of that kind.');
    });
  },
});
