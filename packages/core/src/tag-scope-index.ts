import { type Scope, scopeBaseId } from './scope.js';

/**
 * Which entries carry which tag, and which live in which tenant+namespace: the bookkeeping a
 * layer needs for `deleteByTag`, `clear(scope)` and version purges without scanning everything.
 *
 * The index holds an entry's *current* tags: `add()` of an id already present replaces its tags
 * (the re-tag rule — after re-tagging, `deleteByTag(oldTag)` leaves the entry alone). Call
 * `remove()` whenever an entry leaves the layer (delete, eviction, expiry), so the index never
 * outlives its entries.
 */
export class TagScopeIndex {
  private readonly byTag = new Map<string, Set<string>>();
  private readonly byScope = new Map<string, Set<string>>();
  private readonly items = new Map<string, { readonly tags: readonly string[]; readonly base: string }>();

  /** Indexes (or re-indexes) an entry under its scope and its current tags. */
  add(id: string, scope: Pick<Scope, 'tenant' | 'namespace'>, tags: readonly string[]): void {
    const base = scopeBaseId(scope);
    const previous = this.items.get(id);
    if (previous) {
      for (const t of previous.tags) if (!tags.includes(t)) removeFrom(this.byTag, t, id);
      if (previous.base !== base) removeFrom(this.byScope, previous.base, id);
    }
    this.items.set(id, { tags: [...tags], base });
    for (const t of tags) addTo(this.byTag, t, id);
    addTo(this.byScope, base, id);
  }

  /** Forgets an entry; true when it was indexed. */
  remove(id: string): boolean {
    const item = this.items.get(id);
    if (!item) return false;
    this.items.delete(id);
    for (const t of item.tags) removeFrom(this.byTag, t, id);
    removeFrom(this.byScope, item.base, id);
    return true;
  }

  /** Ids of the entries currently carrying `tag` (optionally only in one tenant+namespace); a snapshot. */
  withTag(tag: string, scope?: Pick<Scope, 'tenant' | 'namespace'>): string[] {
    const ids = this.byTag.get(tag);
    if (!ids) return [];
    if (!scope) return [...ids];
    const base = scopeBaseId(scope);
    return [...ids].filter((id) => this.items.get(id)?.base === base);
  }

  /** Ids of the entries of one tenant+namespace (all versions); a snapshot. */
  inScope(scope: Pick<Scope, 'tenant' | 'namespace'>): string[] {
    return [...(this.byScope.get(scopeBaseId(scope)) ?? [])];
  }

  /** The tags an entry currently carries. */
  tagsOf(id: string): readonly string[] | undefined {
    return this.items.get(id)?.tags;
  }

  has(id: string): boolean {
    return this.items.has(id);
  }

  /** Entries indexed. */
  get size(): number {
    return this.items.size;
  }

  /** Distinct tags and distinct scopes indexed (to check the index does not outlive its entries). */
  get counts(): { readonly tags: number; readonly scopes: number } {
    return { tags: this.byTag.size, scopes: this.byScope.size };
  }

  clear(): void {
    this.byTag.clear();
    this.byScope.clear();
    this.items.clear();
  }
}

function addTo(index: Map<string, Set<string>>, k: string, id: string): void {
  let s = index.get(k);
  if (!s) index.set(k, (s = new Set()));
  s.add(id);
}

function removeFrom(index: Map<string, Set<string>>, k: string, id: string): void {
  const s = index.get(k);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) index.delete(k);
}
