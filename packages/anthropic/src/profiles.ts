import { type RequestProfile, type TokenUsage, chatSemanticSplit, defineProfile } from '@strata-cache/core';
import type { EndpointSpec, RecordedEvent } from './http-cache.js';

/**
 * `messages.create` / `messages.stream()`. Ignored (cannot change the answer): `stream`,
 * `metadata` (user id), `service_tier`. `system` (string or blocks), tools, `thinking`,
 * `tool_choice`, stop sequences and sampling parameters all count. The semantic text is the
 * last user turn when it is plain text; `system` and earlier turns must match exactly.
 */
export const anthropicMessagesProfile: RequestProfile = defineProfile({
  id: 'anthropic.messages',
  ignoredFields: ['service_tier'],
  semanticSplit: chatSemanticSplit,
  // Anthropic has no seed: only temperature 0 is a repeatable request. (Extended thinking
  // requires temperature 1, so cache those with policy 'always' if you want them cached.)
  isDeterministic: (r) => (r as { temperature?: unknown })?.temperature === 0,
  model: (r) => (typeof (r as { model?: unknown })?.model === 'string' ? (r as { model: string }).model : undefined),
});

/**
 * `cache_control` markers steer Anthropic's prompt cache, not the answer: drop them from the
 * fingerprint so adding a cache breakpoint does not invalidate Strata's entries.
 */
export function withoutCacheControl(body: Record<string, unknown>): Record<string, unknown> {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (k !== 'cache_control') out[k] = strip(x);
    return out;
  };
  const out: Record<string, unknown> = { ...body };
  for (const field of ['system', 'messages', 'tools']) if (field in out) out[field] = strip(out[field]);
  return out;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/**
 * Anthropic usage → core usage. Anthropic's `input_tokens` excludes prompt-cache reads and
 * writes, core's `inputTokens` includes them, so the three are added up.
 */
export function anthropicUsage(u: any): TokenUsage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const read = num(u.cache_read_input_tokens);
  const write = num(u.cache_creation_input_tokens);
  return {
    inputTokens: num(u.input_tokens) + read + write,
    outputTokens: num(u.output_tokens),
    ...(read > 0 ? { cachedInputTokens: read } : {}),
    ...(write > 0 ? { cacheWriteInputTokens: write } : {}),
  };
}

function parse(e: RecordedEvent): any {
  try {
    return JSON.parse(e.data);
  } catch {
    return undefined;
  }
}

/** Rebuilds the `message` object a non-streaming call would have returned from the stream's events. */
export function assembleMessage(events: readonly any[]): any {
  let message: any = null;
  const partialJson = new Map<number, string>();
  for (const e of events) {
    if (!e || typeof e !== 'object') continue;
    switch (e.type) {
      case 'message_start':
        message = { ...e.message, content: [...(e.message?.content ?? [])], usage: { ...(e.message?.usage ?? {}) } };
        break;
      case 'content_block_start':
        if (message) message.content[e.index] = structuredClone(e.content_block);
        break;
      case 'content_block_delta': {
        const block = message?.content[e.index];
        const d = e.delta ?? {};
        if (!block) break;
        if (d.type === 'text_delta') block.text = (block.text ?? '') + d.text;
        else if (d.type === 'thinking_delta') block.thinking = (block.thinking ?? '') + d.thinking;
        else if (d.type === 'signature_delta') block.signature = d.signature;
        else if (d.type === 'citations_delta') (block.citations ??= []).push(d.citation);
        else if (d.type === 'input_json_delta') partialJson.set(e.index, (partialJson.get(e.index) ?? '') + d.partial_json);
        break;
      }
      case 'content_block_stop': {
        const block = message?.content[e.index];
        const json = partialJson.get(e.index);
        if (block && json !== undefined) {
          try {
            block.input = json === '' ? {} : JSON.parse(json);
          } catch {
            block.input = json;
          }
        }
        break;
      }
      case 'message_delta':
        if (!message) break;
        Object.assign(message, e.delta ?? {});
        for (const [k, v] of Object.entries(e.usage ?? {})) if (v !== null && v !== undefined) message.usage[k] = v;
        break;
    }
  }
  return message;
}

export const messagesEndpoint: EndpointSpec = {
  path: '/messages',
  profile: anthropicMessagesProfile,
  streams: true,
  // The message rebuilt from the events is the object a non-streaming call returns.
  streamValueIsJsonBody: true,
  keyBody: withoutCacheControl,
  acceptBody: (body) => body?.type === 'message',
  usage: (body) => anthropicUsage(body?.usage),
  complete(events) {
    let stopped = false;
    for (const e of events) {
      const type = e.event ?? parse(e)?.type;
      if (type === 'error') return false;
      if (type === 'message_stop') stopped = true;
    }
    return stopped;
  },
  fromEvents(events) {
    const value = assembleMessage(events.map(parse));
    const usage = anthropicUsage(value?.usage);
    return { value, ...(usage ? { usage } : {}), ...(value?.model ? { model: value.model } : {}) };
  },
};
