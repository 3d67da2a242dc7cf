/**
 * Moves a tensor's values to the device now. tfjs-backend-webgpu (4.22) keeps a new tensor's values in host
 * memory until a kernel first reads it, so a model built from a checkpoint would hold its weights twice (host
 * and, later, GPU) and the host copy of every weight no kernel has touched yet (embeddings, GPT-2's untransposed
 * MLP matrices) until the first forward. Loading calls this on each tensor it makes, so the host copy is dropped
 * as soon as the GPU one exists. Other backends place values where they keep them when the tensor is made.
 */
import * as tf from '@tensorflow/tfjs';

interface UploadingBackend {
  uploadToGPU?(dataId: object): void;
}

export function placeOnDevice(t: tf.Tensor): void {
  if (tf.getBackend() !== 'webgpu') return;
  const backend = tf.backend() as unknown as UploadingBackend;
  backend.uploadToGPU?.(t.dataId);
}
