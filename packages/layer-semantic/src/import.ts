import { type LayerV1, type Scope, isExpired } from '@strata-cache/core/layer-kit';
import type { RecordStore } from './records.js';
import type { Replicator } from './replicator.js';
import type { WritePath } from './write-path.js';

export interface ImportOptions {
  readonly scope?: Pick<Scope, 'tenant' | 'namespace'> | undefined;
  readonly pageSize?: number | undefined;
}

/**
 * Imports a shared layer's entries (an L2 Redis, through `scan()`) into this index: those it lacks,
 * and — with `seen` (a re-import after the replication feed lost its place) — newer versions of
 * those it has, noting every id the source holds. Entries from elsewhere pass the same checks as
 * replicated ones: scopes this process replicates, key bound to its scope, not expired, not
 * covered by a delete or purge applied here. Resolves how many were written (they are embedded
 * at bulk priority).
 */
export async function importEntries(
  source: LayerV1,
  into: { readonly store: RecordStore; readonly writes: WritePath; readonly replicator: Replicator | undefined },
  options: ImportOptions = {},
  seen?: Set<string>,
): Promise<number> {
  const { store, writes, replicator: rep } = into;
  let cursor: string | undefined;
  let n = 0;
  do {
    const page = await source.scan!({ ...(options.scope ? { scope: options.scope } : {}), count: options.pageSize ?? 256, ...(cursor ? { cursor } : {}) });
    const now = Date.now();
    const items = page.items.filter((it) => {
      if (rep ? !rep.admit(it.key, it.entry, now) : isExpired(it.entry, now)) return false;
      seen?.add(it.key.id);
      const have = store.get(it.key.id);
      if (!have && rep && !rep.accepts(it.key.scope)) return false;
      return !have || (seen !== undefined && have.entry.createdAt < it.entry.createdAt);
    });
    if (items.length > 0) {
      await writes.write(items, undefined, 'bulk');
      n += items.length;
    }
    cursor = page.cursor;
  } while (cursor);
  return n;
}
