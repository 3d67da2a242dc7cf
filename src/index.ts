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
export { downloadFromHub, isHubId, type HubOptions } from './loading/hub.js';
export { parseSafetensors, encodeSafetensors, type SafetensorsFile } from './loading/safetensors.js';
export { openCheckpoint } from './loading/checkpoint_files.js';
export { supportedModelTypes } from './loading/families/index.js';
