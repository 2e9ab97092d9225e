import type { MultiLayerCache, RejectedCandidate, TokenUsage } from '@strata-cache/core';
import { loaded } from '@strata-cache/core';
import type { ChatMessage } from './workload.js';

export interface ChatCall {
  readonly tenant: string;
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream: boolean;
}

/** What the run learns about one request: the answer, and where it came from. */
export interface ChatOutcome {
  readonly text: string;
  /** Provider response id (`chatcmpl-…`, `msg_…`): replayed answers keep the original's. */
  readonly id: string;
  readonly status: 'hit' | 'miss' | 'bypass';
  /** Layer that answered a hit (`memory`, `redis`, `semantic`). */
  readonly layer?: string;
  readonly similarity?: number;
  readonly matchedText?: string;
  readonly rejected?: readonly RejectedCandidate[];
  readonly coalesced?: boolean;
  /** Usage reported by the provider on a miss. */
  readonly usage?: TokenUsage;
  /** Stream chunks received (stream requests). */
  readonly chunks?: number;
}

export interface ChatClient {
  /** How requests travel, for the summary: "@strata-cache/openai → simulated provider". */
  readonly description: string;
  chat(call: ChatCall): Promise<ChatOutcome>;
  close?(): Promise<void>;
}

interface Completion {
  id: string;
  model: string;
  choices: Array<{ message: { role: string; content: string | null }; finish_reason: string | null }>;
  usage?: OpenAIUsage;
}

interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
}

export function usageFromOpenAI(u: OpenAIUsage | undefined | null): TokenUsage | undefined {
  if (!u) return undefined;
  return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens, cachedInputTokens: u.prompt_tokens_details?.cached_tokens ?? 0 };
}

/**
 * The cache in front of plain `fetch` calls in the OpenAI wire format. Used when
 * @strata-cache/openai is not available; it stores the completed response (a streamed answer
 * is assembled first, and only a stream that finished is stored) and returns its text.
 */
export class FetchChatClient implements ChatClient {
  readonly description: string;
  constructor(
    private readonly cache: MultiLayerCache,
    private readonly baseURL: string,
    private readonly headers: (tenant: string) => Record<string, string>,
    label: string,
    private readonly scopeOf: (tenant: string) => string = (t) => t,
  ) {
    this.description = `core MultiLayerCache + fetch (OpenAI wire format) → ${label}`;
  }

  async chat(call: ChatCall): Promise<ChatOutcome> {
    const request = { model: call.model, temperature: 0, messages: call.messages, ...(call.stream ? { stream: true, stream_options: { include_usage: true } } : {}) };
    let chunks = 0;
    let usage: TokenUsage | undefined;
    const r = await this.cache.getOrLoad<Completion>(
      request,
      async () => {
        const res = await fetch(`${this.baseURL}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...this.headers(call.tenant) },
          body: JSON.stringify(request),
        });
        if (!res.ok) throw new Error(`upstream ${res.status}: ${await res.text()}`);
        const completion = call.stream ? await readStream(res, () => chunks++) : ((await res.json()) as Completion & { complete?: boolean });
        usage = usageFromOpenAI(completion.usage);
        return loaded(completion, {
          ...(usage ? { usage } : {}),
          model: completion.model,
          complete: completion.choices[0]?.finish_reason === 'stop',
        });
      },
      { scope: this.scopeOf(call.tenant) },
    );
    const text = r.value.choices[0]?.message.content ?? '';
    return {
      text,
      id: r.value.id,
      status: r.status,
      ...(r.layer ? { layer: r.layer } : {}),
      ...(r.similarity !== undefined ? { similarity: r.similarity, matchedText: r.matchedText } : {}),
      ...(r.rejected ? { rejected: r.rejected } : {}),
      ...(r.coalesced ? { coalesced: true } : {}),
      ...(usage && !r.coalesced ? { usage } : {}),
      ...(call.stream ? { chunks } : {}),
    };
  }
}

/** Reads an OpenAI chat-completions SSE stream into one completion object. */
async function readStream(res: Response, onChunk: () => void): Promise<Completion> {
  const decoder = new TextDecoder();
  let buffer = '';
  let content = '';
  let id = '';
  let model = '';
  let finish: string | null = null;
  let usage: OpenAIUsage | undefined;
  let done = false;
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(part, { stream: true });
    let at: number;
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      for (const line of event.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const chunk = JSON.parse(data) as { id: string; model: string; choices: Array<{ delta: { content?: string }; finish_reason: string | null }>; usage?: OpenAIUsage | null };
        onChunk();
        id = chunk.id;
        model = chunk.model;
        const c = chunk.choices[0];
        if (c?.delta.content) content += c.delta.content;
        if (c?.finish_reason) finish = c.finish_reason;
        if (chunk.usage) usage = chunk.usage;
      }
    }
  }
  return {
    id,
    model,
    choices: [{ message: { role: 'assistant', content }, finish_reason: done ? finish : null }],
    ...(usage ? { usage } : {}),
  };
}
