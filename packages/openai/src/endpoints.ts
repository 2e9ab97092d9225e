// biome-ignore-all lint/suspicious/noExplicitAny: provider wire JSON is untyped here; every field is checked before it is used
import { type EndpointSpec, type RecordedEvent, valuesAt } from '@strata-cache/http';
import { chatUsage, embeddingsUsage, openaiProfiles, responsesUsage } from './profiles.js';

/** An OpenAI endpoint this package can cache. */
export type CachedEndpoint = 'chat.completions' | 'responses' | 'embeddings';

export const CACHED_ENDPOINTS: readonly CachedEndpoint[] = Object.freeze(['chat.completions', 'responses', 'embeddings']);

function parse(e: RecordedEvent): any {
  if (e.data === '[DONE]') return undefined;
  try {
    return JSON.parse(e.data);
  } catch {
    return undefined;
  }
}

/**
 * True for an event the SDK fails on: one named `error`, or data that is not JSON (`[DONE]`
 * aside). A stream holding one is never a complete answer, however it ends.
 */
function failed(e: RecordedEvent, data: any): boolean {
  return e.event === 'error' || (e.data !== '[DONE]' && data === undefined);
}

const schemasAt =
  (...paths: string[]) =>
  (body: Record<string, unknown>): unknown[] =>
    paths.flatMap((p) => valuesAt(body, p));

/** Assembles the chunks of a chat completion stream into the equivalent `chat.completion` object. */
export function assembleChatCompletion(chunks: readonly any[]): any {
  const first = chunks.find((c) => c && typeof c === 'object');
  if (!first) return null;
  const choices = new Map<number, any>();
  let usage: unknown;
  for (const c of chunks) {
    if (!c || typeof c !== 'object') continue;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices ?? []) {
      let acc = choices.get(ch.index);
      if (!acc)
        choices.set(ch.index, (acc = { index: ch.index, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: null }));
      const d = ch.delta ?? {};
      if (d.role) acc.message.role = d.role;
      if (typeof d.content === 'string') acc.message.content = (acc.message.content ?? '') + d.content;
      if (typeof d.refusal === 'string') acc.message.refusal = (acc.message.refusal ?? '') + d.refusal;
      for (const tc of d.tool_calls ?? []) {
        const calls = (acc.message.tool_calls ??= []);
        let call = calls[tc.index];
        if (!call) calls[tc.index] = call = { id: tc.id, type: tc.type ?? 'function', function: { name: '', arguments: '' } };
        if (tc.id) call.id = tc.id;
        if (tc.function?.name) call.function.name += tc.function.name;
        if (tc.function?.arguments) call.function.arguments += tc.function.arguments;
      }
      if (ch.logprobs) acc.logprobs = ch.logprobs;
      if (ch.finish_reason) acc.finish_reason = ch.finish_reason;
    }
  }
  return {
    id: first.id,
    object: 'chat.completion',
    created: first.created,
    model: first.model,
    choices: [...choices.values()].sort((a, b) => a.index - b.index),
    ...(usage ? { usage } : {}),
    ...(first.system_fingerprint !== undefined ? { system_fingerprint: first.system_fingerprint } : {}),
    ...(first.service_tier !== undefined ? { service_tier: first.service_tier } : {}),
  };
}

/** Message fields a chat completion stream carries (not `audio`, nor a legacy `function_call`). */
const STREAMED_MESSAGE_FIELDS = new Set(['role', 'content', 'refusal', 'tool_calls', 'annotations']);

/**
 * The chunks of a stream carrying a stored `chat.completion` (see `EndpointSpec.eventsFromBody`),
 * as the API sends them: per choice, one chunk with the whole message and one with its finish
 * reason; a usage chunk when the request asks for one (`stream_options.include_usage`); `[DONE]`.
 * Undefined for a body a stream cannot carry (message audio, a legacy function call, annotations,
 * a tool call other than a function's, no usage for a request that asks for it).
 */
export function chatCompletionEvents(body: any, request: Record<string, unknown>): RecordedEvent[] | undefined {
  if (body?.object !== 'chat.completion' || !Array.isArray(body.choices)) return undefined;
  const includeUsage = (request['stream_options'] as any)?.include_usage === true;
  if (includeUsage && (typeof body.usage !== 'object' || body.usage === null)) return undefined;
  const head: any = { id: body.id, object: 'chat.completion.chunk', created: body.created, model: body.model };
  if (body.service_tier !== undefined) head.service_tier = body.service_tier;
  if (body.system_fingerprint !== undefined) head.system_fingerprint = body.system_fingerprint;
  // With include_usage every chunk says `usage: null` but the last.
  const tail = includeUsage ? { usage: null } : {};
  const chunks: any[] = [];
  for (const choice of body.choices) {
    const m = choice?.message;
    if (typeof choice?.index !== 'number' || typeof m !== 'object' || m === null) return undefined;
    for (const k of Object.keys(m)) if (!STREAMED_MESSAGE_FIELDS.has(k) && m[k] !== null && m[k] !== undefined) return undefined;
    if (Array.isArray(m.annotations) && m.annotations.length > 0) return undefined;
    const delta: any = { role: typeof m.role === 'string' ? m.role : 'assistant' };
    if (typeof m.content === 'string') delta.content = m.content;
    if (typeof m.refusal === 'string') delta.refusal = m.refusal;
    if (Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      const calls: any[] = [];
      for (const [index, tc] of m.tool_calls.entries()) {
        if (tc?.type !== 'function' || typeof tc.function?.name !== 'string' || typeof tc.function.arguments !== 'string') return undefined;
        calls.push({ index, id: tc.id, type: 'function', function: { name: tc.function.name, arguments: tc.function.arguments } });
      }
      delta.tool_calls = calls;
    }
    chunks.push({ ...head, choices: [{ index: choice.index, delta, logprobs: choice.logprobs ?? null, finish_reason: null }], ...tail });
    chunks.push({ ...head, choices: [{ index: choice.index, delta: {}, logprobs: null, finish_reason: choice.finish_reason ?? null }], ...tail });
  }
  if (includeUsage) chunks.push({ ...head, choices: [], usage: body.usage });
  return [...chunks.map((c) => ({ data: JSON.stringify(c), t: 0 })), { data: '[DONE]', t: 0 }];
}

/**
 * The events of a stream carrying a stored Responses API `response` (see
 * `EndpointSpec.eventsFromBody`), as the API sends them: `response.created`,
 * `response.in_progress`, per output item its `output_item.added`, its content (per text part
 * `content_part.added`, one `output_text.delta` with the whole text, `output_text.done`,
 * `content_part.done`; a refusal likewise; a function call's arguments in one delta) and
 * `output_item.done`, then `response.completed` or `response.incomplete` with the response
 * (without `billing`, which only non-stream bodies carry). Undefined for output a stream would
 * carry otherwise (reasoning, tool calls other than a function's, annotations): such a request
 * goes to the API.
 */
export function responseStreamEvents(body: any): RecordedEvent[] | undefined {
  if (body?.object !== 'response' || !Array.isArray(body.output)) return undefined;
  const final = body.status === 'completed' ? 'response.completed' : body.status === 'incomplete' ? 'response.incomplete' : undefined;
  if (final === undefined) return undefined;
  const { billing: _, ...response } = body;
  const events: any[] = [];
  const push = (type: string, payload: object) => events.push({ type, sequence_number: events.length, ...payload });
  const started = { ...response, status: 'in_progress', output: [], usage: null, incomplete_details: null };
  push('response.created', { response: started });
  push('response.in_progress', { response: started });
  for (const [output_index, item] of body.output.entries()) {
    if (typeof item !== 'object' || item === null || typeof item.id !== 'string') return undefined;
    const item_id = item.id;
    if (item.type === 'message' && Array.isArray(item.content)) {
      push('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } });
      for (const [content_index, part] of item.content.entries()) {
        const at = { item_id, output_index, content_index };
        if (part?.type === 'output_text' && typeof part.text === 'string') {
          if (Array.isArray(part.annotations) && part.annotations.length > 0) return undefined;
          const logprobs = Array.isArray(part.logprobs) ? part.logprobs : [];
          push('response.content_part.added', { ...at, part: { ...part, text: '', annotations: [], ...(part.logprobs ? { logprobs: [] } : {}) } });
          push('response.output_text.delta', { ...at, delta: part.text, logprobs });
          push('response.output_text.done', { ...at, text: part.text, logprobs });
        } else if (part?.type === 'refusal' && typeof part.refusal === 'string') {
          push('response.content_part.added', { ...at, part: { ...part, refusal: '' } });
          push('response.refusal.delta', { ...at, delta: part.refusal });
          push('response.refusal.done', { ...at, refusal: part.refusal });
        } else return undefined;
        push('response.content_part.done', { ...at, part });
      }
    } else if (item.type === 'function_call' && typeof item.arguments === 'string') {
      push('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', arguments: '' } });
      push('response.function_call_arguments.delta', { item_id, output_index, delta: item.arguments });
      push('response.function_call_arguments.done', { item_id, output_index, arguments: item.arguments });
    } else return undefined;
    push('response.output_item.done', { output_index, item });
  }
  push(final, { response });
  return events.map((e) => ({ event: e.type, data: JSON.stringify(e), t: 0 }));
}

const FINAL_RESPONSE_EVENTS = new Set(['response.completed', 'response.incomplete']);

/**
 * Why a Responses request is sent uncached: a background job (its answer is a queued job), a
 * request that continues a server-side `conversation` (each answer is appended to it, and a
 * replay would not be), or a stored `prompt` without a `version` (it follows whatever version
 * is current on the server).
 */
export function responsesUncachedReason(body: Record<string, unknown>): string | undefined {
  if (body['background'] === true) return 'background';
  if (body['conversation'] !== undefined && body['conversation'] !== null) return 'conversation';
  const prompt = body['prompt'] as { version?: unknown } | null | undefined;
  if (typeof prompt === 'object' && prompt !== null && (prompt.version === undefined || prompt.version === null)) return 'prompt-without-version';
  return undefined;
}

/** The endpoint specs of a client whose `reasoningModels` are `families`. */
export function openaiEndpoints(families: readonly string[]): Record<CachedEndpoint, EndpointSpec> {
  const profiles = openaiProfiles(families);
  const chat: EndpointSpec = {
    path: '/chat/completions',
    profile: profiles.chat,
    streams: true,
    schemas: schemasAt('response_format.json_schema.schema', 'tools.*.function.parameters'),
    usage: (body) => chatUsage(body?.usage),
    // A 200 that is not a chat completion (an error object some OpenAI-compatible proxies send
    // with status 200) is handed over, never stored.
    acceptBody: (body) => Array.isArray(body?.choices) && (body?.error === undefined || body?.error === null),
    complete(events) {
      // The stream ends with `data: [DONE]`; an `error` event or payload anywhere means it failed.
      if (events.length === 0 || events[events.length - 1]!.data !== '[DONE]') return false;
      return !events.some((e) => {
        const data = parse(e);
        return failed(e, data) || data?.error !== undefined;
      });
    },
    eventsFromBody: chatCompletionEvents,
    // With a usage chunk, the assembled stream is the body a non-stream request gets (its
    // message has no `annotations: []`), so the two forms share semantic entries.
    streamFormsShared: (request) => (request['stream_options'] as any)?.include_usage === true,
    fromEvents(events) {
      const value = assembleChatCompletion(events.map(parse).filter((c) => c !== undefined));
      const usage = chatUsage(value?.usage);
      return { value, ...(usage ? { usage } : {}), ...(value?.model ? { model: value.model } : {}) };
    },
  };
  const responses: EndpointSpec = {
    path: '/responses',
    profile: profiles.responses,
    streams: true,
    // The response in `response.completed` is the non-stream body except for fields the API adds
    // to non-stream bodies only (today `billing`): a non-stream hit served from a stream lacks them.
    streamValueIsJsonBody: true,
    eventsFromBody: responseStreamEvents,
    streamFormsShared: () => true,
    // Absent `store` means true: the two share entries, `store: false` gets its own.
    keyBody: (body) => ({ ...body, store: body['store'] !== false }),
    schemas: schemasAt('text.format.schema', 'tools.*.parameters'),
    uncachedReason: responsesUncachedReason,
    usage: (body) => responsesUsage(body?.usage),
    acceptBody: (body) => body?.status === 'completed' || body?.status === 'incomplete',
    complete(events) {
      let final = false;
      for (const e of events) {
        const data = parse(e);
        if (failed(e, data)) return false;
        const type = e.event ?? data?.type;
        if (type === 'error' || type === 'response.failed') return false;
        if (FINAL_RESPONSE_EVENTS.has(type)) final = true;
      }
      return final;
    },
    fromEvents(events) {
      let response: any = null;
      for (const e of events) {
        const d = parse(e);
        if (d && FINAL_RESPONSE_EVENTS.has(d.type)) response = d.response;
      }
      const usage = responsesUsage(response?.usage);
      return { value: response, ...(usage ? { usage } : {}), ...(response?.model ? { model: response.model } : {}) };
    },
  };
  const embeddings: EndpointSpec = {
    path: '/embeddings',
    profile: profiles.embeddings,
    streams: false,
    usage: (body) => embeddingsUsage(body?.usage),
    complete: () => false,
    fromEvents: () => ({ value: null }),
  };
  return { 'chat.completions': chat, responses, embeddings };
}
