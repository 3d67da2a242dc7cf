/**
 * headlens: the public API. Everything a user imports comes from here (pictures from 'headlens/viz').
 */
export { initBackend, currentBackend, BACKENDS, type BackendName, type BackendChoice } from './backend/index.js';
export { HeadlensError } from './errors.js';

export { makeConfig, ConfigSchema, type HookedConfig, type HookedConfigInput } from './model/config.js';
export { paramShapes, countParams } from './model/params.js';
export { Transformer, hookNames, type TokenInput, type ForwardOptions } from './model/transformer.js';
export type { Interceptor } from './model/hook_point.js';
export type { TextTokenizer } from './model/tokenizer.js';
export { processWeights, foldLayerNorm, centerWritingWeights, centerUnembed, type ProcessingOptions } from './model/weight_processing.js';

export { HookedTransformer, type HookFn, type FwdHook, type HookContext, type NamesFilter, type RunOptions } from './hooks/hooked_transformer.js';
export { ActivationCache, headAxis } from './hooks/activation_cache.js';
export { actName, layerOf, type HookName, type BlockHookName, type ActShortName } from './hooks/act_name.js';

export { loadPretrained, readModelConfig, resolveModelDir, zooModels, type LoadOptions } from './loading/load.js';
export { saveModel } from './loading/save.js';
export { HFTokenizer } from './loading/tokenizer.js';
export { downloadFromHub, isHubId, type DownloadProgress, type HubOptions } from './loading/hub.js';
export { parseSafetensors, encodeSafetensors, type SafetensorsFile } from './loading/safetensors.js';
export { openCheckpoint } from './loading/checkpoint_files.js';
export { supportedModelTypes } from './loading/families/index.js';

export { headAblationHooks, runWithAblatedHeads, kvHeadAblationHooks, mlpAblationHooks, queryHeadsOf, type HeadRef, type KvHeadRef, type AblationKind, type AblationOptions } from './interp/interventions/ablation.js';
export { Labelled, type Axis, type LabelledJSON } from './interp/labelled.js';
export { logitDiff, logitOf, probability, klDivergence, normalized, metricValue, type Metric, type Answer, type MetricOptions } from './interp/metrics.js';
export { patchSites, activationPatching, patchComponents, patchResidPre, patchResidMid, patchResidPost, patchAttnOut, patchMlpOut, patchHeadOutByPos, patchHeadOutAllPos, patchHeadPatternAllPos, patchEveryBlock, patchEveryHead, PATCH_COMPONENTS, type PatchSite, type PatchComponent, type SweepOptions, type ActivationPatchingOptions } from './interp/interventions/patching.js';
export { pathPatch, pathPatchMany, pathPatchingSweep, type Receiver, type PathPatchingOptions } from './interp/interventions/path_patching.js';
export { attributionPatching, attributionTerms, type AttributionOptions, type RunSpec } from './interp/interventions/attribution_patching.js';
export { edgeAttribution, type Edge, type EdgeAttribution, type EdgeAttributionOptions } from './interp/interventions/eap.js';
export { directLogitAttribution, dlaPerHead, dlaPerLayer, type DlaOptions } from './interp/attribution/dla.js';
export { logitLens, logitLensSummary, type LogitLensOptions, type LensRow } from './interp/attribution/logit_lens.js';
export { attentionRollout, rolloutFromPatterns, type RolloutOptions } from './interp/attribution/attention_rollout.js';

export { svd, singularValues, eigenvalues, mat, matmul, transpose, identity, randomNormal, type Mat, type SVD, type Complex } from './linalg/svd.js';
export { FactoredMatrix } from './linalg/factored_matrix.js';
export { qkCircuit, ovCircuit, fullQKCircuit, fullOVCircuit, headWeights, kvHead, embeddings, paramMatrix, headLabel } from './interp/weights/head_circuits.js';
export { compositionScore, compositionScores, qComposition, kComposition, vComposition, randomBaseline, COMPOSITION_KINDS, type CompositionKind, type CompositionScores, type CompositionOptions, type HeadPairScore } from './interp/weights/composition.js';
export { copyingScore, copyingScores, eigenvalueScore, type CopyingScore } from './interp/weights/copying.js';
export { circuitSvd, type CircuitSvd, type CircuitSvdOptions, type SingularDirection, type TokenScore } from './interp/weights/svd_interpreter.js';
export { relationScore, relationScores, salientMappings, sourceEmbeddings, type MapsOptions, type RelationScore, type TokenMapping } from './interp/weights/maps.js';
export { subspaceAlignment, writeSubspace, readSubspace, headChannel, layerChannel, type ReceiverSide, type TalkingHeadsOptions, type HeadChannel, type LayerChannel } from './interp/weights/talking_heads.js';

export { topHeads, runScorer, combine, type HeadScores, type HeadScorer, type ItemScores, type TopHead } from './interp/scores/head_scores.js';
export { detectHeads, detectorScorer, type DetectorOptions, type DetectionPattern } from './interp/scores/head_detector.js';
export { previousTokenScores, previousTokenScorer, previousTokenPattern } from './interp/scores/previous_token.js';
export { duplicateTokenScores, duplicateTokenScorer, duplicateTokenPattern } from './interp/scores/duplicate_token.js';
export { inductionScores, inductionScorer, inductionPattern } from './interp/scores/induction.js';
export { attentionSinkScores, attentionSinkScorer, type SinkOptions } from './interp/scores/attention_sink.js';
export { streamingScores, streamingScorer, type StreamingOptions } from './interp/scores/streaming.js';
export { retrievalScores, retrievalScorer, retrievalScoresTeacherForced, retrievalTeacherForcedScorer, retrievalHeads, greedyDecode, decodesExactly, unigramRecall, type NeedleTrial, type RetrievalOptions } from './interp/scores/retrieval.js';
export { correctLetterScores, correctLetterScorer, headLogitContributions, type LetterPrompt } from './interp/scores/correct_letter.js';
export { temporalScores, temporalScorer, headPatchEffects, type TemporalPair } from './interp/scores/temporal.js';
export { ioiLogitDiff, letterAccuracy, factAccuracy, lastLogProbs } from './interp/scores/task_metrics.js';
export { ioiHeadClasses, ioiTokens, type IoiTokens, type IoiClasses, type ClassHead } from './interp/scores/ioi_classes.js';
export { maskHeadsCheck, type MaskCheck, type MaskMetric, type MaskCheckOptions } from './interp/scores/mask_heads.js';
export { scanTask, ioiTask, SCAN_TASKS, type ScanTask, type TaskSetup } from './interp/scores/tasks.js';
export { scan, itemsHash, type ScanOptions } from './interp/scores/scan.js';
export { inductionSequences, InductionSetSchema, type InductionSet } from './datasets/induction.js';
export { ioiPrompts, singleTokenWords, IoiSetSchema, IoiPromptSchema, IOI_TEMPLATES, type IoiSet, type IoiPrompt } from './datasets/ioi.js';
export { needleTextTrials, needleTokenTrials, needleGrid, fillerText, fillerSentence, needleVariant, NeedleSetSchema, NeedleTrialSchema, DEFAULT_NEEDLE, type NeedleSet } from './datasets/needle.js';
export { mcqItems, mcqTokens, mcqPrompt, McqSetSchema, McqItemSchema, type McqSet, type McqItem } from './datasets/mcq.js';
export { temporalItems, temporalTokenPairs, temporalPrompt, yearInWords, TemporalSetSchema, TemporalItemSchema, TEMPORAL_FACTS, CONTROL_FACTS, type TemporalSet, type TemporalItem } from './datasets/temporal.js';

export { runBench, PRESETS as BENCH_PRESETS, type BenchOptions, type BenchResult, type BenchPreset } from './bench/bench.js';

export { train, lmLoss, evaluate, type TrainOptions, type TrainResult, type TrainLog, type DataSource, type Batch } from './train/trainer.js';
export { RECIPES, recipe, repeatedSpans, toyLmTokenizer, type Recipe } from './zoo/recipes.js';
export { toyLmData, shortDocument, IOI_HELD_OUT, IOI_TRAIN_NAMES, type ToyLmDataOptions } from './zoo/toy_lm_data.js';
export { wordTokenizerJson, wordVocabulary, BOS_TOKEN, UNK_TOKEN } from './zoo/word_tokenizer.js';
export { plantedModel, PLANTED, PLANTED_TOK, plantedNeedleTrials, plantedLetterPrompts, plantedTemporalPairs, plantedIoiPrompts } from './zoo/planted.js';
export { AdamW, warmupCosine, type AdamWOptions } from './train/adamw.js';
export { leaders, retrievalFindings, ioiFindings, temporalFindings, letterFindings, FINDINGS, type FindingTask } from './zoo/findings.js';
export { Random } from './util/random.js';
