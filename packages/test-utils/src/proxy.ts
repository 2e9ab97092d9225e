import { type Server, type Socket, createConnection, createServer } from 'node:net';

export interface TcpProxyHandle {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number;
  /** `redis://127.0.0.1:<port>` for convenience. */
  readonly url: string;
  /**
   * Black-hole: stop forwarding in both directions while keeping every connection open (like a
   * SIGSTOPped server or a dead network path). Bytes are held, not dropped.
   */
  pause(): void;
  /** Forward again (held bytes flow on). */
  resume(): void;
  /** Reset every open connection (like a server crash); new connections are still accepted. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * A TCP forwarder to `target` that tests can pause and cut: network faults against a server
 * the tests must not touch (e.g. a shared REDIS_URL).
 */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxyHandle> {
  const pairs = new Set<[Socket, Socket]>();
  const linked = new WeakSet<Socket>();
  let paused = false;
  const link = ([a, b]: [Socket, Socket]): void => {
    if (linked.has(a)) return;
    linked.add(a);
    a.pipe(b);
    b.pipe(a);
  };
  const unlink = ([a, b]: [Socket, Socket]): void => {
    linked.delete(a);
    // pipe() resumes a paused source on 'drain'; unpipe so nothing flows until resume().
    a.unpipe(b);
    b.unpipe(a);
    a.pause();
    b.pause();
  };
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.host ?? '127.0.0.1', port: target.port });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    if (paused) {
      client.pause();
      upstream.pause();
    } else link(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pause() {
      paused = true;
      for (const pair of pairs) unlink(pair);
    },
    resume() {
      paused = false;
      for (const pair of pairs) link(pair);
    },
    cut() {
      for (const [a, b] of pairs) {
        a.resetAndDestroy();
        b.destroy();
      }
      pairs.clear();
    },
    close() {
      for (const [a, b] of pairs) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
