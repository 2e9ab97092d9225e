import { type Handler, type ProviderServer, type Reply, type SseEvent, type StartServerOptions, json, sse, startServer } from './server.js';
import { fakeTokens, lastUserText, words } from './text.js';

/** How the fake OpenAI server answers. */
export interface OpenAIServerOptions {
  /** Delay before each response, ms (simulated model latency). @default 0 */
  latencyMs?: number;
  /** Delay between SSE events, ms. @default 0 */
  intervalMs?: number;
  /** Reported as usage.prompt_tokens_details.cached_tokens (provider prompt cache). @default 0 */
  cachedTokens?: number;
  /** Prefix of every answer text. @default 'Echo: ' */
  answerPrefix?: string;
}

interface ChatRequest {
  model?: string;
  messages?: Array<{ role: string; content?: unknown }>;
  tools?: Array<{ type: string; function?: { name: string } }>;
  n?: number;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  response_format?: { type: string };
}

/** What the fake assistant says or calls for a chat request. Deterministic in the request. */
function planChat(req: ChatRequest, o: OpenAIServerOptions) {
  const text = lastUserText(req.messages) ?? '';
  const last = req.messages?.[req.messages.length - 1];
  const tool = req.tools?.find((t) => t.type === 'function')?.function?.name;
  if (tool && last?.role !== 'tool') {
    return { kind: 'tool' as const, name: tool, args: JSON.stringify({ query: text, unit: 'celsius' }) };
  }
  if (req.response_format?.type === 'json_schema' || req.response_format?.type === 'json_object') {
    return { kind: 'text' as const, content: JSON.stringify({ answer: (o.answerPrefix ?? 'Echo: ') + text }) };
  }
  return { kind: 'text' as const, content: (o.answerPrefix ?? 'Echo: ') + text };
}

function chatUsage(req: ChatRequest, completion: string, o: OpenAIServerOptions) {
  const prompt = fakeTokens(JSON.stringify(req.messages ?? []));
  const out = fakeTokens(completion) * (req.n ?? 1);
  return {
    prompt_tokens: prompt,
    completion_tokens: out,
    total_tokens: prompt + out,
    prompt_tokens_details: { cached_tokens: Math.min(o.cachedTokens ?? 0, prompt), audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

/** A `chat.completion` object for the request (`id` carries the call index). */
export function chatCompletion(req: ChatRequest, index: number, o: OpenAIServerOptions = {}) {
  const plan = planChat(req, o);
  const n = req.n ?? 1;
  const message =
    plan.kind === 'tool'
      ? {
          role: 'assistant',
          content: null,
          refusal: null,
          annotations: [],
          tool_calls: [{ id: `call_${index}_0`, type: 'function', function: { name: plan.name, arguments: plan.args } }],
        }
      : { role: 'assistant', content: plan.content, refusal: null, annotations: [] };
  return {
    id: `chatcmpl-${index}`,
    object: 'chat.completion',
    created: 1_700_000_000 + index,
    model: req.model ?? 'gpt-4o-mini',
    choices: Array.from({ length: n }, (_, i) => ({
      index: i,
      message,
      logprobs: null,
      finish_reason: plan.kind === 'tool' ? 'tool_calls' : 'stop',
    })),
    usage: chatUsage(req, plan.kind === 'tool' ? plan.args : plan.content, o),
    service_tier: 'default',
    system_fingerprint: 'fp_test',
  };
}

/** The `chat.completion.chunk` SSE stream for the request, ending with `data: [DONE]`. */
export function chatCompletionChunks(req: ChatRequest, index: number, o: OpenAIServerOptions = {}): SseEvent[] {
  const plan = planChat(req, o);
  const n = req.n ?? 1;
  const base = {
    id: `chatcmpl-${index}`,
    object: 'chat.completion.chunk',
    created: 1_700_000_000 + index,
    model: req.model ?? 'gpt-4o-mini',
    service_tier: 'default',
    system_fingerprint: 'fp_test',
  };
  const includeUsage = req.stream_options?.include_usage === true;
  const chunk = (choice: object) => ({ data: { ...base, choices: [choice], ...(includeUsage ? { usage: null } : {}) } });
  const events: SseEvent[] = [];
  for (let c = 0; c < n; c++) {
    if (plan.kind === 'tool') {
      events.push(
        chunk({
          index: c,
          delta: {
            role: 'assistant',
            content: null,
            tool_calls: [{ index: 0, id: `call_${index}_0`, type: 'function', function: { name: plan.name, arguments: '' } }],
            refusal: null,
          },
          logprobs: null,
          finish_reason: null,
        }),
      );
      for (const piece of split(plan.args, 7))
        events.push(chunk({ index: c, delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, logprobs: null, finish_reason: null }));
      events.push(chunk({ index: c, delta: {}, logprobs: null, finish_reason: 'tool_calls' }));
    } else {
      events.push(chunk({ index: c, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }));
      for (const w of words(plan.content)) events.push(chunk({ index: c, delta: { content: w }, logprobs: null, finish_reason: null }));
      events.push(chunk({ index: c, delta: {}, logprobs: null, finish_reason: 'stop' }));
    }
  }
  if (includeUsage) events.push({ data: { ...base, choices: [], usage: chatUsage(req, plan.kind === 'tool' ? plan.args : plan.content, o) } });
  events.push({ data: '[DONE]' });
  return events;
}

interface ResponsesRequest {
  model?: string;
  input?: unknown;
  instructions?: string;
  stream?: boolean;
}

function responsesText(req: ResponsesRequest, o: OpenAIServerOptions): string {
  const input = typeof req.input === 'string' ? req.input : (lastUserText(req.input as never) ?? '');
  return (o.answerPrefix ?? 'Echo: ') + input;
}

/** A Responses API `response` object (status completed). */
export function response(req: ResponsesRequest, index: number, o: OpenAIServerOptions = {}, status: 'completed' | 'in_progress' = 'completed') {
  const text = responsesText(req, o);
  const prompt = fakeTokens(JSON.stringify(req.input ?? ''));
  const out = fakeTokens(text);
  const done = status === 'completed';
  return {
    id: `resp_${index}`,
    object: 'response',
    created_at: 1_700_000_000 + index,
    status,
    error: null,
    incomplete_details: null,
    instructions: req.instructions ?? null,
    model: req.model ?? 'gpt-4o-mini',
    output: done
      ? [
          {
            id: `msg_${index}`,
            type: 'message',
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
          },
        ]
      : [],
    parallel_tool_calls: true,
    temperature: 0,
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    text: { format: { type: 'text' } },
    usage: done
      ? {
          input_tokens: prompt,
          input_tokens_details: { cached_tokens: Math.min(o.cachedTokens ?? 0, prompt) },
          output_tokens: out,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: prompt + out,
        }
      : null,
  };
}

/**
 * The body of a non-streaming `responses.create`: the response object plus the fields the API
 * adds only to non-stream bodies (`billing`), which the `response.completed` event does not carry.
 */
export function responseBody(req: ResponsesRequest, index: number, o: OpenAIServerOptions = {}) {
  return { ...response(req, index, o), billing: { payer: 'developer' } };
}

/** The Responses API SSE stream: response.created … response.output_text.delta … response.completed. */
export function responseEvents(req: ResponsesRequest, index: number, o: OpenAIServerOptions = {}): SseEvent[] {
  const text = responsesText(req, o);
  const itemId = `msg_${index}`;
  const events: SseEvent[] = [];
  let seq = 0;
  const push = (type: string, payload: object) => events.push({ event: type, data: { type, sequence_number: seq++, ...payload } });
  push('response.created', { response: response(req, index, o, 'in_progress') });
  push('response.in_progress', { response: response(req, index, o, 'in_progress') });
  push('response.output_item.added', { output_index: 0, item: { id: itemId, type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
  push('response.content_part.added', {
    item_id: itemId,
    output_index: 0,
    content_index: 0,
    part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
  });
  for (const w of words(text)) push('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta: w, logprobs: [] });
  push('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text, logprobs: [] });
  const part = { type: 'output_text', text, annotations: [], logprobs: [] };
  push('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part });
  push('response.output_item.done', { output_index: 0, item: { id: itemId, type: 'message', status: 'completed', role: 'assistant', content: [part] } });
  push('response.completed', { response: response(req, index, o, 'completed') });
  return events;
}

interface EmbeddingsRequest {
  model?: string;
  input?: string | string[];
  dimensions?: number;
  encoding_format?: 'float' | 'base64';
}

/**
 * A deterministic unit vector for a text: a hashed bag of words, so texts sharing words are
 * similar. Good enough to exercise similarity code; not a language model.
 */
export function fakeEmbedding(text: string, dimensions: number): Float32Array {
  const v = new Float32Array(dimensions);
  for (const w of text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean)) {
    let h = 2166136261;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w.charCodeAt(i), 16777619);
    const a = (h >>> 0) % dimensions;
    const b = ((h >>> 0) * 31 + 7) % dimensions;
    v[a] = v[a]! + 1;
    v[b] = v[b]! + 0.5;
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  for (let i = 0; i < v.length; i++) v[i]! /= norm;
  return v;
}

/** An `embeddings.create` list response (float or base64 encoding, as requested). */
export function embeddings(req: EmbeddingsRequest) {
  const inputs = Array.isArray(req.input) ? req.input : [req.input ?? ''];
  const dims = req.dimensions ?? 1536;
  return {
    object: 'list',
    data: inputs.map((text, i) => {
      const v = fakeEmbedding(String(text), dims);
      const embedding = req.encoding_format === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v);
      return { object: 'embedding', index: i, embedding };
    }),
    model: req.model ?? 'text-embedding-3-small',
    usage: { prompt_tokens: inputs.reduce((s, t) => s + fakeTokens(String(t)), 0), total_tokens: inputs.reduce((s, t) => s + fakeTokens(String(t)), 0) },
  };
}

/** Routes `/chat/completions`, `/responses` and `/embeddings` (JSON or SSE by `stream`). */
export function openAIHandler(o: OpenAIServerOptions = {}): Handler {
  return (req, index): Reply => {
    const headers = { 'x-request-id': `req_${index}`, 'openai-organization': 'org-server-side', 'openai-processing-ms': '1' };
    const body = (req.body ?? {}) as Record<string, unknown>;
    const timing = { ...(o.latencyMs ? { delayMs: o.latencyMs } : {}), ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}) };
    if (req.path.endsWith('/chat/completions')) {
      return body['stream'] ? sse(chatCompletionChunks(body, index, o), { headers, ...timing }) : json(chatCompletion(body, index, o), { headers, ...timing });
    }
    if (req.path.endsWith('/responses')) {
      return body['stream'] ? sse(responseEvents(body, index, o), { headers, ...timing }) : json(responseBody(body, index, o), { headers, ...timing });
    }
    if (req.path.endsWith('/embeddings')) return json(embeddings(body), { headers, ...timing });
    return json({ error: { message: `no route ${req.path}`, type: 'invalid_request_error', code: null, param: null } }, { status: 404, headers });
  };
}

/** A fake OpenAI API on a free local port; give `server.baseURL` to the SDK. */
export function startOpenAIServer(options: OpenAIServerOptions & StartServerOptions = {}): Promise<ProviderServer> {
  const { prefix, port, host, ...o } = options;
  return startServer(openAIHandler(o), { prefix: prefix ?? '/v1', ...(port !== undefined ? { port } : {}), ...(host ? { host } : {}) });
}

/** OpenAI's error body shape, for `httpError(status, openAIError(...))`. */
export function openAIError(message: string, type = 'server_error', code: string | null = null) {
  return { error: { message, type, param: null, code } };
}

function split(s: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += size) out.push(s.slice(i, i + size));
  return out;
}
