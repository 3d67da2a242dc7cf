/** GPU times of a tf.time run by program kind, for the device profilers (decode_profile.ts, sweep_profile.ts). */
import type * as tf from '@tensorflow/tfjs';

/** tfjs-backend-webgpu 4.22's per-program times ("Name: ms, Name: ms, …") summed by name. */
export function kernelTimesByKind(info: tf.TimingInfo): Record<string, { n: number; ms: number }> {
  const extra = String((info as unknown as { getExtraProfileInfo?: () => string }).getExtraProfileInfo?.() ?? '');
  const kinds: Record<string, { n: number; ms: number }> = {};
  for (const part of extra.split(', ').filter(Boolean)) {
    const [name, msText] = part.split(': ');
    kinds[name] ??= { n: 0, ms: 0 };
    kinds[name].n++;
    kinds[name].ms += Number(msText);
  }
  return kinds;
}
