/**
 * The semantic layer's calibrating mode (option `calibration`): instead of a fixed threshold, a
 * `SemanticCalibrator` (`@strata-cache/semantic-calibration`) decides each lookup from what the
 * layer's own traffic taught it, within the user's error budget.
 *
 * - search: the nearest candidates down to the calibrator's evidence floor, each through the
 *   guards (a turned-down candidate is never served), with its stored answer's embedding; the
 *   calibrator serves, audits (`shadow`: a miss, the caller gets a fresh answer) or declines;
 * - observe: core hands back the upstream answer of a shadow check or a near miss; it is judged
 *   against the candidate's stored answer (and its rivals') and the calibrator learns — in the
 *   background, bounded, never on a caller's path;
 * - feedback: a user's verdict on a served answer;
 * - state: persisted with the index snapshot, shared across processes as additive deltas.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { CalibrationNote, FeedbackVerdict, GuardInput, LayerContext, RejectedCandidate, SemanticQuery, SemanticSearchResult } from '@strata-cache/core';
import {
  type AnswerJudge,
  type CalibrationCandidate,
  type CalibrationCounters,
  type CalibrationDelta,
  type CalibrationSnapshot,
  type DecisionToken,
  SemanticCalibrator,
  answerTextOf,
  embeddingAnswerJudge,
  wilson,
} from '@strata-cache/semantic-calibration';
import { sameQuestion } from '@strata-cache/semantic-guards';
import { AnswerVectors } from './answer-vectors.js';
import type { CalibrationChannel, RedisPubSub, ResolvedCalibration } from './calibration-options.js';
import type { CalibratedSearch, CalibrationHost, FoundCandidate, SemanticCalibrationStats } from './calibration-types.js';
import type { MatchCandidate } from './match.js';
import type { Rec, RemovalReason } from './records.js';

export type { CalibratedSearch, CalibrationHost, FoundCandidate, SemanticCalibrationStats } from './calibration-types.js';

const TOKEN_VERSION = 1;
const STATE_FORMAT = 'strata-semantic-calibration';
const SHARE_FORMAT = 'strata-semantic-calibration-share';
/** Answers are compared on their first characters (encoders truncate long inputs anyway). */
const ANSWER_CHARS = 2_000;
/** Observations per shared message (a burst is split, so no message grows without bound). */
const SHARE_CHUNK = 2_000;
/** Query texts remembered for judges that read the question (an LLM judge), by lookup. */
const RECENT_QUERIES = 2_048;

/** What the layer puts in `CalibrationNote.token` (opaque to core). */
interface LayerToken {
  readonly v: 1;
  /** Calibrator key (tenant, or '' when shared). */
  readonly t: string;
  readonly a: 'serve' | 'shadow' | 'miss';
  readonly d: DecisionToken;
}

export class LayerCalibration {
  private readonly calibrators = new Map<string, SemanticCalibrator>();
  readonly answers: AnswerVectors;
  private readonly judge: AnswerJudge;
  private readonly answerText: (value: unknown) => string | undefined;
  private readonly needsVectors: boolean;
  private readonly recentQueries = new Map<string, string>();
  private readonly work = new Set<Promise<void>>();
  private readonly embedding = new Set<string>();
  private pendingJudgements = 0;
  private readonly counters = { dropped: 0, judgeErrors: 0, published: 0, applied: 0, shareErrors: 0 };
  /** Counters of calibrators dropped from memory (so stats stay cumulative). */
  private retired: Totals = { lookups: 0, served: 0, shadowed: 0, nearMisses: 0, shadows: 0, wrong: 0, right: 0, shadowWrongMass: 0 };
  private readonly origin = randomUUID();
  private shareTimer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => Promise<void> | void) | undefined;
  private readonly closing = new AbortController();

  constructor(
    readonly o: ResolvedCalibration,
    private readonly host: CalibrationHost,
  ) {
    // Every background judgement and answer embedding listens to it (bounded by maxPendingJudgements and the queue).
    setMaxListeners(0, this.closing.signal);
    this.answers = new AnswerVectors(host.embedder.dimensions);
    this.answerText = (v) => {
      const t = (o.answerText ?? answerTextOf)(v);
      return typeof t === 'string' && t !== '' ? (t.length > ANSWER_CHARS ? t.slice(0, ANSWER_CHARS) : t) : undefined;
    };
    // The default judge embeds through the layer's cache at background priority: a judgement never delays a lookup.
    this.judge =
      o.judge ??
      embeddingAnswerJudge({
        embedder: {
          id: host.vectors.id,
          dimensions: host.vectors.dimensions,
          embed: (texts, options) => host.vectors.embed(texts, { priority: 'bulk', ...(options?.signal ? { signal: options.signal } : {}) }),
          ...(host.embedder.represents ? { represents: host.embedder.represents } : {}),
        },
      });
    this.needsVectors = host.guards.some((g) => g.needsVectors === true);
  }

  /** Candidates fetched per lookup when `topK` is not set. */
  static readonly DEFAULT_TOP_K = 8;

  // ---- lookups ----------------------------------------------------------------------

  /**
   * Decides a lookup over its candidates (most similar first). `floor`: an explicit threshold
   * (the layer's option or the request's), below which nothing is served.
   */
  decide(
    query: { readonly text: string; readonly vector: Float32Array; readonly tenant: string },
    found: readonly FoundCandidate[],
    floor: number | undefined,
  ): CalibratedSearch {
    const key = this.keyOf(query.tenant);
    const cal = this.calibrator(key);
    const minServe = Math.max(this.o.minSimilarity, floor ?? -1);
    const rejected: RejectedCandidate[] = [];
    const candidates: CalibrationCandidate[] = [];
    // Only the best candidate the guards pass can be served: the same-question check runs for it alone.
    let servable = true;
    for (const c of found) {
      let accepted = c.similarity >= minServe;
      if (accepted) {
        const input: GuardInput = this.needsVectors
          ? { query: query.text, candidate: c.text, similarity: c.similarity, threshold: minServe, queryVector: query.vector, candidateVector: c.rec.vector() }
          : { query: query.text, candidate: c.text, similarity: c.similarity, threshold: minServe };
        for (const g of this.host.guards) {
          const v = g.check(input);
          if (!v.accept) {
            rejected.push({ similarity: c.similarity, text: c.text, guard: g.name, reason: v.reason });
            accepted = false;
            break;
          }
        }
      }
      const answerVector = this.answers.get(c.rec.id);
      if (!answerVector) this.embedAnswer(c.rec);
      candidates.push({
        id: c.rec.id,
        similarity: c.similarity,
        accepted,
        ...(answerVector ? { answerVector } : {}),
        ...(accepted && servable && sameQuestion(query.text, c.text) ? { sameText: true } : {}),
      });
      if (accepted) servable = false;
    }
    const d = cal.decide({ candidates });
    const token: LayerToken | undefined = d.token ? { v: TOKEN_VERSION, t: key, a: d.action, d: d.token } : undefined;
    if (token && d.action !== 'serve') this.rememberQuery(key, d.token!.seq, query.text);
    const boundary = d.token && d.action !== 'miss' ? cal.boundary(d.token) : undefined;
    const at = d.candidate;
    const note: CalibrationNote = {
      action: d.action,
      cutoff: d.cutoff,
      ...(at !== undefined ? { similarity: found[at]!.similarity } : {}),
      ...(d.pWrong !== undefined ? { pWrong: d.pWrong } : {}),
      ...(boundary !== undefined ? { boundary } : {}),
      ...(token ? { token } : {}),
    };
    if (d.action === 'serve') return { pick: at, note, rejected };
    if (at !== undefined && candidates[at]!.accepted !== false) {
      rejected.push({
        similarity: found[at]!.similarity,
        text: found[at]!.text,
        guard: d.action === 'shadow' ? 'calibration-shadow-check' : 'calibration',
        reason: d.reason,
      });
    }
    return { pick: undefined, note, rejected };
  }

  /**
   * Which prompts still loading a lookup may wait for (`inFlight`): those the tenant's calibrator
   * would serve it from once stored, as a new entry without evidence of its own — a clear match
   * from its clear boundary on (none while it has none), or the same question in other framing
   * ("Hi, …", "…, please?") from `minSimilarity` on, as `decide` serves it. Never below `floor`.
   */
  joinable(tenant: string, query: string, floor: number | undefined): (similarity: number, text: string) => boolean {
    const min = Math.max(this.o.minSimilarity, floor ?? -1);
    // The boundary is worked out for the first recent miss compared, not for every lookup that misses.
    let line: number | undefined;
    const clearLine = () => {
      const b = this.calibrators.get(this.keyOf(tenant))?.clearBoundary();
      return b === undefined ? Number.POSITIVE_INFINITY : Math.max(b, min);
    };
    return (similarity, text) => similarity >= (line ??= clearLine()) || (similarity >= min && sameQuestion(query, text));
  }

  // ---- learning ---------------------------------------------------------------------

  /** A search's result when calibration decides: which candidate (if any) is served, and the note for observe(). */
  search(query: SemanticQuery, vec: Float32Array, recs: Rec[], candidates: MatchCandidate[], floor: number | undefined): SemanticSearchResult {
    const found: FoundCandidate[] = recs.map((rec, i) => ({ rec, similarity: candidates[i]!.similarity, text: candidates[i]!.text }));
    const { pick, note, rejected } = this.decide({ text: query.text, vector: vec, tenant: query.scope.tenant }, found, floor);
    const out: { -readonly [K in keyof SemanticSearchResult]: SemanticSearchResult[K] } = { calibration: note };
    if (rejected.length) out.rejected = rejected;
    if (pick !== undefined) {
      const r = recs[pick]!;
      this.host.store.touch(r);
      out.hit = { key: r.key, entry: r.entry, similarity: found[pick]!.similarity, text: found[pick]!.text };
    }
    return out;
  }
  /**
   * Judges the upstream answer of a shadow check or near miss against the candidate's stored
   * answer, in the background (bounded by `maxPendingJudgements`), and teaches the calibrator.
   * Resolves when done; never rejects for a judgement that could not be made (it is counted).
   */
  observe(raw: unknown, value: unknown, ctx?: LayerContext): Promise<void> | void {
    const token = decodeToken(raw);
    if (!token || token.a === 'serve') return;
    const cal = this.calibrators.get(token.t);
    const rec = this.host.store.get(token.d.id);
    const cachedAnswer = rec ? this.answerText(rec.entry.value) : undefined;
    const freshAnswer = this.answerText(value);
    if (
      !cal ||
      !rec ||
      cachedAnswer === undefined ||
      freshAnswer === undefined ||
      this.pendingJudgements >= this.o.maxPendingJudgements ||
      this.closing.signal.aborted ||
      ctx?.signal?.aborted
    ) {
      this.counters.dropped++;
      return;
    }
    this.pendingJudgements++;
    // The layer's own close() stops judgements still running (core's signal is shared by every call: no listener on it).
    const signal = this.closing.signal;
    const p = this.judgeAndLearn(cal, token, rec, cachedAnswer, freshAnswer, signal).finally(() => {
      this.pendingJudgements--;
    });
    return this.track(p);
  }

  private async judgeAndLearn(
    cal: SemanticCalibrator,
    token: LayerToken,
    rec: Rec,
    cachedAnswer: string,
    freshAnswer: string,
    signal: AbortSignal,
  ): Promise<void> {
    const rivals: Array<{ text: string; vector?: Float32Array }> = [];
    for (const id of token.d.rivals ?? []) {
      const r = this.host.store.get(id);
      const text = r ? this.answerText(r.entry.value) : undefined;
      if (!r || text === undefined || text === cachedAnswer) continue;
      const vector = this.answers.get(id);
      rivals.push(vector ? { text, vector } : { text });
    }
    const cachedAnswerVector = this.answers.get(rec.id);
    let verdict;
    try {
      verdict = await this.judge.judge({
        query: this.recentQueries.get(`${token.t}\u0000${token.d.seq}`) ?? '',
        ...(rec.entry.semantic ? { cachedPrompt: rec.entry.semantic.text } : {}),
        cachedAnswer,
        freshAnswer,
        ...(cachedAnswerVector ? { cachedAnswerVector } : {}),
        rivals,
        signal,
      });
    } catch (e) {
      if (signal.aborted) {
        this.counters.dropped++;
        return;
      }
      this.counters.judgeErrors++;
      throw e;
    }
    if (this.calibrators.get(token.t) !== cal) return; // the tenant's calibrator was dropped meanwhile
    cal.observe(token.d, verdict, token.a === 'shadow' ? 'shadow' : 'miss');
    this.host.changed();
    // The judge embedded the stored answer if the entry had no vector yet: keep it.
    if (!cachedAnswerVector && this.host.store.isCurrent(rec) && this.host.embedder.represents?.(cachedAnswer) !== false) {
      const v = this.host.vectors.peek(cachedAnswer);
      if (v) this.answers.set(rec.id, v);
    }
  }

  /** A user's verdict on a hit this layer served. */
  feedback(raw: unknown, verdict: FeedbackVerdict): { evict: boolean } {
    const token = decodeToken(raw);
    if (!token) return { evict: verdict === 'wrong' };
    const cal = this.calibrator(token.t);
    const r = cal.feedback(token.d, verdict);
    this.host.changed();
    return r;
  }

  /** An entry was written here: embed its answer in the background (for pooling and rivals). */
  written(rec: Rec): void {
    this.embedAnswer(rec);
  }

  /** An entry left the store. */
  removed(rec: Rec, reason: RemovalReason): void {
    this.answers.delete(rec.id);
    if (reason === 'replaced') return;
    this.calibrators.get(this.keyOf(rec.key.scope.tenant))?.evict(rec.id);
  }

  cleared(): void {
    this.answers.clear();
  }

  private embedAnswer(rec: Rec): void {
    if (this.answers.has(rec.id) || this.embedding.has(rec.id) || this.closing.signal.aborted) return;
    const text = this.answerText(rec.entry.value);
    // An answer the embedder cannot represent gets no vector: it would look like every other such
    // answer, and count as an ally of answers that say something else.
    if (text === undefined || this.host.embedder.represents?.(text) === false) return;
    const cached = this.host.vectors.peek(text);
    if (cached) {
      this.answers.set(rec.id, cached);
      return;
    }
    this.embedding.add(rec.id);
    const p = this.host.vectors
      .embed([text], { priority: 'bulk', signal: this.closing.signal })
      .then(
        ([v]) => {
          if (v && this.host.store.isCurrent(rec)) this.answers.set(rec.id, v);
        },
        () => undefined, // busy, cancelled or failed: the entry pools less; a later lookup tries again
      )
      .finally(() => this.embedding.delete(rec.id));
    void this.track(p);
  }

  // ---- state ------------------------------------------------------------------------

  /** Resolves when no judgement and no answer embedding is running. */
  async idle(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  stats(): SemanticCalibrationStats {
    const t = { ...this.retired };
    let expected = 0;
    let entries = 0;
    let lowest: number | undefined;
    let highest: number | undefined;
    for (const cal of this.calibrators.values()) {
      const s = cal.stats();
      const c = s.counters;
      addCounters(t, c);
      expected += s.expectedWrongRate * c.lookups;
      entries += s.entriesWithEvidence;
      const b = cal.clearBoundary();
      if (b !== undefined) {
        lowest = lowest === undefined ? b : Math.min(lowest, b);
        highest = highest === undefined ? b : Math.max(highest, b);
      }
    }
    const live = [...this.calibrators.values()].reduce((n, c) => n + c.stats().counters.lookups, 0);
    const wouldBe = t.served + t.shadowed;
    return {
      calibrators: this.calibrators.size,
      lookups: t.lookups,
      served: t.served,
      shadowChecks: t.shadowed,
      shadowShare: wouldBe === 0 ? 0 : t.shadowed / wouldBe,
      nearMissesJudged: t.nearMisses,
      shadowsJudged: t.shadows,
      feedback: { wrong: t.wrong, right: t.right },
      boundariesLearned: entries,
      clearBoundary: { lowest, highest },
      auditedWrongShare: wilson(t.shadowWrongMass, t.shadows),
      expectedWrongRate: live === 0 ? 0 : expected / live,
      pendingJudgements: this.pendingJudgements,
      dropped: this.counters.dropped,
      judgeErrors: this.counters.judgeErrors,
      answerVectors: this.answers.size,
      shared: this.o.share ? { published: this.counters.published, applied: this.counters.applied, errors: this.counters.shareErrors } : undefined,
    };
  }

  /** The files this state adds to a snapshot (captured synchronously, with the index). */
  snapshotFiles(): Array<{ name: string; data: Buffer | string }> {
    const tenants: Array<[string, CalibrationSnapshot]> = [];
    for (const [k, cal] of this.calibrators) tenants.push([k, cal.snapshot()]);
    return [
      { name: 'calibration.json', data: JSON.stringify({ format: STATE_FORMAT, version: 1, perTenant: this.o.perTenant, tenants }) },
      { name: 'answer-vectors.bin', data: this.answers.serialise((id) => this.host.store.get(id) !== undefined) },
    ];
  }

  /**
   * Restores the state a snapshot carried (after the index loaded). A malformed or mismatched
   * state is refused whole — calibration starts afresh, the index stays — with a warning.
   */
  restore(files: { calibration?: Buffer | undefined; answers?: Buffer | undefined }): void {
    if (files.calibration) {
      try {
        const s = JSON.parse(files.calibration.toString('utf8')) as { format?: unknown; version?: unknown; perTenant?: unknown; tenants?: unknown };
        if (s.format !== STATE_FORMAT || s.version !== 1 || !Array.isArray(s.tenants)) throw new Error('not a calibration state');
        if (s.perTenant !== this.o.perTenant) throw new Error(`it was saved with perTenant ${String(s.perTenant)}`);
        const restored = new Map<string, SemanticCalibrator>();
        for (const item of s.tenants as unknown[]) {
          if (!Array.isArray(item) || typeof item[0] !== 'string') throw new Error('bad tenant entry');
          const cal = new SemanticCalibrator(this.o.calibrator);
          cal.restore(item[1] as CalibrationSnapshot);
          restored.set(item[0], cal);
        }
        this.calibrators.clear();
        for (const [k, c] of restored) this.calibrators.set(k, c);
      } catch (e) {
        this.host.warn(`@strata-cache/layer-semantic: discarded the calibration state of the snapshot (${(e as Error).message}); calibration starts afresh`);
      }
    }
    if (files.answers) {
      try {
        this.answers.load(files.answers, (id) => this.host.store.get(id) !== undefined);
      } catch (e) {
        this.host.warn(
          `@strata-cache/layer-semantic: discarded the answer vectors of the snapshot (${(e as Error).message}); they are embedded again as needed`,
        );
      }
    }
  }

  // ---- sharing across processes -----------------------------------------------------

  /** Joins the fleet's channel (when `share` is set) and starts publishing this process's evidence. */
  async start(): Promise<void> {
    const share = this.o.share;
    if (!share) return;
    const onMessage = (m: string) => this.receive(m);
    try {
      if (isChannel(share.via)) this.unsubscribe = await share.via.subscribe(onMessage);
      else this.unsubscribe = await share.via.subscribe(this.channelName(), onMessage, (e) => this.shareFailed(e));
    } catch (e) {
      this.shareFailed(e);
    }
    this.shareTimer = setInterval(() => void this.publish(), share.intervalMs).unref();
  }

  private channelName(): string {
    return this.o.share?.channel ?? `strata:semantic-calibration:${this.host.name}`;
  }

  /**
   * Publishes the evidence gathered since the last time (resolves once sent, or failed). `final`:
   * the layer is closing — the transport may already be closed (core closes L2 before L3), so a
   * failure is counted without a warning.
   */
  async publish(final = false): Promise<void> {
    const share = this.o.share;
    if (!share) return;
    const messages: string[] = [];
    for (const [k, cal] of this.calibrators) {
      const d = cal.takeDelta();
      for (let i = 0; i < Math.max(1, d.observations.length); i += SHARE_CHUNK) {
        const part: CalibrationDelta = { ...d, observations: d.observations.slice(i, i + SHARE_CHUNK), evicted: i === 0 ? d.evicted : [] };
        if (part.observations.length === 0 && part.evicted.length === 0) continue;
        messages.push(
          JSON.stringify({ f: SHARE_FORMAT, v: 1, o: this.origin, e: `${this.host.embedder.id}\u0000${this.host.embedder.dimensions}`, t: k, d: part }),
        );
      }
    }
    for (const m of messages) {
      try {
        if (isChannel(share.via)) await share.via.publish(m);
        else {
          const channel = this.channelName();
          await share.via.runCommand('publish', 1_000, (c) => c.publish(channel, m));
        }
        this.counters.published++;
      } catch (e) {
        if (final) this.counters.shareErrors++;
        else this.shareFailed(e);
      }
    }
  }

  private receive(message: string): void {
    let m: { f?: unknown; v?: unknown; o?: unknown; e?: unknown; t?: unknown; d?: unknown };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      this.counters.shareErrors++;
      return;
    }
    if (!m || m.f !== SHARE_FORMAT || m.v !== 1 || typeof m.t !== 'string') {
      this.counters.shareErrors++;
      return;
    }
    // Our own, or another embedder's (its similarities are on another scale): not for us.
    if (m.o === this.origin || m.e !== `${this.host.embedder.id}\u0000${this.host.embedder.dimensions}` || this.closing.signal.aborted) return;
    if (!this.o.perTenant && m.t !== '') return;
    try {
      const cal = this.calibrator(m.t);
      cal.applyDelta(m.d as CalibrationDelta);
      this.counters.applied++;
      this.host.changed();
    } catch {
      this.counters.shareErrors++;
    }
  }

  private shareFailed(e: unknown): void {
    this.counters.shareErrors++;
    if (this.counters.shareErrors === 1)
      this.host.warn(
        `@strata-cache/layer-semantic: sharing calibration evidence failed (${(e as Error)?.message ?? String(e)}); further failures are counted in stats().calibration.shared.errors`,
      );
  }

  /** Waits for running judgements (up to `ms`), publishes what is left, leaves the channel. */
  async close(ms: number): Promise<void> {
    if (this.shareTimer) clearInterval(this.shareTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    this.closing.abort();
    if (this.o.share) {
      await this.publish(true);
      try {
        await this.unsubscribe?.();
      } catch {
        // leaving a channel that is already gone
      }
    }
  }

  // ---- internals --------------------------------------------------------------------

  private keyOf(tenant: string): string {
    return this.o.perTenant ? tenant : '';
  }

  private calibrator(key: string): SemanticCalibrator {
    let cal = this.calibrators.get(key);
    if (cal) {
      // Most recently used last: the first one is dropped when there are too many.
      this.calibrators.delete(key);
      this.calibrators.set(key, cal);
      return cal;
    }
    cal = new SemanticCalibrator(this.o.calibrator);
    this.calibrators.set(key, cal);
    while (this.calibrators.size > this.o.maxTenants) {
      const [oldKey, old] = this.calibrators.entries().next().value as [string, SemanticCalibrator];
      // Its counts stay in the totals.
      addCounters(this.retired, old.stats().counters);
      this.calibrators.delete(oldKey);
    }
    return cal;
  }

  private rememberQuery(key: string, seq: number, text: string): void {
    this.recentQueries.set(`${key}\u0000${seq}`, text);
    if (this.recentQueries.size > RECENT_QUERIES) this.recentQueries.delete(this.recentQueries.keys().next().value as string);
  }

  private track(p: Promise<void>): Promise<void> {
    this.work.add(p);
    void p.then(
      () => this.work.delete(p),
      () => this.work.delete(p),
    );
    return p;
  }
}

/** What `stats()` sums over the calibrators of every tenant (and of those dropped). */
interface Totals {
  lookups: number;
  served: number;
  shadowed: number;
  nearMisses: number;
  shadows: number;
  wrong: number;
  right: number;
  shadowWrongMass: number;
}

function addCounters(t: Totals, c: CalibrationCounters): void {
  t.lookups += c.lookups;
  t.served += c.served;
  t.shadowed += c.shadowed;
  t.nearMisses += c.observedNearMisses;
  t.shadows += c.observedShadows;
  t.wrong += c.feedbackWrong;
  t.right += c.feedbackRight;
  t.shadowWrongMass += c.shadowWrongMass;
}

function isChannel(via: RedisPubSub | CalibrationChannel): via is CalibrationChannel {
  return typeof (via as CalibrationChannel).publish === 'function';
}

/** The layer's token, or undefined when `raw` is not one (a token is user-reachable: checked whole). */
function decodeToken(raw: unknown): LayerToken | undefined {
  const t = raw as Partial<LayerToken> | null;
  if (!t || typeof t !== 'object' || t.v !== TOKEN_VERSION || typeof t.t !== 'string' || (t.a !== 'serve' && t.a !== 'shadow' && t.a !== 'miss'))
    return undefined;
  const d = t.d as Partial<DecisionToken> | undefined;
  if (
    !d ||
    typeof d !== 'object' ||
    typeof d.id !== 'string' ||
    typeof d.similarity !== 'number' ||
    !Number.isFinite(d.similarity) ||
    typeof d.seq !== 'number'
  )
    return undefined;
  if (!Array.isArray(d.allies) || !d.allies.every((x) => typeof x === 'string')) return undefined;
  if (d.rivals !== undefined && (!Array.isArray(d.rivals) || !d.rivals.every((x) => typeof x === 'string'))) return undefined;
  if (!Number.isInteger(d.context)) return undefined;
  return t as LayerToken;
}
