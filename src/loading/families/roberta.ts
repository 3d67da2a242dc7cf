/**
 * RoBERTa (RobertaForMaskedLM): BERT's architecture (bert.ts) with its own names, one token type, the exact GELU
 * in its LM head, and positions that count from pad_token_id + 1 over non-padding tokens (transformers'
 * create_position_ids_from_input_ids; config.positions_after_pad), so max_position_embeddings − pad_token_id − 1
 * tokens fit (512 of 514 in roberta-base).
 */
import { encoderFamily } from './bert.js';

export const roberta = encoderFamily({
  modelType: 'roberta',
  architecture: 'RobertaForMaskedLM',
  base: 'roberta.',
  head: { dense: 'lm_head.dense', ln: 'lm_head.layer_norm', decoder: 'lm_head.decoder', bias: 'lm_head.bias' },
  positionsAfterPad: true,
  extraConfig: (cfg) => ({ bos_token_id: cfg.bos_token_id, eos_token_id: cfg.eos_token_id }),
});
