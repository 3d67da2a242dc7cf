/**
 * Downloads a checkpoint from the HuggingFace hub into a local cache folder, which the local loader
 * then reads like any folder the user passed. Only safetensors are fetched: a pickle
 * (`pytorch_model.bin`) can run arbitrary code when unpickled, so it is refused with a way to convert.
 *
 * The cache is `${cacheDir}/models--{org}--{name}/{revision}/`. A finished folder carries a manifest
 * listing what it holds, so a second call reads it without a single request and works offline.
 * A revision such as `main` is therefore pinned at its first download: delete the folder (or pass a
 * commit hash as `revision`) to pick up newer weights.
 */
import { existsSync, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { HeadlensError } from '../errors.js';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Branch, tag or commit to download. Default `'main'`. */
  revision?: string;
  /** Where downloads are kept. Default `${HEADLENS_CACHE ?? ~/.cache/headlens}/hub`. */
  cacheDir?: string;
  /** Hub base URL. Default env `HF_ENDPOINT`, else `DEFAULT_HUB_ENDPOINT`. */
  endpoint?: string;
  /** Access token for gated or private repos, sent as `Authorization: Bearer`. Default env `HF_TOKEN`. */
  token?: string;
  /**
   * Called as each file downloads: once when it starts (bytes 0) and after every chunk. `total` is the
   * file's size when the hub says it (not for compressed bodies). Nothing is drawn here: the caller
   * (the `headlens` CLI draws a bar on a terminal) decides what to show.
   */
  onProgress?: (p: DownloadProgress) => void;
  /** The fetch to use; tests inject one. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** How far one file's download has come. */
export interface DownloadProgress {
  file: string;
  bytes: number;
  total: number | undefined;
}

/** Files a model folder may carry besides its weights; a repo without them is still loadable. */
const OPTIONAL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'generation_config.json',
];
const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_WEIGHTS_FILE = 'model.safetensors';
const PICKLE_WEIGHTS_FILE = 'pytorch_model.bin';
/** Written last, so its presence means every file it lists was downloaded completely. */
const MANIFEST_FILE = '.headlens-complete.json';

const LOCAL_FOLDER_FIX =
  "pass the path of a local folder holding config.json and model.safetensors instead, e.g. loadPretrained('./models/gpt2'), or set HF_ENDPOINT to a mirror";

// The hub's own repo-id grammar: each part starts with a letter or digit; at most one '/'.
const HUB_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
// Shard names come from a downloaded file, so they must not be able to escape the cache folder.
const PLAIN_FILE_NAME = /^[A-Za-z0-9_][\w.-]*$/;

/** True when `s` reads as a hub repo id (`gpt2`, `EleutherAI/pythia-70m`) and is not a local path. */
export function isHubId(s: string): boolean {
  return matchesHubGrammar(s) && !existsSync(s);
}

function matchesHubGrammar(s: string): boolean {
  return HUB_ID.test(s) && !s.includes('..');
}

/** Downloads `repoId` at `opts.revision` (or finds it in the cache) and returns the local folder. */
export async function downloadFromHub(repoId: string, opts: HubOptions = {}): Promise<string> {
  if (!matchesHubGrammar(repoId)) {
    throw new HeadlensError(
      `'${repoId}' is not a HuggingFace repo id`,
      "use 'name' or 'org/name', e.g. 'gpt2' or 'EleutherAI/pythia-70m', or pass a local folder",
    );
  }
  const revision = opts.revision ?? 'main';
  const dir = path.join(resolveCacheDir(opts), `models--${repoId.replace('/', '--')}`, revisionFolder(revision));
  const cached = await readManifest(dir);
  if (cached) return dir;

  const hub = new HubClient(repoId, revision, dir, opts);
  await mkdir(dir, { recursive: true });
  const files = ['config.json'];
  await hub.download('config.json', 'required');
  files.push(...(await downloadWeights(hub)));
  for (const file of OPTIONAL_FILES) {
    if (await hub.download(file, 'optional')) files.push(file);
  }
  await writeAtomically(path.join(dir, MANIFEST_FILE), JSON.stringify({ repoId, revision, files }, null, 2));
  return dir;
}

/** Fetches the sharded index and its shards, else the single file; returns the names it wrote. */
async function downloadWeights(hub: HubClient): Promise<string[]> {
  if (await hub.download(INDEX_FILE, 'optional')) {
    const shards = shardNames(hub, await readFile(path.join(hub.dir, INDEX_FILE), 'utf8'));
    for (const shard of shards) await hub.download(shard, 'required');
    return [INDEX_FILE, ...shards];
  }
  if (await hub.download(SINGLE_WEIGHTS_FILE, 'optional')) return [SINGLE_WEIGHTS_FILE];
  if (await hub.exists(PICKLE_WEIGHTS_FILE)) {
    throw new HeadlensError(
      `${hub.repoId} has only ${PICKLE_WEIGHTS_FILE}, and headlens loads only safetensors (a pickle can run code when loaded)`,
      `convert it in Python with AutoModelForCausalLM.from_pretrained('${hub.repoId}').save_pretrained('./models/${hub.repoId.split('/').pop()}', safe_serialization=True) and pass that folder, or pick a revision of the repo that has model.safetensors`,
    );
  }
  throw new HeadlensError(
    `${hub.repoId} has neither ${SINGLE_WEIGHTS_FILE} nor ${INDEX_FILE} at revision '${hub.revision}'`,
    'pick a repo or revision that has safetensors weights, or pass a local folder',
  );
}

function shardNames(hub: HubClient, indexText: string): string[] {
  const where = `${hub.repoId}/${INDEX_FILE}`;
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch {
    throw new HeadlensError(`${where} is not valid JSON`, 'delete the cached folder and download again');
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null) {
    throw new HeadlensError(`${where} has no weight_map`, 'the repo is malformed; pass a local folder instead');
  }
  const shards = [...new Set(Object.values(weightMap))];
  for (const shard of shards) {
    if (typeof shard !== 'string' || !PLAIN_FILE_NAME.test(shard) || shard.includes('..')) {
      throw new HeadlensError(
        `${where} names the shard ${JSON.stringify(shard)}, which is not a plain file name`,
        'the repo is malformed or hostile; pass a local folder instead',
      );
    }
  }
  return shards.sort();
}

/** Requests against one repo at one revision, writing into `dir`. */
class HubClient {
  private readonly endpoint: string;
  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;
  private readonly onProgress: ((p: DownloadProgress) => void) | undefined;

  constructor(
    readonly repoId: string,
    readonly revision: string,
    readonly dir: string,
    opts: HubOptions,
  ) {
    this.endpoint = (opts.endpoint ?? nonEmpty(process.env.HF_ENDPOINT) ?? DEFAULT_HUB_ENDPOINT).replace(/\/+$/, '');
    this.token = opts.token ?? nonEmpty(process.env.HF_TOKEN);
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.onProgress = opts.onProgress;
  }

  /**
   * Ensures `file` is in `dir`; returns false when the hub has no such file and it is optional.
   * The body goes to `file.part` and is renamed only once complete, so an interrupted download is
   * never mistaken for a finished one.
   */
  async download(file: string, need: 'required' | 'optional'): Promise<boolean> {
    const dest = path.join(this.dir, file);
    if (existsSync(dest)) return true;
    const res = await this.request(file, 'GET');
    if (!res.ok) await res.body?.cancel(); // frees the connection for the next request
    if (res.status === 404 && need === 'optional') return false;
    this.throwUnlessOk(res, file);
    const part = `${dest}.part`;
    try {
      await this.streamToFile(res, file, part);
      await rename(part, dest);
    } catch (err) {
      await rm(part, { force: true });
      if (err instanceof HeadlensError) throw err;
      throw new HeadlensError(
        `downloading ${this.repoId}/${file} was interrupted (${describe(err)})`,
        'run again to retry the download, or pass a local folder holding config.json and model.safetensors',
      );
    }
    return true;
  }

  /** Whether the hub has `file`, without downloading it. */
  async exists(file: string): Promise<boolean> {
    const res = await this.request(file, 'HEAD');
    if (res.status === 404) return false;
    this.throwUnlessOk(res, file);
    return true;
  }

  private async request(file: string, method: 'GET' | 'HEAD'): Promise<Response> {
    const url = `${this.endpoint}/${this.repoId}/resolve/${encodeURIComponent(this.revision)}/${file}`;
    const headers: Record<string, string> = {};
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    try {
      return await this.fetch(url, { method, headers });
    } catch (err) {
      throw this.unreachable(file, err);
    }
  }

  private throwUnlessOk(res: Response, file: string): void {
    if (res.ok) return;
    const where = `${this.repoId}/${file} (revision '${this.revision}')`;
    // The hub answers 401 rather than 404 for a missing repo when no token is sent, so as not to reveal
    // private repos; its x-error-code header tells the two apart when present.
    const code = res.headers.get('x-error-code');
    if (code === 'RevisionNotFound') {
      throw new HeadlensError(`${this.repoId} has no revision '${this.revision}'`, "check the branch, tag or commit, or leave revision as 'main'");
    }
    if (code === 'RepoNotFound' || (res.status === 404 && file === 'config.json')) {
      throw new HeadlensError(
        `no such model on the hub: ${this.repoId} (fetching ${file} from ${this.endpoint} answered ${res.status})`,
        'check the id, or pass a local folder holding config.json and model.safetensors',
      );
    }
    if (res.status === 401 || res.status === 403) {
      throw new HeadlensError(
        `${where} answered ${res.status}: the repo is gated or private`,
        'set HF_TOKEN to an access token of an account that has accepted the model licence, and check the id',
      );
    }
    throw new HeadlensError(
      `downloading ${where} from ${this.endpoint} failed with HTTP ${res.status}`,
      'try again later, or set HF_ENDPOINT to a mirror, or pass a local folder',
    );
  }

  private unreachable(file: string, err: unknown): HeadlensError {
    return new HeadlensError(
      `the hub at ${this.endpoint} could not be reached while downloading ${this.repoId}/${file} (${describe(err)})`,
      LOCAL_FOLDER_FIX,
    );
  }

  private async streamToFile(res: Response, file: string, part: string): Promise<void> {
    // With a content-encoding, content-length counts compressed bytes, not the bytes we write.
    const length = res.headers.get('content-encoding') ? null : res.headers.get('content-length');
    const total = length === null || !Number.isFinite(Number(length)) ? undefined : Number(length);
    const report = this.onProgress;
    report?.({ file, bytes: 0, total });
    let written = 0;
    if (res.body === null) {
      await writeFile(part, new Uint8Array(0));
    } else {
      const body = Readable.fromWeb(res.body as unknown as NodeReadableStream<Uint8Array>);
      await pipeline(
        body,
        async function* count(chunks: AsyncIterable<Uint8Array>) {
          for await (const chunk of chunks) {
            written += chunk.length;
            report?.({ file, bytes: written, total });
            yield chunk;
          }
        },
        createWriteStream(part),
      );
    }
    if (total !== undefined && written !== total) {
      throw new HeadlensError(
        `downloading ${this.repoId}/${file} stopped after ${written} of ${total} bytes`,
        'run again to retry the download',
      );
    }
  }
}

function resolveCacheDir(opts: HubOptions): string {
  if (opts.cacheDir) return opts.cacheDir;
  return path.join(nonEmpty(process.env.HEADLENS_CACHE) ?? path.join(os.homedir(), '.cache', 'headlens'), 'hub');
}

/** A revision such as `refs/pr/1` becomes one safe folder name (`refs_pr_1`). */
function revisionFolder(revision: string): string {
  return revision.replace(/[^\w.-]/g, '_').replace(/^\.+/, (dots) => '_'.repeat(dots.length)) || '_';
}

/** The files a finished download holds, or undefined unless the folder is complete. */
async function readManifest(dir: string): Promise<string[] | undefined> {
  let files: unknown;
  try {
    files = (JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8')) as { files?: unknown }).files;
  } catch {
    return undefined;
  }
  if (!Array.isArray(files) || !files.every((f) => typeof f === 'string' && existsSync(path.join(dir, f)))) {
    return undefined;
  }
  return files as string[];
}

async function writeAtomically(file: string, text: string): Promise<void> {
  await writeFile(`${file}.part`, text);
  await rename(`${file}.part`, file);
}

/** Node's fetch hides the useful part (ECONNREFUSED, ENOTFOUND) in `cause`. */
function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } } | null;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
