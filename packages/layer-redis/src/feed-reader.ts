import type { FeedRecord, FeedSink, FeedSubscription, SemanticMutation } from '@strata-cache/layer-semantic';
import { type Position, START, compareIds, decodeMutation, encodeOffset } from './feed-codec.js';
import type { Client } from './scripts.js';
import { withTimeout } from './timing.js';

/** Most records per `apply` call. */
const SLICE = 64;
/** Applying a reply yields a turn to the event loop after this long, ms. */
const YIELD_MS = 10;

/** A record whose mutation is decoded when first read (a layer never reads its own). */
function lazyRecord(offset: string, origin: string, payload: Buffer): FeedRecord {
  let mutation: SemanticMutation | undefined;
  return {
    offset,
    origin,
    get mutation(): SemanticMutation {
      mutation ??= decodeMutation(payload);
      return mutation;
    },
  };
}

/** A position not known yet (no offset, or one taken under other settings): found through a gap. */
const UNKNOWN: Position = Object.freeze({ id: '0-0', seq: -1 });

export interface FollowerSettings {
  readonly keys: readonly string[];
  /** Stream-set identity written into offsets. */
  readonly config: string;
  readonly blockMs: number;
  readonly readTimeoutMs: number;
  readonly readCount: number;
  /** Shortest time between the starts of two reads that return records, ms (0: read again at once). */
  readonly batchMs: number;
  /** Origins publishing through this feed (the layers of this process): their records are not decoded unless read. */
  readonly local: ReadonlySet<string>;
}

export interface FollowerHost {
  /** A new connection for this follower's blocking reads (it closes it). */
  connect(): Promise<Client>;
  /** True on a Redis Cluster: one connection per stream (an XREAD cannot span slots). */
  readonly cluster: boolean;
  report(error: Error): void;
  /** Called once the follower stopped (the feed closes with its last follower). */
  closed(): Promise<void>;
}

export interface FollowerStats {
  /** Records read from the streams. */
  received: number;
  /** Records that could not be decoded (skipped). */
  decodeErrors: number;
  /** Times the follower lost its place and the layer re-synchronised. */
  gaps: number;
  /** Failed or hung reads (each followed by a fresh connection and a check of the positions). */
  readErrors: number;
}

/** The last entry of a stream as a position (START when the stream is missing or empty). */
export async function lastOf(client: Client, key: string, ms: number): Promise<Position> {
  const r = (await withTimeout(
    client.xrevrangeBuffer(key, '+', '-', 'COUNT', 1),
    ms,
    () => new Error(`XREVRANGE ${key} did not answer within ${ms} ms`),
  )) as Array<[Buffer, Buffer[]]>;
  if (!r || r.length === 0) return START;
  const [id, fields] = r[0]!;
  // An entry without a number (not appended by this feed) counts as 0, as the append script reads it.
  return { id: id.toString(), seq: seqOf(fields) || 0 };
}

function seqOf(fields: Buffer[]): number {
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i]!.toString() === 'n') return Number(fields[i + 1]!.toString());
  return Number.NaN;
}

/**
 * One subscription: reads the streams with `XREAD BLOCK` on a connection of its own (one per
 * stream on a Cluster), checks that every entry's sequence number follows its position, and
 * delivers to the layer in order (deliveries of all its connections go through one queue).
 *
 * When it cannot vouch for having seen every entry since its position — a number skipped
 * (trimmed before it was read), a stream that vanished or went back (Redis restarted empty or
 * from an older snapshot, a failover that lost writes) — it calls the layer's `gap()`, which
 * re-derives the index from L2, and continues from the stream's end as it was before that
 * re-synchronisation. Positions are checked again after every failed read (a fresh connection).
 * Nothing here blocks a lookup: the layer answers from its own index throughout.
 */
export class FeedFollower implements FeedSubscription {
  private pos: Position[];
  private stopped = false;
  private chain: Promise<unknown> = Promise.resolve();
  private readonly clients = new Set<Client>();
  private loops: Array<Promise<void>> = [];
  private wake: Set<() => void> = new Set();
  readonly stats: FollowerStats = { received: 0, decodeErrors: 0, gaps: 0, readErrors: 0 };

  constructor(
    private readonly s: FollowerSettings,
    private readonly host: FollowerHost,
    private readonly sink: FeedSink,
    positions: readonly Position[] | undefined,
  ) {
    this.pos = positions ? [...positions] : s.keys.map(() => UNKNOWN);
  }

  /** The current offset (what the layer would snapshot after the last delivery). */
  get offset(): string {
    return encodeOffset(this.s.config, this.pos);
  }

  start(): void {
    const all = this.s.keys.map((_, i) => i);
    this.loops = this.host.cluster ? all.map((i) => this.loop([i])) : [this.loop(all)];
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of [...this.wake]) w();
    for (const c of this.clients) c.disconnect();
    this.clients.clear();
    await Promise.all(this.loops);
    await this.host.closed();
  }

  private async loop(streams: number[]): Promise<void> {
    let client: Client | undefined;
    let verify = true;
    let failures = 0;
    const keys = streams.map((i) => this.s.keys[i]!);
    let lastRead = Number.NEGATIVE_INFINITY;
    let busy = false;
    while (!this.stopped) {
      try {
        // After a read that returned records, the next one waits out the rest of batchMs: under
        // a steady stream of records each reply then carries all of the last batchMs instead
        // of one or two, and a round trip (not the records) is most of what a read costs. After
        // a quiet spell the pending XREAD BLOCK returns with the first record at once.
        if (busy) {
          const wait = lastRead + this.s.batchMs - performance.now();
          if (wait >= 1) await this.sleep(wait);
          if (this.stopped) break;
        }
        busy = false;
        if (!client) {
          client = await this.host.connect();
          this.clients.add(client);
          if (this.stopped) break;
        }
        if (verify) {
          await this.verify(client, streams);
          verify = false;
        }
        const c = client;
        const ids = streams.map((i) => this.pos[i]!.id);
        lastRead = performance.now();
        const reply = (await withTimeout(
          c.xreadBuffer('COUNT', this.s.readCount, 'BLOCK', this.s.blockMs, 'STREAMS', ...keys, ...ids),
          this.s.blockMs + this.s.readTimeoutMs,
          () => new Error(`XREAD did not answer within ${this.s.blockMs + this.s.readTimeoutMs} ms (options: blockMs + readTimeoutMs)`),
        )) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
        if (failures > 0) failures = 0;
        if (reply && !this.stopped) {
          await this.serial(() => this.deliver(c, reply));
          // A full reply: more is waiting, read it at once.
          busy = !reply.some(([, entries]) => entries.length >= this.s.readCount);
        }
      } catch (error) {
        if (this.stopped) break;
        this.stats.readErrors++;
        if (failures++ === 0) this.host.report(new Error(`semantic feed: reading failed (${(error as Error)?.message ?? String(error)}); reconnecting`));
        if (client) {
          this.clients.delete(client);
          client.disconnect();
          client = undefined;
        }
        verify = true;
        await this.sleep(Math.min(2_000, 50 * 2 ** Math.min(failures, 6)));
      }
    }
    if (client) {
      this.clients.delete(client);
      client.disconnect();
    }
  }

  /**
   * After (re)connecting: a stream whose last entry is older than our position, or carries
   * another number at our position, or is gone while we had read from it, was reset — and a
   * position not known yet must be found. Either is a gap.
   */
  private async verify(client: Client, streams: number[]): Promise<void> {
    const lost: Array<{ i: number; last: Position }> = [];
    for (const i of streams) {
      const p = this.pos[i]!;
      const last = await lastOf(client, this.s.keys[i]!, this.s.readTimeoutMs);
      const cmp = compareIds(last.id, p.id);
      if (p.seq < 0 || cmp < 0 || last.seq < p.seq || (cmp === 0 && last.seq !== p.seq)) lost.push({ i, last });
    }
    if (lost.length > 0) await this.serial(() => this.gap(lost));
  }

  /**
   * Applies a reply in slices of at most SLICE records, each with the offset just after its
   * last record (so a snapshot between two slices resumes at the right place), and yields a
   * turn to the event loop whenever applying took YIELD_MS: a long reply (a follower catching
   * up, records that each go into an HNSW graph) never blocks lookups for longer than that.
   */
  private async deliver(client: Client, reply: Array<[Buffer, Array<[Buffer, Buffer[]]>]>): Promise<void> {
    const lost: number[] = [];
    let slice: Array<{ origin: string; mutation: SemanticMutation | Buffer }> = [];
    let since = performance.now();
    for (const [keyBuf, entries] of reply) {
      const i = this.s.keys.indexOf(keyBuf.toString());
      if (i < 0) continue;
      let seq = this.pos[i]!.seq;
      for (const [idBuf, fields] of entries) {
        let n = Number.NaN;
        let origin = '';
        let payload: Buffer | undefined;
        for (let f = 0; f + 1 < fields.length; f += 2) {
          const name = fields[f]!;
          // Field names are one byte: n, o, m.
          if (name.length !== 1) continue;
          if (name[0] === 0x6e) n = Number(fields[f + 1]!.toString());
          else if (name[0] === 0x6f) origin = fields[f + 1]!.toString();
          else if (name[0] === 0x6d) payload = fields[f + 1];
        }
        if (n !== seq + 1) {
          lost.push(i);
          break;
        }
        seq = n;
        this.pos[i] = { id: idBuf.toString(), seq: n };
        this.stats.received++;
        if (this.s.local.has(origin)) {
          // A layer skips its own records without reading their mutation: decoded only if read.
          slice.push({ origin, mutation: payload ?? Buffer.alloc(0) });
        } else {
          try {
            slice.push({ origin, mutation: decodeMutation(payload ?? Buffer.alloc(0)) });
          } catch (error) {
            if (this.stats.decodeErrors++ === 0)
              this.host.report(new Error(`semantic feed: skipped a record that cannot be decoded (${(error as Error).message})`));
          }
        }
        if (slice.length >= SLICE) {
          this.apply(slice);
          slice = [];
          if (performance.now() - since >= YIELD_MS) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            if (this.stopped) return;
            since = performance.now();
          }
        }
      }
    }
    this.apply(slice);
    if (lost.length > 0) await this.gap(await this.findEnds(client, lost));
  }

  /** Hands records read so far to the layer, with the current offset. */
  private apply(slice: ReadonlyArray<{ origin: string; mutation: SemanticMutation | Buffer }>): void {
    if (slice.length === 0) return;
    const offset = this.offset;
    const records = slice.map(
      (g): FeedRecord => (Buffer.isBuffer(g.mutation) ? lazyRecord(offset, g.origin, g.mutation) : { offset, origin: g.origin, mutation: g.mutation }),
    );
    try {
      this.sink.apply(records);
    } catch (error) {
      this.host.report(error as Error);
    }
  }

  private async findEnds(client: Client, streams: number[]): Promise<Array<{ i: number; last: Position }>> {
    const out: Array<{ i: number; last: Position }> = [];
    for (const i of streams) out.push({ i, last: await lastOf(client, this.s.keys[i]!, this.s.readTimeoutMs) });
    return out;
  }

  /**
   * The layer re-synchronises; afterwards we follow from the ends found before it started
   * (whatever was appended during it is read next). On failure nothing moves: the read loop
   * reconnects and finds the same gap again.
   */
  private async gap(lost: Array<{ i: number; last: Position }>): Promise<void> {
    const next = [...this.pos];
    for (const { i, last } of lost) next[i] = last;
    this.stats.gaps++;
    await this.sink.gap(encodeOffset(this.s.config, next));
    this.pos = next;
  }

  /** Deliveries and gaps of every connection, one at a time, in order. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const p = this.chain.then(() => (this.stopped ? (undefined as T) : fn()));
    this.chain = p.catch(() => undefined);
    return p;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake.add(done);
    });
  }
}
