import { type CacheEntry, type CacheKey, type ScanPage, type Scope, isExpired, scopeBaseId } from '@strata-cache/core';
import type { VectorRef } from './caching-embedder.js';
import { AnswerGroupModel, type AnswerGroupSetting, type GroupRebuilder, answerGroupKey } from './answer-groups.js';
import { type IndexEnv, Partition } from './partition.js';
import { addTo, removeFrom } from './multimap.js';

/** Why an entry left the store (replication and stats tell them apart). */
export type RemovalReason = 'delete' | 'replaced' | 'expired' | 'evicted' | 'purge';

/** One stored entry: its key, a frozen copy of its entry, and where its vector is (if indexed). */
export class Rec implements VectorRef {
  /** The partition holding the vector; unset while the entry is stored for exact lookups only. */
  part: Partition<Rec> | undefined = undefined;
  label = -1;
  constructor(
    readonly key: CacheKey,
    readonly entry: CacheEntry,
    /** Tenant + namespace (no version): the scope index and purges use it. */
    readonly base: string,
  ) {}

  get id(): string {
    return this.key.id;
  }

  vector(): Float32Array | undefined {
    return this.part?.vector(this.label);
  }
}

/** The answer-group rule's per-partition models: setting and the background rebuilder. */
export interface AnswerGroupsConfig {
  readonly setting: AnswerGroupSetting;
  readonly rebuilder: GroupRebuilder;
}

export interface RecordStoreEvents {
  /** An entry left the store (not for `clearAll`). */
  removed?(rec: Rec, reason: RemovalReason): void;
}

/**
 * The semantic layer's records: exact entries (key id → record, in least-recently-used order),
 * the tag and scope indexes, and the partitions holding the vectors. Synchronous throughout, so
 * every mutation is atomic with respect to lookups. Entries go in as frozen copies that share
 * their scope, tag and partition strings, so a record costs little beyond its vector and text.
 */
export class RecordStore {
  /** key id → record, least recently used first. */
  readonly records = new Map<string, Rec>();
  readonly partitions = new Map<string, Partition<Rec>>();
  private readonly tagIndex = new Map<string, Set<Rec>>();
  private readonly scopeIndex = new Map<string, Set<Rec>>();
  /** Interned strings and scope objects shared by records (partitions, scope ids, tags). */
  private readonly strings = new Map<string, string>();
  private readonly scopes = new Map<string, Scope>();
  env: IndexEnv | undefined;

  constructor(
    private readonly maxEntries: number,
    /** Embedder id + dimension: prefixed to every partition key, so vectors of two embedders never meet. */
    readonly partitionPrefix: string,
    private readonly events: RecordStoreEvents = {},
    /** The answer-group rule: each partition learns from the answers its prompts share. */
    private readonly groups?: AnswerGroupsConfig,
  ) {}

  get size(): number {
    return this.records.size;
  }

  get(id: string): Rec | undefined {
    return this.records.get(id);
  }

  /** Marks a record as just used (a hit). */
  touch(rec: Rec): void {
    this.records.delete(rec.id);
    this.records.set(rec.id, rec);
  }

  /**
   * Stores a frozen copy of `entry` under `key` (replacing what was there) for exact lookups, and
   * evicts the least recently used records beyond `maxEntries`. Call `index` to add its vector.
   */
  put(key: CacheKey, entry: CacheEntry): Rec {
    const old = this.records.get(key.id);
    if (old) this.remove(old, 'replaced');
    const rec = new Rec(this.internKey(key), this.freezeEntry(entry), this.intern(scopeBaseId(key.scope)));
    this.records.set(rec.id, rec);
    for (const tag of rec.entry.tags) addTo(this.tagIndex, tag, rec);
    addTo(this.scopeIndex, rec.base, rec);
    while (this.records.size > this.maxEntries) this.remove(this.records.values().next().value as Rec, 'evicted');
    return rec;
  }

  /** Adds a stored record's vector to its partition (once; the record must still be current). */
  index(rec: Rec, vec: Float32Array): void {
    if (rec.part || this.records.get(rec.id) !== rec || !rec.entry.semantic) return;
    const pk = this.partitionPrefix + rec.entry.semantic.partition;
    let part = this.partitions.get(pk);
    if (!part) this.partitions.set(pk, (part = new Partition<Rec>(pk, this.env!)));
    rec.part = part;
    rec.label = part.add(vec, rec);
    if (this.groups) this.group(part, rec, vec);
  }

  /** Adds an indexed record to its partition's answer groups. */
  private group(part: Partition<Rec>, rec: Rec, vec: Float32Array | undefined): void {
    const g = this.groups!;
    let model = part.answers;
    if (!model) {
      part.answers = model = new AnswerGroupModel(this.env!.dims, g.setting, (label) => part.vector(label));
      g.rebuilder.track(model);
    }
    model.add(rec.label, vec, answerGroupKey(rec.entry.value));
    g.rebuilder.schedule(model);
  }

  /** True when `rec` is the stored record of its key. */
  /** One page of live entries; the cursor is an offset into the scope's records as listed now. */
  page(scope: Pick<Scope, 'tenant' | 'namespace'> | undefined, cursor: string | undefined, count: number, now: number): ScanPage {
    const recs = scope ? this.inScope(scope) : [...this.records.values()];
    const items: Array<{ key: CacheKey; entry: CacheEntry }> = [];
    let i = cursor ? Number(cursor) : 0;
    for (; i < recs.length && items.length < count; i++) {
      const r = recs[i]!;
      if (this.isCurrent(r) && !isExpired(r.entry, now)) items.push({ key: r.key, entry: r.entry });
    }
    return i < recs.length ? { items, cursor: String(i) } : { items };
  }

  isCurrent(rec: Rec): boolean {
    return this.records.get(rec.id) === rec;
  }

  /** Removes a record everywhere: map, tag/scope indexes and its vector (a real removal). */
  remove(rec: Rec, reason: RemovalReason): boolean {
    if (this.records.get(rec.id) !== rec) return false;
    this.records.delete(rec.id);
    for (const tag of rec.entry.tags) removeFrom(this.tagIndex, tag, rec);
    removeFrom(this.scopeIndex, rec.base, rec);
    if (rec.part) this.unindex(rec);
    this.events.removed?.(rec, reason);
    return true;
  }

  /** Takes an indexed record's vector out of its partition, and the partition away once empty. */
  private unindex(rec: Rec): void {
    const part = rec.part!;
    const model = part.answers;
    if (model) {
      model.remove(rec.label); // before the vector goes
      this.groups?.rebuilder.schedule(model);
    }
    part.remove(rec.label);
    rec.part = undefined;
    if (part.size === 0) {
      if (model) this.groups?.rebuilder.forget(model);
      part.drop();
      this.partitions.delete(part.key);
    }
  }

  /**
   * Takes the vectors of records `keep` says no to out of the index; the records stay for exact
   * lookups. Resolves how many were taken out.
   */
  unindexWhere(keep: (rec: Rec) => boolean): number {
    let n = 0;
    for (const rec of this.records.values()) {
      if (!rec.part || keep(rec)) continue;
      this.unindex(rec);
      rec.label = -1;
      n++;
    }
    return n;
  }

  /** Records of one tenant + namespace (all versions). */
  inScope(scope: Pick<Scope, 'tenant' | 'namespace'>): Rec[] {
    return [...(this.scopeIndex.get(scopeBaseId(scope)) ?? [])];
  }

  /** Records currently carrying `tag`. */
  withTag(tag: string): Rec[] {
    return [...(this.tagIndex.get(tag) ?? [])];
  }

  /** Removes everything at once (no per-record events); resolves the count. */
  clearAll(): number {
    const n = this.records.size;
    for (const p of this.partitions.values()) {
      if (p.answers) this.groups?.rebuilder.forget(p.answers);
      p.drop();
    }
    for (const r of this.records.values()) r.part = undefined;
    this.partitions.clear();
    this.records.clear();
    this.tagIndex.clear();
    this.scopeIndex.clear();
    return n;
  }

  /** Removes expired records; resolves the count. */
  sweepExpired(now: number): number {
    let n = 0;
    for (const r of [...this.records.values()]) if (isExpired(r.entry, now) && this.remove(r, 'expired')) n++;
    return n;
  }

  /** Replaces the whole state with records loaded from a snapshot (already partitioned). */
  load(records: Iterable<Rec>, partitions: Iterable<Partition<Rec>>): void {
    this.clearAll();
    for (const p of partitions) this.partitions.set(p.key, p);
    for (const r of records) {
      this.records.set(r.id, r);
      for (const tag of r.entry.tags) addTo(this.tagIndex, tag, r);
      addTo(this.scopeIndex, r.base, r);
      // Grouped by answer without reading vectors back (a graph point costs tens of µs to read).
      if (this.groups && r.part) this.group(r.part, r, undefined);
    }
  }

  /** A record for a snapshot line (not stored until `load`). */
  restore(key: CacheKey, entry: CacheEntry): Rec {
    return new Rec(this.internKey(key), this.freezeEntry(entry), this.intern(scopeBaseId(key.scope)));
  }

  // ---- copies that share strings ---------------------------------------------------------

  private intern(s: string): string {
    const known = this.strings.get(s);
    if (known !== undefined) return known;
    s = flat(s);
    // Interned strings are few (partitions, scopes, tags, profiles); drop the table if it balloons.
    if (this.strings.size > 100_000) this.strings.clear();
    this.strings.set(s, s);
    return s;
  }

  private internKey(key: CacheKey): CacheKey {
    const scopeId = this.intern(key.scopeId);
    let scope = this.scopes.get(scopeId);
    if (!scope) {
      if (this.scopes.size > 10_000) this.scopes.clear();
      scope = Object.freeze({ tenant: key.scope.tenant, namespace: key.scope.namespace, version: key.scope.version });
      this.scopes.set(scopeId, scope);
    }
    // Ids are built by concatenation: a tree of a dozen string pieces per key, several times the
    // size of the flat string. Stored flat; the hash is its tail (a slice shares the characters).
    const id = flat(key.id);
    const hash = id.endsWith(key.hash) ? id.slice(id.length - key.hash.length) : key.hash;
    return Object.freeze({ schema: key.schema, scope, scopeId, profile: this.intern(key.profile), hash, id });
  }

  /**
   * A deep, frozen copy: what a caller does to the entry it passed in, or to one it got back,
   * never changes what is stored. Tags and the partition id are shared strings.
   */
  private freezeEntry(entry: CacheEntry): CacheEntry {
    const copy: Record<string, unknown> = {};
    for (const k of Object.keys(entry)) {
      const v = (entry as unknown as Record<string, unknown>)[k];
      if (k === 'tags') copy.tags = entry.tags.length === 0 ? NO_TAGS : Object.freeze(entry.tags.map((t) => this.intern(t)));
      else if (k === 'semantic' && entry.semantic)
        copy.semantic = Object.freeze({ partition: this.intern(entry.semantic.partition), text: flat(entry.semantic.text) });
      else if (v !== undefined) copy[k] = frozenCopy(v);
    }
    return Object.freeze(copy) as unknown as CacheEntry;
  }
}

const NO_TAGS = Object.freeze([]) as unknown as string[];

/** A string as one flat sequence of characters (V8 keeps a concatenation as a tree of pieces). */
function flat(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}

/**
 * A deep copy, frozen as it is built (entries are JSON-like by contract; typed arrays are copied
 * but cannot be frozen). Plain recursion: cheaper than structuredClone for entries, and it
 * leaves no serializer buffers behind.
 */
function frozenCopy(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return Object.freeze(v.map(frozenCopy));
  if (ArrayBuffer.isView(v)) return (v as unknown as { slice(): unknown }).slice();
  if (v instanceof Date) return new Date(v.getTime());
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) out[k] = frozenCopy((v as Record<string, unknown>)[k]);
  return Object.freeze(out);
}
