export { createGateway, startGateway } from './gateway.js';
export type { Gateway, GatewayOptions } from './gateway.js';
export { parseConfig, loadConfig, configSchema } from './config.js';
export type { GatewayConfig, GatewayConfigInput, KeyConfig, UpstreamConfig, SecretRef } from './config.js';
export { hashKey, generateKey } from './keys.js';
export { GatewayError } from './errors.js';
export { CONTROL_HEADERS } from './control.js';
export { CACHED_ROUTES } from './proxy.js';
export type { CachedRoute } from './proxy.js';
