import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Random } from '../src/util/random.js';
import { HeadlensError } from '../src/errors.js';
import { MAX_HEADER_BYTES, encodeSafetensors, parseSafetensors, type SafetensorsFile } from '../src/util/safetensors.js';

// Checkpoints are downloaded from strangers, so a damaged or hostile file must end in a HeadlensError
// (which the CLI prints with a fix), never in a RangeError or TypeError from deep inside the reader.

const MUTATIONS = 20_000;
const HF = path.join(import.meta.dirname, 'fixtures', 'hf');

/** The project's seeded generator, so every failure can be replayed from its number. */
function mulberry32(seed: number): () => number {
  const r = new Random(seed);
  return () => r.next();
}

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];

function withHeader(text: string, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function split(bytes: Uint8Array): { header: Record<string, any>; text: string; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  return { header: JSON.parse(text), text, data: bytes.subarray(8 + n) };
}

/** One small file of every dtype the reader knows, with an empty tensor, a scalar and a gap. */
function everyDtype(): Uint8Array {
  const entries: [string, string, number[], number][] = [
    ['f64', 'F64', [3], 8], ['f16', 'F16', [2, 3], 2], ['bf16', 'BF16', [5], 2], ['i64', 'I64', [4], 8],
    ['i16', 'I16', [3], 2], ['i8', 'I8', [7], 1], ['u8', 'U8', [2, 2], 1], ['bool', 'BOOL', [3], 1],
    ['empty', 'F32', [0, 4], 4], ['scalar', 'I32', [], 4],
  ];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, dtype, shape, size] of entries) {
    const bytes = shape.reduce((a, b) => a * b, 1) * size;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes + 3; // a gap, so that data sits unaligned
  }
  const data = new Uint8Array(offset);
  const rng = mulberry32(7);
  for (let i = 0; i < data.length; i++) data[i] = int(rng, 256);
  return withHeader(JSON.stringify(header), data);
}

const BASES: [string, Uint8Array][] = [
  ['gpt2/reference.safetensors', fs.readFileSync(path.join(HF, 'gpt2', 'reference.safetensors'))],
  ['gpt2-sharded-f16/model-00004-of-00004.safetensors', fs.readFileSync(path.join(HF, 'gpt2-sharded-f16', 'model-00004-of-00004.safetensors'))],
  ['every dtype', everyDtype()],
  ['encoded', encodeSafetensors({
    a: { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
    ids: { dtype: 'I32', shape: [3], data: new Int32Array([5, -1, 7]) },
  }, { format: 'pt' })],
];

const HOSTILE_NUMBERS = [
  -1, -0, 0.5, 1e308, -1e308, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, Number.MAX_SAFE_INTEGER, MAX_HEADER_BYTES, 1e-7,
];
const HOSTILE_VALUES: unknown[] = [...HOSTILE_NUMBERS, null, true, '3', '', [], {}, [1, 2, 3], [[1]], { 0: 1 }];

/** A JSON edit of one tensor entry (or of the metadata), re-serialised with a correct length field. */
function editJson(rng: Rng, bytes: Uint8Array): [string, Uint8Array] {
  const { header, data } = split(bytes);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = pick(rng, names);
  const entry = header[name];
  const value = () => pick(rng, HOSTILE_VALUES);
  let what: string;
  switch (int(rng, 12)) {
    case 0: what = 'dtype'; entry.dtype = pick(rng, ['F8', 'f32', 'F32', 'I32', 'F16', 'BF16', 'F64', 'I64', 'U8', 'BOOL', 'I8', 'C64', 7, null]); break;
    case 1: what = 'shape entry'; if (entry.shape.length) entry.shape[int(rng, entry.shape.length)] = value(); else entry.shape.push(value()); break;
    case 2: what = 'shape length'; if (rng() < 0.5) entry.shape.push(pick(rng, [0, 1, 2, 2 ** 30])); else entry.shape.pop(); break;
    case 3: what = 'shape'; entry.shape = value(); break;
    case 4: what = 'offset'; entry.data_offsets[int(rng, 2)] = value(); break;
    case 5: what = 'offset shift'; entry.data_offsets[int(rng, 2)] += pick(rng, [-8, -4, -2, -1, 1, 2, 4, 8]); break;
    case 6: what = 'offsets'; entry.data_offsets = pick(rng, [value(), [0], [0, 4, 8], [entry.data_offsets[1], entry.data_offsets[0]]]); break;
    case 7: what = 'overlap'; entry.data_offsets = [...header[pick(rng, names)].data_offsets]; break;
    case 8: what = 'delete key'; delete entry[pick(rng, ['dtype', 'shape', 'data_offsets'])]; break;
    case 9: what = 'entry'; header[name] = value(); break;
    case 10: what = 'metadata'; header.__metadata__ = pick(rng, [value(), { step: 3 }, { a: null }, { a: 'b' }]); break;
    default: what = 'byte data'; entry.dtype = 'U8'; entry.shape = [entry.data_offsets[1] - entry.data_offsets[0]]; break;
  }
  return [`json ${what} of "${name}"`, withHeader(JSON.stringify(header), data)];
}

/** A textual edit of the header: the JSON may stop parsing, or parse to something surprising. */
function editText(rng: Rng, bytes: Uint8Array): [string, Uint8Array] {
  const { text, data } = split(bytes);
  const at = int(rng, text.length);
  const insert = pick(rng, ['"', '{', '}', '[', ']', ',', ':', '-', '9', 'e', '\\', '\u00e9', '\ud800', ' ', '', 'null', '1e999']);
  const cut = int(rng, 3);
  let edited = text.slice(0, at) + insert + text.slice(at + cut);
  if (rng() < 0.2) {
    // a duplicate of the first tensor's entry, which JSON.parse would silently resolve to the last
    const first = text.indexOf('{', 1);
    const end = text.indexOf('}', first) + 1;
    const key = text.slice(1, first - 1);
    edited = `{${key}:${text.slice(first, end)},${text.slice(1)}`;
  }
  return [`text edit at ${at}`, withHeader(edited, data)];
}

function mutate(rng: Rng, original: Uint8Array): [string, Uint8Array] {
  const bytes = new Uint8Array(original);
  const view = new DataView(bytes.buffer);
  const headerLength = Number(view.getBigUint64(0, true));
  switch (int(rng, 8)) {
    case 7: {
      // data bytes only: every value, NaNs and infinities included, must still read
      const count = 1 + int(rng, 64);
      for (let i = 0; i < count && bytes.length > 8 + headerLength; i++) {
        bytes[8 + headerLength + int(rng, bytes.length - 8 - headerLength)] = int(rng, 256);
      }
      return [`${count} data byte overwrites`, bytes];
    }
    case 0: {
      const flips = 1 + int(rng, 8);
      // half the flips land in the length field or header, where they change the most
      for (let i = 0; i < flips; i++) {
        const at = rng() < 0.5 ? int(rng, 8 + headerLength) : int(rng, bytes.length);
        bytes[at] ^= 1 << int(rng, 8);
      }
      return [`${flips} bit flips`, bytes];
    }
    case 1: {
      const count = 1 + int(rng, 16);
      for (let i = 0; i < count; i++) {
        bytes[int(rng, 8 + headerLength)] = pick(rng, [0, 0xff, 0x22, 0x7b, 0x7d, 0x2c, 0x3a, 0x5b, 0x5d, 0x2d, 0x39, 0x80, 0xc3, int(rng, 256)]);
      }
      return [`${count} byte overwrites`, bytes];
    }
    case 2: {
      const length = pick(rng, [0, 1, 7, 8, 9, 8 + headerLength - 1, 8 + headerLength, 8 + headerLength + 1, bytes.length - 1, int(rng, bytes.length)]);
      return [`truncation to ${length}`, bytes.slice(0, Math.max(0, length))];
    }
    case 3: {
      const value = pick(rng, [
        2n ** 64n - 1n, 2n ** 63n, 2n ** 53n + 1n, BigInt(MAX_HEADER_BYTES), BigInt(MAX_HEADER_BYTES) + 1n, 0n, 1n,
        BigInt(headerLength - 1), BigInt(headerLength + 1), BigInt(headerLength - 8), BigInt(headerLength + 8),
        BigInt(bytes.length - 8), BigInt(bytes.length - 7), BigInt(int(rng, bytes.length)),
      ]);
      view.setBigUint64(0, value < 0n ? 0n : value, true);
      return [`header length ${value}`, bytes];
    }
    case 4:
    case 5:
      return editJson(rng, original);
    default:
      return editText(rng, original);
  }
}

/** Reads everything the file offers, the way a loader would. */
function readAll(file: SafetensorsFile): void {
  for (const name of file.names) {
    const info = file.info(name);
    const values = file.float32(name);
    if (values.length !== info.shape.reduce((a, b) => a * b, 1)) throw new Error(`"${name}" read ${values.length} values for shape [${info.shape}]`);
    try {
      file.int32(name);
    } catch (e) {
      // float dtypes and out-of-range I64 refuse int32(); anything else is a reader bug
      if (!(e instanceof HeadlensError)) throw e;
    }
  }
}

describe('parseSafetensors under fuzzing', () => {
  it(`parseSafetensors of ${MUTATIONS} seeded mutations of real files either reads every tensor or throws a HeadlensError`, () => {
    const rng = mulberry32(0x5afe);
    let parsed = 0;
    let rejected = 0;
    const failures: string[] = [];
    const started = performance.now();
    for (let i = 0; i < MUTATIONS; i++) {
      const [baseName, base] = BASES[i % BASES.length];
      // one to three mutations stacked, each applied to the previous one's output
      let bytes = base;
      const steps: string[] = [];
      for (let k = 1 + int(rng, 3); k > 0; k--) {
        let step: string;
        try {
          [step, bytes] = mutate(rng, bytes);
        } catch {
          break; // the previous step left a header the JSON/text editors cannot split; test it as it is
        }
        steps.push(step);
      }
      try {
        readAll(parseSafetensors(bytes, baseName));
        parsed++;
      } catch (e) {
        if (e instanceof HeadlensError && e.message.includes(baseName)) rejected++;
        else failures.push(`#${i} ${baseName} after ${steps.join(', ')}: ${(e as Error)?.name}: ${(e as Error)?.message}`);
      }
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`safetensors fuzz: ${MUTATIONS} mutations, ${parsed} parsed, ${rejected} rejected with a HeadlensError, ${failures.length} other failures, ${seconds} s`);
    expect(failures.slice(0, 10)).toEqual([]);
    // a fuzzer that only ever produces garbage, or only harmless edits, tests little
    expect(parsed).toBeGreaterThan(MUTATIONS / 20);
    expect(rejected).toBeGreaterThan(MUTATIONS / 2);
  });
});
