import { randomUUID } from 'node:crypto';
import {
  type CacheEntry,
  type CacheKey,
  entryStamp,
  type CachePlugin,
  type HitContext,
  type InvalidationMessage,
  type InvalidationResult,
  InvalidOptionError,
  InvalidRequestError,
  MultiLayerCache,
  type PolicyContext,
  type PolicyDecision,
  type RequestProfile,
  type Scope,
  type ScopeInput,
  type WriteContext,
} from '@strata-cache/core';
import { ConfigVersions } from './config-versions.js';
import {
  Ctx,
  ENGINE_OPTIONS,
  type EventRuleCompiled,
  type JournalEntry,
  PKG,
  PROMPT_META_KEY,
  countEventRules,
  covers,
  dedupeTargets,
  isCacheLike,
  messageId,
  modelSlot,
  parseEvents,
  safeCanon,
  safeModel,
  scopeInputOf,
} from './internals.js';
import { type PatternInput, defaultPromptText } from './patterns.js';
import { purgeByPrompt } from './prompt-purge.js';
import {
  type CompiledRule,
  type EventTargets,
  type InvalidationRule,
  type InvalidationTarget,
  type RuleContext,
  checkKnown,
  compileEventRule,
  compileRule,
} from './rules.js';
import { TimedIndex } from './timed-index.js';
import type { InvalidationAudit, InvalidationEngineOptions, PromptPurgeOptions, PromptPurgeReport } from './types.js';

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
  private readonly configs: ConfigVersions;
  private readonly now: () => number;
  private readonly onRuleError: (error: unknown, rule: string) => void;
  private readonly listeners = new Set<(record: InvalidationAudit) => void>();
  /** keyId → last write of this process, in insertion (≈ time) order. */
  private readonly journal = new TimedIndex<JournalEntry>();
  /** scope base + requested model → newest answering model seen (staleAfterModelChange). */
  private readonly currentModels = new Map<string, string>();
  private readonly onCacheInvalidate: (e: InvalidationResult & { origin: 'local' | 'remote' }) => void;
  private readonly repairs = new Set<Promise<unknown>>();
  /** Invalidations this engine is running (audited by the operation, not by the cache's event). */
  private readonly ownPending = new Map<string, number>();
  private closed = false;

  constructor(options: InvalidationEngineOptions) {
    checkKnown(options, ENGINE_OPTIONS, 'createInvalidationEngine()');
    if (!(options.cache instanceof MultiLayerCache) && !isCacheLike(options.cache)) {
      throw new InvalidOptionError(`${PKG}: option "cache" must be a MultiLayerCache from @strata-cache/core`, { field: 'cache' });
    }
    this.cache = options.cache;
    this.knownEvents = parseEvents(options.events);
    if (options.promptText !== undefined && typeof options.promptText !== 'function')
      throw new InvalidOptionError(`${PKG}: option "promptText" must be a function`, { field: 'promptText' });
    this.promptTextOf = options.promptText ?? defaultPromptText;
    this.storePromptText = options.storePromptText ?? true;
    this.raceWindowMs = options.raceWindowMs ?? 5_000;
    if (typeof this.raceWindowMs !== 'number' || !Number.isFinite(this.raceWindowMs) || this.raceWindowMs < 0) {
      throw new InvalidOptionError(`${PKG}: option "raceWindowMs" must be a number of milliseconds >= 0`, { field: 'raceWindowMs' });
    }
    this.journalMax = options.journalMaxEntries ?? 10_000;
    if (!Number.isSafeInteger(this.journalMax) || this.journalMax < 0)
      throw new InvalidOptionError(`${PKG}: option "journalMaxEntries" must be an integer >= 0`, { field: 'journalMaxEntries' });
    if (options.versionStore !== undefined && (typeof options.versionStore?.get !== 'function' || typeof options.versionStore?.set !== 'function')) {
      throw new InvalidOptionError(`${PKG}: option "versionStore" needs get(key) and set(key, value) (an ioredis client works)`, { field: 'versionStore' });
    }
    this.configs = new ConfigVersions(this.cache, options.versionStore, options.versionStorePrefix ?? 'strata:config:', (scope, reason) =>
      this.bumpVersion(scope, reason),
    );
    this.now = options.now ?? Date.now;
    if (options.onRuleError !== undefined && typeof options.onRuleError !== 'function')
      throw new InvalidOptionError(`${PKG}: option "onRuleError" must be a function`, { field: 'onRuleError' });
    this.onRuleError =
      options.onRuleError ??
      ((error, rule) =>
        process.emitWarning(`${PKG}: rule "${rule}" threw and was skipped: ${(error as Error)?.message ?? String(error)}`, { code: 'STRATA_RULE_ERROR' }));
    if (options.onInvalidate !== undefined) {
      if (typeof options.onInvalidate !== 'function')
        throw new InvalidOptionError(`${PKG}: option "onInvalidate" must be a function`, { field: 'onInvalidate' });
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
    if (compiled.type === 'event') this.registerEventRule(compiled);
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
   * Registers an event rule (same as `addRule(onEvent(event, targets))`):
   * `addEventRule('product_updated', ['product:{id}', 'topic:product'])` or
   * `addEventRule('product_updated', ({ id }) => ['product:' + id, 'topic:product'])`.
   */
  addEventRule(event: string, targets: EventTargets): this {
    this.assertOpen();
    this.registerEventRule(compileEventRule(event, targets, `addEventRule(${JSON.stringify(event)})`, this.knownEvents));
    return this;
  }

  /** @deprecated Use {@link addEventRule} (this registers a rule; it is not an event listener). */
  on(event: string, targets: EventTargets): this {
    return this.addEventRule(event, targets);
  }

  /** Audit listener; returns a function that removes it. */
  onInvalidate(listener: (record: InvalidationAudit) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  private registerEventRule(rule: EventRuleCompiled): void {
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
  async applyEvent(event: string, data: Record<string, unknown> = {}): Promise<InvalidationAudit> {
    this.assertOpen();
    const rules = this.eventRules.get(event);
    if (!rules) {
      const known = [...this.eventRules.keys()].map((e) => JSON.stringify(e)).join(', ') || '(none)';
      throw new InvalidOptionError(`${PKG}: applyEvent(${JSON.stringify(event)}): no rule is registered for this event; registered: ${known}`, {
        field: 'event',
      });
    }
    if (typeof data !== 'object' || data === null)
      throw new InvalidRequestError(`${PKG}: applyEvent(${JSON.stringify(event)}) data must be an object`, { field: 'data' });
    const targets: InvalidationTarget[] = [];
    for (const r of rules) {
      if (r.templates) for (const t of r.templates) targets.push(t.fill(data, `applyEvent(${JSON.stringify(event)})`));
      else if (r.fn) {
        const out = await r.fn(data);
        if (out === undefined || out === null) continue;
        targets.push(...(Array.isArray(out) ? (out as InvalidationTarget[]) : [out as InvalidationTarget]));
      }
    }
    return this.run('event', targets, { event, data, reason: `event ${event}` });
  }

  /** @deprecated Use {@link applyEvent} (this runs purges; it is not an event emitter). */
  emit(event: string, data: Record<string, unknown> = {}): Promise<InvalidationAudit> {
    return this.applyEvent(event, data);
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
  trackConfig(scope: ScopeInput | undefined, config: Record<string, unknown>): Promise<{ changed: boolean; version: number; changedFields: string[] }> {
    this.assertOpen();
    return this.configs.track(scope, config);
  }

  /**
   * Admin operation: removes entries whose stored prompt text matches `pattern`, scanning the
   * layers page by page (bounded by `maxScanned` / `maxPurged`, yielding between pages).
   * Matches are removed from every layer and, via the bus, every process.
   */
  purgeByPrompt(pattern: PatternInput, options: PromptPurgeOptions = {}): Promise<PromptPurgeReport> {
    this.assertOpen();
    return purgeByPrompt(
      {
        cache: this.cache,
        now: this.now,
        purgeKey: (k) => this.owned({ type: 'key', keyId: k.id, scope: k.scope }, () => this.cache.invalidateCacheKey(k)),
        report: (started, t0, results, reason) => this.report('prompt-purge', started, t0, results, { reason }),
      },
      pattern,
      options,
    );
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
    this.remember(w.key, ctx.tags, entryStamp(w.entry));
    if (ttlMs === undefined && added.length === 0 && !meta) return undefined;
    return { ...(ttlMs !== undefined ? { ttlMs } : {}), ...(added.length > 0 ? { tags: added } : {}), ...(meta ? { meta } : {}) };
  }

  private acceptHit(h: HitContext): boolean {
    if (this.closed) return true;
    const { entry } = h;
    const age = h.now - entry.createdAt;
    // (An answer whose load began before a purge that covers it is refused by core, before any
    // plugin sees it: every entry carries its stamp and every purge leaves a watermark.)
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
      return () => this.owned({ type: 'tag', tag: t }, () => this.cache.invalidateTag(t));
    }
    if (typeof t !== 'object' || t === null)
      throw new InvalidRequestError(`${PKG}: invalidation target must be a tag string or { tag } / { key } / { scope }, got ${typeof t}`, { field: 'target' });
    if ('tag' in t) {
      if (typeof t.tag !== 'string' || t.tag === '') throw new InvalidRequestError(`${PKG}: target.tag must be a non-empty string`, { field: 'tag' });
      const message: InvalidationMessage = t.scope === undefined ? { type: 'tag', tag: t.tag } : { type: 'tag', tag: t.tag, scope: base(t.scope) };
      return () => this.owned(message, () => this.cache.invalidateTag(t.tag, t.scope === undefined ? {} : { scope: t.scope }));
    }
    if ('key' in t) {
      const key = this.cache.keyFor(t.key, { ...(t.scope !== undefined ? { scope: t.scope } : {}), ...(t.profile ? { profile: t.profile } : {}) });
      return () => this.owned({ type: 'key', keyId: key.id, scope: key.scope }, () => this.cache.invalidateCacheKey(key));
    }
    if ('scope' in t) {
      const mode = (t as { mode?: string }).mode ?? 'version';
      if (mode === 'clear') return () => this.owned({ type: 'clear', scope: base(t.scope) }, () => this.cache.clear(t.scope));
      if (mode === 'version') return () => this.bumpOwned(t.scope).then((r) => r.result);
      throw new InvalidRequestError(`${PKG}: scope target mode must be 'version' or 'clear', got ${JSON.stringify(mode)}`, { field: 'mode' });
    }
    throw new InvalidRequestError(`${PKG}: invalidation target must have one of tag, key, scope: ${safeCanon(t)}`, { field: 'target' });
  }

  /** A version bump run by the engine (so the `invalidate` event is not audited twice). */
  private bumpOwned(scope: ScopeInput | undefined): Promise<{ version: number; result: InvalidationResult }> {
    const current = this.cache.resolveScope(scope);
    const predicted: InvalidationMessage = {
      type: 'scope-version',
      scope: { tenant: current.tenant, namespace: current.namespace, version: current.version + 1 },
    };
    let out: { version: number; result: InvalidationResult } | undefined;
    return this.owned(predicted, async () => (out = await this.cache.bumpScopeVersion(scope)).result).then(() => out!);
  }

  /**
   * Runs an invalidation of the engine's own through the cache (core sets its watermark before
   * touching any layer: that is the race protection), marked as ours so the cache's `invalidate`
   * event is not audited a second time.
   */
  private async owned(message: InvalidationMessage, fn: () => Promise<InvalidationResult>): Promise<InvalidationResult> {
    const id = messageId(message);
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
    const unreached = [...new Set(results.flatMap((r) => r.unreached ?? []))];
    // A layer no target reached is listed in `unreached`, not counted as 0 removed.
    for (const name of this.cache.layerNames) if (!unreached.includes(name)) layers[name] = 0;
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
      unreached,
      durable: results.length > 0 && results.every((r) => r.durable === true),
      pending: results.some((r) => r.pending === true),
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

  /**
   * Audits the invalidations the engine did not run itself (the app's direct cache calls, other
   * processes' messages) and repairs this process's writes that raced a remote one.
   */
  private observeInvalidation(e: InvalidationResult & { origin: 'local' | 'remote' }): void {
    if (this.closed) return;
    const now = this.now();
    const own = e.origin === 'local' && this.ownPending.has(messageId(e.message));
    if (!own) this.report(e.origin === 'remote' ? 'remote' : 'cache', now, performance.now(), [e], { origin: e.origin });
    if (e.origin !== 'remote' || this.raceWindowMs === 0) return;
    // Cross-process race: a load of ours that began before the remote invalidation may have
    // written its answer to a shared layer after the sender purged it, before the message reached
    // us. No process that knows the watermark serves it (its stamp is older), but it takes room
    // and a process that has not heard yet could: purge such recent writes again, everywhere.
    const suspects: CacheKey[] = [];
    const since = now - this.raceWindowMs;
    const raced = (j: JournalEntry) => j.at >= since && j.stamp <= e.at;
    if (e.message.type === 'key') {
      const j = this.journal.get(e.message.keyId);
      if (j && raced(j)) {
        suspects.push(j.key);
        this.journal.delete(e.message.keyId);
      }
    } else {
      for (const [id, j] of [...this.journal.entries()]) {
        if (raced(j) && covers(e.message, j.key, j)) {
          suspects.push(j.key);
          this.journal.delete(id);
        }
      }
    }
    if (suspects.length === 0) return;
    const t0 = performance.now();
    const p = this.cache
      .flush()
      .then(() => Promise.all(suspects.map((k) => this.owned({ type: 'key', keyId: k.id, scope: k.scope }, () => this.cache.invalidateCacheKey(k)))))
      .then((rs) => this.report('race-repair', now, t0, rs, { reason: 'write raced a remote invalidation' }))
      .catch(() => undefined)
      .finally(() => this.repairs.delete(p));
    this.repairs.add(p);
  }

  private remember(key: CacheKey, tags: readonly string[], stamp: number): void {
    if (this.raceWindowMs === 0 || this.journalMax === 0) return;
    const now = this.now();
    this.journal.set(key.id, { key, tags, at: now, stamp });
    this.journal.prune(now - this.raceWindowMs, this.journalMax);
  }

  private assertOpen(): void {
    if (this.closed) throw new InvalidOptionError(`${PKG}: this InvalidationEngine is closed`);
  }
}

/** `createInvalidationEngine({ cache, rules })` — same as `new InvalidationEngine(...)`. */
export function createInvalidationEngine(options: InvalidationEngineOptions): InvalidationEngine {
  return new InvalidationEngine(options);
}
