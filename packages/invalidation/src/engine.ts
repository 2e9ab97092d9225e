import { randomUUID } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import {
  type CacheEntry,
  type CacheKey,
  type CachePlugin,
  type HitContext,
  type InvalidationMessage,
  type InvalidationResult,
  InvalidOptionError,
  InvalidRequestError,
  type Layer,
  MultiLayerCache,
  type PolicyContext,
  type PolicyDecision,
  type RequestProfile,
  type Scope,
  type ScopeInput,
  type WriteContext,
  canonicalize,
  scopeBaseId,
  sha256,
} from '@strata-cache/core';
import { type PatternInput, compilePattern, defaultPromptText } from './patterns.js';
import { TimedIndex } from './timed-index.js';
import { type CompiledRule, type EventTargets, type InvalidationRule, type InvalidationTarget, type RuleContext, checkKnown, compileEventRule, compileRule } from './rules.js';

const PKG = '@strata-cache/invalidation';

/** Key in `entry.meta` where the engine keeps the prompt text of entries that carry no `semantic.text`. */
export const PROMPT_META_KEY = 'strata.prompt';

/** Key in `entry.meta` where the engine keeps when the request that produced the entry began (epoch ms). */
export const STARTED_META_KEY = 'strata.began';

/** Where `trackConfig` remembers each scope's config fingerprint and version (an ioredis client fits). */
export interface VersionStore {
  get(key: string): Promise<string | null | undefined> | string | null | undefined;
  set(key: string, value: string): Promise<unknown> | unknown;
}

export interface InvalidationEngineOptions {
  /** The cache to keep true. The engine installs itself as one of its plugins. */
  cache: MultiLayerCache;
  /** Rules, checked now: a bad pattern, template or event name throws InvalidOptionError here. @default [] */
  rules?: readonly InvalidationRule[];
  /**
   * Event names the application may emit, optionally with the data fields each carries
   * (`{ product_updated: ['id'] }`). When set, a rule for another name, or a template reading
   * an undeclared field, is an error at registration. @default any name may be registered
   */
  events?: readonly string[] | Readonly<Record<string, readonly string[]>>;
  /** Text that `prompt` patterns match. @default the last user turn, else all message text, else `input`/`prompt` */
  promptText?: (request: unknown, profile: RequestProfile) => string | undefined;
  /**
   * Store the prompt text in `entry.meta['strata.prompt']` when the entry carries no
   * `semantic.text`, so `purgeByPrompt` can match it later. @default true
   */
  storePromptText?: boolean;
  /**
   * How long (ms) to remember recent invalidations and this process's recent writes. Hits whose
   * request began before a remembered invalidation that covers them are refused (answers are
   * stamped with `meta['strata.began']`), and a write of this process that a remote
   * invalidation covers is purged again everywhere (the cross-process race). Should exceed the
   * bus's worst delivery delay. 0 disables all of it. @default 5_000
   */
  raceWindowMs?: number;
  /** Most recent writes remembered for the race repair. @default 10_000 */
  journalMaxEntries?: number;
  /** Persists `trackConfig` fingerprints and versions across restarts and processes. @default in-process only */
  versionStore?: VersionStore;
  /** Key prefix in `versionStore`. @default "strata:config:" */
  versionStorePrefix?: string;
  /**
   * Audit listener: once per engine operation (event, purge, version bump, prompt purge, race
   * repair), per invalidation received from another process, and per direct cache call.
   * @default none (see also `engine.onInvalidate(fn)`)
   */
  onInvalidate?: (record: InvalidationAudit) => void;
  /**
   * Called when a rule's own function (`match.when`, a tags function) throws while the cache
   * serves a request; the rule is then treated as not matching. A cache never fails a request
   * because of a rule. @default process.emitWarning
   */
  onRuleError?: (error: unknown, rule: string) => void;
  /** Clock; use the cache's. @default Date.now */
  now?: () => number;
}

/** One invalidation, for audit logs. */
export interface InvalidationAudit {
  readonly id: string;
  /** Epoch ms when it started. */
  readonly at: number;
  /** `cache`: the application called the cache's own invalidate methods; `remote`: another process. */
  readonly source: 'event' | 'purge' | 'prompt-purge' | 'version' | 'race-repair' | 'remote' | 'cache';
  readonly origin: 'local' | 'remote';
  readonly reason?: string;
  readonly event?: string;
  readonly data?: unknown;
  /** What was asked: `{ type: 'tag', tag }`, `{ type: 'key', keyId }`, ... */
  readonly targets: readonly InvalidationMessage[];
  /** Entries removed per layer, summed over the targets. */
  readonly layers: Readonly<Record<string, number>>;
  readonly total: number;
  readonly durationMs: number;
}

export interface PromptPurgeOptions {
  /** Only this tenant+namespace. @default every scope */
  scope?: ScopeInput;
  /** Entries read per scan page (and deleted per batch). @default 200 */
  pageSize?: number;
  /** Stop after reading this many entries (over all layers). @default 100_000 */
  maxScanned?: number;
  /** Stop after purging this many entries. @default 10_000 */
  maxPurged?: number;
  /** Only scan these layers (by name). @default every layer with scan() */
  layers?: readonly string[];
  /** Continue a purge that stopped early: pass its `resume`. @default start from the beginning */
  resume?: Readonly<Record<string, string>>;
  /** Stops the purge between pages (the report then has `complete: false` and `resume`). @default none */
  signal?: AbortSignal;
  /** Called after every page. @default none */
  onProgress?: (progress: { layer: string; scanned: number; matched: number; purged: number }) => void;
  /** Shown in the audit record. @default "prompt matches <pattern>" */
  reason?: string;
}

export interface PromptPurgeReport {
  readonly scanned: number;
  readonly matched: number;
  readonly purged: number;
  /** Entries removed per layer (a key found in L2 is removed from every layer). */
  readonly layers: Readonly<Record<string, number>>;
  /** Entries that carry no prompt text to match (written without `storePromptText` or semantic text). */
  readonly withoutText: number;
  /** Layers that cannot be scanned (no scan()). */
  readonly unscannable: readonly string[];
  /** False when a bound or the signal stopped it; pass `resume` to continue. */
  readonly complete: boolean;
  readonly resume?: Readonly<Record<string, string>>;
  readonly audit: InvalidationAudit;
}

interface Tombstone {
  readonly at: number;
  readonly message: InvalidationMessage;
}

interface JournalEntry {
  readonly key: CacheKey;
  readonly tags: readonly string[];
  readonly at: number;
}

type EventRuleCompiled = CompiledRule & { type: 'event' };

const KNOWN_OPTIONS = [
  'cache', 'rules', 'events', 'promptText', 'storePromptText', 'raceWindowMs', 'journalMaxEntries',
  'versionStore', 'versionStorePrefix', 'onInvalidate', 'onRuleError', 'now',
];

/**
 * Rules that keep cached answers true, installed as a plugin of a MultiLayerCache:
 * max-age rules (TTL at write, refused hits at read), write-time tag rules, event rules,
 * don't-cache rules, scope versions, and bounded admin purges, with an audit record for
 * every invalidation.
 */
export class InvalidationEngine {
  readonly cache: MultiLayerCache;
  /** The plugin the engine installed (exposed for inspection). */
  readonly plugin: CachePlugin;
  private rules: CompiledRule[] = [];
  private readonly eventRules = new Map<string, EventRuleCompiled[]>();
  private readonly knownEvents: ReadonlyMap<string, readonly string[] | undefined> | undefined;
  private readonly promptTextOf: (request: unknown, profile: RequestProfile) => string | undefined;
  private readonly storePromptText: boolean;
  private readonly raceWindowMs: number;
  private readonly journalMax: number;
  private readonly versionStore: VersionStore | undefined;
  private readonly versionPrefix: string;
  private readonly now: () => number;
  private readonly onRuleError: (error: unknown, rule: string) => void;
  private readonly listeners = new Set<(record: InvalidationAudit) => void>();
  /** Recent tag / clear / version invalidations, oldest first. */
  private tombstones: Tombstone[] = [];
  /** Recent key invalidations by key id (a large prompt purge must not slow every hit down). */
  private readonly keyTombstones = new TimedIndex<{ readonly at: number }>();
  /** keyId → last write of this process, in insertion (≈ time) order. */
  private readonly journal = new TimedIndex<JournalEntry>();
  /** scope base + requested model → newest answering model seen (staleAfterModelChange). */
  private readonly currentModels = new Map<string, string>();
  private readonly fingerprints = new Map<string, { fingerprint: string; config: Record<string, unknown> }>();
  private readonly onCacheInvalidate: (e: InvalidationResult & { origin: 'local' | 'remote' }) => void;
  private readonly repairs = new Set<Promise<unknown>>();
  /** request object → when its call began (onRequest), for STARTED_META_KEY. */
  private readonly requestStarts = new WeakMap<object, number>();
  /** Invalidations this engine is running (their tombstone is already down). */
  private readonly ownPending = new Map<string, number>();
  private closed = false;

  constructor(options: InvalidationEngineOptions) {
    checkKnown(options, KNOWN_OPTIONS, 'createInvalidationEngine()');
    if (!(options.cache instanceof MultiLayerCache) && !isCacheLike(options.cache)) {
      throw new InvalidOptionError(`${PKG}: option "cache" must be a MultiLayerCache from @strata-cache/core`, { field: 'cache' });
    }
    this.cache = options.cache;
    if (options.events !== undefined) {
      const ev = options.events;
      if (Array.isArray(ev)) {
        for (const [i, e] of ev.entries()) if (typeof e !== 'string' || e === '') throw new InvalidOptionError(`${PKG}: option "events"[${i}] must be a non-empty event name`, { field: 'events' });
        this.knownEvents = new Map(ev.map((e: string) => [e, undefined]));
      } else if (typeof ev === 'object' && ev !== null) {
        const m = new Map<string, readonly string[]>();
        for (const [name, fields] of Object.entries(ev as Record<string, readonly string[]>)) {
          if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string' || f === '')) {
            throw new InvalidOptionError(`${PKG}: option "events.${name}" must list the event's data fields (strings)`, { field: `events.${name}` });
          }
          m.set(name, [...fields]);
        }
        this.knownEvents = m;
      } else {
        throw new InvalidOptionError(`${PKG}: option "events" must be a list of event names or { name: [dataFields] }`, { field: 'events' });
      }
    }
    if (options.promptText !== undefined && typeof options.promptText !== 'function') throw new InvalidOptionError(`${PKG}: option "promptText" must be a function`, { field: 'promptText' });
    this.promptTextOf = options.promptText ?? defaultPromptText;
    this.storePromptText = options.storePromptText ?? true;
    this.raceWindowMs = options.raceWindowMs ?? 5_000;
    if (typeof this.raceWindowMs !== 'number' || !Number.isFinite(this.raceWindowMs) || this.raceWindowMs < 0) {
      throw new InvalidOptionError(`${PKG}: option "raceWindowMs" must be a number of milliseconds >= 0`, { field: 'raceWindowMs' });
    }
    this.journalMax = options.journalMaxEntries ?? 10_000;
    if (!Number.isSafeInteger(this.journalMax) || this.journalMax < 0) throw new InvalidOptionError(`${PKG}: option "journalMaxEntries" must be an integer >= 0`, { field: 'journalMaxEntries' });
    if (options.versionStore !== undefined && (typeof options.versionStore?.get !== 'function' || typeof options.versionStore?.set !== 'function')) {
      throw new InvalidOptionError(`${PKG}: option "versionStore" needs get(key) and set(key, value) (an ioredis client works)`, { field: 'versionStore' });
    }
    this.versionStore = options.versionStore;
    this.versionPrefix = options.versionStorePrefix ?? 'strata:config:';
    this.now = options.now ?? Date.now;
    if (options.onRuleError !== undefined && typeof options.onRuleError !== 'function') throw new InvalidOptionError(`${PKG}: option "onRuleError" must be a function`, { field: 'onRuleError' });
    this.onRuleError =
      options.onRuleError ??
      ((error, rule) => process.emitWarning(`${PKG}: rule "${rule}" threw and was skipped: ${(error as Error)?.message ?? String(error)}`, { code: 'STRATA_RULE_ERROR' }));
    if (options.onInvalidate !== undefined) {
      if (typeof options.onInvalidate !== 'function') throw new InvalidOptionError(`${PKG}: option "onInvalidate" must be a function`, { field: 'onInvalidate' });
      this.listeners.add(options.onInvalidate);
    }
    for (const r of options.rules ?? []) this.addRule(r);

    this.plugin = {
      name: 'invalidation',
      onRequest: (ctx) => this.onRequest(ctx),
      beforeWrite: (ctx) => this.beforeWrite(ctx),
      acceptHit: (ctx) => this.acceptHit(ctx),
    };
    this.cache.use(this.plugin);
    this.onCacheInvalidate = (e) => this.observeInvalidation(e);
    this.cache.on('invalidate', this.onCacheInvalidate);
  }

  // ------------------------------------------------------------------ registration

  /** Adds a rule; validates it now. */
  addRule(rule: InvalidationRule): this {
    this.assertOpen();
    const compiled = compileRule(rule, this.rules.length + countEventRules(this.eventRules), this.knownEvents);
    if (compiled.type === 'event') this.addEventRule(compiled);
    else this.rules.push(compiled);
    return this;
  }

  /** Removes the rules with this name; returns how many. */
  removeRule(name: string): number {
    const before = this.rules.length + countEventRules(this.eventRules);
    this.rules = this.rules.filter((r) => r.name !== name);
    for (const [event, list] of this.eventRules) {
      const kept = list.filter((r) => r.name !== name);
      if (kept.length === 0) this.eventRules.delete(event);
      else this.eventRules.set(event, kept);
    }
    return before - (this.rules.length + countEventRules(this.eventRules));
  }

  /**
   * An event rule: `on('product_updated', ['product:{id}', 'topic:product'])` or
   * `on('product_updated', ({ id }) => ['product:' + id, 'topic:product'])`.
   */
  on(event: string, targets: EventTargets): this {
    this.assertOpen();
    this.addEventRule(compileEventRule(event, targets, `on(${JSON.stringify(event)})`, this.knownEvents));
    return this;
  }

  /** Audit listener; returns a function that removes it. */
  onInvalidate(listener: (record: InvalidationAudit) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private addEventRule(rule: EventRuleCompiled): void {
    const list = this.eventRules.get(rule.event) ?? [];
    list.push(rule);
    this.eventRules.set(rule.event, list);
  }

  // ------------------------------------------------------------------ events and purges

  /**
   * Applies the rules registered for `event`: purges their tags (and other targets) from every
   * layer of this process and, via the cache's bus, every other process. Resolves when this
   * process's layers are done. An event without rules is an InvalidOptionError (a typo).
   */
  async emit(event: string, data: Record<string, unknown> = {}): Promise<InvalidationAudit> {
    this.assertOpen();
    const rules = this.eventRules.get(event);
    if (!rules) {
      const known = [...this.eventRules.keys()].map((e) => JSON.stringify(e)).join(', ') || '(none)';
      throw new InvalidOptionError(`${PKG}: emit(${JSON.stringify(event)}): no rule is registered for this event; registered: ${known}`, { field: 'event' });
    }
    if (typeof data !== 'object' || data === null) throw new InvalidRequestError(`${PKG}: emit(${JSON.stringify(event)}) data must be an object`, { field: 'data' });
    const targets: InvalidationTarget[] = [];
    for (const r of rules) {
      if (r.templates) for (const t of r.templates) targets.push(t.fill(data, `emit(${JSON.stringify(event)})`));
      else if (r.fn) {
        const out = await r.fn(data);
        if (out === undefined || out === null) continue;
        targets.push(...(Array.isArray(out) ? (out as InvalidationTarget[]) : [out as InvalidationTarget]));
      }
    }
    return this.run('event', targets, { event, data, reason: `event ${event}` });
  }

  /** Ad-hoc purge of tags, keys or scopes (see InvalidationTarget). */
  async invalidate(targets: InvalidationTarget | readonly InvalidationTarget[], options: { reason?: string } = {}): Promise<InvalidationAudit> {
    this.assertOpen();
    const list = Array.isArray(targets) ? (targets as InvalidationTarget[]) : [targets as InvalidationTarget];
    return this.run('purge', list, options.reason ? { reason: options.reason } : {});
  }

  purgeTag(tag: string, options: { scope?: ScopeInput; reason?: string } = {}): Promise<InvalidationAudit> {
    return this.invalidate(options.scope === undefined ? { tag } : { tag, scope: options.scope }, options);
  }

  purgeKey(request: unknown, options: { scope?: ScopeInput; profile?: RequestProfile; reason?: string } = {}): Promise<InvalidationAudit> {
    const { reason, ...rest } = options;
    return this.invalidate({ key: request, ...rest }, reason ? { reason } : {});
  }

  /** `version` (default): old entries become unreachable at once; `clear`: delete them now. */
  purgeScope(scope: ScopeInput, options: { mode?: 'version' | 'clear'; reason?: string } = {}): Promise<InvalidationAudit> {
    return this.invalidate({ scope, mode: options.mode ?? 'version' }, options);
  }

  /** Bumps a scope's version (e.g. a new system prompt): old entries become unreachable at once. */
  async bumpVersion(scope?: ScopeInput, reason?: string): Promise<{ version: number; audit: InvalidationAudit }> {
    this.assertOpen();
    const started = this.now();
    const t0 = performance.now();
    const { version, result } = await this.bumpOwned(scope);
    const audit = this.report('version', started, t0, [result], reason ? { reason } : {});
    return { version, audit };
  }

  /**
   * Tells the engine the configuration that shapes a scope's answers (system prompt, model,
   * retrieval settings, ...). When it differs from the last one known for the scope (in this
   * process, or in `versionStore`), the scope's version is bumped. The first call records it.
   */
  async trackConfig(scope: ScopeInput | undefined, config: Record<string, unknown>): Promise<{ changed: boolean; version: number; changedFields: string[] }> {
    this.assertOpen();
    if (typeof config !== 'object' || config === null) throw new InvalidRequestError(`${PKG}: trackConfig() needs a config object`, { field: 'config' });
    const resolved = this.cache.resolveScope(scope);
    const base = scopeBaseId(resolved);
    const fingerprint = sha256(canonicalize(config));
    let previous = this.fingerprints.get(base);
    let version = resolved.version;
    if (this.versionStore) {
      const raw = await this.versionStore.get(this.versionPrefix + base);
      if (raw) {
        try {
          const rec = JSON.parse(raw) as { fingerprint: string; version: number; config?: Record<string, unknown> };
          if (Number.isSafeInteger(rec.version) && rec.version >= 0) {
            this.cache.setScopeVersion(scopeInputOf(resolved), rec.version);
            version = Math.max(version, rec.version);
          }
          previous = { fingerprint: rec.fingerprint, config: rec.config ?? {} };
        } catch {
          // unreadable record: treat as unknown and overwrite below
        }
      }
    }
    const save = async (v: number) => {
      this.fingerprints.set(base, { fingerprint, config });
      if (this.versionStore) await this.versionStore.set(this.versionPrefix + base, JSON.stringify({ fingerprint, version: v, config }));
    };
    if (!previous) {
      await save(version);
      return { changed: false, version, changedFields: [] };
    }
    if (previous.fingerprint === fingerprint) {
      this.fingerprints.set(base, { fingerprint, config });
      return { changed: false, version, changedFields: [] };
    }
    const changedFields = [...new Set([...Object.keys(previous.config), ...Object.keys(config)])]
      .filter((k) => safeCanon(previous!.config[k]) !== safeCanon(config[k]))
      .sort();
    const bumped = await this.bumpVersion(scopeInputOf(resolved), `config changed: ${changedFields.join(', ') || 'fingerprint'}`);
    await save(bumped.version);
    return { changed: true, version: bumped.version, changedFields };
  }

  /**
   * Admin operation: removes entries whose stored prompt text matches `pattern`, scanning the
   * layers page by page (bounded by `maxScanned` / `maxPurged`, yielding between pages).
   * Matches are removed from every layer and, via the bus, every process.
   */
  async purgeByPrompt(pattern: PatternInput, options: PromptPurgeOptions = {}): Promise<PromptPurgeReport> {
    this.assertOpen();
    checkKnown(options, ['scope', 'pageSize', 'maxScanned', 'maxPurged', 'layers', 'resume', 'signal', 'onProgress', 'reason'], 'purgeByPrompt()');
    const regex = compilePattern(pattern, 'purgeByPrompt() pattern');
    const pageSize = positiveInt(options.pageSize ?? 200, 'pageSize');
    const maxScanned = positiveInt(options.maxScanned ?? 100_000, 'maxScanned');
    const maxPurged = positiveInt(options.maxPurged ?? 10_000, 'maxPurged');
    const scope = options.scope === undefined ? undefined : (({ tenant, namespace }) => ({ tenant, namespace }))(this.cache.resolveScope(options.scope));
    const layers = layersOf(this.cache);
    if (options.layers) {
      for (const n of options.layers) if (!layers.some((l) => l.name === n)) throw new InvalidOptionError(`${PKG}: purgeByPrompt() layer "${n}" is not in this cache (${layers.map((l) => l.name).join(', ')})`, { field: 'layers' });
    }
    const chosen = layers.filter((l) => !options.layers || options.layers.includes(l.name));
    const unscannable = chosen.filter((l) => typeof l.scan !== 'function').map((l) => l.name);
    const started = this.now();
    const t0 = performance.now();
    const seen = new Set<string>();
    const results: InvalidationResult[] = [];
    let scanned = 0;
    let matched = 0;
    let purged = 0;
    let withoutText = 0;
    const resume: Record<string, string> = {};
    let stopped = false;

    const resumeFrom = options.resume && Object.keys(options.resume).length > 0 ? options.resume : undefined;
    for (const [index, l] of chosen.entries()) {
      if (typeof l.scan !== 'function') continue;
      // A resumed purge skips the layers it had finished (they are absent from `resume`).
      if (resumeFrom && !(l.name in resumeFrom)) continue;
      let cursor: string | undefined = resumeFrom?.[l.name] || undefined;
      // Collect first, delete after: some layers' cursors are offsets that deletes would shift.
      const matches: CacheKey[] = [];
      do {
        if (options.signal?.aborted || scanned >= maxScanned || purged + matches.length >= maxPurged) {
          stopped = true;
          break;
        }
        const page = await l.scan({ ...(scope ? { scope } : {}), ...(cursor !== undefined ? { cursor } : {}), count: Math.min(pageSize, maxScanned - scanned) });
        scanned += page.items.length;
        for (const { key, entry } of page.items) {
          const text = storedText(entry);
          if (text === undefined) {
            withoutText++;
            continue;
          }
          if (!regex.test(text) || seen.has(key.id)) continue;
          seen.add(key.id);
          matches.push(key);
          if (purged + matches.length >= maxPurged) {
            stopped = true;
            break;
          }
        }
        cursor = page.cursor;
        options.onProgress?.({ layer: l.name, scanned, matched: matched + matches.length, purged });
        if (stopped) break;
        await yieldToLoop();
      } while (cursor !== undefined);
      matched += matches.length;
      for (let i = 0; i < matches.length; i += pageSize) {
        const batch = matches.slice(i, i + pageSize);
        const rs = await Promise.all(batch.map((k) => this.tombstoned({ type: 'key', keyId: k.id, scope: k.scope }, () => this.cache.invalidateCacheKey(k))));
        results.push(...rs);
        purged += rs.filter((r) => Object.values(r.layers).some((n) => n > 0)).length;
        await yieldToLoop();
      }
      if (stopped) {
        // Deletes can shift offset-style cursors (L1 pages by position), so a layer we purged
        // from is resumed from its start: purged entries are gone, the rest is found again.
        resume[l.name] = matches.length > 0 ? '' : (cursor ?? '');
        for (const rest of chosen.slice(index + 1)) if (typeof rest.scan === 'function') resume[rest.name] = '';
        break;
      }
    }
    const audit = this.report('prompt-purge', started, t0, results, { reason: options.reason ?? `prompt matches ${String(regex)}` });
    const complete = !stopped;
    return {
      scanned,
      matched,
      purged,
      layers: audit.layers,
      withoutText,
      unscannable,
      complete,
      ...(complete ? {} : { resume }),
      audit,
    };
  }

  /** Waits for race repairs started by remote invalidations. */
  async settled(): Promise<void> {
    while (this.repairs.size > 0) await Promise.allSettled([...this.repairs]);
  }

  /** Detaches from the cache: the plugin becomes inert and listeners are removed. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.settled();
    this.closed = true;
    this.cache.off('invalidate', this.onCacheInvalidate);
    this.listeners.clear();
    this.journal.clear();
    this.tombstones = [];
    this.keyTombstones.clear();
  }

  // ------------------------------------------------------------------ plugin

  private context(phase: RuleContext['phase'], request: unknown, profile: RequestProfile, scope: Scope, entry?: CacheEntry): RuleContext {
    const models: string[] = [];
    const requested = safeModel(profile, request);
    if (requested) models.push(requested);
    if (entry?.model && entry.model !== requested) models.push(entry.model);
    return new Ctx(phase, request, profile, scope, models, entry?.tags ?? [], entry, this.promptFor);
  }

  private readonly promptFor = (request: unknown, profile: RequestProfile): string | undefined => this.safePrompt(request, profile);

  private safePrompt(request: unknown, profile: RequestProfile): string | undefined {
    try {
      return this.promptTextOf(request, profile);
    } catch {
      return undefined;
    }
  }

  /** A rule whose own code throws (a `when` or tags function) does not apply, and is reported. */
  private test(r: CompiledRule & { match: { test(ctx: RuleContext): boolean } }, ctx: RuleContext): boolean {
    try {
      return r.match.test(ctx);
    } catch (error) {
      this.ruleFailed(r.name, error);
      return false;
    }
  }

  private tagsOf(r: CompiledRule & { type: 'tag' }, ctx: RuleContext): string[] {
    try {
      return r.tags(ctx);
    } catch (error) {
      this.ruleFailed(r.name, error);
      return [];
    }
  }

  private ruleFailed(rule: string, error: unknown): void {
    try {
      this.onRuleError(error, rule);
    } catch {
      // a failing error sink must not take the request down either
    }
  }

  private onRequest(p: PolicyContext): PolicyDecision | undefined {
    if (this.closed) return undefined;
    // When this request began: stored with its answer so every process that knows of a later
    // invalidation refuses an answer whose load began before it (see acceptHit).
    if (this.raceWindowMs > 0 && typeof p.request === 'object' && p.request !== null) this.requestStarts.set(p.request, this.now());
    let ctx: RuleContext | undefined;
    for (const r of this.rules) {
      if (r.type !== 'noCache' || r.ttlMs !== undefined || r.match.needsTags) continue;
      ctx ??= this.context('request', p.request, p.profile, p.scope);
      if (this.test(r, ctx)) return { read: false, write: false, reason: r.reason };
    }
    return undefined;
  }

  private beforeWrite(w: WriteContext): ReturnType<NonNullable<CachePlugin['beforeWrite']>> {
    if (this.closed) return undefined;
    let ctx = this.context('write', w.request, w.profile, w.scope, w.entry);
    let ttlMs: number | undefined;
    const added: string[] = [];
    for (const r of this.rules) {
      if (r.type === 'tag' && this.test(r, ctx)) {
        const tags = this.tagsOf(r, ctx).filter((t) => !ctx.tags.includes(t));
        if (tags.length > 0) {
          added.push(...tags);
          ctx = (ctx as Ctx).withTags([...ctx.tags, ...tags]);
        }
      }
    }
    for (const r of this.rules) {
      if (r.type === 'noCache' && this.test(r, ctx)) {
        if (r.ttlMs === undefined) return false;
        ttlMs = Math.min(ttlMs ?? Infinity, r.ttlMs);
      } else if (r.type === 'maxAge' && this.test(r, ctx)) {
        ttlMs = Math.min(ttlMs ?? Infinity, r.maxAgeMs);
      } else if (r.type === 'staleAfterModelChange' && w.entry.model && this.test(r, ctx)) {
        this.currentModels.set(modelSlot(w.scope, safeModel(w.profile, w.request)), w.entry.model);
      }
    }
    let meta: Record<string, unknown> | undefined;
    if (this.storePromptText && w.entry.semantic?.text === undefined && typeof w.entry.meta?.[PROMPT_META_KEY] !== 'string') {
      const text = this.safePrompt(w.request, w.profile);
      if (text !== undefined) meta = { [PROMPT_META_KEY]: text };
    }
    const began = typeof w.request === 'object' && w.request !== null ? this.requestStarts.get(w.request) : undefined;
    if (began !== undefined && began <= w.entry.createdAt) (meta ??= {})[STARTED_META_KEY] = began;
    this.remember(w.key, ctx.tags);
    if (ttlMs === undefined && added.length === 0 && !meta) return undefined;
    return { ...(ttlMs !== undefined ? { ttlMs } : {}), ...(added.length > 0 ? { tags: added } : {}), ...(meta ? { meta } : {}) };
  }

  private acceptHit(h: HitContext): boolean {
    if (this.closed) return true;
    const { entry } = h;
    const age = h.now - entry.createdAt;
    if (this.tombstones.length > 0 || this.keyTombstones.size > 0) {
      this.pruneTombstones();
      // An answer whose request began before a covering invalidation may hold what that
      // invalidation removed (a load racing it, in any process): refuse it.
      const began = entryBegan(entry);
      const k = this.keyTombstones.get(h.key.id);
      if (k !== undefined && k.at >= began) return false;
      for (const t of this.tombstones) {
        if (t.at >= began && covers(t.message, h.key, entry)) return false;
      }
    }
    if (!this.rules.some((r) => r.type !== 'tag')) return true;
    const ctx = this.context('read', h.request, h.profile, h.scope, entry);
    for (const r of this.rules) {
      switch (r.type) {
        case 'noCache':
          if (this.test(r, ctx) && (r.ttlMs === undefined || age > r.ttlMs)) return false;
          break;
        case 'maxAge':
          if (age > r.maxAgeMs && this.test(r, ctx)) return false;
          break;
        case 'staleAfterModelChange': {
          if (!entry.model) break;
          const current = this.currentModels.get(modelSlot(h.scope, safeModel(h.profile, h.request)));
          if (current !== undefined && current !== entry.model && this.test(r, ctx)) return false;
          break;
        }
        default:
          break;
      }
    }
    return true;
  }

  // ------------------------------------------------------------------ invalidation plumbing

  private async run(
    source: InvalidationAudit['source'],
    targets: readonly InvalidationTarget[],
    extra: { event?: string; data?: unknown; reason?: string },
  ): Promise<InvalidationAudit> {
    const started = this.now();
    const t0 = performance.now();
    const ops = dedupeTargets(targets).map((t) => this.prepare(t));
    const results = await Promise.all(ops.map((op) => op()));
    return this.report(source, started, t0, results, extra);
  }

  /**
   * Validates a target and returns the operation, without starting it (so a bad target in a
   * list fails before anything is purged).
   */
  private prepare(t: InvalidationTarget): () => Promise<InvalidationResult> {
    const base = (scope: ScopeInput) => scopeInputOf(this.cache.resolveScope(scope));
    if (typeof t === 'string') {
      if (t === '') throw new InvalidRequestError(`${PKG}: an empty tag cannot be invalidated`, { field: 'tag' });
      return () => this.tombstoned({ type: 'tag', tag: t }, () => this.cache.invalidateTag(t));
    }
    if (typeof t !== 'object' || t === null) throw new InvalidRequestError(`${PKG}: invalidation target must be a tag string or { tag } / { key } / { scope }, got ${typeof t}`, { field: 'target' });
    if ('tag' in t) {
      if (typeof t.tag !== 'string' || t.tag === '') throw new InvalidRequestError(`${PKG}: target.tag must be a non-empty string`, { field: 'tag' });
      const message: InvalidationMessage = t.scope === undefined ? { type: 'tag', tag: t.tag } : { type: 'tag', tag: t.tag, scope: base(t.scope) };
      return () => this.tombstoned(message, () => this.cache.invalidateTag(t.tag, t.scope === undefined ? {} : { scope: t.scope }));
    }
    if ('key' in t) {
      const key = this.cache.keyFor(t.key, { ...(t.scope !== undefined ? { scope: t.scope } : {}), ...(t.profile ? { profile: t.profile } : {}) });
      return () => this.tombstoned({ type: 'key', keyId: key.id, scope: key.scope }, () => this.cache.invalidateCacheKey(key));
    }
    if ('scope' in t) {
      const mode = (t as { mode?: string }).mode ?? 'version';
      if (mode === 'clear') return () => this.tombstoned({ type: 'clear', scope: base(t.scope) }, () => this.cache.clear(t.scope));
      // A version bump needs no tombstone: lookups after it compute keys of the new version.
      if (mode === 'version') return () => this.bumpOwned(t.scope).then((r) => r.result);
      throw new InvalidRequestError(`${PKG}: scope target mode must be 'version' or 'clear', got ${JSON.stringify(mode)}`, { field: 'mode' });
    }
    throw new InvalidRequestError(`${PKG}: invalidation target must have one of tag, key, scope: ${safeCanon(t)}`, { field: 'target' });
  }

  /** A version bump run by the engine (so the `invalidate` event is not audited twice). */
  private bumpOwned(scope: ScopeInput | undefined): Promise<{ version: number; result: InvalidationResult }> {
    const current = this.cache.resolveScope(scope);
    const predicted: InvalidationMessage = { type: 'scope-version', scope: { tenant: current.tenant, namespace: current.namespace, version: current.version + 1 } };
    let out: { version: number; result: InvalidationResult } | undefined;
    return this.tombstoned(predicted, async () => (out = await this.cache.bumpScopeVersion(scope)).result, false).then(() => out!);
  }

  /**
   * Leaves the tombstone before the layers are touched: an L2 read already in flight that
   * returns between the L1 delete and the end of the invalidation cannot be served or
   * backfilled. (Without this, the tombstone would only appear with core's `invalidate` event.)
   */
  private async tombstoned(message: InvalidationMessage, fn: () => Promise<InvalidationResult>, tombstone = true): Promise<InvalidationResult> {
    const id = messageId(message);
    if (tombstone && this.raceWindowMs > 0) this.addTombstone(this.now(), message);
    this.ownPending.set(id, (this.ownPending.get(id) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = (this.ownPending.get(id) ?? 1) - 1;
      if (n <= 0) this.ownPending.delete(id);
      else this.ownPending.set(id, n);
    }
  }

  private report(
    source: InvalidationAudit['source'],
    at: number,
    t0: number,
    results: readonly InvalidationResult[],
    extra: { event?: string; data?: unknown; reason?: string; origin?: 'local' | 'remote' },
  ): InvalidationAudit {
    const layers: Record<string, number> = {};
    for (const name of this.cache.layerNames) layers[name] = 0;
    for (const r of results) for (const [name, n] of Object.entries(r.layers)) layers[name] = (layers[name] ?? 0) + n;
    const audit: InvalidationAudit = {
      id: randomUUID(),
      at,
      source,
      origin: extra.origin ?? 'local',
      ...(extra.reason !== undefined ? { reason: extra.reason } : {}),
      ...(extra.event !== undefined ? { event: extra.event } : {}),
      ...(extra.data !== undefined ? { data: extra.data } : {}),
      targets: results.map((r) => r.message),
      layers,
      total: Object.values(layers).reduce((a, b) => a + b, 0),
      durationMs: performance.now() - t0,
    };
    for (const l of [...this.listeners]) {
      try {
        l(audit);
      } catch {
        // an audit sink must not break invalidation
      }
    }
    return audit;
  }

  /** Every invalidation the cache performs (ours, the app's own, remote ones) leaves a tombstone. */
  private observeInvalidation(e: InvalidationResult & { origin: 'local' | 'remote' }): void {
    if (this.closed) return;
    const now = this.now();
    // Our own invalidations left their tombstone before touching the layers and are audited by
    // the operation that ran them (see tombstoned()); the app's direct cache calls and other
    // processes' messages are audited here.
    const own = e.origin === 'local' && this.ownPending.has(messageId(e.message));
    if (!own) this.report(e.origin === 'remote' ? 'remote' : 'cache', now, performance.now(), [e], { origin: e.origin });
    if (this.raceWindowMs === 0) return;
    if (!own) this.addTombstone(now, e.message);
    this.pruneTombstones();
    if (e.origin !== 'remote') return;
    // Cross-process race: a load of ours that started before the remote invalidation may have
    // written its (now stale) answer to a shared layer after the sender purged it but before
    // the message reached us. Purge such recent writes again, everywhere.
    const suspects: CacheKey[] = [];
    const since = now - this.raceWindowMs;
    if (e.message.type === 'key') {
      const j = this.journal.get(e.message.keyId);
      if (j && j.at >= since) {
        suspects.push(j.key);
        this.journal.delete(e.message.keyId);
      }
    } else {
      for (const [id, j] of [...this.journal.entries()]) {
        if (j.at < since) continue;
        if (covers(e.message, j.key, j)) {
          suspects.push(j.key);
          this.journal.delete(id);
        }
      }
    }
    if (suspects.length === 0) return;
    const t0 = performance.now();
    const p = this.cache
      .flush()
      .then(() => Promise.all(suspects.map((k) => this.tombstoned({ type: 'key', keyId: k.id, scope: k.scope }, () => this.cache.invalidateCacheKey(k)))))
      .then((rs) => this.report('race-repair', now, t0, rs, { reason: 'write raced a remote invalidation' }))
      .catch(() => undefined)
      .finally(() => this.repairs.delete(p));
    this.repairs.add(p);
  }

  private remember(key: CacheKey, tags: readonly string[]): void {
    if (this.raceWindowMs === 0 || this.journalMax === 0) return;
    const now = this.now();
    this.journal.set(key.id, { key, tags, at: now });
    this.journal.prune(now - this.raceWindowMs, this.journalMax);
  }

  private addTombstone(at: number, message: InvalidationMessage): void {
    if (message.type === 'key') {
      this.keyTombstones.set(message.keyId, { at });
    } else {
      this.tombstones.push({ at, message });
    }
  }

  private pruneTombstones(): void {
    const limit = this.now() - this.raceWindowMs;
    let i = 0;
    while (i < this.tombstones.length && this.tombstones[i]!.at < limit) i++;
    if (i > 0) this.tombstones = this.tombstones.slice(i);
    this.keyTombstones.prune(limit, Number.POSITIVE_INFINITY);
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidOptionError(`${PKG}: this InvalidationEngine is closed`);
  }
}

/** `createInvalidationEngine({ cache, rules })` — same as `new InvalidationEngine(...)`. */
export function createInvalidationEngine(options: InvalidationEngineOptions): InvalidationEngine {
  return new InvalidationEngine(options);
}

// ------------------------------------------------------------------ helpers

/** Does an invalidation message cover this entry? (Mirrors core's rule.) */
export function covers(m: InvalidationMessage, key: CacheKey, entry: { readonly tags: readonly string[] }): boolean {
  const sameBase = (s?: Pick<Scope, 'tenant' | 'namespace'>) => !s || (s.tenant === key.scope.tenant && s.namespace === key.scope.namespace);
  switch (m.type) {
    case 'key':
      return m.keyId === key.id;
    case 'tag':
      return entry.tags.includes(m.tag) && sameBase(m.scope);
    case 'scope-version':
      return sameBase(m.scope) && key.scope.version < m.scope.version;
    case 'clear':
      return sameBase(m.scope);
    default:
      return false;
  }
}

/**
 * What rules see. A class (not a literal with a getter) keeps the hit path monomorphic; the
 * prompt text is computed only when a rule reads it (most L1 hits never need it).
 */
class Ctx implements RuleContext {
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

/** When the request behind an entry began: the engine's stamp, else the write time. */
function entryBegan(entry: CacheEntry): number {
  const b = entry.meta?.[STARTED_META_KEY];
  return typeof b === 'number' && b <= entry.createdAt ? b : entry.createdAt;
}

export function storedText(entry: CacheEntry): string | undefined {
  if (typeof entry.semantic?.text === 'string') return entry.semantic.text;
  const t = entry.meta?.[PROMPT_META_KEY];
  return typeof t === 'string' ? t : undefined;
}

function messageId(m: InvalidationMessage): string {
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

function dedupeTargets(targets: readonly InvalidationTarget[]): InvalidationTarget[] {
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

function safeCanon(v: unknown): string {
  try {
    return canonicalize(v);
  } catch {
    return String(v);
  }
}

function safeModel(profile: RequestProfile, request: unknown): string | undefined {
  try {
    return profile.model?.(request);
  } catch {
    return undefined;
  }
}

function modelSlot(scope: Scope, requested: string | undefined): string {
  return scopeBaseId(scope) + '\n' + (requested ?? '');
}

function scopeInputOf(s: Scope): { tenant: string; namespace: string } {
  return { tenant: s.tenant, namespace: s.namespace };
}

function positiveInt(v: unknown, field: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 1) throw new InvalidOptionError(`${PKG}: purgeByPrompt() option "${field}" must be a positive integer`, { field });
  return v as number;
}

function countEventRules(m: Map<string, EventRuleCompiled[]>): number {
  let n = 0;
  for (const l of m.values()) n += l.length;
  return n;
}

function isCacheLike(c: unknown): c is MultiLayerCache {
  const x = c as MultiLayerCache;
  return typeof x === 'object' && x !== null && typeof x.use === 'function' && typeof x.invalidateTag === 'function' && typeof x.on === 'function';
}

function layersOf(cache: MultiLayerCache): Layer[] {
  const layers = (cache as { layerInstances?: Layer[] }).layerInstances;
  if (!Array.isArray(layers)) {
    throw new InvalidOptionError(`${PKG}: purgeByPrompt() needs MultiLayerCache.layerInstances (@strata-cache/core with it); upgrade core`, { field: 'cache' });
  }
  return [...layers];
}
