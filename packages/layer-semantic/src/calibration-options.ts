import { InvalidOptionError } from '@strata-cache/core';
import { type AnswerJudge, SemanticCalibrator, type SemanticCalibratorOptions } from '@strata-cache/semantic-calibration';

const PKG = '@strata-cache/layer-semantic';

/**
 * A message channel between the processes of a fleet, for calibration evidence. Any pub/sub
 * does; a `RedisLayer` can be passed directly instead (see `CalibrationShareOptions.via`).
 */
export interface CalibrationChannel {
  /** Sends one message to every subscriber (this process's own included; it skips them). */
  publish(message: string): Promise<void> | void;
  /** Delivers every message published after it resolves; resolves the function that stops it. */
  subscribe(onMessage: (message: string) => void): Promise<() => Promise<void> | void>;
}

/**
 * What a `RedisLayer` (`@strata-cache/layer-redis`) offers for sharing: its one subscriber
 * connection (shared with the invalidation bus and the coordinator) and its fail-fast command path.
 */
export interface RedisPubSub {
  subscribe(channel: string, onMessage: (message: string) => void, onError?: (error: Error) => void): Promise<() => Promise<void>>;
  runCommand<T>(operation: string, timeoutMs: number, fn: (client: { publish(channel: string, message: string): Promise<unknown> }) => Promise<T>): Promise<T>;
}

/** How calibration evidence travels between the processes of a fleet (`calibration.share`). */
export interface CalibrationShareOptions {
  /**
   * The transport: a `RedisLayer` (the L2 every process shares: its pub/sub) or any
   * `CalibrationChannel`. Required.
   */
  via: RedisPubSub | CalibrationChannel;
  /** The pub/sub channel, when `via` is a Redis layer. @default `strata:semantic-calibration:<layer name>` */
  channel?: string | undefined;
  /** How often this process publishes the evidence it gathered since the last time (ms). @default 2_000 */
  intervalMs?: number | undefined;
}

/**
 * `SemanticLayerOptions.calibration`: the calibrator's options (`@strata-cache/semantic-calibration`:
 * `maxWrongRate`, `shadowRate`, …) and how the layer runs it.
 */
export interface SemanticCalibrationOptions extends SemanticCalibratorOptions {
  /**
   * One calibrator per tenant: a tenant's traffic never moves another tenant's boundaries (and
   * each tenant's wrong-answer rate is held to the budget on its own). `false`: one for all.
   * @default true
   */
  perTenant?: boolean | undefined;
  /** Tenants with a calibrator in memory (about 50 KB each); the least recently used is dropped beyond it. @default 1_000 */
  maxTenants?: number | undefined;
  /**
   * Upstream answers waiting to be judged at once; beyond it, new ones are not judged
   * (`stats().calibration.dropped`), so calibration never piles work onto a busy process.
   * @default 64
   */
  maxPendingJudgements?: number | undefined;
  /** Share evidence with the other processes of a fleet (counts add up; cut-offs stay per process). */
  share?: CalibrationShareOptions | undefined;
}

/** Calibration settings after validation and defaults. */
export interface ResolvedCalibration {
  readonly calibrator: SemanticCalibratorOptions;
  readonly perTenant: boolean;
  readonly maxTenants: number;
  readonly maxPendingJudgements: number;
  /** Never served below this similarity (the calibrator's own floor). */
  readonly minSimilarity: number;
  readonly share: { readonly via: RedisPubSub | CalibrationChannel; readonly channel: string | undefined; readonly intervalMs: number } | undefined;
  readonly judge: AnswerJudge | undefined;
  readonly answerText: ((value: unknown) => string | undefined) | undefined;
}

const LAYER_KEYS = ['perTenant', 'maxTenants', 'maxPendingJudgements', 'share'] as const;

/** Validates `calibration`, `answerJudge` and `answerText` (undefined when calibration is off). */
export function resolveCalibration(
  calibration: boolean | SemanticCalibrationOptions | undefined,
  judge: AnswerJudge | undefined,
  answerText: ((value: unknown) => string | undefined) | undefined,
): ResolvedCalibration | undefined {
  if (judge !== undefined && (typeof judge !== 'object' || judge === null || typeof judge.judge !== 'function')) {
    throw new InvalidOptionError(`${PKG}: option "answerJudge" must be an AnswerJudge { name, judge(input) }`, { field: 'answerJudge' });
  }
  if (answerText !== undefined && typeof answerText !== 'function')
    throw new InvalidOptionError(`${PKG}: option "answerText" must be a function (value) => string | undefined`, { field: 'answerText' });
  if (calibration === undefined || calibration === false) {
    if (judge !== undefined) throw new InvalidOptionError(`${PKG}: option "answerJudge" needs option "calibration"`, { field: 'answerJudge' });
    return undefined;
  }
  const c: SemanticCalibrationOptions = calibration === true ? {} : calibration;
  if (typeof c !== 'object' || c === null)
    throw new InvalidOptionError(`${PKG}: option "calibration" must be true or an object of calibration options`, { field: 'calibration' });
  const calibrator: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(c)) if (!(LAYER_KEYS as readonly string[]).includes(k)) calibrator[k] = v;
  // The calibrator validates its own options (unknown keys, ranges) and names them.
  const probe = new SemanticCalibrator(calibrator as SemanticCalibratorOptions);
  const perTenant = c.perTenant ?? true;
  if (typeof perTenant !== 'boolean')
    throw new InvalidOptionError(`${PKG}: option "calibration.perTenant" must be a boolean`, { field: 'calibration.perTenant' });
  const maxTenants = c.maxTenants ?? 1_000;
  if (!Number.isSafeInteger(maxTenants) || maxTenants < 1)
    throw new InvalidOptionError(`${PKG}: option "calibration.maxTenants" must be a positive integer`, { field: 'calibration.maxTenants' });
  const maxPending = c.maxPendingJudgements ?? 64;
  if (!Number.isSafeInteger(maxPending) || maxPending < 1)
    throw new InvalidOptionError(`${PKG}: option "calibration.maxPendingJudgements" must be a positive integer`, { field: 'calibration.maxPendingJudgements' });
  let share: ResolvedCalibration['share'];
  if (c.share !== undefined) {
    const sh = c.share;
    if (typeof sh !== 'object' || sh === null)
      throw new InvalidOptionError(`${PKG}: option "calibration.share" must be { via, channel?, intervalMs? }`, { field: 'calibration.share' });
    for (const k of Object.keys(sh)) {
      if (!['via', 'channel', 'intervalMs'].includes(k))
        throw new InvalidOptionError(`${PKG}: unknown option "calibration.share.${k}"`, { field: `calibration.share.${k}` });
    }
    const via = sh.via as Partial<RedisPubSub & CalibrationChannel> | undefined;
    const isChannel = !!via && typeof via.publish === 'function' && typeof via.subscribe === 'function';
    const isRedis = !!via && typeof via.runCommand === 'function' && typeof via.subscribe === 'function';
    if (!isChannel && !isRedis) {
      throw new InvalidOptionError(`${PKG}: option "calibration.share.via" must be a RedisLayer or a CalibrationChannel { publish, subscribe }`, {
        field: 'calibration.share.via',
      });
    }
    if (sh.channel !== undefined && (typeof sh.channel !== 'string' || sh.channel === ''))
      throw new InvalidOptionError(`${PKG}: option "calibration.share.channel" must be a non-empty string`, { field: 'calibration.share.channel' });
    const intervalMs = sh.intervalMs ?? 2_000;
    if (!(typeof intervalMs === 'number' && intervalMs >= 10 && Number.isFinite(intervalMs))) {
      throw new InvalidOptionError(`${PKG}: option "calibration.share.intervalMs" must be a number of milliseconds ≥ 10`, {
        field: 'calibration.share.intervalMs',
      });
    }
    share = { via: sh.via, channel: sh.channel, intervalMs };
  }
  return {
    calibrator: calibrator as SemanticCalibratorOptions,
    perTenant,
    maxTenants,
    maxPendingJudgements: maxPending,
    minSimilarity: probe.minSimilarity,
    share,
    judge,
    answerText,
  };
}

/**
 * An in-process `CalibrationChannel` (tests, or several layers in one process): every message
 * published reaches every subscriber, asynchronously, in order.
 */
export class MemoryCalibrationChannel implements CalibrationChannel {
  private readonly listeners = new Set<(message: string) => void>();
  /** Messages published so far. */
  published = 0;

  publish(message: string): void {
    this.published++;
    for (const l of [...this.listeners]) queueMicrotask(() => l(message));
  }

  async subscribe(onMessage: (message: string) => void): Promise<() => void> {
    const l = (m: string) => onMessage(m);
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }
}
