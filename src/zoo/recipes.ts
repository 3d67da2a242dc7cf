/**
 * Recipes: everything needed to retrain a zoo model from its seed (config, data, hyperparameters).
 * `headlens train --recipe NAME` runs one; the model card records the exact command.
 */
import { HeadlensError } from '../errors.js';
import type { HookedConfigInput } from '../model/config.js';
import { HFTokenizer } from '../loading/tokenizer.js';
import { Random } from '../util/random.js';
import { parseMix, toyLmData, vocabularyTexts } from './toy_lm_data.js';
import type { Batch, DataSource, TrainOptions } from '../train/trainer.js';
import { encoderWordTokenizerJson, wordTokenizerJson, wordVocabulary } from './word_tokenizer.js';
import { toyBertData } from './toy_bert_data.js';

export interface RecipeDataOptions {
  /** toy-lm: "kind=share,…" for the short documents (toy_lm_data.ts, parseMix). */
  mix?: string;
}

export interface Recipe {
  name: string;
  description: string;
  config: HookedConfigInput;
  /** The tokenizer the model is trained with and saved beside it (absent: token ids only). */
  tokenizer?: () => HFTokenizer;
  data(seed: number, opts?: RecipeDataOptions): DataSource;
  /** Standard deviation of the random initial weights (default 0.02, GPT-2's initializer_range). */
  initStd?: number;
  train: Omit<TrainOptions, 'outDir' | 'onProgress' | 'log' | 'maxSeconds'>;
}

let toyLmTok: HFTokenizer | undefined;
/** toy-lm's word-level tokenizer, built from the vocabulary of its training mixture (deterministic). */
export function toyLmTokenizer(): HFTokenizer {
  toyLmTok ??= new HFTokenizer(wordTokenizerJson(wordVocabulary(vocabularyTexts())));
  return toyLmTok;
}

/**
 * Sequences [BOS, s, s, r]: s is a span of uniformly random tokens whose length varies from sequence to
 * sequence, r random filler up to a fixed length. The second copy of s is predictable only by finding the
 * earlier occurrence of the current token and copying the token after it, which is what an induction head
 * does (Olsson et al. 2022, "In-context Learning and Induction Heads": a previous-token head in one layer,
 * an induction head that K-composes with it in the next). With a fixed span a layer-0 head could instead
 * learn "attend span − 1 positions back" from positions alone; the varying length rules that out.
 * The loss counts every position; the evaluation counts the predictable part of the repeated copy only.
 */
export function repeatedSpans(opts: {
  vocab: number;
  minSpan: number;
  maxSpan: number;
  bos: number;
  evalSeed: number;
  evalBatches?: number;
  evalSize?: number;
}): DataSource {
  const length = 1 + 2 * opts.maxSpan;
  const make = (rng: Random, n: number, withMask: boolean): Batch => {
    const tokens: number[][] = [];
    const lossMask: number[][] = [];
    for (let i = 0; i < n; i++) {
      const span = rng.int(opts.minSpan, opts.maxSpan + 1);
      const s = Array.from({ length: span }, () => rng.int(1, opts.vocab));
      const r = Array.from({ length: length - 1 - 2 * span }, () => rng.int(1, opts.vocab));
      tokens.push([opts.bos, ...s, ...s, ...r]);
      // the prediction made at position p is of token p + 1; the second copy occupies span + 1 .. 2·span,
      // and its first token cannot be foreseen (nothing marks where the repeat starts), so it is not counted
      lossMask.push(Array.from({ length: length - 1 }, (_, p) => (p + 1 >= span + 2 && p + 1 <= 2 * span ? 1 : 0)));
    }
    return withMask ? { tokens, lossMask } : { tokens };
  };
  const evalRng = new Random(opts.evalSeed);
  const evals = Array.from({ length: opts.evalBatches ?? 4 }, () => make(evalRng, opts.evalSize ?? 32, true));
  return { batch: (rng, n) => make(rng, n, false), evalBatches: () => evals };
}

export const RECIPES: Record<string, Recipe> = {
  'toy-induction-2l': {
    name: 'toy-induction-2l',
    description: 'attention-only, 2 layers × 2 heads, trained on repeated random spans: a previous-token head in layer 0, an induction head in layer 1',
    config: {
      model_name: 'toy-induction-2l',
      original_architecture: 'HeadlensAttnOnly',
      attn_only: true,
      n_layers: 2,
      // two heads a layer: with four, induction was shared by every layer-1 head and no single one mattered
      n_heads: 2,
      d_model: 64,
      d_head: 32,
      d_vocab: 64,
      n_ctx: 64,
      // repeatedSpans below makes sequences of 1 + 2 · maxSpan = 33 tokens: positions 33…63 are never trained
      trained_ctx: 33,
      normalization_type: 'LN',
      positional_embedding_type: 'standard',
      bos_token_id: 0,
    },
    data: (seed, opts) => {
      if (opts?.mix) throw new HeadlensError('recipe toy-induction-2l has no mixture to set', 'drop --mix (it is for toy-lm)');
      return repeatedSpans({ vocab: 64, minSpan: 6, maxSpan: 16, bos: 0, evalSeed: seed + 1_000_003 });
    },
    // 6,000 steps: after 3,000, at seeds 0–3, the two layer-1 heads still shared the copying, and ablating the
    // better one cost 0.30–0.92 nats; after 6,000, seeds 0 and 1 have one head that costs 1.2–1.3, seed 3 0.60, and
    // seed 2 finds a circuit without an induction head (the model card has the runs)
    train: { steps: 6000, batchSize: 32, lr: 1e-3, warmup: 100, minLrRatio: 0.3, weightDecay: 0.01, clip: 1, seed: 0, evalEvery: 100 },
  },
};

const TOY_LM_CTX = 512;

RECIPES['toy-lm'] = {
  name: 'toy-lm',
  description: 'GPT-2 architecture, 4 layers × 4 heads, n_ctx 512, word-level tokenizer, trained on a mixture of needle haystacks, IOI stories, letter-labelled multiple choice, year-dependent facts and repeated spans',
  get config(): HookedConfigInput {
    return {
      model_name: 'toy-lm',
      original_architecture: 'GPT2LMHeadModel',
      // ~1M parameters: first sized for one CPU thread, where it learned no in-context task in 3M tokens; the
      // shipped model was trained on the GPU for 28M tokens (datasets/zoo/toy-lm/README.md)
      n_layers: 4,
      n_heads: 4,
      d_model: 128,
      d_head: 32,
      d_mlp: 512,
      d_vocab: toyLmTokenizer().vocabSize,
      n_ctx: TOY_LM_CTX,
      act_fn: 'gelu_new',
      normalization_type: 'LN',
      positional_embedding_type: 'standard',
      tie_word_embeddings: false,
      bos_token_id: 0,
      eos_token_id: 0,
    };
  },
  tokenizer: toyLmTokenizer,
  // GPT-2's 0.02 left this width on a plateau: on repeated spans alone, 300 steps reached a repeat loss of 4.13
  // nats (ln 63 = 4.14) from std 0.02 and 3.54 from std 0.08
  initStd: 0.08,
  // the evaluation rows are drawn from the mixture in use, so runs with different --mix are not compared by eval loss
  data: (seed, opts) =>
    toyLmData({ tokenizer: toyLmTokenizer(), nCtx: TOY_LM_CTX, bos: 0, vocabSize: toyLmTokenizer().vocabSize, evalSeed: seed + 1_000_003, evalBatches: 2, evalSize: 8, mix: opts?.mix ? parseMix(opts.mix) : undefined }),
  train: { steps: 900, batchSize: 8, lr: 2e-3, warmup: 50, minLrRatio: 0.1, weightDecay: 0.01, clip: 1, seed: 0, evalEvery: 25, checkpointEvery: 25 },
};

let toyBertTok: HFTokenizer | undefined;
/** toy-bert's word-level tokenizer: toy-lm's words after BERT's five special tokens, with BERT's [CLS]/[SEP] template. */
export function toyBertTokenizer(): HFTokenizer {
  toyBertTok ??= new HFTokenizer(encoderWordTokenizerJson(wordVocabulary(vocabularyTexts())));
  return toyBertTok;
}

const TOY_BERT_CTX = 64;

RECIPES['toy-bert'] = {
  name: 'toy-bert',
  description: 'BERT architecture (post-LN, bidirectional, token types, MLM head), 4 layers × 4 heads, d_model 64, masked-LM on the sentences of toy-lm\'s mixture with [CLS]/[SEP] and sentence pairs',
  get config(): HookedConfigInput {
    return {
      model_name: 'toy-bert',
      original_architecture: 'BertForMaskedLM',
      n_layers: 4,
      n_heads: 4,
      d_model: 64,
      d_head: 16,
      d_mlp: 256,
      d_vocab: toyBertTokenizer().vocabSize,
      n_ctx: TOY_BERT_CTX,
      act_fn: 'gelu',
      normalization_type: 'LN',
      eps: 1e-12,
      positional_embedding_type: 'standard',
      attention_dir: 'bidirectional',
      norm_placement: 'post',
      type_vocab_size: 2,
      mlm_head: true,
      unembed_bias: true,
      // the trainer keeps one variable per stored tensor, so the decoder is its own matrix (a BERT config may say so)
      tie_word_embeddings: false,
      pad_token_id: 0,
    };
  },
  tokenizer: toyBertTokenizer,
  data: (seed, opts) => {
    if (opts?.mix) throw new HeadlensError('recipe toy-bert has no mixture to set', 'drop --mix (it is for toy-lm)');
    return toyBertData({ tokenizer: toyBertTokenizer(), nCtx: TOY_BERT_CTX, vocabSize: toyBertTokenizer().vocabSize, evalSeed: seed + 1_000_003 });
  },
  // sized for one CPU thread: 1,500 steps of 16 examples (~24K examples, ~600K tokens)
  train: { steps: 1500, batchSize: 16, lr: 2e-3, warmup: 100, minLrRatio: 0.1, weightDecay: 0.01, clip: 1, seed: 0, evalEvery: 100, checkpointEvery: 250 },
};

export function recipe(name: string): Recipe {
  const r = RECIPES[name];
  if (!r) throw new HeadlensError(`no recipe '${name}'`, `recipes: ${Object.keys(RECIPES).join(', ')}`);
  return r;
}
