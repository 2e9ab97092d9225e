import type { FleetClock, InvalidationBus, InvalidationEnvelope, InvalidationMessage, InvalidationWatermark, WatermarkStore } from './bus.js';
import { type CacheContext, emitError } from './context.js';
import type { CacheKey } from './fingerprint.js';
import { applyToLayer } from './invalidation-apply.js';
import { STAMP_STEP } from './invalidation-log.js';
import { FAILED, type ResolvedLayer } from './layer-runner.js';
import { WatermarkTable, localClock, watermarkId, watermarkScore } from './watermarks.js';

/** Watermarks sent to the store per call. */
const SAVE_BATCH = 1_000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
const PRUNE_EVERY_MS = 60_000;
/** Layer operations and bus messages kept for a retry; beyond, the oldest are dropped (the watermark still refuses what they would have removed). */
const MAX_RETRIES = 10_000;
/** Loads of the store's watermarks start at most this often (a flapping connection asks for many). */
const RESYNC_MIN_INTERVAL_MS = 500;
/**
 * A watermark from another process further ahead of this process's clock than this (plus the
 * clock's error) is taken as this far ahead: a sender with a broken clock must not make a tag
 * uncacheable for years.
 */
const MAX_AHEAD_MS = 60_000;

/** What the cache does with invalidations learned from the store (as if received on the bus). */
export interface SyncHost {
  readonly instanceId: string;
  /** `first`: the load at start-up. */
  learned(marks: readonly InvalidationWatermark[], first: boolean): void;
}

export interface SyncSettings {
  readonly retentionMs: number;
  readonly maxWatermarks: number;
}

/** `invalidationStatus()`: where this process's invalidations stand. */
export interface InvalidationStatus {
  /** Watermarks this process holds. */
  readonly watermarks: number;
  /** The bus stores watermarks durably. */
  readonly durableStore: boolean;
  /** The store's watermarks were loaded (until then, shared and semantic layers are not read). */
  readonly loaded: boolean;
  /** Work core is still retrying: watermarks not acknowledged by the store, bus messages not sent, layer purges not done. */
  readonly pending: { readonly watermarks: number; readonly messages: number; readonly layerPurges: number };
  /** How far the bus clock may be off right now, ms. */
  readonly clockErrorMs: number;
}

interface Unapplied {
  readonly message: InvalidationMessage;
  readonly layer: ResolvedLayer;
  readonly key: CacheKey | undefined;
}

/**
 * Durable invalidation, the part of it that outlives a request: the watermark table, the bus
 * clock, and everything retried until done — watermarks the store has not acknowledged, bus
 * messages that could not be sent, layer purges that failed. Loads the store's watermarks at
 * start-up and whenever the store says something may have been lost or missed, and writes back
 * what the store lacks. Keeps the table (and the store) bounded.
 */
export class InvalidationSync {
  readonly table = new WatermarkTable();
  /**
   * False until the store's watermarks were loaded once (true at once without a store): until
   * then, layers that can hold entries older than this process (shared, semantic) are not read.
   */
  loaded: boolean;
  private readonly clock: FleetClock;
  private readonly store: WatermarkStore | undefined;
  private last = Number.NEGATIVE_INFINITY;
  private readonly unsaved = new Set<string>();
  /** Messages to send again: watermark id → the store's counter after its save (when known). */
  private readonly unpublished = new Map<string, number | undefined>();
  /** Watermarks whose message goes (or went) out before their save landed: sent again once it does. */
  private readonly unannounced = new Set<string>();
  /** Watermarks in a save not acknowledged yet. */
  private readonly inFlight = new Set<InvalidationWatermark>();
  private unapplied: Unapplied[] = [];
  private resyncWanted = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private pruneTimer: ReturnType<typeof setInterval> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private delay = RETRY_MIN_MS;
  private stopWatching: (() => void) | undefined;
  private closed = false;
  private lastResync = Number.NEGATIVE_INFINITY;
  /** Watermarks to save at the end of this tick, in one call. */
  private batch: { readonly marks: InvalidationWatermark[]; readonly saved: Promise<number | undefined> } | undefined;

  constructor(
    private readonly bus: InvalidationBus | undefined,
    private readonly settings: SyncSettings,
    private readonly ctx: () => CacheContext,
    private readonly host: SyncHost,
  ) {
    this.clock = bus?.clock ?? localClock;
    this.store = bus?.watermarks;
    this.loaded = this.store === undefined;
  }

  /** Time on the bus clock, never going back and never the same twice in this process. */
  now(): number {
    const t = this.clock.now();
    this.last = t > this.last ? t : this.last + STAMP_STEP;
    return this.last;
  }

  /** A watermark for an invalidation made now: at or after the true time, whatever this clock's error. */
  markTime(): number {
    const e = this.clock.errorMs();
    return this.now() + e;
  }

  /** A stamp for a load beginning now: at or before the true time. */
  stampTime(): number {
    const e = this.clock.errorMs();
    return this.now() - e;
  }

  /**
   * A watermark another process set (bus message, store): its time, unless it is implausibly far
   * ahead of this clock (see MAX_AHEAD_MS).
   */
  plausible(at: number): number {
    const limit = this.clock.now() + this.clock.errorMs() + MAX_AHEAD_MS;
    return Math.min(at, limit);
  }

  /** Sets the watermark of an invalidation of this process, in the table at once; resolves its time. */
  set(message: InvalidationMessage): number {
    const at = this.markTime();
    this.table.add(message, at);
    if (this.table.size > this.settings.maxWatermarks) this.prune();
    return at;
  }

  /**
   * Stores a watermark: whether the store took it (false when it could not now — it is retried —
   * or there is none), and the store's counter after the save when it keeps one. Watermarks set
   * in one tick (a prompt purge's keys, an event's tags) go in one save.
   */
  async persist(w: InvalidationWatermark): Promise<{ readonly saved: boolean; readonly seq: number | undefined }> {
    const store = this.store;
    if (!store) return { saved: false, seq: undefined };
    const id = watermarkId(w.message);
    let b = this.batch;
    if (b === undefined) {
      const marks: InvalidationWatermark[] = [];
      const saved = new Promise<void>((resolve) => process.nextTick(resolve)).then(async () => {
        if (this.batch?.marks === marks) this.batch = undefined;
        return counter(await store.save(marks));
      });
      saved.catch(() => undefined);
      this.batch = b = { marks, saved };
    }
    b.marks.push(w);
    this.inFlight.add(w);
    let seq: number | undefined;
    try {
      seq = await b.saved;
    } catch (error) {
      this.unsaved.add(id);
      // Its message goes out now without the counter; once saved, it is sent again with it.
      if (this.bus && this.unannounced.size < MAX_RETRIES) this.unannounced.add(id);
      emitError(this.ctx(), error, 'bus', 'saveWatermark');
      this.kick(this.delay);
      return { saved: false, seq: undefined };
    } finally {
      this.inFlight.delete(w);
    }
    const current = this.table.get(id);
    // A later watermark of the same id set meanwhile: saved by its own call, unless none is under way.
    if (current !== undefined && watermarkScore(current) > watermarkScore(w) && !this.inFlight.has(current)) this.unsaved.add(id);
    else {
      this.unsaved.delete(id);
      // Stored now: its message goes with this counter (or is announced by the caller).
      this.unannounced.delete(id);
    }
    // The store answers again: whatever waits for it goes now.
    if (this.pendingCount > 0) this.kick(0);
    return { saved: true, seq };
  }

  /**
   * Publishes on the bus, with the store's counter after the watermark's save when it is known;
   * false when it failed (it is published again later).
   */
  async publish(w: InvalidationWatermark, origin: string, seq?: number): Promise<boolean> {
    if (!this.bus) return false;
    try {
      await this.bus.publish(envelope(origin, w, seq));
      return true;
    } catch (error) {
      emitError(this.ctx(), error, 'bus', 'publish');
      this.queuePublish(watermarkId(w.message), seq);
      this.kick(this.delay);
      return false;
    }
  }

  /**
   * A message that went out before its watermark's save landed: it is sent again with the save's
   * counter, so a process that missed the first one (re-subscribing meanwhile, or deaf) and loaded
   * the store before the save finds it now — on the bus, or by the counter it did not hear of.
   */
  announce(w: InvalidationWatermark, seq: number): void {
    if (!this.bus) return;
    this.queuePublish(watermarkId(w.message), seq);
    this.kick(0);
  }

  private queuePublish(id: string, seq: number | undefined): void {
    if (!this.unpublished.has(id) && this.unpublished.size >= MAX_RETRIES) this.unpublished.delete(this.unpublished.keys().next().value!);
    // A counter already queued for it stays unless this one is later.
    const queued = this.unpublished.get(id);
    this.unpublished.set(id, queued === undefined || (seq !== undefined && seq > queued) ? seq : queued);
  }

  /** Layer purges that failed: retried until they are done. */
  retryLayers(message: InvalidationMessage, layers: readonly ResolvedLayer[], key: CacheKey | undefined): void {
    if (layers.length === 0) return;
    for (const layer of layers) this.unapplied.push({ message, layer, key });
    if (this.unapplied.length > MAX_RETRIES) this.unapplied.splice(0, this.unapplied.length - MAX_RETRIES);
    this.kick(this.delay);
  }

  get pendingCount(): number {
    return this.unsaved.size + this.unpublished.size + this.unapplied.length;
  }

  status(): InvalidationStatus {
    return {
      watermarks: this.table.size,
      durableStore: this.store !== undefined,
      loaded: this.loaded,
      pending: { watermarks: this.unsaved.size, messages: this.unpublished.size, layerPurges: this.unapplied.length },
      clockErrorMs: this.clock.errorMs(),
    };
  }

  /** Starts listening to the store and loads its watermarks (one attempt; retried in the background). */
  async start(): Promise<void> {
    if (!this.store || this.closed) return;
    this.stopWatching = this.store.onResync(() => {
      this.resyncWanted = true;
      this.kick(0);
    });
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_EVERY_MS);
    this.pruneTimer.unref?.();
    this.resyncWanted = true;
    await this.runNow();
  }

  /** Waits (at most `timeoutMs`) for the retries to finish what is pending; true when nothing is left. */
  async settle(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    this.kick(0);
    while (!this.closed && this.pendingCount > 0 && Date.now() < until) {
      await new Promise((r) => setTimeout(r, Math.min(RETRY_MIN_MS, Math.max(1, until - Date.now()))));
    }
    return this.pendingCount === 0;
  }

  close(): void {
    this.closed = true;
    this.stopWatching?.();
    if (this.timer) clearTimeout(this.timer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.timer = this.pruneTimer = undefined;
  }

  /** Folds old watermarks and keeps the table and the store within their bounds. */
  prune(): void {
    const before = this.now() - this.settings.retentionMs;
    const raised = this.table.prune(before, this.settings.maxWatermarks);
    if (!this.store) return;
    for (const w of raised) this.unsaved.add(watermarkId(w.message));
    if (raised.length > 0) this.kick(0);
    this.store.prune(before, this.settings.maxWatermarks).catch((error: unknown) => emitError(this.ctx(), error, 'bus', 'pruneWatermarks'));
  }

  private kick(after: number): void {
    if (this.closed) return;
    if (this.running) {
      if (after === 0) this.again = true;
      return;
    }
    if (this.timer) {
      if (after > 0) return;
      clearTimeout(this.timer);
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runNow();
    }, after);
    this.timer.unref?.();
  }

  private runNow(): Promise<void> {
    if (this.running) return this.running;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const p = this.run()
      .catch(() => undefined)
      .finally(() => {
        this.running = undefined;
        if (this.closed) return;
        const left = this.pendingCount > 0 || this.resyncWanted;
        if (this.again) {
          this.again = false;
          if (left) this.kick(0);
        } else if (left) {
          this.kick(this.delay);
          this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
        }
      });
    this.running = p;
    return p;
  }

  /** One round: publish what is pending, load the store's watermarks when asked, save, and purge the layers not reached. */
  private async run(): Promise<void> {
    let progress = false;
    // Messages first: the other processes are waiting for them (the shared layers are guarded by
    // the watermark meanwhile, and so is this process).
    if (this.unpublished.size > 0) progress = (await this.republish()) || progress;
    const sinceResync = Date.now() - this.lastResync;
    if (this.resyncWanted && this.store && sinceResync < RESYNC_MIN_INTERVAL_MS) {
      // Asked again right after one: later (runNow's ending reschedules while it is wanted).
      this.delay = Math.max(this.delay, RESYNC_MIN_INTERVAL_MS - sinceResync);
    } else if (this.resyncWanted && this.store) {
      this.lastResync = Date.now();
      try {
        await this.resync();
        progress = true;
      } catch (error) {
        emitError(this.ctx(), error, 'bus', 'loadWatermarks');
      }
    }
    if (this.unsaved.size > 0 && this.store) progress = (await this.saveUnsaved()) || progress;
    // Watermarks saved just now on a retry: their messages go again, with the save's counter.
    if (this.unpublished.size > 0) progress = (await this.republish()) || progress;
    if (this.unapplied.length > 0) progress = (await this.reapply()) || progress;
    if (progress) this.delay = RETRY_MIN_MS;
  }

  private async resync(): Promise<void> {
    this.resyncWanted = false;
    let stored: InvalidationWatermark[];
    try {
      stored = await this.store!.load();
    } catch (error) {
      this.resyncWanted = true;
      throw error;
    }
    const inStore = new Map<string, number>();
    const learned: InvalidationWatermark[] = [];
    for (const w of stored) {
      const id = watermarkId(w.message);
      const s = watermarkScore(w);
      if (!((inStore.get(id) ?? Number.NEGATIVE_INFINITY) >= s)) inStore.set(id, s);
      const at = this.plausible(w.at);
      if (this.table.add(w.message, at)) learned.push(at === w.at ? w : { message: w.message, at });
    }
    // Re-assert what the store lacks: it restarted empty, was restored from an older snapshot,
    // failed over to a replica that had not received it, or never got it.
    for (const w of this.table.values()) {
      const id = watermarkId(w.message);
      if ((inStore.get(id) ?? Number.NEGATIVE_INFINITY) < watermarkScore(w)) this.unsaved.add(id);
    }
    const first = !this.loaded;
    this.loaded = true;
    if (learned.length > 0) this.host.learned(learned, first);
    if (this.table.size > this.settings.maxWatermarks) this.prune();
  }

  private async saveUnsaved(): Promise<boolean> {
    let progress = false;
    while (this.unsaved.size > 0 && !this.closed) {
      const ids: string[] = [];
      const marks: InvalidationWatermark[] = [];
      for (const id of this.unsaved) {
        const w = this.table.get(id);
        if (w === undefined) {
          // folded into a clear watermark (saved on its own)
          this.unsaved.delete(id);
          this.unannounced.delete(id);
        } else {
          ids.push(id);
          marks.push(w);
        }
        if (ids.length >= SAVE_BATCH) break;
      }
      if (ids.length === 0) break;
      let seq: number | undefined;
      try {
        seq = counter(await this.store!.save(marks));
      } catch (error) {
        emitError(this.ctx(), error, 'bus', 'saveWatermark');
        return progress;
      }
      progress = true;
      ids.forEach((id, i) => {
        if (this.table.get(id) === marks[i]) this.unsaved.delete(id);
        // Its message went out before this save: again, with the counter (see announce).
        if (this.unannounced.delete(id) && seq !== undefined) this.queuePublish(id, seq);
      });
    }
    return progress;
  }

  private async republish(): Promise<boolean> {
    let progress = false;
    for (const [id, seq] of [...this.unpublished]) {
      const w = this.table.get(id);
      if (w === undefined) {
        this.unpublished.delete(id);
        continue;
      }
      try {
        await this.bus!.publish(envelope(this.host.instanceId, w, seq));
      } catch (error) {
        emitError(this.ctx(), error, 'bus', 'publish');
        return progress;
      }
      // Queued again meanwhile (a later save's counter): sent on the next round.
      if (this.unpublished.get(id) === seq) this.unpublished.delete(id);
      progress = true;
    }
    return progress;
  }

  private async reapply(): Promise<boolean> {
    const items = this.unapplied;
    this.unapplied = [];
    const failedLayers = new Set<ResolvedLayer>();
    let progress = false;
    for (const it of items) {
      // One failure per layer per round: the rest of that layer's purges wait for the next one.
      if (failedLayers.has(it.layer) || this.closed) {
        this.unapplied.push(it);
        continue;
      }
      const r = await applyToLayer(this.ctx(), it.layer, it.message, it.key);
      if (r === FAILED) {
        failedLayers.add(it.layer);
        this.unapplied.push(it);
      } else progress = true;
    }
    return progress;
  }
}

/** A bus message for a watermark: its counter only when known (a receiver of an earlier version ignores it). */
function envelope(origin: string, w: InvalidationWatermark, seq: number | undefined): InvalidationEnvelope {
  return seq === undefined ? { origin, sentAt: Date.now(), message: w.message, at: w.at } : { origin, sentAt: Date.now(), message: w.message, at: w.at, seq };
}

/** The counter a store's save resolved, when it is one. */
// biome-ignore lint/suspicious/noConfusingVoidType: what WatermarkStore.save resolves (void for stores without a counter)
function counter(v: number | undefined | void): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}
