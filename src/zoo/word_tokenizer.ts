/**
 * A word-level tokenizer.json for the toy zoo. @huggingface/tokenizers (the JS port headlens loads
 * tokenizers with) has no WordLevel model, so the vocabulary is written as a WordPiece model whose every
 * entry is a whole word: with the Whitespace pre-tokenizer (`\w+|[^\w\s]+`) each word or run of punctuation
 * is one token, and a word outside the vocabulary becomes [UNK]. transformers reads the same file.
 * Whitespace itself is not a token, so decoding joins tokens with single spaces (the WordPiece decoder's
 * clean-up removes the space before punctuation).
 */
import * as hfTokenizers from '@huggingface/tokenizers';
import { HeadlensError } from '../errors.js';

// the package exports its pre-tokenizers at run time, but its type declarations re-export them by paths
// without extensions, which NodeNext resolution cannot follow; so the one class used is typed here
const { WhitespacePreTokenizer } = hfTokenizers as unknown as { WhitespacePreTokenizer: new () => { pre_tokenize_text(text: string): string[] } };

export const BOS_TOKEN = '<|endoftext|>';
export const UNK_TOKEN = '[UNK]';

/** The pre-tokens of `texts` (the Whitespace pre-tokenizer's split), most frequent first, ties by spelling. */
export function wordVocabulary(texts: Iterable<string>): string[] {
  const pre = new WhitespacePreTokenizer();
  const counts = new Map<string, number>();
  for (const t of texts) for (const w of pre.pre_tokenize_text(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([w]) => w);
}

/** tokenizer.json text for a word list: id 0 is <|endoftext|> (BOS and document separator), id 1 [UNK]. */
export function wordTokenizerJson(words: readonly string[]): Record<string, unknown> {
  const vocab: Record<string, number> = { [BOS_TOKEN]: 0, [UNK_TOKEN]: 1 };
  for (const w of words) {
    if (/\s/.test(w) || w.length === 0) throw new HeadlensError(`word tokenizer: '${w}' is empty or holds whitespace`, 'pass pre-tokens (wordVocabulary gives them)');
    if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
  }
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(BOS_TOKEN, 0), special(UNK_TOKEN, 1)],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: UNK_TOKEN, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

/** The special tokens of toy-bert's tokenizer, ids 0…4 in this order (BERT's names). */
export const ENCODER_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/**
 * tokenizer.json for an encoder over a word list: ids 0…4 are [PAD] [UNK] [CLS] [SEP] [MASK], and the
 * post-processor is BERT's template, [CLS] a [SEP] for one text and [CLS] a [SEP] b [SEP] for a pair (token
 * types 0, then 1 from b on), so toTokens adds [CLS] and [SEP] as BERT's tokenizer does.
 */
export function encoderWordTokenizerJson(words: readonly string[]): Record<string, unknown> {
  const vocab: Record<string, number> = Object.fromEntries(ENCODER_SPECIALS.map((t, i) => [t, i]));
  for (const w of words) {
    if (/\s/.test(w) || w.length === 0) throw new HeadlensError(`word tokenizer: '${w}' is empty or holds whitespace`, 'pass pre-tokens (wordVocabulary gives them)');
    if (!(w in vocab)) vocab[w] = Object.keys(vocab).length;
  }
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tok = (id: string, type_id: number) => ({ SpecialToken: { id, type_id } });
  const seq = (id: string, type_id: number) => ({ Sequence: { id, type_id } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ENCODER_SPECIALS.map((t, i) => special(t, i)),
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0)],
      pair: [tok('[CLS]', 0), seq('A', 0), tok('[SEP]', 0), seq('B', 1), tok('[SEP]', 1)],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}
