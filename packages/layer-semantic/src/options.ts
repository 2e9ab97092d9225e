import { type CandidateSelector, type Embedder, InvalidOptionError, type LayerV1, type SemanticGuard, embedderFits } from '@strata-cache/core';
import type { AnswerJudge } from '@strata-cache/semantic-calibration';
import { recommendedSetting } from '@strata-cache/semantic-guards';
import { type AnswerGroupOptions, type AnswerGroupSetting, answerGroupSetting } from './answer-groups.js';
import { type ResolvedCalibration, type SemanticCalibrationOptions, resolveCalibration } from './calibration-options.js';
import type { HnswParams } from './partition.js';
import type { SemanticReplicationOptions } from './replication.js';

export const PKG = '@strata-cache/layer-semantic';

export interface SemanticLayerOptions {
  /** Turns texts into unit vectors; its `id` and `dimensions` are part of every partition. Required. */
  embedder: Embedder;
  /**
   * Cosine similarity (−1…1; 1 = same direction) a candidate needs to be a hit. The one scale
   * used everywhere; a request overrides it with `query.threshold`
   * (MultiLayerCache: `semanticThreshold`, or `{ semantic: { threshold } }` per call).
   * @default the measured setting's: `recommendedSetting(embedder).threshold` from
   * `@strata-cache/semantic-guards` (tuned on USE-lite — with another embedder, measure and set your own)
   */
  threshold?: number | undefined;
  /**
   * Nearest stored prompts fetched per lookup: each above the threshold is run through the guards
   * in turn, and all of them are the neighbourhood a selector (or the calibrator) weighs — how many
   * near prompts hold the same answer, how close the nearest one holding another answer is.
   * @default 8
   */
  topK?: number | undefined;
  /**
   * Calibrating mode: instead of a fixed threshold, serve a match when its estimated probability
   * of being the wrong answer fits your error budget, learned from this layer's own traffic
   * (`@strata-cache/semantic-calibration`; see the README, "Calibration"). `true` for the
   * defaults (`maxWrongRate: 0.01`, `shadowRate: 0.05`), or the calibrator's options plus how the
   * layer runs it (`perTenant`, `maxTenants`, `maxPendingJudgements`, `share`). With it, the
   * guards still turn look-alikes down; the selector is not used (the calibrator learns contested
   * matches itself); `threshold`, when set (here or per request), is a floor below which nothing
   * is served. @default off
   */
  calibration?: boolean | SemanticCalibrationOptions | undefined;
  /**
   * Compares a stored answer with a fresh upstream answer, for calibration.
   * @default `embeddingAnswerJudge({ embedder })` (answer embeddings + word agreement, contrasted with the rival candidates' answers)
   */
  answerJudge?: AnswerJudge | undefined;
  /**
   * The readable text of a stored value, for the answer judge (undefined: not judged).
   * @default `answerTextOf` from `@strata-cache/semantic-calibration` (OpenAI and Anthropic response shapes, strings, JSON)
   */
  answerText?: ((value: unknown) => string | undefined) | undefined;
  /**
   * Checks a candidate must pass after the threshold (numbers, negation, ...). Turned-down
   * candidates are reported in `rejected`. Pass `[]` for none.
   * @default `recommendedSetting(embedder).guards` from `@strata-cache/semantic-guards`
   */
  guards?: readonly SemanticGuard[] | undefined;
  /**
   * Chooses among the candidates that passed the threshold and the guards, or declines them
   * all (reported in `rejected` under the selector's name). `false`: none — the most similar
   * accepted candidate is the hit.
   * @default `recommendedSetting(embedder).selector` from `@strata-cache/semantic-guards`
   */
  selector?: CandidateSelector | false | undefined;
  /**
   * The answer-group rule: decide between the ANSWERS stored in a partition, not only between
   * single stored prompts. Stored prompts whose answers are the same (same readable text) form an
   * answer group; each partition learns from its own groups how one answer's questions vary
   * (within-group whitening) and compares the query with each group's centroid. The best group
   * among the `neighbours` nearest prompts is served when it holds two or more prompts, scores
   * `floor` and leads the runner-up answer by `margin`, and its nearest prompt passes the guards;
   * otherwise the threshold, guards and selector decide as without it. It needs answers that
   * repeat (a support bot's canned answers, deterministic generations); on traffic whose answers
   * are all different it never applies. A request with its own `threshold` skips it. `true` for
   * the measured defaults, an object to tune them, `false` for off.
   * @default on with the measured defaults (`ANSWER_GROUP_DEFAULTS`) when `threshold` is not given; off when it is, and with `calibration`
   */
  answerGroups?: boolean | AnswerGroupOptions | undefined;
  /** Most entries held; the least recently used (written or hit) go first. @default 100_000 */
  maxEntries?: number | undefined;
  /**
   * Longest compared text (characters) matched by similarity. Longer texts are stored and
   * served by exact key only: encoders truncate long inputs, and two long prompts that differ
   * only past the cut would otherwise look identical.
   * @default 1_000
   */
  maxTextLength?: number | undefined;
  /**
   * Texts whose vectors are remembered (LRU), so the same text is never embedded twice — the
   * lookup that missed and the write that follows it share one embedding. Once a text is in the
   * index, its cache slot points at the indexed vector instead of holding a copy. 0 disables.
   * @default 10_000
   */
  embeddingCacheSize?: number | undefined;
  /** How lookups and writes wait for the embedder (admission control, queue bound, batching). */
  embedding?: EmbeddingQueueOptions | undefined;
  /** HNSW graph parameters (hnswlib-node, inner-product space on unit vectors). */
  hnsw?:
    | {
        /** Links per node. @default 16 */
        m?: number | undefined;
        /** Candidate list while inserting. @default 100 */
        efConstruction?: number | undefined;
        /** Candidate list while searching (recall vs speed). @default 64 */
        ef?: number | undefined;
        /** Seed of the level generator (reproducible graphs). @default 100 */
        randomSeed?: number | undefined;
      }
    | undefined;
  /**
   * Partitions up to this many entries are searched exactly over a packed array (no graph, no
   * per-partition overhead); a partition that grows past it gets its own HNSW graph.
   * @default 1_024
   */
  flatLimit?: number | undefined;
  /**
   * Directory for snapshots (index + metadata). Loaded on start; written by `snapshot()`, by
   * `close()` and every `snapshotIntervalMs`. One process per directory.
   */
  persistDir?: string | undefined;
  /** Writes a snapshot this often when something changed (ms). Unset = only on `snapshot()` / `close()`. */
  snapshotIntervalMs?: number | undefined;
  /**
   * A layer (e.g. L2 Redis) whose `scan()` entries carry `semantic` descriptors: when no valid
   * snapshot exists on start (or a replication feed can no longer resume from the snapshot's
   * offset), the index is rebuilt from it.
   */
  rebuildFrom?: LayerV1 | undefined;
  /**
   * A replication feed (see the README, "Replication"): every mutation of this layer is published
   * to it, and mutations of other processes are applied from it without re-embedding.
   */
  replication?: SemanticReplicationOptions | undefined;
  /** How long `close()` waits for writes still embedding before it gives up on them (ms). @default 5_000 */
  closeTimeoutMs?: number | undefined;
  /** Removes expired entries this often (ms); lookups skip and remove them in any case. @default 60_000 */
  sweepIntervalMs?: number | undefined;
  /**
   * Lookups that missed in the last `windowMs` are remembered (at most `maxMisses`, with their
   * vectors): a lookup that misses too and would be served from one of them once its answer is
   * stored — same partition and scope, similar enough to be served (the threshold; with
   * calibration, the similarity from which the calibrator serves a new entry's clear match),
   * every guard passing — names it in its result (`inFlight`), and `MultiLayerCache` waits for
   * that load instead of calling upstream again (its `joinSimilar`). `false` turns it off.
   * @default { maxMisses: 1_000, windowMs: 60_000 }
   */
  inFlight?: false | { readonly maxMisses?: number | undefined; readonly windowMs?: number | undefined } | undefined;
  /** Receives warnings (discarded snapshot, failed background snapshot, replication). @default process.emitWarning */
  onWarning?: ((message: string) => void) | undefined;
  /** Layer name in stats and events. @default "semantic" */
  name?: string | undefined;
}

/** How lookups and writes wait for the embedder. */
export interface EmbeddingQueueOptions {
  /**
   * Embedder calls in flight at once; further texts wait in the layer's queue, where they can
   * still be cancelled and batched. Match it to the embedder's parallelism (embed-use: its
   * worker threads; a remote API: more).
   * @default 2
   */
  concurrency?: number | undefined;
  /** Most texts sent in one embedder call. @default 16 */
  maxBatch?: number | undefined;
  /**
   * Most texts waiting in the queue ahead of a new lookup (or of a write with a deadline);
   * beyond it the lookup skips the semantic layer at once. @default 64
   */
  maxQueue?: number | undefined;
  /**
   * Admission control, for operations with a deadline (core passes its budget for the layer):
   * the longest a text may wait in the queue before its call starts, as predicted from the
   * embedder's measured speed when it arrives. A lookup that would wait longer — or whose answer
   * would come after its deadline — skips the semantic layer at once (a miss, counted in
   * `stats().skippedOverload`); such a write is kept for exact lookups only. `'auto'`: the
   * predicted time of its own call, so a lookup pays at most about two embeddings.
   * @default 'auto'
   */
  maxQueueDelayMs?: number | 'auto' | undefined;
}

/** Every option, once: the validator and the docs table are checked against it. */
const OPTION_NAMES = {
  embedder: true,
  threshold: true,
  topK: true,
  calibration: true,
  answerJudge: true,
  answerText: true,
  guards: true,
  selector: true,
  answerGroups: true,
  maxEntries: true,
  maxTextLength: true,
  embeddingCacheSize: true,
  embedding: true,
  hnsw: true,
  flatLimit: true,
  persistDir: true,
  snapshotIntervalMs: true,
  rebuildFrom: true,
  replication: true,
  closeTimeoutMs: true,
  sweepIntervalMs: true,
  inFlight: true,
  onWarning: true,
  name: true,
} as const satisfies Record<keyof SemanticLayerOptions, true>;

const EMBEDDING_OPTION_NAMES = {
  concurrency: true,
  maxBatch: true,
  maxQueue: true,
  maxQueueDelayMs: true,
} as const satisfies Record<keyof EmbeddingQueueOptions, true>;

const HNSW_OPTION_NAMES = { m: true, efConstruction: true, ef: true, randomSeed: true } as const satisfies Record<
  keyof NonNullable<SemanticLayerOptions['hnsw']>,
  true
>;

/** Defaults of every option that has one, in one place. */
export const DEFAULTS = Object.freeze({
  topK: 8,
  maxEntries: 100_000,
  maxTextLength: 1_000,
  embeddingCacheSize: 10_000,
  embedding: Object.freeze({ concurrency: 2, maxBatch: 16, maxQueue: 64, maxQueueDelayMs: 'auto' as const }),
  hnsw: Object.freeze({ m: 16, efConstruction: 100, ef: 64, randomSeed: 100 }),
  flatLimit: 1_024,
  sweepIntervalMs: 60_000,
  inFlight: Object.freeze({ maxMisses: 1_000, windowMs: 60_000 }),
  closeTimeoutMs: 5_000,
  name: 'semantic',
});

export interface ResolvedEmbeddingOptions {
  readonly concurrency: number;
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly maxQueueDelayMs: number | 'auto';
}

/** The options after validation and defaults. */
export interface ResolvedOptions {
  readonly embedder: Embedder;
  readonly threshold: number;
  /** The threshold was given (with calibration it is a floor; otherwise the calibrator alone decides). */
  readonly thresholdGiven: boolean;
  readonly topK: number;
  readonly calibration: ResolvedCalibration | undefined;
  readonly guards: readonly SemanticGuard[];
  readonly selector: CandidateSelector | undefined;
  /** The answer-group rule's setting; undefined = off. */
  readonly answerGroups: AnswerGroupSetting | undefined;
  readonly maxEntries: number;
  readonly maxTextLength: number;
  readonly embeddingCacheSize: number;
  readonly embedding: ResolvedEmbeddingOptions;
  readonly hnsw: HnswParams;
  readonly flatLimit: number;
  readonly persistDir: string | undefined;
  readonly snapshotIntervalMs: number | undefined;
  readonly rebuildFrom: LayerV1 | undefined;
  readonly replication: SemanticReplicationOptions | undefined;
  readonly closeTimeoutMs: number;
  readonly sweepIntervalMs: number;
  /** Misses remembered for `inFlight` matches; undefined = off. */
  readonly inFlight: { readonly maxMisses: number; readonly windowMs: number } | undefined;
  readonly warn: (message: string) => void;
  readonly name: string;
}

/** Throws on an option of `o` not in `names`; `prefix` names the option `o` is (`hnsw.`). */
function checkNames(o: object, names: Readonly<Record<string, true>>, prefix = ''): void {
  for (const k of Object.keys(o)) {
    if (!Object.hasOwn(names, k)) throw new InvalidOptionError(`${PKG}: unknown option "${prefix}${k}"`, { field: `${prefix}${k}` });
  }
}

const IN_FLIGHT_OPTION_NAMES = { maxMisses: true, windowMs: true } as const satisfies Record<
  keyof Exclude<SemanticLayerOptions['inFlight'], false | undefined>,
  true
>;

function resolveInFlight(v: SemanticLayerOptions['inFlight']): ResolvedOptions['inFlight'] {
  if (v === false) return undefined;
  if (v === undefined) return DEFAULTS.inFlight;
  if (typeof v !== 'object' || v === null)
    throw new InvalidOptionError(`${PKG}: option "inFlight" must be false or { maxMisses, windowMs }`, { field: 'inFlight' });
  checkNames(v, IN_FLIGHT_OPTION_NAMES, 'inFlight.');
  const maxMisses = v.maxMisses ?? DEFAULTS.inFlight.maxMisses;
  if (!Number.isSafeInteger(maxMisses) || maxMisses < 1)
    throw new InvalidOptionError(`${PKG}: option "inFlight.maxMisses" must be a positive integer`, { field: 'inFlight.maxMisses' });
  const windowMs = v.windowMs ?? DEFAULTS.inFlight.windowMs;
  if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0)
    throw new InvalidOptionError(`${PKG}: option "inFlight.windowMs" must be a positive number of milliseconds`, { field: 'inFlight.windowMs' });
  return { maxMisses, windowMs };
}

/** Validates options (unknown keys, ranges, guard bindings) and fills in the defaults. */
export function resolveOptions(options: SemanticLayerOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(`${PKG}: options with an "embedder" are required`, { field: 'embedder' });
  checkNames(options, OPTION_NAMES);
  const e = options.embedder;
  if (!e || typeof e.embed !== 'function' || typeof e.id !== 'string' || !Number.isSafeInteger(e.dimensions) || e.dimensions < 1) {
    throw new InvalidOptionError(`${PKG}: option "embedder" must be an Embedder { id, dimensions, embed(texts) }`, { field: 'embedder' });
  }
  if (e.represents !== undefined && typeof e.represents !== 'function') {
    throw new InvalidOptionError(`${PKG}: "embedder.represents" must be a function (text) => boolean when given`, { field: 'embedder' });
  }
  // Omitted matching options take the setting the quality benchmark measured (semantic-guards).
  const recommended = options.threshold === undefined || options.guards === undefined || options.selector === undefined ? recommendedSetting(e) : undefined;
  const threshold = checkThreshold(options.threshold ?? recommended!.threshold, 'threshold');
  const guards = [...(options.guards ?? recommended!.guards)];
  for (const g of guards) {
    if (!g || typeof g.name !== 'string' || typeof g.check !== 'function')
      throw new InvalidOptionError(`${PKG}: every entry of option "guards" must be a SemanticGuard { name, check }`, { field: 'guards' });
    // A learned guard judges vectors of one embedder only: another's would be scored as noise.
    if (g.embedder && !embedderFits(g.embedder, e)) {
      throw new InvalidOptionError(
        `${PKG}: guard "${g.name}" was trained for ${g.embedder.family} (${g.embedder.dimensions}-d) vectors, but the embedder is "${e.id}" (${e.dimensions}-d); leave that guard out or use its embedder`,
        { field: 'guards' },
      );
    }
  }
  const sel = options.selector === undefined ? recommended!.selector : options.selector;
  if (sel !== false && (!sel || typeof sel.name !== 'string' || typeof sel.select !== 'function')) {
    throw new InvalidOptionError(`${PKG}: option "selector" must be a CandidateSelector { name, select } or false`, { field: 'selector' });
  }
  const cacheSize = options.embeddingCacheSize ?? DEFAULTS.embeddingCacheSize;
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0)
    throw new InvalidOptionError(`${PKG}: option "embeddingCacheSize" must be a non-negative integer`, { field: 'embeddingCacheSize' });
  const h = options.hnsw ?? {};
  checkNames(h, HNSW_OPTION_NAMES, 'hnsw.');
  const q = options.embedding ?? {};
  if (typeof q !== 'object' || q === null) throw new InvalidOptionError(`${PKG}: option "embedding" must be an object`, { field: 'embedding' });
  checkNames(q, EMBEDDING_OPTION_NAMES, 'embedding.');
  const delay = q.maxQueueDelayMs ?? DEFAULTS.embedding.maxQueueDelayMs;
  if (delay !== 'auto' && !(typeof delay === 'number' && delay >= 0)) {
    throw new InvalidOptionError(`${PKG}: option "embedding.maxQueueDelayMs" must be a non-negative number or 'auto'`, { field: 'embedding.maxQueueDelayMs' });
  }
  if (options.persistDir !== undefined && (typeof options.persistDir !== 'string' || options.persistDir === '')) {
    throw new InvalidOptionError(`${PKG}: option "persistDir" must be a directory path`, { field: 'persistDir' });
  }
  if (options.rebuildFrom !== undefined && typeof options.rebuildFrom.scan !== 'function') {
    throw new InvalidOptionError(`${PKG}: option "rebuildFrom" must be a layer that implements scan()`, { field: 'rebuildFrom' });
  }
  const rep = options.replication;
  if (rep !== undefined) {
    const feed = (rep as { feed?: { publish?: unknown; subscribe?: unknown } } | null)?.feed;
    if (!feed || typeof feed.publish !== 'function' || typeof feed.subscribe !== 'function') {
      throw new InvalidOptionError(`${PKG}: option "replication" must be { feed: SemanticFeed { publish, subscribe }, accept? }`, { field: 'replication' });
    }
    if (rep.accept !== undefined && typeof rep.accept !== 'function')
      throw new InvalidOptionError(`${PKG}: option "replication.accept" must be a function`, { field: 'replication.accept' });
  }
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs;
  if (!(typeof closeTimeoutMs === 'number' && closeTimeoutMs >= 0))
    throw new InvalidOptionError(`${PKG}: option "closeTimeoutMs" must be a non-negative number`, { field: 'closeTimeoutMs' });
  const sweep = options.sweepIntervalMs ?? DEFAULTS.sweepIntervalMs;
  if (!(sweep > 0)) throw new InvalidOptionError(`${PKG}: option "sweepIntervalMs" must be a positive number`, { field: 'sweepIntervalMs' });
  if (options.snapshotIntervalMs !== undefined && (!(options.snapshotIntervalMs > 0) || !options.persistDir)) {
    throw new InvalidOptionError(`${PKG}: option "snapshotIntervalMs" must be a positive number and needs "persistDir"`, { field: 'snapshotIntervalMs' });
  }
  if (options.onWarning !== undefined && typeof options.onWarning !== 'function') {
    throw new InvalidOptionError(`${PKG}: option "onWarning" must be a function`, { field: 'onWarning' });
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '')) {
    throw new InvalidOptionError(`${PKG}: option "name" must be a non-empty string`, { field: 'name' });
  }
  const calibration = resolveCalibration(options.calibration, options.answerJudge, options.answerText);
  const ag = options.answerGroups;
  if (ag !== undefined && typeof ag !== 'boolean' && (typeof ag !== 'object' || ag === null))
    throw new InvalidOptionError(`${PKG}: option "answerGroups" must be true, false or an object of its options`, { field: 'answerGroups' });
  if (calibration && ag !== undefined && ag !== false)
    throw new InvalidOptionError(`${PKG}: option "answerGroups" cannot be used with "calibration" (the calibrator decides every match)`, {
      field: 'answerGroups',
    });
  const answerGroups =
    ag === false || calibration || (ag === undefined && options.threshold !== undefined) ? undefined : answerGroupSetting(typeof ag === 'object' ? ag : {});
  return {
    embedder: e,
    threshold,
    thresholdGiven: options.threshold !== undefined,
    topK: posInt(options.topK ?? DEFAULTS.topK, 'topK'),
    calibration,
    guards,
    selector: sel === false ? undefined : sel,
    answerGroups,
    maxEntries: posInt(options.maxEntries ?? DEFAULTS.maxEntries, 'maxEntries'),
    maxTextLength: posInt(options.maxTextLength ?? DEFAULTS.maxTextLength, 'maxTextLength'),
    embeddingCacheSize: cacheSize,
    embedding: {
      concurrency: posInt(q.concurrency ?? DEFAULTS.embedding.concurrency, 'embedding.concurrency'),
      maxBatch: posInt(q.maxBatch ?? DEFAULTS.embedding.maxBatch, 'embedding.maxBatch'),
      maxQueue: posInt(q.maxQueue ?? DEFAULTS.embedding.maxQueue, 'embedding.maxQueue'),
      maxQueueDelayMs: delay,
    },
    hnsw: {
      m: posInt(h.m ?? DEFAULTS.hnsw.m, 'hnsw.m'),
      efConstruction: posInt(h.efConstruction ?? DEFAULTS.hnsw.efConstruction, 'hnsw.efConstruction'),
      ef: posInt(h.ef ?? DEFAULTS.hnsw.ef, 'hnsw.ef'),
      randomSeed: posInt(h.randomSeed ?? DEFAULTS.hnsw.randomSeed, 'hnsw.randomSeed'),
    },
    flatLimit: posInt(options.flatLimit ?? DEFAULTS.flatLimit, 'flatLimit'),
    persistDir: options.persistDir,
    snapshotIntervalMs: options.snapshotIntervalMs,
    rebuildFrom: options.rebuildFrom,
    replication: rep,
    closeTimeoutMs,
    sweepIntervalMs: sweep,
    inFlight: resolveInFlight(options.inFlight),
    warn: options.onWarning ?? ((m) => process.emitWarning(m, { code: 'STRATA_SEMANTIC' })),
    name: options.name ?? DEFAULTS.name,
  };
}

export function checkThreshold(v: number, field: string): number {
  if (typeof v !== 'number' || !(v >= -1 && v <= 1)) throw new InvalidOptionError(`${PKG}: "${field}" is a cosine similarity in [-1, 1]`, { field });
  return v;
}

function posInt(v: number, field: string): number {
  if (!Number.isSafeInteger(v) || v < 1) throw new InvalidOptionError(`${PKG}: option "${field}" must be a positive integer`, { field });
  return v;
}
