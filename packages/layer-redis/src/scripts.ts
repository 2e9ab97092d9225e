import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

export type Client = Redis | Cluster;

/** A Lua script run with EVALSHA, falling back to EVAL once per server that lacks it (NOSCRIPT). */
export class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /**
   * `stillWanted`, when given, is asked again before the EVAL fallback (a round trip later): a
   * write that was superseded meanwhile (e.g. its key was deleted) is then not sent at all.
   */
  async run(client: Client, keys: readonly string[], args: ReadonlyArray<string | Buffer | number>, stillWanted?: () => boolean): Promise<unknown> {
    try {
      return await this.send(client, 'evalsha', this.sha, keys, args);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      if (stillWanted && !stillWanted()) return undefined;
      return this.send(client, 'eval', this.lua, keys, args);
    }
  }

  private async send(client: Client, command: 'evalsha' | 'eval', body: string, keys: readonly string[], args: ReadonlyArray<string | Buffer | number>): Promise<unknown> {
    if (!client.isCluster) return client[command](body, keys.length, ...keys, ...args);
    // Cluster: ioredis' auto-pipelining routes a command by its first argument, which for
    // EVAL/EVALSHA is the script, not a key. An explicit one-command pipeline is routed by the
    // command's declared keys instead.
    const results = await client.pipeline()[command](body, keys.length, ...keys, ...args).exec();
    const [error, value] = results?.[0] ?? [new Error('empty pipeline result'), undefined];
    if (error) throw error;
    return value;
  }
}

// Shared helper: add a member to an expiry-scored ZSET, drop expired members, and make the
// ZSET itself expire with its longest-lived member (+1 s), so an index never outlives its entries.
const INDEX_FN = `
local function index(k, score, member, gt, now)
  if gt then redis.call('ZADD', k, 'GT', score, member) else redis.call('ZADD', k, score, member) end
  redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. now)
  local top = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
  if top[2] == 'inf' then
    redis.call('PERSIST', k)
  elseif top[2] then
    redis.call('PEXPIREAT', k, math.floor(tonumber(top[2])) + 1000)
  end
end
`;

/**
 * KEYS: [1] entry, [2] scope index, [3] scope tags, [4..] tag indexes
 * ARGV: [1] value, [2] ttl ms ('0' = none), [3] expiry score ('+inf' or ms), [4] now ms, [5..] encoded tags
 * SET ... PX is one command: value and TTL land together.
 */
export const SET_ENTRY = new Script(`${INDEX_FN}
local ttl = tonumber(ARGV[2])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) else redis.call('SET', KEYS[1], ARGV[1]) end
local score = ARGV[3]
local now = ARGV[4]
index(KEYS[2], score, KEYS[1], false, now)
for i = 4, #KEYS do
  index(KEYS[i], score, KEYS[1], false, now)
  index(KEYS[3], score, ARGV[i + 1], true, now)
end
return 1
`);

/**
 * KEYS: [1] tag → shards registry.  ARGV: [1] shard, [2] expiry score, [3] now.
 */
export const REGISTER_TAG = new Script(`${INDEX_FN}
index(KEYS[1], ARGV[2], ARGV[1], true, ARGV[3])
return 1
`);

/**
 * Deletes up to ARGV[1] entries listed in the ZSET KEYS[1] (and removes them from KEYS[2..]).
 * Returns { entries deleted, members left }. Member keys share KEYS[1]'s hash tag (same slot).
 */
export const PURGE_CHUNK = new Script(`
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local n = 0
for _, m in ipairs(members) do n = n + redis.call('DEL', m) end
if #members > 0 then
  for i = 1, #KEYS do redis.call('ZREM', KEYS[i], unpack(members)) end
end
return { n, redis.call('ZCARD', KEYS[1]) }
`);

/** Release a lock only if we still own it. KEYS: [1] lock. ARGV: [1] token. */
export const RELEASE_LOCK = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** Extend a lock only if we still own it. KEYS: [1] lock. ARGV: [1] token, [2] ttl ms. */
export const EXTEND_LOCK = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);
