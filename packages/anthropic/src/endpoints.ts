// biome-ignore-all lint/suspicious/noExplicitAny: provider wire JSON is untyped here; every field is checked before it is used
import { type EndpointSpec, type RecordedEvent, valuesAt } from '@strata-cache/http';
import { anthropicProfile, anthropicUsage, withoutCacheControl } from './profiles.js';

function parse(e: RecordedEvent): any {
  try {
    return JSON.parse(e.data);
  } catch {
    return undefined;
  }
}

// `message_delta` fields that describe the delta itself, not the message.
const DELTA_EVENT_FIELDS = new Set(['type', 'delta', 'usage']);

/**
 * Rebuilds the `message` object a non-streaming call would have returned from the stream's
 * events, accumulating the way the SDK's own message stream does: compaction blocks get their
 * content, `context_management` and other message-level fields of `message_delta` are kept,
 * and a `fallback` block's target is the model that answered. Null for a stream the SDK would
 * reject (no `message_start`, or a second one).
 */
export function assembleMessage(events: readonly any[]): any {
  let message: any = null;
  const partialJson = new Map<number, string>();
  for (const e of events) {
    if (!e || typeof e !== 'object') continue;
    if (e.type === 'message_start') {
      if (message) return null; // two messages in one stream: the SDK throws on it
      message = { ...e.message, content: [...(e.message?.content ?? [])], usage: { ...(e.message?.usage ?? {}) } };
      continue;
    }
    if (!message) continue;
    switch (e.type) {
      case 'content_block_start':
        message.content[e.index] = structuredClone(e.content_block);
        // The fallback block names the model producing what follows: the model that answered.
        if (e.content_block?.type === 'fallback' && typeof e.content_block.to?.model === 'string') message.model = e.content_block.to.model;
        break;
      case 'content_block_delta': {
        const block = message.content[e.index];
        const d = e.delta ?? {};
        if (!block) break;
        if (d.type === 'text_delta') block.text = (block.text ?? '') + d.text;
        else if (d.type === 'thinking_delta') block.thinking = (block.thinking ?? '') + d.thinking;
        else if (d.type === 'signature_delta') block.signature = d.signature;
        else if (d.type === 'citations_delta') (block.citations ??= []).push(d.citation);
        else if (d.type === 'input_json_delta') partialJson.set(e.index, (partialJson.get(e.index) ?? '') + d.partial_json);
        else if (d.type === 'compaction_delta') {
          // The delta carries the block's final value (null content: the compaction failed).
          block.content = d.content;
          if ('encrypted_content' in d) block.encrypted_content = d.encrypted_content;
        }
        break;
      }
      case 'content_block_stop': {
        const block = message.content[e.index];
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
        for (const [k, v] of Object.entries(e.delta ?? {})) if (!(k === 'container' && v == null)) message[k] = v;
        for (const [k, v] of Object.entries(e)) if (!DELTA_EVENT_FIELDS.has(k) && v !== null && v !== undefined) message[k] = v;
        for (const [k, v] of Object.entries(e.usage ?? {})) if (v !== null && v !== undefined) message.usage[k] = v;
        break;
    }
  }
  return message;
}

/** Content blocks whose `input` a stream sends as JSON deltas. */
const INPUT_BLOCKS = new Set(['tool_use', 'server_tool_use']);

/**
 * The events of a stream carrying a stored `message` (see `EndpointSpec.eventsFromBody`), in the
 * API's order: `message_start`, per content block its start, deltas (the whole text, thinking,
 * signature, citations or tool input at once) and stop, `message_delta` with the stop reason
 * and output tokens, `message_stop`. Blocks a stream sends whole (tool results, redacted
 * thinking, compaction) start with their content. Undefined for a body that is not a message.
 */
export function messageEvents(body: any): RecordedEvent[] | undefined {
  if (body?.type !== 'message' || !Array.isArray(body.content)) return undefined;
  const { content, stop_reason, stop_sequence, usage, ...rest } = body;
  const start: any = { ...rest, content: [], stop_reason: null, usage: typeof usage === 'object' && usage !== null ? usage : {} };
  if ('stop_sequence' in body) start.stop_sequence = null;
  const events: any[] = [{ type: 'message_start', message: start }];
  for (const [index, block] of content.entries()) {
    if (typeof block !== 'object' || block === null || typeof block.type !== 'string') return undefined;
    const deltas: any[] = [];
    let first = block;
    if (block.type === 'text' && typeof block.text === 'string') {
      const { text, citations, ...b } = block;
      const cited = Array.isArray(citations) && citations.length > 0;
      first = { ...b, text: '', ...(cited || citations === undefined ? {} : { citations }) };
      if (text !== '') deltas.push({ type: 'text_delta', text });
      if (cited) for (const citation of citations) deltas.push({ type: 'citations_delta', citation });
    } else if (block.type === 'thinking' && typeof block.thinking === 'string') {
      first = { ...block, thinking: '', ...(typeof block.signature === 'string' ? { signature: '' } : {}) };
      if (block.thinking !== '') deltas.push({ type: 'thinking_delta', thinking: block.thinking });
      if (typeof block.signature === 'string') deltas.push({ type: 'signature_delta', signature: block.signature });
    } else if (INPUT_BLOCKS.has(block.type) && typeof block.input === 'object' && block.input !== null) {
      first = { ...block, input: {} };
      deltas.push({ type: 'input_json_delta', partial_json: JSON.stringify(block.input) });
    }
    events.push({ type: 'content_block_start', index, content_block: first });
    for (const delta of deltas) events.push({ type: 'content_block_delta', index, delta });
    events.push({ type: 'content_block_stop', index });
  }
  const delta: any = { stop_reason: stop_reason ?? null };
  if ('stop_sequence' in body) delta.stop_sequence = stop_sequence;
  const end: any = { type: 'message_delta', delta };
  if (typeof usage?.output_tokens === 'number') end.usage = { output_tokens: usage.output_tokens };
  events.push(end, { type: 'message_stop' });
  return events.map((e) => ({ event: e.type, data: JSON.stringify(e), t: 0 }));
}

/** The Messages endpoint with the reasoning rule for the given opted-in model families. */
export function messagesEndpoint(reasoningModels: readonly string[]): EndpointSpec {
  return {
    path: '/messages',
    profile: anthropicProfile(reasoningModels),
    streams: true,
    // The message rebuilt from the events is the object a non-streaming call returns.
    streamValueIsJsonBody: true,
    eventsFromBody: messageEvents,
    streamFormsShared: () => true,
    keyBody: withoutCacheControl,
    schemas: (body) => [...valuesAt(body, 'tools.*.input_schema'), ...valuesAt(body, 'output_config.format.schema'), ...valuesAt(body, 'output_format.schema')],
    acceptBody: (body) => body?.type === 'message',
    usage: (body) => anthropicUsage(body?.usage),
    complete(events) {
      let starts = 0;
      let stopped = false;
      for (const e of events) {
        const data = parse(e);
        // Data that is not JSON: the SDK throws on it (it skips only empty data).
        if (data === undefined && e.data !== '') return false;
        const type = e.event ?? data?.type;
        if (type === 'error') return false;
        if (type === 'message_start') starts++;
        if (type === 'message_stop') stopped = true;
      }
      // Exactly one message: a stream with a second message_start is one the SDK rejects.
      return stopped && starts === 1;
    },
    fromEvents(events) {
      const value = assembleMessage(events.map(parse));
      const usage = anthropicUsage(value?.usage);
      return { value, ...(usage ? { usage } : {}), ...(value?.model ? { model: value.model } : {}) };
    },
  };
}
