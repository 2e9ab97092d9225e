// Streams through core's two-phase read-through (`cache.begin()`): the caller that leads a load
// reads the provider's stream once, hands each piece to its own reader and pushes the recorded
// chunks into the pending load, so identical callers that joined it follow the same stream live,
// chunk for chunk. Used by the caching fetch (SSE events) and by the AI SDK middleware (stream
// parts): what is streamed differs, the sharing is the same.
import { type CacheResult, type JoinedLoad, type Loaded, type MultiLayerCache, type PendingLoad, StrataError } from '@strata-cache/core';
import { abortReason, untilAborted } from './abort.js';

/** How the leading caller's stream is opened, recorded and judged. */
export interface LeadSpec<S, M> {
  /**
   * Starts the upstream stream. `signal` aborts once nobody reads it any more (the leading
   * caller and every joiner left), never merely because the leading caller did. A rejection
   * is handed to every joiner too (an error status, a refused request).
   */
  open(signal: AbortSignal): Promise<{ readonly stream: ReadableStream<S>; readonly meta: M }>;
  /** The chunks one upstream piece completes, in order: pushed to joiners at once, stored with a committed answer. */
  record(piece: S): readonly unknown[];
  /**
   * The answer a finished recording makes, or undefined when it is not a complete answer
   * (nothing is stored; joiners end where the upstream stream ended, as the leading caller's does).
   * Called once the stream ended, or once every reader left (a recording that already holds
   * the final chunk is still a complete answer).
   */
  finish(chunks: readonly unknown[]): Loaded<unknown> | undefined;
  /** After the answer was committed (e.g. to store a second form of it). */
  committed?(result: CacheResult<unknown>, answer: Loaded<unknown>): void;
}

/** What the leading caller gets: the upstream pieces, live, and what `open` said about them. */
export interface LedStream<S, M> {
  readonly stream: ReadableStream<S>;
  readonly meta: M;
}

const BRAND = Symbol.for('strata-cache.http.stream-ended-incomplete');

/**
 * What a load is abandoned with when its stream ended without a complete answer: joiners end
 * their stream there too (like the leading caller's), instead of failing.
 */
class StreamEndedIncomplete extends Error {
  readonly [BRAND] = true;
  constructor() {
    super('the upstream stream ended without a complete answer');
    this.name = 'StreamEndedIncomplete';
  }
}

const isIncomplete = (e: unknown): boolean => typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;

const noop = () => undefined;

/**
 * Who reads a stream led in this process, per cache and key: the callers following it, and the
 * load that leads it. A caller may join before the leading caller has even been handed its load
 * (both come out of `begin()` in the same tick), so followers are counted by key, not by load.
 */
interface Readers {
  followers: number;
  live: LiveLoad<unknown, unknown> | undefined;
}

const readersByCache = new WeakMap<MultiLayerCache, Map<string, Readers>>();

function readersOf(cache: MultiLayerCache, id: string): Readers {
  let byKey = readersByCache.get(cache);
  if (!byKey) readersByCache.set(cache, (byKey = new Map()));
  let r = byKey.get(id);
  if (!r) byKey.set(id, (r = { followers: 0, live: undefined }));
  return r;
}

function forgetIfUnused(cache: MultiLayerCache, id: string, r: Readers): void {
  if (r.followers > 0 || r.live) return;
  const byKey = readersByCache.get(cache);
  if (byKey?.get(id) === r) byKey.delete(id);
}

/** Counts a follower of `id` until the returned function is called (once). */
function follow(cache: MultiLayerCache, id: string): () => void {
  const r = readersOf(cache, id);
  r.followers++;
  let left = false;
  return () => {
    if (left) return;
    left = true;
    r.followers--;
    if (r.followers === 0) r.live?.nobodyFollows();
    forgetIfUnused(cache, id, r);
  };
}

/**
 * Runs `load` (this caller leads it) on the stream `spec.open` starts. Resolves once the stream
 * is open, with a stream of its pieces for this caller; rejects with what `open` rejected with,
 * or when `signal` aborts first. The load is settled exactly once: committed when the stream
 * ends as a complete answer, abandoned otherwise.
 */
export function leadStream<S, M>(
  cache: MultiLayerCache,
  load: PendingLoad<unknown>,
  signal: AbortSignal | undefined,
  spec: LeadSpec<S, M>,
): Promise<LedStream<S, M>> {
  return new LiveLoad<S, M>(cache, load, spec).start(signal);
}

/**
 * Follows a load another caller leads (`begin()` returned `join`). Resolves with the load's
 * chunks as a stream, once the first one is there (so a load that failed before producing
 * anything can still be answered some other way); undefined when that load was given up before
 * it produced anything and this caller should `begin()` again; rejects with the error the load
 * failed with, or when `signal` aborts. While it is read, this caller keeps the upstream stream
 * alive even if the leading caller leaves.
 */
export async function followStream(
  cache: MultiLayerCache,
  join: JoinedLoad<unknown>,
  signal: AbortSignal | undefined,
): Promise<ReadableStream<unknown> | undefined> {
  const leave = follow(cache, join.key.id);
  const it = join.chunks();
  let first: IteratorResult<unknown>;
  try {
    first = await untilAborted(it.next(), signal);
  } catch (error) {
    leave();
    void it.return?.();
    if (isIncomplete(error)) return new ReadableStream({ start: (c) => c.close() });
    if (StrataError.isInstance(error) && error.code === 'STRATA_ABANDONED' && (error as { started?: unknown }).started === false) return undefined;
    throw error;
  }
  let onAbort: (() => void) | undefined;
  const end = () => {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    leave();
  };
  return new ReadableStream<unknown>({
    start(controller) {
      if (first.done) {
        end();
        controller.close();
        return;
      }
      controller.enqueue(first.value);
      if (signal) {
        onAbort = () => {
          end();
          void it.return?.();
          controller.error(abortReason(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
    },
    async pull(controller) {
      let r: IteratorResult<unknown>;
      try {
        r = await untilAborted(it.next(), signal);
      } catch (error) {
        if (signal?.aborted) return; // onAbort already errored the stream
        end();
        if (isIncomplete(error)) controller.close();
        else controller.error(error);
        return;
      }
      if (r.done) {
        end();
        controller.close();
      } else controller.enqueue(r.value);
    },
    cancel() {
      end();
      void it.return?.();
    },
  });
}

/** One load led by this process: the upstream stream, whether its caller still reads it, and what it recorded. */
class LiveLoad<S, M> {
  /** The upstream stream stops once this caller left and no follower is left. */
  private leaderReading = true;
  private readers: Readers | undefined;
  private readonly upstream = new AbortController();
  private readonly chunks: unknown[] = [];
  private source: ReadableStreamDefaultReader<S> | undefined;
  private out!: ReadableStreamDefaultController<S>;
  private readonly stream: ReadableStream<S>;
  private ended = false;
  private settled = false;
  private unlisten: () => void = noop;

  constructor(
    private readonly cache: MultiLayerCache,
    private readonly load: PendingLoad<unknown>,
    private readonly spec: LeadSpec<S, M>,
  ) {
    // Made before the upstream call, so no piece can arrive before there is a stream to hold it.
    this.stream = new ReadableStream<S>({
      start: (c) => {
        this.out = c;
      },
      cancel: () => this.leaderLeft(),
    });
  }

  /** The last follower left. */
  nobodyFollows(): void {
    if (!this.leaderReading) this.stop();
  }

  async start(signal: AbortSignal | undefined): Promise<LedStream<S, M>> {
    // A bypassed load has no followers.
    if (this.load.status === 'miss') {
      this.readers = readersOf(this.cache, this.load.key.id);
      this.readers.live = this as LiveLoad<unknown, unknown>;
    }
    if (signal) {
      // While this caller reads, its abort errors its own stream and makes it leave.
      const onAbort = () => {
        this.deliver((out) => out.error(abortReason(signal)));
        this.leaderLeft();
      };
      if (signal.aborted) onAbort();
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.unlisten = () => signal.removeEventListener('abort', onAbort);
      }
    }
    let opening: Promise<{ readonly stream: ReadableStream<S>; readonly meta: M }>;
    try {
      opening = this.spec.open(this.upstream.signal);
    } catch (error) {
      opening = Promise.reject(error);
    }
    opening
      .then(
        ({ stream }) => this.pump(stream),
        (error: unknown) => this.openFailed(error),
      )
      .catch((error: unknown) => {
        // A recording that threw: settle the load all the same (a no-op once it is settled).
        this.load.abandon(error);
        this.deliver((out) => out.error(error));
        this.end();
      });
    const { meta } = await untilAborted(opening, signal);
    return { stream: this.stream, meta };
  }

  private leaderLeft(): void {
    if (!this.leaderReading) return;
    this.leaderReading = false;
    this.unlisten();
    if (!this.readers || this.readers.followers === 0) this.stop();
  }

  private stop(): void {
    if (this.ended) return;
    // Nobody reads any more: stop the provider's stream (and the tokens it costs), and settle
    // the load with what was recorded now, so that an identical request made meanwhile loads
    // again instead of following a stream that stops here.
    this.settle(false);
    this.upstream.abort(new DOMException('Every reader of the stream left.', 'AbortError'));
    void this.source?.cancel().catch(noop);
  }

  /**
   * Commits the recording when it is a complete answer, abandons the load otherwise (once).
   * `ended`: the upstream stream ended there, and so do the streams of the callers following it.
   */
  private settle(ended: boolean): void {
    if (this.settled) return;
    this.settled = true;
    let answer: Loaded<unknown> | undefined;
    try {
      answer = this.spec.finish(this.chunks);
    } catch (error) {
      this.load.abandon(error);
      return;
    }
    if (answer) {
      this.load.commit(answer).then((result) => this.spec.committed?.(result, answer), noop);
    } else if (ended && this.chunks.length > 0) this.load.abandon(new StreamEndedIncomplete());
    else this.load.abandon();
  }

  private openFailed(error: unknown): void {
    this.end();
    // Nobody read it any more (the abort was ours): joiners that arrived meanwhile begin again.
    if (this.upstream.signal.aborted) this.load.abandon();
    else this.load.abandon(error);
  }

  private async pump(stream: ReadableStream<S>): Promise<void> {
    const source = (this.source = stream.getReader());
    if (this.upstream.signal.aborted) void source.cancel().catch(noop);
    for (;;) {
      let r: Awaited<ReturnType<ReadableStreamDefaultReader<S>['read']>>;
      try {
        r = await source.read();
      } catch (error) {
        if (this.upstream.signal.aborted) break; // our own cancel: the recording was judged then
        // The provider's stream broke. Joiners that have nothing yet begin again; the others
        // fail as this caller's stream does.
        this.end();
        if (this.chunks.length > 0) this.load.abandon(error);
        else this.load.abandon();
        this.deliver((out) => out.error(error));
        return;
      }
      if (r.done || this.settled) break; // settled: stopped, nobody reads what arrives now
      for (const chunk of this.spec.record(r.value)) {
        this.chunks.push(chunk);
        this.load.push(chunk);
      }
      const piece = r.value;
      this.deliver((out) => out.enqueue(piece));
    }
    this.end();
    this.deliver((out) => out.close());
    this.settle(true);
  }

  /** Hands something to the leading caller's stream while it reads it. */
  private deliver(fn: (out: ReadableStreamDefaultController<S>) => void): void {
    if (!this.leaderReading) return;
    try {
      fn(this.out);
    } catch {
      // errored or closed by the caller meanwhile
    }
  }

  private end(): void {
    this.ended = true;
    this.unlisten();
    const r = this.readers;
    if (r?.live === this) {
      r.live = undefined;
      forgetIfUnused(this.cache, this.load.key.id, r);
    }
  }
}
