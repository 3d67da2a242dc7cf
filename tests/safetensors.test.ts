import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { headlensError } from './expect_error.js';
import { HeadlensError } from '../src/errors.js';
import { openCheckpoint } from '../src/loading/checkpoint_files.js';
import {
  MAX_HEADER_BYTES,
  encodeSafetensors,
  f16BitsToF32Bits,
  parseSafetensors,
  type SafetensorsFile,
} from '../src/util/safetensors.js';

// Written by Python's safetensors, so reading them checks this reader against an implementation nobody here wrote.
const HF = path.join(import.meta.dirname, 'fixtures', 'hf');
const FIXTURES = fs
  .readdirSync(HF)
  .flatMap((model) => fs.readdirSync(path.join(HF, model)).filter((f) => f.endsWith('.safetensors')).map((f) => path.join(model, f)))
  .sort();

function open(relative: string): SafetensorsFile {
  return parseSafetensors(fs.readFileSync(path.join(HF, relative)), relative);
}

/** A safetensors file with any header and data, bypassing encodeSafetensors' own checks. */
function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** The little-endian bytes of 16-bit values, as F16 and BF16 tensors store them. */
function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  values.forEach((v, i) => new DataView(out.buffer).setUint16(i * 2, v, true));
  return out;
}

function oneTensor(dtype: string, shape: number[], data: Uint8Array): SafetensorsFile {
  return parseSafetensors(rawSafetensors({ t: { dtype, shape, data_offsets: [0, data.length] } }, data), 'test.safetensors');
}

function bitsOf(values: Float32Array): number[] {
  return Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'headlens-safetensors-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});

describe('parseSafetensors on files written by Python', () => {
  it('finds the fixtures', () => {
    expect(FIXTURES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(FIXTURES)('parseSafetensors(%s) reads every tensor with as many values as its shape holds', (relative) => {
    const file = open(relative);
    expect(file.names.length).toBeGreaterThan(0);
    for (const name of file.names) {
      const { dtype, shape } = file.info(name);
      const values = file.float32(name);
      expect(values.length).toBe(shape.reduce((a, b) => a * b, 1));
      expect(values.every(Number.isFinite)).toBe(true);
      if (dtype === 'I32') expect(Array.from(file.int32(name))).toEqual(Array.from(values));
    }
  });

  it.each(FIXTURES.filter((f) => f.endsWith('model.safetensors') || /model-\d+/.test(f)))(
    'parseSafetensors(%s) has the dtype its folder name promises and torch format metadata',
    (relative) => {
      const file = open(relative);
      const expected = relative.includes('bf16') ? 'BF16' : relative.includes('f16') ? 'F16' : 'F32';
      expect(new Set(file.names.map((n) => file.info(n).dtype))).toEqual(new Set([expected]));
      expect(file.metadata).toEqual({ format: 'pt' });
    },
  );

  it.each(FIXTURES.filter((f) => f.endsWith('reference.safetensors')))(
    'parseSafetensors(%s) holds F32 activations and I32 input_ids within the vocabulary',
    (relative) => {
      const file = open(relative);
      const config = JSON.parse(fs.readFileSync(path.join(HF, path.dirname(relative), 'config.json'), 'utf8'));
      expect(file.info('input_ids').dtype).toBe('I32');
      const ids = file.int32('input_ids');
      expect(ids.every((id) => id >= 0 && id < config.vocab_size)).toBe(true);
      // the encoder fixtures (make_bert_fixtures.py) also hold their integer inputs: token types and the mask
      const ints = new Set(['input_ids', 'token_type_ids', 'attention_mask']);
      for (const name of file.names.filter((n) => ints.has(n))) expect(file.info(name).dtype, name).toBe('I32');
      for (const name of file.names.filter((n) => !ints.has(n))) expect(file.info(name).dtype, name).toBe('F32');
      expect(file.info('logits').shape.at(-1)).toBe(config.vocab_size);
    },
  );

  it('parseSafetensors(gpt2) gives wte and wpe the shapes config.json implies', () => {
    const file = open('gpt2/model.safetensors');
    const config = JSON.parse(fs.readFileSync(path.join(HF, 'gpt2', 'config.json'), 'utf8'));
    expect(file.info('transformer.wte.weight')).toEqual({
      dtype: 'F32',
      shape: [config.vocab_size, config.n_embd],
      dataOffsets: expect.any(Array),
    });
    expect(file.info('transformer.wpe.weight').shape).toEqual([config.n_positions, config.n_embd]);
    expect(file.info('transformer.h.0.attn.c_attn.weight').shape).toEqual([config.n_embd, 3 * config.n_embd]);
  });

  it('parseSafetensors keeps header order, which Python writes by dtype before name', () => {
    const file = open('gpt2/reference.safetensors');
    expect(file.names.at(-1)).toBe('input_ids');
    expect(file.names.indexOf('attentions.0')).toBe(0);
  });

  it('parseSafetensors reads BF16 layer norm weights as plausible float32 values', () => {
    const file = open('llama-mqa-tied-bias-bf16/model.safetensors');
    const norm = file.float32('model.norm.weight');
    expect(norm.length).toBe(file.info('model.norm.weight').shape[0]);
    expect(norm.every((v) => Math.abs(v) < 10)).toBe(true);
    // bf16 widened to f32 leaves the low 16 bits of every value zero
    expect(bitsOf(file.float32('model.embed_tokens.weight')).every((b) => (b & 0xffff) === 0)).toBe(true);
  });
});

describe('float16 and bfloat16 conversion', () => {
  it('float32() of F16 maps known bit patterns exactly', () => {
    const cases: [number, number][] = [
      [0x3c00, 1],
      [0xc000, -2],
      [0x3555, 0.333251953125],
      [0x7bff, 65504], // largest finite
      [0x0400, 2 ** -14], // smallest normal
      [0x0001, 2 ** -24], // smallest subnormal
      [0x03ff, 1023 * 2 ** -24], // largest subnormal
      [0x8001, -(2 ** -24)],
      [0x7c00, Infinity],
      [0xfc00, -Infinity],
      [0x0000, 0],
    ];
    const values = oneTensor('F16', [cases.length], u16le(cases.map(([h]) => h))).float32('t');
    expect(Array.from(values)).toEqual(cases.map(([, v]) => v));
  });

  it('float32() of F16 keeps -0 and NaN, with its payload', () => {
    const values = oneTensor('F16', [3], u16le([0x8000, 0x7e00, 0xfd01])).float32('t');
    expect(Object.is(values[0], -0)).toBe(true);
    expect(Number.isNaN(values[1])).toBe(true);
    expect(bitsOf(values).slice(1)).toEqual([0x7fc00000, 0xffa02000]);
  });

  it('f16BitsToF32Bits agrees with arithmetic decoding for all 65536 inputs', () => {
    const scratch = new Float32Array(1);
    const bits = new Uint32Array(scratch.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const exponent = (h >> 10) & 0x1f;
      const mantissa = h & 0x3ff;
      const expected =
        exponent === 0 ? sign * mantissa * 2 ** -24
        : exponent === 31 ? (mantissa ? NaN : sign * Infinity)
        : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
      bits[0] = f16BitsToF32Bits(h);
      if (!Object.is(scratch[0], expected)) expect.fail(`0x${h.toString(16)} gave ${scratch[0]}, expected ${expected}`);
    }
  });

  it('float32() of BF16 is the top 16 bits of float32', () => {
    const values = oneTensor('BF16', [7], u16le([0x3f80, 0xc040, 0x7f80, 0xff80, 0x0001, 0x8000, 0x7fc1])).float32('t');
    expect(Array.from(values.slice(0, 5))).toEqual([1, -3, Infinity, -Infinity, 2 ** -133]);
    expect(Object.is(values[5], -0)).toBe(true);
    expect(bitsOf(values)[6]).toBe(0x7fc10000);
  });
});

describe('reading the other dtypes', () => {
  function bytesOf(array: ArrayBufferView): Uint8Array {
    // little-endian hosts only, which is every host this suite runs on
    return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  }

  it('float32() of F64 rounds to the nearest float32', () => {
    const values = oneTensor('F64', [3], bytesOf(new Float64Array([0.1, -1e300, 2 ** -149]))).float32('t');
    expect(Array.from(values)).toEqual([Math.fround(0.1), -Infinity, 2 ** -149]);
  });

  it('int32() reads I64 within range and names the element that is not', () => {
    const ok = oneTensor('I64', [3], bytesOf(new BigInt64Array([-2147483648n, 0n, 2147483647n])));
    expect(Array.from(ok.int32('t'))).toEqual([-2147483648, 0, 2147483647]);
    const big = oneTensor('I64', [2], bytesOf(new BigInt64Array([1n, 2147483648n])));
    expect(headlensError(() => big.int32('t')).message).toMatch(/test\.safetensors.*"t".*element 1/);
    expect(Array.from(big.float32('t'))).toEqual([1, 2147483648]);
  });

  it('int32() reads I16, I8, U8 and BOOL', () => {
    expect(Array.from(oneTensor('I16', [2], bytesOf(new Int16Array([-32768, 7]))).int32('t'))).toEqual([-32768, 7]);
    expect(Array.from(oneTensor('I8', [2], bytesOf(new Int8Array([-128, 127]))).int32('t'))).toEqual([-128, 127]);
    expect(Array.from(oneTensor('U8', [2], new Uint8Array([0, 255])).int32('t'))).toEqual([0, 255]);
    expect(Array.from(oneTensor('BOOL', [3], new Uint8Array([0, 1, 1])).float32('t'))).toEqual([0, 1, 1]);
  });

  it('int32() of a float tensor is a HeadlensError pointing at float32()', () => {
    const file = oneTensor('F32', [1], bytesOf(new Float32Array([1.5])));
    expect(headlensError(() => file.int32('t')).fix).toMatch(/float32\(\)/);
  });

  it('float32() reads F32 data that sits at an odd byte offset', () => {
    // a 3-byte header puts the data at byte 11; the file itself starts at byte 1 of its ArrayBuffer
    const data = bytesOf(new Float32Array([1.5, -2, 3.25]));
    const header = JSON.stringify({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }) + '   ';
    const padded = new Uint8Array(1 + 8 + header.length + 12);
    padded.set(rawSafetensors(null, data, header), 1);
    const file = parseSafetensors(padded.subarray(1), 'odd');
    expect(Array.from(file.float32('t'))).toEqual([1.5, -2, 3.25]);
  });

  it('float32() returns a copy that does not change the file or later reads', () => {
    const bytes = fs.readFileSync(path.join(HF, 'gpt2', 'model.safetensors'));
    const file = parseSafetensors(bytes, 'gpt2');
    const first = file.float32('transformer.ln_f.weight');
    expect(first.buffer).not.toBe(bytes.buffer);
    const before = first[0];
    first[0] = 12345;
    expect(file.float32('transformer.ln_f.weight')[0]).toBe(before);
  });

  it('info() returns a copy the caller cannot use to change the file', () => {
    const file = open('gpt2/model.safetensors');
    file.info('transformer.wte.weight').shape[0] = 1;
    expect(file.info('transformer.wte.weight').shape[0]).toBe(257);
  });

  it('parseSafetensors accepts empty tensors, scalars and gaps between tensors', () => {
    const data = bytesOf(new Float32Array([7, 0, 9]));
    const file = parseSafetensors(
      rawSafetensors({
        empty: { dtype: 'F32', shape: [0, 5], data_offsets: [4, 4] },
        scalar: { dtype: 'F32', shape: [], data_offsets: [0, 4] },
        after_gap: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
      }, data),
      'mixed',
    );
    expect(file.float32('empty').length).toBe(0);
    expect(Array.from(file.float32('scalar'))).toEqual([7]);
    expect(Array.from(file.float32('after_gap'))).toEqual([9]);
  });
});

describe('encodeSafetensors', () => {
  const special = new Float32Array(new Uint32Array([
    0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc12345, 0x3f800000,
  ]).buffer);

  it('encodeSafetensors → parseSafetensors is bit-exact, NaN payloads and -0 included', () => {
    const ids = new Int32Array([-2147483648, -1, 0, 2147483647]);
    const bytes = encodeSafetensors(
      { special: { dtype: 'F32', shape: [2, 5], data: special }, ids: { dtype: 'I32', shape: [4], data: ids } },
      { format: 'pt', note: 'ünïcode' },
    );
    const file = parseSafetensors(bytes, 'roundtrip');
    expect(bitsOf(file.float32('special'))).toEqual(bitsOf(special));
    expect(Array.from(file.int32('ids'))).toEqual(Array.from(ids));
    expect(file.info('special')).toMatchObject({ dtype: 'F32', shape: [2, 5] });
    expect(file.metadata).toEqual({ format: 'pt', note: 'ünïcode' });
  });

  it('encodeSafetensors pads the header with spaces to a multiple of 8 and sorts names', () => {
    const one = new Float32Array([1]);
    const bytes = encodeSafetensors({ b: { dtype: 'F32', shape: [1], data: one }, a: { dtype: 'F32', shape: [1], data: one } });
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(header).toMatch(/^\{"a":.*\} *$/);
    expect(parseSafetensors(bytes, 'sorted').names).toEqual(['a', 'b']);
  });

  it.each(FIXTURES.filter((f) => f.endsWith('reference.safetensors')))(
    'encodeSafetensors of %s read back gives the same bits as the Python-written file',
    (relative) => {
      const original = open(relative);
      const tensors = Object.fromEntries(original.names.map((name) => {
        const { dtype, shape } = original.info(name);
        return [name, dtype === 'I32'
          ? { dtype: 'I32' as const, shape, data: original.int32(name) }
          : { dtype: 'F32' as const, shape, data: original.float32(name) }];
      }));
      const copy = parseSafetensors(encodeSafetensors(tensors), 'copy');
      expect([...copy.names].sort()).toEqual([...original.names].sort());
      for (const name of original.names) {
        expect(copy.info(name).shape).toEqual(original.info(name).shape);
        expect(bitsOf(copy.float32(name))).toEqual(bitsOf(original.float32(name)));
      }
    },
  );

  it('encodeSafetensors refuses data whose length does not match the shape', () => {
    headlensError(() => encodeSafetensors({ t: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } }));
  });
});

describe('parseSafetensors on broken files', () => {
  const t = (begin: number, end: number, shape = [(end - begin) / 4], dtype = 'F32') => ({ dtype, shape, data_offsets: [begin, end] });
  const data16 = new Uint8Array(16);

  /** Each case: a file, and a pattern the HeadlensError's message must match besides the file name. */
  const cases: [string, Uint8Array, RegExp][] = [
    ['a file shorter than 8 bytes', new Uint8Array(5), /5 bytes long/],
    ['a header length above the limit', (() => {
      const b = rawSafetensors({});
      new DataView(b.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES) + 1n, true);
      return b;
    })(), /limit/],
    ['a header length of 2^64 - 1', (() => {
      const b = rawSafetensors({});
      new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
      return b;
    })(), /18446744073709551615/],
    ['a header length past the end of the file', (() => {
      const b = rawSafetensors({});
      new DataView(b.buffer).setBigUint64(0, 3n, true);
      return b;
    })(), /only 2 follow/],
    ['a header that is not UTF-8', rawSafetensors(null, undefined, '{"\xff":1}').map((x, i) => (i === 10 ? 0xff : x)), /UTF-8/],
    ['a header that is not JSON', rawSafetensors(null, undefined, '{"a":'), /not valid JSON/],
    ['a header that is a JSON array', rawSafetensors([]), /not a JSON object/],
    ['an empty header', rawSafetensors(null, undefined, ''), /not valid JSON/],
    ['an unknown dtype', rawSafetensors({ x: t(0, 16, [16], 'F8') }, data16), /dtype "F8"/],
    ['a negative dimension', rawSafetensors({ x: t(0, 16, [-4]) }, data16), /non-negative integer/],
    ['a fractional dimension', rawSafetensors({ x: t(0, 16, [2.5]) }, data16), /non-negative integer/],
    ['a shape that is not an array', rawSafetensors({ x: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, data16), /shape 4/],
    ['missing data_offsets', rawSafetensors({ x: { dtype: 'F32', shape: [4] } }, data16), /data_offsets/],
    ['data_offsets with begin after end', rawSafetensors({ x: t(8, 4, [1]) }, data16), /begin after end/],
    ['data_offsets past the data buffer', rawSafetensors({ x: t(0, 20) }, data16), /only 16 bytes/],
    ['a data_offset above 2^53', rawSafetensors({ x: t(0, 2 ** 60, [1]) }, data16), /data_offsets/],
    ['a shape whose size does not match its bytes', rawSafetensors({ x: t(0, 16, [5]) }, data16), /span 16 bytes/],
    ['a shape whose product overflows', rawSafetensors({ x: t(0, 16, [2 ** 40, 2 ** 40, 2 ** 40]) }, data16), /span 16 bytes/],
    ['tensors sharing bytes', rawSafetensors({ x: t(0, 12), y: t(8, 16) }, data16), /"x".*"y".*share bytes/],
    ['metadata that is not a string map', rawSafetensors({ __metadata__: { step: 3 } }), /"__metadata__"."step" is 3/],
    ['a tensor entry that is not an object', rawSafetensors({ x: [1, 2] }), /tensor "x" is \[1,2\]/],
    ['a tensor named twice', rawSafetensors(null, data16, '{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'), /"x" twice/],
  ];

  it.each(cases)('parseSafetensors of %s is a HeadlensError naming the file and the problem', (_, bytes, problem) => {
    const error = headlensError(() => parseSafetensors(bytes, 'broken.safetensors'));
    expect(error.message).toContain('broken.safetensors');
    expect(error.message).toMatch(problem);
  });

  it('parseSafetensors of a truncated fixture says the file is probably truncated', () => {
    const bytes = fs.readFileSync(path.join(HF, 'gpt2', 'model.safetensors'));
    const error = headlensError(() => parseSafetensors(bytes.subarray(0, bytes.length - 1), 'cut.safetensors'));
    expect(error.message).toMatch(/cut\.safetensors.*transformer\.wte\.weight/);
    expect(error.fix).toMatch(/truncated/);
  });

  it('info() of a missing tensor names the tensor and the file', () => {
    const error = headlensError(() => open('gpt2/model.safetensors').info('lm_head.weight'));
    expect(error.message).toMatch(/gpt2\/model\.safetensors.*"lm_head\.weight"/);
  });

  it('names keeps file order for integer-like names, which JS objects would move first', () => {
    const data = new Uint8Array(12);
    const file = parseSafetensors(rawSafetensors({ b: t(0, 4), 10: t(4, 8), 2: t(8, 12) }, data, '{"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"10":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"2":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}'), 'order');
    expect(file.names).toEqual(['b', '10', '2']);
  });

  it('a tensor named __proto__ is an ordinary tensor', () => {
    const data = new Uint8Array(4);
    const file = parseSafetensors(rawSafetensors(null, data, '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'), 'proto');
    expect(file.names).toEqual(['__proto__']);
    expect(file.float32('__proto__').length).toBe(1);
  });
});

describe('openCheckpoint', () => {
  /** A model folder whose index maps one tensor to `shard`, plus a valid file one level up to tempt an escape. */
  function folderWithShard(shard: string): string {
    const parent = tempDir();
    const dir = path.join(parent, 'model');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    const valid = encodeSafetensors({ w: { dtype: 'F32', shape: [1], data: new Float32Array([1]) } });
    fs.writeFileSync(path.join(parent, 'x.safetensors'), valid);
    fs.writeFileSync(path.join(dir, 'x.safetensors'), valid);
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: { w: shard } }));
    return dir;
  }

  it('openCheckpoint(gpt2-sharded-f16) reads every tensor the index lists from the shard it names', () => {
    const dir = path.join(HF, 'gpt2-sharded-f16');
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    const checkpoint = openCheckpoint(dir);
    expect(checkpoint.names).toEqual(Object.keys(index.weight_map));
    let bytes = 0;
    for (const name of checkpoint.names) {
      const info = checkpoint.info(name);
      expect(info.file).toBe(path.join(dir, index.weight_map[name]));
      expect(info.dtype).toBe('F16');
      const values = checkpoint.float32(name);
      expect(values.length).toBe(info.shape.reduce((a, b) => a * b, 1));
      expect(values.every(Number.isFinite)).toBe(true);
      bytes += info.dataOffsets[1] - info.dataOffsets[0];
    }
    expect(bytes).toBe(index.metadata.total_size);
    expect(checkpoint.has('transformer.wte.weight')).toBe(true);
    expect(checkpoint.has('lm_head.weight')).toBe(false);
  });

  it('openCheckpoint(gpt2) reads the single model.safetensors', () => {
    const checkpoint = openCheckpoint(path.join(HF, 'gpt2'));
    expect(checkpoint.names).toHaveLength(28);
    expect(checkpoint.info('transformer.wte.weight').file).toBe(path.join(HF, 'gpt2', 'model.safetensors'));
    expect(headlensError(() => checkpoint.float32('lm_head.weight')).message).toContain('lm_head.weight');
  });

  it.each(['../x.safetensors', '/etc/passwd', 'sub/../../x.safetensors', '..\\x.safetensors', 'sub/x.safetensors', '..', 'C:\\x.safetensors'])(
    'openCheckpoint refuses the shard name %s before reading anything',
    (shard) => {
      const error = headlensError(() => openCheckpoint(folderWithShard(shard)));
      expect(error.message).toContain(JSON.stringify(shard));
      expect(error.message).toContain('"w"');
    },
  );

  it('openCheckpoint accepts a plain shard name in the folder', () => {
    expect(Array.from(openCheckpoint(folderWithShard('x.safetensors')).float32('w'))).toEqual([1]);
  });

  it('openCheckpoint names the tensor and shard when the shard is missing', () => {
    const error = headlensError(() => openCheckpoint(folderWithShard('model-00002-of-00002.safetensors')));
    expect(error.message).toMatch(/"w".*model-00002-of-00002\.safetensors/);
  });

  it('openCheckpoint names the tensor and shard when the shard lacks the tensor', () => {
    const dir = folderWithShard('x.safetensors');
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { w: 'x.safetensors', v: 'x.safetensors' } }));
    const error = headlensError(() => openCheckpoint(dir));
    expect(error.message).toMatch(/"v".*x\.safetensors.*no such tensor/);
  });

  it('openCheckpoint of a folder with only pytorch_model.bin refuses pickles and says how to convert', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'pytorch_model.bin'), 'not read');
    const error = headlensError(() => openCheckpoint(dir));
    expect(error.message).toMatch(/model\.safetensors.*model\.safetensors\.index\.json/);
    expect(error.message).toMatch(/pytorch_model\.bin.*pickle/);
    expect(error.fix).toMatch(/save_pretrained\(.*safe_serialization=True\)/);
  });

  it('openCheckpoint of an empty folder says which files it looked for', () => {
    const error = headlensError(() => openCheckpoint(tempDir()));
    expect(error.message).toMatch(/looked for model\.safetensors and model\.safetensors\.index\.json/);
    expect(error.message).not.toMatch(/pickle/);
  });

  it('openCheckpoint of a missing folder is a HeadlensError', () => {
    headlensError(() => openCheckpoint(path.join(tempDir(), 'nope')));
  });
});
