/**
 * What the model needs of a tokenizer. The model layer names only this interface; src/loading provides
 * the implementation (tokenizer.json through @huggingface/tokenizers).
 */
export interface TextTokenizer {
  /** `addSpecialTokens: false`: without what the post-processor adds (BERT's [CLS] … [SEP]); default true. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[]): string;
  /** The text of one token id, as the vocabulary spells it (for axis labels). */
  tokenText(id: number): string;
  /** The id unknown text becomes (WordPiece's [UNK]), where the tokenizer has one; byte-level BPE has none. */
  readonly unkId?: number | null;
  /** A pair of texts as the tokenizer's post-processor joins them ([CLS] a [SEP] b [SEP]) with its token types, where it can. */
  encodePair?(a: string, b: string): { ids: number[]; typeIds: number[] };
}
