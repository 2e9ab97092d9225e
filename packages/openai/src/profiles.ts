import { type RequestProfile, type SemanticSplit, type TokenUsage, chatSemanticSplit, defineProfile, messageText, samplingIsDeterministic } from '@strata-cache/core';
import type { EndpointSpec, RecordedEvent } from './http-cache.js';

const modelOf = (r: unknown) => (typeof (r as { model?: unknown })?.model === 'string' ? (r as { model: string }).model : undefined);

/**
 * `chat.completions.create`. Ignored (cannot change the answer): stream flags, user ids,
 * metadata, `store`, `service_tier`, prompt-cache hints. Everything else counts, including
 * `n`, tools, `response_format`, `seed`, `logprobs`.
 */
export const openaiChatProfile: RequestProfile = defineProfile({
  id: 'openai.chat',
  ignoredFields: ['service_tier', 'prompt_cache_retention'],
  semanticSplit: chatSemanticSplit,
  isDeterministic: samplingIsDeterministic,
  model: modelOf,
});

/** Last user turn of a Responses API `input` (a string, or an item list ending in a user message). */
export function responsesSemanticSplit(request: unknown): SemanticSplit | undefined {
  if (typeof request !== 'object' || request === null) return undefined;
  const req = request as Record<string, unknown>;
  const input = req['input'];
  const { input: _i, ...rest } = req;
  if (typeof input === 'string') return input.trim() === '' ? undefined : { text: input, context: rest };
  if (!Array.isArray(input) || input.length === 0) return undefined;
  const last = input[input.length - 1] as { role?: unknown; type?: unknown; content?: unknown };
  if (typeof last !== 'object' || last === null || last.role !== 'user' || (last.type !== undefined && last.type !== 'message')) return undefined;
  const text = messageText(last.content);
  if (text === undefined || text.trim() === '') return undefined;
  return { text, context: { ...rest, input: input.slice(0, -1), lastTurn: { ...last, content: undefined } } };
}

/** `responses.create`. `background` requests are never cached (their answer is a queued job). */
export const openaiResponsesProfile: RequestProfile = defineProfile({
  id: 'openai.responses',
  ignoredFields: ['service_tier', 'prompt_cache_retention'],
  semanticSplit: responsesSemanticSplit,
  isDeterministic: (r) => (r as { temperature?: unknown })?.temperature === 0,
  model: modelOf,
});

/** `embeddings.create`: exact matching only; always deterministic. `encoding_format` counts (it changes the body). */
export const openaiEmbeddingsProfile: RequestProfile = defineProfile({
  id: 'openai.embeddings',
  isDeterministic: () => true,
  model: modelOf,
});

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Chat Completions usage → core usage (cached_tokens are part of prompt_tokens). */
export function chatUsage(u: any): TokenUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const cached = num(u.prompt_tokens_details?.cached_tokens);
  return { inputTokens: num(u.prompt_tokens), outputTokens: num(u.completion_tokens), ...(cached > 0 ? { cachedInputTokens: cached } : {}) };
}

/** Responses API usage → core usage. */
export function responsesUsage(u: any): TokenUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const cached = num(u.input_tokens_details?.cached_tokens);
  return { inputTokens: num(u.input_tokens), outputTokens: num(u.output_tokens), ...(cached > 0 ? { cachedInputTokens: cached } : {}) };
}

function parse(e: RecordedEvent): any {
  if (e.data === '[DONE]') return undefined;
  try {
    return JSON.parse(e.data);
  } catch {
    return undefined;
  }
}

/** Assembles the chunks of a chat completion stream into the equivalent `chat.completion` object. */
export function assembleChatCompletion(chunks: readonly any[]): any {
  const first = chunks.find((c) => c && typeof c === 'object');
  if (!first) return null;
  const choices = new Map<number, any>();
  let usage: unknown = undefined;
  for (const c of chunks) {
    if (!c || typeof c !== 'object') continue;
    if (c.usage) usage = c.usage;
    for (const ch of c.choices ?? []) {
      let acc = choices.get(ch.index);
      if (!acc) choices.set(ch.index, (acc = { index: ch.index, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: null }));
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

export const chatEndpoint: EndpointSpec = {
  path: '/chat/completions',
  profile: openaiChatProfile,
  streams: true,
  usage: (body) => chatUsage(body?.usage),
  complete(events) {
    // The stream ends with `data: [DONE]`; an `error` payload anywhere means it failed.
    if (events.length === 0 || events[events.length - 1]!.data !== '[DONE]') return false;
    return !events.some((e) => e.data !== '[DONE]' && parse(e)?.error !== undefined);
  },
  fromEvents(events) {
    const chunks = events.map(parse).filter((c) => c !== undefined);
    const value = assembleChatCompletion(chunks);
    const usage = chatUsage(value?.usage);
    return { value, ...(usage ? { usage } : {}), ...(value?.model ? { model: value.model } : {}) };
  },
};

const FINAL_RESPONSE_EVENTS = new Set(['response.completed', 'response.incomplete']);

export const responsesEndpoint: EndpointSpec = {
  path: '/responses',
  profile: openaiResponsesProfile,
  streams: true,
  // The response carried by response.completed is the object a non-streaming call returns.
  streamValueIsJsonBody: true,
  usage: (body) => responsesUsage(body?.usage),
  acceptRequest: (body) => body['background'] !== true,
  acceptBody: (body) => body?.status === 'completed' || body?.status === 'incomplete',
  complete(events) {
    let final = false;
    for (const e of events) {
      const type = e.event ?? parse(e)?.type;
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

export const embeddingsEndpoint: EndpointSpec = {
  path: '/embeddings',
  profile: openaiEmbeddingsProfile,
  streams: false,
  usage: (body) => (body?.usage ? { inputTokens: num(body.usage.prompt_tokens), outputTokens: 0 } : undefined),
  complete: () => false,
  fromEvents: () => ({ value: null }),
};
