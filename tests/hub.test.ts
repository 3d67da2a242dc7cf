/**
 * The hub downloader against a loopback server that lays the committed fixtures out like
 * huggingface.co (`/:org/:name/resolve/:rev/:file`). Every fetch goes through `loopbackFetch`, which
 * refuses any host but 127.0.0.1, so no test can reach the network.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HeadlensError } from '../src/errors.js';
import { downloadFromHub, isHubId, type DownloadProgress, type HubOptions } from '../src/loading/hub.js';

const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'hf');
const GPT2 = path.join(FIXTURES, 'gpt2');
const SHARDED = path.join(FIXTURES, 'gpt2-sharded-f16');
const LOADED_FILES = ['config.json', 'model.safetensors', 'tokenizer.json'];
const SHARDS = [1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`);

/** What each repo serves: a folder of files, or one status for every request. */
type Repo = { files: Record<string, Buffer> } | { status: number };

function folder(dir: string, names: string[]): Record<string, Buffer> {
  return Object.fromEntries(names.map((n) => [n, readFileSync(path.join(dir, n))]));
}

const REPOS: Record<string, Repo> = {
  'fixtures/tiny-gpt2': { files: folder(GPT2, LOADED_FILES) },
  'fixtures/tiny-gpt2-sharded': {
    files: folder(SHARDED, ['config.json', 'tokenizer.json', 'model.safetensors.index.json', ...SHARDS]),
  },
  'fixtures/gated': { status: 401 },
  'fixtures/pickle-only': {
    files: { 'config.json': readFileSync(path.join(GPT2, 'config.json')), 'pytorch_model.bin': Buffer.from('pickle') },
  },
  'fixtures/truncated': {
    files: { 'config.json': readFileSync(path.join(GPT2, 'config.json')), 'model.safetensors': readFileSync(path.join(GPT2, 'model.safetensors')) },
  },
  'fixtures/escaping-index': {
    files: {
      'config.json': readFileSync(path.join(GPT2, 'config.json')),
      'model.safetensors.index.json': Buffer.from(JSON.stringify({ weight_map: { 'wte.weight': '../../evil.safetensors' } })),
    },
  },
};

interface Seen {
  method: string;
  path: string;
  authorization?: string;
}

let server: http.Server;
let endpoint: string;
let seen: Seen[] = [];
let cacheDir: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization });
    const m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/([^/]+)$/.exec(req.url!);
    const repo = m ? REPOS[m[1]] : undefined;
    if (repo && 'status' in repo) return void res.writeHead(repo.status).end();
    const body = repo?.files[m![3]];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    // Simulates a dropped connection: half the promised bytes, then the socket closes.
    if (m![1] === 'fixtures/truncated' && m![3] === 'model.safetensors') {
      return void res.write(body.subarray(0, body.length / 2), () => res.destroy());
    }
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  seen = [];
  cacheDir = mkdtempSync(path.join(os.tmpdir(), 'headlens-hub-'));
});

afterEach(() => {
  rmSync(cacheDir, { recursive: true, force: true });
});

const loopbackFetch: typeof fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.hostname !== '127.0.0.1') throw new Error(`test tried to reach ${url.host}`);
  return fetch(input, init);
};

function download(repoId: string, opts: HubOptions = {}): Promise<string> {
  return downloadFromHub(repoId, { endpoint, cacheDir, fetch: loopbackFetch, ...opts });
}

function visibleFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => !f.startsWith('.')).sort();
}

async function caught(p: Promise<unknown>): Promise<HeadlensError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HeadlensError);
  return err as HeadlensError;
}

describe('downloadFromHub', () => {
  it("downloadFromHub('fixtures/tiny-gpt2') fetches config, weights and tokenizer byte for byte", async () => {
    const dir = await download('fixtures/tiny-gpt2');
    expect(dir).toBe(path.join(cacheDir, 'models--fixtures--tiny-gpt2', 'main'));
    expect(visibleFiles(dir)).toEqual(LOADED_FILES);
    for (const f of LOADED_FILES) expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(GPT2, f)))).toBe(true);
    const paths = seen.map((s) => s.path);
    expect(paths[0]).toBe('/fixtures/tiny-gpt2/resolve/main/config.json');
    expect(paths).toContain('/fixtures/tiny-gpt2/resolve/main/model.safetensors');
    expect(paths).not.toContain('/fixtures/tiny-gpt2/resolve/main/pytorch_model.bin');
  });

  it("downloadFromHub('fixtures/tiny-gpt2-sharded') fetches the index and every shard it names", async () => {
    const dir = await download('fixtures/tiny-gpt2-sharded');
    expect(visibleFiles(dir)).toEqual(['config.json', 'model.safetensors.index.json', ...SHARDS, 'tokenizer.json'].sort());
    for (const f of SHARDS) expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(SHARDED, f)))).toBe(true);
    expect(seen.map((s) => s.path)).not.toContain('/fixtures/tiny-gpt2-sharded/resolve/main/model.safetensors');
  });

  it('downloadFromHub(id) a second time makes no request, so a cached model loads offline', async () => {
    const first = await download('fixtures/tiny-gpt2-sharded');
    seen = [];
    const offline: typeof fetch = () => Promise.reject(new Error('offline'));
    expect(await download('fixtures/tiny-gpt2-sharded', { fetch: offline })).toBe(first);
    expect(await download('fixtures/tiny-gpt2-sharded')).toBe(first);
    expect(seen).toEqual([]);
  });

  it('downloadFromHub(id) does not mistake a .part left by an interrupted download for a finished file', async () => {
    const dir = path.join(cacheDir, 'models--fixtures--tiny-gpt2', 'main');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'model.safetensors.part'), 'half a file');
    await download('fixtures/tiny-gpt2');
    expect(seen.map((s) => s.path)).toContain('/fixtures/tiny-gpt2/resolve/main/model.safetensors');
    expect(readFileSync(path.join(dir, 'model.safetensors')).equals(readFileSync(path.join(GPT2, 'model.safetensors')))).toBe(true);
    expect(readdirSync(dir).filter((f) => f.endsWith('.part'))).toEqual([]);
  });

  it('downloadFromHub(id) with a connection dropped mid-file throws and leaves no file that looks complete', async () => {
    const err = await caught(download('fixtures/truncated'));
    expect(err.message).toContain('fixtures/truncated/model.safetensors');
    const dir = path.join(cacheDir, 'models--fixtures--truncated', 'main');
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it("downloadFromHub(id, {revision: 'refs/pr/1'}) encodes the revision in the URL and keeps it one folder deep", async () => {
    const dir = await download('fixtures/tiny-gpt2', { revision: 'refs/pr/1' });
    expect(seen[0].path).toBe('/fixtures/tiny-gpt2/resolve/refs%2Fpr%2F1/config.json');
    expect(path.dirname(dir)).toBe(path.join(cacheDir, 'models--fixtures--tiny-gpt2'));
  });

  it('downloadFromHub(id, {token}) sends the token as a Bearer header', async () => {
    await download('fixtures/tiny-gpt2', { token: 'hf_secret' });
    expect(seen.length).toBeGreaterThan(0);
    for (const s of seen) expect(s.authorization).toBe('Bearer hf_secret');
  });

  it('downloadFromHub(missing id) throws a HeadlensError naming the id', async () => {
    const err = await caught(download('fixtures/no-such-model'));
    expect(err.message).toContain('fixtures/no-such-model');
    expect(err.message).toContain('no such model');
    expect(err.fix).toMatch(/local folder/);
  });

  it('downloadFromHub(gated id) throws a HeadlensError asking for HF_TOKEN', async () => {
    const err = await caught(download('fixtures/gated'));
    expect(err.message).toContain('fixtures/gated');
    expect(err.message).toMatch(/gated or private/);
    expect(err.fix).toContain('HF_TOKEN');
  });

  it('downloadFromHub(id) with an unreachable hub throws a HeadlensError that says to pass a local folder', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const err = await caught(download('fixtures/tiny-gpt2', { endpoint: `http://127.0.0.1:${port}` }));
    expect(err.message).toMatch(/could not be reached/);
    expect(err.message).toContain('fixtures/tiny-gpt2');
    expect(err.message).toContain("pass the path of a local folder holding config.json and model.safetensors instead, e.g. loadPretrained('./models/gpt2')");
  });

  it('downloadFromHub(pickle-only id) refuses pytorch_model.bin and says how to convert', async () => {
    const err = await caught(download('fixtures/pickle-only'));
    expect(err.message).toContain('pytorch_model.bin');
    expect(err.message).toContain('only safetensors');
    expect(err.fix).toContain('safe_serialization=True');
  });

  it('downloadFromHub(id) rejects an index whose shard names leave the cache folder', async () => {
    const err = await caught(download('fixtures/escaping-index'));
    expect(err.message).toContain('../../evil.safetensors');
    expect(seen.map((s) => s.path).some((p) => p.includes('evil'))).toBe(false);
  });

  it('downloadFromHub(id, {onProgress}) reports each file from 0 bytes to its size, and writes the same files', async () => {
    const reports: DownloadProgress[] = [];
    const dir = await download('fixtures/tiny-gpt2', { onProgress: (p) => reports.push(p) });
    expect(visibleFiles(dir)).toEqual(LOADED_FILES);
    const files = [...new Set(reports.map((r) => r.file))];
    expect(files).toEqual(expect.arrayContaining(LOADED_FILES));
    for (const file of files) {
      const mine = reports.filter((r) => r.file === file);
      expect(mine[0].bytes, file).toBe(0);
      const size = statSync(path.join(dir, file)).size;
      expect(mine.at(-1)!.bytes, file).toBe(size);
      for (const r of mine) if (r.total !== undefined) expect(r.total, file).toBe(size);
      for (let i = 1; i < mine.length; i++) expect(mine[i].bytes).toBeGreaterThanOrEqual(mine[i - 1].bytes);
    }
  });

  it("downloadFromHub('../escape') refuses an id outside the hub grammar without a request", async () => {
    await caught(download('../escape'));
    expect(seen).toEqual([]);
  });
});

describe('isHubId', () => {
  it('isHubId accepts hub ids and rejects paths', () => {
    expect(isHubId('gpt2')).toBe(true);
    expect(isHubId('EleutherAI/pythia-70m')).toBe(true);
    expect(isHubId('org/name.v2_x')).toBe(true);
    expect(isHubId('./models/gpt2')).toBe(false);
    expect(isHubId('/abs/gpt2')).toBe(false);
    expect(isHubId('a/b/c')).toBe(false);
    expect(isHubId('org/..')).toBe(false);
    expect(isHubId('org/a..b')).toBe(false);
    expect(isHubId('')).toBe(false);
  });

  it('isHubId(an existing local folder) is false even when it fits the grammar', () => {
    const local = path.relative(process.cwd(), path.dirname(FIXTURES)); // 'tests/fixtures' from the repo root
    expect(local).toMatch(/^[\w.-]+\/[\w.-]+$/);
    expect(isHubId(local)).toBe(false);
  });
});
