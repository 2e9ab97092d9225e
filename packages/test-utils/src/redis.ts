import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const INSTALL_HINT =
  'Install Redis so that `redis-server` and `redis-cli` are on PATH (Debian/Ubuntu: `apt-get install redis-server`; ' +
  'macOS: `brew install redis`), or set REDIS_URL to a server the tests may use (tests never FLUSHALL it).';

/** Error thrown by the test helpers; the message always says what to install or change. */
export class TestRedisError extends Error {
  override readonly name = 'TestRedisError';
}

// ---------------------------------------------------------------------------------------------
// process bookkeeping: every redis-server we spawn dies with the test process.

const live = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = (): void => {
    for (const child of live) {
      try {
        // A stopped process ignores SIGTERM until continued; SIGKILL works on both.
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
    live.clear();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// ports

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const actual = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolve(actual));
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago. With `busOffset` (Redis Cluster uses
 * port + 10000 for its bus) the offset port is checked too.
 */
export async function freePort(options: { busOffset?: number } = {}): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await listenOnce(0);
    if (options.busOffset === undefined) return port;
    const bus = port + options.busOffset;
    if (bus > 65535) continue;
    try {
      await listenOnce(bus);
      return port;
    } catch {
      /* bus port busy: try another */
    }
  }
  throw new TestRedisError('freePort: could not find a free port pair after 50 attempts');
}

// ---------------------------------------------------------------------------------------------
// raw RESP (no client library: the helpers must not depend on the code under test)

function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

/** Length of one complete RESP reply at the start of `buf`, or -1 if incomplete. */
function replyLength(buf: string, start = 0): number {
  const lineEnd = buf.indexOf('\r\n', start);
  if (lineEnd < 0) return -1;
  const type = buf[start];
  const head = buf.slice(start + 1, lineEnd);
  if (type === '+' || type === '-' || type === ':') return lineEnd + 2 - start;
  if (type === '$') {
    const n = Number(head);
    if (n < 0) return lineEnd + 2 - start;
    const end = lineEnd + 2 + n + 2;
    return Buffer.byteLength(buf) >= end ? end - start : -1;
  }
  if (type === '*') {
    const n = Number(head);
    let pos = lineEnd + 2;
    for (let i = 0; i < n; i++) {
      const len = replyLength(buf, pos);
      if (len < 0) return -1;
      pos += len;
    }
    return pos - start;
  }
  return lineEnd + 2 - start;
}

/**
 * Send one command to a Redis server over a fresh TCP connection and return the raw RESP reply
 * text (e.g. `+PONG\r\n`, `$12\r\n...`). Intended for test setup and health checks; replies
 * are assumed ASCII.
 */
export function rawRedisCommand(target: { host?: string; port: number }, args: readonly string[], timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: target.host ?? '127.0.0.1', port: target.port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TestRedisError(`redis ${target.port}: no reply to ${args[0]} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (replyLength(data) >= 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data);
      }
    });
    socket.once('connect', () => socket.write(encodeCommand(args)));
  });
}

async function answeredBy(port: number, pid: number | undefined): Promise<boolean> {
  try {
    const info = await rawRedisCommand({ port }, ['INFO', 'server'], 300);
    return new RegExp(`process_id:${pid}\\r`).test(info);
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// single server

export interface StartRedisServerOptions {
  /** Port to listen on. @default a free port ({@link freePort}) */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '2mb', '--maxmemory-policy', 'allkeys-lru']`. @default [] */
  args?: readonly string[];
  /** How long to wait for the first PONG. @default 10000 */
  startTimeoutMs?: number;
}

export interface RedisServerHandle {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** PID of the current process (changes after {@link restart}). */
  readonly pid: number;
  /** Temporary working directory (removed by {@link stop}). */
  readonly dir: string;
  /** Graceful shutdown (SIGTERM, SIGKILL after 5 s) and temp dir removal. Idempotent. */
  stop(): Promise<void>;
  /** `kill -9`: the server vanishes without closing sockets cleanly. Resolves once it has exited. */
  kill9(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets open but answers nothing (a hung server). */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Stop (or finish a kill) and start a fresh, empty server on the same port; resolves once it answers PING. */
  restart(): Promise<void>;
}

function spawnRedis(port: number, dir: string, extra: readonly string[]): ChildProcess {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--protected-mode',
    'no',
    '--loglevel',
    'warning',
    ...extra,
  ];
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  installExitHook();
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function waitReady(child: ChildProcess, port: number, timeoutMs: number, log: () => string): Promise<void> {
  let spawnError: Error | undefined;
  let exited: number | null | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  child.once('exit', (code) => {
    exited = code;
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (spawnError) {
      const code = (spawnError as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new TestRedisError(`redis-server was not found on PATH. ${INSTALL_HINT}`);
      throw new TestRedisError(`could not start redis-server: ${spawnError.message}. ${INSTALL_HINT}`);
    }
    if (exited !== undefined) {
      throw new TestRedisError(`redis-server on port ${port} exited with code ${exited} during start-up:\n${log()}`);
    }
    // Check it is OUR process answering: a port taken by another server would also say PONG.
    if (await answeredBy(port, child.pid)) return;
    await sleep(25);
  }
  child.kill('SIGKILL');
  throw new TestRedisError(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms:\n${log()}`);
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Start a throwaway `redis-server` (from PATH) on a free port with persistence disabled, in a
 * temporary directory. Resolves once it answers PING. Killed when the test process exits.
 */
export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisServerHandle> {
  const extra = options.args ?? [];
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const explicitPort = options.port;
  const dir = mkdtempSync(join(tmpdir(), 'strata-redis-'));
  tempDirs.add(dir);
  let output = '';
  const attach = (child: ChildProcess): void => {
    const append = (chunk: Buffer): void => {
      output = (output + chunk.toString()).slice(-4_000);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
  };

  let port = explicitPort ?? (await freePort());
  let child: ChildProcess | undefined;
  for (let attempt = 0; ; attempt++) {
    child = spawnRedis(port, dir, extra);
    attach(child);
    try {
      await waitReady(child, port, startTimeoutMs, () => output);
      break;
    } catch (err) {
      // Lost a race for the port: another process grabbed it between freePort() and bind().
      const raced = /Address already in use/i.test(output);
      if (!raced || explicitPort !== undefined || attempt >= 3) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      output = '';
      port = await freePort();
    }
  }

  let current: ChildProcess = child;
  let stopped = false;
  const isAlive = (): boolean => current.exitCode === null && current.signalCode === null;

  const terminate = async (): Promise<void> => {
    if (!isAlive()) return;
    current.kill('SIGCONT');
    current.kill('SIGTERM');
    if (!(await waitExit(current, 5_000))) {
      current.kill('SIGKILL');
      await waitExit(current, 5_000);
    }
  };

  const handle: RedisServerHandle = {
    url: `redis://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    get pid() {
      return current.pid ?? -1;
    },
    dir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await terminate();
      rmSync(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
    async kill9() {
      if (!isAlive()) return;
      current.kill('SIGKILL');
      await waitExit(current, 5_000);
    },
    pause() {
      if (isAlive()) current.kill('SIGSTOP');
    },
    resume() {
      if (isAlive()) current.kill('SIGCONT');
    },
    async restart() {
      if (stopped) throw new TestRedisError(`redis-server on port ${port} was stopped; it cannot be restarted`);
      await terminate();
      output = '';
      // The old listening socket can linger briefly; retry the bind for a while.
      const deadline = Date.now() + 10_000;
      for (;;) {
        current = spawnRedis(port, dir, extra);
        attach(current);
        try {
          await waitReady(current, port, startTimeoutMs, () => output);
          return;
        } catch (err) {
          if (!/Address already in use/i.test(output) || Date.now() > deadline) throw err;
          output = '';
          await sleep(100);
        }
      }
    },
  };
  return handle;
}

// ---------------------------------------------------------------------------------------------
// REDIS_URL or a private server

export interface TestRedis {
  url: string;
  /** true when the tests started this server themselves (then FLUSHALL etc. are allowed). */
  owned: boolean;
  /** The server handle when owned. */
  server?: RedisServerHandle;
}

let shared: Promise<TestRedis> | undefined;

/**
 * Redis for ordinary (non-fault) tests: `REDIS_URL` if set, otherwise one private
 * `redis-server` started on first use and shared by everything in this test file
 * (module state; vitest isolates test files), stopped when the process exits.
 * Never FLUSHALL a server that is not `owned`: isolate tests with {@link uniqueKeyPrefix}.
 */
export function redisForTests(): Promise<TestRedis> {
  if (shared) return shared;
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    shared = Promise.resolve({ url: fromEnv, owned: false });
  } else {
    shared = startRedisServer().then((server) => ({ url: server.url, owned: true, server }));
    shared.catch(() => {
      shared = undefined;
    });
  }
  return shared;
}

/** URL of {@link redisForTests}. */
export async function redisUrlForTests(): Promise<string> {
  return (await redisForTests()).url;
}

let prefixCounter = 0;

/** A key prefix unique to this process and call, e.g. `t-<pid>-<time>-<n>-<label>`, for isolating tests on a shared server. */
export function uniqueKeyPrefix(label = 'test'): string {
  prefixCounter += 1;
  return `t-${process.pid}-${Date.now().toString(36)}-${prefixCounter}-${label}`;
}

// ---------------------------------------------------------------------------------------------
// cluster

export interface RedisClusterHandle {
  /** Start-up nodes (the masters at creation), e.g. for `new Cluster(handle.nodes)`. */
  readonly nodes: ReadonlyArray<{ host: string; port: number }>;
  /** Every node: the masters first, then their replicas. */
  readonly servers: readonly RedisServerHandle[];
  /** Stop every node. Idempotent. */
  stop(): Promise<void>;
}

function runRedisCli(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      const code = (err as NodeJS.ErrnoException).code;
      reject(new TestRedisError(code === 'ENOENT' ? `redis-cli was not found on PATH. ${INSTALL_HINT}` : err.message));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new TestRedisError(`redis-cli ${args.join(' ')} failed (exit ${code}):\n${out}`));
    });
  });
}

/**
 * Start an `masters`-node Redis Cluster of throwaway servers on free ports (with `replicas`
 * replicas per master: `servers` then lists masters first, in the order `redis-cli --cluster
 * create` pairs them) and wait until every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(
  masters = 3,
  options: { args?: readonly string[]; timeoutMs?: number; replicas?: number } = {},
): Promise<RedisClusterHandle> {
  if (masters < 3) throw new TestRedisError('startRedisCluster: Redis Cluster needs at least 3 masters');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const replicas = options.replicas ?? 0;
  const servers: RedisServerHandle[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freePort({ busOffset: 10_000 });
      servers.push(
        await startRedisServer({
          port,
          args: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000', ...(options.args ?? [])],
        }),
      );
    }
    await runRedisCli(
      ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      timeoutMs,
    );
    const deadline = Date.now() + timeoutMs;
    for (const server of servers) {
      for (;;) {
        const info = await rawRedisCommand({ port: server.port }, ['CLUSTER', 'INFO']).catch(() => '');
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new TestRedisError(`cluster node ${server.port} not ok within ${timeoutMs} ms:\n${info}`);
        await sleep(100);
      }
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  let stopped = false;
  return {
    nodes: servers.slice(0, masters).map((s) => ({ host: s.host, port: s.port })),
    servers,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopAll();
    },
  };
}
