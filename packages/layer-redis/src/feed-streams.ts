import type { Scope } from '@strata-cache/core';
import { scopeBaseId } from '@strata-cache/core';
import { Script } from './scripts.js';

/** Redis Cluster's slot count. */
const SLOTS = 16_384;

/**
 * The feed's streams: `<prefix>:sfeed:{<tag>}`, one per slot group. Each tag is chosen so that
 * the streams' slots are spread evenly over the 16,384 slots — stream i lands in the i-th
 * G-th of the slot range, so on a Cluster whose masters own equal contiguous ranges (what
 * `redis-cli --cluster create` makes) the streams, and the replication traffic, are spread over
 * the masters instead of wherever their names happen to hash.
 */
export function streamKeys(prefix: string, streams: number): string[] {
  const keys: string[] = [];
  for (let i = 0; i < streams; i++) {
    const lo = Math.floor((i * SLOTS) / streams);
    const hi = Math.floor(((i + 1) * SLOTS) / streams);
    let tag = '';
    for (let k = 0; ; k++) {
      tag = `sf${streams}.${i}.${k}`;
      const s = keySlot(tag);
      if (s >= lo && s < hi) break;
    }
    keys.push(`${prefix}:sfeed:{${tag}}`);
  }
  return keys;
}

/**
 * The stream a tenant + namespace publishes to: every mutation of one scope goes to one stream,
 * so they are totally ordered (a put and the purge of its scope arrive in the order they were
 * made). Mutations for every scope (un-scoped purges, `clear()`) go to every stream.
 */
export function streamOf(scope: Pick<Scope, 'tenant' | 'namespace'>, streams: number): number {
  if (streams === 1) return 0;
  // FNV-1a: stable across processes and versions (a change would reorder the fleet's streams).
  let h = 0x811c9dc5;
  const s = scopeBaseId(scope);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % streams;
}

/** Redis Cluster key slot of a hash tag's content: CRC16/XMODEM mod 16384. */
export function keySlot(tag: string): number {
  let crc = 0;
  for (const byte of Buffer.from(tag, 'utf8')) {
    crc ^= byte << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % SLOTS;
}

/**
 * Appends records to one or more streams, numbering them. KEYS: the streams; ARGV[1] approximate
 * MAXLEN, ARGV[2 .. #KEYS + 1] how many records go to each stream, then the (origin, payload)
 * pairs, stream after stream. Each entry gets `n` = its stream's last `n` + 1, so a reader knows
 * it saw every entry since its position (the next one it reads carries its `n` + 1); anything
 * else — entries trimmed before it read them, a stream that vanished (Redis restarted empty, the
 * key evicted) or went back (restored from an older snapshot, a failover that lost writes) — is
 * a gap. The number lives in the stream itself, so the two cannot drift apart. Several streams
 * in one call (one node, not a Cluster: they are in different slots) wake a blocked reader once
 * for all of them. Returns the last number written to each stream.
 */
export const APPEND = new Script(`
local at = #KEYS + 2
local out = {}
for s = 1, #KEYS do
  local last = redis.call('XREVRANGE', KEYS[s], '+', '-', 'COUNT', 1)
  local n = 0
  if #last > 0 then
    local f = last[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'n' then n = tonumber(f[i + 1]) or 0 break end
    end
  end
  for j = 1, tonumber(ARGV[s + 1]) do
    n = n + 1
    redis.call('XADD', KEYS[s], 'MAXLEN', '~', ARGV[1], '*', 'n', string.format('%d', n), 'o', ARGV[at], 'm', ARGV[at + 1])
    at = at + 2
  end
  out[s] = n
end
return out
`);
