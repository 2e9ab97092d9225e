import { type Handler, type ProviderServer, type Reply, type SseEvent, type StartServerOptions, json, sse, startServer } from './server.js';
import { fakeTokens, lastUserText, words } from './text.js';

/** How the fake Anthropic server answers. */
export interface AnthropicServerOptions {
  /** Delay before each response, ms. @default 0 */
  latencyMs?: number;
  /** Delay between SSE events, ms. @default 0 */
  intervalMs?: number;
  /** Reported as usage.cache_read_input_tokens. @default 0 */
  cacheReadTokens?: number;
  /** Reported as usage.cache_creation_input_tokens. @default 0 */
  cacheCreationTokens?: number;
  /** Prefix of every answer text. @default 'Echo: ' */
  answerPrefix?: string;
}

interface MessagesRequest {
  model?: string;
  system?: unknown;
  messages?: Array<{ role: string; content?: unknown }>;
  tools?: Array<{ name: string }>;
  thinking?: { type?: string };
  stream?: boolean;
}

type Block =
  | { type: 'text'; text: string; citations?: null }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'tool_use'; id: string; name: string; input: Record<string, unknown> };

function plan(req: MessagesRequest, index: number, o: AnthropicServerOptions): { blocks: Block[]; stop: string } {
  const text = lastUserText(req.messages) ?? '';
  const last = req.messages?.[req.messages.length - 1];
  const lastIsToolResult = Array.isArray(last?.content) && (last.content as Array<{ type?: string }>).some((b) => b?.type === 'tool_result');
  const blocks: Block[] = [];
  if (req.thinking?.type === 'enabled') blocks.push({ type: 'thinking', thinking: `The user wrote: ${text}. I should echo it.`, signature: `sig_${index}` });
  const tool = req.tools?.[0]?.name;
  if (tool && !lastIsToolResult) {
    blocks.push({ type: 'text', text: 'Let me look that up.' });
    blocks.push({ type: 'tool_use', id: `toolu_${index}`, name: tool, input: { query: text, unit: 'celsius' } });
    return { blocks, stop: 'tool_use' };
  }
  blocks.push({ type: 'text', text: (o.answerPrefix ?? 'Echo: ') + text });
  return { blocks, stop: 'end_turn' };
}

function usage(req: MessagesRequest, blocks: Block[], o: AnthropicServerOptions) {
  const prompt = fakeTokens(JSON.stringify([req.system ?? '', req.messages ?? []]));
  const read = Math.min(o.cacheReadTokens ?? 0, prompt);
  const created = Math.min(o.cacheCreationTokens ?? 0, prompt - read);
  return {
    // Anthropic's input_tokens excludes tokens read from or written to its prompt cache.
    input_tokens: prompt - read - created,
    cache_creation_input_tokens: created,
    cache_read_input_tokens: read,
    output_tokens: fakeTokens(JSON.stringify(blocks)),
    service_tier: 'standard',
  };
}

/** A `message` object for the request (`id` carries the call index). */
export function message(req: MessagesRequest, index: number, o: AnthropicServerOptions = {}) {
  const { blocks, stop } = plan(req, index, o);
  return {
    id: `msg_${index}`,
    type: 'message',
    role: 'assistant',
    model: req.model ?? 'claude-sonnet-4-5',
    content: blocks.map((b) => (b.type === 'text' ? { ...b, citations: null } : b)),
    stop_reason: stop,
    stop_sequence: null,
    usage: usage(req, blocks, o),
  };
}

/** The Messages SSE stream: message_start, content_block_start/delta/stop, ping, message_delta, message_stop. */
export function messageEvents(req: MessagesRequest, index: number, o: AnthropicServerOptions = {}): SseEvent[] {
  const full = message(req, index, o);
  const { blocks, stop } = plan(req, index, o);
  const events: SseEvent[] = [];
  const push = (type: string, payload: object = {}) => events.push({ event: type, data: { type, ...payload } });
  push('message_start', { message: { ...full, content: [], stop_reason: null, usage: { ...full.usage, output_tokens: 1 } } });
  blocks.forEach((b, i) => {
    if (b.type === 'text') {
      push('content_block_start', { index: i, content_block: { type: 'text', text: '', citations: null } });
      if (i === 0) push('ping');
      for (const w of words(b.text)) push('content_block_delta', { index: i, delta: { type: 'text_delta', text: w } });
    } else if (b.type === 'thinking') {
      push('content_block_start', { index: i, content_block: { type: 'thinking', thinking: '', signature: '' } });
      for (const w of words(b.thinking)) push('content_block_delta', { index: i, delta: { type: 'thinking_delta', thinking: w } });
      push('content_block_delta', { index: i, delta: { type: 'signature_delta', signature: b.signature } });
    } else {
      push('content_block_start', { index: i, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
      const args = JSON.stringify(b.input);
      for (let k = 0; k < args.length; k += 9)
        push('content_block_delta', { index: i, delta: { type: 'input_json_delta', partial_json: args.slice(k, k + 9) } });
    }
    push('content_block_stop', { index: i });
  });
  push('message_delta', {
    delta: { stop_reason: stop, stop_sequence: null },
    usage: {
      input_tokens: full.usage.input_tokens,
      cache_creation_input_tokens: full.usage.cache_creation_input_tokens,
      cache_read_input_tokens: full.usage.cache_read_input_tokens,
      output_tokens: full.usage.output_tokens,
    },
  });
  push('message_stop');
  return events;
}

/** Routes `/v1/messages` (JSON or SSE by `stream`). */
export function anthropicHandler(o: AnthropicServerOptions = {}): Handler {
  return (req, index): Reply => {
    const headers = { 'request-id': `req_${index}`, 'anthropic-organization-id': 'org-server-side' };
    const body = (req.body ?? {}) as MessagesRequest;
    const timing = { ...(o.latencyMs ? { delayMs: o.latencyMs } : {}), ...(o.intervalMs ? { intervalMs: o.intervalMs } : {}) };
    if (req.path.endsWith('/messages')) {
      return body.stream ? sse(messageEvents(body, index, o), { headers, ...timing }) : json(message(body, index, o), { headers, ...timing });
    }
    return json(anthropicError('not_found_error', `no route ${req.path}`), { status: 404, headers });
  };
}

/** A fake Anthropic API on a free local port; give `server.baseURL` to the SDK. */
export function startAnthropicServer(options: AnthropicServerOptions & StartServerOptions = {}): Promise<ProviderServer> {
  const { prefix, port, host, ...o } = options;
  return startServer(anthropicHandler(o), { prefix: prefix ?? '', ...(port !== undefined ? { port } : {}), ...(host ? { host } : {}) });
}

/** Anthropic's error body shape. */
export function anthropicError(type: string, message: string) {
  return { type: 'error', error: { type, message } };
}
