export {
  TestRedisError,
  freePort,
  rawRedisCommand,
  startRedisServer,
  redisForTests,
  redisUrlForTests,
  uniqueKeyPrefix,
  startRedisCluster,
} from './redis.js';
export type {
  StartRedisServerOptions,
  RedisServerHandle,
  TestRedis,
  RedisClusterHandle,
} from './redis.js';
export { startTcpProxy } from './proxy.js';
export type { TcpProxyHandle } from './proxy.js';
export { spawnTaggedChild } from './child.js';
export type { TaggedChild, TaggedLine } from './child.js';
export { gatedLoader } from './loader.js';
export type { GatedLoader } from './loader.js';
