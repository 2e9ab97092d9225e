import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TenantFacts, TENANTS, classify, intentById, questionId, tenantByProject } from './knowledge.js';
import { PrefixCache } from './prefix-cache.js';
import { Rng } from './rng.js';

/**
 * A local stand-in for the OpenAI API: `POST /v1/chat/completions`, JSON and SSE streaming, in
 * the documented wire format, with realistic latency (time to first token + per-token pacing),
 * token counts and provider-side prompt caching (`usage.prompt_tokens_details.cached_tokens`
 * for prompts of 1,024+ tokens whose prefix it has seen, in 128-token steps, like OpenAI; see
 * prefix-cache.ts).
 *
 * It plays a per-tenant deployment: the `OpenAI-Project` header picks the tenant whose facts it
 * answers from, and each answer ends with a reference line naming what it was written for
 * (tenant, intent, price-list generation). Every answer says it is simulated.
 */
export interface SimulatedProviderOptions {
  /** Multiplies every delay; 0 answers at once (tests). @default 1 */
  latencyScale?: number;
  /** Median time to first token, ms. @default 380 */
  ttftMs?: number;
  /** Time per output token, ms. @default 7 */
  msPerToken?: number;
  /** Seed of the latency jitter. @default 1 */
  seed?: number;
  /** Port; 0 picks a free one. @default 0 */
  port?: number;
}

export interface SimulatedCall {
  readonly id: string;
  readonly tenant: string;
  readonly intent: string;
  readonly generation: number;
  readonly stream: boolean;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  /** Prompt tokens written to the provider's cache (Anthropic breakpoints). */
  readonly cacheWriteTokens?: number;
  readonly completionTokens: number;
}

export interface SimulatedProviderStats {
  calls: number;
  streamed: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

/** What the reference line of an answer says (parsed back by the run's ground-truth check). */
export interface AnswerRef {
  readonly tenant: string;
  readonly intent: string;
  readonly generation: number;
}

const REF_RE = /\[simulated answer · ref ([^/\]\s]+)\/([^/\]\s]+)\/p(\d+)\]/;

export function parseAnswerRef(text: string): AnswerRef | undefined {
  const m = REF_RE.exec(text);
  return m ? { tenant: m[1]!, intent: m[2]!, generation: Number(m[3]) } : undefined;
}

/** Rough BPE token count (≈ 4 characters per token for English). */
export function estimateTokens(text: string): number {
  return Math.max(1, Math.round(text.length / 4));
}

export class SimulatedProvider {
  readonly calls: SimulatedCall[] = [];
  readonly stats: SimulatedProviderStats = { calls: 0, streamed: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0 };
  private server: Server | undefined;
  private readonly generations = new Map<string, number>();
  private readonly prefixes = new PrefixCache();
  private readonly rng: Rng;
  private readonly scale: number;
  private readonly ttftMs: number;
  private readonly msPerToken: number;
  private readonly port: number;
  private counter = 0;
  private readonly sockets = new Set<import('node:net').Socket>();
  url = '';

  constructor(options: SimulatedProviderOptions = {}) {
    this.scale = options.latencyScale ?? 1;
    this.ttftMs = options.ttftMs ?? 380;
    this.msPerToken = options.msPerToken ?? 7;
    this.rng = new Rng(options.seed ?? 1);
    this.port = options.port ?? 0;
    for (const t of TENANTS) this.generations.set(t.id, 1);
  }

  /** Price-list generation the provider currently answers a tenant's pricing questions from (1-based). */
  generation(tenant: string): number {
    return this.generations.get(tenant) ?? 1;
  }

  /** The tenant's prices change: answers written from now on quote the next price list (the last one repeats). */
  changePricing(tenant: string): number {
    const next = this.generation(tenant) + 1;
    this.generations.set(tenant, next);
    return next;
  }

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: String(error), type: 'server_error' } }));
      });
    });
    this.server.keepAliveTimeout = 30_000;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}/v1`;
    return this.url;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    const s = this.server;
    this.server = undefined;
    for (const sock of this.sockets) sock.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/v1/models') {
      return json(res, 200, { object: 'list', data: [{ id: 'gpt-4o', object: 'model', created: 0, owned_by: 'simulated' }] });
    }
    if (req.method === 'POST' && url.pathname === '/v1/messages') return this.handleMessages(req, res);
    if (req.method !== 'POST' || url.pathname !== '/v1/chat/completions') {
      return json(res, 404, { error: { message: `simulated provider: no route ${req.method} ${url.pathname}`, type: 'invalid_request_error' } });
    }
    const body = JSON.parse(await readBody(req)) as ChatBody;
    if (!Array.isArray(body.messages) || typeof body.model !== 'string') {
      return json(res, 400, { error: { message: 'messages and model are required', type: 'invalid_request_error', param: 'messages' } });
    }
    const tenant = tenantByProject(header(req, 'openai-project') ?? header(req, 'x-sim-project'));
    const { text, intent, generation } = this.answer(tenant, body.messages);

    const toolTokens = body.tools?.length ? estimateTokens(JSON.stringify(body.tools)) : 0;
    const promptTokens = 3 + toolTokens + body.messages.reduce((n, m) => n + 4 + estimateTokens(contentText(m.content)), 0);
    // The API puts the tools first, then the messages in order.
    const parts = [...(body.tools?.length ? [JSON.stringify(body.tools)] : []), ...body.messages.map((m) => `${m.role}: ${contentText(m.content)}`)];
    const cachedTokens = Math.min(promptTokens, this.prefixes.automatic(tenant.project, parts));
    const completionTokens = estimateTokens(text);
    const id = `chatcmpl-sim${(++this.counter).toString(36).padStart(5, '0')}${this.rng.hex(8)}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: cachedTokens, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    const stream = body.stream === true;
    this.calls.push({ id, tenant: tenant.id, intent, generation, stream, promptTokens, cachedTokens, completionTokens });
    this.stats.calls++;
    if (stream) this.stats.streamed++;
    this.stats.promptTokens += promptTokens;
    this.stats.cachedTokens += cachedTokens;
    this.stats.completionTokens += completionTokens;

    const ttft = this.scale * this.ttftMs * this.rng.logNormal(0, 0.35);
    const base = { id, created, model: body.model, system_fingerprint: 'fp_simulated', service_tier: 'default' };
    if (!stream) {
      await sleep(ttft + this.scale * this.msPerToken * completionTokens);
      return json(res, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
        usage,
      });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': id });
    const send = (payload: unknown) => res.write(`data: ${JSON.stringify(payload)}\n\n`);
    const chunk = (delta: Record<string, unknown>, finish: string | null) => ({
      ...base,
      object: 'chat.completion.chunk',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(body.stream_options?.include_usage ? { usage: null } : {}),
    });
    await sleep(ttft);
    send(chunk({ role: 'assistant', content: '', refusal: null }, null));
    const pieces = text.match(/\S+\s*/g) ?? [text];
    for (let i = 0; i < pieces.length; i += 3) {
      const part = pieces.slice(i, i + 3).join('');
      await sleep(this.scale * this.msPerToken * estimateTokens(part));
      if (res.destroyed) return;
      send(chunk({ content: part }, null));
    }
    send(chunk({}, 'stop'));
    if (body.stream_options?.include_usage) send({ ...base, object: 'chat.completion.chunk', choices: [], usage });
    res.end('data: [DONE]\n\n');
  }

  /**
   * Anthropic Messages API (`POST /v1/messages`), JSON and SSE, for `--api anthropic`. Prompt
   * caching follows Anthropic's: explicit `cache_control` breakpoints on tools, system blocks and
   * message blocks; a new prefix is written (`cache_creation_input_tokens`), one seen before is
   * read (`cache_read_input_tokens`), and `input_tokens` counts only the rest.
   */
  private async handleMessages(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse(await readBody(req)) as MessagesBody;
    if (!Array.isArray(body.messages) || typeof body.model !== 'string' || typeof body.max_tokens !== 'number') {
      return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'model, max_tokens and messages are required' } });
    }
    const tenant = tenantByProject(header(req, 'x-sim-project'));
    const systemBlocks = typeof body.system === 'string' ? [{ type: 'text', text: body.system }] : (body.system ?? []);
    const systemText = systemBlocks.map((b) => b.text).join('\n');
    const { text, intent, generation } = this.answer(tenant, [
      ...(systemText ? [{ role: 'system', content: systemText }] : []),
      ...body.messages.map((m) => ({ role: m.role, content: m.content })),
    ]);
    const toolTokens = body.tools?.length ? estimateTokens(JSON.stringify(body.tools)) : 0;
    const total = 3 + toolTokens + estimateTokens(systemText) + body.messages.reduce((n, m) => n + 4 + estimateTokens(contentText(m.content)), 0);
    // Anthropic caches tools, then system, then messages, up to the blocks marked `cache_control`.
    const blocks = [
      ...(body.tools ?? []).map((t) => ({ text: JSON.stringify(t), breakpoint: t.cache_control != null })),
      ...systemBlocks.map((b) => ({ text: b.text, breakpoint: b.cache_control != null })),
      ...body.messages.flatMap((m) =>
        Array.isArray(m.content)
          ? (m.content as Array<{ text?: unknown; cache_control?: unknown }>).map((b) => ({
              text: `${m.role}: ${typeof b.text === 'string' ? b.text : JSON.stringify(b)}`,
              breakpoint: b.cache_control != null,
            }))
          : [{ text: `${m.role}: ${contentText(m.content)}`, breakpoint: false }],
      ),
    ];
    const cached = this.prefixes.breakpoints(`anthropic:${tenant.id}`, blocks);
    const cacheRead = Math.min(total, cached.read);
    const cacheWrite = Math.min(total - cacheRead, cached.write);
    const outputTokens = estimateTokens(text);
    const id = `msg_sim${(++this.counter).toString(36).padStart(5, '0')}${this.rng.hex(12)}`;
    const usage = {
      input_tokens: total - cacheRead - cacheWrite,
      output_tokens: outputTokens,
      cache_creation_input_tokens: cacheWrite,
      cache_read_input_tokens: cacheRead,
    };
    const stream = body.stream === true;
    this.calls.push({
      id,
      tenant: tenant.id,
      intent,
      generation,
      stream,
      promptTokens: total,
      cachedTokens: cacheRead,
      cacheWriteTokens: cacheWrite,
      completionTokens: outputTokens,
    });
    this.stats.calls++;
    if (stream) this.stats.streamed++;
    this.stats.promptTokens += total;
    this.stats.cachedTokens += cacheRead;
    this.stats.completionTokens += outputTokens;
    const ttft = this.scale * this.ttftMs * this.rng.logNormal(0, 0.35);
    const message = {
      id,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: [{ type: 'text', text }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage,
    };
    if (!stream) {
      await sleep(ttft + this.scale * this.msPerToken * outputTokens);
      res.setHeader('request-id', `req_sim_${id}`);
      return json(res, 200, message);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'request-id': `req_sim_${id}`,
    });
    const send = (event: string, payload: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(payload)}\n\n`);
    await sleep(ttft);
    send('message_start', { type: 'message_start', message: { ...message, content: [], stop_reason: null, usage: { ...usage, output_tokens: 1 } } });
    send('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
    send('ping', { type: 'ping' });
    const pieces = text.match(/\S+\s*/g) ?? [text];
    for (let i = 0; i < pieces.length; i += 3) {
      const part = pieces.slice(i, i + 3).join('');
      await sleep(this.scale * this.msPerToken * estimateTokens(part));
      if (res.destroyed) return;
      send('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: part } });
    }
    send('content_block_stop', { type: 'content_block_stop', index: 0 });
    send('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: outputTokens } });
    send('message_stop', { type: 'message_stop' });
    res.end();
  }

  private answer(tenant: TenantFacts, messages: ChatBody['messages']): { text: string; intent: string; generation: number } {
    const users = messages.filter((m) => m.role === 'user').map((m) => contentText(m.content));
    const last = users[users.length - 1] ?? '';
    const intentId = classify(last, users.slice(0, -1));
    const intent = intentId ? intentById(intentId) : undefined;
    const generation = this.generation(tenant.id);
    const prices = tenant.prices[Math.min(generation, tenant.prices.length) - 1]!;
    if (!intent) {
      const q = questionId(last);
      return {
        text: `I could not find that in the ${tenant.company} knowledge base, so I will pass your question to a human agent.\n[simulated answer · ref ${tenant.id}/${q}/p${generation}]`,
        intent: q,
        generation,
      };
    }
    return { text: `${intent.answer(tenant, prices)}\n[simulated answer · ref ${tenant.id}/${intent.id}/p${generation}]`, intent: intent.id, generation };
  }
}

interface MessagesBody {
  model: string;
  max_tokens: number;
  system?: string | Array<{ type: string; text: string; cache_control?: unknown }>;
  tools?: Array<{ cache_control?: unknown }>;
  messages: Array<{ role: string; content: unknown }>;
  stream?: boolean;
}

interface ChatBody {
  model: string;
  messages: Array<{ role: string; content: unknown }>;
  tools?: unknown[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
}

function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === 'object' && p && 'text' in p ? String((p as { text: unknown }).text) : '')).join('\n');
  return '';
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function json(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
    req.on('error', reject);
  });
}

function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((r) => setTimeout(r, ms));
}
