/**
 * Distances between attention heads (Clark et al. 2019, "What Does BERT Look At?", §6, Figure 6): how
 * differently two heads distribute their attention over the same input. For heads a and b and each query q, the
 * Jensen–Shannon divergence JS(A_a[q], A_b[q]) = ½·KL(A_a[q] ‖ M) + ½·KL(A_b[q] ‖ M), M = ½(A_a[q] + A_b[q]),
 * in nats (so at most ln 2), with each row smoothed first, p' = 0.999·p + 0.001/v (`smoothing` = 1e-3, their
 * head_distances.py). Clustering the heads by it, they found heads of the same layer close together and heads
 * with the same behaviour (attending to [SEP], to the next token, broadly) in clusters.
 *
 * Their script sums the divergence over every query of every example and feeds that sum to MDS; here it is
 * divided by the number of queries summed (the average per query token, as their §6 words it), a constant
 * factor that changes the scale of the embedding and nothing else. v: all n keys on bidirectional maps (exactly
 * theirs), q + 1 on causal maps (keys a query cannot see are 0 in both heads; theirs would smooth them too).
 *
 * `headEmbedding` places the heads in 2-D by classical MDS (linalg/mds.ts) of these divergences; they used
 * scikit-learn's metric MDS (SMACOF, a stress minimisation from random starts), which gives a similar but not
 * identical layout.
 */
import { HeadlensError } from '../../errors.js';
import { classicalMds } from '../../linalg/mds.js';
import { headLabel } from '../head_label.js';
import { attentionMaps, visibleKeys, type AttentionMaps, type AttentionMapsInput } from './attention_maps.js';

export interface HeadDistanceOptions {
  /** Mixing weight of the uniform distribution (default 1e-3, theirs; 0 for the exact divergence). */
  smoothing?: number;
}

/** The heads×heads matrix, heads in order L0H0, L0H1, …, [layer·n_heads + head]. */
export interface HeadDistances {
  /** Mean Jensen–Shannon divergence per query token (nats), symmetric, zero diagonal. */
  distances: number[][];
  /** `L{l}H{h}` of each row. */
  labels: string[];
  layers: number;
  heads: number;
  /** Query rows averaged over (all examples). */
  queries: number;
}

/** Σ over queries of each head pair's JS divergence on one example (the upper triangle is filled, then mirrored). */
function addDivergences(maps: AttentionMaps, s: number, sums: Float64Array): void {
  const { layers, heads, n, data } = maps;
  const H = layers * heads;
  const smoothed = new Float64Array(data.length);
  const logs = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const q = Math.floor(i / n) % n;
    const k = i % n;
    const v = visibleKeys(maps, q);
    const p = k < v ? (1 - s) * data[i] + s / v : 0;
    smoothed[i] = p;
    logs[i] = p > 0 ? Math.log(p) : 0;
  }
  for (let a = 0; a < H; a++) {
    for (let b = a + 1; b < H; b++) {
      let js = 0;
      for (let q = 0; q < n; q++) {
        const v = visibleKeys(maps, q);
        const ra = (a * n + q) * n;
        const rb = (b * n + q) * n;
        for (let k = 0; k < v; k++) {
          const pa = smoothed[ra + k];
          const pb = smoothed[rb + k];
          const m = (pa + pb) / 2;
          if (m === 0) continue;
          const lm = Math.log(m);
          if (pa > 0) js += pa * (logs[ra + k] - lm);
          if (pb > 0) js += pb * (logs[rb + k] - lm);
        }
      }
      sums[a * H + b] += js / 2;
    }
  }
}

/** Mean Jensen–Shannon divergence between every pair of heads, over the queries of all examples. */
export function headDistances(examples: AttentionMapsInput[], opts: HeadDistanceOptions = {}): HeadDistances {
  if (!Array.isArray(examples) || examples.length === 0) throw new HeadlensError('head distances: no examples given', "pass at least one example's maps [layer, head, query_pos, key_pos]");
  const s = opts.smoothing ?? 1e-3;
  if (!(Number.isFinite(s) && s >= 0 && s < 1)) throw new HeadlensError(`head distances: smoothing ${s} must be in [0, 1)`, 'use 1e-3 (Clark et al.) or 0');
  let shape: { layers: number; heads: number } | undefined;
  let sums: Float64Array | undefined;
  let queries = 0;
  examples.forEach((e, i) => {
    const maps = attentionMaps(e, `example ${i}'s attention maps`);
    if (!shape) {
      shape = { layers: maps.layers, heads: maps.heads };
      sums = new Float64Array((maps.layers * maps.heads) ** 2);
    } else if (maps.layers !== shape.layers || maps.heads !== shape.heads) {
      throw new HeadlensError(`head distances: example ${i} has ${maps.layers}×${maps.heads} heads, example 0 has ${shape.layers}×${shape.heads}`, 'pass maps of one model');
    }
    addDivergences(maps, s, sums!);
    queries += maps.n;
  });
  const { layers, heads } = shape!;
  const H = layers * heads;
  const distances = Array.from({ length: H }, () => new Array<number>(H).fill(0));
  for (let a = 0; a < H; a++) {
    for (let b = a + 1; b < H; b++) distances[a][b] = distances[b][a] = sums![a * H + b] / queries;
  }
  const labels = Array.from({ length: H }, (_, i) => headLabel(Math.floor(i / heads), i % heads));
  return { distances, labels, layers, heads, queries };
}

/** A head placed in the plane. */
export interface EmbeddedHead {
  layer: number;
  head: number;
  label: string;
  x: number;
  y: number;
}

export interface HeadEmbedding {
  points: EmbeddedHead[];
  /** The share of the positive eigenvalue mass the two dimensions hold (see linalg/mds.ts). */
  explained: number;
  method: 'classical MDS';
}

/** The heads in 2-D by classical MDS of their distances. */
export function headEmbedding(d: HeadDistances): HeadEmbedding {
  const { points, explained } = classicalMds(d.distances, 2);
  return {
    points: points.map(([x, y], i) => ({ layer: Math.floor(i / d.heads), head: i % d.heads, label: d.labels[i], x, y })),
    explained,
    method: 'classical MDS',
  };
}
