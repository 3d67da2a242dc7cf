/**
 * `headlens scan`: score every head of a model on a task, print or write
 * {"model","task","settings","scores","top","causal"?}. Long scans checkpoint each finished item to
 * FILE.partial.json (or --checkpoint FILE); --resume continues one after a crash, recomputing nothing. A scan
 * that finishes removes FILE.partial.json once the result is written; a checkpoint named with --checkpoint is kept.
 * The item scans run in --workers N local processes (default: the cores available) or as jobs on a BullMQ
 * queue (--queue redis://HOST:PORT, run by `headlens worker`); see sweep.ts.
 * Everything here reads from the backend asynchronously (the `…Async` forms, util/reads.ts), so a scan runs on
 * WebGPU in Node, where tfjs cannot read synchronously.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { SCAN_TASKS, ioiTask, scanTask, taskCausalCheckAsync } from '../interp/scores/tasks.js';
import { ioiHeadClassesAsync } from '../interp/scores/ioi_classes.js';
import { topHeads } from '../interp/scores/head_scores.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { writeAtlas, type AtlasData } from '../viz/atlas.js';
import { distancesOnItems, lookAtSection } from './look_at.js';
import { modelInfo } from './model_info.js';
import { defineCommand, integer, modelOption, option, positiveInt } from './options.js';
import { progressBar } from './progress.js';
import { checkQueueReachable } from './scan_queue.js';
import { queueProgress, runSweep } from './sweep.js';
import { CAPS, memoryBudget, activationBytes, checkAtMost, fitting, formatBytes } from './size_bounds.js';
import { withModel } from './with_model.js';
import { sentenceLines } from '../datasets/sentences.js';

/** The tasks that read text items (--text FILE). */
const TEXT_TASKS = ['special-tokens', 'bert-special-tokens', 'attention-entropy'] as const;
import { readAsync, readNested } from '../util/reads.js';

export const scanCommand = defineCommand({
  summary: 'score every head of a model on a task; print or write the scores, optionally check the top heads causally',
  options: {
    model: modelOption(),
    task: option(z.enum(SCAN_TASKS, { error: (iss) => (iss.input === undefined ? '--task is required' : `unknown task '${String(iss.input)}'`) }), { description: 'what to score the heads on' }),
    samples: option(positiveInt({ max: CAPS.samples, why: 'the most headlens scan takes (each item keeps its tokens and tables for the checkpoint)' }).default(8), { description: `how many task items (at most ${CAPS.samples}, and what fits in memory for the model)`, value: 'N', example: '8' }),
    seed: option(integer().default(0), { description: 'the seed of the task items and the causal check', value: 'S', example: '0' }),
    causal: option(z.boolean().optional(), { description: 'mask the top heads and measure what the task loses, against random heads' }),
    k: option(positiveInt().default(3), { description: "with --causal: how many top heads to mask (fewer than the model's heads)", value: 'K', example: '3' }),
    draws: option(positiveInt({ max: CAPS.draws, why: 'the most random head sets a causal check draws (each runs the whole task)' }).default(5), { description: `with --causal: how many random sets of heads to compare with (at most ${CAPS.draws})`, value: 'D', example: '5' }),
    resume: option(z.boolean().optional(), { description: 'continue a scan from its checkpoint' }),
    checkpoint: option(z.string().optional(), { description: 'where finished items are kept (kept after the scan; the default one is removed once the result is written)', value: 'FILE', default: 'FILE.partial.json for --out FILE' }),
    json: option(z.boolean().optional(), { description: 'print the result as JSON on stdout' }),
    out: option(z.string().optional(), { description: 'write the result as JSON', value: 'FILE.json' }),
    report: option(z.string().optional(), { description: 'write the head atlas of the scan', value: 'FILE.html' }),
    'ioi-lists': option(z.enum(['auto', 'wang2022', 'headlens']).default('auto'), { description: "with --task ioi: Wang et al.'s templates and names, headlens' own (toy-lm's), or auto (the paper's where the tokenizer spells them)", value: 'L', example: 'auto' }),
    corruption: option(z.enum(['abc', 's2']).default('abc'), { description: 'with --task ioi: abc (IO, S1 and S2 replaced by other names, as Wang et al.) or s2 (S2 alone)', value: 'C', example: 'abc' }),
    positions: option(z.enum(['paper', 'all']).default('paper'), { description: 'with --task ioi: patch senders and receivers at END / S2 / S1+1 as Wang et al. (paper), or at every position (all)', value: 'P', example: 'paper' }),
    workers: option(positiveInt({ max: 1024, why: 'the most local worker processes' }).optional(), { description: 'run the scan in N local processes, each holding the model once (1: in this process)', value: 'N', example: '2', default: 'the cores available' }),
    'job-size': option(positiveInt().optional(), { description: 'items per job with --workers or --queue', value: 'K', example: '4', default: '1 locally, about 1/64 of the items on a queue' }),
    queue: option(z.string().optional(), { description: 'put the jobs on this BullMQ queue (Redis) for `headlens worker`s, and collect the results', value: 'redis://HOST:PORT', example: 'redis://127.0.0.1:6379' }),
    'queue-name': option(z.string().optional(), { description: 'the BullMQ queue name', value: 'NAME', default: 'headlens-scan' }),
    distances: option(z.boolean().optional(), { description: `with --task ${TEXT_TASKS.join(' | ')}: add the heads' mean Jensen–Shannon distances on the items and their classical-MDS embedding (Clark et al. 2019, §6) to the result` }),
    text: option(z.string().optional(), { description: `with --task ${TEXT_TASKS.join(' | ')}: a text file, one item per line (runs in this process)`, value: 'FILE', default: 'datasets/sentences/sentences.txt' }),
  },
  async run(v) {
    const { task, out, report: reportFile, samples, seed } = v;
    if (!v.json && !out && !reportFile) throw new HeadlensError('say where the result goes: --json (stdout), --out FILE or --report FILE.html', 'e.g. --json');
    const checkpoint = v.checkpoint ?? (out ? `${out}.partial.json` : undefined);
    if (v.resume && !checkpoint) throw new HeadlensError('--resume needs the checkpoint: --out FILE (it uses FILE.partial.json) or --checkpoint FILE');
    // an unreachable queue is one error before the model loads
    if (v.text !== undefined) {
      if (!(TEXT_TASKS as readonly string[]).includes(task)) throw new HeadlensError(`--text applies to --task ${TEXT_TASKS.join(', ')}, not ${task}`, 'drop --text');
      // the other processes rebuild the items from task, samples and seed alone, without the file
      if (v.queue || (v.workers ?? 1) > 1) throw new HeadlensError('--text runs the scan in this process: --workers and --queue do not apply', 'drop them (or --workers 1)');
    }
    if (v.distances && !(TEXT_TASKS as readonly string[]).includes(task)) throw new HeadlensError(`--distances applies to --task ${TEXT_TASKS.join(', ')}, not ${task}`, 'drop --distances');
    const lines = v.text !== undefined ? sentenceLines(v.text) : undefined;
    if (v.queue && task !== 'ioi') await checkQueueReachable(v.queue);
    await withModel(v, async (model) => {
      checkScanSizes(model, task, samples, v.causal ? v.k : undefined);
      const emit = (report: Record<string, unknown>) => {
        const text = JSON.stringify(report);
        if (out) {
          writeFileSync(out, text + '\n');
          console.error(`wrote ${task} scores of ${model.cfg.n_layers}×${model.cfg.n_heads} heads to ${out}`);
        }
        if (v.json) console.log(text);
      };
      if (task === 'ioi') {
        // one batch of prompts through path patching: nothing to checkpoint item by item
        if (v.causal || v.resume) throw new HeadlensError('--causal and --resume do not apply to --task ioi', 'drop them');
        if (v.queue || (v.workers ?? 1) > 1) throw new HeadlensError('--task ioi runs its prompts as one batch of path patching, not as jobs: --workers and --queue do not apply', 'drop them (or --workers 1)');
        const { prompts, droppedNames, warnings, settings: taskSettings } = ioiTask(model, { samples, seed, lists: v['ioi-lists'], corruption: v.corruption });
        for (const w of warnings) console.error(`warning: ${w}`);
        // path patching reports each sweep's progress: a long run is never silent, on a terminal or in a log
        const bars = new Map<string, (done: number, total: number) => void>();
        const onProgress = (done: number, total: number, step: string) => {
          if (!bars.has(step)) bars.set(step, progressBar(`ioi ${step}`, 'sender sets'));
          bars.get(step)!(done, total);
        };
        const r = await ioiHeadClassesAsync(model, prompts, { onProgress, positions: v.positions });
        const scores = r.nameMoverStrength; // the share of the logit difference each head's direct path carries
        emit({ model: model.cfg.model_name, task, settings: { ...r.settings, ...taskSettings, samples, seed, droppedNames, warnings }, scores, top: topHeads(scores), classes: r.classes, tables: r.tables, attention: r.attention, clean: r.clean, corrupted: r.corrupted });
        if (reportFile) await writeReport(model, reportFile, task, scores, r.tables, prompts[0]?.clean);
        return;
      }
      const setup = scanTask(model, task, { samples, seed, ...(lines ? { lines } : {}) });
      if (v.causal && !setup.causal) throw new HeadlensError(`task ${task} has no causal check`, 'drop --causal');
      const result = await runSweep(model, setup.scorer, { model: v.model, task, samples, seed }, {
        checkpoint, resume: !!v.resume, workers: lines ? 1 : v.workers, jobSize: v['job-size'], queue: v.queue, queueName: v['queue-name'], backend: v.backend,
        // on a queue, progress is what the queue says of the sweep's jobs
        ...(v.queue ? { onQueue: queueProgress(task) } : { onProgress: progressBar(task, 'items') }),
      });
      let causal;
      if (v.causal && setup.causal) {
        const heads = result.top.slice(0, v.k).map(({ layer, head }) => ({ layer, head }));
        causal = await taskCausalCheckAsync(model, setup.causal, heads, result.scores, { draws: v.draws, seed });
      }
      for (const w of result.warnings ?? []) console.error(`headlens: warning: ${w}`);
      const items = setup.scorer.items as number[][];
      const isText = (TEXT_TASKS as readonly string[]).includes(task);
      const dist = isText && (v.distances || reportFile) ? distancesOnItems(model, items) : undefined;
      const distances = v.distances && dist ? { headDistances: { ...dist.distances, embedding: dist.embedding } } : {};
      const report = { model: model.cfg.model_name, task, settings: { ...result.settings, samples, seed, ...((TEXT_TASKS as readonly string[]).includes(task) ? { text: v.text ?? 'datasets/sentences/sentences.txt (shipped)' } : {}) }, scores: result.scores, top: result.top, ...(result.tables ? { tables: result.tables } : {}), counted: result.counted, ...(result.dropped ? { dropped: result.dropped } : {}), ...(causal ? { causal } : {}), ...distances };
      emit(report);
      // the Clark et al. scans add their Figure 2 and Figure 6 pictures
      const lookAt = reportFile && isText ? lookAtSection(model, task, result.scores, result.tables, setup.scorer.primary, items, dist) : undefined;
      if (reportFile) await writeReport(model, reportFile, task, result.scores, result.tables, firstTokens(setup.scorer.items[0]), lookAt);
      // the implicit FILE.partial.json is for resuming an unfinished scan; once the result is out it would only make the
      // next run ask for --resume. A checkpoint named with --checkpoint is the user's record of the sweep: kept.
      if (checkpoint && !v.checkpoint && existsSync(checkpoint)) rmSync(checkpoint);
    });
  },
});

/**
 * Refuses sizes that cannot fit before anything is built: IOI runs all its prompts as one batch (clean and
 * corrupted, every activation cached), the item scans keep every item and its tables; --k must leave heads to
 * draw the random sets from.
 */
function checkScanSizes(model: HookedTransformer, task: string, samples: number, k: number | undefined): void {
  const { cfg } = model;
  const heads = cfg.n_layers * cfg.n_heads;
  if (task === 'ioi') {
    const pos = Math.min(cfg.n_ctx, IOI_MAX_TOKENS);
    const each = 2 * activationBytes(cfg, pos);
    checkAtMost('samples', samples, fitting(each), `in ${formatBytes(memoryBudget())} for --task ioi on ${cfg.model_name}: every prompt runs in one batch, clean and corrupted, each ${formatBytes(each / 2)} of activations at ${pos} tokens`);
  } else {
    const each = 16 * (cfg.n_ctx + 3 * heads); // its tokens and up to three [n_layers][n_heads] tables, as JS arrays
    checkAtMost('samples', samples, fitting(each), `in ${formatBytes(memoryBudget())} for a scan of ${cfg.model_name}: each item keeps up to ${cfg.n_ctx} tokens and its tables of ${heads} heads`);
  }
  checkAtMost('k', k, heads - 1, `among ${cfg.model_name}'s ${heads} heads (the random sets are drawn from the others)`, false);
}

/** IOI prompts are one template sentence: at most this many tokens with any tokenizer headlens loads (BOS included). */
const IOI_MAX_TOKENS = 32;

/** The token ids of a scorer's item, when it has them (a token list, or an object with `tokens`). */
function firstTokens(item: unknown): number[] | undefined {
  if (Array.isArray(item) && item.every((x) => typeof x === 'number')) return item as number[];
  const t = (item as { tokens?: unknown } | undefined)?.tokens;
  return Array.isArray(t) && t.every((x) => typeof x === 'number') ? (t as number[]) : undefined;
}

/** `--report FILE.html`: the head atlas of this scan (model card, one head grid per table, attention on the first item). */
async function writeReport(model: HookedTransformer, file: string, task: string, scores: number[][], tables: Record<string, number[][]> | undefined, tokens: number[] | undefined, lookAt?: AtlasData['lookAt']): Promise<void> {
  const { n_layers, n_heads } = model.cfg;
  const isGrid = (t: unknown): t is number[][] => Array.isArray(t) && t.length === n_layers && t.every((r) => Array.isArray(r) && r.length === n_heads);
  const extra = Object.entries(tables ?? {}).filter(([name, t]) => isGrid(t) && t !== scores && name !== 'score');
  const shown = tokens?.slice(0, Math.min(tokens.length, 48));
  let patterns: number[][][][] | undefined;
  if (shown) {
    const { logits, cache } = model.runWithCache([shown], { names: (n) => n.endsWith('attn.hook_pattern') });
    logits.dispose();
    try {
      patterns = [];
      for (let l = 0; l < n_layers; l++) patterns.push(await readAsync(readNested<number[][][]>(cache.act('pattern', l).squeeze([0])))); // [head][query_pos][key_pos]
    } finally {
      cache.dispose();
    }
  }
  writeAtlas(file, {
    model: { name: model.cfg.model_name, ...modelInfo(model) },
    note: `headlens scan --task ${task}${shown ? `; attention on the scan's first item${tokens!.length > shown.length ? ` (its first ${shown.length} tokens)` : ''}` : ''}.`,
    scorers: [{ name: tableTitle(task, 'score'), scores, diverging: scores.flat().some((x) => x < 0) }, ...extra.map(([name, t]) => ({ name: tableTitle(task, name), scores: t, diverging: t.flat().some((x) => x < 0) }))],
    ...(shown && patterns ? { tokens: model.tokenLabels(shown), patterns } : {}),
    ...(lookAt ? { lookAt } : {}),
  });
  console.error(`wrote the head atlas of this scan to ${file}`);
}

/** What each scan's tables measure, in words for the report's grid titles (never the field names: "ioi: sInhibition"). */
const TABLE_TITLES: Record<string, string> = {
  'ioi:score': 'IOI: name-mover strength (share of the IO − S logit difference on the direct path)',
  'ioi:logits': 'IOI: path to the logits, patching effect (name movers negative)',
  'ioi:sInhibition': "IOI: path through the name movers' queries (S-inhibition heads)",
  'ioi:values': "IOI: path through the S-inhibition heads' values (induction, duplicate-token heads)",
  'ioi:keys': "IOI: path through the induction heads' keys (previous-token heads)",
  'temporal:score': 'temporal: selectivity (year-patching effect minus controls, nats)',
  'temporal:temporal': 'temporal: year-patching effect on time-dependent facts (nats)',
  'temporal:control': 'temporal: patching effect on time-invariant controls (nats)',
  'temporal:selectivity': 'temporal: selectivity (year-patching effect minus controls, nats)',
  'temporal:alias': 'temporal: patching effect with spelled-out years (nats)',
  'correct-letter:score': 'correct letter: DLA to the correct label minus the other labels',
  'correct-letter:contrast': 'correct letter: DLA to the correct label minus the other labels',
  'correct-letter:raw': 'correct letter: raw DLA to the correct label',
  'correct-letter:attention': 'correct letter: attention to the correct label',
  'streaming:retrievalness': 'streaming: 1 − sink and recent-window attention mass',
};

/** A grid title: from TABLE_TITLES, else the task and the table's name in plain words ("sInhibition" → "s inhibition"). */
export function tableTitle(task: string, table: string): string {
  const known = TABLE_TITLES[`${task}:${table}`];
  if (known) return known;
  if (table === 'score') return task;
  return `${task}: ${table.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase()}`;
}
