/**
 * A leaner host side for each dispatch of tfjs-backend-webgpu 4.22 (issue 18: decoding and small forwards are
 * bound by the host's cost per dispatch, about 55 µs on the H100 machine, bench/results/h100-2026-12-07-s3).
 *
 * tfjs records a program (WebGPUBackend.recordAndSubmit) by packing its uniforms (NaN, Infinity, every buffer's
 * shape and strides, the output size, the program's own values) into a fresh ArrayBuffer, taking a uniform buffer
 * from its pool, writing it with its own queue.writeBuffer, asking the pipeline for its bind-group layout (a new
 * wrapper object per call), then making the bind group and dispatching. Measured per call on SwiftShader in this
 * workplace (a micro-benchmark of the Dawn calls): createBindGroup 12.8 µs, pool acquire + release 4.0 µs,
 * getBindGroupLayout 1.2 µs, writeBuffer 1.1 µs.
 *
 * With `webgpuHostTuning.leanDispatch` (on by default) a dispatch is recorded the same dispatch with the same uniform bytes, but:
 *   - uniforms go into slots of one uniform buffer per backend (`leanDispatchSlots.slots` of the device's minimum
 *     uniform offset alignment, 256 bytes on the cards we use; a dispatch takes as many as its uniforms fill), packed into a host copy that is written with a single
 *     queue.writeBuffer just before each queue submission. WebGPU orders queue writes and submissions, so the write
 *     lands after the previous submission's dispatches read their slots and before this one's run;
 *   - each pipeline's bind-group layout is asked for once.
 * A dispatch this does not cover goes through tfjs' own path: while tf.time is timing programs (timestamp
 * queries), a draw program, uniforms larger than all the slots. It also binds a program's extra outputs (after the
 * uniforms), which tfjs cannot: the kernels with several outputs (runProgramMulti) run only on this path. When the slots run out before tfjs' submission batch
 * does, the open work is submitted early.
 */
import * as tf from '@tensorflow/tfjs';
import { webgpuHostTuning } from './webgpu_uploads.js';

/** The parts of tfjs-backend-webgpu 4.22's WebGPUBackend the lean path reaches. */
export interface DispatchBackend {
  recordAndSubmit(program: LeanProgram, output: TensorRef, inputs: TensorRef[], programDefinedUniform?: UniformEntry[]): void;
  submitQueue(): void;
  endComputePassEncoder(): void;
  ensureCommandEncoderReady(): void;
  tensorToBinding(t: TensorRef): unknown;
  commandQueueOwnedIds: { add(id: object): void };
  commandEncoder: { beginComputePass(d: object): PassEncoder } | null;
  computePassEncoder: PassEncoder | null;
  dispatchCountInPass: number;
  activeTimers?: unknown[] | null;
  device: {
    limits: { minUniformBufferOffsetAlignment: number };
    createBuffer(d: { size: number; usage: number }): unknown;
    createBindGroup(d: { layout: unknown; entries: { binding: number; resource: unknown }[] }): unknown;
  };
  queue: { writeBuffer(buffer: unknown, offset: number, data: ArrayBuffer, dataOffset: number, size: number): void };
}

interface PassEncoder {
  setPipeline(p: unknown): void;
  setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y: number, z: number): void;
}

interface LeanProgram {
  /** Outputs beyond `result`, bound after the uniforms (see runProgramMulti, webgpu_kernels/program.ts). */
  extraOutputs?: TensorRef[];
  pipeline: { getBindGroupLayout(i: number): unknown } | Promise<unknown>;
  pixelsOpType?: unknown;
  size?: boolean;
  outputShape: number[];
  outputComponent?: number;
  dispatch: [number, number, number];
}

interface TensorRef {
  dataId: object;
  shape: number[];
}

export interface UniformEntry {
  type: string;
  data: number[];
}

/** Uniform slots per submission (tfjs submits every 128 dispatches with webgpuHostTuning; more submit early). */
export const leanDispatchSlots = { slots: 512 };

const GPU_UNIFORM = 0x40;
const GPU_COPY_DST = 0x8;

/**
 * Byte offsets of uniform fields of the given lengths laid out as tfjs 4.22 lays out its uniform struct (WGSL
 * alignment: 4 bytes for a scalar, 8 for 2 values, 16 for 3–6, and 16 after a field of 5 or 6), and the struct's
 * size rounded to its largest alignment.
 */
export function uniformLayout(lengths: number[]): { offsets: number[]; size: number } {
  let at = 0;
  let previous = 0;
  let maxAlign = 1;
  const offsets: number[] = [];
  for (const n of lengths) {
    let align = n === 1 ? 4 : n === 2 ? 8 : 16;
    if (n < 1 || n > 6) throw new Error(`a uniform field of ${n} values is not supported (1–6)`);
    if (previous === 5 || previous === 6) align = 16;
    maxAlign = Math.max(maxAlign, align);
    at = Math.ceil(at / align) * align;
    offsets.push(at);
    at += 4 * n;
    previous = n;
  }
  return { offsets, size: Math.ceil(at / maxAlign) * maxAlign };
}

/** The uniform fields tfjs 4.22's recordAndSubmit makes for a program, in its order (an empty field holds one value). */
export function uniformFields(program: Pick<LeanProgram, 'size' | 'outputShape' | 'outputComponent'>, output: TensorRef, inputs: TensorRef[], programDefinedUniform?: UniformEntry[]): UniformEntry[] {
  const fields: UniformEntry[] = [
    { type: 'float32', data: [NaN] },
    { type: 'float32', data: [Infinity] },
  ];
  for (const t of [...inputs, output]) fields.push({ type: 'int32', data: t.shape }, { type: 'int32', data: strides(t.shape) });
  if (program.size) {
    const n = program.outputShape.reduce((a, b) => a * b, 1);
    fields.push({ type: 'int32', data: [program.outputComponent ? n / program.outputComponent : n] });
  }
  if (programDefinedUniform) fields.push(...programDefinedUniform);
  return fields.map((f) => (f.data.length === 0 ? { ...f, data: [1] } : f));
}

/** Writes the fields at their offsets, `base` bytes into the views' buffer (tfjs' rule: float32 unless int32 or uint32). */
export function writeUniforms(fields: UniformEntry[], offsets: number[], views: { f32: Float32Array; i32: Int32Array; u32: Uint32Array }, base: number): void {
  fields.forEach((f, i) => {
    const at = (base + offsets[i]) / 4;
    const view = f.type === 'int32' ? views.i32 : f.type === 'uint32' ? views.u32 : views.f32;
    for (let k = 0; k < f.data.length; k++) view[at + k] = f.data[k];
  });
}

function strides(shape: number[]): number[] {
  const s = new Array<number>(Math.max(shape.length - 1, 0));
  let acc = 1;
  for (let i = shape.length - 1; i > 0; i--) {
    acc *= shape[i];
    s[i - 1] = acc;
  }
  return s;
}

const installed = new WeakSet<object>();

/**
 * Whether a program may have several outputs now: the lean path is installed on the running backend, switched on,
 * and not handing dispatches to tfjs (tf.time). tfjs' own path binds only `result`, so a kernel with extra outputs
 * must fall back to its single-output form when this is false.
 */
export function multiOutputReady(backend: object): boolean {
  return installed.has(backend) && webgpuHostTuning.leanDispatch && (backend as { activeTimers?: unknown }).activeTimers == null;
}
/** Dispatches recorded by the lean path, those it handed to tfjs' own (while switched on), and those of its own whose
 *  uniforms took more than one slot, since the start. */
export const leanDispatchStats = { lean: 0, fallback: 0, wide: 0 };

/** Replaces backend.recordAndSubmit with the lean path (once per backend). Returns whether it did. */
export function installLeanDispatch(backend: DispatchBackend): boolean {
  if (installed.has(backend)) return true;
  const needed = ['recordAndSubmit', 'submitQueue', 'endComputePassEncoder', 'ensureCommandEncoderReady', 'tensorToBinding'] as const;
  if (needed.some((m) => typeof backend[m] !== 'function') || !backend.device?.createBindGroup || !backend.queue?.writeBuffer) return false;
  installed.add(backend);
  const original = backend.recordAndSubmit.bind(backend);
  const submit = backend.submitQueue.bind(backend);
  const slot = Math.max(256, backend.device.limits.minUniformBufferOffsetAlignment ?? 256);
  const layouts = new WeakMap<object, unknown>();
  let slots = 0;
  let ring: unknown;
  let host = new ArrayBuffer(0);
  let f32 = new Float32Array(host);
  let i32 = new Int32Array(host);
  let u32 = new Uint32Array(host);
  let used = 0;

  backend.submitQueue = () => {
    if (used > 0) {
      backend.queue.writeBuffer(ring, 0, host, 0, used * slot);
      used = 0;
    }
    submit();
  };

  backend.recordAndSubmit = (program, output, inputs, programDefinedUniform) => {
    if (!webgpuHostTuning.leanDispatch || backend.activeTimers != null || program.pixelsOpType != null || program.pipeline instanceof Promise) {
      if (program.extraOutputs?.length) throw new Error('a program with several outputs was recorded off the lean dispatch path (check multiOutputReady() first)');
      if (webgpuHostTuning.leanDispatch) leanDispatchStats.fallback++;
      return original(program, output, inputs, programDefinedUniform);
    }
    const fields = uniformFields(program, output, inputs, programDefinedUniform);
    const { offsets, size } = uniformLayout(fields.map((f) => f.data.length));
    const need = Math.ceil(size / slot); // slots this dispatch's uniforms take

    if (slots !== leanDispatchSlots.slots) {
      // (re)made between submissions only: nothing recorded refers to the old buffer once `used` is 0
      if (used > 0) {
        backend.endComputePassEncoder();
        backend.submitQueue();
      }
      slots = Math.max(1, Math.floor(leanDispatchSlots.slots));
      (ring as { destroy?: () => void } | undefined)?.destroy?.();
      ring = backend.device.createBuffer({ size: slots * slot, usage: GPU_UNIFORM | GPU_COPY_DST });
      host = new ArrayBuffer(slots * slot);
      [f32, i32, u32] = [new Float32Array(host), new Int32Array(host), new Uint32Array(host)];
    }
    if (need > slots) {
      if (program.extraOutputs?.length) throw new Error(`a program with several outputs has ${size} bytes of uniforms, more than the ${slots * slot} of the lean path's slots`);
      leanDispatchStats.fallback++;
      return original(program, output, inputs, programDefinedUniform);
    }
    if (used + need > slots) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    const base = used * slot;
    writeUniforms(fields, offsets, { f32, i32, u32 }, base);
    used += need;
    if (need > 1) leanDispatchStats.wide++;

    const pipeline = program.pipeline as { getBindGroupLayout(i: number): unknown };
    let layout = layouts.get(pipeline);
    if (layout === undefined) {
      layout = pipeline.getBindGroupLayout(0);
      layouts.set(pipeline, layout);
    }
    const resources = [output, ...inputs].map((t) => backend.tensorToBinding(t));
    for (const t of inputs) backend.commandQueueOwnedIds.add(t.dataId);
    backend.commandQueueOwnedIds.add(output.dataId);
    const entries = resources.map((resource, binding) => ({ binding, resource }));
    entries.push({ binding: entries.length, resource: { buffer: ring, offset: base, size } });
    for (const t of program.extraOutputs ?? []) {
      entries.push({ binding: entries.length, resource: backend.tensorToBinding(t) });
      backend.commandQueueOwnedIds.add(t.dataId);
    }
    const group = backend.device.createBindGroup({ layout, entries });
    backend.ensureCommandEncoderReady();
    backend.computePassEncoder ??= backend.commandEncoder!.beginComputePass({});
    const pass = backend.computePassEncoder;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(program.dispatch[0], program.dispatch[1], program.dispatch[2]);
    backend.dispatchCountInPass++;
    leanDispatchStats.lean++;
    if ((tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE') as number) <= backend.dispatchCountInPass) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
  };
  return true;
}
