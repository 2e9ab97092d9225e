// `--workers N`: the day runs across N worker processes sharing one Redis, requests spread over
// them by conversation, like pods behind a load balancer. Each worker has its own L1 and L3
// (and embedder); L2 and the invalidation bus are shared, and each L3 follows the others through
// the semantic feed. The parent drives the workload and checks every answer, as in one process.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PriceTable, StatsSnapshot } from '@strata-cache/core';
import { RedisLayer } from '@strata-cache/layer-redis';
import type { SemanticCalibrationStats } from '@strata-cache/layer-semantic';
import { type CalibrationFigures, DEMO_CALIBRATION, calibrationFigures } from './calibration.js';
import type { ChatCall, ChatClient, ChatOutcome } from './client.js';
import { type Stack, type StackOptions, mergeStats } from './stack.js';

export type ToWorker =
  | { type: 'init'; index: number; options: Omit<StackOptions, 'log'> }
  | { type: 'chat'; id: number; call: ChatCall }
  | { type: 'event'; id: number; tenant: string }
  | { type: 'flush' }
  | { type: 'stats' }
  | { type: 'close' };

export interface WorkerSemanticStats {
  entries: number;
  indexed: number;
  /** Texts this worker's embedder embedded (its own lookups and writes; replicated entries need none). */
  embeddings: number;
  replication: { applied: number; resyncs: number; lagMs: { p50: number; p99: number; max: number } | undefined } | undefined;
  /** The worker's L3 calibration (undefined when off). */
  calibration: SemanticCalibrationStats | undefined;
}

export type FromWorker =
  | { type: 'ready'; components: string[]; missing: string[]; prices: PriceTable; client: string }
  | { type: 'chat'; id: number; outcome?: ChatOutcome; error?: string }
  | { type: 'event'; id: number; purged: Record<string, number>; detail: string }
  | { type: 'invalidated'; layers: Record<string, number> }
  | { type: 'flushed' }
  | { type: 'stats'; stats: StatsSnapshot; semantic: WorkerSemanticStats[] }
  | { type: 'closed' };

/** What the report shows about the fleet's processes. */
export interface FleetReport {
  workers: number;
  /** Per worker: semantic entries held, texts embedded, replicated entries applied, replication lag. */
  perWorker: Array<{
    worker: number;
    requests: number;
    entries: number;
    embeddings: number;
    applied: number;
    resyncs: number;
    lagP50Ms: number | null;
    lagP99Ms: number | null;
  }>;
}

export interface Fleet extends Stack {
  /** Per-worker figures (after `flush()`). */
  report(): FleetReport;
}

type Message = FromWorker;

class Worker {
  private readonly waiters: Array<{ type: string; resolve: (m: Message) => void }> = [];
  private readonly inbox: Message[] = [];
  private readonly calls = new Map<number, { resolve: (o: ChatOutcome) => void; reject: (e: Error) => void }>();
  readonly invalidations: Array<{ at: number; layers: Record<string, number> }> = [];
  requests = 0;
  exited = false;
  stderr = '';

  constructor(
    readonly index: number,
    readonly proc: ChildProcess,
  ) {
    proc.on('message', (raw) => this.receive(raw as Message));
    proc.stderr?.on('data', (c: Buffer) => {
      this.stderr = (this.stderr + c.toString()).slice(-4_000);
    });
    proc.on('exit', () => {
      this.exited = true;
      const error = new Error(`demo worker ${index} exited${this.stderr ? `: ${this.stderr.trim().split('\n').slice(-3).join(' / ')}` : ''}`);
      for (const c of this.calls.values()) c.reject(error);
      this.calls.clear();
    });
  }

  send(m: ToWorker): void {
    if (!this.exited) this.proc.send(m);
  }

  next<T extends Message['type']>(type: T, timeoutMs = 120_000): Promise<Extract<Message, { type: T }>> {
    const i = this.inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0] as Extract<Message, { type: T }>);
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`demo worker ${this.index}: no ${type} within ${timeoutMs} ms${this.stderr ? ` (${this.stderr.trim().slice(-500)})` : ''}`)),
        timeoutMs,
      );
      this.waiters.push({
        type,
        resolve: (m) => {
          clearTimeout(t);
          resolve(m as Extract<Message, { type: T }>);
        },
      });
    });
  }

  chat(id: number, call: ChatCall): Promise<ChatOutcome> {
    if (this.exited) return Promise.reject(new Error(`demo worker ${this.index} is not running`));
    this.requests++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.send({ type: 'chat', id, call });
    });
  }

  private receive(m: Message): void {
    if (m.type === 'chat') {
      const c = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (m.outcome) c?.resolve(m.outcome);
      else c?.reject(new Error(m.error ?? 'chat failed in the worker'));
      return;
    }
    if (m.type === 'invalidated') {
      this.invalidations.push({ at: Date.now(), layers: m.layers });
      return;
    }
    const w = this.waiters.findIndex((x) => x.type === m.type);
    if (w >= 0) this.waiters.splice(w, 1)[0]!.resolve(m);
    else this.inbox.push(m);
  }
}

/** The compiled worker (the sources run under vitest; the worker always runs from dist). */
function workerScript(): string {
  const here = import.meta.url;
  return fileURLToPath(new URL(here.endsWith('.ts') ? '../dist/worker.js' : './worker.js', here));
}

/**
 * Starts `workers` processes, each building its stack with one instance on the shared Redis
 * prefix, with semantic replication on. Requests are routed by `ChatCall.route` (the
 * conversation), so a conversation stays on one worker and the day is spread over all of them.
 */
export async function buildFleet(options: StackOptions & { workers: number }): Promise<Fleet> {
  if (!options.redisUrl) throw new Error('--workers needs --redis URL (the workers share one Redis)');
  const prefix = options.prefix ?? `strata-demo:${Math.random().toString(36).slice(2, 10)}`;
  const { log, ...serializable } = options;
  const script = workerScript();
  const workers: Worker[] = [];
  for (let i = 0; i < options.workers; i++) {
    const proc = fork(script, [], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] });
    workers.push(new Worker(i, proc));
  }
  const closeAll = () => {
    for (const w of workers) if (!w.exited) w.proc.kill('SIGKILL');
  };
  let ready: Array<Extract<Message, { type: 'ready' }>>;
  try {
    log(`Starting ${options.workers} worker process${options.workers === 1 ? '' : 'es'} (each its own L1, L3 and embedder; one shared Redis) …`);
    for (const w of workers) {
      // One embedder thread each: N workers on a small machine already make N embedding processes.
      w.send({ type: 'init', index: w.index, options: { ...serializable, prefix, instances: 1, replicate: true, embedderWorkers: 1, clearOnClose: false } });
    }
    ready = await Promise.all(workers.map((w) => w.next('ready', 180_000)));
  } catch (error) {
    closeAll();
    throw error;
  }
  const first = ready[0]!;
  const components = first.components.map((c) =>
    c.startsWith('L2 redis —') ? c.replace(/shared by \d+ app instances/, `shared by ${options.workers} worker processes`) : c,
  );
  components.push(
    `${options.workers} worker process${options.workers === 1 ? '' : 'es'} (node child processes), requests spread over them round-robin by conversation; each its own L1, L3 and embedder`,
  );
  let nextId = 0;
  let merged: StatsSnapshot | undefined;
  let calibration: CalibrationFigures | undefined;
  let perWorker: FleetReport['perWorker'] = [];
  const budget = options.calibration === false ? undefined : (options.calibration ?? DEMO_CALIBRATION);

  const client: ChatClient = {
    description: `${first.client} in ${options.workers} worker process${options.workers === 1 ? '' : 'es'}`,
    chat(call: ChatCall): Promise<ChatOutcome> {
      return workers[(call.route ?? 0) % workers.length]!.chat(++nextId, call);
    },
  };

  return {
    client,
    instances: options.workers,
    components,
    missing: first.missing,
    prices: first.prices,
    caches: [],
    semanticLayers: [],
    stats: () => merged ?? mergeStats([]),
    calibration: () => calibration,
    report: () => ({ workers: options.workers, perWorker }),
    async flush() {
      for (const w of workers) w.send({ type: 'flush' });
      await Promise.all(workers.map((w) => w.next('flushed')));
      for (const w of workers) w.send({ type: 'stats' });
      const all = await Promise.all(workers.map((w) => w.next('stats')));
      merged = mergeStats(all.map((a) => a.stats));
      if (budget)
        calibration = calibrationFigures(
          all.flatMap((a) => a.semantic.map((x) => x.calibration)),
          budget,
        );
      perWorker = all.map((a, i) => {
        const s = a.semantic[0];
        return {
          worker: i,
          requests: workers[i]!.requests,
          entries: s?.entries ?? 0,
          embeddings: s?.embeddings ?? 0,
          applied: s?.replication?.applied ?? 0,
          resyncs: s?.replication?.resyncs ?? 0,
          lagP50Ms: s?.replication?.lagMs?.p50 ?? null,
          lagP99Ms: s?.replication?.lagMs?.p99 ?? null,
        };
      });
    },
    async pricingChanged(tenant) {
      // Worker 0 applies the event; the bus (and the semantic feed) carry it to the others.
      const t0 = Date.now();
      const seen = workers.map((w) => w.invalidations.length);
      const id = ++nextId;
      workers[0]!.send({ type: 'event', id, tenant });
      const r = await workers[0]!.next('event');
      const purged: Record<string, number> = { ...r.purged };
      const delays: string[] = [];
      for (const w of workers.slice(1)) {
        const deadline = Date.now() + 5_000;
        while (w.invalidations.length === seen[w.index] && Date.now() < deadline) await new Promise((res) => setTimeout(res, 2));
        const got = w.invalidations[seen[w.index]!];
        if (!got) {
          delays.push(`worker ${w.index + 1}: not reached within 5 s`);
          continue;
        }
        for (const [layer, count] of Object.entries(got.layers)) purged[`${layer} (worker ${w.index + 1})`] = count;
        delays.push(`reached worker ${w.index + 1} in ${Math.max(0, got.at - t0)} ms`);
      }
      return { purged, detail: `${r.detail}${delays.length ? ` (${delays.join(', ')})` : ''}` };
    },
    async close() {
      for (const w of workers) w.send({ type: 'close' });
      await Promise.all(workers.map((w) => (w.exited ? undefined : w.next('closed', 30_000).catch(() => undefined))));
      closeAll();
      // Leave nothing behind on the shared Redis: everything the fleet wrote is under its prefix.
      const redis = new RedisLayer({ url: options.redisUrl!, prefix });
      await redis.clear().catch(() => undefined);
      await redis.close();
    },
  };
}
