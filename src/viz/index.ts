/** headlens/viz: pictures. A separate entry so that model-only users never load d3 or Plot. */
export { attentionPatternSVG, type AttentionPatternOptions } from './attention_pattern.js';
export { serverDocument } from './dom.js';
