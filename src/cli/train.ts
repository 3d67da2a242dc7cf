import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
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
import { positiveInt, required, type Command } from './main.js';

/** The flags a run keeps with its checkpoints, which `--resume` reuses unless given again. */
const KEPT = ['recipe', 'steps', 'seed', 'lr', 'batch-size', 'mix', 'eval-every', 'checkpoint-every', 'head-dropout', 'attention-target'] as const;

export const trainCommand: Command = {
  options: {
    recipe: { type: 'string' },
    out: { type: 'string' },
    steps: { type: 'string' },
    seed: { type: 'string' },
    resume: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    init: { type: 'string' },
    'max-seconds': { type: 'string' },
    'init-std': { type: 'string' },
    'eval-every': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    mix: { type: 'string' },
    'head-dropout': { type: 'string' },
    'attention-target': { type: 'string' },
  },
  async run(given) {
    const resumeDir = given.resume as string | undefined;
    // --resume continues with the flags the run was started with (kept in its trainer_state.json); a flag given
    // again wins, with a note when it differs
    const saved = resumeDir && existsSync(resumeDir) ? readTrainerMeta(resumeDir) : {};
    const v: typeof given = { ...given };
    for (const k of KEPT) {
      if (saved[k] === undefined) continue;
      if (given[k] === undefined) v[k] = saved[k];
      else if (k === 'recipe' || k === 'mix' || k === 'attention-target' ? given[k] !== saved[k] : Number(given[k]) !== Number(saved[k])) console.error(`headlens train: --${k} ${String(given[k])} (the run being resumed had ${saved[k]})`);
    }
    const r = recipe(required(v, 'recipe', Object.keys(RECIPES)[0]));
    const out = (v.out as string | undefined) ?? resumeDir;
    if (!out) throw new HeadlensError('--out is required', `e.g. --out models/${r.name}`);
    const steps = positiveInt(v.steps, 'steps', 100) ?? r.train.steps;
    const seed = v.seed !== undefined ? Number(v.seed) : r.train.seed;
    const maxSeconds = positiveInt(v['max-seconds'], 'max-seconds', 100);
    const lr = v.lr !== undefined ? Number(v.lr) : r.train.lr;
    if (!(Number.isFinite(lr) && lr > 0)) throw new HeadlensError(`--lr ${String(v.lr)} is not a positive number`, 'e.g. --lr 1e-3');
    const initStd = v['init-std'] !== undefined ? Number(v['init-std']) : (r.initStd ?? 0.02);
    if (!(Number.isFinite(initStd) && initStd > 0)) throw new HeadlensError(`--init-std ${String(v['init-std'])} is not a positive number`, 'e.g. --init-std 0.02');
    const headDropout = v['head-dropout'] !== undefined ? Number(v['head-dropout']) : 0;
    if (!(headDropout >= 0 && headDropout < 1)) throw new HeadlensError(`--head-dropout ${String(v['head-dropout'])} is not a number in [0, 1)`, 'e.g. --head-dropout 0.2 (the probability that a head is dropped)');
    const batchSize = positiveInt(v['batch-size'], 'batch-size', 8) ?? r.train.batchSize;
    const evalEvery = positiveInt(v['eval-every'], 'eval-every', 100) ?? r.train.evalEvery;
    const checkpointEvery = positiveInt(v['checkpoint-every'], 'checkpoint-every', 500) ?? r.train.checkpointEvery;
    await initBackend({ backend: v.backend as BackendName });
    let model: HookedTransformer;
    if (resumeDir) {
      if (!existsSync(resumeDir)) throw new HeadlensError(`--resume ${resumeDir} does not exist`, 'pass the folder an earlier `headlens train` wrote');
      model = await loadPretrained(resumeDir);
    } else if (v.init !== undefined) {
      // a new run (fresh optimizer, schedule and data order) from an earlier run's weights: a curriculum's next stage
      const init = v.init as string;
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
    const attentionTargets = v['attention-target'] !== undefined ? parseAttentionTargets(String(v['attention-target']), model.cfg) : undefined;
    const mix = v.mix as string | undefined;
    const meta: Record<string, string> = { recipe: r.name, steps: String(steps), seed: String(seed), lr: String(lr), 'batch-size': String(batchSize) };
    if (evalEvery !== undefined) meta['eval-every'] = String(evalEvery);
    if (checkpointEvery !== undefined) meta['checkpoint-every'] = String(checkpointEvery);
    if (mix !== undefined) meta.mix = mix;
    if (headDropout) meta['head-dropout'] = String(headDropout);
    if (attentionTargets) meta['attention-target'] = String(v['attention-target']);
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
};

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
