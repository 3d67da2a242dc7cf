/** `headlens info`: a model's family, shape, layout, tokenizer and the backend it runs on. */
import { z } from 'zod';
import { formatInfo, modelInfo } from './model_info.js';
import { defineCommand, modelOption, option } from './options.js';
import { withModel } from './with_model.js';

export const infoCommand = defineCommand({
  summary: "a model's family, size, layout, tokenizer and backend",
  options: {
    model: modelOption(),
    json: option(z.boolean().optional(), { description: 'print one JSON object' }),
  },
  async run(v) {
    await withModel(v, (model) => {
      const info = modelInfo(model);
      console.log(v.json ? JSON.stringify(info) : formatInfo(info));
    });
  },
});
