/** headlens/viz: pictures. A separate entry so that model-only users never load d3 or Plot. */
export { type View } from './view.js';
export { attentionPattern, attentionPatternSVG, positionLabels, type AttentionPatternOptions } from './attention_pattern.js';
export { headGrid, rankedHeads, type HeadGridOptions, type HeadScore } from './head_grid.js';
export { tokenLines, headColour, type TokenLinesOptions } from './token_lines.js';
export { patchingByPosition, patchingByHead, type PatchingResultsOptions } from './patching_results.js';
export { circuitGraph, defaultRank, type CircuitEdge, type CircuitGraphOptions } from './circuit_graph.js';
export { svdSpectrum, type Spectrum, type SvdSpectrumOptions } from './svd_spectrum.js';
export { topTokenTable, type TopTokenRow, type TopTokenTableOptions } from './top_token_table.js';
export { logitLensTable, type LogitLensData, type LogitLensTableOptions } from './logit_lens.js';
export { tokenScores, type TokenScoreColumn, type TokenScoresOptions } from './token_scores.js';
export { atlasHTML, writeAtlas, atlasHeads, type AtlasData, type AtlasScorer } from './atlas.js';
export { show, type ShowOptions, type ShowResult } from './show.js';
export { serverDocument } from './dom.js';
export { layerAttention, type LayerAttentionSeries, type LayerAttentionOptions } from './layer_attention.js';
export { headEmbeddingPlot, type EmbeddedHeadPoint, type HeadEmbeddingOptions } from './head_embedding.js';
