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
