/**
 * Finds and opens the safetensors weights in a model folder: either one `model.safetensors`, or
 * `model.safetensors.index.json` plus the shards its `weight_map` names. Either way the caller sees one
 * flat set of tensors.
 *
 * Files are read a tensor at a time: opening reads and checks each file's header only, and each tensor's
 * bytes are read from disk when it is asked for (`float32`), into a buffer that becomes its Float32Array
 * where the dtype allows. A 7B checkpoint's 5–10 GB shards are never held whole in host memory; loading
 * holds one tensor's bytes beyond what the backend keeps (tests/sharded_memory.test.ts bounds it).
 *
 * The index is as untrusted as the weights: a shard name such as `../../.ssh/id_rsa` must not make
 * headlens read outside the folder, so each name must be a plain file name inside it. Pickle checkpoints
 * (`pytorch_model.bin`) are never read, because unpickling can run arbitrary code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HeadlensError } from '../errors.js';
import { readSafetensors, type SafetensorsFile, type TensorInfo } from '../util/safetensors.js';

export interface CheckpointTensors {
  /** Tensor names: header order for a single file, `weight_map` order for a sharded one. */
  names: string[];
  has(name: string): boolean;
  /** `file` is the path of the file holding the tensor. */
  info(name: string): TensorInfo & { file: string };
  float32(name: string): Float32Array;
}

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';
const PICKLE_FILE = /\.(bin|pt|pth)$/;
const CONVERT_FIX =
  'convert it in Python with transformers: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)';

export function openCheckpoint(dir: string): CheckpointTensors {
  if (!isDirectory(dir)) {
    throw new HeadlensError(`checkpoint folder ${dir} does not exist or is not a folder`, 'pass the folder holding config.json and model.safetensors');
  }
  // the single file wins when both are present, as in transformers' from_pretrained
  const single = path.join(dir, SINGLE_FILE);
  if (fs.existsSync(single)) {
    const file = openSafetensorsFile(single);
    return fromShards(dir, new Map(file.names.map((name) => [name, file])));
  }
  const index = path.join(dir, INDEX_FILE);
  if (fs.existsSync(index)) return openSharded(dir, index);
  throw noSafetensors(dir);
}

function openSharded(dir: string, indexPath: string): CheckpointTensors {
  let index: unknown;
  try {
    index = JSON.parse(new TextDecoder().decode(readFile(indexPath)));
  } catch (e) {
    throw new HeadlensError(`${indexPath} is not valid JSON (${(e as Error).message})`, 'download the checkpoint again');
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new HeadlensError(`${indexPath} has no "weight_map" object`, 'download the checkpoint again');
  }
  const assigned = Object.entries(weightMap as Record<string, unknown>);
  if (assigned.length === 0) throw new HeadlensError(`${indexPath} lists no tensors in its "weight_map"`, 'download the checkpoint again');

  // names first, all of them, so that a hostile entry is refused before any file is opened
  for (const [tensor, shard] of assigned) checkShardName(dir, indexPath, tensor, shard);

  const shards = new Map<string, { file: SafetensorsFile; names: Set<string> }>();
  const fileOf = new Map<string, SafetensorsFile>();
  for (const [tensor, shard] of assigned as [string, string][]) {
    let opened = shards.get(shard);
    if (!opened) {
      const shardPath = path.join(dir, shard);
      if (!fs.existsSync(shardPath)) {
        throw new HeadlensError(`${indexPath} assigns "${tensor}" to ${shard}, which is not in ${dir}`,
          'the download is incomplete; download the checkpoint again');
      }
      const file = openSafetensorsFile(shardPath);
      opened = { file, names: new Set(file.names) };
      shards.set(shard, opened);
    }
    if (!opened.names.has(tensor)) {
      throw new HeadlensError(`${indexPath} assigns "${tensor}" to ${shard}, but that shard has no such tensor`,
        'the index and shards come from different saves; download the checkpoint again');
    }
    fileOf.set(tensor, opened.file);
  }
  return fromShards(dir, fileOf);
}

/** A shard name must be a plain file name directly in `dir`: no absolute path, separator or `..`. */
function checkShardName(dir: string, indexPath: string, tensor: string, shard: unknown): asserts shard is string {
  const refuse = (why: string): never => {
    throw new HeadlensError(`${indexPath} assigns "${tensor}" to ${JSON.stringify(shard)}, ${why}`,
      'shard names must be plain file names in the model folder; the index is malformed or hostile, so get the checkpoint from elsewhere');
  };
  if (typeof shard !== 'string' || shard === '') return refuse('which is not a file name');
  if (path.isAbsolute(shard) || path.win32.isAbsolute(shard)) refuse('an absolute path');
  // both separators on every platform: an index written for one OS is read on any
  if (/[/\\]/.test(shard)) refuse('a path with a folder separator');
  if (shard === '.' || shard === '..') refuse('not a file');
  if (shard.includes('\0')) refuse('a name containing a NUL byte');
  // belt and braces: whatever the checks above missed, the resolved path must sit directly in dir
  if (path.dirname(path.resolve(dir, shard)) !== path.resolve(dir)) refuse(`which resolves outside ${dir}`);
}

function fromShards(dir: string, fileOf: Map<string, SafetensorsFile>): CheckpointTensors {
  const fileFor = (name: string): SafetensorsFile => {
    const file = fileOf.get(name);
    if (!file) throw new HeadlensError(`checkpoint ${dir} has no tensor named "${name}"`, `it has ${fileOf.size} tensors`);
    return file;
  };
  return {
    names: [...fileOf.keys()],
    has: (name) => fileOf.has(name),
    info: (name) => {
      const file = fileFor(name);
      return { ...file.info(name), file: file.source };
    },
    float32: (name) => fileFor(name).float32(name),
  };
}

function noSafetensors(dir: string): HeadlensError {
  const looked = `looked for ${SINGLE_FILE} and ${INDEX_FILE}`;
  const pickles = fs.readdirSync(dir).filter((f) => PICKLE_FILE.test(f)).sort();
  if (pickles.length > 0) {
    return new HeadlensError(
      `${dir} has no safetensors weights (${looked}), only ${pickles.join(', ')}; headlens does not load pickle checkpoints, because unpickling can run arbitrary code`,
      CONVERT_FIX,
    );
  }
  return new HeadlensError(`${dir} has no safetensors weights (${looked})`, 'pass the folder a HuggingFace model was saved to, or a hub id');
}

/**
 * A safetensors file on disk, read lazily: the header now, each tensor's bytes when asked for (a positioned
 * read into a fresh buffer, the file opened for that read only, so no descriptor is left open).
 */
export function openSafetensorsFile(file: string): SafetensorsFile {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (e) {
    throw new HeadlensError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the path and its permissions');
  }
  const read = (offset: number, length: number): Uint8Array => {
    const out = new Uint8Array(new ArrayBuffer(length));
    let fd: number | undefined;
    try {
      fd = fs.openSync(file, 'r');
      for (let done = 0; done < length; ) {
        // readSync moves at most 2 GiB a call
        const n = fs.readSync(fd, out, done, Math.min(length - done, 2 ** 30), offset + done);
        if (n === 0) throw new Error(`the file ended at byte ${offset + done}; it was ${size} bytes when opened`);
        done += n;
      }
    } catch (e) {
      throw new HeadlensError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the file is complete and was not changed while loading');
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    return out;
  };
  return readSafetensors({ byteLength: size, read, fresh: true }, file);
}

function readFile(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new HeadlensError(`cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'check the path and its permissions');
  }
}

function isDirectory(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
