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

  private async send(
    client: Client,
    command: 'evalsha' | 'eval',
    body: string,
    keys: readonly string[],
    args: ReadonlyArray<string | Buffer | number>,
  ): Promise<unknown> {
    if (!client.isCluster) return client[command](body, keys.length, ...keys, ...args);
    // Cluster: ioredis' auto-pipelining routes a command by its first argument, which for
    // EVAL/EVALSHA is the script, not a key. An explicit one-command pipeline is routed by the
    // command's declared keys instead.
    const results = await client
      .pipeline()
      [command](body, keys.length, ...keys, ...args)
      .exec();
    const [error, value] = results?.[0] ?? [new Error('empty pipeline result'), undefined];
    if (error) throw error;
    return value;
  }
}

/**
 * Deletes up to ARGV[1] entries listed in the ZSET KEYS[1] and removes them from KEYS[2..].
 * ARGV[2], when not empty, is a tag as `,<encoded tag>,`: an entry whose envelope header no
 * longer lists it (it was re-written with other tags) is kept, and only leaves KEYS[1].
 * Returns { entries deleted, members left }. Member keys share KEYS[1]'s hash tag (same slot).
 */
export const PURGE_CHUNK = new Script(`
local function carries(m, tag)
  local head = redis.call('GETRANGE', m, 0, 6)
  -- Missing, not ours, or an older format without a header: delete as before.
  if #head < 7 or string.byte(head, 1) ~= 158 or string.byte(head, 2) ~= 3 then return true end
  local b1, b2, b3, b4 = string.byte(head, 4, 7)
  local h = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  if h == 0 then return true end
  local header = redis.call('GETRANGE', m, 7, 6 + h)
  local nl = string.find(header, '\\n', 1, true)
  if not nl then return true end
  return string.find(header, tag, nl, true) ~= nil
end
local members = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
local n = 0
local gone = {}
for _, m in ipairs(members) do
  if ARGV[2] == '' or carries(m, ARGV[2]) then
    n = n + redis.call('DEL', m)
    gone[#gone + 1] = m
  end
end
if #members > 0 then redis.call('ZREM', KEYS[1], unpack(members)) end
if #gone > 0 then
  for i = 2, #KEYS do redis.call('ZREM', KEYS[i], unpack(gone)) end
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
