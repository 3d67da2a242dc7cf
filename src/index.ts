/**
 * headlens: the model and its ways in. A backend, a HookedTransformer loaded from a HuggingFace folder, hook
 * names, caches and hooks. The analyses live in sub-entries, each loaded only when imported:
 *   headlens/interp    patching, ablation, attribution, weight-space circuits, head scores and scans
 *   headlens/datasets  task data (IOI, needles, multiple choice, temporal facts, induction), seeded, with schemas
 *   headlens/linalg    float64 matrices, SVD, eigenvalues, FactoredMatrix
 *   headlens/train     the trainer (AdamW, schedule, checkpoints)
 *   headlens/zoo       the toy zoo: recipes, toy-lm's data, the planted model, findings
 *   headlens/bench     the benchmark
 *   headlens/viz       pictures (d3, Plot)
 */
export { initBackend, currentBackend, releaseGpuPool, BACKENDS, type BackendName, type BackendChoice } from './backend/index.js';
export { HeadlensError } from './errors.js';
export { makeConfig, ConfigSchema, isEncoder, type HookedConfig, type HookedConfigInput } from './model/config.js';
export { paramShapes, countParams } from './model/params.js';
export { Transformer, hookNames, type TokenInput, type ForwardOptions } from './model/transformer.js';
export { KVCache } from './model/kv_cache.js';
export type { Interceptor } from './model/hook_point.js';
export type { TextTokenizer } from './model/tokenizer.js';
export { processWeights, foldLayerNorm, centerWritingWeights, centerUnembed, type ProcessingOptions } from './model/weight_processing.js';
export { HookedTransformer, nextTokenLoss, type HookFn, type FwdHook, type HookContext, type NamesFilter, type RunOptions, type CacheOptions, type PatternRows, type PaddedTokens, type PairTokens, type LossOptions } from './hooks/hooked_transformer.js';
export type { AttentionMaskInput } from './model/padding.js';
export { generate, generateAsync, type GenerateOptions, type GenerateResult, type GenerateStep } from './hooks/generate.js';
export { ActivationCache, headAxis, type PosSlice, type ResidStack, type AccumulatedResidOptions, type DecomposeResidOptions } from './hooks/activation_cache.js';
export { actName, layerOf, type HookName, type BlockHookName, type ActShortName } from './hooks/act_name.js';
export { hookName, hookAxes, positionAxis, type HookAxis } from './hooks/act_name.js';
export { loadPretrained, readModelConfig, resolveModelDir, zooModels, type LoadOptions } from './loading/load.js';
export { saveModel } from './loading/save.js';
export { loadFromFiles, type ModelFiles } from './loading/load_files.js';
export { HFTokenizer } from './loading/tokenizer.js';
export { downloadFromHub, isHubId, type HubOptions, type DownloadProgress } from './loading/hub.js';
export { parseSafetensors, encodeSafetensors, type SafetensorsFile } from './util/safetensors.js';
export { openCheckpoint } from './loading/checkpoint_files.js';
export { supportedModelTypes } from './loading/families/index.js';
export { Random } from './util/random.js';
