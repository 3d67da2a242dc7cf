import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BackendName } from '../backend/index.js';
import { loadPretrained, zooModels } from '../loading/load.js';
import { inductionSequences } from '../datasets/induction.js';
import { inductionScores } from '../interp/scores/induction.js';
import { previousTokenScores } from '../interp/scores/previous_token.js';
import { attentionPatternSVG } from '../viz/attention_pattern.js';
import { formatInfo, modelInfo } from './info.js';
import type { Command } from './main.js';

const DEFAULT_TEXT = 'When Mary and John went to the store, John gave a drink to';

export const demoCommand: Command = {
  options: { model: { type: 'string' }, text: { type: 'string' }, out: { type: 'string' } },
  async run(v) {
    const zoo = zooModels();
    const name = (v.model as string | undefined) ?? (zoo.includes('toy-induction-2l') ? 'toy-induction-2l' : zoo[0]);
    const outDir = (v.out as string | undefined) ?? 'headlens-demo';
    const model = await loadPretrained(name, { backend: v.backend as BackendName });
    console.log(formatInfo(modelInfo(model)));
    // a long text is cut to what the model and a readable picture can take; a model without a tokenizer
    // (the toy zoo) gets a random span repeated, the input on which induction heads show themselves
    const maxLen = Math.min(model.cfg.n_ctx, 24);
    const half = Math.min(16, Math.floor((model.cfg.n_ctx - 1) / 2));
    const ids = model.tokenizer
      ? model.toTokens((v.text as string | undefined) ?? DEFAULT_TEXT)[0].slice(0, maxLen)
      : inductionSequences({ n: 1, halfLength: half, low: 1, high: model.cfg.d_vocab, bos: model.cfg.bos_token_id ?? undefined, seed: 1 }).sequences[0];
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
    if (!model.tokenizer) {
      const seqs = inductionSequences({ n: 16, halfLength: half, low: 1, high: model.cfg.d_vocab, bos: model.cfg.bos_token_id ?? undefined, seed: 2 }).sequences;
      const prev = previousTokenScores(model, seqs).top[0];
      const ind = inductionScores(model, seqs).top[0];
      console.log(`heads       previous-token L${prev.layer}H${prev.head} (score ${prev.score.toFixed(2)}), induction L${ind.layer}H${ind.head} (score ${ind.score.toFixed(2)})`);
    }
    cache.dispose();
    logits.dispose();
    model.dispose();
  },
};
