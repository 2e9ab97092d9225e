import { type CacheEntry, type CacheKey, type LoadCoordinator, type LoadTicket, isExpired } from '@strata-cache/core';
import { randomUUID } from 'node:crypto';
import type { Connection } from './connection.js';
import { closedError } from './errors.js';
import type { KeySpace } from './keys.js';
import type { ResolvedOptions } from './options.js';
import type { ReadBatcher } from './read-batcher.js';
import { EXTEND_LOCK, RELEASE_LOCK } from './scripts.js';
import type { Subscriber } from './subscriber.js';
import type { Writer } from './writes.js';

const NO_LOCK: LoadTicket = Object.freeze({ kind: 'load', done: () => undefined });

/**
 * Cross-process coalescing: a miss that will be stored takes a lock (`SET NX PX`); the holder
 * loads, writes, releases (compare-and-delete) and announces the release on
 * `<prefix>:lock-released`; the others wait for that message (polling as the fallback), then
 * read the entry as a coalesced hit, or take over when the lock is gone without an entry.
 *
 * One deadline bounds it all: a miss spends at most `lock.maxWaitMs` here, every lock command
 * is limited to `timeoutMs` and to what is left of that deadline, and a failed command or an
 * open circuit ends it at once (the request then loads by itself). So on a hung Redis a miss
 * pays at most one lock command's `timeoutMs` here, and nothing once the breaker has opened.
 */
export class LockCoordinator implements LoadCoordinator {
  /** Set by the layer once it is closing. */
  closed = false;
  private listening: Promise<unknown> | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly conn: Connection,
    private readonly keys: KeySpace,
    private readonly o: ResolvedOptions,
    private readonly reads: ReadBatcher,
    private readonly writer: Writer,
    private readonly subscriber: Subscriber,
  ) {}

  private get channel(): string {
    return `${this.keys.prefix}:lock-released`;
  }

  async begin(key: CacheKey): Promise<LoadTicket> {
    if (this.closed) throw closedError(this.conn.name);
    if (!this.conn.breaker.allow()) return NO_LOCK;
    const lockKey = this.keys.lock(key);
    const entryKey = this.keys.entry(key);
    const token = randomUUID();
    const deadline = Date.now() + this.o.lockMaxWaitMs;
    // Each command: timeoutMs, or what is left before the deadline. A failed command ends
    // coordination (the request loads by itself: one extra upstream call at worst), so a
    // failing Redis costs a miss at most one command's time limit here.
    const limit = () => Math.min(this.o.timeoutMs, deadline - Date.now());
    const usable = () => !this.closed && this.conn.breaker.allow() && limit() > 0;
    let delay = this.o.pollMinMs;
    this.listen();
    try {
      for (;;) {
        if (!usable()) return NO_LOCK;
        const acquired = (await this.conn.exec('lock', limit(), (c) => c.set(lockKey, token, 'PX', this.o.lockTtlMs, 'NX'))) === 'OK';
        if (acquired) {
          // The previous holder may have stored the value just before releasing.
          const entry = usable() ? await this.readLive(entryKey, key.id, limit()).catch(() => undefined) : undefined;
          if (entry) {
            void this.conn.exec('unlock', this.o.writeTimeoutMs, (c) => RELEASE_LOCK.run(c, [lockKey], [token])).catch(() => undefined);
            return { kind: 'hit', entry, layer: this.conn.name };
          }
          return this.leaderTicket(lockKey, entryKey, token);
        }
        for (;;) {
          if (!usable()) return NO_LOCK;
          // Woken at once by the holder's "released" message; polling is the fallback.
          await this.waitRelease(lockKey, Math.min(delay, deadline - Date.now()));
          delay = Math.min(delay * 2, this.o.pollMaxMs);
          if (!usable()) return NO_LOCK;
          const [entry, locked] = await Promise.all([this.readLive(entryKey, key.id, limit()), this.conn.exec('lock', limit(), (c) => c.exists(lockKey))]);
          if (entry) return { kind: 'hit', entry, layer: this.conn.name };
          // Holder finished without storing, failed, or died (its lock expired): try to take over.
          if (locked === 0) break;
        }
      }
    } catch {
      return NO_LOCK;
    }
  }

  /** Wakes every waiter (close). */
  wakeAll(): void {
    for (const set of this.waiters.values()) for (const w of [...set]) w();
  }

  private async readLive(entryKey: string, keyId: string, timeoutMs: number): Promise<CacheEntry | undefined> {
    const buf = await this.conn.exec('lock', timeoutMs, (c) => c.getBuffer(entryKey));
    if (!buf) return undefined;
    try {
      const entry = (await this.reads.decodeFor(entryKey, keyId, buf, 1))[0]!;
      return isExpired(entry, Date.now()) ? undefined : entry;
    } catch {
      return undefined;
    }
  }

  /** Subscribes to release messages on the layer's shared subscriber (once, kept until close). */
  private listen(): void {
    if (this.listening) return;
    this.listening = this.subscriber
      .subscribe(this.channel, (lockKey) => {
        const wake = this.waiters.get(lockKey);
        if (wake) for (const w of [...wake]) w();
      })
      .catch(() => {
        this.listening = undefined; // polling still works; try again next time
      });
  }

  /** Resolves when `lockKey` is announced released, or after `ms`. */
  private waitRelease(lockKey: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.waiters.get(lockKey);
      if (!set) this.waiters.set(lockKey, (set = new Set()));
      const wake = () => {
        clearTimeout(timer);
        set!.delete(wake);
        if (set!.size === 0) this.waiters.delete(lockKey);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      set.add(wake);
    });
  }

  private leaderTicket(lockKey: string, entryKey: string, token: string): LoadTicket {
    const renew = setInterval(
      () => {
        void this.conn.exec('lock', this.o.writeTimeoutMs, (c) => EXTEND_LOCK.run(c, [lockKey], [token, this.o.lockTtlMs])).catch(() => undefined);
      },
      Math.max(10, Math.floor(this.o.lockTtlMs / 3)),
    );
    renew.unref();
    let released = false;
    return {
      kind: 'load',
      done: async () => {
        if (released) return;
        released = true;
        // Our own write of the value may still be in flight (bounded by writeTimeoutMs).
        await this.writer.pendingFor(entryKey)?.catch(() => undefined);
        clearInterval(renew);
        // Best effort: if this fails the lock simply expires.
        await this.conn.exec('unlock', this.o.writeTimeoutMs, (c) => RELEASE_LOCK.run(c, [lockKey], [token])).catch(() => undefined);
        await this.conn.exec('unlock', this.o.writeTimeoutMs, (c) => c.publish(this.channel, lockKey)).catch(() => undefined);
      },
    };
  }
}
