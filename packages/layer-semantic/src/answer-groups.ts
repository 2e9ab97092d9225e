import { canonicalize, InvalidOptionError, sha256 } from '@strata-cache/core';
import { answerTextOf } from '@strata-cache/semantic-guards';

const PKG = '@strata-cache/layer-semantic';

/**
 * The answer-group rule: decide between the stored answers of a partition, not between single
 * stored prompts. See `AnswerGroupModel`.
 */
export interface AnswerGroupOptions {
  /**
   * The best answer group's similarity to the query (cosine of the query and the group's centroid,
   * both whitened) must reach this.
   * @default 0.82
   */
  floor?: number | undefined;
  /** …and lead the runner-up answer (group or lone prompt) among the neighbours by this much. @default 0.1 */
  margin?: number | undefined;
  /**
   * How far the within-group spread is shrunk toward an even spread (0 = whiten fully, 1 = no
   * whitening: plain centroid cosine).
   * @default 0.5
   */
  shrinkage?: number | undefined;
  /**
   * The prompt the answer is served through must be at least this similar to the query (plain
   * cosine): how far the rule may extrapolate from what is stored. An answer shared by many
   * different questions ("Yes, it is in stock." for every product asked about) teaches the map
   * that what differs between those questions does not matter; this bar, the margin over the
   * runner-up answer and the guards are what stand between a new question of that family and
   * the shared answer.
   * @default 0.75
   */
  minSimilarity?: number | undefined;
  /** Stored prompts an answer needs before the rule serves it (a lone prompt is left to the threshold, guards and selector). @default 2 */
  minGroupSize?: number | undefined;
  /** Nearest stored prompts whose answers are compared. @default 16 */
  neighbours?: number | undefined;
  /**
   * Partitions that keep a learned map at once (1 MB each at 512-d); beyond, a partition gets one
   * only when it is searched more often than the least searched holder, which drops its map.
   * @default 32
   */
  maxMaps?: number | undefined;
}

export interface AnswerGroupSetting {
  readonly floor: number;
  readonly margin: number;
  readonly minSimilarity: number;
  readonly shrinkage: number;
  readonly minGroupSize: number;
  readonly neighbours: number;
  readonly maxMaps: number;
}

/** The measured defaults (chosen on the BANKING77 development simulation; see the package README). */
export const ANSWER_GROUP_DEFAULTS: AnswerGroupSetting = Object.freeze({
  floor: 0.82,
  margin: 0.1,
  minSimilarity: 0.75,
  shrinkage: 0.5,
  minGroupSize: 2,
  neighbours: 16,
  maxMaps: 32,
});

const OPTION_NAMES = { floor: true, margin: true, minSimilarity: true, shrinkage: true, minGroupSize: true, neighbours: true, maxMaps: true } satisfies Record<
  keyof AnswerGroupOptions,
  true
>;

/** Validates `answerGroups` options into a setting (defaults filled in). */
export function answerGroupSetting(options: AnswerGroupOptions = {}, field = 'answerGroups'): AnswerGroupSetting {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    throw new InvalidOptionError(`${PKG}: option "${field}" must be an object or false`, { field });
  for (const k of Object.keys(options)) {
    if (!(k in OPTION_NAMES))
      throw new InvalidOptionError(`${PKG}: unknown option "${field}.${k}" (known: ${Object.keys(OPTION_NAMES).join(', ')})`, { field: `${field}.${k}` });
  }
  const s = { ...ANSWER_GROUP_DEFAULTS };
  for (const [k, v] of Object.entries(options)) if (v !== undefined) (s as Record<string, unknown>)[k] = v;
  const num = (k: keyof AnswerGroupSetting, ok: (v: number) => boolean, what: string) => {
    const v = s[k];
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
      throw new InvalidOptionError(`${PKG}: option "${field}.${k}" must be ${what}`, { field: `${field}.${k}` });
  };
  num('floor', (v) => v >= -1 && v <= 1, 'a similarity from -1 to 1');
  num('margin', (v) => v >= 0 && v <= 2, 'a similarity difference from 0 to 2');
  num('minSimilarity', (v) => v >= -1 && v <= 1, 'a similarity from -1 to 1');
  num('shrinkage', (v) => v >= 0 && v <= 1, 'a number from 0 to 1');
  num('minGroupSize', (v) => Number.isSafeInteger(v) && v >= 2, 'an integer of at least 2');
  num('neighbours', (v) => Number.isSafeInteger(v) && v >= 2 && v <= 1_000, 'an integer from 2 to 1000');
  num('maxMaps', (v) => Number.isSafeInteger(v) && v >= 1, 'a positive integer');
  return Object.freeze(s);
}

/** Characters of the base64url SHA-256 kept as an answer key: 132 bits, a few bytes per prompt. */
const KEY_CHARS = 22;

/**
 * Which answer a stored value holds, as a short key: the hash of its readable text (whitespace
 * collapsed), as `sameValue` compares answers; of its canonical JSON when it has no text;
 * undefined when it has neither (such an entry is never grouped).
 */
export function answerGroupKey(value: unknown): string | undefined {
  const text = answerTextOf(value, Number.POSITIVE_INFINITY);
  // As sameValue: values of different types are different answers (5 and "5").
  if (text !== undefined) return sha256('t\n' + typeof value + '\n' + text.replace(/\s+/g, ' ')).slice(0, KEY_CHARS);
  try {
    return sha256('j\n' + canonicalize(value)).slice(0, KEY_CHARS);
  } catch {
    return undefined;
  }
}

/** The group an answer decision serves. */
export interface GroupDecision {
  /** The group's key (`answerGroupKey`). */
  readonly key: string;
  /** Whitened cosine of the query and the group's centroid. */
  readonly score: number;
  /** The runner-up answer's score. */
  readonly runnerUp: number;
  /** Stored prompts holding the answer. */
  readonly size: number;
}

interface Group {
  readonly members: Set<number>;
  /** Sum of the members' vectors (groups of two or more, while a map is in force; undefined = to be summed). */
  sum: Float32Array | undefined;
  /** sumᵀ A⁻¹ sum under the model `normAt` was computed for (NaN = stale). */
  norm: number;
  normAt: number;
  /** Bumped by every add and removal (a rebuild keeps the sums it computed only for unchanged groups). */
  version: number;
}

/** Member changes (adds and removals in groups of two or more) before the model is rebuilt: this share of the members it was built from, and at least MIN_CHANGES. */
const REBUILD_SHARE = 0.2;
const MIN_CHANGES = 4;
/**
 * Grouped members (prompts sharing an answer with another) a partition needs before a map is
 * learned: fewer say little about how one answer's questions vary, and a map costs 1 MB.
 */
export const MIN_GROUPED_MEMBERS = 16;

/**
 * The answer groups of one partition (the stored prompts that hold one answer) and a linear map
 * learned from them: within-group whitening. The spread of stored prompts around their own
 * group's centroid (the ways one answer's questions are worded) is the within-group covariance
 * Sw; cosines are taken under A⁻¹ with A = (1 − shrinkage)·Sw/m + shrinkage·(trace/D)·I, so
 * directions in which wordings of one answer differ count less than directions that separate
 * answers. No label is used but which stored prompts share an answer; the map is the partition's
 * own (partitions are per tenant and context), kept as one D×D float32 matrix (1 MB at 512-d) only
 * for partitions that hold a group of two or more.
 *
 * `decide` compares the answers among a query's nearest stored prompts: the best group serves when
 * it has `minGroupSize` prompts, its score reaches `floor` and leads the runner-up (a group or a
 * lone prompt) by `margin`. The map is rebuilt in slices (`rebuildSteps`) as groups change; until
 * the first build the rule decides nothing.
 */
export class AnswerGroupModel {
  private readonly members = new Map<number, string>();
  /** Answer key → its group, or the label of its only prompt (most answers are held by one prompt: no group object for them). */
  private readonly groups = new Map<string, Group | number>();
  /** A⁻¹ (row-major, symmetric), or undefined before the first build / with nothing to learn. */
  private ainv: Float32Array | undefined;
  private version = 0;
  /** Per lone prompt: xᵀ A⁻¹ x under the current model. */
  private readonly loneNorms = new Map<number, number>();
  /** Members of groups of two or more. */
  private grouped = 0;
  private builtFrom = 0;
  private changes = 0;
  /** How often the partition was searched (halved now and then: recent use counts most); the rebuilder keeps maps for the most used. */
  uses = 0;

  constructor(
    readonly dims: number,
    readonly setting: AnswerGroupSetting,
    /** A live member's vector (unit length). */
    private readonly vectorOf: (label: number) => Float32Array | undefined,
  ) {}

  /** True when a learned map is in force. */
  get ready(): boolean {
    return this.ainv !== undefined;
  }

  /** Resident bytes (the map, the group sums, the member index). */
  get bytes(): number {
    let n = (this.ainv?.byteLength ?? 0) + this.members.size * 48 + this.loneNorms.size * 40;
    for (const g of this.groups.values()) n += typeof g === 'number' ? 40 : 96 + (g.sum?.byteLength ?? 0) + g.members.size * 16;
    return n;
  }

  /** True when enough has changed since the last build that the map should be rebuilt. */
  get stale(): boolean {
    if (this.grouped < MIN_GROUPED_MEMBERS) return this.ainv !== undefined;
    return this.ainv === undefined || this.changes >= Math.max(MIN_CHANGES, REBUILD_SHARE * this.builtFrom);
  }

  /** Drops the learned map (memory); it is rebuilt when scheduled again. */
  release(): void {
    if (!this.ainv) return;
    this.ainv = undefined;
    this.version++;
    this.loneNorms.clear();
    for (const g of this.groups.values()) if (typeof g !== 'number') g.sum = undefined;
  }

  /**
   * Adds a stored prompt (its partition label) holding the answer `key` (undefined: never
   * grouped). `vector` (optional) keeps its group's sum current while a map is in force; without
   * it the sum is recomputed when first needed (a snapshot load adds without reading vectors).
   */
  add(label: number, vector: Float32Array | undefined, key: string | undefined): void {
    if (key === undefined || this.members.has(label)) return;
    this.members.set(label, key);
    const held = this.groups.get(key);
    if (held === undefined) {
      this.groups.set(key, label); // the answer's only prompt so far
      return;
    }
    let g: Group;
    if (typeof held === 'number') this.groups.set(key, (g = { members: new Set([held]), sum: undefined, norm: Number.NaN, normAt: -1, version: 0 }));
    else g = held;
    g.members.add(label);
    g.version++;
    if (g.members.size === 2) {
      this.grouped += 2;
      this.changes += 2;
      g.sum = undefined; // summed when first needed
    } else if (g.members.size > 2) {
      this.grouped++;
      this.changes++;
      // Sums are kept only while a map is in force (memory: D floats per group); else dropped.
      if (this.ainv && g.sum && vector) for (let i = 0; i < this.dims; i++) g.sum[i]! += vector[i]!;
      else g.sum = undefined;
    }
    g.normAt = -1;
  }

  /** Removes a stored prompt; call while its vector can still be read. */
  remove(label: number): void {
    const key = this.members.get(label);
    if (key === undefined) return;
    this.members.delete(label);
    this.loneNorms.delete(label);
    const g = this.groups.get(key)!;
    if (typeof g === 'number') {
      this.groups.delete(key);
      return;
    }
    g.members.delete(label);
    g.version++;
    g.normAt = -1;
    if (g.members.size === 1) {
      // Back to a lone prompt: no group object.
      this.groups.set(key, g.members.values().next().value as number);
      g.sum = undefined;
      this.grouped -= 2;
      this.changes += 2;
      return;
    }
    const v = this.ainv && g.sum ? this.vectorOf(label) : undefined;
    if (v) for (let i = 0; i < this.dims; i++) g.sum![i]! -= v[i]!;
    else g.sum = undefined;
    this.grouped--;
    this.changes++;
  }

  /** The answer key of a member, if it holds one. */
  keyOf(label: number): string | undefined {
    return this.members.get(label);
  }

  /** Rebuilds the map at once (a benchmark or a test; the layer runs `rebuildSteps` in slices). */
  rebuild(): void {
    for (const _ of this.rebuildSteps());
  }

  /**
   * Rebuilds the map from the members as they are now, yielding between units of work (one
   * member, one row) so a caller can spread it over event-loop turns. Members that change
   * meanwhile are picked up by the next build.
   */
  *rebuildSteps(): Generator<void, void, void> {
    const D = this.dims;
    const alpha = this.setting.shrinkage;
    const started = this.changes;
    // Within-group scatter Sw = Σ x xᵀ − Σ_g s_g s_gᵀ / n_g over the members of groups of two or more (lower triangle).
    const S = new Float64Array(D * D);
    let m = 0;
    // Each group's sum as computed here (exact), installed with the map where the group did not change meanwhile.
    const sums: Array<{ g: Group; version: number; sum: Float32Array }> = [];
    for (const g of [...this.groups.values()]) {
      if (typeof g === 'number' || g.members.size < 2) continue;
      const version = g.version;
      const s = new Float64Array(D);
      let n = 0;
      for (const label of [...g.members]) {
        const v = this.vectorOf(label);
        if (!v) continue;
        for (let a = 0; a < D; a++) {
          const va = v[a]!;
          s[a]! += va;
          const row = a * D;
          for (let b = 0; b <= a; b++) S[row + b]! += va * v[b]!;
        }
        n++;
        yield;
      }
      if (n === 0) continue;
      for (let a = 0; a < D; a++) {
        const sa = s[a]! / n;
        const row = a * D;
        for (let b = 0; b <= a; b++) S[row + b]! -= sa * s[b]!;
      }
      m += n;
      sums.push({ g, version, sum: Float32Array.from(s) });
      yield;
    }
    const builtFrom = m;
    if (m < MIN_GROUPED_MEMBERS) {
      this.install(undefined, started, builtFrom, sums);
      return;
    }
    let trace = 0;
    for (let a = 0; a < D; a++) trace += S[a * D + a]! / m;
    const ridge = alpha * Math.max(trace / D, 1e-12) + 1e-9;
    // A = (1 − alpha) Sw/m + ridge I, factored in place: A = L Lᵀ (lower triangle of S).
    const w = (1 - alpha) / m;
    for (let i = 0; i < D * D; i++) S[i]! *= w;
    for (let a = 0; a < D; a++) S[a * D + a]! += ridge;
    for (let i = 0; i < D; i++) {
      const ri = i * D;
      for (let j = 0; j <= i; j++) {
        const rj = j * D;
        let sum = S[ri + j]!;
        for (let k = 0; k < j; k++) sum -= S[ri + k]! * S[rj + k]!;
        S[ri + j] = i === j ? Math.sqrt(Math.max(sum, 1e-300)) : sum / S[rj + j]!;
      }
      yield;
    }
    // L⁻¹ (lower triangular), column by column.
    const Li = new Float64Array(D * D);
    for (let j = 0; j < D; j++) {
      Li[j * D + j] = 1 / S[j * D + j]!;
      for (let i = j + 1; i < D; i++) {
        const ri = i * D;
        let sum = 0;
        for (let k = j; k < i; k++) sum -= S[ri + k]! * Li[k * D + j]!;
        Li[ri + j] = sum / S[ri + i]!;
      }
      yield;
    }
    // A⁻¹ = L⁻ᵀ L⁻¹: (A⁻¹)_ab = Σ_{k ≥ max(a,b)} Li_ka Li_kb.
    const out = new Float32Array(D * D);
    for (let a = 0; a < D; a++) {
      for (let b = 0; b <= a; b++) {
        let sum = 0;
        for (let k = a; k < D; k++) sum += Li[k * D + a]! * Li[k * D + b]!;
        out[a * D + b] = sum;
        out[b * D + a] = sum;
      }
      yield;
    }
    this.install(out, started, builtFrom, sums);
  }

  private install(
    ainv: Float32Array | undefined,
    started: number,
    builtFrom: number,
    sums: ReadonlyArray<{ g: Group; version: number; sum: Float32Array }>,
  ): void {
    this.ainv = ainv;
    this.version++;
    this.loneNorms.clear();
    this.builtFrom = builtFrom;
    this.changes = Math.max(0, this.changes - started);
    // The sums computed from the members, for groups that did not change while the map was built
    // (the others are summed again when first needed); none are kept without a map.
    for (const { g, version, sum } of sums) if (ainv && g.version === version && g.members.size >= 2) g.sum = sum;
    if (!ainv) for (const g of this.groups.values()) if (typeof g !== 'number') g.sum = undefined;
  }

  private sumOf(members: Set<number>): Float32Array {
    const sum = new Float32Array(this.dims);
    for (const label of members) {
      const v = this.vectorOf(label);
      if (v) for (let i = 0; i < this.dims; i++) sum[i]! += v[i]!;
    }
    return sum;
  }

  private quad(x: Float32Array, ax?: Float64Array): number {
    const A = this.ainv!;
    const D = this.dims;
    let q = 0;
    for (let a = 0; a < D; a++) {
      const row = a * D;
      let s = 0;
      for (let b = 0; b < D; b++) s += A[row + b]! * x[b]!;
      if (ax) ax[a] = s;
      q += s * x[a]!;
    }
    return q;
  }

  /**
   * The answer to serve among a query's nearest stored prompts (labels, most similar first), or
   * undefined: the best answer group must hold `minGroupSize` prompts, score `floor` and lead
   * the runner-up by `margin`; with a single answer among the neighbours there is no runner-up
   * and nothing is decided.
   */
  decide(query: Float32Array, labels: readonly number[]): GroupDecision | undefined {
    if (!this.ainv) return undefined;
    const D = this.dims;
    const aq = new Float64Array(D);
    const qn = this.quad(query, aq);
    if (!(qn > 0)) return undefined;
    const scores = new Map<string | number, { score: number; key: string | undefined; size: number }>();
    for (const label of labels) {
      const key = this.members.get(label);
      const held = key === undefined ? undefined : this.groups.get(key);
      const g = typeof held === 'object' ? held : undefined;
      const id = g && g.members.size >= 2 ? key! : label;
      if (scores.has(id)) continue;
      let x: Float32Array | undefined;
      let norm: number;
      if (g && g.members.size >= 2) {
        g.sum ??= this.sumOf(g.members);
        x = g.sum;
        if (g.normAt !== this.version) {
          g.norm = this.quad(x);
          g.normAt = this.version;
        }
        norm = g.norm;
      } else {
        x = this.vectorOf(label);
        if (!x) continue;
        let n = this.loneNorms.get(label);
        if (n === undefined) this.loneNorms.set(label, (n = this.quad(x)));
        norm = n;
      }
      if (!(norm > 0)) continue;
      let dotq = 0;
      for (let i = 0; i < D; i++) dotq += aq[i]! * x[i]!;
      scores.set(id, { score: dotq / Math.sqrt(qn * norm), key, size: g?.members.size ?? 1 });
    }
    let best: { score: number; key: string | undefined; size: number } | undefined;
    let second = Number.NEGATIVE_INFINITY;
    for (const v of scores.values()) {
      if (!best || v.score > best.score) {
        if (best) second = Math.max(second, best.score);
        best = v;
      } else second = Math.max(second, v.score);
    }
    const { floor, margin, minGroupSize } = this.setting;
    if (!best || best.key === undefined || best.size < minGroupSize || second === Number.NEGATIVE_INFINITY) return undefined;
    if (!(best.score >= floor && best.score - second >= margin)) return undefined;
    return { key: best.key, score: best.score, runnerUp: second, size: best.size };
  }
}

/** Longest slice of a rebuild per event-loop turn (ms). */
const SLICE_MS = 4;

/** Searches between halvings of every model's use count. */
const DECAY_EVERY = 1_000;

/**
 * Runs stale models' rebuilds in the background, one at a time, in slices of a few
 * milliseconds, so a rebuild (tens to hundreds of milliseconds of arithmetic for a 512-d map)
 * never holds up a lookup. A partition gets a map once it is searched; at most `maxMaps` hold
 * one, and when all are taken a partition gets one only if it is searched more often than the
 * least searched partition holding one (which then drops its map): partitions searched in turn
 * never evict each other in a loop.
 */
export class GroupRebuilder {
  private readonly models = new Set<AnswerGroupModel>();
  private readonly waiting = new Set<AnswerGroupModel>();
  private running: { model: AnswerGroupModel; steps: Generator<void, void, void> } | undefined;
  private timer: NodeJS.Immediate | undefined;
  private idleWaiters: Array<() => void> = [];
  private stopped = false;
  private ticks = 0;
  /** Models holding a map. */
  private readonly built = new Set<AnswerGroupModel>();
  /** Builds completed. */
  builds = 0;
  /** Maps dropped to keep at most maxMaps. */
  evictions = 0;

  constructor(private readonly maxMaps: number) {}

  /** Partitions holding a learned map now. */
  get maps(): number {
    return this.built.size;
  }

  /** A model of a new partition. */
  track(model: AnswerGroupModel): void {
    this.models.add(model);
  }

  /** Its partition was searched: counts the use and builds its map if due. */
  searched(model: AnswerGroupModel): void {
    model.uses++;
    if (++this.ticks >= DECAY_EVERY) {
      this.ticks = 0;
      for (const m of this.models) m.uses /= 2;
    }
    this.schedule(model);
  }

  /** Queues a model whose map is stale (one never searched waits for its first search). */
  schedule(model: AnswerGroupModel): void {
    if (this.stopped || model.uses === 0 || this.running?.model === model || !model.stale) return;
    if (!model.ready && !this.built.has(model) && this.built.size >= this.maxMaps) {
      const weakest = this.weakest(model);
      if (!weakest || model.uses <= weakest.uses) return;
    }
    this.waiting.add(model);
    // Not unref'd: a build is bounded work (well under a second), and answerGroupsIdle() must resolve.
    this.timer ??= setImmediate(() => this.turn());
  }

  /** Forgets a model (its partition is gone). */
  forget(model: AnswerGroupModel): void {
    this.models.delete(model);
    this.waiting.delete(model);
    this.built.delete(model);
    if (this.running?.model === model) {
      this.running.steps.return();
      this.running = undefined;
    }
  }

  /** Resolves when no rebuild waits or runs. */
  idle(): Promise<void> {
    if (!this.running && this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: nothing further is built. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearImmediate(this.timer);
    this.timer = undefined;
    this.running?.steps.return();
    this.running = undefined;
    this.waiting.clear();
    this.built.clear();
    this.models.clear();
    this.settleIdle();
  }

  private turn(): void {
    this.timer = undefined;
    const until = performance.now() + SLICE_MS;
    while (performance.now() < until) {
      if (!this.running) {
        const next = this.waiting.values().next();
        if (next.done) break;
        this.waiting.delete(next.value);
        if (!next.value.stale) continue;
        this.running = { model: next.value, steps: next.value.rebuildSteps() };
      }
      if (this.running.steps.next().done) {
        const { model } = this.running;
        this.running = undefined;
        this.builds++;
        this.installed(model);
        // Changed again while it was being built: go round once more.
        if (model.stale) this.waiting.add(model);
      }
    }
    if (this.running || this.waiting.size > 0) this.timer = setImmediate(() => this.turn());
    else this.settleIdle();
  }

  /** The least searched model holding a map, other than `except`. */
  private weakest(except: AnswerGroupModel): AnswerGroupModel | undefined {
    let out: AnswerGroupModel | undefined;
    for (const m of this.built) if (m !== except && (!out || m.uses < out.uses)) out = m;
    return out;
  }

  /** Keeps at most maxMaps maps: the least searched other one drops its map. */
  private installed(model: AnswerGroupModel): void {
    if (!model.ready) {
      this.built.delete(model);
      return;
    }
    this.built.add(model);
    while (this.built.size > this.maxMaps) {
      const weakest = this.weakest(model);
      if (!weakest) break;
      weakest.release();
      this.built.delete(weakest);
      this.evictions++;
    }
  }

  private settleIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of w) resolve();
  }
}
