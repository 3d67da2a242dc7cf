/**
 * tokenizer.json through @huggingface/tokenizers, the implementation transformers.js uses, so the ids are
 * those of HF tokenizers (the parity tests check this) and no BPE is written here.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { HeadlensError } from '../errors.js';
import type { TextTokenizer } from '../model/tokenizer.js';

export class HFTokenizer implements TextTokenizer {
  private readonly tok: Tokenizer;
  private readonly idToToken: Map<number, string>;

  /** `json` is the parsed tokenizer.json; `config` tokenizer_config.json if there is one. */
  constructor(
    readonly json: Record<string, unknown>,
    readonly config: Record<string, unknown> = {},
  ) {
    try {
      this.tok = new Tokenizer(json, config);
    } catch (e) {
      throw new HeadlensError(`tokenizer.json could not be read: ${(e as Error).message}`);
    }
    const vocab = ((json.model as Record<string, unknown> | undefined)?.vocab ?? {}) as Record<string, number> | [string, number][];
    this.idToToken = new Map(Array.isArray(vocab) ? vocab.map(([t], i) => [i, t]) : Object.entries(vocab).map(([t, i]) => [i, t]));
    for (const a of (json.added_tokens ?? []) as { id: number; content: string }[]) this.idToToken.set(a.id, a.content);
  }

  /** Reads DIR/tokenizer.json (and tokenizer_config.json); undefined when the folder has none. */
  static fromDir(dir: string): HFTokenizer | undefined {
    const file = path.join(dir, 'tokenizer.json');
    if (!existsSync(file)) return undefined;
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    return new HFTokenizer(readJson(file), existsSync(cfgFile) ? readJson(cfgFile) : {});
  }

  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /**
   * Two texts joined by tokenizer.json's post-processor (BERT: [CLS] a [SEP] b [SEP], types 0 then 1; RoBERTa:
   * <s> a </s></s> b </s>), with the token types it assigns.
   */
  encodePair(a: string, b: string): { ids: number[]; typeIds: number[] } {
    const e = this.tok.encode(a, { text_pair: b, return_token_type_ids: true });
    return { ids: e.ids, typeIds: e.token_type_ids ?? e.ids.map(() => 0) };
  }

  decode(ids: number[]): string {
    return ids.length === 0 ? '' : this.tok.decode(ids);
  }

  /** The id of tokenizer.json's model.unk_token, if it names one in the vocabulary. */
  get unkId(): number | null {
    const unk = (this.json.model as Record<string, unknown> | undefined)?.unk_token;
    if (typeof unk !== 'string') return null;
    for (const [id, t] of this.idToToken) if (t === unk) return id;
    return null;
  }

  /** Number of ids (vocabulary plus added tokens): the model's d_vocab must be at least this. */
  get vocabSize(): number {
    return Math.max(...this.idToToken.keys()) + 1;
  }

  tokenText(id: number): string {
    // byte-level BPE spells a space as Ġ and Metaspace as ▁ (anywhere in a token: 'en▁'); show both as a plain space
    return (this.idToToken.get(id) ?? `<${id}>`).replace(/[Ġ▁]/g, ' ').replace(/Ċ/g, '\\n');
  }
}

function readJson(file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(readFileSync(file, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new HeadlensError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}
