import * as tf from '@tensorflow/tfjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { isEncoder, usableCtx } from '../model/config.js';
import { Random } from '../util/random.js';
import { zooModels } from '../loading/load.js';
import { inductionSequences } from '../datasets/induction.js';
import { inductionScores } from '../interp/scores/induction.js';
import { previousTokenScores } from '../interp/scores/previous_token.js';
import { runScorer, topHeads, type TopHead } from '../interp/scores/head_scores.js';
import { ioiHeadClasses } from '../interp/scores/ioi_classes.js';
import { ioiTask, scanTask } from '../interp/scores/tasks.js';
import { kComposition } from '../interp/weights/composition.js';
import { flowFromPatterns } from '../interp/attribution/attention_flow.js';
import { rolloutFromPatterns } from '../interp/attribution/attention_rollout.js';
import { ovCircuit, qkCircuit } from '../interp/weights/head_circuits.js';
import { attentionPatternSVG } from '../viz/attention_pattern.js';
import { writeAtlas } from '../viz/atlas.js';
import { formatInfo, modelInfo } from './model_info.js';
import { bosOptions, defineCommand, option } from './options.js';
import { prependBosFlag, unknownWords } from './token_args.js';
import { withModel } from './with_model.js';

const DEFAULT_TEXT = 'When Mary and John went to the store, John gave a drink to';

/** Longest prompt whose attention flow the atlas shows (one max-flow per token over (n_layers + 1)·pos nodes). */
const MAX_FLOW_TOKENS = 64;

export const demoCommand = defineCommand({
  summary: 'attention pictures and the head atlas of a model, in one folder',
  options: {
    model: option(z.string().optional(), { description: "a model folder, a shipped model's name, or a hub id", value: 'M', default: 'toy-lm, else the first shipped model' }),
    text: option(z.string().optional(), { description: 'the prompt whose attention is drawn (a model without a tokenizer gets a repeated random span)', value: '"…"', default: JSON.stringify(DEFAULT_TEXT) }),
    out: option(z.string().default('headlens-demo'), { description: 'the folder to write', value: 'DIR' }),
    ...bosOptions(),
  },
  async run(v) {
    const zoo = zooModels();
    const name = v.model ?? ['toy-lm', 'toy-induction-2l'].find((n) => zoo.includes(n)) ?? zoo[0];
    const outDir = v.out;
    await withModel({ model: name, backend: v.backend }, (model) => {
      console.log(formatInfo(modelInfo(model)));
      // a long text is cut to what the model and a readable picture can take; a model without a tokenizer
      // (the toy zoo) gets a random span repeated, the input on which induction heads show themselves
      const maxLen = Math.min(usableCtx(model.cfg), 24);
      const half = Math.min(16, Math.floor((usableCtx(model.cfg) - 1) / 2));
      // whatever this model cannot show is skipped and said, never an error: the demo runs on any folder headlens loads
      const skipped: string[] = [];
      // a BOS id outside the vocabulary (tiny checkpoints keep GPT-2's 50256) cannot be fed: the prompts go without it
      // --no-prepend-bos: no BOS in the prompt nor in the induction sequences; --prepend-bos where it cannot be fed: an error
      const wantBos = prependBosFlag(v);
      const declared = model.cfg.bos_token_id;
      if (wantBos === true && model.bosToken() === null) {
        throw new HeadlensError(`--prepend-bos: ${model.cfg.model_name} has no BOS in its ${model.cfg.d_vocab}-token vocabulary (config.json's bos_token_id is ${declared})`, 'leave --prepend-bos out, or set bos_token_id in config.json to a token of the vocabulary');
      }
      const bos = wantBos === false ? undefined : (model.bosToken() ?? undefined);
      if (wantBos !== false && bos === undefined && declared !== null && declared !== undefined) skipped.push(`the BOS token (config.json's bos_token_id ${declared} is outside the ${model.cfg.d_vocab}-token vocabulary)`);
      if (v.text !== undefined && !model.tokenizer) {
        console.error(`headlens: warning: --text is not used: ${model.cfg.model_name} has no tokenizer.json, so the demo draws a repeated random span of token ids`);
      }
      if (v.text !== undefined && model.tokenizer) {
        // a word-level vocabulary turns unknown words into [UNK] without a word: say which
        const lost = unknownWords(model, v.text);
        if (lost.length) console.error(`headlens: warning: ${lost.length} word${lost.length > 1 ? 's' : ''} of --text ${lost.length > 1 ? 'are' : 'is'} not in ${model.cfg.model_name}'s vocabulary and became ${model.tokenizer.tokenText(model.tokenizer.unkId!)}: ${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ', …' : ''}`);
      }
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
      // an encoder's logits are masked-LM predictions of each position's own token, not of the next one
      if (isEncoder(model.cfg)) skipped.push('the next-token prediction (an encoder predicts masked tokens in place)');
      else console.log(`next token  ${JSON.stringify(model.tokenizer ? model.toText([next]) : String(next))} (id ${next})`);
      console.log(`attention   ${files.join(', ')}`);
      // the head atlas: one self-contained page with what headlens finds in this model
      const seqs = inductionSequences({ n: 16, halfLength: half, low: 1, high: model.cfg.d_vocab, bos, seed: 2 }).sequences;
      const found = headFindings(model, seqs, skipped);
      const [prev, ind] = [found[0].result, found[1].result];
      const taskScorers = found.slice(2);
      if (!model.tokenizer) skipped.push('the IOI and temporal scans (the model has no tokenizer.json)');
      // a head is named only when it beats the same model with its weights shuffled (same scale, no structure)
      let baseline: Finding[] | undefined;
      if (model.nParams <= MAX_BASELINE_PARAMS) {
        const twin = shuffledTwin(model, 1);
        try {
          baseline = headFindings(twin, seqs, []);
        } finally {
          twin.dispose();
        }
      } else {
        skipped.push(`the shuffled-weights baseline (over ${MAX_BASELINE_PARAMS.toExponential(0)} parameters): heads are named on the threshold alone`);
      }
      const said = found.map((f) => nameHead(f, baseline?.find((b) => b.name === f.name)));
      console.log(`heads       ${said.slice(0, 2).join(', ')}`);
      for (const line of said.slice(2)) console.log(`            ${line}`);
      console.log(`            (a head is named when its score passes the task's threshold and is at least ${BASELINE_FACTOR}× the best head of this model with its weights shuffled)`);
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
      // rollout beside attention flow into the prompt's last position (flow is a max-flow per token: long prompts are skipped)
      let tokenFlow: { tokens: string[]; outputPos: number; columns: { name: string; values: number[] }[] } | undefined;
      if (ids.length <= MAX_FLOW_TOKENS) {
        const patterns = Array.from({ length: model.cfg.n_layers }, (_, l) => cache.act('pattern', l) as tf.Tensor4D);
        const flow = flowFromPatterns(patterns, { pos: -1 });
        const rollout = tf.tidy(() => (rolloutFromPatterns(patterns).arraySync() as number[][][])[0][ids.length - 1]);
        tokenFlow = { tokens: model.tokenizer ? model.toStrTokens(ids) : ids.map(String), outputPos: ids.length - 1, columns: [{ name: 'rollout', values: rollout }, { name: 'flow', values: flow.normalized[0] }] };
      } else {
        skipped.push(`attention flow (the prompt has ${ids.length} tokens; flow is drawn for up to ${MAX_FLOW_TOKENS})`);
      }
      const atlasFile = writeAtlas(path.join(outDir, 'atlas.html'), {
        model: { name: model.cfg.model_name, ...modelInfo(model) },
        note: `Scores on ${seqs.length} random spans of ${half} tokens repeated; attention on the prompt below. Written by \`headlens demo\`.`,
        scorers: [
          { name: 'previous token', description: 'attention to the previous position (TransformerLens head detector)', scores: prev.scores },
          { name: 'induction', description: 'attention to the token after the earlier occurrence of the current one (TransformerLens head detector)', scores: ind.scores },
          ...taskScorers.map(({ name, description, result }) => ({ name, description, scores: result.scores })),
        ],
        tokens: labels,
        patterns: tf.tidy(() => Array.from({ length: model.cfg.n_layers }, (_, l) => cache.act('pattern', l).squeeze([0]).arraySync() as number[][][])),
        spectra,
        ...(tokenFlow ? { tokenFlow } : {}),
        ...(k && edges.length ? { circuit: { title: `K-composition above the random baseline (${k.baseline.mean.toFixed(3)} ± ${k.baseline.std.toFixed(3)})`, edges } } : {}),
      });
      console.log(`atlas       ${atlasFile}`);
      if (skipped.length) console.log(`skipped     ${skipped.join('; ')}`);
      cache.dispose();
      logits.dispose();
    });
  },
});

/** Shuffled-weights baselines are computed up to this size (the twin is a second copy of the weights). */
const MAX_BASELINE_PARAMS = 2e8;
/** How far above the shuffled twin's best head a head must be to be named. */
const BASELINE_FACTOR = 2;

/** What one scorer found: its table and best head; `evidence` is what is compared with the baseline. */
interface Finding {
  name: string;
  description: string;
  result: { scores: number[][]; top: TopHead[] };
  /** The score a head must reach to be named (detectors: attention share; IOI: share of the logit difference; temporal: nats). */
  threshold: number;
  /** The best head's strength on a scale comparable across models (IOI: its share times the logit-difference gap, in nats). */
  evidence: number;
}

/** "induction L1H0 (score 0.48)", or "induction none found (best 0.03)". */
function nameHead(f: Finding, baseline: Finding | undefined): string {
  const best = f.result.top[0];
  if (!best) return `${f.name} none found (no finite score)`;
  const aboveBaseline = !baseline || f.evidence >= BASELINE_FACTOR * Math.max(0, baseline.evidence);
  return best.score >= f.threshold && aboveBaseline ? `${f.name} L${best.layer}H${best.head} (score ${best.score.toFixed(2)})` : `${f.name} none found (best ${best.score.toFixed(2)})`;
}

/** The model with each weight tensor's entries shuffled: the same scale and the same norms, no learned structure. */
function shuffledTwin(model: HookedTransformer, seed: number): HookedTransformer {
  const rng = new Random(seed);
  const params: Record<string, tf.Tensor> = {};
  for (const n of model.paramNames()) {
    const t = model.param(n);
    const d = Float32Array.from(t.dataSync());
    for (let i = d.length - 1; i > 0; i--) {
      const j = rng.int(0, i + 1);
      [d[i], d[j]] = [d[j], d[i]];
    }
    params[n] = tf.tensor(d, t.shape);
  }
  const twin = new HookedTransformer(model.cfg, params);
  twin.tokenizer = model.tokenizer;
  return twin;
}

/**
 * The head detectors (previous token, induction) on repeated random spans, then the task scans a model with a
 * tokenizer can run (IOI direct paths, temporal heads); a task the tokenizer cannot express (names of several
 * tokens, years that change length) is left out and said in `skipped`.
 */
function headFindings(model: HookedTransformer, seqs: number[][], skipped: string[]): Finding[] {
  const prev = previousTokenScores(model, seqs);
  const ind = inductionScores(model, seqs);
  const out: Finding[] = [
    { name: 'previous-token', description: 'attention to the previous position (TransformerLens head detector)', result: prev, threshold: DETECTOR_THRESHOLD, evidence: prev.top[0]?.score ?? 0 },
    { name: 'induction', description: 'attention to the token after the earlier occurrence of the current one (TransformerLens head detector)', result: ind, threshold: DETECTOR_THRESHOLD, evidence: ind.top[0]?.score ?? 0 },
  ];
  if (!model.tokenizer) return out;
  if (isEncoder(model.cfg)) {
    skipped.push('the IOI and temporal scans (written for causal decoders; this model is an encoder)');
    return out;
  }
  try {
    const { prompts } = ioiTask(model, { samples: 8, seed: 0 });
    const r = ioiHeadClasses(model, prompts);
    const scores = r.nameMoverStrength;
    const top = topHeads(scores);
    // a share of a gap: a model with no IO − S gap gives large shares of nothing, so the baseline compares nats
    const gap = Math.abs(r.clean - r.corrupted);
    out.push({ name: 'IOI direct path', description: `share of the IO − S logit difference lost when the head's direct path to the logits is patched from the ABC run (${prompts.length} IOI prompts)`, result: { scores, top }, threshold: 0.1, evidence: (top[0]?.score ?? 0) * gap });
  } catch (e) {
    if (!(e instanceof HeadlensError)) throw e;
    skipped.push(`the IOI scan (${e.message})`);
  }
  try {
    const r = runScorer(model, scanTask(model, 'temporal', { samples: 8, seed: 0 }).scorer);
    out.push({ name: 'temporal', description: 'drop in log p(answer) of year-dependent facts when the head is patched from a run with another year, minus the same on time-invariant controls (nats)', result: r, threshold: 0.2, evidence: r.top[0]?.score ?? 0 });
  } catch (e) {
    if (!(e instanceof HeadlensError)) throw e;
    skipped.push(`the temporal scan (${e.message})`);
  }
  return out;
}

/**
 * A detector names a head that puts at least this share of its attention where the pattern says: random and
 * shuffled models give about 0.1 to the previous token (uniform attention over a dozen positions) and 0.03 to
 * the induction target; toy-induction-2l's heads give 0.86 and 0.48.
 */
const DETECTOR_THRESHOLD = 0.3;
