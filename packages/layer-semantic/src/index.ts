export { SemanticLayer } from './layer.js';
export type { SemanticLayerOptions, SemanticLayerStats } from './layer.js';
