/**
 * headlens/interp: what the analyses compute. Interventions (ablation, the patching engine and its sweeps, path
 * patching, attribution patching, EAP, function vectors), attribution (DLA, logit lens, rollout, attention flow), weight-space circuits (QK/OV,
 * composition, copying, MAPS, talking heads), head scores and scans, and the metrics they share.
 */
export { headAblationHooks, runWithAblatedHeads, kvHeadAblationHooks, mlpAblationHooks, queryHeadsOf, type HeadRef, type KvHeadRef, type AblationKind, type AblationOptions } from './interventions/ablation.js';
export { Labelled, type Axis, type LabelledJSON } from './labelled.js';
export { logitDiff, logitOf, probability, klDivergence, normalized, metricValue, type Metric, type Answer, type MetricOptions } from './metrics.js';
export { patchSites, patchSitesAsync, activationPatching, activationPatchingAsync, patchComponents, patchResidPre, patchResidMid, patchResidPost, patchAttnOut, patchMlpOut, patchHeadOutByPos, patchHeadOutAllPos, patchHeadPatternAllPos, patchHeadPatternDestSrc, patchEveryBlock, patchEveryHead, PATCH_COMPONENTS, type PatchSite, type PatchComponent, type SweepOptions, type ActivationPatchingOptions } from './interventions/patching.js';
export { pathPatch, pathPatchMany, pathPatchingSweep, type Receiver, type PathPatchingOptions } from './interventions/path_patching.js';
export { attributionPatching, attributionTerms, type AttributionOptions, type RunSpec } from './interventions/attribution_patching.js';
export { functionVectors, functionVector, functionVectorEffect, addFunctionVector, meanHeadOutputs, indirectEffects, rankHeads, iclPrompt, iclPrompts, type IclPair, type IclTemplate, type IclPrompt, type IclPromptsOptions, type IndirectEffects, type TopHeadEffect, type FvEffect, type FunctionVectorOptions, type FunctionVectorResult } from './interventions/function_vectors.js';
export { edgeAttribution, type Edge, type EdgeAttribution, type EdgeAttributionOptions } from './interventions/eap.js';
export { topNCircuit, greedyCircuit, pruneCircuit, nodeFrequency, readerNodes, type Circuit, type ExtractOptions } from './circuit.js';
export { evaluateCircuits, circuitFaithfulness, type CircuitAblation, type CircuitEvalOptions, type CircuitLike, type Faithfulness } from './interventions/circuit_faithfulness.js';
export { directLogitAttribution, dlaPerHead, dlaPerLayer, headDla, headDlaFromCache, directBias, type DlaOptions } from './attribution/dla.js';
export { logitLens, logitLensSummary, type LogitLensOptions, type LensRow } from './attribution/logit_lens.js';
export { attentionRollout, rolloutFromPatterns, type RolloutOptions } from './attribution/attention_rollout.js';
export { decomposeAttentionScore, traceSparseCircuit, upstreamHeadRanking, type SparseOptions, type SparseTraceOptions, type ScoreTerm, type ScoreDecomposition, type UpstreamPart, type UpstreamContribution, type SparseEdge, type SparseCircuit } from './attribution/sparse_attention.js';
export { attentionFlow, flowFromPatterns, attentionGraph, inputGradients, inputGradientImportance, blankOutImportance, flowCorrelations, type FlowOptions, type TokenFlow, type ImportanceOptions, type GradientImportanceOptions, type FlowCorrelationOptions, type FlowCorrelations, type RhoSummary } from './attribution/attention_flow.js';
export { FlowNetwork, maxFlow, type FlowEdge } from '../util/max_flow.js';
export { spearman, pearson, averageRanks } from '../util/rank_correlation.js';
export { qkCircuit, ovCircuit, fullQKCircuit, fullOVCircuit, headWeights, kvHead, embeddings, paramMatrix } from './weights/head_circuits.js';
export { headLabel, parseHeadLabel } from './head_label.js';
export { compositionScore, compositionScores, qComposition, kComposition, vComposition, randomBaseline, COMPOSITION_KINDS, type CompositionKind, type CompositionScores, type CompositionOptions, type HeadPairScore } from './weights/composition.js';
export { copyingScore, copyingScores, eigenvalueScore, type CopyingScore } from './weights/copying.js';
export { relationScore, relationScores, salientMappings, sourceEmbeddings, mapsSettings, type MapsOptions, type MapsSource, type MapsSettings, type SalientOptions, type RelationScore, type TokenMapping } from './weights/maps.js';
export { subspaceAlignment, writeSubspace, readSubspace, headChannel, layerChannel, componentComposition, receiverComponentScan, componentInhibition, type ReceiverSide, type TalkingHeadsOptions, type HeadChannel, type LayerChannel, type DecomposedSide, type ComponentComposition, type InhibitionOptions, type ComponentInhibition } from './weights/talking_heads.js';
export { topHeads, runScorer, combine, type HeadScores, type HeadScorer, type ItemScores, type TopHead } from './scores/head_scores.js';
export { detectHeads, detectorScorer, type DetectorOptions, type DetectionPattern } from './scores/head_detector.js';
export { previousTokenScores, previousTokenScorer, previousTokenPattern } from './scores/previous_token.js';
export { duplicateTokenScores, duplicateTokenScorer, duplicateTokenPattern } from './scores/duplicate_token.js';
export { inductionScores, inductionScorer, inductionPattern } from './scores/induction.js';
export { attentionSinkScores, attentionSinkScorer, type SinkOptions } from './scores/attention_sink.js';
export { streamingScores, streamingScorer, type StreamingOptions } from './scores/streaming.js';
export { razorScores, razorScorer, razorAttentionHeads, type RazorScoreOptions, type RazorSelection, type RazorSelectionOptions } from './scores/razor_attention.js';
export { retrievalScores, retrievalScorer, retrievalScoresTeacherForced, retrievalTeacherForcedScorer, retrievalHeads, greedyDecode, decodesExactly, unigramRecall, retrievalStopTokens, type NeedleTrial, type RetrievalOptions } from './scores/retrieval.js';
export { correctLetterScores, correctLetterScorer, headLogitContributions, labelMutationScores, letterContrast, qkSubspaceAnalysis, type CorrectLetterOptions, type LabelMutationResult, type QkSubspaceOptions, type QkSubspaceResult, type QkSubspaceRow } from './scores/correct_letter.js';
export { temporalScores, temporalScorer, headPatchEffects, type TemporalPair } from './scores/temporal.js';
export { temporalCircuits, temporalHeadsOf, taskCircuit, defaultTopN, temporalHeadAblation, candidateProbability, type TemporalCircuitTask, type TemporalCircuitOptions, type TemporalCircuits, type CandidateItem, type TemporalAblation } from './scores/temporal_circuits.js';
export { ioiLogitDiff, letterAccuracy, factAccuracy, lastLogProbs } from './scores/task_metrics.js';
export { ioiHeadClasses, ioiCopyScores, type IoiClasses, type ClassHead } from './scores/ioi_classes.js';
export { maskHeadsCheck, topRanked, type MaskCheck, type MaskMetric, type MaskCheckOptions } from './scores/mask_heads.js';
export { scanTask, ioiTask, chooseIoiLists, SCAN_TASKS, taskCausalCheck, type ScanTask, type TaskSetup, type TaskCausal, type IoiTaskOptions } from './scores/tasks.js';
export { retrievalTaskWith, type RetrievalTaskOptions } from './scores/tasks/retrieval.js';
export { scan, itemsHash, type ScanOptions } from './scores/scan.js';
export { ScanCheckpoint, scanJobs, scanJobId, runScanJob, checkScanJob, type ScanJob, type ScanIdentity, type IndexedItemScores } from './scores/scan.js';
export { circuitSvd, type CircuitSvd, type CircuitSvdOptions, type SingularDirection, type TokenScore } from './weights/svd_interpreter.js';
// the asynchronous forms (util/reads.ts): the same computations, read with `await data()`, for WebGPU in Node
export { runScorerAsync } from './scores/head_scores.js';
export { scanAsync, runScanJobAsync } from './scores/scan.js';
export { maskHeadsCheckAsync, type MaskMetricFn } from './scores/mask_heads.js';
export { taskCausalCheckAsync } from './scores/tasks.js';
export { detectHeadsAsync } from './scores/head_detector.js';
export { inductionScoresAsync } from './scores/induction.js';
export { previousTokenScoresAsync } from './scores/previous_token.js';
export { duplicateTokenScoresAsync } from './scores/duplicate_token.js';
export { attentionSinkScoresAsync } from './scores/attention_sink.js';
export { streamingScoresAsync } from './scores/streaming.js';
export { razorScoresAsync } from './scores/razor_attention.js';
export { retrievalScoresAsync, retrievalScoresTeacherForcedAsync, greedyDecodeAsync, decodesExactlyAsync } from './scores/retrieval.js';
export { correctLetterScoresAsync, headLogitContributionsAsync } from './scores/correct_letter.js';
export { temporalScoresAsync, headPatchEffectsAsync } from './scores/temporal.js';
export { ioiLogitDiffAsync, letterAccuracyAsync, factAccuracyAsync, lastLogProbsAsync } from './scores/task_metrics.js';
export { ioiHeadClassesAsync, ioiCopyScoresAsync } from './scores/ioi_classes.js';
export { pathPatchAsync, pathPatchManyAsync, pathPatchingSweepAsync } from './interventions/path_patching.js';
export { directLogitAttributionAsync, dlaPerHeadAsync, dlaPerLayerAsync, headDlaAsync } from './attribution/dla.js';
