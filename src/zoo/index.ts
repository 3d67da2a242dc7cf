/** headlens/zoo: the models headlens trains and ships: recipes, toy-lm's data, the word tokenizer, the planted model, findings. */
export { RECIPES, recipe, repeatedSpans, toyLmTokenizer, toyBertTokenizer, type Recipe } from './recipes.js';
export { toyBertData, toyBertExample, toyBertBatch, maskExample, TOY_BERT_MIX, type ToyBertExample, type ToyBertDataOptions } from './toy_bert_data.js';
export { mlmAccuracy, toyBertSpecialAttention, trainingDocuments, type MlmAccuracy, type ToyBertAttention } from './toy_bert_findings.js';
export { toyLmData, shortDocument, IOI_HELD_OUT, IOI_TRAIN_NAMES, type ToyLmDataOptions } from './toy_lm_data.js';
export { wordTokenizerJson, encoderWordTokenizerJson, wordVocabulary, BOS_TOKEN, UNK_TOKEN, ENCODER_SPECIALS } from './word_tokenizer.js';
export { plantedModel, PLANTED, PLANTED_TOK, plantedNeedleTrials, plantedLetterPrompts, plantedTemporalPairs, plantedIoiPrompts } from './planted.js';
export { leaders, retrievalFindings, ioiFindings, temporalFindings, letterFindings, FINDINGS, type FindingTask } from './findings.js';
export { plantedIclModel, plantedIclPairs, PLANTED_ICL, PLANTED_ICL_TOK } from './planted_icl.js';
