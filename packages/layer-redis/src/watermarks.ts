import { type FleetClock, type InvalidationWatermark, type WatermarkStore, watermarkFromId, watermarkId, watermarkScore } from '@strata-cache/core/layer-kit';
import type { RedisLayer } from './layer.js';
import { Script } from './scripts.js';

/** Local time in ms: the monotonic clock, placed on the wall clock once (steps of the wall clock do not move it). */
const local = () => performance.timeOrigin + performance.now();

/** Largest rate at which the local clock may drift from Redis's between two samples (100 ppm). */
const DRIFT = 1e-4;
/** Samples of the Redis clock kept; the one with the shortest round trip wins. */
const SAMPLES = 8;
/** How long a jump of the Redis clock (a failover to a server with another clock) widens the error. */
const JUMP_MEMORY_MS = 600_000;
/** When the clock is sampled after the checks start, before the regular interval (ms). */
const EARLY_SAMPLES_MS = [0, 25, 100, 250];
/** Members handled per prune call (the script runs inside Redis: keep it short). */
const PRUNE_LIMIT = 2_000;
/** A save this process has not heard of is waited for at least this long before it reloads, ms (its message may be on its way). */
const UNHEARD_GRACE_MS = 1_000;
/** Reloads for saves not heard of start at most this often, ms (saves by processes of an earlier version carry no counter). */
const UNHEARD_RELOAD_MIN_MS = 5_000;
/** Counters heard above the first one missing, at most; beyond, this process reloads. */
const HEARD_MAX = 10_000;

export interface WatermarkSettings {
  /** How often the store is checked for lost data and the clock re-sampled, ms. */
  readonly checkEveryMs: number;
  /** Added to the measured error of the clock, ms. */
  readonly clockMarginMs: number;
  /** Error assumed before the Redis clock could be sampled once, ms. */
  readonly unsyncedErrorMs: number;
  /** Time limit of the store's commands, ms. */
  readonly timeoutMs: number;
}

/**
 * The server's time, the store's counter, how many watermarks it holds and, when ARGV is given,
 * whether it still holds this process's last save (1/0): ARGV[1] the index in KEYS of its ZSET,
 * ARGV[2] the member, ARGV[3] its score, ARGV[4..] the members of KEYS[2] pruning folds it into.
 * One round trip to the store's slot.
 */
const SAMPLE = new Script(`
local kept = 1
if #ARGV > 0 then
  local best = redis.call('ZSCORE', KEYS[tonumber(ARGV[1])], ARGV[2])
  best = best and tonumber(best)
  for i = 4, #ARGV do
    local f = redis.call('ZSCORE', KEYS[2], ARGV[i])
    if f and (not best or tonumber(f) > best) then best = tonumber(f) end
  end
  if not best or best < tonumber(ARGV[3]) then kept = 0 end
end
return { redis.call('TIME'), redis.call('GET', KEYS[1]), redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]), kept }
`);

/**
 * Folds watermarks (KEYS[1], member → at) into `clear|<scope>|` ones, which cover at least what
 * they covered: key and tag watermarks older than ARGV[1]; then, while there are more than
 * ARGV[2], the oldest key and tag ones, and only then scope-wide ones (into `clear|*|`).
 * At most ARGV[3] members per call. Members are `<type>|<scope or *>|<rest>` (core's ids).
 */
const PRUNE = new Script(`
local key, before, max, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local done = 0
local function parts(m)
  local a = string.find(m, '|', 1, true)
  if not a then return nil, nil end
  local b = string.find(m, '|', a + 1, true)
  if not b then return nil, nil end
  return string.sub(m, 1, a - 1), string.sub(m, a + 1, b - 1)
end
local function fold(m, s, into)
  redis.call('ZREM', key, m)
  local cur = redis.call('ZSCORE', key, into)
  if (not cur) or tonumber(cur) < s then redis.call('ZADD', key, s, into) end
  done = done + 1
end
local function target(t, scope)
  if t == 'clear' or scope == '*' then return 'clear|*|' end
  return 'clear|' .. scope .. '|'
end
local old = redis.call('ZRANGEBYSCORE', key, '-inf', '(' .. ARGV[1], 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #old, 2 do
  local t, scope = parts(old[i])
  if (t == 'key' or t == 'tag') and scope then fold(old[i], tonumber(old[i + 1]), target(t, scope)) end
end
local goal = math.floor(max * 0.9)
for pass = 1, 2 do
  if redis.call('ZCARD', key) <= max then break end
  while done < limit and redis.call('ZCARD', key) > goal do
    local page = redis.call('ZRANGE', key, 0, 999, 'WITHSCORES')
    local moved = 0
    for i = 1, #page, 2 do
      if done >= limit or redis.call('ZCARD', key) <= goal then break end
      local m = page[i]
      local t, scope = parts(m)
      local eligible = scope and m ~= 'clear|*|' and ((pass == 1 and (t == 'key' or t == 'tag')) or (pass == 2 and t == 'clear'))
      if eligible then
        fold(m, tonumber(page[i + 1]), target(t, scope))
        moved = moved + 1
      end
    end
    if moved == 0 then break end
  end
end
return done
`);

interface Sample {
  /** Redis time minus local time, ms. */
  readonly offset: number;
  readonly rtt: number;
  /** Local time of the sample. */
  readonly at: number;
}

/**
 * Invalidation watermarks kept in Redis, and the clock they are read on.
 *
 *   <prefix>:wm:{<prefix>}:marks     ZSET  core's watermark id → at (ms, Redis clock)
 *   <prefix>:wm:{<prefix>}:versions  ZSET  tenant/namespace → scope version
 *   <prefix>:wm:{<prefix>}:seq       counter, +1 with every save
 *
 * One hash tag: one Cluster slot, so a save is one MULTI (ZADD GT — a lower watermark never
 * replaces a higher one — and INCR). The counter tells a store that went back in time: a save
 * or a check (every `checkEveryMs`) that reads a lower value than this process has seen means
 * Redis restarted empty, was restored from an older snapshot or failed over to a replica that
 * had not received everything — listeners are told to resync, and core writes back what is
 * missing. They are told too when the connection comes back and when the bus's subscription is
 * re-established (messages were missed). An unscoped `clear()` keeps these keys (KeySpace.isOwn).
 *
 * A subscription can also go deaf without a disconnect (it sat on a node that was paused or failed
 * over). Core sends each message after its save, with the counter the save returned; this process
 * notes the counters it hears of (and of its own saves), and when the counter has moved past one it
 * has not heard of for UNHEARD_GRACE_MS, it reloads the store.
 *
 * The clock: the Redis server's (`TIME`, sampled with the check), estimated locally as monotonic
 * time plus an offset from the sample with the shortest round trip; its error is half that round
 * trip, plus drift since, plus `clockMarginMs`, plus any recent jump of the offset. Processes
 * whose own clocks disagree by minutes still stamp and set watermarks within that error of one
 * another.
 */
export class RedisWatermarks implements WatermarkStore, FleetClock {
  readonly keys: { readonly marks: string; readonly versions: string; readonly seq: string };
  private readonly listeners = new Set<() => void>();
  private seen = 0;
  /**
   * This process's last acknowledged save, as SAMPLE's arguments: a store that lacks it went back
   * in time even when other processes' saves have since taken the counter past `seen`.
   */
  private last: string[] = [];
  private samples: Sample[] = [];
  private best: Sample | undefined;
  private jump = { size: 0, at: 0 };
  private timer: ReturnType<typeof setInterval> | undefined;
  private checking = false;
  private stopAvailability: (() => void) | undefined;
  /** Every save up to this counter is known here: loaded, heard of on the bus, or made by this process. */
  private floor = 0;
  /** Counters above `floor` heard of (their saves are known here). */
  private readonly heardAbove = new Set<number>();
  /** The store was loaded once (until then, `floor` means nothing). */
  private loadedOnce = false;
  /** Since when the first save not heard of (the one after `unheardFloor`) has been missing (0: none is). */
  private unheardSince = 0;
  private unheardFloor = 0;
  private lastUnheardReload = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly layer: RedisLayer,
    private readonly s: WatermarkSettings,
  ) {
    const p = layer.keys.prefix;
    const tag = `{${p}}`;
    this.keys = { marks: `${p}:wm:${tag}:marks`, versions: `${p}:wm:${tag}:versions`, seq: `${p}:wm:${tag}:seq` };
  }

  // ------------------------------------------------------------------ FleetClock

  now(): number {
    this.start();
    return local() + (this.best?.offset ?? 0);
  }

  errorMs(): number {
    const b = this.best;
    if (!b) return this.s.unsyncedErrorMs;
    const t = local();
    const jump = t - this.jump.at < JUMP_MEMORY_MS ? this.jump.size : 0;
    return b.rtt / 2 + (t - b.at) * DRIFT + this.s.clockMarginMs + jump;
  }

  // ------------------------------------------------------------------ WatermarkStore

  async save(marks: readonly InvalidationWatermark[]): Promise<number> {
    const flat: string[] = [];
    const versions: string[] = [];
    for (const w of marks) {
      const id = watermarkId(w.message);
      const score = String(watermarkScore(w));
      if (w.message.type === 'scope-version') versions.push(score, id);
      else flat.push(score, id);
    }
    const before = this.seen;
    const n = await this.layer.runCommand('saveWatermarks', this.s.timeoutMs, async (c) => {
      const m = c.multi();
      if (flat.length > 0) m.zadd(this.keys.marks, 'GT', ...flat);
      if (versions.length > 0) m.zadd(this.keys.versions, 'GT', ...versions);
      m.incr(this.keys.seq);
      const results = await m.exec();
      for (const [error] of results ?? []) if (error) throw error;
      return Number(results?.[results.length - 1]?.[1]);
    });
    if (flat.length > 0) this.last = ['2', flat[1]!, flat[0]!, ...foldTargets(flat[1]!)];
    else if (versions.length > 0) this.last = ['3', versions[1]!, versions[0]!];
    this.observe(n, before);
    this.heard(n);
    return n;
  }

  /** A save this process knows of: its own, or one whose message (`InvalidationEnvelope.seq`) reached it. */
  heard(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq <= this.floor) return;
    this.heardAbove.add(seq);
    this.climb();
  }

  /** Moves `floor` up over the counters heard of right above it. */
  private climb(): void {
    while (this.heardAbove.delete(this.floor + 1)) this.floor++;
  }

  async load(): Promise<InvalidationWatermark[]> {
    let t0 = 0;
    const [marks, versions, seq, time] = await this.layer.runCommand('loadWatermarks', this.s.timeoutMs, async (c) => {
      t0 = local();
      // The clock is read in the same round trip: a process that has just started (its first
      // load is part of cache.ready()) stamps and purges on the Redis clock from then on.
      const results = await c
        .multi()
        .zrange(this.keys.marks, 0, -1, 'WITHSCORES')
        .zrange(this.keys.versions, 0, -1, 'WITHSCORES')
        .get(this.keys.seq)
        .time()
        .exec();
      for (const [error] of results ?? []) if (error) throw error;
      return (results ?? []).map((r) => r[1]) as [string[], string[], string | null, [string, string]];
    });
    this.sample(Number(time[0]) * 1_000 + Number(time[1]) / 1_000, t0, local());
    // What was just loaded is what this process has seen (a lower counter later means a loss), and
    // knows of: every save up to it.
    this.seen = Math.max(this.seen, Number(seq ?? 0));
    this.known(Number(seq ?? 0));
    const out: InvalidationWatermark[] = [];
    for (const flat of [marks, versions]) {
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const w = watermarkFromId(flat[i]!, Number(flat[i + 1]));
        if (w) out.push(w);
      }
    }
    return out;
  }

  onResync(listener: () => void): () => void {
    this.listeners.add(listener);
    this.start();
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  async prune(before: number, max: number): Promise<void> {
    await this.layer.runCommand('pruneWatermarks', this.s.timeoutMs, (c) =>
      PRUNE.run(c, [this.keys.marks], [String(before), String(max), String(PRUNE_LIMIT)]),
    );
  }

  /** Tells listeners to resync (the bus calls it when its subscription is back). */
  resync(): void {
    for (const l of [...this.listeners]) {
      try {
        l();
      } catch {
        // a listener must not stop the others
      }
    }
  }

  /** Samples the clock and checks the counter now (also run every `checkEveryMs`). */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const t0 = local();
      const last = this.last;
      const seenBefore = this.seen;
      const [time, seq, held, kept] = (await this.layer.runCommand('checkWatermarks', this.s.timeoutMs, (c) =>
        SAMPLE.run(c, [this.keys.seq, this.keys.marks, this.keys.versions], last),
      )) as [[string, string], string | null, number, number];
      const t1 = local();
      this.sample(Number(time[0]) * 1_000 + Number(time[1]) / 1_000, t0, t1);
      // No counter, or no watermark at all after saves: restarted empty, or the keys were evicted
      // (maxmemory with allkeys-*) — pruning never empties the store.
      if ((seq === null || Number(held) === 0) && this.seen > 0) this.lost();
      // Its own last save gone: an older snapshot, whatever the counter says now (processes
      // started from that snapshot may have saved past the value this process saw).
      else if (Number(kept) === 0 && last === this.last) this.lost();
      else {
        this.observe(Number(seq ?? 0), seenBefore);
        this.unheard(Number(seq ?? 0));
      }
    } finally {
      this.checking = false;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopAvailability?.();
    this.stopAvailability = undefined;
  }

  private start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.check().catch((error: unknown) => {
        // A closed layer ends the checks; an unreachable Redis is retried at the next tick.
        if ((error as { code?: string })?.code === 'STRATA_CLOSED') this.stop();
      });
    }, this.s.checkEveryMs);
    this.timer.unref?.();
    this.stopAvailability = this.layer.onAvailable(() => {
      void this.check().catch(() => undefined);
      this.resync();
    });
    // A few samples right away: the first round trips of a process are slow (cold code, a new
    // connection), and the error of the clock is half the best one.
    for (const ms of EARLY_SAMPLES_MS) setTimeout(() => void this.check().catch(() => undefined), ms).unref?.();
  }

  /**
   * A counter read from the store: lower than `before`, what this process had seen when it sent
   * the command that read it, means the store lost saves. Only that can tell a loss: a save or a
   * check sent at the same time on another connection may have read a higher counter and been
   * answered first.
   */
  private observe(n: number, before: number): void {
    if (!Number.isFinite(n)) return;
    if (n < before) {
      this.seen = n;
      this.lost();
      return;
    }
    if (n > this.seen) this.seen = n;
  }

  private lost(): void {
    this.seen = 0;
    this.last = [];
    // The counter restarts lower: what was known of it says nothing now (the reload sets it again).
    this.floor = 0;
    this.heardAbove.clear();
    this.loadedOnce = false;
    this.unheardSince = 0;
    this.resync();
  }

  /** Every save up to `seq` is known (the store was loaded at that counter). */
  private known(seq: number): void {
    this.loadedOnce = true;
    this.unheardSince = 0;
    if (!Number.isSafeInteger(seq) || seq <= this.floor) return;
    this.floor = seq;
    for (const n of this.heardAbove) if (n <= seq) this.heardAbove.delete(n);
    this.climb();
  }

  /**
   * The store's counter, read by a check: past a save not heard of for UNHEARD_GRACE_MS (a message
   * missed, or a save nobody announced), the listeners reload.
   */
  private unheard(seq: number): void {
    if (!this.loadedOnce || this.listeners.size === 0 || !Number.isSafeInteger(seq) || seq <= this.floor) {
      this.unheardSince = 0;
      return;
    }
    const t = local();
    // The wait is for the first missing save: once heard of, a later one missing starts its own
    // (under a steady stream of purges most checks find a save whose message is on its way).
    if (this.unheardSince === 0 || this.floor > this.unheardFloor) {
      this.unheardSince = t;
      this.unheardFloor = this.floor;
    }
    const waited = t - this.unheardSince;
    if (
      this.heardAbove.size > HEARD_MAX ||
      (waited >= Math.max(UNHEARD_GRACE_MS, this.s.checkEveryMs) && t - this.lastUnheardReload >= UNHEARD_RELOAD_MIN_MS)
    ) {
      this.lastUnheardReload = t;
      this.unheardSince = 0;
      this.resync();
    }
  }

  private sample(server: number, t0: number, t1: number): void {
    // The server read its clock somewhere between t0 and t1: at the midpoint, off by at most rtt/2.
    const s: Sample = { offset: server - (t0 + t1) / 2, rtt: t1 - t0 + 0.002, at: t1 };
    this.samples.push(s);
    if (this.samples.length > SAMPLES) this.samples.shift();
    let best = this.samples[0]!;
    for (const x of this.samples) if (x.rtt + (t1 - x.at) * DRIFT * 2 < best.rtt + (t1 - best.at) * DRIFT * 2) best = x;
    const prev = this.best;
    if (prev) {
      const moved = Math.abs(best.offset - prev.offset);
      // More than both samples' errors together: the clock behind Redis changed (failover).
      if (moved > prev.rtt / 2 + best.rtt / 2 + (t1 - prev.at) * DRIFT) this.jump = { size: Math.max(moved, this.jump.size), at: t1 };
    }
    this.best = best;
  }
}

/** The members PRUNE may fold a marks member into (they then cover it). */
function foldTargets(id: string): string[] {
  const [type, scope] = id.split('|', 2);
  return (type === 'key' || type === 'tag') && scope !== undefined && scope !== '*' ? [`clear|${scope}|`, 'clear|*|'] : ['clear|*|'];
}
