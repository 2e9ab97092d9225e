import { invalidationCovers } from '@strata-cache/core/layer-kit';
import {
  type CacheEntry,
  type CacheKey,
  InvalidOptionError,
  type InvalidationMessage,
  type MultiLayerCache,
  type RequestProfile,
  type Scope,
  canonicalize,
  scopeBaseId,
} from '@strata-cache/core';
import type { CompiledRule, InvalidationTarget, RuleContext } from './rules.js';
import type { InvalidationEngineOptions } from './types.js';

export const PKG = '@strata-cache/invalidation';

/** Key in `entry.meta` where the engine keeps the prompt text of entries that carry no `semantic.text`. */
export const PROMPT_META_KEY = 'strata.prompt';

/**
 * @deprecated No longer written: core stamps every entry with when its load began
 * (`entry.stamp`) and refuses answers that began before a purge covering them, in every process.
 * Entries written by earlier versions may still carry it; nothing reads it.
 */
export const STARTED_META_KEY = 'strata.began';

export type EventRuleCompiled = CompiledRule & { type: 'event' };

export const ENGINE_OPTIONS = Object.keys({
  cache: true,
  rules: true,
  events: true,
  promptText: true,
  storePromptText: true,
  raceWindowMs: true,
  journalMaxEntries: true,
  versionStore: true,
  versionStorePrefix: true,
  onInvalidate: true,
  onRuleError: true,
  now: true,
} satisfies Record<keyof InvalidationEngineOptions, true>);

/** A recent write of this process (for the cross-process race repair). */
export interface JournalEntry {
  readonly key: CacheKey;
  readonly tags: readonly string[];
  /** When it was written (the engine's clock). */
  readonly at: number;
  /** When its load began (the entry's stamp, on the bus clock). */
  readonly stamp: number;
}

/** Option `events`: declared event names, optionally with the data fields each carries. */
export function parseEvents(ev: InvalidationEngineOptions['events']): ReadonlyMap<string, readonly string[] | undefined> | undefined {
  if (ev === undefined) return undefined;
  if (Array.isArray(ev)) {
    for (const [i, e] of ev.entries())
      if (typeof e !== 'string' || e === '') throw new InvalidOptionError(`${PKG}: option "events"[${i}] must be a non-empty event name`, { field: 'events' });
    return new Map(ev.map((e: string) => [e, undefined]));
  }
  if (typeof ev !== 'object' || ev === null) {
    throw new InvalidOptionError(`${PKG}: option "events" must be a list of event names or { name: [dataFields] }`, { field: 'events' });
  }
  const m = new Map<string, readonly string[]>();
  for (const [name, fields] of Object.entries(ev as Record<string, readonly string[]>)) {
    if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string' || f === '')) {
      throw new InvalidOptionError(`${PKG}: option "events.${name}" must list the event's data fields (strings)`, { field: `events.${name}` });
    }
    m.set(name, [...fields]);
  }
  return m;
}

/**
 * Does an invalidation message cover this entry (its key, one of its tags, its scope or an older
 * version)? Core's rule, re-exported under the name this package has always used.
 */
export const covers: (m: InvalidationMessage, key: CacheKey, entry: { readonly tags: readonly string[] }) => boolean = invalidationCovers;

/**
 * What rules see. A class (not a literal with a getter) keeps the hit path monomorphic; the
 * prompt text is computed only when a rule reads it (most L1 hits never need it).
 */
export class Ctx implements RuleContext {
  private promptMemo: string | undefined | null = null;
  constructor(
    readonly phase: RuleContext['phase'],
    readonly request: unknown,
    readonly profile: RequestProfile,
    readonly scope: Scope,
    readonly models: readonly string[],
    readonly tags: readonly string[],
    readonly entry: CacheEntry | undefined,
    private readonly promptOf: (request: unknown, profile: RequestProfile) => string | undefined,
  ) {}

  get prompt(): string | undefined {
    if (this.promptMemo === null) this.promptMemo = (this.entry && storedText(this.entry)) ?? this.promptOf(this.request, this.profile);
    return this.promptMemo;
  }

  withTags(tags: readonly string[]): Ctx {
    const c = new Ctx(this.phase, this.request, this.profile, this.scope, this.models, tags, this.entry, this.promptOf);
    c.promptMemo = this.promptMemo;
    return c;
  }
}

export function storedText(entry: CacheEntry): string | undefined {
  if (typeof entry.semantic?.text === 'string') return entry.semantic.text;
  const t = entry.meta?.[PROMPT_META_KEY];
  return typeof t === 'string' ? t : undefined;
}

export function messageId(m: InvalidationMessage): string {
  switch (m.type) {
    case 'key':
      return 'key\n' + m.keyId;
    case 'tag':
      return 'tag\n' + m.tag + '\n' + (m.scope ? scopeBaseId(m.scope) : '');
    case 'clear':
      return 'clear\n' + (m.scope ? scopeBaseId(m.scope) : '');
    case 'scope-version':
      return 'version\n' + scopeBaseId(m.scope) + '\n' + m.scope.version;
    default:
      return safeCanon(m);
  }
}

export function dedupeTargets(targets: readonly InvalidationTarget[]): InvalidationTarget[] {
  const seen = new Set<string>();
  const out: InvalidationTarget[] = [];
  for (const t of targets) {
    const id = typeof t === 'string' ? 'tag:' + t : safeCanon(t);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(t);
  }
  return out;
}

export function safeCanon(v: unknown): string {
  try {
    return canonicalize(v);
  } catch {
    return String(v);
  }
}

export function safeModel(profile: RequestProfile, request: unknown): string | undefined {
  try {
    return profile.model?.(request);
  } catch {
    return undefined;
  }
}

export function modelSlot(scope: Scope, requested: string | undefined): string {
  return scopeBaseId(scope) + '\n' + (requested ?? '');
}

export function scopeInputOf(s: Scope): { tenant: string; namespace: string } {
  return { tenant: s.tenant, namespace: s.namespace };
}

export function countEventRules(m: Map<string, EventRuleCompiled[]>): number {
  let n = 0;
  for (const l of m.values()) n += l.length;
  return n;
}

export function isCacheLike(c: unknown): c is MultiLayerCache {
  const x = c as MultiLayerCache;
  return typeof x === 'object' && x !== null && typeof x.use === 'function' && typeof x.invalidateTag === 'function' && typeof x.on === 'function';
}
