import type { InvalidationMessage, MultiLayerCache, RequestProfile, ScopeInput } from '@strata-cache/core';
import type { InvalidationRule } from './rules.js';

/** Where `trackConfig` remembers each scope's config fingerprint and version (an ioredis client fits). */
export interface VersionStore {
  get(key: string): Promise<string | null | undefined> | string | null | undefined;
  set(key: string, value: string): Promise<unknown> | unknown;
}

export interface InvalidationEngineOptions {
  /** The cache to keep true. The engine installs itself as one of its plugins. */
  cache: MultiLayerCache;
  /** Rules, checked now: a bad pattern, template or event name throws InvalidOptionError here. @default [] */
  rules?: readonly InvalidationRule[] | undefined;
  /**
   * Event names the application may emit, optionally with the data fields each carries
   * (`{ product_updated: ['id'] }`). When set, a rule for another name, or a template reading
   * an undeclared field, is an error at registration. @default any name may be registered
   */
  events?: readonly string[] | Readonly<Record<string, readonly string[]>> | undefined;
  /** Text that `prompt` patterns match. @default the last user turn, else all message text, else `input`/`prompt` */
  promptText?: ((request: unknown, profile: RequestProfile) => string | undefined) | undefined;
  /**
   * Store the prompt text in `entry.meta['strata.prompt']` when the entry carries no
   * `semantic.text`, so `purgeByPrompt` can match it later. @default true
   */
  storePromptText?: boolean | undefined;
  /**
   * How long (ms) this process remembers its recent writes for the race repair: a write whose
   * load began before a remote invalidation that covers it (it reached a shared layer before the
   * message reached us) is purged again everywhere. No process serves such a write either way
   * (core refuses answers whose load began before a purge it knows of); the repair frees the room
   * it takes. Should exceed the bus's worst delivery delay. 0 disables the repair. @default 5_000
   */
  raceWindowMs?: number | undefined;
  /** Most recent writes remembered for the race repair. @default 10_000 */
  journalMaxEntries?: number | undefined;
  /** Persists `trackConfig` fingerprints and versions across restarts and processes. @default in-process only */
  versionStore?: VersionStore | undefined;
  /** Key prefix in `versionStore`. @default "strata:config:" */
  versionStorePrefix?: string | undefined;
  /**
   * Audit listener: once per engine operation (event, purge, version bump, prompt purge, race
   * repair), per invalidation received from another process, and per direct cache call.
   * @default none (see also `engine.onInvalidate(fn)`)
   */
  onInvalidate?: ((record: InvalidationAudit) => void) | undefined;
  /**
   * Called when a rule's own function (`match.when`, a tags function) throws while the cache
   * serves a request; the rule is then treated as not matching. A cache never fails a request
   * because of a rule. @default process.emitWarning
   */
  onRuleError?: ((error: unknown, rule: string) => void) | undefined;
  /** Clock; use the cache's. @default Date.now */
  now?: (() => number) | undefined;
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
  /** Entries removed per layer reached, summed over the targets (a layer not reached counts nothing here: see `unreached`). */
  readonly layers: Readonly<Record<string, number>>;
  readonly total: number;
  /** Layers some target could not reach (core retries them; the watermark refuses what they hold meanwhile). */
  readonly unreached: readonly string[];
  /** Every target's watermark was acknowledged by the bus's durable store. */
  readonly durable: boolean;
  /** Some of it is still being retried by core: a layer, the bus message or the watermark's storage. */
  readonly pending: boolean;
  readonly durationMs: number;
}

export interface PromptPurgeOptions {
  /** Only this tenant+namespace. @default every scope */
  scope?: ScopeInput | undefined;
  /** Entries read per scan page (and deleted per batch). @default 200 */
  pageSize?: number | undefined;
  /** Stop after reading this many entries (over all layers). @default 100_000 */
  maxScanned?: number | undefined;
  /** Stop after purging this many entries. @default 10_000 */
  maxPurged?: number | undefined;
  /** Only scan these layers (by name). @default every layer with scan() */
  layers?: readonly string[] | undefined;
  /** Continue a purge that stopped early: pass its `resume`. @default start from the beginning */
  resume?: Readonly<Record<string, string>> | undefined;
  /** Stops the purge between pages (the report then has `complete: false` and `resume`). @default none */
  signal?: AbortSignal | undefined;
  /** Called after every page. @default none */
  onProgress?: ((progress: { layer: string; scanned: number; matched: number; purged: number }) => void) | undefined;
  /** Shown in the audit record. @default "prompt matches <pattern>" */
  reason?: string | undefined;
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
