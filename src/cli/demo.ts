import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { zooModels } from '../loading/load.js';
import { inductionSequences } from '../datasets/induction.js';
import { inductionScores } from '../interp/scores/induction.js';
import { previousTokenScores } from '../interp/scores/previous_token.js';
import { runScorer, topHeads } from '../interp/scores/head_scores.js';
import { ioiHeadClasses } from '../interp/scores/ioi_classes.js';
import { ioiTask, scanTask } from '../interp/scores/tasks.js';
import { usableBos } from '../interp/scores/tasks/task.js';
import { kComposition } from '../interp/weights/composition.js';
import { ovCircuit, qkCircuit } from '../interp/weights/head_circuits.js';
import { attentionPatternSVG } from '../viz/attention_pattern.js';
import { writeAtlas } from '../viz/atlas.js';
import { formatInfo, modelInfo } from './model_info.js';
import { defineCommand, option } from './options.js';
import { withModel } from './with_model.js';

const DEFAULT_TEXT = 'When Mary and John went to the store, John gave a drink to';

export const demoCommand = defineCommand({
  summary: 'attention pictures and the head atlas of a model, in one folder',
  options: {
    model: option(z.string().optional(), { description: "a model folder, a shipped model's name, or a hub id", value: 'M', default: 'toy-lm, else the first shipped model' }),
    text: option(z.string().optional(), { description: 'the prompt whose attention is drawn (a model without a tokenizer gets a repeated random span)', value: '"…"', default: JSON.stringify(DEFAULT_TEXT) }),
    out: option(z.string().default('headlens-demo'), { description: 'the folder to write', value: 'DIR' }),
  },
  async run(v) {
    const zoo = zooModels();
    const name = v.model ?? ['toy-lm', 'toy-induction-2l'].find((n) => zoo.includes(n)) ?? zoo[0];
    const outDir = v.out;
    await withModel({ model: name, backend: v.backend }, (model) => {
      console.log(formatInfo(modelInfo(model)));
      // a long text is cut to what the model and a readable picture can take; a model without a tokenizer
      // (the toy zoo) gets a random span repeated, the input on which induction heads show themselves
      const maxLen = Math.min(model.cfg.n_ctx, 24);
      const half = Math.min(16, Math.floor((model.cfg.n_ctx - 1) / 2));
      // whatever this model cannot show is skipped and said, never an error: the demo runs on any folder headlens loads
      const skipped: string[] = [];
      // a BOS id outside the vocabulary (tiny checkpoints keep GPT-2's 50256) cannot be fed: the prompts go without it
      const bos = usableBos(model) ?? undefined;
      const declared = model.cfg.bos_token_id;
      if (bos === undefined && declared !== null && declared !== undefined) skipped.push(`the BOS token (config.json's bos_token_id ${declared} is outside the ${model.cfg.d_vocab}-token vocabulary)`);
      const ids = model.tokenizer
        ? model.toTokens(v.text ?? DEFAULT_TEXT, { prependBos: bos !== undefined })[0].slice(0, maxLen)
        : inductionSequences({ n: 1, halfLength: half, low: 1, high: model.cfg.d_vocab, bos, seed: 1 }).sequences[0];
      const labels = model.tokenLabels(ids);
      const { logits, cache } = model.runWithCache([ids], { names: (n) => n.endsWith('attn.hook_pattern') });
      mkdirSync(outDir, { recursive: true });
      const files: string[] = [];
      for (let l = 0; l < model.cfg.n_layers; l++) {
        const pattern = tf.tidy(() => cache.act('pattern', l).squeeze([0]).arraySync() as number[][][]);
        const file = path.join(outDir, `attention-layer${l}.svg`);
        writeFileSync(file, attentionPatternSVG(pattern, { labels, headLabels: pattern.map((_, h) => `L${l}H${h}`), title: `${model.cfg.model_name}: layer ${l}` }));
        files.push(file);
      }
      const next = tf.tidy(() => logits.slice([0, ids.length - 1, 0], [1, 1, -1]).flatten().argMax().dataSync()[0]);
      console.log(`\ntext        ${JSON.stringify(model.tokenizer ? model.toText(ids) : ids.join(' '))}`);
      console.log(`next token  ${JSON.stringify(model.tokenizer ? model.toText([next]) : String(next))} (id ${next})`);
      console.log(`attention   ${files.join(', ')}`);
      // the head atlas: one self-contained page with what headlens finds in this model
      const seqs = inductionSequences({ n: 16, halfLength: half, low: 1, high: model.cfg.d_vocab, bos, seed: 2 }).sequences;
      const prev = previousTokenScores(model, seqs);
      const ind = inductionScores(model, seqs);
      const [p, i] = [prev.top[0], ind.top[0]];
      console.log(`heads       previous-token L${p.layer}H${p.head} (score ${p.score.toFixed(2)}), induction L${i.layer}H${i.head} (score ${i.score.toFixed(2)})`);
      const taskScorers = model.tokenizer ? taskGrids(model, skipped) : [];
      if (!model.tokenizer) skipped.push('the IOI and temporal scans (the model has no tokenizer.json)');
      for (const t of taskScorers) console.log(`            ${t.name} L${t.top.layer}H${t.top.head} (score ${t.top.score.toFixed(2)})`);
      const shown = [...prev.top.slice(0, 2), ...ind.top.slice(0, 2)];
      const spectra = ['qk', 'ov'].map((c) => ({
        title: `${c.toUpperCase()} circuit singular values`,
        spectra: shown.map((t) => ({
          label: `L${t.layer}H${t.head} ${c.toUpperCase()}`,
          values: Array.from((c === 'qk' ? qkCircuit : ovCircuit)(model, t.layer, t.head).singularValues()),
        })),
      }));
      const k = model.cfg.n_layers > 1 ? kComposition(model) : undefined;
      const edges = k ? k.pairs.filter((p) => p.score > k.baseline.mean + 3 * k.baseline.std).map((p) => ({ from: p.from.label, to: p.to.label, score: p.score })) : [];
      if (!k) skipped.push('the K-composition graph (one layer: nothing to compose)');
      else if (!edges.length) skipped.push(`the K-composition graph (no pair of heads above the random baseline ${k.baseline.mean.toFixed(3)} + 3 × ${k.baseline.std.toFixed(3)})`);
      const atlasFile = writeAtlas(path.join(outDir, 'atlas.html'), {
        model: { name: model.cfg.model_name, ...modelInfo(model) },
        note: `Scores on ${seqs.length} random spans of ${half} tokens repeated; attention on the prompt below. Written by \`headlens demo\`.`,
        scorers: [
          { name: 'previous token', description: 'attention to the previous position (TransformerLens head detector)', scores: prev.scores },
          { name: 'induction', description: 'attention to the token after the earlier occurrence of the current one (TransformerLens head detector)', scores: ind.scores },
          ...taskScorers.map(({ name, description, scores }) => ({ name, description, scores })),
        ],
        tokens: labels,
        patterns: tf.tidy(() => Array.from({ length: model.cfg.n_layers }, (_, l) => cache.act('pattern', l).squeeze([0]).arraySync() as number[][][])),
        spectra,
        ...(k && edges.length ? { circuit: { title: `K-composition above the random baseline (${k.baseline.mean.toFixed(3)} ± ${k.baseline.std.toFixed(3)})`, edges } } : {}),
      });
      console.log(`atlas       ${atlasFile}`);
      if (skipped.length) console.log(`skipped     ${skipped.join('; ')}`);
      cache.dispose();
      logits.dispose();
    });
  },
});

/**
 * The task scans a model with a tokenizer can run (IOI direct paths, temporal heads), as head grids for the
 * atlas; a task the tokenizer cannot express (names of several tokens, years that change length) is left out.
 */
function taskGrids(model: HookedTransformer, skipped: string[]): { name: string; description: string; scores: number[][]; top: { layer: number; head: number; score: number } }[] {
  const out = [];
  try {
    const { prompts } = ioiTask(model, { samples: 8, seed: 0 });
    const r = ioiHeadClasses(model, prompts);
    const scores = r.nameMoverStrength;
    out.push({ name: 'IOI direct path', description: `share of the IO − S logit difference lost when the head's direct path to the logits is patched from the ABC run (${prompts.length} IOI prompts)`, scores, top: topHeads(scores)[0] });
  } catch (e) {
    if (!(e instanceof HeadlensError)) throw e;
    skipped.push(`the IOI scan (${e.message})`);
  }
  try {
    const r = runScorer(model, scanTask(model, 'temporal', { samples: 8, seed: 0 }).scorer);
    out.push({ name: 'temporal', description: 'drop in log p(answer) of year-dependent facts when the head is patched from a run with another year, minus the same on time-invariant controls (nats)', scores: r.scores, top: r.top[0] });
  } catch (e) {
    if (!(e instanceof HeadlensError)) throw e;
    skipped.push(`the temporal scan (${e.message})`);
  }
  return out;
}
