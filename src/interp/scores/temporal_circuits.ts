/**
 * Temporal heads as Park et al. 2025 find them ("Temporal Heads: Where Language Models Recall Time-specific
 * Information"; code: dmis-lab/TemporalHead, notebooks 1–5 with their vendored EAP-IG code):
 *  1. one circuit per task: EAP-IG edge scores (src/interp/interventions/eap.ts) on the logit difference between
 *     the clean answer's first token and the corrupted answer's (their `logit_diff`), with 100 integrated-gradient
 *     steps (their `ig_steps=100`); a temporal task is one year's facts, corrupted by another year of the same
 *     subject with another answer; a time-invariant task is a fixed attribute ("The capital of France is"),
 *     corrupted by another subject with another answer (their data/Invariant: fruit colours, superclasses,
 *     shapes, roman numerals);
 *  2. the top-n edges, pruned (src/interp/circuit.ts; their `apply_topn(5000)` then `prune_dead_nodes`);
 *  3. node frequency across circuits (their 2.circuit_analysis): a node is major in a category when it is in at
 *     least ⌈0.9·n⌉ of the category's n circuits; temporal heads are heads major in some temporal category and
 *     in no time-invariant circuit at all;
 *  4. ablation (their 5.compute-logprobs): zero a head's output (their o_proj columns set to 0) and score each
 *     fact by the probability of the correct answer normalised over the candidate answers — a softmax over the
 *     candidates of each candidate's summed log-probability after the prompt — on temporal and invariant facts.
 *
 * Deviations, each named in the result's settings:
 *  - top-n: the reference keeps 5,000 of Llama-2-7B's ≈1.6M edges (≈0.3 %). The default here keeps the same
 *    fraction of the model's edges, at least 10, because 5,000 is more than a small model has.
 *  - Their published node lists come from graphs simplified after top-n by a signed threshold (tau = 0.1 on
 *    their loss-signed scores); here the node frequency reads the pruned top-n circuits, as the method names.
 *  - Categories: their temporal categories are years (one circuit per year and relation); here each task names
 *    its `group` (default: its kind).
 * The per-head patching score of temporal.ts stays as a fast first look (one activation-patching sweep per
 * prompt pair, no circuit).
 */
import { HeadlensError } from '../../errors.js';
import * as tf from '@tensorflow/tfjs';
import type { FwdHook, HookedTransformer } from '../../hooks/hooked_transformer.js';
import { Random } from '../../util/random.js';
import { readAsync, readSync, type Reads } from '../../util/reads.js';
import { nodeFrequency, topNCircuit, type Circuit } from '../circuit.js';
import { headAblationHooks, type HeadRef } from '../interventions/ablation.js';
import { edgeAttributionReads } from '../interventions/eap.js';
import { logitDiff } from '../metrics.js';
import { parseHeadLabel } from '../head_label.js';

/** One circuit's prompts: clean and corrupted of one length, with the clean and corrupted answers' first tokens. */
export interface TemporalCircuitTask {
  name: string;
  kind: 'temporal' | 'invariant';
  /** The category whose circuits are counted together (their years); default: the kind. */
  group?: string;
  clean: number[][];
  corrupted: number[][];
  answer: number[];
  wrong: number[];
}

export interface TemporalCircuitOptions {
  /** EAP-IG steps (default 100, as their notebook). */
  steps?: number;
  /** Edges kept per circuit (default: 0.3 % of the model's edges, at least 10; see the module comment). */
  topN?: number;
  /** Share of a category's circuits a node must be in to be major (default 0.9, as theirs). */
  threshold?: number;
}

export interface TemporalCircuits {
  circuits: { name: string; kind: 'temporal' | 'invariant'; group: string; circuit: Circuit }[];
  /** Per group, each node's share of that group's circuits. */
  frequency: Record<string, Record<string, number>>;
  /** Heads major in some temporal group and in no invariant circuit. */
  temporalHeads: string[];
  settings: Record<string, unknown>;
}

/** Default top-n: 0.3 % of the model's edges (the reference's 5,000 of Llama-2-7B's ≈1.6M), at least 10. */
export function defaultTopN(edgeCount: number): number {
  return Math.min(edgeCount, Math.max(10, Math.round(0.003 * edgeCount)));
}

/** Step 1–2 for one task: its EAP-IG edge scores on the logit difference, the top-n edges, pruned. */
export function taskCircuit(model: HookedTransformer, t: TemporalCircuitTask, opts: { steps?: number; topN?: number } = {}): { circuit: Circuit; edges: number } {
  return readSync(taskCircuitReads(model, t, opts));
}

function* taskCircuitReads(model: HookedTransformer, t: TemporalCircuitTask, opts: { steps?: number; topN?: number }): Reads<{ circuit: Circuit; edges: number }> {
  const n = t.clean.length;
  if (n === 0 || t.corrupted.length !== n || t.answer.length !== n || t.wrong.length !== n) throw new HeadlensError(`task '${t.name}': clean, corrupted, answer and wrong must have the same number (≥ 1) of rows`);
  if (t.answer.some((a, i) => a === t.wrong[i])) throw new HeadlensError(`task '${t.name}': a row's answer equals its corrupted answer`, 'the logit difference needs two different answers');
  const attr = yield* edgeAttributionReads(model, { clean: t.clean, corrupted: t.corrupted, metric: logitDiff(t.answer, t.wrong), method: 'eap-ig', steps: opts.steps ?? 100 });
  const edges = attr.edges.length;
  return { circuit: topNCircuit(attr, Math.min(opts.topN ?? defaultTopN(edges), edges)), edges };
}

/**
 * Step 3: node frequency per group and the temporal heads (major, ≥ ⌈threshold·n⌉ of a temporal group's n circuits,
 * and in no invariant circuit) of circuits already built (by temporalCircuits, or task by task with taskCircuit).
 */
export function temporalHeadsOf(circuits: TemporalCircuits['circuits'], threshold = 0.9): { frequency: TemporalCircuits['frequency']; temporalHeads: string[] } {
  if (!(threshold > 0 && threshold <= 1)) throw new HeadlensError(`threshold ${threshold} must be in (0, 1]`);
  if (!circuits.some((c) => c.kind === 'temporal')) throw new HeadlensError('temporalCircuits: no temporal task', 'pass tasks of kind temporal and invariant');
  if (!circuits.some((c) => c.kind === 'invariant')) throw new HeadlensError('temporalCircuits: no time-invariant task', 'temporal heads are defined against invariant circuits; pass some');
  const groups = [...new Set(circuits.map((c) => c.group))];
  const frequency: TemporalCircuits['frequency'] = {};
  for (const g of groups) frequency[g] = Object.fromEntries(nodeFrequency(circuits.filter((c) => c.group === g).map((c) => c.circuit)));
  const head = /^L(\d+)H(\d+)$/;
  const inInvariant = new Set(circuits.filter((c) => c.kind === 'invariant').flatMap((c) => c.circuit.nodes));
  const major = new Set<string>();
  for (const g of new Set(circuits.filter((c) => c.kind === 'temporal').map((c) => c.group))) {
    const n = circuits.filter((c) => c.group === g).length;
    const need = Math.ceil(threshold * n - 1e-9); // their int(threshold·n + 0.9999999)
    for (const [node, f] of Object.entries(frequency[g])) if (head.test(node) && Math.round(f * n) >= need) major.add(node);
  }
  const order = (label: string) => {
    const m = head.exec(label)!;
    return Number(m[1]) * 1e4 + Number(m[2]);
  };
  return { frequency, temporalHeads: [...major].filter((h) => !inInvariant.has(h)).sort((a, b) => order(a) - order(b)) };
}

/** Steps 1–3 of the module comment: one EAP-IG top-n circuit per task, node frequency, temporal heads. */
export function temporalCircuits(model: HookedTransformer, tasks: TemporalCircuitTask[], opts: TemporalCircuitOptions = {}): TemporalCircuits {
  return readSync(temporalCircuitsReads(model, tasks, opts));
}

/** temporalCircuits, read asynchronously: the form that runs on WebGPU in Node (util/reads.ts). */
export function temporalCircuitsAsync(model: HookedTransformer, tasks: TemporalCircuitTask[], opts: TemporalCircuitOptions = {}): Promise<TemporalCircuits> {
  return readAsync(temporalCircuitsReads(model, tasks, opts));
}

function* temporalCircuitsReads(model: HookedTransformer, tasks: TemporalCircuitTask[], opts: TemporalCircuitOptions): Reads<TemporalCircuits> {
  const steps = opts.steps ?? 100;
  const threshold = opts.threshold ?? 0.9;
  if (!(threshold > 0 && threshold <= 1)) throw new HeadlensError(`threshold ${threshold} must be in (0, 1]`);
  if (!tasks.some((t) => t.kind === 'temporal')) throw new HeadlensError('temporalCircuits: no temporal task', 'pass tasks of kind temporal and invariant');
  if (!tasks.some((t) => t.kind === 'invariant')) throw new HeadlensError('temporalCircuits: no time-invariant task', 'temporal heads are defined against invariant circuits; pass some');
  const circuits: TemporalCircuits['circuits'] = [];
  let edgeCount = 0;
  for (const t of tasks) {
    const { circuit, edges } = yield* taskCircuitReads(model, t, { steps, topN: opts.topN });
    edgeCount = edges;
    circuits.push({ name: t.name, kind: t.kind, group: t.group ?? t.kind, circuit });
  }
  const topN = opts.topN ?? defaultTopN(edgeCount);
  const groups = [...new Set(circuits.map((c) => c.group))];
  return {
    circuits,
    ...temporalHeadsOf(circuits, threshold),
    settings: { method: 'EAP-IG top-n circuits (Park et al. 2025)', metric: 'logit difference, clean − corrupted answer', steps, topN, edges: edgeCount, threshold, tasks: tasks.length, groups },
  };
}

/** A fact scored over its candidate answers: token ids of the prompt, of each candidate, and the correct one's index. */
export interface CandidateItem {
  prompt: number[];
  candidates: number[][];
  correct: number;
}

/**
 * Their normalised answer probability: softmax over the candidates of log p(candidate tokens | prompt), at the
 * correct candidate; the mean over `items`. `hooks` apply to every run (an ablation).
 */
export function candidateProbability(model: HookedTransformer, items: CandidateItem[], hooks: FwdHook[] = []): number {
  return readSync(candidateProbabilityReads(model, items, hooks));
}

/** candidateProbability, read asynchronously (WebGPU in Node). */
export function candidateProbabilityAsync(model: HookedTransformer, items: CandidateItem[], hooks: FwdHook[] = []): Promise<number> {
  return readAsync(candidateProbabilityReads(model, items, hooks));
}

function* candidateProbabilityReads(model: HookedTransformer, items: CandidateItem[], hooks: FwdHook[]): Reads<number> {
  if (items.length === 0) throw new HeadlensError('candidateProbability: no items');
  let sum = 0;
  for (const [i, it] of items.entries()) {
    if (it.candidates.length < 2 || !(it.correct >= 0 && it.correct < it.candidates.length)) throw new HeadlensError(`item ${i}: needs ≥ 2 candidates and a correct index among them`);
    const lp: number[] = [];
    for (const c of it.candidates) {
      if (c.length === 0) throw new HeadlensError(`item ${i}: an empty candidate`);
      const seq = [...it.prompt, ...c];
      const logits = model.runWithHooks([seq], { fwdHooks: hooks });
      let total: tf.Tensor;
      try {
        total = tf.tidy(() => {
          const logp = tf.logSoftmax(logits.slice([0, it.prompt.length - 1, 0], [1, c.length, -1]).reshape([c.length, -1])); // [candidate tokens, d_vocab]
          return logp.mul(tf.oneHot(tf.tensor1d(c, 'int32'), logp.shape[1]!)).sum();
        });
      } finally {
        logits.dispose();
      }
      lp.push((yield total)[0]);
    }
    const m = Math.max(...lp);
    const z = lp.reduce((s, v) => s + Math.exp(v - m), 0);
    sum += Math.exp(lp[it.correct] - m) / z;
  }
  return sum / items.length;
}

export interface TemporalAblation {
  heads: string[];
  /** Mean normalised answer probability on temporal / invariant facts. */
  baseline: { temporal: number; invariant: number };
  ablated: { temporal: number; invariant: number };
  /** The same number of other heads, drawn at random (seeded), ablated instead. */
  random: { heads: string[]; temporal: number; invariant: number }[];
  settings: Record<string, unknown>;
}

/** Step 4: zero-ablate `heads` and score temporal and invariant facts; random heads of the same count as control. */
export function temporalHeadAblation(
  model: HookedTransformer,
  heads: string[],
  items: { temporal: CandidateItem[]; invariant: CandidateItem[] },
  opts: { draws?: number; seed?: number } = {},
): TemporalAblation {
  return readSync(temporalHeadAblationReads(model, heads, items, opts));
}

/** temporalHeadAblation, read asynchronously (WebGPU in Node). */
export function temporalHeadAblationAsync(
  model: HookedTransformer,
  heads: string[],
  items: { temporal: CandidateItem[]; invariant: CandidateItem[] },
  opts: { draws?: number; seed?: number } = {},
): Promise<TemporalAblation> {
  return readAsync(temporalHeadAblationReads(model, heads, items, opts));
}

function* temporalHeadAblationReads(
  model: HookedTransformer,
  heads: string[],
  items: { temporal: CandidateItem[]; invariant: CandidateItem[] },
  opts: { draws?: number; seed?: number },
): Reads<TemporalAblation> {
  if (heads.length === 0) throw new HeadlensError('temporalHeadAblation: no heads to ablate', 'temporalCircuits found none; there is nothing to test');
  const refs = heads.map((h) => parseHeadLabel(h, model.cfg));
  const score = function* (hs: HeadRef[]): Reads<{ temporal: number; invariant: number }> {
    const hooks = hs.length ? headAblationHooks(model, hs, { kind: 'zero' }) : [];
    return { temporal: yield* candidateProbabilityReads(model, items.temporal, hooks), invariant: yield* candidateProbabilityReads(model, items.invariant, hooks) };
  };
  const { n_layers, n_heads } = model.cfg;
  const others = Array.from({ length: n_layers * n_heads }, (_, i) => `L${Math.floor(i / n_heads)}H${i % n_heads}`).filter((h) => !heads.includes(h));
  const rng = new Random(opts.seed ?? 0);
  const random: TemporalAblation['random'] = [];
  for (let d = 0; d < Math.min(opts.draws ?? 3, others.length >= heads.length ? Infinity : 0); d++) {
    const hs = rng.shuffle(others).slice(0, heads.length);
    random.push({ heads: hs, ...(yield* score(hs.map((h) => parseHeadLabel(h, model.cfg)))) });
  }
  const baseline = yield* score([]);
  const ablated = yield* score(refs);
  return { heads, baseline, ablated, random, settings: { ablation: 'zero (head output)', score: 'answer probability normalised over the candidates (softmax of summed log-probabilities)', draws: random.length, seed: opts.seed ?? 0 } };
}
