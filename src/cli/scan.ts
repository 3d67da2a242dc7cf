/**
 * `headlens scan`: score every head of a model on a task, print or write
 * {"model","task","settings","scores","top","causal"?}. Long scans checkpoint each finished item to
 * FILE.partial.json (or --checkpoint FILE); --resume continues one after a crash, recomputing nothing.
 */
import * as tf from '@tensorflow/tfjs';
import cliProgress from 'cli-progress';
import { writeFileSync } from 'node:fs';
import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import { loadPretrained } from '../loading/load.js';
import { scan } from '../interp/scores/scan.js';
import { maskHeadsCheck } from '../interp/scores/mask_heads.js';
import { SCAN_TASKS, ioiTask, scanTask, type ScanTask } from '../interp/scores/tasks.js';
import { ioiHeadClasses } from '../interp/scores/ioi_classes.js';
import { topHeads } from '../interp/scores/head_scores.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { writeAtlas } from '../viz/atlas.js';
import { modelInfo } from './info.js';
import { positiveInt, required, type Command } from './main.js';

export const scanCommand: Command = {
  options: {
    model: { type: 'string' },
    task: { type: 'string' },
    samples: { type: 'string' },
    seed: { type: 'string' },
    causal: { type: 'boolean' },
    k: { type: 'string' },
    draws: { type: 'string' },
    resume: { type: 'boolean' },
    checkpoint: { type: 'string' },
    json: { type: 'boolean' },
    out: { type: 'string' },
    report: { type: 'string' },
  },
  async run(v) {
    const modelArg = required(v, 'model', 'datasets/zoo/tiny-gpt2-random');
    const task = required(v, 'task', 'induction') as ScanTask;
    if (!SCAN_TASKS.includes(task)) throw new HeadlensError(`unknown task '${task}'`, `use one of ${SCAN_TASKS.join(', ')}`);
    const out = v.out as string | undefined;
    const reportFile = v.report as string | undefined;
    if (!v.json && !out && !reportFile) throw new HeadlensError('say where the result goes: --json (stdout), --out FILE or --report FILE.html', 'e.g. --json');
    const samples = positiveInt(v.samples, 'samples', 8) ?? 8;
    const seed = v.seed === undefined ? 0 : Number(v.seed);
    if (!Number.isInteger(seed)) throw new HeadlensError(`--seed ${String(v.seed)} is not an integer`);
    const checkpoint = (v.checkpoint as string | undefined) ?? (out ? `${out}.partial.json` : undefined);
    if (v.resume && !checkpoint) throw new HeadlensError('--resume needs the checkpoint: --out FILE (it uses FILE.partial.json) or --checkpoint FILE');
    const model = await loadPretrained(modelArg, { backend: v.backend as BackendName });
    const emit = (report: Record<string, unknown>) => {
      const text = JSON.stringify(report);
      if (out) {
        writeFileSync(out, text + '\n');
        console.error(`wrote ${task} scores of ${model.cfg.n_layers}×${model.cfg.n_heads} heads to ${out}`);
      }
      if (v.json) console.log(text);
    };
    try {
      if (task === 'ioi') {
        // one batch of prompts through path patching: nothing to checkpoint item by item
        if (v.causal || v.resume) throw new HeadlensError('--causal and --resume do not apply to --task ioi', 'drop them');
        const { prompts, droppedNames } = ioiTask(model, { samples, seed });
        const r = ioiHeadClasses(model, prompts);
        const scores = r.nameMoverStrength; // the share of the logit difference each head's direct path carries
        emit({ model: model.cfg.model_name, task, settings: { ...r.settings, samples, seed, droppedNames }, scores, top: topHeads(scores), classes: r.classes, tables: r.tables, attention: r.attention, clean: r.clean, corrupted: r.corrupted });
        if (reportFile) writeReport(model, reportFile, task, scores, r.tables, prompts[0]?.clean);
        return;
      }
      const setup = scanTask(model, task, { samples, seed });
      if (v.causal && !setup.causal) throw new HeadlensError(`task ${task} has no causal check`, 'drop --causal');
      const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ stream: process.stderr, format: `${task} [{bar}] {value}/{total} items`, hideCursor: true }) : undefined;
      bar?.start(setup.scorer.items.length, 0);
      let result;
      try {
        result = scan(model, setup.scorer, { checkpoint, resume: !!v.resume, onProgress: (done) => bar?.update(done) });
      } finally {
        bar?.stop();
      }
      let causal;
      if (v.causal && setup.causal) {
        const k = Math.min((positiveInt(v.k, 'k', 3) ?? 3), model.cfg.n_layers * model.cfg.n_heads - 1);
        const heads = result.top.slice(0, k).map(({ layer, head }) => ({ layer, head }));
        causal = maskHeadsCheck(model, heads, setup.causal.metric, setup.causal.names, { draws: (positiveInt(v.draws, 'draws', 5) ?? 5), seed, ablation: setup.causal.ablation });
      }
      const report = { model: model.cfg.model_name, task, settings: { ...result.settings, samples, seed }, scores: result.scores, top: result.top, ...(result.tables ? { tables: result.tables } : {}), counted: result.counted, ...(causal ? { causal } : {}) };
      emit(report);
      if (reportFile) writeReport(model, reportFile, task, result.scores, result.tables, firstTokens(setup.scorer.items[0]));
    } finally {
      model.dispose();
    }
  },
};

/** The token ids of a scorer's item, when it has them (a token list, or an object with `tokens`). */
function firstTokens(item: unknown): number[] | undefined {
  if (Array.isArray(item) && item.every((x) => typeof x === 'number')) return item as number[];
  const t = (item as { tokens?: unknown } | undefined)?.tokens;
  return Array.isArray(t) && t.every((x) => typeof x === 'number') ? (t as number[]) : undefined;
}

/** `--report FILE.html`: the head atlas of this scan (model card, one head grid per table, attention on the first item). */
function writeReport(model: HookedTransformer, file: string, task: string, scores: number[][], tables: Record<string, number[][]> | undefined, tokens: number[] | undefined): void {
  const { n_layers, n_heads } = model.cfg;
  const isGrid = (t: unknown): t is number[][] => Array.isArray(t) && t.length === n_layers && t.every((r) => Array.isArray(r) && r.length === n_heads);
  const extra = Object.entries(tables ?? {}).filter(([name, t]) => isGrid(t) && t !== scores && name !== 'score');
  const shown = tokens?.slice(0, Math.min(tokens.length, 48));
  let patterns: number[][][][] | undefined;
  if (shown) {
    const { logits, cache } = model.runWithCache([shown], { names: (n) => n.endsWith('attn.hook_pattern') });
    patterns = Array.from({ length: n_layers }, (_, l) => tf.tidy(() => cache.act('pattern', l).squeeze([0]).arraySync() as number[][][]));
    cache.dispose();
    logits.dispose();
  }
  writeAtlas(file, {
    model: { name: model.cfg.model_name, ...modelInfo(model) },
    note: `headlens scan --task ${task}${shown ? `; attention on the scan's first item${tokens!.length > shown.length ? ` (its first ${shown.length} tokens)` : ''}` : ''}.`,
    scorers: [{ name: task, scores, diverging: scores.flat().some((x) => x < 0) }, ...extra.map(([name, t]) => ({ name: `${task}: ${name}`, scores: t, diverging: t.flat().some((x) => x < 0) }))],
    ...(shown && patterns ? { tokens: model.tokenLabels(shown), patterns } : {}),
  });
  console.error(`wrote the head atlas of this scan to ${file}`);
}
