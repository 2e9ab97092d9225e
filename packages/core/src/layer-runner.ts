import { setMaxListeners } from 'node:events';
import { DeadlineQueue } from './deadline-queue.js';
import type { CacheEntry } from './entry.js';
import { InvalidOptionError, LayerTimeoutError } from './errors.js';
import type { CacheKey } from './fingerprint.js';
import { type Layer, type LayerContext, LAYER_SPECIFICATION_VERSION, type MaybePromise, isPromiseLike } from './layer.js';
import { checkPositiveMs } from './options.js';
import { LayerStats } from './stats.js';
import type { LayerConfig } from './types.js';

/** A layer operation that failed (threw, rejected, or ran out of budget): a miss, never an exception. */
export const FAILED = Symbol('failed');
export type Failed = typeof FAILED;

/** A layer with its settings resolved, as the cache runs it. */
export interface ResolvedLayer {
  readonly layer: Layer;
  readonly name: string;
  readonly budgetMs: number;
  readonly read: boolean;
  readonly write: boolean;
  /** Implements `search` and declares `capabilities.semantic`. */
  readonly semantic: boolean;
  /** Gets a deadline and an abort signal with each operation (`remote` or `semantic`). */
  readonly contextual: boolean;
  /** Implements getMany/setMany/deleteMany and declares `capabilities.batch`. */
  readonly batch: boolean;
  /** Implements deleteByTag / deleteOlderVersions and declares `capabilities.tags`. */
  readonly tags: boolean;
  /**
   * Can hold entries from before this process started (`shared` or `semantic`): not read until
   * the bus's stored watermarks have been loaded.
   */
  readonly gated: boolean;
  readonly stats: LayerStats;
  /** The budget timer of this layer's operations. */
  readonly deadlines: DeadlineQueue;
  /** The abort controller of the reads that start with the deadline batch `batch` (see LayerRunner.read). */
  reads: { batch: number; controller: AbortController } | undefined;
}

function isLayer(x: unknown): x is Layer {
  const l = x as Layer;
  return (
    typeof l === 'object' &&
    l !== null &&
    typeof l.get === 'function' &&
    typeof l.set === 'function' &&
    typeof l.delete === 'function' &&
    typeof l.clear === 'function'
  );
}

/** Checks the `layers` option and resolves each entry's settings. */
export function resolveLayers(items: unknown, defaultBudgetMs: number): ResolvedLayer[] {
  if (!Array.isArray(items)) throw new InvalidOptionError('@strata-cache/core: option "layers" must be an array of layers', { field: 'layers' });
  if (items.length === 0) {
    throw new InvalidOptionError('@strata-cache/core: option "layers" is empty; give at least one layer (e.g. new MemoryLayer())', { field: 'layers' });
  }
  const names = new Set<string>();
  return items.map((item: unknown, i: number) => {
    const cfg: LayerConfig = isLayer(item) ? { layer: item } : (item as LayerConfig);
    const layer = cfg?.layer;
    if (!isLayer(layer))
      throw new InvalidOptionError(`@strata-cache/core: layers[${i}] is not a Strata layer (needs get/set/delete/clear)`, { field: `layers[${i}]` });
    if (layer.specificationVersion !== LAYER_SPECIFICATION_VERSION) {
      throw new InvalidOptionError(
        `@strata-cache/core: layer "${layer.name}" implements contract ${String(layer.specificationVersion)}, this core speaks ${LAYER_SPECIFICATION_VERSION}; upgrade the layer or core`,
        { field: `layers[${i}]` },
      );
    }
    if (names.has(layer.name))
      throw new InvalidOptionError(`@strata-cache/core: two layers are named "${layer.name}"; give each a distinct name`, { field: `layers[${i}]` });
    names.add(layer.name);
    if (cfg.budgetMs !== undefined) checkPositiveMs(cfg.budgetMs, `layers[${i}].budgetMs`);
    const caps = layer.capabilities;
    const semantic = caps.semantic === true && typeof layer.search === 'function';
    return {
      layer,
      name: layer.name,
      budgetMs: cfg.budgetMs ?? defaultBudgetMs,
      read: cfg.read ?? true,
      write: cfg.write ?? true,
      semantic,
      contextual: caps.remote === true || semantic,
      batch: caps.batch === true && typeof layer.getMany === 'function' && typeof layer.setMany === 'function' && typeof layer.deleteMany === 'function',
      tags: caps.tags === true,
      gated: caps.shared === true || semantic,
      stats: new LayerStats(),
      deadlines: new DeadlineQueue(cfg.budgetMs ?? defaultBudgetMs),
      reads: undefined,
    };
  });
}

/**
 * The abort controller of a read that starts now. Reads of one layer that join the same deadline
 * batch share their budget's end to the turn — whatever is still waiting when it passes times
 * out together — so they share one controller, aborted by the first of them to time out (reads
 * that already finished have removed their listeners). A controller per read, an EventTarget
 * each, was a tenth of the CPU of an L2 hit on Node 20 (on Node 22 and 24 one is cheap).
 */
function readController(l: ResolvedLayer): AbortController {
  const batch = l.deadlines.batch;
  if (l.reads?.batch === batch) return l.reads.controller;
  const controller = new AbortController();
  // As many listeners as reads in flight in one batch (one per queued embedding, say).
  setMaxListeners(0, controller.signal);
  l.reads = { batch, controller };
  return controller;
}

/**
 * Runs layer operations inside their time budgets. A synchronous layer's answer is returned as
 * it is — no promise, no timer, no context object — so an L1 hit costs only the layer's own work.
 * An asynchronous operation gets a budget (one timer per layer, counted from when the operation
 * started running, see DeadlineQueue); `remote`/`semantic` layers also get a deadline
 * and an abort signal:
 * - reads and searches: the signal aborts when the budget runs out (the caller has moved on);
 * - writes: the budget only decides when core stops waiting; the write itself may still land,
 *   and is tracked until it settles, so `settle()` (flush/close) can wait for it. Its signal
 *   aborts only when `close()` gives up waiting.
 */
export class LayerRunner {
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly closing = new AbortController();

  constructor(private readonly onFailure: (l: ResolvedLayer, operation: string, error: unknown) => void) {}

  read<T>(l: ResolvedLayer, operation: string, fn: (ctx: LayerContext | undefined) => MaybePromise<T>): T | Failed | Promise<T | Failed> {
    let controller: AbortController | undefined;
    let r: MaybePromise<T>;
    try {
      if (l.contextual) {
        controller = readController(l);
        r = fn({ deadline: Date.now() + l.budgetMs, signal: controller.signal });
      } else r = fn(undefined);
    } catch (error) {
      return this.failed(l, operation, error);
    }
    return isPromiseLike(r) ? this.withinBudget(l, operation, r, controller) : r;
  }

  /** `get` of one key: what `read(l, 'get', …)` does, without a closure per call on the hit path. */
  get(l: ResolvedLayer, key: CacheKey): CacheEntry | undefined | Failed | Promise<CacheEntry | undefined | Failed> {
    if (l.contextual) return this.read(l, 'get', (c) => l.layer.get(key, c));
    let r: MaybePromise<CacheEntry | undefined>;
    try {
      r = l.layer.get(key);
    } catch (error) {
      return this.failed(l, 'get', error);
    }
    return isPromiseLike(r) ? this.withinBudget(l, 'get', r, undefined) : r;
  }

  write<T>(l: ResolvedLayer, operation: string, fn: (ctx: LayerContext | undefined) => MaybePromise<T>): T | Failed | Promise<T | Failed> {
    let r: MaybePromise<T>;
    try {
      r = fn(l.contextual ? { deadline: Date.now() + l.budgetMs, signal: this.closing.signal } : undefined);
    } catch (error) {
      return this.failed(l, operation, error);
    }
    if (!isPromiseLike(r)) return r;
    this.track(r);
    return this.withinBudget(l, operation, r, undefined);
  }

  /** A write nobody waits for (backfill, removing an expired entry): failures are events. */
  background(l: ResolvedLayer, operation: string, fn: (ctx: LayerContext | undefined) => MaybePromise<unknown>): void {
    const r = this.write(l, operation, fn);
    if (isPromiseLike(r)) this.track(r);
  }

  /**
   * Work a layer does for itself after the caller was answered (a calibrating layer judging an
   * upstream answer): no budget timer — the layer bounds its own work — and the abort signal
   * fires only when `close()` stops waiting. Tracked like a write; failures are events.
   */
  untimed(l: ResolvedLayer, operation: string, fn: (ctx: LayerContext) => MaybePromise<unknown>): void {
    let r: MaybePromise<unknown>;
    try {
      r = fn({ signal: this.closing.signal });
    } catch (error) {
      this.failed(l, operation, error);
      return;
    }
    if (isPromiseLike(r)) this.track(r.then(undefined, (error: unknown) => this.failed(l, operation, error)));
  }

  /** Keeps `p` in the set `settle()` waits for. */
  track(p: Promise<unknown>): void {
    const t: Promise<unknown> = p.then(
      () => this.inflight.delete(t),
      () => this.inflight.delete(t),
    );
    this.inflight.add(t);
  }

  /**
   * Waits until everything tracked so far (and whatever it started) has settled, at most
   * `timeoutMs`. Resolves false when it gave up with work still in flight.
   */
  async settle(timeoutMs: number): Promise<boolean> {
    if (this.inflight.size === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let expired = false;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        expired = true;
        resolve();
      }, timeoutMs);
    });
    try {
      while (this.inflight.size > 0 && !expired) await Promise.race([Promise.allSettled([...this.inflight]), deadline]);
    } finally {
      clearTimeout(timer);
    }
    return this.inflight.size === 0;
  }

  /** Tells the layers to drop writes still queued: `close()` stopped waiting for them. */
  abortWrites(reason: unknown): void {
    this.closing.abort(reason);
  }

  private failed(l: ResolvedLayer, operation: string, error: unknown): Failed {
    this.onFailure(l, operation, error);
    return FAILED;
  }

  /**
   * Settles with `r`, or FAILED once the layer's budget has passed. The budget is counted from
   * when the operation started running (the next loop turn: a burst's synchronous part is not
   * the layer's time), and a budget that ran out is confirmed one loop turn later, so an answer
   * that arrived while the loop was busy is taken (see DeadlineQueue). One timer per layer.
   */
  private withinBudget<T>(l: ResolvedLayer, operation: string, r: Promise<T>, controller: AbortController | undefined): Promise<T | Failed> {
    return new Promise<T | Failed>((resolve, reject) => {
      const fail = (error: unknown) => {
        try {
          resolve(this.failed(l, operation, error));
        } catch (rethrown) {
          reject(rethrown);
        }
      };
      const handle = l.deadlines.add(() => {
        l.stats.timeouts++;
        const error = new LayerTimeoutError(l.name, operation, l.budgetMs);
        controller?.abort(error);
        fail(error);
      });
      r.then(
        (v) => {
          if (handle.done) return;
          handle.done = true;
          resolve(v);
        },
        (error) => {
          if (handle.done) return;
          handle.done = true;
          fail(error);
        },
      );
    });
  }
}
