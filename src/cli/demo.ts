import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BackendName } from '../backend/index.js';
import { loadPretrained, zooModels } from '../loading/load.js';
import { attentionPatternSVG } from '../viz/attention_pattern.js';
import { formatInfo, modelInfo } from './info.js';
import type { Command } from './main.js';

const DEFAULT_TEXT = 'When Mary and John went to the store, John gave a drink to';

export const demoCommand: Command = {
  options: { model: { type: 'string' }, text: { type: 'string' }, out: { type: 'string' } },
  async run(v) {
    const name = (v.model as string | undefined) ?? zooModels()[0];
    const outDir = (v.out as string | undefined) ?? 'headlens-demo';
    const model = await loadPretrained(name, { backend: v.backend as BackendName });
    console.log(formatInfo(modelInfo(model)));
    // a long text is cut to what the model and a readable picture can take
    const maxLen = Math.min(model.cfg.n_ctx, 24);
    const ids = (model.tokenizer ? model.toTokens((v.text as string | undefined) ?? DEFAULT_TEXT)[0] : Array.from({ length: 12 }, (_, i) => i % model.cfg.d_vocab)).slice(0, maxLen);
    const labels = model.tokenLabels(ids);
    const { logits, cache } = model.runWithCache([ids], { names: (n) => n.endsWith('attn.hook_pattern') });
    mkdirSync(outDir, { recursive: true });
    const files: string[] = [];
    for (let l = 0; l < model.cfg.n_layers; l++) {
      const pattern = tf.tidy(() => cache.get(`blocks.${l}.attn.hook_pattern`).squeeze([0]).arraySync() as number[][][]);
      const file = path.join(outDir, `attention-layer${l}.svg`);
      writeFileSync(file, attentionPatternSVG(pattern, { labels, headLabels: pattern.map((_, h) => `L${l}H${h}`), title: `${model.cfg.model_name}: layer ${l}` }));
      files.push(file);
    }
    const next = tf.tidy(() => logits.slice([0, ids.length - 1, 0], [1, 1, -1]).flatten().argMax().dataSync()[0]);
    console.log(`\ntext        ${JSON.stringify(model.tokenizer ? model.toText(ids) : ids.join(' '))}`);
    console.log(`next token  ${JSON.stringify(model.tokenizer ? model.toText([next]) : String(next))} (id ${next})`);
    console.log(`attention   ${files.join(', ')}`);
    cache.dispose();
    logits.dispose();
    model.dispose();
  },
};
