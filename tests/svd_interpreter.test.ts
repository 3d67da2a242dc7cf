/** circuitSvd (src/interp/weights/svd_interpreter.ts): a head's circuit SVD read in tokens, as plain data. */
import * as tf from '@tensorflow/tfjs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend/index.js';
import type { HookedTransformer } from '../src/hooks/hooked_transformer.js';
import { embeddings, ovCircuit, qkCircuit } from '../src/interp/weights/head_circuits.js';
import { circuitSvd } from '../src/interp/weights/svd_interpreter.js';
import { matmul, transpose } from '../src/linalg/mat.js';
import { loadPretrained } from '../src/loading/load.js';
import { FIXTURES } from './helpers.js';

let gpt2: HookedTransformer;
let noTokenizer: HookedTransformer;
beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  gpt2 = await loadPretrained(path.join(FIXTURES, 'gpt2'));
  noTokenizer = await loadPretrained('toy-induction-2l');
});
afterAll(() => {
  gpt2.dispose();
  noTokenizer.dispose();
});

describe('circuitSvd', () => {
  it('circuitSvd(model, l, h, circuit) gives the circuit’s singular values and, per leading direction, the best-matching tokens', () => {
    for (const circuit of ['qk', 'ov'] as const) {
      const r = circuitSvd(gpt2, 1, 2, circuit, { k: 2, nTokens: 5 });
      expect(r).toMatchObject({ layer: 1, head: 2, label: 'L1H2', circuit });
      const fm = (circuit === 'qk' ? qkCircuit : ovCircuit)(gpt2, 1, 2);
      expect(r.singularValues).toEqual(Array.from(fm.singularValues()));
      expect(r.directions).toHaveLength(2);
      // the output side of direction 0 is v_0 read through W_E (QK) or W_U (OV): its best token is the argmax of that column
      const { V } = fm.svd();
      const { W_E, W_U } = embeddings(gpt2);
      const out = circuit === 'qk' ? matmul(W_E, V) : matmul(transpose(W_U), V);
      const col = Array.from({ length: out.rows }, (_, i) => out.data[i * out.cols]);
      const best = col.indexOf(Math.max(...col));
      for (const d of r.directions!) {
        expect(d.inputTokens).toHaveLength(5);
        for (let i = 1; i < 5; i++) expect(d.outputTokens[i].value).toBeLessThanOrEqual(d.outputTokens[i - 1].value);
        expect(d.singularValue).toBe(r.singularValues[d.index]);
      }
      expect(r.directions![0].outputTokens[0]).toMatchObject({ id: best, token: gpt2.tokenizer!.tokenText(best) });
    }
  });

  it('circuitSvd on a model without a tokenizer returns the singular values only', () => {
    const r = circuitSvd(noTokenizer, 1, 0, 'ov');
    expect(r.singularValues).toHaveLength(noTokenizer.cfg.d_head);
    expect(r.directions).toBeUndefined();
  });

  it('circuitSvd leaves tf.memory().numTensors unchanged', () => {
    circuitSvd(gpt2, 0, 0, 'qk');
    const before = tf.memory().numTensors;
    circuitSvd(gpt2, 0, 0, 'qk');
    expect(tf.memory().numTensors).toBe(before);
  });
});
