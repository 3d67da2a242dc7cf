/** The MLP nonlinearities of the supported checkpoints, by their HF names. */
import * as tf from '@tensorflow/tfjs';
import type { HookedConfig } from './config.js';

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

export function activation(fn: HookedConfig['act_fn'], x: tf.Tensor): tf.Tensor {
  switch (fn) {
    case 'relu':
      return tf.relu(x);
    case 'silu':
      return x.mul(tf.sigmoid(x));
    case 'gelu':
      // the exact GELU, as torch.nn.functional.gelu
      return x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5);
    case 'gelu_fast':
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
      // the tanh approximation GPT-2 was trained with
      return x.mul(tf.tanh(x.add(x.mul(x).mul(x).mul(0.044715)).mul(SQRT_2_OVER_PI)).add(1)).mul(0.5);
  }
}
