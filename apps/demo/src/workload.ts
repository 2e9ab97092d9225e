import { readFileSync } from 'node:fs';
import { FOLLOW_UPS, INTENTS, SYSTEM_PROMPT, intentById, questionId } from './knowledge.js';
import { Rng, zipfWeights } from './rng.js';

/** How a request relates to what was asked before (for the report; the cache never sees it). */
export type RequestKind = 'first' | 'repeat' | 'paraphrase' | 'reworded' | 'lookalike' | 'follow-up' | 'long-tail' | 'replayed';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** One user turn to send. Earlier turns of a conversation are filled in with the answers actually served. */
export interface TurnSpec {
  readonly text: string;
  /** Ground truth: what the turn asks (undefined = not labelled; replayed workloads). */
  readonly intent: string | undefined;
  readonly kind: RequestKind;
}

export type Job =
  | {
      readonly type: 'chat';
      readonly tenant: string;
      /** System prompt (or none) and any fixed earlier messages (replayed workloads). */
      readonly preamble: readonly ChatMessage[];
      /** One turn, or several for a multi-turn conversation (sent one after another). */
      readonly turns: readonly TurnSpec[];
      readonly stream: boolean;
      readonly model?: string;
    }
  | { readonly type: 'event'; readonly name: 'pricing_changed'; readonly tenant: string };

export interface Workload {
  readonly name: string;
  readonly jobs: readonly Job[];
  /** Number of chat requests (turns), events excluded. */
  readonly requests: number;
  readonly tenants: readonly string[];
  /** Whether turns carry intent labels (wrong-hit checks need them). */
  readonly labelled: boolean;
}

export interface GenerateOptions {
  /** Chat requests to generate. @default 1500 */
  requests?: number;
  seed?: number;
  /** Share of requests sent with `stream: true`. @default 0.15 */
  streamShare?: number;
  /** Where the "pricing changed" event falls, as a share of the requests. @default 0.5 */
  eventAt?: number;
  /** Tenant whose prices change. @default 'acme' */
  eventTenant?: string;
}

const TENANT_SHARES: ReadonlyArray<[string, number]> = [
  ['acme', 0.6],
  ['globex', 0.4],
];

/** Small talk users wrap questions in: a different exact key, the same meaning. */
const REWORDINGS: ReadonlyArray<(q: string) => string> = [
  (q) => q.toLowerCase(),
  (q) => q.replace(/\?$/, ''),
  (q) => 'Hi, ' + q[0]!.toLowerCase() + q.slice(1),
  (q) => q + ' Thanks!',
  (q) => 'Quick question: ' + q[0]!.toLowerCase() + q.slice(1),
  (q) => 'Hello there! ' + q,
  (q) => 'Sorry, ' + q[0]!.toLowerCase() + q.slice(1),
  (q) => q.replace(/\?$/, ', please?'),
  (q) => q.replace(/\?$/, '??'),
  (q) => 'please help: ' + q.toLowerCase(),
];

const BOARDS = ['Marketing', 'Roadmap', 'Hiring', 'Support', 'Design', 'Finance', 'Website', 'Onboarding'];
const PEOPLE = ['Maria', 'Jonas', 'Aiko', 'Tomás', 'Priya', 'Olu', 'Sven', 'Lena'];
/** The long tail: questions outside the FAQ, near-identical in wording but about different things. */
const LONG_TAIL: ReadonlyArray<(r: Rng) => string> = [
  (r) => `Why was I charged twice on invoice INV-${1000 + r.int(9000)}?`,
  (r) => `Can you move task #${10 + r.int(990)} to the ${r.pick(BOARDS)} board?`,
  (r) => `Why can't ${r.pick(PEOPLE)} see the ${r.pick(BOARDS)} project?`,
  (r) => `Please add ${2 + r.int(30)} guests to the ${r.pick(BOARDS)} workspace.`,
];

/**
 * A support bot's day: FAQ intents with Zipf-like popularity, each asked in several wordings;
 * exact repeats, paraphrases, small-talk rewordings, look-alike questions that must not be
 * merged, a long tail of one-off questions, a few two-turn conversations, some streaming
 * requests, two tenants, and a mid-run "pricing changed" event.
 */
export function generateWorkload(options: GenerateOptions = {}): Workload {
  const total = options.requests ?? 1500;
  const rng = new Rng(options.seed ?? 42);
  const streamShare = options.streamShare ?? 0.15;
  const eventIndex = Math.floor(total * (options.eventAt ?? 0.5));
  const eventTenant = options.eventTenant ?? 'acme';
  const popularity = zipfWeights(INTENTS.length, 1.05);
  const seenText = new Set<string>();
  const seenIntent = new Set<string>();
  const recent: string[] = [];
  const jobs: Job[] = [];
  let n = 0;
  let eventDone = false;
  const system: ChatMessage = { role: 'system', content: SYSTEM_PROMPT };

  const kindOf = (tenant: string, text: string, intent: string, base: RequestKind): RequestKind => {
    const tk = tenant + '\n' + text;
    const ik = tenant + '\n' + intent;
    const kind: RequestKind = seenText.has(tk) ? 'repeat' : seenIntent.has(ik) ? base : 'first';
    seenText.add(tk);
    seenIntent.add(ik);
    return kind;
  };

  while (n < total) {
    if (!eventDone && n >= eventIndex) {
      jobs.push({ type: 'event', name: 'pricing_changed', tenant: eventTenant });
      eventDone = true;
    }
    const tenant = TENANT_SHARES[rng.weighted(TENANT_SHARES.map((t) => t[1]))]![0];
    const stream = rng.chance(streamShare);
    const roll = rng.next();
    if (roll < 0.05 && total - n >= 2) {
      // Two-turn conversation: the follow-up's words only make sense with the first turn.
      const follow = rng.pick(FOLLOW_UPS);
      const first = rng.pick(Object.keys(follow.resolves));
      const firstIntent = intentById(first)!;
      const t1 = firstIntent.phrasings[0]!;
      const t2 = rng.pick(follow.phrasings);
      const second = follow.resolves[first]!;
      jobs.push({
        type: 'chat',
        tenant,
        preamble: [system],
        stream,
        turns: [
          { text: t1, intent: first, kind: kindOf(tenant, t1, first, 'paraphrase') },
          { text: t2, intent: second, kind: 'follow-up' },
        ],
      });
      n += 2;
      continue;
    }
    if (roll < 0.16) {
      const text = rng.pick(LONG_TAIL)(rng);
      jobs.push({ type: 'chat', tenant, preamble: [system], stream, turns: [{ text, intent: questionId(text), kind: 'long-tail' }] });
      n++;
      continue;
    }
    let intent = INTENTS[rng.weighted(popularity)]!;
    let lookalike = false;
    if (roll < 0.26 && recent.length > 0) {
      // Ask the look-alike of something asked a moment ago: the case a loose semantic match gets wrong.
      const near = intentById(rng.pick(recent))!;
      if (near.lookalikes?.length) {
        intent = intentById(rng.pick(near.lookalikes))!;
        lookalike = true;
      }
    }
    const weights = intent.phrasings.map((_, i) => (i === 0 ? 3 : 1.5 / i));
    let text = intent.phrasings[rng.weighted(weights)]!;
    let base: RequestKind = 'paraphrase';
    if (rng.chance(0.25)) {
      text = rng.pick(REWORDINGS)(text);
      base = 'reworded';
    }
    let kind = kindOf(tenant, text, intent.id, base);
    if (lookalike && kind !== 'repeat') kind = 'lookalike';
    recent.push(intent.id);
    if (recent.length > 8) recent.shift();
    jobs.push({ type: 'chat', tenant, preamble: [system], stream, turns: [{ text, intent: intent.id, kind }] });
    n++;
  }
  return { name: `support-bot day (seed ${options.seed ?? 42})`, jobs, requests: n, tenants: TENANT_SHARES.map((t) => t[0]), labelled: true };
}

/**
 * Replays a JSONL file, one object per line:
 *   {"tenant":"acme","messages":[{"role":"user","content":"..."}],"stream":false,"intent":"optional-label"}
 *   {"prompt":"...", "system":"optional"}            (shorthand for one user turn)
 *   {"event":"pricing_changed","tenant":"acme"}      (purges that tenant's pricing answers)
 * Lines without `intent` are not checked for wrong semantic hits (there is no ground truth).
 */
export function loadWorkload(file: string): Workload {
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const jobs: Job[] = [];
  const tenants = new Set<string>();
  let labelled = true;
  let requests = 0;
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('//')) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(line) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${file}:${i + 1}: not valid JSON (${(error as Error).message})`);
    }
    const tenant = typeof o['tenant'] === 'string' && o['tenant'] !== '' ? o['tenant'] : 'default';
    if (o['event'] !== undefined) {
      if (o['event'] !== 'pricing_changed') throw new Error(`${file}:${i + 1}: unknown event ${JSON.stringify(o['event'])} (known: "pricing_changed")`);
      jobs.push({ type: 'event', name: 'pricing_changed', tenant });
      return;
    }
    let messages: ChatMessage[];
    if (Array.isArray(o['messages'])) messages = o['messages'] as ChatMessage[];
    else if (typeof o['prompt'] === 'string') {
      messages = [...(typeof o['system'] === 'string' ? [{ role: 'system' as const, content: o['system'] }] : []), { role: 'user', content: o['prompt'] }];
    } else throw new Error(`${file}:${i + 1}: needs "messages" (chat messages) or "prompt" (a string)`);
    const last = messages[messages.length - 1];
    if (last?.role !== 'user' || typeof last.content !== 'string') {
      throw new Error(`${file}:${i + 1}: the last message must be a user turn with string content`);
    }
    const intent = typeof o['intent'] === 'string' ? o['intent'] : undefined;
    if (intent === undefined) labelled = false;
    tenants.add(tenant);
    jobs.push({
      type: 'chat',
      tenant,
      preamble: messages.slice(0, -1),
      stream: o['stream'] === true,
      ...(typeof o['model'] === 'string' ? { model: o['model'] } : {}),
      turns: [{ text: last.content, intent, kind: 'replayed' }],
    });
    requests++;
  });
  if (requests === 0) throw new Error(`${file}: no requests in this workload file`);
  return { name: `replay of ${file}`, jobs, requests, tenants: [...tenants], labelled };
}
