import { type CacheEntry, type CacheKey, InvalidOptionError, type ScanPage, type Scope, scopeBaseId } from '@strata-cache/core';
import type { Connection } from './connection.js';
import { PKG } from './errors.js';
import { type KeySpace, encodeTag } from './keys.js';
import type { ReadBatcher } from './read-batcher.js';
import { type Client, PURGE_CHUNK } from './scripts.js';
import type { Writer } from './writes.js';

const CHUNK = 500;

/**
 * Invalidation and iteration: clear, deleteByTag, deleteOlderVersions, scan. They walk the
 * expiry-scored indexes (ZRANGE / ZSCAN in chunks of 500) — never KEYS; only an unscoped clear or
 * scan SCANs every master for the prefix (and keeps to this layer's own keys: KeySpace.isOwn). Each first drops this process's writes it covers that
 * are not sent yet (see Writer.cancel).
 */
export class Admin {
  constructor(
    private readonly conn: Connection,
    private readonly keys: KeySpace,
    private readonly writer: Writer,
    private readonly reads: ReadBatcher,
  ) {}

  /**
   * Removes every entry of the scope (all versions), or without a scope every entry of this
   * layer with its indexes and locks; resolves the number of entries removed.
   */
  async clear(scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    const base = scope && scopeBaseId(scope);
    this.writer.cancel((w) => base === undefined || scopeBaseId(w.key.scope) === base);
    let n = 0;
    if (!scope) {
      // `<prefix>:*` also matches what is not ours to remove, so only the exact shapes of this
      // layer's keys (KeySpace.isOwn) go:
      // - keys of a longer prefix (`<prefix>:b:...`: another layer, maybe another application);
      // - invalidation watermarks (`<prefix>:wm:...`): the clear's own watermark covers what
      //   they did, and a process that reads them later must still find it;
      // - semantic feed streams (`<prefix>:sfeed:...`): they carry this very clear (and every
      //   other purge) to the other processes' semantic indexes; deleting one would drop the
      //   records they have not read yet and make every follower resync. They are trimmed by
      //   MAXLEN, not by clear;
      // - anything else kept under the prefix by other components (the gateway's scope versions
      //   `<prefix>:gateway:versions`, an invalidation `versionStore` given this prefix) or by
      //   the application: state a cache clear must not reset (a restarted gateway would fall
      //   back to version 0 while the others stay on theirs).
      //
      // Two passes, as clear(scope) orders its steps: first the indexes, registries and locks,
      // then the entries. A write of another process that lands during the first pass may lose
      // an index membership, but its entry exists for all of the second pass, which removes it.
      // One that lands during the second pass keeps every membership (no index is unlinked
      // after the first pass): its entry is removed or stays fully indexed. One pass unlinking
      // both in SCAN order could remove such an entry's indexes and miss the entry, leaving it
      // out of reach of every later deleteByTag and clear(scope) until its TTL.
      // One key per UNLINK: on a Cluster the keys of one SCAN page span many slots.
      await this.forEachNodeKey(this.keys.allPattern(), async (batch) => {
        const others = batch.filter((k) => this.keys.isOwn(k) && !this.keys.isEntry(k));
        await Promise.all(others.map((k) => this.admin('clear', (c) => c.unlink(k))));
      });
      await this.forEachNodeKey(this.keys.allPattern(), async (batch) => {
        const entries = batch.filter((k) => this.keys.isOwn(k) && this.keys.isEntry(k));
        const removed = await Promise.all(entries.map((k) => this.admin('clear', (c) => c.unlink(k))));
        for (const r of removed) n += r;
      });
      this.writer.forgetScopeTags();
      return n;
    }
    for (const shard of this.keys.shardsOf(scope)) {
      // The tag indexes go first, then the scope index's entries: a write of another process that
      // lands meanwhile is in the scope index too, and goes with the others. No index is unlinked
      // after the purge (an emptied one is gone by itself): a write landing then keeps its entry
      // and every membership. Unlinking the indexes last, as before, left such an entry in no
      // index at all — out of reach of every later purge. (A clear that fails after the tag
      // indexes went leaves entries in the scope index only; the clear's watermark keeps them
      // from being served, and a retry removes them.)
      const tagsKey = this.keys.scopeTags(shard);
      const tags = (await this.admin('clear', (c) => c.zrange(tagsKey, 0, '-1'))) as string[];
      for (let i = 0; i < tags.length; i += CHUNK) {
        const batch = tags.slice(i, i + CHUNK).map((t) => this.keys.tagIndex(shard, t));
        // Same hash tag: one multi-key UNLINK is valid on Cluster too.
        await this.admin('clear', (c) => c.unlink(...batch));
      }
      n += await this.purgeIndex(this.keys.scopeIndex(shard), [], '');
      // The scope's tag list only serves this: finding its tag indexes. The tags read above are
      // dropped from it, so it does not grow from clear to clear; a tag a write registers again
      // meanwhile may go too, which leaves at most a tag index this list no longer names (its
      // entries are in the scope index, so the next clear removes them all the same).
      for (let i = 0; i < tags.length; i += CHUNK) {
        const batch = tags.slice(i, i + CHUNK);
        await this.admin('clear', (c) => c.zrem(tagsKey, ...batch));
      }
    }
    this.writer.forgetScopeTags();
    return n;
  }

  /**
   * Removes the entries that carry `tag` now (an entry re-written with other tags stays: the
   * purge checks each entry's tags inside Redis), optionally only in one tenant+namespace.
   */
  async deleteByTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): Promise<number> {
    const base = scope && scopeBaseId(scope);
    this.writer.cancel((w) => w.tags.includes(tag) && (base === undefined || scopeBaseId(w.key.scope) === base));
    const t = encodeTag(tag);
    let shards: string[];
    if (scope) shards = this.keys.shardsOf(scope);
    else {
      shards = [];
      const reg = this.keys.tagScopes(t);
      let cursor = '0';
      do {
        const [next, flat] = (await this.admin('deleteByTag', (c) => c.zscan(reg, cursor, 'COUNT', CHUNK))) as [string, string[]];
        for (let i = 0; i < flat.length; i += 2) shards.push(flat[i]!);
        cursor = next;
      } while (cursor !== '0');
      shards = [...new Set(shards)];
    }
    let n = 0;
    for (const shard of shards) n += await this.purgeIndex(this.keys.tagIndex(shard, t), [this.keys.scopeIndex(shard)], `,${t},`);
    return n;
  }

  async deleteOlderVersions(scope: Scope): Promise<number> {
    const base = scopeBaseId(scope);
    this.writer.cancel((w) => w.key.scope.version < scope.version && scopeBaseId(w.key.scope) === base);
    let n = 0;
    for (const shard of this.keys.shardsOf(scope)) {
      const idx = this.keys.scopeIndex(shard);
      let cursor = '0';
      do {
        const [next, flat] = (await this.admin('deleteOlderVersions', (c) => c.zscan(idx, cursor, 'COUNT', CHUNK))) as [string, string[]];
        const old: string[] = [];
        for (let i = 0; i < flat.length; i += 2) {
          const m = flat[i]!;
          const v = this.keys.versionOf(m);
          if (v >= 0 && v < scope.version) old.push(m);
        }
        if (old.length > 0) {
          // Same slot as the index: multi-key DEL/ZREM are valid on Cluster.
          n += (await this.admin('deleteOlderVersions', (c) => c.del(...old))) as number;
          await this.admin('deleteOlderVersions', (c) => c.zrem(idx, ...old));
        }
        cursor = next;
      } while (cursor !== '0');
    }
    return n;
  }

  async scan(options: { scope?: Pick<Scope, 'tenant' | 'namespace'> | undefined; cursor?: string | undefined; count?: number | undefined }): Promise<ScanPage> {
    const count = Math.max(1, Math.min(options.count ?? 100, 10_000));
    const [partText, redisCursor] = (options.cursor ?? '0:0').split(':');
    const part = Number(partText);
    const cursor = redisCursor ?? '0';
    if (!Number.isSafeInteger(part) || part < 0)
      throw new InvalidOptionError(`${PKG}: scan cursor ${JSON.stringify(options.cursor)} is not one this layer returned`, { field: 'cursor' });
    if (options.scope) {
      const shards = this.keys.shardsOf(options.scope);
      if (part >= shards.length) return { items: [] };
      const idx = this.keys.scopeIndex(shards[part]!);
      const [next, flat] = (await this.admin('scan', (c) => c.zscan(idx, cursor, 'COUNT', count))) as [string, string[]];
      const members = flat.filter((_, i) => i % 2 === 0);
      const found = await this.readEntries(members);
      const missing = members.filter((_, i) => found[i] === undefined);
      // Clean the index on read: members whose entry expired or was evicted.
      if (missing.length > 0) await this.admin('scan', (c) => c.zrem(idx, ...missing)).catch(() => 0);
      return page(members, found, next, part, shards.length, this.keys);
    }
    const nodes = await this.conn.masters('scan');
    if (part >= nodes.length) return { items: [] };
    const [next, found] = (await this.admin('scan', () => nodes[part]!.scan(cursor, 'MATCH', this.keys.entryPattern(), 'COUNT', count))) as [string, string[]];
    // The pattern also matches keys of a longer prefix (`<prefix>:1b:...`, including its index
    // ZSETs, on which GET fails with WRONGTYPE): read this layer's entries only.
    const keys = found.filter((k) => this.keys.isEntry(k));
    return page(keys, await this.readEntries(keys), next, part, nodes.length, this.keys);
  }

  private async readEntries(members: string[]): Promise<Array<CacheEntry | undefined>> {
    const bufs = await Promise.all(members.map((m) => this.admin('scan', (c) => c.getBuffer(m)) as Promise<Buffer | null>));
    return Promise.all(
      bufs.map(async (b, i) => {
        const key = this.keys.parseEntry(members[i]!);
        if (!b || !key) return undefined;
        try {
          return (await this.reads.decodeFor(members[i]!, key.id, b, 1))[0];
        } catch {
          return undefined;
        }
      }),
    );
  }

  /** Deletes every entry listed in `index` in chunks (one atomic script per chunk). */
  private async purgeIndex(index: string, alsoFrom: string[], tagMarker: string): Promise<number> {
    let n = 0;
    // Bounded: concurrent writers could otherwise keep the loop alive forever.
    for (let round = 0; round < 100_000; round++) {
      const [deleted, left] = (await this.admin('purge', (c) => PURGE_CHUNK.run(c, [index, ...alsoFrom], [CHUNK, tagMarker]))) as [number, number];
      n += deleted;
      if (left === 0) break;
    }
    return n;
  }

  private async forEachNodeKey(pattern: string, fn: (keys: string[]) => Promise<void>): Promise<void> {
    for (const node of await this.conn.masters('scan')) {
      let cursor = '0';
      do {
        const [next, keys] = (await this.admin('scan', () => node.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000))) as [string, string[]];
        if (keys.length > 0) await fn(keys);
        cursor = next;
      } while (cursor !== '0');
    }
  }

  private admin<T>(operation: string, fn: (c: Client) => Promise<T>): Promise<T> {
    return this.conn.exec(operation, this.conn.o.adminTimeoutMs, fn);
  }
}

function page(members: string[], found: Array<CacheEntry | undefined>, next: string, part: number, parts: number, keys: KeySpace): ScanPage {
  const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
  members.forEach((m, i) => {
    const entry = found[i];
    const key = keys.parseEntry(m);
    if (entry && key) items.push({ key, entry });
  });
  const cursor = next !== '0' ? `${part}:${next}` : part + 1 < parts ? `${part + 1}:0` : undefined;
  return cursor === undefined ? { items } : { items, cursor };
}
