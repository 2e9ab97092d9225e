import type { CacheEntry } from '@strata-cache/core';
import type { Connection } from './connection.js';
import { parseEntry, unpack } from './envelope.js';
import { abortedError, isAvailabilityError, timeoutError, wrap } from './errors.js';
import type { Client } from './scripts.js';

/** Most keys in one MGET: larger batches are split (a reply of ~100 KB values stays short). */
const MAX_BATCH = 128;

interface Waiter {
  readonly resolve: (entry: CacheEntry | undefined) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
}

/** One key read in one tick, shared by every caller that asked for it in that tick. */
interface Read {
  readonly rk: string;
  readonly keyId: string;
  waiters: Waiter[];
}

/** Reads sent as one command (GET for one, MGET for more), within one hash tag (Cluster slot). */
interface Group {
  readonly reads: Read[];
  /** Settled (answered, failed or timed out). */
  done: boolean;
}

/** The reads asked for in one tick: one deadline for all of them. */
interface Tick {
  readonly client: Client;
  readonly reads: Map<string, Read>;
  /** Groups not sent yet. */
  readonly queued: Group[];
  /** Cluster: the group being filled per hash tag. */
  readonly byTag: Map<string, Group> | undefined;
  /** Standalone: the group being filled. */
  open: Group | undefined;
  readonly sent: Group[];
  pending: number;
  deadline: { done: boolean } | undefined;
}

export interface ReadSettings {
  readonly timeoutMs: number;
  readonly maxValueBytes: number;
  /** A value that failed to decode (counted already): remove it unless it is only unreadable here. */
  readonly discard: (rk: string, error: unknown) => void;
}

/**
 * Reads, coalesced per event-loop tick. The first read of a tick is sent at once as a plain
 * GET (a lone request pays nothing extra); reads asked for later in the same tick are sent
 * when the tick ends as one MGET per hash tag of at most 128 keys, and identical keys of a
 * tick share one read (a burst of identical misses costs Redis one key). Each caller still
 * gets its own entry object (parsed for it), its own miss, or its own error.
 */
export class ReadBatcher {
  private tick: Tick | undefined;

  constructor(
    private readonly conn: Connection,
    private readonly s: ReadSettings,
  ) {}

  read(rk: string, keyId: string, signal?: AbortSignal): Promise<CacheEntry | undefined> {
    if (signal?.aborted) return Promise.reject(abortedError(this.conn.name, 'get', signal));
    const client = this.conn.hot();
    if (client === undefined) return this.readAlone(rk, keyId, signal);
    return new Promise<CacheEntry | undefined>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal };
      let t = this.tick;
      if (t === undefined) {
        // The first read of a tick goes out at once.
        t = this.tick = {
          client,
          reads: new Map(),
          queued: [],
          byTag: client.isCluster ? new Map() : undefined,
          open: undefined,
          sent: [],
          pending: 0,
          deadline: undefined,
        };
        process.nextTick(this.endTick);
        const read: Read = { rk, keyId, waiters: [waiter] };
        t.reads.set(rk, read);
        this.send(t, { reads: [read], done: false });
        return;
      }
      const same = t.reads.get(rk);
      if (same !== undefined) {
        same.waiters.push(waiter);
        return;
      }
      const read: Read = { rk, keyId, waiters: [waiter] };
      t.reads.set(rk, read);
      this.groupFor(t, rk).reads.push(read);
    });
  }

  /** Not connected (or circuit not closed): one command through the ordinary fail-open path. */
  private readAlone(rk: string, keyId: string, signal: AbortSignal | undefined): Promise<CacheEntry | undefined> {
    return this.conn
      .exec('get', this.s.timeoutMs, (c) => c.getBuffer(rk), signal)
      .then(async (buf) => (buf === null ? undefined : (await this.decodeFor(rk, keyId, buf, 1))[0]));
  }

  private groupFor(t: Tick, rk: string): Group {
    if (t.byTag === undefined) {
      let g = t.open;
      if (g === undefined || g.reads.length >= MAX_BATCH) t.queued.push((g = t.open = { reads: [], done: false }));
      return g;
    }
    // Cluster: an MGET must stay within one slot. Every entry key carries a hash tag, and keys
    // with the same tag are in the same slot (by definition), so grouping by tag suffices.
    const open = rk.indexOf('{');
    const tag = rk.slice(open + 1, rk.indexOf('}', open));
    let g = t.byTag.get(tag);
    if (g === undefined || g.reads.length >= MAX_BATCH) {
      t.byTag.set(tag, (g = { reads: [], done: false }));
      t.queued.push(g);
    }
    return g;
  }

  /**
   * Runs (process.nextTick, scheduled by the first read of a tick) after the current callback
   * and every promise reaction it set off, i.e. after every request that continues in the same
   * tick has asked for its read; then sends the reads queued meanwhile and starts the tick's
   * one deadline (which counts from when the commands are written: see timing.ts).
   */
  private readonly endTick = (): void => {
    const t = this.tick!;
    this.tick = undefined;
    if (t.queued.length > 0) {
      if (this.conn.hot() !== t.client) {
        // The state changed within the tick (e.g. the connection dropped): each read takes the
        // ordinary path, which fails fast or waits as it should.
        for (const g of t.queued) for (const read of g.reads) this.alone(read);
      } else {
        for (const g of t.queued) {
          // A caller that gave up before its read was sent: nothing is sent for it.
          const reads = g.reads.filter((r) => this.dropAborted(r));
          if (reads.length > 0) this.send(t, reads.length === g.reads.length ? g : { reads, done: false });
        }
      }
    }
    if (t.sent.length > 0) t.deadline = this.conn.queue(this.s.timeoutMs).add(() => this.expire(t));
  };

  private alone(read: Read): void {
    for (const w of read.waiters) this.readAlone(read.rk, read.keyId, w.signal).then(w.resolve, w.reject);
  }

  private dropAborted(read: Read): boolean {
    if (!read.waiters.some((w) => w.signal?.aborted)) return true;
    read.waiters = read.waiters.filter((w) => {
      if (!w.signal?.aborted) return true;
      w.reject(abortedError(this.conn.name, 'get', w.signal));
      return false;
    });
    return read.waiters.length > 0;
  }

  private send(t: Tick, g: Group): void {
    t.sent.push(g);
    t.pending++;
    const settle = (bufs: ReadonlyArray<Buffer | null>) => this.settle(t, g, bufs);
    const fail = (error: unknown) => this.fail(t, g, error);
    if (g.reads.length === 1) t.client.getBuffer(g.reads[0]!.rk).then((buf) => settle([buf]), fail);
    else t.client.mgetBuffer(g.reads.map((r) => r.rk)).then(settle, fail);
  }

  private finished(t: Tick, g: Group): boolean {
    if (g.done) return false; // timed out already
    g.done = true;
    if (--t.pending === 0 && t.deadline) t.deadline.done = true;
    return true;
  }

  /** One command's reply: each read gets its own value; a value that fails to decode only fails its own read. */
  private settle(t: Tick, g: Group, bufs: ReadonlyArray<Buffer | null>): void {
    if (!this.finished(t, g)) return;
    this.conn.breaker.success();
    for (let i = 0; i < g.reads.length; i++) {
      const read = g.reads[i]!;
      const buf = bufs[i];
      if (buf === null || buf === undefined) {
        for (const w of read.waiters) w.resolve(undefined);
        continue;
      }
      const waiters = read.waiters;
      let entries: CacheEntry[] | Promise<CacheEntry[]>;
      try {
        entries = this.decodeFor(read.rk, read.keyId, buf, waiters.length);
      } catch (error) {
        for (const w of waiters) w.reject(error);
        continue;
      }
      if (Array.isArray(entries)) for (let j = 0; j < waiters.length; j++) waiters[j]!.resolve(entries[j]);
      else
        entries.then(
          (es) => waiters.forEach((w, j) => w.resolve(es[j])),
          (error: unknown) => waiters.forEach((w) => w.reject(error)),
        );
    }
  }

  /** A failed command fails each of its reads, and counts against the breaker once per key (as separate GETs would). */
  private fail(t: Tick, g: Group, error: unknown): void {
    if (!this.finished(t, g)) return;
    const availability = isAvailabilityError(error);
    for (const read of g.reads) {
      if (availability) this.conn.breaker.failure(error);
      const wrapped = wrap(this.conn.name, 'get', error);
      for (const w of read.waiters) w.reject(wrapped);
    }
  }

  /** The tick's deadline passed: every read still waiting times out (each key one breaker failure). */
  private expire(t: Tick): void {
    for (const g of t.sent) {
      if (g.done) continue;
      g.done = true;
      for (const read of g.reads) {
        this.conn.counters.timeouts++;
        const error = timeoutError(this.conn.name, 'get', this.s.timeoutMs);
        this.conn.breaker.failure(error);
        for (const w of read.waiters) w.reject(error);
      }
    }
  }

  /**
   * Decodes one stored value for `n` callers: checked and inflated once, parsed once per caller
   * (nobody shares an object with another caller). Synchronous unless a large value is inflated
   * on the thread pool. A failure is counted and handled once, then thrown (or rejected).
   */
  decodeFor(rk: string, keyId: string, buf: Buffer, n: number): CacheEntry[] | Promise<CacheEntry[]> {
    const parseAll = (text: string): CacheEntry[] => {
      const out: CacheEntry[] = [];
      for (let j = 0; j < n; j++) out.push(parseEntry(text, rk));
      return out;
    };
    let text: string | Promise<string>;
    try {
      text = unpack(buf, keyId, rk, this.s.maxValueBytes);
      if (typeof text === 'string') return parseAll(text);
    } catch (error) {
      throw this.failed(rk, error);
    }
    return text.then(parseAll).catch((error: unknown) => {
      throw this.failed(rk, error);
    });
  }

  private failed(rk: string, error: unknown): unknown {
    this.conn.counters.decodeErrors++;
    this.s.discard(rk, error);
    return error;
  }
}
