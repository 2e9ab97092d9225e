import { performance } from 'node:perf_hooks';
import { isShadowCheck, observeUpstream, shownCalibration } from './calibration.js';
import type { CallRecord } from './call.js';
import { type CacheContext, acceptHit, emitError } from './context.js';
import type { LoadTicket } from './coordinator.js';
import { settledWithin } from './deadline-queue.js';
import { type CacheEntry, isCacheEntry, isExpired } from './entry.js';
import { InvalidRequestError, LoadAbandonedError } from './errors.js';
import type { CacheKey } from './fingerprint.js';
import type { RejectedCandidate } from './layer.js';
import type { ReadPath } from './read-path.js';
import { type Call, type CacheResult, type Loaded, type LookupHit, isLoaded, loaded } from './types.js';
import type { WritePath } from './write-path.js';

/** `begin()` found the answer: serve `result` (`result.entry.chunks` holds a recorded stream). */
export interface BegunHit<T> {
  readonly kind: 'hit';
  readonly key: CacheKey;
  readonly result: CacheResult<T>;
}

/**
 * `begin()` joined an identical load already running in this process (coalescing). Read the
 * answer from `result`, or — for a stream — follow it live with `chunks()`.
 */
export interface JoinedLoad<T> {
  readonly kind: 'join';
  readonly key: CacheKey;
  /**
   * The running load's chunks, chunk for chunk: first those already pushed, then each new one as
   * the loading caller pushes it. Ends when it commits (if it pushed none, yields the committed
   * `chunks`); throws what it was abandoned with — a `LoadAbandonedError` when no reason was
   * given (`started` false: nothing was delivered, call `begin()` again).
   * Each call returns a new iterator from the first chunk.
   */
  chunks(): AsyncIterableIterator<unknown>;
  /** Settles with the loading caller's result (`coalesced: true`), or rejects as its load did. */
  readonly result: Promise<CacheResult<T>>;
}

/**
 * `begin()` made this caller the one that loads. Load the answer, then `commit()` it (or
 * `abandon()` on failure) — exactly one of the two, always (use try/finally: `abandon()` after
 * `commit()` is a no-op). Identical callers meanwhile join this load; streams `push()` each
 * chunk as it arrives so joiners receive it live.
 */
export interface PendingLoad<T> {
  readonly kind: 'load';
  readonly key: CacheKey;
  /** The call's record (request, scope, profile, decision...). */
  readonly call: Call;
  /** `bypass`: the cache is skipped for this request (policy or option): nothing is stored, nobody joins. */
  readonly status: 'miss' | 'bypass';
  /** Whether `commit()` writes the answer (policy, `noStore`). */
  readonly willStore: boolean;
  /**
   * The invalidation epoch this load began in: `store(otherForm, { sinceEpoch: epoch })` stores a
   * second form of the same answer under the same race check.
   */
  readonly epoch: number;
  /** Semantic candidates turned down while looking this request up. */
  readonly rejected: readonly RejectedCandidate[] | undefined;
  /** True once committed or abandoned. */
  readonly settled: boolean;
  /** Hands a chunk to every joiner, live. Chunks pushed are stored as the entry's `chunks` unless commit names its own. */
  push(chunk: unknown): void;
  /**
   * Stores the answer (unless incomplete, vetoed, not cacheable, or invalidated since the load
   * began), releases joiners and other processes waiting on it, and resolves the caller's result.
   */
  commit(result: T | Loaded<T>): Promise<CacheResult<T>>;
  /**
   * Gives up: nothing is stored; joiners see `reason` (their `result` rejects, their chunk
   * iterator throws), or a `LoadAbandonedError` when none is given.
   */
  abandon(reason?: unknown): void;
}

/** What `begin()` resolves: a hit, a load to join, or a load to run. */
export type Begun<T> = BegunHit<T> | JoinedLoad<T> | PendingLoad<T>;

const noop = () => undefined;

/** One load in flight: its chunks so far and its outcome, shared with every joiner. */
class Flight {
  readonly chunks: unknown[] = [];
  readonly result: Promise<CacheResult<unknown>>;
  /** Settles once every layer's write of the answer has (set by commit when it writes). */
  landed: Promise<void> | undefined;
  private state: 'open' | 'done' | 'failed' = 'open';
  private error: unknown;
  private finalChunks: readonly unknown[] | undefined;
  private waiting: Array<() => void> = [];
  private resolveResult!: (r: CacheResult<unknown>) => void;
  private rejectResult!: (e: unknown) => void;

  constructor(
    readonly id: string,
    readonly epoch: number,
    /** When the load began, on the bus clock: the stamp of the entry it writes. */
    readonly stamp: number,
  ) {
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.result.catch(noop); // a load nobody joined must not surface as an unhandled rejection
  }

  push(chunk: unknown): void {
    this.chunks.push(chunk);
    this.wake();
  }

  finish(result: CacheResult<unknown>, chunks: readonly unknown[] | undefined): void {
    this.state = 'done';
    this.finalChunks = chunks;
    this.resolveResult(result);
    this.wake();
  }

  fail(error: unknown): void {
    this.state = 'failed';
    this.error = error;
    this.rejectResult(error);
    this.wake();
  }

  async *follow(): AsyncIterableIterator<unknown> {
    let i = 0;
    for (;;) {
      while (i < this.chunks.length) yield this.chunks[i++];
      if (this.state === 'done') {
        if (i === 0 && this.finalChunks) yield* this.finalChunks;
        return;
      }
      if (this.state === 'failed') throw this.error;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private wake(): void {
    if (this.waiting.length === 0) return;
    const w = this.waiting;
    this.waiting = [];
    for (const resolve of w) resolve();
  }
}

type Lease = Extract<LoadTicket, { kind: 'load' }>;

/** What is left to release when a pending load is dropped without being settled. */
interface Orphan {
  readonly flight: Flight;
  readonly status: 'miss' | 'bypass';
  readonly lease: Lease | undefined;
}

class Lead<T> implements PendingLoad<T> {
  readonly kind = 'load' as const;
  settled = false;

  constructor(
    private readonly path: LoadPath,
    readonly call: CallRecord,
    readonly status: 'miss' | 'bypass',
    readonly epoch: number,
    readonly flight: Flight,
    readonly lease: Lease | undefined,
  ) {}

  get key(): CacheKey {
    return this.call.key;
  }

  get willStore(): boolean {
    return this.status === 'miss' && this.call.write;
  }

  get rejected(): readonly RejectedCandidate[] | undefined {
    return this.call.rejected;
  }

  push(chunk: unknown): void {
    if (this.settled) throw new InvalidRequestError('@strata-cache/core: push() after the load was committed or abandoned');
    this.flight.push(chunk);
  }

  commit(result: T | Loaded<T>): Promise<CacheResult<T>> {
    if (this.settled) return Promise.reject(new InvalidRequestError('@strata-cache/core: commit() after the load was committed or abandoned'));
    this.settled = true;
    this.path.settled(this);
    return this.path.commit(this, result);
  }

  abandon(reason?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.path.settled(this);
    this.path.abandon(this, reason);
  }
}

function flightId(call: CallRecord): string {
  return flightOf(call.write, call.key.id);
}

/** The flight id of a load of key `keyId` that stores its answer (`write`) or not. */
function flightOf(write: boolean, keyId: string): string {
  return (write ? 'w:' : 'n:') + keyId;
}

/**
 * The load side: in-process coalescing (one flight per key and invalidation epoch), the
 * cross-process coordinator, and the two-phase pending load that `getOrLoad` and `begin` share.
 */
export class LoadPath {
  private readonly flights = new Map<string, Flight>();
  /**
   * A pending load dropped without commit() or abandon() (a bug in the caller) would make every
   * identical request wait forever: once it is garbage-collected, its joiners get a
   * LoadAbandonedError (and begin again) and an `error` event says what happened.
   */
  private readonly orphans = new FinalizationRegistry<Orphan>((o) => this.orphaned(o));

  constructor(
    private readonly ctx: CacheContext,
    private readonly reads: ReadPath,
    private readonly writes: WritePath,
  ) {}

  /** A load for a request the cache skips: nothing is stored and nobody joins. */
  bypass<T>(call: CallRecord): PendingLoad<T> {
    this.ctx.stats.loaderCalls++;
    return this.lead<T>(call, 'bypass', new Flight('', this.ctx.invalidations.epoch, 0), undefined);
  }

  /** After a read miss: join an identical load in flight, or become the one that loads. */
  async open<T>(call: CallRecord): Promise<Begun<T>> {
    const joined = this.join<T>(call);
    if (joined) return joined;
    const ctx = this.ctx;
    const flight = new Flight(flightId(call), ctx.invalidations.beginLoad(), ctx.sync.stampTime());
    // A load that began before an invalidation may return what it removed: a request arriving
    // after it never joins it (see join()), and replaces it here.
    if (ctx.coalesce) this.flights.set(flight.id, flight);
    let lease: Lease | undefined;
    if (ctx.coordinator && call.write) {
      let ticket: LoadTicket | undefined;
      try {
        ticket = await ctx.coordinator.begin(call.key);
      } catch (error) {
        emitError(ctx, error, 'coordinator', 'begin');
      }
      if (ticket?.kind === 'hit') {
        const hit = this.fromOtherProcess<T>(call, ticket.entry as CacheEntry<T>, ticket.layer);
        if (hit) {
          flight.finish(hit.result, hit.result.entry?.chunks);
          this.end(flight);
          return hit;
        }
      } else if (ticket?.kind === 'load') lease = ticket;
    }
    ctx.stats.misses++;
    ctx.stats.loaderCalls++;
    const shadowCheck = isShadowCheck(call.calibrations);
    if (shadowCheck) ctx.stats.shadowChecks++;
    if (ctx.events.listenerCount('miss') > 0) {
      const reason = call.decision.reason;
      ctx.events.emit('miss', {
        key: call.key,
        latencyMs: performance.now() - call.started,
        ...(reason ? { reason } : {}),
        ...(call.rejected ? { rejected: call.rejected } : {}),
        ...(shadowCheck ? { shadowCheck } : {}),
      });
    }
    return this.lead<T>(call, 'miss', flight, lease);
  }

  private lead<T>(call: CallRecord, status: 'miss' | 'bypass', flight: Flight, lease: Lease | undefined): Lead<T> {
    const lead = new Lead<T>(this, call, status, flight.epoch, flight, lease);
    this.orphans.register(lead, { flight, status, lease }, lead);
    return lead;
  }

  /** A pending load was settled: it can no longer be orphaned. */
  settled(lead: Lead<unknown>): void {
    this.orphans.unregister(lead);
  }

  private orphaned(o: Orphan): void {
    const error = new LoadAbandonedError(
      '@strata-cache/core: a pending load from begin() was dropped without commit() or abandon(); settle every pending load (try/finally)',
      o.flight.chunks.length > 0,
    );
    emitError(this.ctx, error, undefined, 'begin');
    o.flight.fail(error);
    if (o.status === 'miss') this.end(o.flight);
    if (o.lease) this.release(o.lease, false, undefined);
  }

  /** Runs `loader` as the pending load's body: commit its result, abandon on its error. */
  async run<T>(lead: PendingLoad<T>, loader: (ctx: { key: CacheKey; scope: CallRecord['scope'] }) => unknown): Promise<CacheResult<T>> {
    let raw: unknown;
    try {
      raw = await loader({ key: lead.call.key, scope: lead.call.scope });
    } catch (error) {
      lead.abandon(error);
      throw error;
    }
    return lead.commit(raw as T | Loaded<T>);
  }

  async commit<T>(lead: Lead<T>, result: T | Loaded<T>): Promise<CacheResult<T>> {
    const ctx = this.ctx;
    const call = lead.call;
    let allLanded: Promise<void> | undefined;
    let stored = false;
    try {
      const out = isLoaded<T>(result) ? result : loaded(result);
      if (out.usage) ctx.stats.recordUpstream(out.usage, out.model ?? call.profile.model?.(call.request));
      const pushed = lead.flight.chunks;
      const toStore: Loaded<T> = out.chunks === undefined && pushed.length > 0 ? { ...out, chunks: pushed } : out;
      if (lead.willStore) {
        const w = this.writes.write(call, toStore, lead.epoch, lead.flight.stamp, (p) => (allLanded = lead.flight.landed = p));
        stored = typeof w === 'boolean' ? w : await w;
      }
      // A calibrating semantic layer learns from the upstream answer (shadow checks, near misses).
      if (lead.status === 'miss' && out.complete !== false) observeUpstream(ctx, call.calibrations, out.value);
      const calibration = shownCalibration(call.calibrations);
      const r: CacheResult<T> = {
        value: out.value,
        status: lead.status,
        key: call.key,
        stored,
        ...(call.rejected ? { rejected: call.rejected } : {}),
        ...(calibration ? { calibration } : {}),
      };
      lead.flight.finish(r as CacheResult<unknown>, toStore.chunks);
      return r;
    } catch (error) {
      lead.flight.fail(error);
      throw error;
    } finally {
      this.finish(lead, stored, allLanded);
    }
  }

  abandon<T>(lead: Lead<T>, reason: unknown): void {
    if (reason !== undefined) this.ctx.stats.loaderErrors++;
    lead.flight.fail(
      reason !== undefined
        ? reason
        : new LoadAbandonedError('@strata-cache/core: the load this call joined was abandoned; begin() again', lead.flight.chunks.length > 0),
    );
    this.finish(lead, false, undefined);
  }

  private join<T>(call: CallRecord): JoinedLoad<T> | undefined {
    const ctx = this.ctx;
    if (!ctx.coalesce) return undefined;
    const flight = this.flights.get(flightId(call));
    if (!flight || flight.epoch !== ctx.invalidations.epoch) return undefined;
    ctx.stats.coalesced++;
    const result = flight.result.then((shared) => {
      // The flight may have ended as a hit (another process loaded it): count what this caller got.
      if (shared.status === 'hit' && shared.entry) {
        const layer = shared.layer ?? '';
        const ageMs = shared.ageMs ?? 0;
        ctx.stats.recordHit({ key: shared.key, entry: shared.entry, layer, ageMs });
        if (ctx.events.listenerCount('hit') > 0) ctx.events.emit('hit', { key: shared.key, layer, latencyMs: performance.now() - call.started, ageMs });
      } else ctx.stats.misses++;
      return { ...shared, coalesced: true } as CacheResult<T>;
    });
    result.catch(noop);
    return { kind: 'join', key: call.key, chunks: () => flight.follow(), result };
  }

  /**
   * After a semantic miss that named similar misses still loading (`call.inFlight`): waits for
   * the first of them loading in this process — until its answer is written to every layer, or
   * `joinSimilar.maxWaitMs` — then searches the semantic layers again. Resolves the hit that
   * search found, or undefined (nothing to wait for, the wait ran out, or nothing servable: the
   * caller loads its own answer).
   */
  async awaitSimilar(call: CallRecord): Promise<LookupHit | undefined> {
    const ctx = this.ctx;
    const named = call.inFlight;
    if (!named || ctx.joinSimilarMs <= 0 || !ctx.coalesce) return undefined;
    // An identical load in flight is joined as it is (open()), chunk for chunk.
    if (this.flights.has(flightId(call))) return undefined;
    let flight: Flight | undefined;
    for (const m of named) {
      // Only loads that will store their answer, begun since the last invalidation.
      const f = m.keyId === call.key.id ? undefined : this.flights.get(flightOf(true, m.keyId));
      if (f && f.epoch === ctx.invalidations.epoch) {
        flight = f;
        break;
      }
    }
    if (!flight) return undefined;
    ctx.stats.joinedSimilar++;
    const f = flight;
    // Settled: the load failed, or its answer was written (a failed write counts as settled too).
    const done = await settledWithin(
      f.result
        .then(() => f.landed)
        .then(
          () => true,
          () => true,
        ),
      ctx.joinSimilarMs,
      true,
    );
    if (!done) return undefined;
    call.resetSemantic();
    const hit = await this.reads.readSemanticAgain(call);
    if (hit) ctx.stats.joinedSimilarServed++;
    return hit;
  }

  /** The coordinator's entry, loaded by another process while this one waited. */
  private fromOtherProcess<T>(call: CallRecord, entry: CacheEntry<T>, layer: string): BegunHit<T> | undefined {
    const ctx = this.ctx;
    const now = ctx.now();
    if (!isCacheEntry(entry) || isExpired(entry, now) || ctx.sync.table.refuses(call.key, entry) || !acceptHit(ctx, call, call.key, entry, layer, now))
      return undefined;
    ctx.stats.coalesced++;
    const ageMs = now - entry.createdAt;
    ctx.stats.recordHit({ key: call.key, entry, layer, ageMs });
    if (ctx.events.listenerCount('hit') > 0) ctx.events.emit('hit', { key: call.key, layer, latencyMs: performance.now() - call.started, ageMs });
    if (ctx.backfill) {
      const at = ctx.layers.findIndex((l) => l.name === layer);
      this.reads.backfill(at < 0 ? ctx.layers.length : at, call.key, entry);
    }
    return { kind: 'hit', key: call.key, result: { value: entry.value, status: 'hit', key: call.key, layer, ageMs, entry, coalesced: true } };
  }

  private end(flight: Flight): void {
    if (this.flights.get(flight.id) === flight) this.flights.delete(flight.id);
    this.ctx.invalidations.endLoad(flight.epoch);
  }

  private finish(lead: Lead<unknown>, stored: boolean, allLanded: Promise<void> | undefined): void {
    if (lead.status === 'miss') this.end(lead.flight);
    if (lead.lease) this.release(lead.lease, stored, allLanded);
  }

  private release(lease: Lease, stored: boolean, allLanded: Promise<void> | undefined): void {
    // Release other processes once the writes have landed (bounded by the layers' budgets),
    // without delaying this caller.
    this.ctx.runner.track(
      (allLanded ?? Promise.resolve()).then(async () => {
        try {
          await lease.done({ stored });
        } catch (error) {
          emitError(this.ctx, error, 'coordinator', 'done');
        }
      }),
    );
  }
}
