/** `headlens explore`: the live head explorer, served on this machine or written as a static folder. */
import path from 'node:path';
import { z } from 'zod';
import { HeadlensError } from '../errors.js';
import { isEncoder } from '../model/config.js';
import { readModelConfig, resolveModelDir, ZOO_DIR, zooModels } from '../loading/load.js';
import { exportExplore, serveExplore, type SiteOptions } from '../viz/explore/site.js';
import { defineCommand, nonNegativeInt, option } from './options.js';

export const exploreCommand = defineCommand({
  summary: 'a page that loads a model in the browser: attention, ablation, patching, logit lens, DLA',
  options: {
    model: option(z.string().optional(), { description: "the model shown first: a folder or a shipped model's name (every shipped model is offered too)", value: 'M', default: 'toy-lm', example: 'toy-lm' }),
    port: option(nonNegativeInt().optional(), { description: 'the port to serve on (0: any free one)', value: 'P', default: '8321', example: '8321' }),
    host: option(z.string().optional(), { description: 'the address to listen on', value: 'H', default: '127.0.0.1', example: '127.0.0.1' }),
    export: option(z.string().optional(), { description: 'write the page, its script and the models to this folder instead of serving (any static host can serve it)', value: 'DIR', example: 'explore-site' }),
  },
  async run(v) {
    const site = await siteOptions(v.model ?? 'toy-lm');
    if (v.export) {
      const files = exportExplore(v.export, site);
      console.log(`wrote ${files.length} files to ${v.export}; serve that folder over http (the page fetches its model, so file:// will not do), e.g. python3 -m http.server -d ${v.export}`);
      return;
    }
    const { url } = await serveExplore({ ...site, port: v.port ?? 8321, host: v.host });
    console.log(`headlens explore: open ${url}?model=${encodeURIComponent(site.defaultModel!)} in a browser (Ctrl-C stops)`);
    await new Promise(() => {}); // serve until interrupted
  },
});

/**
 * The shipped decoders, plus `--model` if it is a folder, which becomes the default. The page reads next-token
 * logits (answer against wrong answer), so encoders (toy-bert) are left out of the list and refused by name.
 */
export async function siteOptions(model: string): Promise<SiteOptions> {
  const decoders = zooModels().filter((n) => !isEncoder(readModelConfig(path.join(ZOO_DIR, n)).cfg));
  const models: Record<string, string> = Object.fromEntries(decoders.map((n) => [n, path.join(ZOO_DIR, n)]));
  if (decoders.includes(model)) return { models, defaultModel: model };
  const dir = await resolveModelDir(model);
  if (isEncoder(readModelConfig(dir).cfg)) {
    throw new HeadlensError(`explore: ${model} is an encoder; the explorer compares next-token logits, which a masked-LM encoder does not compute`, `explore a decoder (${decoders.join(', ')}); read an encoder's patterns with runWithCache or headlens scan --task special-tokens`);
  }
  let name = path.basename(path.resolve(dir)).replace(/[^\w.-]/g, '_').replace(/^\./, '_');
  while (models[name] && path.resolve(models[name]) !== path.resolve(dir)) name += '_';
  return { models: { [name]: dir, ...models }, defaultModel: name };
}
