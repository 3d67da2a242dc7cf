/**
 * Circuit graph: the components a circuit-discovery method kept (path patching, Wang et al. 2022; edge
 * attribution patching, Syed et al. 2023) as a layered DAG from the embeddings through heads and MLPs to
 * the logits. Edge width grows with |score|, colour says its sign (red helps, blue hurts). The layout is
 * d3-dag's Sugiyama with each node's rank fixed by its layer, so a head never floats above its layer.
 */
import { graphConnect, layeringSimplex, sugiyama, decrossTwoLayer, coordSimplex } from 'd3-dag';
import * as d3 from 'd3';
import { HeadlensError } from '../errors.js';
import { esc, round } from './html.js';
import { makeView, type View } from './view.js';

/**
 * An edge: `{ source, target, score }`, or `{ from, to, score }` as edge attribution patching gives them. A
 * target that names a head's input (`L1H2.q`, `.k`, `.v`) is drawn into the head itself, the input in its tooltip;
 * two edges that then join the same pair of nodes are drawn as one, with the larger |score|.
 */
export type CircuitEdge = { source: string; target: string; score: number } | { from: string; to: string; score: number };

export interface CircuitGraphOptions {
  /** Title (aria-label, page title). Default: 'circuit'. */
  title?: string;
  /**
   * Rank (row) of a node. Default: from its name — 'embed'/'tokens' 0, `L{l}H{h}` / `L{l}KV{g}` / `A{l}.{h}` /
   * `attn{l}` 2l+1, `MLP{l}` / `M{l}` / `L{l}.mlp` 2l+2, 'logits'/'unembed'/'output' one below the deepest other node.
   */
  rank?: (node: string) => number;
  /** Edges with |score| below this are left out. Default: 0 (keep all). */
  minScore?: number;
  /** Node box size [width, height]. Default: [64, 26]. */
  nodeSize?: [number, number];
  /** Widest edge in pixels (at the largest |score|). Default: 6. */
  maxWidth?: number;
}

/** Rank from a node's name (see CircuitGraphOptions.rank); NaN when the name says nothing. */
export function defaultRank(node: string): number {
  if (/^(embed|tokens|hook_embed)$/i.test(node)) return 0;
  let m = /^(?:L(\d+)H\d+|L(\d+)KV\d+|A(\d+)\.\d+|attn(\d+))$/i.exec(node);
  if (m) return 2 * Number(m[1] ?? m[2] ?? m[3] ?? m[4]) + 1;
  m = /^(?:(?:MLP|M|mlp)(\d+)|L(\d+)\.mlp)$/.exec(node);
  if (m) return 2 * Number(m[1] ?? m[2]) + 2;
  return NaN;
}

const OUTPUT = /^(logits|unembed|output)$/i;

export function circuitGraph(edges: CircuitEdge[], opts: CircuitGraphOptions = {}): View {
  const title = opts.title ?? 'circuit';
  // one edge per pair of nodes, head inputs (.q/.k/.v) folded into their head
  const merged = new Map<string, { source: string; target: string; score: number; via: string[] }>();
  for (const e of edges) {
    if (Math.abs(e.score) < (opts.minScore ?? 0)) continue;
    const source = 'source' in e ? e.source : e.from;
    const rawTarget = 'target' in e ? e.target : e.to;
    const m = /^(.+)\.([qkv])$/.exec(rawTarget);
    const target = m ? m[1] : rawTarget;
    const key = `${source}\u0000${target}`;
    const prev = merged.get(key);
    const via = m ? [`${m[2]} ${round(e.score, 4)}`] : [];
    if (!prev) merged.set(key, { source, target, score: e.score, via });
    else {
      prev.via.push(...via);
      if (Math.abs(e.score) > Math.abs(prev.score)) prev.score = e.score;
    }
  }
  const kept = [...merged.values()];
  if (kept.length === 0) throw new HeadlensError('circuitGraph: no edges to draw', 'pass edges, or lower minScore');
  const names = [...new Set(kept.flatMap((e) => [e.source, e.target]))];
  const rankOf = opts.rank ?? defaultRank;
  const ranks = new Map<string, number>();
  for (const n of names) if (!OUTPUT.test(n) || opts.rank) ranks.set(n, rankOf(n));
  const unknown = [...ranks].filter(([, r]) => !Number.isFinite(r)).map(([n]) => n);
  if (unknown.length) throw new HeadlensError(`circuitGraph: cannot tell the layer of ${unknown.join(', ')}`, "name nodes embed, L{l}H{h}, MLP{l}, logits, or pass opts.rank");
  const deepest = Math.max(0, ...ranks.values());
  for (const n of names) if (!ranks.has(n)) ranks.set(n, deepest + 1);
  for (const e of kept) {
    if (ranks.get(e.source)! >= ranks.get(e.target)!) {
      throw new HeadlensError(`circuitGraph: edge ${e.source} → ${e.target} does not go down the layers`, 'edges run from earlier components to later ones');
    }
  }
  const graph = graphConnect()(kept.map((e) => [e.source, e.target] as [string, string]));
  const [nw, nh] = opts.nodeSize ?? [64, 26];
  const layout = sugiyama()
    .layering(layeringSimplex().rank((node: { data: string }) => ranks.get(node.data)!))
    .decross(decrossTwoLayer())
    .coord(coordSimplex())
    .nodeSize([nw, nh])
    .gap([16, 34]);
  const { width, height } = layout(graph as never);
  const maxAbs = Math.max(1e-12, ...kept.map((e) => Math.abs(e.score)));
  const maxW = opts.maxWidth ?? 6;
  const colour = d3.scaleDiverging(d3.interpolateRdBu).domain([maxAbs, 0, -maxAbs]);
  const byPair = new Map(kept.map((e) => [`${e.source}\u0000${e.target}`, e]));
  const line = d3.line().curve(d3.curveMonotoneY);
  const pad = 10;
  const legendH = 24;
  const parts: string[] = [];
  const links = [...graph.links()].sort((a, b) => `${a.source.data}|${a.target.data}`.localeCompare(`${b.source.data}|${b.target.data}`));
  for (const link of links) {
    const edge = byPair.get(`${link.source.data}\u0000${link.target.data}`);
    const s = edge?.score ?? 0;
    const via = edge?.via.length ? ` (${edge.via.join(', ')})` : '';
    const pts = link.points.map(([x, y]) => [round(x + pad, 2), round(y + pad + legendH, 2)] as [number, number]);
    parts.push(`<path d="${line(pts)}" fill="none" stroke="${colour(s)}" stroke-width="${round(1 + (maxW - 1) * (Math.abs(s) / maxAbs), 2)}" stroke-opacity="0.85"><title>${esc(`${link.source.data} → ${link.target.data}: ${round(s, 4)}${via}`)}</title></path>`);
  }
  const nodes = [...graph.nodes()].sort((a, b) => String(a.data).localeCompare(String(b.data)));
  for (const node of nodes) {
    const x = round(node.x + pad, 2);
    const y = round(node.y + pad + legendH, 2);
    const name = String(node.data);
    const fill = /H\d+$|KV\d+$|^A\d|^attn/i.test(name) ? '#fdf0d5' : /^(MLP|M)\d|\.mlp$/i.test(name) ? '#e5f5e0' : '#eeeeee';
    parts.push(`<g data-node="${esc(name)}"><rect x="${round(x - nw / 2 + 2, 2)}" y="${round(y - nh / 2 + 2, 2)}" width="${nw - 4}" height="${nh - 4}" rx="5" fill="${fill}" stroke="#555"/><text x="${x}" y="${y + 4}" text-anchor="middle">${esc(name)}</text></g>`);
  }
  const W = round(Math.max(width + 2 * pad, 340), 2);
  const H = round(height + 2 * pad + legendH, 2);
  const legend = `<text x="${pad}" y="16">edge width ∝ |score| (max ${round(maxAbs, 4)}); <tspan fill="${colour(maxAbs)}">red +</tspan> / <tspan fill="${colour(-maxAbs)}">blue −</tspan></text>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(title)}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="11">${legend}${parts.join('')}</svg>`;
  return makeView('circuit graph', title, svg);
}
