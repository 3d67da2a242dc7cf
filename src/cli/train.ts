/** `headlens train`: train a zoo recipe from scratch, from an earlier run's weights, or on from a checkpoint. */
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import type { BackendName } from '../backend/index.js';
import { initBackend } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { HookedTransformer } from '../hooks/hooked_transformer.js';
import { loadPretrained } from '../loading/load.js';
import { makeConfig } from '../model/config.js';
import { recipe, RECIPES } from '../zoo/recipes.js';
import { parseHeadLabel } from '../interp/head_label.js';
import { readTrainerMeta } from '../train/checkpoint.js';
import { train, type AttentionTarget, type TrainProgress } from '../train/trainer.js';
import { defineCommand, integer, option, positiveInt, positiveNumber } from './options.js';
import { CAPS, memoryBudget, activationBytes, checkAtMost, fitting, formatBytes } from './size_bounds.js';

/** The flags a run keeps with its checkpoints, which `--resume` reuses unless given again. */
const KEPT = ['recipe', 'steps', 'seed', 'lr', 'batch-size', 'mix', 'eval-every', 'checkpoint-every', 'head-dropout', 'attention-target'] as const;

const RECIPE_NAMES = Object.keys(RECIPES) as [string, ...string[]];

/** A probability a head is dropped: a number in [0, 1). */
const probability = () =>
  z
    .string()
    .refine((s) => Number(s) >= 0 && Number(s) < 1, { error: (iss) => `--${String(iss.path?.[0])} ${String(iss.input)} is not a number in [0, 1)` })
    .transform(Number);

export const trainCommand = defineCommand({
  summary: 'train a zoo recipe (from scratch, from an earlier run with --init, or on from a checkpoint with --resume)',
  options: {
    recipe: option(z.enum(RECIPE_NAMES, { error: (iss) => (iss.input === undefined ? '--recipe is required' : `no recipe '${String(iss.input)}'`) }), {
      description: 'what to train (the model, data and schedule)',
      value: 'NAME',
      fix: `recipes: ${RECIPE_NAMES.join(', ')}`,
    }),
    out: option(z.string().optional(), { description: 'the folder to write the model and checkpoints to', value: 'DIR', default: 'the --resume folder' }),
    steps: option(positiveInt({ max: CAPS.steps, why: 'the most steps headlens train runs' }).optional(), { description: `optimizer steps (at most ${CAPS.steps})`, value: 'N', example: '100', default: "the recipe's" }),
    seed: option(integer().optional(), { description: 'the seed of the initial weights and the data', value: 'S', example: '0', default: "the recipe's" }),
    lr: option(positiveNumber().optional(), { description: 'the peak learning rate', value: 'X', example: '1e-3', default: "the recipe's" }),
    'batch-size': option(positiveInt().optional(), { description: "sequences per step (at most what fits in memory for the recipe's model)", value: 'B', example: '8', default: "the recipe's" }),
    'init-std': option(positiveNumber().optional(), { description: 'the standard deviation of the initial weights', value: 'S', example: '0.02', default: "the recipe's, else 0.02" }),
    'eval-every': option(positiveInt().optional(), { description: 'steps between evaluations', value: 'N', example: '100', default: "the recipe's" }),
    'checkpoint-every': option(positiveInt().optional(), { description: 'steps between checkpoints', value: 'N', example: '500', default: "the recipe's" }),
    mix: option(z.string().optional(), { description: 'shares of the document kinds in the data', value: 'KIND=SHARE,…', default: "the recipe's" }),
    'head-dropout': option(probability().optional(), {
      description: 'the probability that each head is dropped at each step',
      value: 'P',
      default: '0',
      fix: 'e.g. --head-dropout 0.2 (the probability that a head is dropped)',
    }),
    'attention-target': option(z.string().optional(), {
      description: 'heads trained to attend along marked pairs: LxHy[:WEIGHT][@PAIRS], comma-separated',
      value: 'LxHy[:W][@PAIRS],…',
    }),
    resume: option(z.string().optional(), { description: 'continue the run in this folder, with the flags it was started with', value: 'DIR' }),
    init: option(z.string().optional(), { description: "start a new run from this earlier run's weights", value: 'DIR' }),
    'max-seconds': option(positiveInt().optional(), { description: 'stop (with a checkpoint) after this many seconds', value: 'T', example: '100' }),
  },
  // --resume continues with the flags the run was started with (kept in its trainer_state.json); a flag given
  // again wins, with a note when it differs
  preset(given) {
    const resumeDir = given.resume as string | undefined;
    const saved = resumeDir && existsSync(resumeDir) ? readTrainerMeta(resumeDir) : {};
    const preset: Record<string, string> = {};
    for (const k of KEPT) {
      if (saved[k] === undefined) continue;
      if (given[k] === undefined) preset[k] = saved[k];
      else if (k === 'recipe' || k === 'mix' || k === 'attention-target' ? given[k] !== saved[k] : Number(given[k]) !== Number(saved[k])) console.error(`headlens train: --${k} ${String(given[k])} (the run being resumed had ${saved[k]})`);
    }
    return preset;
  },
  async run(v) {
    const resumeDir = v.resume;
    const r = recipe(v.recipe);
    const out = v.out ?? resumeDir;
    if (!out) throw new HeadlensError('--out is required', `e.g. --out models/${r.name}`);
    const steps = v.steps ?? r.train.steps;
    const seed = v.seed ?? r.train.seed;
    const maxSeconds = v['max-seconds'];
    const lr = v.lr ?? r.train.lr;
    const initStd = v['init-std'] ?? r.initStd ?? 0.02;
    const headDropout = v['head-dropout'] ?? 0;
    const batchSize = v['batch-size'] ?? r.train.batchSize;
    const evalEvery = v['eval-every'] ?? r.train.evalEvery;
    const checkpointEvery = v['checkpoint-every'] ?? r.train.checkpointEvery;
    await initBackend({ backend: v.backend as BackendName });
    let model: HookedTransformer;
    if (resumeDir) {
      if (!existsSync(resumeDir)) throw new HeadlensError(`--resume ${resumeDir} does not exist`, 'pass the folder an earlier `headlens train` wrote');
      model = await loadPretrained(resumeDir);
    } else if (v.init !== undefined) {
      // a new run (fresh optimizer, schedule and data order) from an earlier run's weights: a curriculum's next stage
      const init = v.init;
      if (!existsSync(init)) throw new HeadlensError(`--init ${init} does not exist`, 'pass the folder an earlier `headlens train` wrote');
      model = await loadPretrained(init);
      const want = makeConfig(r.config);
      for (const k of ['n_layers', 'n_heads', 'd_model', 'd_head', 'd_vocab', 'n_ctx'] as const) {
        if (model.cfg[k] !== want[k]) throw new HeadlensError(`--init ${init} has ${k} ${model.cfg[k]}, recipe ${r.name} wants ${want[k]}`, 'start from a model of the same shape');
      }
    } else {
      model = HookedTransformer.random(makeConfig(r.config), { seed, std: initStd });
      if (r.tokenizer) model.tokenizer = r.tokenizer();
    }
    // a training step keeps every activation of the batch for the backward pass, then their gradients
    const each = 3 * activationBytes(model.cfg, model.cfg.n_ctx);
    checkAtMost('batch-size', batchSize, fitting(each), `in ${formatBytes(memoryBudget())} for ${model.cfg.model_name}: a training step holds ${formatBytes(each)} per sequence of ${model.cfg.n_ctx} tokens (activations, gradients)`);
    const attentionTargets = v['attention-target'] !== undefined ? parseAttentionTargets(v['attention-target'], model.cfg) : undefined;
    const mix = v.mix;
    const meta: Record<string, string> = { recipe: r.name, steps: String(steps), seed: String(seed), lr: String(lr), 'batch-size': String(batchSize) };
    if (evalEvery !== undefined) meta['eval-every'] = String(evalEvery);
    if (checkpointEvery !== undefined) meta['checkpoint-every'] = String(checkpointEvery);
    if (mix !== undefined) meta.mix = mix;
    if (headDropout) meta['head-dropout'] = String(headDropout);
    if (attentionTargets) meta['attention-target'] = v['attention-target']!;
    // on a terminal a progress bar, elsewhere (logs, CI) one JSON line per evaluation
    const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'train [{bar}] {value}/{total} loss {loss} eval {eval} {tps} tok/s', stream: process.stderr }, cliProgress.Presets.shades_classic) : undefined;
    const onProgress = bar && ((p: TrainProgress) => {
      const shown = { loss: p.loss.toFixed(3), eval: Number.isNaN(p.evalLoss) ? '-' : p.evalLoss.toFixed(3), tps: p.tokensPerSecond };
      if (!bar.isActive) bar.start(p.steps, p.step, shown);
      else bar.update(p.step, shown);
    });
    let res;
    try {
      res = await train(
        model,
        r.data(seed, { mix }),
        { ...r.train, steps, seed, batchSize, lr, headDropout, attentionTargets, evalEvery, checkpointEvery, outDir: out, maxSeconds, meta, onProgress, log: (l) => !bar && console.error(JSON.stringify(l)) },
        resumeDir,
      );
    } finally {
      bar?.stop();
    }
    console.log(JSON.stringify({ recipe: r.name, out, seed, ...res, history: undefined }));
    model.dispose();
  },
});

/**
 * `--attention-target L3H0`, `L3H0:0.5` (the weight; default 1), `L3H3:0.3@mcq` (the pairs; default ioi), or
 * several, comma-separated: `L3H0:0.3,L3H3:0.3@mcq`.
 */
function parseAttentionTargets(text: string, cfg: { n_layers: number; n_heads: number }): AttentionTarget[] {
  return text.split(',').map((one) => {
    const m = /^([^:@]+)(?::([^@]*))?(?:@(\w[\w-]*))?$/.exec(one.trim());
    if (!m) throw new HeadlensError(`--attention-target ${text}: cannot read '${one}'`, 'write LxHy[:WEIGHT][@PAIRS], comma-separated, e.g. --attention-target L3H0:0.3,L3H3:0.3@mcq');
    const weight = m[2] === undefined ? 1 : Number(m[2]);
    if (!(m[2] !== '' && Number.isFinite(weight) && weight > 0)) throw new HeadlensError(`--attention-target ${text}: weight '${m[2]}' is not a number above 0`, 'e.g. --attention-target L3H0:0.5');
    return { ...parseHeadLabel(m[1], cfg), weight, pairs: m[3] ?? 'ioi' };
  });
}
