import { type Embedder, StrataError } from '@strata-cache/core';
import { type EmbedCallOptions, abortError } from './caching-embedder.js';
import type { ResolvedEmbeddingOptions } from './options.js';

const PKG = '@strata-cache/layer-semantic';

/** Why a text was not admitted to the embedding queue. */
export type BusyReason = 'queue-full' | 'queue-delay' | 'deadline';

/**
 * The embedder cannot answer in time: the caller skips the semantic layer at once instead of
 * queueing. Never leaves the layer (a lookup turns it into a miss).
 */
export class EmbedderBusyError extends StrataError {
  readonly reason: BusyReason;
  constructor(reason: BusyReason, message: string) {
    super('STRATA_LAYER', `${PKG}: ${message}`);
    this.name = 'EmbedderBusyError';
    this.reason = reason;
  }
}

/** Counters of the embedding queue. */
export interface EmbeddingQueueStats {
  /** Texts waiting for an embedder call (lookups, writes and bulk re-indexing). */
  readonly queued: number;
  /** Lookups among them. */
  readonly queuedLookups: number;
  /** Embedder calls running. */
  readonly running: number;
  /** Embedder calls made, and the texts they carried. */
  readonly calls: number;
  readonly texts: number;
  /** Requests turned away at once, by reason (the lookup skipped the semantic layer). */
  readonly skipped: Readonly<Record<BusyReason, number>>;
  /** Queued texts dropped because every caller gave up (abort signal) before their call started. */
  readonly cancelled: number;
  /** Queued texts dropped because their deadline passed before their call started. */
  readonly expired: number;
  /** Predicted duration (ms) of a one-text call of 100 characters, from the measured calls; undefined before any. */
  readonly predictedCallMs: number | undefined;
}

const PRIORITY = { lookup: 0, write: 1, bulk: 2 } as const;
/** Most characters in one call of writes or re-indexing (≈ one chat turn, or a batch of short questions). */
const BACKGROUND_CALL_CHARS = 512;
/** After this long without a measured call, an idle embedder is tried again whatever the model predicts. */
const STALE_MODEL_MS = 2_000;

interface Job {
  readonly texts: readonly string[];
  readonly chars: number;
  priority: 0 | 1 | 2;
  /** Arrival order (an expedited write keeps its place among the lookups). */
  readonly seq: number;
  readonly deadline: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (v: Float32Array[]) => void;
  readonly reject: (e: unknown) => void;
  state: 'queued' | 'running' | 'gone';
  call?: Call;
  onAbort?: () => void;
}

interface Call {
  readonly jobs: Job[];
  /** Jobs whose callers still wait; at 0 the embedder call's signal aborts. */
  live: number;
  readonly controller: AbortController;
  readonly started: number;
  readonly chars: number;
  /** Priority of its jobs (0: lookups). */
  readonly priority: number;
}

/**
 * Cost of an embedder call, learned from the calls it makes: duration ≈ a + b × characters,
 * an exponentially weighted least-squares fit (recent calls count most, so it follows load).
 */
class CallModel {
  private n = 0;
  private mx = 0;
  private my = 0;
  private mxx = 0;
  private mxy = 0;
  private static readonly ALPHA = 0.1;

  /** performance.now() of the last observation. */
  lastObserved = -Infinity;

  observe(chars: number, ms: number): void {
    this.lastObserved = performance.now();
    const a = this.n === 0 ? 1 : CallModel.ALPHA;
    this.n++;
    this.mx += a * (chars - this.mx);
    this.my += a * (ms - this.my);
    this.mxx += a * (chars * chars - this.mxx);
    this.mxy += a * (chars * ms - this.mxy);
  }

  /** Predicted duration of a call carrying `chars` characters; undefined before any call was measured. */
  predict(chars: number): number | undefined {
    if (this.n === 0) return undefined;
    const variance = this.mxx - this.mx * this.mx;
    let b = this.mx > 0 ? this.my / this.mx : 0;
    let a = 0;
    if (this.n >= 4 && variance > (0.05 * this.mx) ** 2) {
      const slope = (this.mxy - this.mx * this.my) / variance;
      const intercept = this.my - slope * this.mx;
      if (slope >= 0 && intercept >= 0) {
        b = slope;
        a = intercept;
      }
    }
    return a + b * Math.max(chars, 1);
  }
}

/**
 * The layer's queue in front of the embedder. It keeps at most `concurrency` embedder calls in
 * flight and holds the rest itself, so that waiting texts can still be dropped when their callers
 * give up (abort signal) or their deadline passes, and batched into one call when they leave.
 * Lookups go before writes, writes before bulk re-indexing.
 *
 * Admission control: when a lookup or write with a deadline arrives, its wait is predicted from the calls in
 * flight, the texts ahead of it and the embedder's measured speed; if the answer would come after
 * its deadline, or it would wait longer than `maxQueueDelayMs`, or the queue is full, it is turned
 * away at once (EmbedderBusyError) — the caller skips the semantic layer instead of queueing.
 */
export class EmbeddingQueue implements Embedder {
  readonly id: string;
  readonly dimensions: number;
  private readonly queues: [Job[], Job[], Job[]] = [[], [], []];
  private readonly calls = new Set<Call>();
  private readonly model = new CallModel();
  /** Texts waiting, per priority. */
  private readonly waiting = [0, 0, 0];
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private closed = false;
  private seq = 0;
  /** Texts a lookup waits for that were not queued yet: they go in at lookup priority. */
  private readonly expedited = new Set<string>();
  private idleWaiters: Array<() => void> = [];
  private counters = {
    calls: 0,
    texts: 0,
    cancelled: 0,
    expired: 0,
    skipped: { 'queue-full': 0, 'queue-delay': 0, deadline: 0 } as Record<BusyReason, number>,
  };

  constructor(
    private readonly inner: Embedder,
    private readonly options: ResolvedEmbeddingOptions,
  ) {
    this.id = inner.id;
    this.dimensions = inner.dimensions;
  }

  stats(): EmbeddingQueueStats {
    return {
      queued: this.queuedTexts,
      queuedLookups: this.waiting[0]!,
      running: this.calls.size,
      calls: this.counters.calls,
      texts: this.counters.texts,
      skipped: { ...this.counters.skipped },
      cancelled: this.counters.cancelled,
      expired: this.counters.expired,
      predictedCallMs: this.model.predict(100),
    };
  }

  private get queuedTexts(): number {
    return this.waiting[0]! + this.waiting[1]! + this.waiting[2]!;
  }

  /** True when nothing waits and no embedder call runs. */
  get idle(): boolean {
    return this.queuedTexts === 0 && this.calls.size === 0;
  }

  /** Resolves when nothing waits and no embedder call runs. */
  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  embed(texts: readonly string[], options: EmbedCallOptions = {}): Promise<Float32Array[]> {
    if (this.closed) return Promise.reject(new StrataError('STRATA_CLOSED', `${PKG}: the embedding queue is closed`));
    if (options.signal?.aborted) return Promise.reject(options.signal.reason ?? abortError());
    if (texts.length === 0) return Promise.resolve([]);
    let priority: 0 | 1 | 2 = PRIORITY[options.priority ?? 'lookup'];
    if (priority > 0 && this.expedited.size > 0 && texts.some((t) => this.expedited.delete(t))) priority = 0;
    let chars = 0;
    for (const t of texts) chars += t.length;
    // Admission control for callers with a deadline (core passes its budget); one without a
    // deadline, or bulk re-indexing, says it will wait.
    if (priority !== PRIORITY.bulk && options.deadline !== undefined) {
      const busy = this.admit(texts.length, chars, priority, options.deadline);
      if (busy) {
        this.counters.skipped[busy.reason]++;
        return Promise.reject(busy);
      }
    }
    return new Promise<Float32Array[]>((resolve, reject) => {
      const job: Job = { texts, chars, priority, seq: this.seq++, deadline: options.deadline, signal: options.signal, resolve, reject, state: 'queued' };
      if (job.signal) {
        job.onAbort = () => this.abandon(job);
        job.signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queues[priority].push(job);
      this.waiting[priority]! += texts.length;
      if (job.deadline !== undefined && job.deadline < this.timerAt) this.armTimer(job.deadline);
      this.requestDispatch();
    });
  }

  /**
   * Moves queued writes carrying `text` to lookup priority: a lookup is waiting for that write
   * (it must see the entry), so it must not wait behind later lookups.
   */
  expedite(text: string): void {
    let found = false;
    for (const job of this.queues[0]) if (job.state === 'queued' && job.texts.includes(text)) found = true;
    for (let p = 1; p <= 2; p++) {
      const q = this.queues[p]!;
      for (let i = 0; i < q.length; i++) {
        const job = q[i]!;
        if (job.state !== 'queued' || !job.texts.includes(text)) continue;
        found = true;
        q.splice(i--, 1);
        this.waiting[p]! -= job.texts.length;
        this.waiting[0]! += job.texts.length;
        job.priority = 0;
        // Its place among the lookups is its arrival: it came before the lookups queued after it.
        const lookups = this.queues[0];
        let at = lookups.length;
        while (at > 0 && lookups[at - 1]!.seq > job.seq) at--;
        lookups.splice(at, 0, job);
      }
    }
    if (!found && !this.running(text)) {
      if (this.expedited.size >= 1_024) this.expedited.clear();
      this.expedited.add(text);
    }
  }

  private running(text: string): boolean {
    for (const c of this.calls) for (const j of c.jobs) if (j.texts.includes(text)) return true;
    return false;
  }

  /** Rejects everything still queued; calls in flight finish on their own. */
  shutdown(): void {
    if (this.closed) return;
    this.closed = true;
    const err = new StrataError('STRATA_CLOSED', `${PKG}: the layer closed while this text waited for the embedder`);
    for (const q of this.queues) for (const job of q.splice(0)) if (job.state === 'queued') this.drop(job, err);
    this.waiting.fill(0);
    clearTimeout(this.timer);
    this.settleIdle();
  }

  // ---- admission ------------------------------------------------------------------------

  private admit(count: number, chars: number, priority: number, deadline: number): EmbedderBusyError | undefined {
    const { maxQueue, maxQueueDelayMs } = this.options;
    let ahead = 0;
    for (let p = 0; p <= priority; p++) ahead += this.waiting[p]!;
    if (ahead + count > maxQueue) {
      return new EmbedderBusyError('queue-full', `${ahead} texts already wait for the embedder (option embedding.maxQueue: ${maxQueue})`);
    }
    const service = this.model.predict(chars);
    if (service === undefined) return undefined; // nothing measured yet: admit
    const now = performance.now();
    // An idle embedder whose cost was last measured a while ago gets a try: the model only
    // learns from calls it lets through, so a slow spell (a busy machine) must not turn every
    // later lookup away once the embedder is fast again.
    if (this.idle && now - this.model.lastObserved > STALE_MODEL_MS) return undefined;
    const wait = this.predictStart(priority, now) - now;
    const wallNow = Date.now();
    if (wallNow + wait + service > deadline) {
      return new EmbedderBusyError(
        'deadline',
        `the embedder would answer in ≈ ${Math.round(wait + service)} ms, after the deadline (${Math.max(0, deadline - wallNow)} ms left)`,
      );
    }
    const maxDelay = maxQueueDelayMs === 'auto' ? service : maxQueueDelayMs;
    if (wait > maxDelay) {
      return new EmbedderBusyError(
        'queue-delay',
        `the text would wait ≈ ${Math.round(wait)} ms for the embedder (option embedding.maxQueueDelayMs: ${maxQueueDelayMs === 'auto' ? `auto = ${Math.round(maxDelay)}` : maxDelay})`,
      );
    }
    return undefined;
  }

  /**
   * When a new text of this priority would start: the calls in flight end at their predicted
   * times, then every queued job ahead of it (same or higher priority) takes the earliest free slot.
   */
  private predictStart(priority: number, now: number): number {
    const slots: number[] = [];
    for (const c of this.calls) slots.push(Math.max(now, c.started + (this.model.predict(c.chars) ?? 0)));
    while (slots.length < this.options.concurrency) slots.push(now);
    for (let p = 0; p <= priority; p++) {
      for (const job of this.queues[p]!) {
        if (job.state !== 'queued') continue;
        let min = 0;
        for (let s = 1; s < slots.length; s++) if (slots[s]! < slots[min]!) min = s;
        slots[min]! += this.model.predict(job.chars) ?? 0;
      }
    }
    return Math.min(...slots);
  }

  // ---- dispatch -------------------------------------------------------------------------

  /** Dispatches after the current synchronous code, so a burst arriving in one tick shares calls. */
  private requestDispatch(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.dispatch();
    });
  }

  private dispatch(): void {
    const { concurrency, maxBatch } = this.options;
    // Writes and re-indexing never hold every slot: one is always left to lookups, which have a
    // caller waiting (and whose vector makes the write that follows them free).
    const backgroundSlots = Math.max(1, concurrency - 1);
    while (this.calls.size < concurrency && this.queuedTexts > 0) {
      // Spread what waits over the free slots, at most maxBatch texts per call.
      const free = concurrency - this.calls.size;
      const share = Math.min(maxBatch, Math.max(1, Math.ceil(this.queuedTexts / free)));
      let background = 0;
      for (const c of this.calls) if (c.priority > 0) background++;
      const jobs: Job[] = [];
      let count = 0;
      let chars = 0;
      for (const q of this.queues) {
        if (q !== this.queues[0] && background >= backgroundSlots) break;
        while (q.length > 0) {
          const job = q[0]!;
          if (job.state !== 'queued') {
            q.shift();
            continue;
          }
          if (count > 0 && (count + job.texts.length > share || job.priority !== jobs[0]!.priority)) break;
          // A background call stays small: the embedder may spread one call over all its workers
          // (embed-use does), and a lookup must not wait behind a large batch of writes.
          if (count > 0 && q !== this.queues[0] && chars + job.chars > BACKGROUND_CALL_CHARS) break;
          q.shift();
          jobs.push(job);
          count += job.texts.length;
          chars += job.chars;
          if (count >= share) break;
        }
        if (jobs.length > 0) break;
      }
      if (jobs.length === 0) break;
      this.run(jobs);
    }
  }

  private run(jobs: Job[]): void {
    const texts: string[] = [];
    let chars = 0;
    for (const job of jobs) {
      job.state = 'running';
      this.waiting[job.priority]! -= job.texts.length;
      for (const t of job.texts) texts.push(t);
      chars += job.chars;
    }
    const call: Call = { jobs, live: jobs.length, controller: new AbortController(), started: performance.now(), chars, priority: jobs[0]!.priority };
    for (const job of jobs) job.call = call;
    this.calls.add(call);
    this.counters.calls++;
    this.counters.texts += texts.length;
    let result: Promise<Float32Array[]>;
    try {
      result = Promise.resolve(this.inner.embed(texts, { signal: call.controller.signal }));
    } catch (e) {
      result = Promise.reject(e);
    }
    result
      .then(
        (vs) => {
          if (!call.controller.signal.aborted) this.model.observe(chars, performance.now() - call.started);
          let at = 0;
          for (const job of jobs) {
            const mine = vs.slice(at, at + job.texts.length);
            at += job.texts.length;
            this.finish(job);
            // A short answer is reported by the caching layer above (it checks count and size).
            job.resolve(mine);
          }
        },
        (e: unknown) => {
          for (const job of jobs) {
            this.finish(job);
            job.reject(e);
          }
        },
      )
      .finally(() => {
        this.calls.delete(call);
        this.dispatch();
        this.settleIdle();
      });
  }

  private finish(job: Job): void {
    job.state = 'gone';
    if (job.onAbort) job.signal!.removeEventListener('abort', job.onAbort);
  }

  /** A caller gave up: a queued job is dropped; a running one stops counting toward its call. */
  private abandon(job: Job): void {
    if (job.state === 'queued') {
      this.waiting[job.priority]! -= job.texts.length;
      this.counters.cancelled += job.texts.length;
      this.drop(job, job.signal?.reason ?? abortError());
      this.settleIdle();
    } else if (job.state === 'running' && job.call) {
      // The call runs on (its vectors still reach the caching layer); it is aborted only when
      // every job in it was abandoned, so an embedder that honours signals can stop early.
      if (--job.call.live === 0) job.call.controller.abort();
    }
  }

  private drop(job: Job, reason: unknown): void {
    this.finish(job);
    job.reject(reason);
  }

  // ---- deadlines ------------------------------------------------------------------------

  private armTimer(at: number): void {
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()));
    this.timer.unref?.();
  }

  /** Drops queued jobs whose deadline passed (their callers stopped waiting), then re-arms. */
  private expire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = Date.now();
    let next = Infinity;
    for (const q of this.queues) {
      for (const job of q) {
        if (job.state !== 'queued' || job.deadline === undefined) continue;
        if (job.deadline <= now) {
          this.waiting[job.priority]! -= job.texts.length;
          this.counters.expired += job.texts.length;
          this.drop(job, new DOMException('the deadline passed while the text waited for the embedder', 'TimeoutError'));
        } else if (job.deadline < next) next = job.deadline;
      }
    }
    if (next < Infinity) this.armTimer(next);
    this.settleIdle();
  }

  private settleIdle(): void {
    if (!this.idle || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
