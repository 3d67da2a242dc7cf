/**
 * `headlens svd`: the singular values of one head's QK (W_Q·W_Kᵀ) or OV (W_V·W_O) circuit, and, when
 * the model has a tokenizer, the tokens that best match the leading singular vectors (query/key tokens
 * through W_E for QK; source tokens through W_E and promoted tokens through W_U for OV). A singular
 * vector's sign is arbitrary, but the pair (u_i, v_i) flips together, so each row reads as
 * "these inputs ↦ these outputs".
 */
import type { BackendName } from '../backend/index.js';
import { HeadlensError } from '../errors.js';
import type { HookedTransformer } from '../hooks/hooked_transformer.js';
import { checkHead, embeddings, ovCircuit, qkCircuit } from '../interp/weights/head_circuits.js';
import { headLabel } from '../interp/head_label.js';
import { matmul, transpose, type Mat } from '../linalg/mat.js';
import { loadPretrained } from '../loading/load.js';
import { required, type Command } from './main.js';

export interface TopToken {
  id: number;
  token: string;
  value: number;
}

export interface SingularDirection {
  index: number;
  singular_value: number;
  /** QK: query tokens, OV: source tokens (the tokens whose embeddings best match u_i). */
  input_tokens: TopToken[];
  /** QK: key tokens (through W_E), OV: promoted tokens (through W_U). */
  output_tokens: TopToken[];
}

export interface SvdReport {
  model: string;
  head: string;
  layer: number;
  head_index: number;
  circuit: 'qk' | 'ov';
  singular_values: number[];
  top_tokens?: SingularDirection[];
}

/** A non-negative integer option. */
export function intOption(v: unknown, key: string, example: string): number {
  const s = required({ [key]: v }, key, example);
  if (!/^\d+$/.test(s)) throw new HeadlensError(`--${key} '${s}' is not a non-negative integer`, `e.g. --${key} ${example}`);
  return Number(s);
}

function topTokens(model: HookedTransformer, scores: Float64Array, n: number): TopToken[] {
  const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]).slice(0, n);
  return order.map((id) => ({ id, token: model.tokenizer!.tokenText(id), value: scores[id] }));
}

/** The report `headlens svd` prints. */
export function svdReport(model: HookedTransformer, layer: number, head: number, circuit: 'qk' | 'ov', k = 3, nTokens = 8): SvdReport {
  checkHead(model, layer, head);
  const fm = circuit === 'qk' ? qkCircuit(model, layer, head) : ovCircuit(model, layer, head);
  const { U, S, V } = fm.svd();
  const report: SvdReport = {
    model: model.cfg.model_name,
    head: headLabel(layer, head),
    layer,
    head_index: head,
    circuit,
    singular_values: Array.from(S),
  };
  if (model.tokenizer) {
    if (!(Number.isInteger(k) && k >= 1 && k <= S.length)) throw new HeadlensError(`--k ${k} is not in 1..${S.length}`, `the circuit has ${S.length} singular values`);
    const { W_E, W_U } = embeddings(model);
    const inputs = matmul(W_E, U); // [d_vocab, k]: token embedding · u_i
    const outputs: Mat = circuit === 'qk' ? matmul(W_E, V) : matmul(transpose(W_U), V); // [d_vocab, k]
    report.top_tokens = Array.from({ length: k }, (_, i) => {
      const col = (m: Mat) => Float64Array.from({ length: m.rows }, (_, r) => m.data[r * m.cols + i]);
      return { index: i, singular_value: S[i], input_tokens: topTokens(model, col(inputs), nTokens), output_tokens: topTokens(model, col(outputs), nTokens) };
    });
  }
  return report;
}

export function formatSvd(r: SvdReport): string {
  const lines = [`${r.head} ${r.circuit.toUpperCase()} circuit of ${r.model}: ${r.singular_values.length} singular values`, r.singular_values.map((s) => s.toPrecision(5)).join(' ')];
  const [inName, outName] = r.circuit === 'qk' ? ['query', 'key'] : ['source', 'output'];
  for (const d of r.top_tokens ?? []) {
    const show = (t: TopToken[]) => t.map((x) => JSON.stringify(x.token)).join(' ');
    lines.push(`σ${d.index} = ${d.singular_value.toPrecision(5)}`, `  ${inName} tokens: ${show(d.input_tokens)}`, `  ${outName} tokens: ${show(d.output_tokens)}`);
  }
  return lines.join('\n');
}

export const svdCommand: Command = {
  options: { model: { type: 'string' }, layer: { type: 'string' }, head: { type: 'string' }, circuit: { type: 'string' }, k: { type: 'string' }, json: { type: 'boolean' } },
  async run(v) {
    const modelArg = required(v, 'model', 'datasets/zoo/tiny-gpt2-random');
    const layer = intOption(v.layer, 'layer', '0');
    const head = intOption(v.head, 'head', '0');
    const circuit = required(v, 'circuit', 'ov');
    if (circuit !== 'qk' && circuit !== 'ov') throw new HeadlensError(`--circuit '${circuit}' is not qk or ov`, 'use --circuit qk or --circuit ov');
    const k = v.k === undefined ? 3 : intOption(v.k, 'k', '3');
    const model = await loadPretrained(modelArg, { backend: v.backend as BackendName });
    try {
      if (k < 1 || k > model.cfg.d_head) throw new HeadlensError(`--k ${k} is not in 1..d_head (${model.cfg.d_head})`, `use --k 1..${model.cfg.d_head}`);
      const report = svdReport(model, layer, head, circuit, k);
      console.log(v.json ? JSON.stringify(report) : formatSvd(report));
    } finally {
      model.dispose();
    }
  },
};
