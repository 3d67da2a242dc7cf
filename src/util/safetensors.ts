/**
 * Reads and writes the safetensors format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian u64 header length N, N bytes of UTF-8 JSON describing each tensor, then the raw data
 * buffer that the JSON's `data_offsets` index into.
 *
 * Checkpoints come from the internet, so every field of the header is checked before it is used: no
 * allocation, slice or typed-array view is sized by a number that has not first been compared with the
 * file's actual length. Every failure is a HeadlensError naming the file and the problem.
 */
import { HeadlensError } from '../errors.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface TensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  /** [begin, end) in bytes, relative to the start of the data buffer (not of the file). */
  dataOffsets: [number, number];
}

export interface SafetensorsFile {
  /** File path or label, used in error messages. */
  source: string;
  metadata: Record<string, string>;
  /** Tensor names in header order. */
  names: string[];
  /** Throws a HeadlensError naming the tensor and the file if absent. */
  info(name: string): TensorInfo;
  /** Any dtype as float32, always a fresh copy (never a view into the file's bytes). */
  float32(name: string): Float32Array;
  /** Integer and bool dtypes as int32; I64 values outside the int32 range are an error. */
  int32(name: string): Int32Array;
}

/** The Rust library's limit; a larger header is a corrupt length field, not a real checkpoint. */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

const METADATA_KEY = '__metadata__';

// Typed-array views read in host byte order; the fast paths below are only valid where that is the
// file's little-endian order (every platform Node and browsers ship on, but checked rather than assumed).
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// fatal: invalid UTF-8 must be an error, not silently replaced; ignoreBOM: a BOM is kept so that
// JSON.parse rejects it, as serde_json does in the Rust reader.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

type Fail = (problem: string, fix?: string) => never;

export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  return readSafetensors({ byteLength: bytes.byteLength, read: (offset, length) => bytes.subarray(offset, offset + length) }, source);
}

/**
 * Where a safetensors file's bytes come from: the whole file in memory (parseSafetensors), or a file read a
 * range at a time (src/loading/checkpoint_files.ts), so that a 10 GB shard is never held whole: only the
 * header at open and one tensor's bytes per read.
 */
export interface ByteSource {
  byteLength: number;
  /** `length` bytes from `offset` (both already checked against byteLength). A view unless `fresh`. */
  read(offset: number, length: number): Uint8Array;
  /**
   * `read` returns a new buffer each call, owned by the caller: tensor data is then used in place where its
   * alignment allows, instead of being copied once more (a view into a file held in memory is always copied).
   */
  fresh?: boolean;
}

/** parseSafetensors over any ByteSource: the header is read and checked at once, each tensor's bytes when asked for. */
export function readSafetensors(src: ByteSource, source: string): SafetensorsFile {
  const fail: Fail = (problem, fix) => {
    throw new HeadlensError(`${source}: not a valid safetensors file: ${problem}`, fix);
  };

  if (src.byteLength < 8) fail(`it is ${src.byteLength} bytes long, shorter than the 8-byte header length`);
  const lengthBytes = src.read(0, 8);
  const view = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8);
  // read as BigInt: a corrupt u64 can exceed 2^53 and must not round to something plausible
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    fail(`the header length field says ${headerLength} bytes, more than the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (headerLength > BigInt(src.byteLength - 8)) {
    fail(`the header length field says ${headerLength} bytes but only ${src.byteLength - 8} follow it`,
      'the file is probably truncated; download it again');
  }
  const headerEnd = 8 + Number(headerLength);
  const dataLength = src.byteLength - headerEnd;

  let text = '';
  try {
    text = UTF8.decode(src.read(8, headerEnd - 8));
  } catch {
    fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');
  const entries = header as Record<string, unknown>;

  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const key of keys) {
    // JSON.parse keeps the last of two equal keys; a reader that picked the first could see other weights
    if (seen.has(key)) fail(`the header names "${key}" twice`);
    seen.add(key);
  }

  const metadata = readMetadata(entries[METADATA_KEY], fail);
  const names = keys.filter((k) => k !== METADATA_KEY);
  const infos = new Map<string, TensorInfo>();
  for (const name of names) infos.set(name, readTensorInfo(name, entries[name], dataLength, fail));
  checkNoOverlap(infos, fail);

  const infoOf = (name: string): TensorInfo => {
    const info = infos.get(name);
    if (!info) {
      throw new HeadlensError(`${source} has no tensor named "${name}"`,
        `it has ${infos.size} tensors${infos.size ? `, e.g. "${names.slice(0, 3).join('", "')}"` : ''}`);
    }
    return info;
  };
  const bytesOf = (info: TensorInfo): Uint8Array => src.read(headerEnd + info.dataOffsets[0], info.dataOffsets[1] - info.dataOffsets[0]);

  return {
    source,
    metadata,
    names,
    info: (name) => {
      const info = infoOf(name);
      return { dtype: info.dtype, shape: [...info.shape], dataOffsets: [...info.dataOffsets] };
    },
    float32: (name) => {
      const info = infoOf(name);
      return toFloat32(info.dtype, bytesOf(info), src.fresh ?? false);
    },
    int32: (name) => {
      const info = infoOf(name);
      if (info.dtype === 'F64' || info.dtype === 'F32' || info.dtype === 'F16' || info.dtype === 'BF16') {
        throw new HeadlensError(`${source}: tensor "${name}" is ${info.dtype}, not an integer dtype`, 'read it with float32()');
      }
      const out = toInt32(info.dtype, bytesOf(info), src.fresh ?? false);
      if (typeof out === 'number') {
        throw new HeadlensError(
          `${source}: tensor "${name}" is I64 and element ${out} does not fit in int32`,
          'headlens reads integer tensors (token ids) as int32; values this large are not token ids');
      }
      return out;
    },
  };
}

function readMetadata(raw: unknown, fail: Fail): Record<string, string> {
  const metadata: Record<string, string> = {};
  // null is accepted because the Rust reader (an Option in serde) reads it as "no metadata"
  if (raw === undefined || raw === null) return metadata;
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(`"${METADATA_KEY}" is not an object of strings`);
  for (const [key, value] of Object.entries(raw as object)) {
    if (typeof value !== 'string') fail(`"${METADATA_KEY}"."${key}" is ${describe(value)}, not a string`);
    // defineProperty: a key named "__proto__" must become data, not change the object's prototype
    Object.defineProperty(metadata, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return metadata;
}

function readTensorInfo(name: string, raw: unknown, dataLength: number, fail: Fail): TensorInfo {
  const where = `tensor "${name}"`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(`${where} is ${describe(raw)}, not an object`);
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;

  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
    fail(`${where} has dtype ${describe(dtype)}; headlens reads ${Object.keys(DTYPE_BYTES).join(', ')}`);
  }
  const dt = dtype as SafetensorsDType;

  if (!Array.isArray(shape)) fail(`${where} has shape ${describe(shape)}, not an array`);
  for (const dim of shape as unknown[]) {
    if (!isCount(dim)) fail(`${where} has shape ${describe(shape)}; each dimension must be a non-negative integer`);
  }
  const dims = shape as number[];

  if (!Array.isArray(offsets) || offsets.length !== 2 || !isCount(offsets[0]) || !isCount(offsets[1])) {
    fail(`${where} has data_offsets ${describe(offsets)}; expected [begin, end] as non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`${where} has data_offsets [${begin}, ${end}] with begin after end`);
  if (end > dataLength) {
    fail(`${where} ends at byte ${end} of the data buffer, which is only ${dataLength} bytes long`,
      'the file is probably truncated; download it again');
  }

  // Compared with the byte span already known to fit the file, so the product cannot reach the point
  // where float multiplication loses precision: a dimension of 0 is checked first, then growth stops early.
  const span = end - begin;
  const elementBytes = DTYPE_BYTES[dt];
  let bytesNeeded = dims.includes(0) ? 0 : elementBytes;
  for (const dim of dims) {
    if (bytesNeeded > span) break;
    bytesNeeded *= dim;
  }
  if (bytesNeeded !== span) {
    fail(`${where} has shape [${dims.join(', ')}] of ${dt} but data_offsets [${begin}, ${end}] span ${span} bytes`);
  }
  return { dtype: dt, shape: [...dims], dataOffsets: [begin, end] };
}

/** The format allows gaps between tensors but not shared bytes: one write would change two tensors. */
function checkNoOverlap(infos: Map<string, TensorInfo>, fail: Fail): void {
  // empty tensors occupy no bytes, so they cannot overlap anything wherever their offsets point
  const ranges = [...infos].filter(([, i]) => i.dataOffsets[1] > i.dataOffsets[0]);
  ranges.sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0]);
  for (let i = 1; i < ranges.length; i++) {
    const [prevName, prev] = ranges[i - 1];
    const [name, info] = ranges[i];
    if (info.dataOffsets[0] < prev.dataOffsets[1]) {
      fail(`tensors "${prevName}" [${prev.dataOffsets.join(', ')}] and "${name}" [${info.dataOffsets.join(', ')}] share bytes`);
    }
  }
}

function toFloat32(dtype: SafetensorsDType, src: Uint8Array, fresh: boolean): Float32Array {
  const n = src.byteLength / DTYPE_BYTES[dtype];
  if (dtype === 'F32' && LITTLE_ENDIAN) return new Float32Array(alignedCopy(src, fresh, 4));
  const out = new Float32Array(n);
  if (dtype === 'F16' || dtype === 'BF16') {
    // written as bits so that NaN payloads and -0 survive exactly
    const bits = new Uint32Array(out.buffer);
    const halves = readU16(src, fresh);
    if (dtype === 'BF16') {
      for (let i = 0; i < n; i++) bits[i] = halves[i] << 16;
    } else {
      const table = f16Table();
      for (let i = 0; i < n; i++) bits[i] = table[halves[i]];
    }
    return out;
  }
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case 'F32': {
      // as bits, for the same reason as F16 (a JS number would quiet a signalling NaN)
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = view.getUint32(i * 4, true);
      break;
    }
    case 'F64': for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true); break;
    case 'I64': for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(i * 8, true)); break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true); break;
    case 'I16': for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true); break;
    case 'I8': for (let i = 0; i < n; i++) out[i] = view.getInt8(i); break;
    case 'U8': for (let i = 0; i < n; i++) out[i] = src[i]; break;
    case 'BOOL': for (let i = 0; i < n; i++) out[i] = src[i] ? 1 : 0; break;
  }
  return out;
}

/** The int32 data, or the index of the first I64 element that does not fit. */
function toInt32(dtype: SafetensorsDType, src: Uint8Array, fresh: boolean): Int32Array | number {
  const n = src.byteLength / DTYPE_BYTES[dtype];
  if (dtype === 'I32' && LITTLE_ENDIAN) return new Int32Array(alignedCopy(src, fresh, 4));
  const out = new Int32Array(n);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (dtype) {
    case 'I64':
      for (let i = 0; i < n; i++) {
        const v = view.getBigInt64(i * 8, true);
        if (v < -2147483648n || v > 2147483647n) return i;
        out[i] = Number(v);
      }
      break;
    case 'I32': for (let i = 0; i < n; i++) out[i] = view.getInt32(i * 4, true); break;
    case 'I16': for (let i = 0; i < n; i++) out[i] = view.getInt16(i * 2, true); break;
    case 'I8': for (let i = 0; i < n; i++) out[i] = view.getInt8(i); break;
    case 'U8': for (let i = 0; i < n; i++) out[i] = src[i]; break;
    case 'BOOL': for (let i = 0; i < n; i++) out[i] = src[i] ? 1 : 0; break;
  }
  return out;
}

/**
 * A copy into a fresh ArrayBuffer: the tensor may start at any byte of the file, and typed-array views
 * need their element alignment. `new Uint8Array(src)` copies; `Buffer#slice` would not.
 */
function alignedCopy(src: Uint8Array, fresh: boolean, align: number): ArrayBuffer {
  // a fresh read that fills its own buffer is the caller's already: no second copy of the tensor
  if (fresh && src.byteOffset === 0 && src.byteLength === src.buffer.byteLength && src.buffer instanceof ArrayBuffer && src.byteOffset % align === 0) return src.buffer;
  return new Uint8Array(src).buffer;
}

function readU16(src: Uint8Array, fresh: boolean): Uint16Array {
  if (LITTLE_ENDIAN) return new Uint16Array(alignedCopy(src, fresh, 2));
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const out = new Uint16Array(src.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint16(i * 2, true);
  return out;
}

let F16_TABLE: Uint32Array | undefined;

/** float32 bit patterns for all 65536 float16 values, built once (256 KiB) on the first F16 read. */
function f16Table(): Uint32Array {
  if (F16_TABLE) return F16_TABLE;
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = f16BitsToF32Bits(h);
  F16_TABLE = table;
  return table;
}

/** IEEE binary16 → binary32, exact for every input: subnormals are renormalised, inf/NaN keep their payload. */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exponent = (h >> 10) & 0x1f;
  let mantissa = h & 0x3ff;
  if (exponent === 0x1f) return (sign | 0x7f800000 | (mantissa << 13)) >>> 0;
  if (exponent === 0) {
    if (mantissa === 0) return sign >>> 0;
    // subnormal: value = mantissa * 2^-24; shift until the implicit leading 1 appears
    let e = -14;
    while ((mantissa & 0x400) === 0) {
      mantissa <<= 1;
      e--;
    }
    return (sign | ((e + 127) << 23) | ((mantissa & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
}

export function encodeSafetensors(
  tensors: Record<string, { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const names = Object.keys(tensors).sort(byCodePoint);
  const header: Record<string, unknown> = {};
  if (metadata) header[METADATA_KEY] = metadata;
  let offset = 0;
  for (const name of names) {
    const { dtype, shape, data } = tensors[name];
    if (name === METADATA_KEY) throw new HeadlensError(`cannot encode a tensor named "${METADATA_KEY}"`, 'the format reserves that key for metadata');
    if (dtype !== 'F32' && dtype !== 'I32') throw new HeadlensError(`cannot encode tensor "${name}" as ${String(dtype)}`, 'use F32 or I32');
    if (!shape.every((dim) => isCount(dim))) throw new HeadlensError(`tensor "${name}" has shape [${shape.join(', ')}]`, 'dimensions must be non-negative integers');
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) {
      throw new HeadlensError(`tensor "${name}" has shape [${shape.join(', ')}] (${count} elements) but ${data.length} values`);
    }
    header[name] = { dtype, shape, data_offsets: [offset, offset + data.length * 4] };
    offset += data.length * 4;
  }
  let json = JSON.stringify(header);
  // padded with spaces so the data buffer starts 8-byte aligned, as the Rust writer does
  const unpadded = new TextEncoder().encode(json);
  const headerBytes = new TextEncoder().encode(json + ' '.repeat((8 - (unpadded.byteLength % 8)) % 8));

  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const name of names) {
    const { data } = tensors[name];
    // copied as bits: reading a float32 into a JS number quiets a signalling NaN, changing its payload
    const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
    for (let i = 0; i < bits.length; i++, at += 4) view.setUint32(at, bits[i], true);
  }
  return out;
}

/**
 * The keys of the top-level object in `json`, in file order and with duplicates kept. Object.keys of
 * the parsed value cannot give this: it drops duplicates and moves integer-like keys ("0", "12") first.
 * Only called on text JSON.parse has accepted, so the scan can assume well-formed input.
 */
function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(json.slice(i, j + 1)) as string);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === '}' || c === ']') {
      depth--;
    } else if (c === ',' && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

/** Code point order, as Rust and Python sort strings; JS's default sort compares UTF-16 units instead. */
function byCodePoint(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0)! - y[i].codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

/** A short rendering of an untrusted value for an error message. */
function describe(x: unknown): string {
  let s: string;
  try {
    s = JSON.stringify(x) ?? String(x);
  } catch {
    s = String(x);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
