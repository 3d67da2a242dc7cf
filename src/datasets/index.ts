/** headlens/datasets: the task data, generated with a seed, each with a zod schema; item types with their tokenization. */
export { inductionSequences, repeatedBlocks, InductionSetSchema, type InductionSet, type RepeatedBlocksOptions } from './induction.js';
export { ioiPrompts, ioiTokens, singleToken, singleTokenWords, unspelledWords, IoiSetSchema, IoiPromptSchema, IOI_TEMPLATES, IOI_LISTS, type IoiSet, type IoiPrompt, type IoiTokens, type IoiLists, type IoiListsName, type IoiCorruption } from './ioi.js';
export { WANG2022_TEMPLATES, WANG2022_NAMES, WANG2022_PLACES, WANG2022_OBJECTS } from './ioi_wang2022.js';
export { needleTextTrials, needleTokenTrials, needleGrid, fillerText, fillerSentence, needleVariant, NeedleSetSchema, NeedleTrialSchema, DEFAULT_NEEDLE, type NeedleSet } from './needle.js';
export { mcqItems, mcqTokens, mcqPrompt, relabelMcq, McqSetSchema, McqItemSchema, type McqSet, type McqItem, type LetterPrompt } from './mcq.js';
export { temporalItems, temporalTokenPairs, temporalPrompt, yearInWords, TemporalSetSchema, TemporalItemSchema, TEMPORAL_FACTS, CONTROL_FACTS, EVENT_ALIASES, INVARIANT_FACTS, eventPrompt, temporalCircuitData, type TemporalCircuitData, type CandidateFact, type TemporalSet, type TemporalItem } from './temporal.js';
export { ICL_TASKS, iclTaskTokens, IclTaskSchema, type IclTask } from './icl_tasks.js';
export { sentenceLines, textLines, SENTENCES_FILE } from './sentences.js';
export { FIRST_NAMES, PLACES, OBJECTS } from './word_lists.js';
