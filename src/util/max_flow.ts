/**
 * Maximum s–t flow by Edmonds–Karp (shortest augmenting paths found by breadth-first search), on a graph of
 * real-valued capacities. Attention flow (src/interp/attribution/attention_flow.ts) needs it; Abnar & Zuidema's
 * code calls networkx's `edmonds_karp`, so this is the same algorithm. npm holds no maintained JavaScript
 * max-flow package (the registry's max-flow entries are Python wrappers or unmaintained course exercises), so
 * it is written here: ~60 lines, tested on hand-made graphs with known values (tests/attention_flow.test.ts).
 *
 * Edmonds–Karp terminates on real capacities (each augmentation saturates an edge of a shortest path, at most
 * V·E augmentations). Residual capacities below `eps` count as zero, so float rounding cannot leave a path of
 * 1e-17 open. A leaf module: it imports only errors.ts.
 */
import { HeadlensError } from '../errors.js';

export interface FlowEdge {
  from: number;
  to: number;
  capacity: number;
}

/**
 * A directed graph with capacities, in residual form (each edge stored with its reverse), that answers
 * many max-flow queries: each query starts from the original capacities.
 */
export class FlowNetwork {
  private readonly head: Int32Array; // first residual edge out of each node, −1 if none
  private readonly next: number[] = []; // next residual edge out of the same node
  private readonly to: number[] = [];
  private readonly cap0: number[] = []; // capacities as given (the reverse edges 0)
  private readonly cap: Float64Array;

  constructor(
    readonly nodes: number,
    edges: FlowEdge[],
    readonly eps = 1e-12,
  ) {
    if (!Number.isInteger(nodes) || nodes < 1) throw new HeadlensError(`a flow network needs a positive whole number of nodes, got ${nodes}`);
    this.head = new Int32Array(nodes).fill(-1);
    for (const e of edges) {
      for (const n of [e.from, e.to]) if (!Number.isInteger(n) || n < 0 || n >= nodes) throw new HeadlensError(`edge ${e.from} → ${e.to} names node ${n}, outside 0..${nodes - 1}`);
      if (!(e.capacity >= 0) || !Number.isFinite(e.capacity)) throw new HeadlensError(`edge ${e.from} → ${e.to} has capacity ${e.capacity}`, 'capacities must be finite and non-negative');
      this.add(e.from, e.to, e.capacity);
      this.add(e.to, e.from, 0);
    }
    this.cap = new Float64Array(this.cap0.length);
  }

  private add(from: number, to: number, c: number): void {
    this.to.push(to);
    this.cap0.push(c);
    this.next.push(this.head[from]);
    this.head[from] = this.to.length - 1;
  }

  /** The value of a maximum flow from `source` to `sink` (0 when they are the same node). */
  maxFlow(source: number, sink: number): number {
    for (const n of [source, sink]) if (!Number.isInteger(n) || n < 0 || n >= this.nodes) throw new HeadlensError(`node ${n} is outside 0..${this.nodes - 1}`);
    if (source === sink) return 0;
    this.cap.set(this.cap0);
    const viaEdge = new Int32Array(this.nodes);
    const queue = new Int32Array(this.nodes);
    let total = 0;
    for (;;) {
      // breadth-first search for a shortest path with residual capacity
      viaEdge.fill(-1);
      viaEdge[source] = -2;
      let qh = 0;
      let qt = 0;
      queue[qt++] = source;
      while (qh < qt && viaEdge[sink] === -1) {
        const u = queue[qh++];
        for (let e = this.head[u]; e !== -1; e = this.next[e]) {
          const v = this.to[e];
          if (viaEdge[v] === -1 && this.cap[e] > this.eps) {
            viaEdge[v] = e;
            queue[qt++] = v;
          }
        }
      }
      if (viaEdge[sink] === -1) return total;
      let push = Infinity;
      for (let v = sink; v !== source; v = this.to[viaEdge[v] ^ 1]) push = Math.min(push, this.cap[viaEdge[v]]);
      for (let v = sink; v !== source; v = this.to[viaEdge[v] ^ 1]) {
        this.cap[viaEdge[v]] -= push;
        this.cap[viaEdge[v] ^ 1] += push;
      }
      total += push;
    }
  }
}

/** The value of a maximum flow from `source` to `sink` in a graph of `nodes` nodes. */
export function maxFlow(nodes: number, edges: FlowEdge[], source: number, sink: number): number {
  return new FlowNetwork(nodes, edges).maxFlow(source, sink);
}
