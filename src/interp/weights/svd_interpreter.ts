/**
 * Reading a head's QK or OV circuit through its singular value decomposition ("SVD interpretability":
 * Millidge & Black 2022, "The Singular Value Decompositions of Transformer Weight Matrices are Highly
 * Interpretable"). The circuit (W_Q·W_Kᵀ or W_V·W_O, see head_circuits.ts) has rank ≤ d_head; its SVD
 * U·diag(S)·Vᵀ is taken on the factored form, so only a d_head × d_head matrix is decomposed. Each
 * direction i is then read in tokens: the tokens whose embeddings (W_E) best match u_i are what the
 * direction reads, and v_i is read through W_E for QK (the key tokens it matches) or through W_U for OV
 * (the tokens whose logits it raises).
 *
 * A singular vector's sign is arbitrary, but the pair (u_i, v_i) flips together, so each direction reads
 * as "these inputs ↦ these outputs". Norms, biases and positions are left out, as in head_circuits.ts.
 */
import { HeadlensError } from '../../errors.js';
import type { HookedTransformer } from '../../hooks/hooked_transformer.js';
import { matmul, transpose, type Mat } from '../../linalg/mat.js';
import { headLabel } from '../head_label.js';
import { checkHead, embeddings, ovCircuit, qkCircuit, readWeightsAsync } from './head_circuits.js';

export interface TokenScore {
  id: number;
  /** The token's text (tokenizer.tokenText). */
  token: string;
  value: number;
}

export interface SingularDirection {
  index: number;
  singularValue: number;
  /** QK: query tokens, OV: source tokens (the tokens whose embeddings best match u_i). */
  inputTokens: TokenScore[];
  /** QK: key tokens (through W_E), OV: promoted tokens (through W_U). */
  outputTokens: TokenScore[];
}

export interface CircuitSvd {
  layer: number;
  head: number;
  /** L{layer}H{head}. */
  label: string;
  circuit: 'qk' | 'ov';
  /** All d_head singular values, largest first. */
  singularValues: number[];
  /** The k leading directions read in tokens; absent when the model has no tokenizer. */
  directions?: SingularDirection[];
}

export interface CircuitSvdOptions {
  /** How many leading directions to read in tokens. Default 3. */
  k?: number;
  /** How many tokens per side of a direction. Default 8. */
  nTokens?: number;
}

/**
 * The singular values of head (layer, head)'s QK or OV circuit and, when the model has a tokenizer, the
 * tokens that best match its k leading singular vectors. Plain numbers and strings; nothing to dispose.
 */
export function circuitSvd(model: HookedTransformer, layer: number, head: number, circuit: 'qk' | 'ov', opts: CircuitSvdOptions = {}): CircuitSvd {
  const { k = 3, nTokens = 8 } = opts;
  checkHead(model, layer, head);
  const fm = circuit === 'qk' ? qkCircuit(model, layer, head) : ovCircuit(model, layer, head);
  const { U, S, V } = fm.svd();
  const result: CircuitSvd = { layer, head, label: headLabel(layer, head), circuit, singularValues: Array.from(S) };
  const tokenizer = model.tokenizer;
  if (!tokenizer) return result;
  if (!(Number.isInteger(k) && k >= 1 && k <= S.length)) throw new HeadlensError(`k ${k} is not in 1..${S.length}`, `the circuit has ${S.length} singular values`);
  const { W_E, W_U } = embeddings(model);
  const inputs = matmul(W_E, U); // [d_vocab, d_head]: token embedding · u_i
  const outputs: Mat = circuit === 'qk' ? matmul(W_E, V) : matmul(transpose(W_U), V); // [d_vocab, d_head]
  const top = (m: Mat, i: number): TokenScore[] => {
    const col = Float64Array.from({ length: m.rows }, (_, r) => m.data[r * m.cols + i]);
    const order = Array.from(col.keys()).sort((a, b) => col[b] - col[a]).slice(0, nTokens);
    return order.map((id) => ({ id, token: tokenizer.tokenText(id), value: col[id] }));
  };
  result.directions = Array.from({ length: k }, (_, i) => ({ index: i, singularValue: S[i], inputTokens: top(inputs, i), outputTokens: top(outputs, i) }));
  return result;
}

/** circuitSvd, with the weights read asynchronously first (readWeightsAsync): the form that runs on WebGPU in Node. */
export async function circuitSvdAsync(model: HookedTransformer, layer: number, head: number, circuit: 'qk' | 'ov', opts: CircuitSvdOptions = {}): Promise<CircuitSvd> {
  await readWeightsAsync(model);
  return circuitSvd(model, layer, head, circuit, opts);
}
