export { RedisLayer } from './layer.js';
export type { RedisLayerOptions, RedisLayerStats } from './layer.js';
export { REDIS_LAYER_DEFAULTS } from './options.js';
export { RedisInvalidationBus, BUS_DEFAULTS } from './bus.js';
export { RedisWatermarks } from './watermarks.js';
export type { RedisInvalidationBusOptions } from './bus.js';
export type { BreakerState } from './breaker.js';
export type { Compression } from './envelope.js';
export { KeySpace } from './keys.js';
