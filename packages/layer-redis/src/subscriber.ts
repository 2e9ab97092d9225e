import type { Client } from './scripts.js';

type Handler = (message: string) => void;
type ErrorHandler = (error: Error) => void;
type ReadyHandler = () => void;

/**
 * One pub/sub connection per layer, shared by everything that listens (the invalidation bus,
 * the coordinator's lock-release wake-ups): a connection in subscribe mode can run nothing
 * else, so it is separate from the command connection, but one is enough for every channel.
 * It is created on the first subscription, queues SUBSCRIBE while offline, reconnects for ever
 * and re-subscribes after every reconnect (ioredis autoResubscribe); it is closed when the last
 * channel is unsubscribed, or with the layer.
 */
export class Subscriber {
  private readonly channels = new Map<string, Set<Handler>>();
  private readonly errorHandlers = new Set<ErrorHandler>();
  private readonly readyHandlers = new Set<ReadyHandler>();
  private connection: Promise<Client> | undefined;
  private closed = false;

  constructor(private readonly open: () => Promise<Client>) {}

  /** Channels currently subscribed (for tests and tools). */
  get channelNames(): string[] {
    return [...this.channels.keys()];
  }

  /**
   * Calls `onMessage` for every message on `channel` until the returned function is called.
   * Resolves once Redis confirmed the subscription, or after 2 s when it is unreachable (the
   * subscription then completes when it connects): a cache must not block on an outage.
   * `onResubscribed` is called each time the subscriptions are back after the connection was
   * lost (messages published meanwhile were missed).
   */
  async subscribe(channel: string, onMessage: Handler, onError?: ErrorHandler, onResubscribed?: ReadyHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new Error('subscriber is closed');
    let handlers = this.channels.get(channel);
    const first = handlers === undefined;
    if (!handlers) this.channels.set(channel, (handlers = new Set()));
    handlers.add(onMessage);
    if (onError) this.errorHandlers.add(onError);
    if (onResubscribed) this.readyHandlers.add(onResubscribed);
    let conn: Client;
    try {
      conn = await this.connect();
    } catch (error) {
      handlers.delete(onMessage);
      if (handlers.size === 0) this.channels.delete(channel);
      if (onError) this.errorHandlers.delete(onError);
      if (onResubscribed) this.readyHandlers.delete(onResubscribed);
      throw error;
    }
    if (first) {
      await Promise.race([conn.subscribe(channel).catch((e: Error) => this.error(e)), new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
    let done = false;
    return async () => {
      if (done) return;
      done = true;
      if (onError) this.errorHandlers.delete(onError);
      if (onResubscribed) this.readyHandlers.delete(onResubscribed);
      const set = this.channels.get(channel);
      if (!set?.delete(onMessage) || set.size > 0) return;
      this.channels.delete(channel);
      if (this.channels.size > 0) {
        if (conn.status === 'ready') await Promise.race([conn.unsubscribe(channel).catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
        return;
      }
      // Nothing left to listen to: let the connection go (a later subscription opens a new one).
      if (this.connection) {
        this.connection = undefined;
        await quit(conn);
      }
    };
  }

  /** Closes the connection; later subscriptions fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.channels.clear();
    this.errorHandlers.clear();
    this.readyHandlers.clear();
    const conn = this.connection;
    this.connection = undefined;
    // The SUBSCRIBE may never complete (Redis down): disconnect the connection itself.
    if (conn) (await conn.catch(() => undefined))?.disconnect();
  }

  private connect(): Promise<Client> {
    if (this.connection) return this.connection;
    const p = this.open().then((c) => {
      if (this.closed || this.connection !== p) {
        c.disconnect();
        return c;
      }
      c.on('error', (e: Error) => this.error(e));
      let readyBefore = c.status === 'ready';
      c.on('ready', () => {
        const again = readyBefore;
        readyBefore = true;
        if (again) this.resubscribed(c);
      });
      c.on('message', (channel: string, message: string) => {
        const handlers = this.channels.get(channel);
        if (!handlers) return;
        for (const h of [...handlers]) {
          try {
            h(message);
          } catch (error) {
            this.error(error as Error);
          }
        }
      });
      return c;
    });
    p.catch(() => {
      if (this.connection === p) this.connection = undefined;
    });
    this.connection = p;
    return p;
  }

  /**
   * After a reconnect ioredis sends SUBSCRIBE again; once Redis confirms it, listeners learn that
   * they may have missed messages (and can catch up from where they keep state).
   */
  private resubscribed(c: Client): void {
    const channels = [...this.channels.keys()];
    if (channels.length === 0 || this.closed) return;
    c.subscribe(...channels).then(
      () => {
        for (const h of [...this.readyHandlers]) {
          try {
            h();
          } catch (error) {
            this.error(error as Error);
          }
        }
      },
      (e: Error) => this.error(e),
    );
  }

  private error(e: Error): void {
    for (const h of [...this.errorHandlers]) {
      try {
        h(e);
      } catch {
        // an error sink must not break delivery
      }
    }
  }
}

async function quit(conn: Client): Promise<void> {
  if (conn.status === 'ready') await Promise.race([conn.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1_000).unref())]);
  conn.disconnect();
}
