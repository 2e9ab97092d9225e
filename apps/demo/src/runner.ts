import { performance } from 'node:perf_hooks';
import { type PriceTable, type TokenUsage, costUsd, findPrice } from '@strata-cache/core';
import type { ChatClient, ChatOutcome } from './client.js';
import { intentById } from './knowledge.js';
import { parseAnswerRef } from './simulated-provider.js';
import type { ChatMessage, Job, RequestKind, Workload } from './workload.js';

export type Path = 'L1' | 'L2' | 'L3' | 'upstream';
export type Verdict = 'ok' | 'wrong-hit' | 'stale' | 'cross-tenant' | 'unchecked';

export interface RequestRecord {
  /** Order in the workload. */
  readonly index: number;
  /** Order of completion (the x axis of "over time"). */
  seq: number;
  readonly tenant: string;
  readonly text: string;
  readonly intent: string | undefined;
  readonly kind: RequestKind;
  readonly stream: boolean;
  readonly turn: number;
  /** ms since the run started. */
  readonly startMs: number;
  latencyMs: number;
  path: Path;
  layer?: string | undefined;
  similarity?: number;
  matchedText?: string | undefined;
  rejectedBy?: string[];
  coalesced?: boolean;
  /** This request made an upstream call (a miss that was not served by another caller's call). */
  upstreamCall: boolean;
  answer: string;
  answerId: string;
  /** What the served answer was written for: tenant, intent, price-list generation. */
  origin?: { tenant: string; intent: string | undefined; generation: number };
  /** Price-list generation of the tenant when the request started. */
  readonly generationAtStart: number;
  verdict: Verdict;
  /** USD: what the upstream call cost (miss) or what the hit avoided. */
  usd: number;
  /** Tokens (input + output) of the upstream call this request made, or that its hit avoided. */
  tokens: number;
  error?: string;
}

export interface EventRecord {
  readonly name: string;
  readonly tenant: string;
  /** Requests before the event in the workload's order. */
  readonly atRequest: number;
  readonly startMs: number;
  readonly durationMs: number;
  /** Entries removed, per layer. */
  readonly purged: Readonly<Record<string, number>>;
  readonly generation: number;
  readonly detail: string;
}

export interface RunHooks {
  /** Apply an event (change the prices upstream, then invalidate); resolves with what it purged. */
  onEvent(job: Extract<Job, { type: 'event' }>): Promise<{ purged: Record<string, number>; detail: string }>;
  onProgress?(done: number, records: readonly RequestRecord[]): void;
}

export interface RunOptions {
  readonly workload: Workload;
  readonly client: ChatClient;
  readonly concurrency: number;
  readonly model: string;
  readonly prices: PriceTable;
  readonly hooks: RunHooks;
}

export interface RunResult {
  readonly records: RequestRecord[];
  readonly events: EventRecord[];
  readonly wallMs: number;
  readonly errors: number;
}

interface Origin {
  text: string;
  tenant: string;
  intent: string | undefined;
  generation: number;
  usage?: TokenUsage;
  usd: number;
}

/** Drives the workload through the client with bounded concurrency and checks every answer. */
export async function runWorkload(options: RunOptions): Promise<RunResult> {
  const { workload, client, hooks } = options;
  const t0 = performance.now();
  const records: RequestRecord[] = [];
  const events: EventRecord[] = [];
  const generation = new Map<string, number>();
  const registry = new Map<string, Origin>();
  const eventGates: Array<{ index: number; done: Promise<void> }> = [];
  let next = 0;
  let seq = 0;
  let requestIndex = 0;
  let errors = 0;
  const priceOf = (model: string | undefined) => findPrice(options.prices, model ?? options.model);

  const send = async (job: Extract<Job, { type: 'chat' }>, messages: ChatMessage[], turn: number, index: number, route: number): Promise<string> => {
    const spec = job.turns[turn]!;
    const startMs = performance.now() - t0;
    const genAtStart = generation.get(job.tenant) ?? 1;
    let outcome: ChatOutcome | undefined;
    let error: string | undefined;
    try {
      outcome = await client.chat({ tenant: job.tenant, model: job.model ?? options.model, messages, stream: job.stream, route });
    } catch (e) {
      error = (e as Error).message ?? String(e);
      errors++;
    }
    const latencyMs = performance.now() - t0 - startMs;
    const rec: RequestRecord = {
      index,
      seq: seq++,
      tenant: job.tenant,
      text: spec.text,
      intent: spec.intent,
      kind: spec.kind,
      stream: job.stream,
      turn,
      startMs,
      latencyMs,
      path: 'upstream',
      answer: outcome?.text ?? '',
      answerId: outcome?.id ?? '',
      generationAtStart: genAtStart,
      verdict: 'unchecked',
      usd: 0,
      tokens: 0,
      upstreamCall: false,
      ...(error ? { error } : {}),
    };
    if (outcome) {
      if (outcome.status === 'hit') {
        rec.layer = outcome.layer;
        rec.path = pathOf(outcome.layer);
      }
      if (outcome.similarity !== undefined) {
        rec.similarity = outcome.similarity;
        rec.matchedText = outcome.matchedText;
      }
      if (outcome.rejected?.length) rec.rejectedBy = outcome.rejected.map((r) => r.guard);
      if (outcome.coalesced) rec.coalesced = true;
      if (outcome.status !== 'hit' && !registry.has(outcome.id)) {
        const price = priceOf(job.model);
        rec.upstreamCall = true;
        registry.set(outcome.id, {
          text: spec.text,
          tenant: job.tenant,
          intent: spec.intent,
          generation: genAtStart,
          ...(outcome.usage ? { usage: outcome.usage } : {}),
          usd: price && outcome.usage ? costUsd(outcome.usage, price) : 0,
        });
      }
      const ref = parseAnswerRef(outcome.text);
      const known = registry.get(outcome.id);
      const origin = ref ?? known;
      if (origin) rec.origin = { tenant: origin.tenant, intent: origin.intent, generation: origin.generation };
      if (rec.path === 'L3' && rec.matchedText === undefined && known) rec.matchedText = known.text;
      // A hit saved what its answer's upstream call cost; a miss cost it once, whoever waited on it.
      rec.usd = outcome.status === 'hit' || rec.upstreamCall ? (known?.usd ?? 0) : 0;
      rec.tokens = outcome.status === 'hit' || rec.upstreamCall ? (known?.usage ? known.usage.inputTokens + known.usage.outputTokens : 0) : 0;
      rec.verdict = judge(rec);
    }
    records.push(rec);
    hooks.onProgress?.(records.length, records);
    return outcome?.text ?? '';
  };

  const worker = async () => {
    for (;;) {
      const j = next++;
      if (j >= workload.jobs.length) return;
      const job = workload.jobs[j]!;
      if (job.type === 'event') {
        const gate = (async () => {
          const before = eventGates.filter((g) => g.index < j).map((g) => g.done);
          await Promise.all(before);
          const startMs = performance.now() - t0;
          const atRequest = requestIndex;
          const r = await hooks.onEvent(job);
          const gen = (generation.get(job.tenant) ?? 1) + 1;
          generation.set(job.tenant, gen);
          events.push({
            name: job.name,
            tenant: job.tenant,
            atRequest,
            startMs,
            durationMs: performance.now() - t0 - startMs,
            purged: r.purged,
            generation: gen,
            detail: r.detail,
          });
        })();
        eventGates.push({ index: j, done: gate });
        await gate;
        continue;
      }
      const index = requestIndex;
      requestIndex += job.turns.length;
      // Nothing that comes after an event in the workload starts before the event is done.
      const gates = eventGates.filter((g) => g.index < j);
      if (gates.length > 0) await Promise.all(gates.map((g) => g.done));
      const messages: ChatMessage[] = [...job.preamble];
      for (let turn = 0; turn < job.turns.length; turn++) {
        messages.push({ role: 'user', content: job.turns[turn]!.text });
        const answer = await send(job, [...messages], turn, index + turn, j);
        messages.push({ role: 'assistant', content: answer });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  return { records, events, wallMs: performance.now() - t0, errors };
}

export function pathOf(layer: string | undefined): Path {
  switch (layer) {
    case 'memory':
      return 'L1';
    case 'redis':
      return 'L2';
    case 'semantic':
      return 'L3';
    default:
      return layer === undefined ? 'upstream' : 'L1';
  }
}

/**
 * Ground truth against the served answer. Cross-tenant: written for another tenant. Stale:
 * a pricing answer written from an older price list than the tenant had when the request
 * started. Wrong hit: a cached answer to a different question.
 */
function judge(r: RequestRecord): Verdict {
  const o = r.origin;
  if (!o) return 'unchecked';
  if (o.tenant !== r.tenant) return 'cross-tenant';
  const pricing = o.intent ? intentById(o.intent)?.pricing === true : false;
  if (pricing && o.generation < r.generationAtStart) return 'stale';
  if (r.intent !== undefined && o.intent !== undefined && o.intent !== r.intent) return 'wrong-hit';
  return 'ok';
}
