import { type Embedder, InvalidOptionError, StrataError } from '@strata-cache/core';

/** Where a text's vector can be read back from (e.g. the index that holds it), instead of a copy. */
export interface VectorRef {
  /** The vector, or undefined once it is gone (then the text counts as not cached). */
  vector(): Float32Array | undefined;
}

/**
 * Options of one `embed` call. `signal` is the Embedder contract's; `deadline` and `priority`
 * are passed through to an inner embedder that understands them (the layer's queue does).
 */
export interface EmbedCallOptions {
  readonly signal?: AbortSignal | undefined;
  /** Epoch ms after which the caller no longer wants the vectors. */
  readonly deadline?: number | undefined;
  readonly priority?: 'lookup' | 'write' | 'bulk' | undefined;
}

export interface CachingEmbedderOptions {
  /** Texts whose vectors (or references to them) are kept, least recently used dropped first. 0 disables. @default 10_000 */
  size?: number | undefined;
}

/** Counters of a CachingEmbedder. */
export interface CachingEmbedderStats {
  /** Texts in the cache (vectors and references). */
  readonly size: number;
  /** Texts answered from the cache. */
  readonly hits: number;
  /** Texts that joined an embedding already running for the same text. */
  readonly joined: number;
  /** Texts sent to the inner embedder. */
  readonly embedded: number;
}

interface Flight {
  readonly promise: Promise<Float32Array>;
  /** Callers still waiting; at 0 the flight is forgotten and, if its whole call is abandoned, aborted. */
  waiters: number;
  readonly call: { live: number; readonly controller: AbortController };
}

const PKG = '@strata-cache/layer-semantic';

/**
 * An `Embedder` decorator: an LRU of text → vector (so the same text is never embedded twice —
 * a lookup that missed and the write that follows share one embedding) and de-duplication of
 * texts already being embedded (concurrent callers share one call). A caller that gives up
 * (its `signal` aborts) stops waiting at once; the inner call is aborted only when every caller
 * waiting on it gave up. A cached slot can point at a vector held elsewhere (`alias`), so a
 * text that went into an index costs no second copy.
 */
export class CachingEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly max: number;
  private readonly cache = new Map<string, Float32Array | VectorRef>();
  private readonly inflight = new Map<string, Flight>();
  private counters = { hits: 0, joined: 0, embedded: 0 };

  constructor(
    readonly inner: Embedder,
    options: CachingEmbedderOptions = {},
  ) {
    const size = options.size ?? 10_000;
    if (!Number.isSafeInteger(size) || size < 0)
      throw new InvalidOptionError(`${PKG}: CachingEmbedder option "size" must be a non-negative integer`, { field: 'size' });
    this.id = inner.id;
    this.dimensions = inner.dimensions;
    this.max = size;
    // The inner embedder's check of what it can represent, passed through (a decorator that
    // dropped it would let the semantic layer match texts the model cannot tell apart).
    if (typeof inner.represents === 'function') this.represents = (text: string) => inner.represents!(text);
  }

  /** The inner embedder's `represents`, when it has one. */
  readonly represents?: (text: string) => boolean;

  get stats(): CachingEmbedderStats {
    return { size: this.cache.size, ...this.counters };
  }

  /** The cached vector of a text, without embedding (and without counting a hit). */
  peek(text: string): Float32Array | undefined {
    const slot = this.cache.get(text);
    if (slot === undefined) return undefined;
    const v = slot instanceof Float32Array ? slot : slot.vector();
    if (v === undefined) this.cache.delete(text);
    return v;
  }

  /** The embedding of `text` if one is running now. */
  running(text: string): boolean {
    return this.inflight.has(text);
  }

  /**
   * Remembers that `text`'s vector now lives in `ref` (an index): the cache slot keeps the
   * reference instead of a copy. Refreshes the slot's recency.
   */
  alias(text: string, ref: VectorRef): void {
    this.remember(text, ref);
  }

  /** Drops `text` from the cache when its slot is `ref` (the vector it pointed at is gone). */
  forget(text: string, ref: VectorRef): void {
    if (this.cache.get(text) === ref) this.cache.delete(text);
  }

  clear(): void {
    this.cache.clear();
  }

  async embed(texts: readonly string[], options: EmbedCallOptions = {}): Promise<Float32Array[]> {
    options.signal?.throwIfAborted();
    const out: Array<Float32Array | Promise<Float32Array>> = new Array(texts.length);
    const missing: string[] = [];
    const missingAt = new Map<string, number[]>();
    for (let i = 0; i < texts.length; i++) {
      const t = texts[i]!;
      const hit = this.lookup(t);
      if (hit) {
        this.counters.hits++;
        out[i] = hit;
        continue;
      }
      const at = missingAt.get(t);
      if (at) {
        at.push(i);
        continue;
      }
      const running = this.inflight.get(t);
      if (running) {
        this.counters.joined++;
        out[i] = this.wait(t, running, options);
        continue;
      }
      missingAt.set(t, [i]);
      missing.push(t);
    }
    if (missing.length > 0) {
      const flights = this.start(missing, options);
      missing.forEach((t, k) => {
        const p = this.wait(t, flights[k]!, options);
        for (const i of missingAt.get(t)!) out[i] = p;
      });
    }
    return Promise.all(out);
  }

  private lookup(text: string): Float32Array | undefined {
    const slot = this.cache.get(text);
    if (slot === undefined) return undefined;
    const v = slot instanceof Float32Array ? slot : slot.vector();
    if (v === undefined) {
      this.cache.delete(text);
      return undefined;
    }
    this.cache.delete(text);
    this.cache.set(text, slot);
    return v;
  }

  private remember(text: string, slot: Float32Array | VectorRef): void {
    if (this.max <= 0) return;
    this.cache.delete(text);
    this.cache.set(text, slot);
    if (this.cache.size > this.max) this.cache.delete(this.cache.keys().next().value as string);
  }

  /** One inner call for `texts`; one flight per text, registered before the call can settle. */
  private start(texts: string[], options: EmbedCallOptions): Flight[] {
    const controller = new AbortController();
    const call = { live: texts.length, controller };
    const inner = this.inner;
    const batch = Promise.resolve()
      .then(() => inner.embed(texts, { ...options, signal: controller.signal }))
      .then((vs) => {
        if (!Array.isArray(vs) || vs.length !== texts.length) {
          throw new StrataError(
            'STRATA_LAYER',
            `${PKG}: embedder "${inner.id}" returned ${Array.isArray(vs) ? vs.length : typeof vs} vectors for ${texts.length} texts`,
          );
        }
        for (const v of vs) {
          if (!(v instanceof Float32Array) || v.length !== this.dimensions) {
            throw new StrataError(
              'STRATA_LAYER',
              `${PKG}: embedder "${inner.id}" returned a ${(v as { length?: number })?.length}-d vector, it declares ${this.dimensions}`,
            );
          }
        }
        this.counters.embedded += vs.length;
        return vs;
      });
    return texts.map((t, k) => {
      const flight: Flight = {
        promise: batch.then((vs) => {
          // A view into a larger buffer (a batch) would keep the whole batch alive: keep a copy.
          // Remembered even when every caller gave up meanwhile: the write that follows a lookup
          // which ran out of time still finds the vector.
          const v = vs[k]!.byteLength === vs[k]!.buffer.byteLength ? vs[k]! : vs[k]!.slice();
          const slot = this.cache.get(t);
          // A slot that already points at an indexed copy stays a reference (no second copy).
          if (slot === undefined || slot instanceof Float32Array || slot.vector() === undefined) this.remember(t, v);
          return v;
        }),
        waiters: 0,
        call,
      };
      this.inflight.set(t, flight);
      void flight.promise.then(
        () => this.settled(t, flight),
        () => this.settled(t, flight),
      );
      return flight;
    });
  }

  private settled(text: string, flight: Flight): void {
    if (this.inflight.get(text) === flight) this.inflight.delete(text);
  }

  /**
   * Waits for a flight on behalf of one caller: rejects as soon as the caller's signal aborts.
   * A flight that failed because the callers who started it gave up (or their deadline passed)
   * is retried once for a caller who is still waiting.
   */
  private wait(text: string, flight: Flight, options: EmbedCallOptions, retried = false): Promise<Float32Array> {
    flight.waiters++;
    const signal = options.signal;
    return new Promise<Float32Array>((resolve, reject) => {
      let done = false;
      const leave = () => {
        if (--flight.waiters > 0) return;
        // Nobody waits for this text any more: forget the flight, abort the call if it is all abandoned.
        if (this.inflight.get(text) === flight) this.inflight.delete(text);
        if (--flight.call.live === 0) flight.call.controller.abort();
      };
      const onAbort = () => {
        if (done) return;
        done = true;
        leave();
        reject(signal!.reason ?? abortError());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (v) => {
          if (done) return;
          done = true;
          signal?.removeEventListener('abort', onAbort);
          flight.waiters--;
          resolve(v);
        },
        (e: unknown) => {
          if (done) return;
          done = true;
          signal?.removeEventListener('abort', onAbort);
          flight.waiters--;
          const stillWanted = !signal?.aborted && (options.deadline === undefined || options.deadline > Date.now());
          if (!retried && stillWanted && isCancellation(e)) {
            const again = this.inflight.get(text) ?? this.start([text], options)[0]!;
            resolve(this.wait(text, again, options, true));
          } else reject(e);
        },
      );
    });
  }
}

/** An abort or a passed deadline, as opposed to an embedder failure. */
export function isCancellation(e: unknown): boolean {
  const name = (e as { name?: unknown })?.name;
  return name === 'AbortError' || name === 'TimeoutError';
}

export function abortError(message = 'The operation was aborted'): Error {
  return new DOMException(message, 'AbortError');
}
