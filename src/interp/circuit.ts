/**
 * Circuits from edge scores: which edges of the computational graph to keep, given EAP / EAP-IG scores
 * (src/interp/interventions/eap.ts), and the pruning that makes the kept graph connected.
 *
 * Hanna, Pezzelle & Belinkov 2024 ("Have Faith in Faithfulness", code: hannamw/EAP-IG, src/eap/graph.py; the
 * same code is vendored by dmis-lab/TemporalHead as eap/graph.py) build circuits two ways, both followed here:
 *  - top-n (`Graph.apply_topn`, level 'edge'): the n edges with the largest |score| (or score, absolute=false);
 *    a node is in when it has a kept edge out and a kept edge in (the input counts as always fed);
 *  - greedy (`Graph.apply_greedy`): start from the logits; repeatedly take the best-scoring edge whose reader
 *    is already in the circuit; a writer entering the circuit makes its own incoming edges candidates. Every
 *    edge taken is then connected to the logits by construction.
 * Both then prune (`Graph.prune`): repeatedly drop nodes without a kept edge out or without a kept edge in,
 * and edges whose writer or reader node was dropped, until nothing changes. What is left has, for every node,
 * a path from the input and a path to the logits. The logits are always in.
 *
 * Node names are eap.ts's: writers 'embed', 'L{l}H{h}', 'L{l}.mlp'; readers 'L{l}H{h}.q|k|v' (a head),
 * 'L{l}KV{g}.k|v' (under GQA: a key/value group, read by every query head of the group), 'L{l}.mlp', 'logits'.
 * Where fewer than n edges are connected to the logits, greedy takes those and says so in `settings.warning` (the
 * reference's iterator would fail). One deviation from the reference: the reference ungroups GQA so that each query head has its own key and
 * value input; here an edge into a group's key/value counts as an edge into each head of the group (that is
 * what the model computes: one key per group).
 */
import { HeadlensError } from '../errors.js';
import type { Edge, EdgeAttribution } from './interventions/eap.js';

export interface Circuit {
  /** Writer nodes kept ('embed', 'L1H2', 'L0.mlp'), plus 'logits' (always in). */
  nodes: string[];
  /** Kept edges, in the order of the scores given (eap.ts: matrix order). */
  edges: Edge[];
  /** How it was chosen: method, n asked for, edges kept after pruning, absolute, pruned. */
  settings: Record<string, unknown>;
}

export interface ExtractOptions {
  /** Rank edges by |score| (default true, as the reference); false: by signed score. */
  absolute?: boolean;
  /** Prune to a connected circuit afterwards (default true, as the reference). */
  prune?: boolean;
}

/** The nodes an edge reader belongs to: 'L1H2.q' → ['L1H2'], 'L1KV0.k' → the group's heads, 'logits' → ['logits']. */
export function readerNodes(reader: string, groupSize = 1): string[] {
  if (reader === 'logits') return ['logits'];
  const kv = /^L(\d+)KV(\d+)\.[kv]$/.exec(reader);
  if (kv) return Array.from({ length: groupSize }, (_, i) => `L${kv[1]}H${Number(kv[2]) * groupSize + i}`);
  const head = /^(L\d+H\d+)\.[qkv]$/.exec(reader);
  if (head) return [head[1]];
  if (/^L\d+\.mlp$/.test(reader)) return [reader];
  throw new HeadlensError(`'${reader}' is not an edge reader`, "readers are 'L{l}H{h}.q|k|v', 'L{l}KV{g}.k|v', 'L{l}.mlp' or 'logits' (edgeAttribution's names)");
}

/** Heads per key/value group, from the labels: query heads per layer over KV groups per layer (1 without GQA). */
function groupSizeOf(edges: Edge[]): number {
  const heads = new Set<number>();
  const groups = new Set<number>();
  for (const e of edges) {
    const h = /^L0H(\d+)$/.exec(e.from) ?? /^L0H(\d+)\.q$/.exec(e.to);
    if (h) heads.add(Number(h[1]));
    const g = /^L0KV(\d+)\./.exec(e.to);
    if (g) groups.add(Number(g[1]));
  }
  if (groups.size === 0) return 1;
  const size = heads.size / groups.size;
  if (!Number.isInteger(size) || size < 1) throw new HeadlensError(`cannot tell the GQA group size from ${heads.size} heads and ${groups.size} key/value groups in layer 0`);
  return size;
}

function edgeList(scores: EdgeAttribution | Edge[]): Edge[] {
  const edges = Array.isArray(scores) ? scores : scores.edges;
  if (!Array.isArray(edges) || edges.length === 0) throw new HeadlensError('no edges to build a circuit from', 'pass edgeAttribution(…) or its edges');
  for (const e of edges) {
    if (!Number.isFinite(e.score)) throw new HeadlensError(`edge ${e.from} → ${e.to} has score ${e.score}`, 'edge scores must be finite numbers');
  }
  return edges;
}

function checkN(n: number, total: number): void {
  if (!Number.isInteger(n) || n < 0) throw new HeadlensError(`n ${n} must be a non-negative integer`);
  if (n > total) throw new HeadlensError(`n (${n}) is greater than the number of edges (${total})`, `ask for at most ${total}`);
}

/** Ranking key of an edge. */
const keyOf = (absolute: boolean) => (e: Edge) => (absolute ? Math.abs(e.score) : e.score);

/**
 * The circuit of the n best edges (reference: Graph.apply_topn at edge level, then prune). Ties keep the
 * order given.
 */
export function topNCircuit(scores: EdgeAttribution | Edge[], n: number, opts: ExtractOptions = {}): Circuit {
  const edges = edgeList(scores);
  checkN(n, edges.length);
  const absolute = opts.absolute ?? true;
  const key = keyOf(absolute);
  const order = edges.map((e, i) => ({ e, i })).sort((a, b) => key(b.e) - key(a.e) || a.i - b.i);
  const keep = new Set(order.slice(0, n).map((o) => o.i));
  const kept = edges.filter((_, i) => keep.has(i));
  return finish(kept, edges, { method: 'top-n', n, absolute }, opts.prune ?? true);
}

/**
 * The greedy circuit of n edges grown from the logits (reference: Graph.apply_greedy): candidates are the
 * edges whose reader is in the circuit; the best is taken; a writer that enters makes its incoming edges
 * candidates.
 */
export function greedyCircuit(scores: EdgeAttribution | Edge[], n: number, opts: ExtractOptions = {}): Circuit {
  const edges = edgeList(scores);
  checkN(n, edges.length);
  const absolute = opts.absolute ?? true;
  const key = keyOf(absolute);
  const group = groupSizeOf(edges);
  // incoming edges of each node (a GQA key/value edge feeds every head of its group)
  const incoming = new Map<string, number[]>();
  edges.forEach((e, i) => {
    for (const node of readerNodes(e.to, group)) incoming.set(node, [...(incoming.get(node) ?? []), i]);
  });
  const inCircuit = new Set<string>(['logits']);
  const queued = new Set<number>();
  const candidates: number[] = []; // edge indices; the best is found by a scan (graphs here have at most a few thousand edges)
  const push = (node: string) => {
    for (const i of incoming.get(node) ?? []) {
      if (!queued.has(i)) (queued.add(i), candidates.push(i));
    }
  };
  push('logits');
  const taken = new Set<number>();
  for (let k = 0; k < n; k++) {
    if (candidates.length === 0) break; // every edge connected to the logits is taken
    let best = 0;
    for (let j = 1; j < candidates.length; j++) {
      const [a, b] = [candidates[j], candidates[best]];
      if (key(edges[a]) > key(edges[b]) || (key(edges[a]) === key(edges[b]) && a < b)) best = j;
    }
    const i = candidates.splice(best, 1)[0];
    taken.add(i);
    const parent = edges[i].from;
    if (!inCircuit.has(parent)) (inCircuit.add(parent), push(parent));
  }
  const kept = edges.filter((_, i) => taken.has(i));
  const settings: Record<string, unknown> = { method: 'greedy', n, absolute };
  if (kept.length < n) settings.warning = `only ${kept.length} edges are connected to the logits; took those`;
  return finish(kept, edges, settings, opts.prune ?? true);
}

function finish(kept: Edge[], all: Edge[], settings: Record<string, unknown>, prune: boolean): Circuit {
  const group = groupSizeOf(all);
  const c = prune ? pruneEdges(kept, group) : { nodes: nodesOf(kept, group), edges: kept };
  return { ...c, settings: { ...settings, groupSize: group, pruned: prune, edgesKept: c.edges.length } };
}

/** Writers with a kept edge out and a kept edge in ('embed' always counts as fed), plus 'logits'. */
function nodesOf(edges: Edge[], group: number): string[] {
  const out = new Set(edges.map((e) => e.from));
  const fed = new Set<string>(['embed']);
  for (const e of edges) for (const n of readerNodes(e.to, group)) fed.add(n);
  return [...[...out].filter((n) => fed.has(n)), 'logits'];
}

/**
 * Reference Graph.prune: drop nodes without a kept edge out or in, then edges whose writer or reader node is
 * gone, until nothing changes. Every node left has a path from the input and a path to the logits.
 */
function pruneEdges(edges: Edge[], group: number): { nodes: string[]; edges: Edge[] } {
  let cur = edges;
  for (;;) {
    const nodes = new Set(nodesOf(cur, group));
    const next = cur.filter((e) => nodes.has(e.from) && readerNodes(e.to, group).some((n) => nodes.has(n)));
    if (next.length === cur.length) return { nodes: [...nodes], edges: next };
    cur = next;
  }
}

/** Prune a circuit (or a bare edge list) to its connected part; see the module comment. */
export function pruneCircuit(circuit: Circuit | Edge[]): Circuit {
  const edges = Array.isArray(circuit) ? circuit : circuit.edges;
  const settings = Array.isArray(circuit) ? { method: 'given' } : circuit.settings;
  const given = Array.isArray(circuit) ? undefined : circuit.settings.groupSize;
  const group = typeof given === "number" ? given : edges.length ? groupSizeOf(edges) : 1;
  const c = pruneEdges(edges, group);
  return { ...c, settings: { ...settings, pruned: true, edgesKept: c.edges.length } };
}

/** Node frequency: for each writer node, the fraction of `circuits` that contain it (logits left out). */
export function nodeFrequency(circuits: Circuit[]): Map<string, number> {
  if (circuits.length === 0) throw new HeadlensError('nodeFrequency: no circuits given');
  const counts = new Map<string, number>();
  for (const c of circuits) for (const n of new Set(c.nodes)) if (n !== 'logits') counts.set(n, (counts.get(n) ?? 0) + 1);
  return new Map([...counts].map(([n, k]) => [n, k / circuits.length]));
}
