import { AsyncLocalStorage } from 'node:async_hooks';
import type { MultiLayerCache, RejectedCandidate, TokenUsage } from '@strata-cache/core';
import { Anthropic } from '@anthropic-ai/sdk';
import { getCacheInfo as getAnthropicCacheInfo, withCache as withAnthropicCache } from '@strata-cache/anthropic';
import { getCacheInfo, withCache } from '@strata-cache/openai';
import { OpenAI } from 'openai';
import { projectOf } from './knowledge.js';
import type { ChatMessage } from './workload.js';

export interface ChatCall {
  readonly tenant: string;
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly stream: boolean;
  /** Which app instance serves it (a conversation stays on one). */
  readonly route?: number;
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

interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
}

export function usageFromOpenAI(u: OpenAIUsage | undefined | null): TokenUsage | undefined {
  if (!u) return undefined;
  return { inputTokens: u.prompt_tokens, outputTokens: u.completion_tokens, cachedInputTokens: u.prompt_tokens_details?.cached_tokens ?? 0 };
}

/** What the cache's events said about one request (collected through AsyncLocalStorage). */
interface Trace {
  rejected: RejectedCandidate[];
  missed: boolean;
}

export interface OpenAIClientOptions {
  readonly cache: MultiLayerCache;
  readonly baseURL: string;
  readonly apiKey: string;
  /** Cache scope of a tenant's requests. */
  readonly scopeOf: (tenant: string) => string;
  /** Where requests go, for the summary. */
  readonly label: string;
  /** Tell the simulated provider the tenant (OpenAI project header); never sent to a real API. */
  readonly simulated: boolean;
}

export type AnthropicClientOptions = OpenAIClientOptions;

/** What one SDK call returned, before the cache's information is read off its response. */
interface SdkAnswer {
  readonly text: string;
  readonly id: string;
  readonly usage: TokenUsage | undefined;
  readonly chunks: number | undefined;
  readonly response: Response;
}

/**
 * An official SDK wrapped by its Strata adapter's `withCache`: one client per tenant (each tenant
 * has its own project upstream), one shared cache. Hit information comes from the adapter's
 * `getCacheInfo`, guard rejections and misses from the cache's events, traced per request.
 */
abstract class AdapterClient<C> implements ChatClient {
  private readonly clients = new Map<string, C>();
  private readonly traces = new AsyncLocalStorage<Trace>();

  constructor(
    protected readonly options: OpenAIClientOptions,
    readonly description: string,
  ) {
    options.cache.on('reject', (e) => this.traces.getStore()?.rejected.push(...e.rejected));
    options.cache.on('miss', () => {
      const t = this.traces.getStore();
      if (t) t.missed = true;
    });
  }

  /** A tenant's cached SDK client. */
  protected abstract create(tenant: string): C;
  /** One chat call through the SDK. */
  protected abstract send(client: C, call: ChatCall): Promise<SdkAnswer>;
  protected abstract cacheInfo(response: Response): ReturnType<typeof getCacheInfo>;

  chat(call: ChatCall): Promise<ChatOutcome> {
    const trace: Trace = { rejected: [], missed: false };
    return this.traces.run(trace, async () => {
      let client = this.clients.get(call.tenant);
      if (!client) this.clients.set(call.tenant, (client = this.create(call.tenant)));
      const { text, id, usage, chunks, response } = await this.send(client, call);
      const info = this.cacheInfo(response);
      const hit = info?.hit === true;
      return {
        text,
        id,
        status: hit ? ('hit' as const) : ('miss' as const),
        ...(hit && info?.layer ? { layer: info.layer } : {}),
        ...(hit && info?.similarity !== undefined ? { similarity: info.similarity } : {}),
        ...(trace.rejected.length ? { rejected: trace.rejected } : {}),
        ...(!hit && !trace.missed ? { coalesced: true } : {}),
        ...(!hit && usage ? { usage } : {}),
        ...(chunks !== undefined ? { chunks } : {}),
      };
    });
  }
}

/** The official `openai` SDK with Strata's caching fetch (`withCache` from @strata-cache/openai). */
export class OpenAIAdapterClient extends AdapterClient<OpenAI> {
  constructor(options: OpenAIClientOptions) {
    super(options, `@strata-cache/openai withCache(new OpenAI()) → ${options.label}`);
  }

  protected create(tenant: string): OpenAI {
    const raw = new OpenAI({
      baseURL: this.options.baseURL,
      apiKey: this.options.apiKey,
      maxRetries: 0,
      timeout: 60_000,
      ...(this.options.simulated ? { project: projectOf(tenant) } : {}),
    });
    return withCache(raw, { cache: this.options.cache, scope: this.options.scopeOf(tenant) });
  }

  protected cacheInfo(response: Response): ReturnType<typeof getCacheInfo> {
    return getCacheInfo(response);
  }

  protected async send(client: OpenAI, call: ChatCall): Promise<SdkAnswer> {
    const body = { model: call.model, temperature: 0, messages: call.messages.map((m) => ({ role: m.role, content: m.content })) };
    if (!call.stream) {
      const r = await client.chat.completions.create(body).withResponse();
      return { text: r.data.choices[0]?.message.content ?? '', id: r.data.id, usage: usageFromOpenAI(r.data.usage), chunks: undefined, response: r.response };
    }
    const r = await client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }).withResponse();
    let text = '';
    let id = '';
    let usage: TokenUsage | undefined;
    let chunks = 0;
    for await (const chunk of r.data) {
      chunks++;
      id = chunk.id;
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = usageFromOpenAI(chunk.usage);
    }
    return { text, id, usage, chunks, response: r.response };
  }
}

/**
 * The official `@anthropic-ai/sdk` with Strata's caching fetch (`withCache` from
 * @strata-cache/anthropic). The system prompt is sent as a block with `cache_control`, as an
 * Anthropic user would, so the provider's own prompt cache shows up in the statistics.
 */
export class AnthropicAdapterClient extends AdapterClient<Anthropic> {
  constructor(options: AnthropicClientOptions) {
    super(options, `@strata-cache/anthropic withCache(new Anthropic()) → ${options.label}`);
  }

  protected create(tenant: string): Anthropic {
    const raw = new Anthropic({
      baseURL: this.options.baseURL,
      apiKey: this.options.apiKey,
      maxRetries: 0,
      timeout: 60_000,
      ...(this.options.simulated ? { defaultHeaders: { 'x-sim-project': projectOf(tenant) } } : {}),
    });
    return withAnthropicCache(raw, { cache: this.options.cache, scope: this.options.scopeOf(tenant) });
  }

  protected cacheInfo(response: Response): ReturnType<typeof getCacheInfo> {
    return getAnthropicCacheInfo(response);
  }

  protected async send(client: Anthropic, call: ChatCall): Promise<SdkAnswer> {
    const systemText = call.messages
      .filter((m) => m.role === 'system')
      .map((m) => m.content)
      .join('\n');
    const body = {
      model: call.model,
      max_tokens: 512,
      temperature: 0,
      ...(systemText ? { system: [{ type: 'text' as const, text: systemText, cache_control: { type: 'ephemeral' as const } }] } : {}),
      messages: call.messages.filter((m) => m.role !== 'system').map((m) => ({ role: m.role as 'user' | 'assistant', content: m.content })),
    };
    if (!call.stream) {
      const r = await client.messages.create(body).withResponse();
      const text = r.data.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
      return { text, id: r.data.id, usage: usageFromAnthropic(r.data.usage), chunks: undefined, response: r.response };
    }
    const r = await client.messages.create({ ...body, stream: true }).withResponse();
    let text = '';
    let id = '';
    let usage: TokenUsage | undefined;
    let chunks = 0;
    let input: AnthropicUsage | undefined;
    for await (const event of r.data) {
      chunks++;
      if (event.type === 'message_start') {
        id = event.message.id;
        input = event.message.usage;
      } else if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text;
      else if (event.type === 'message_delta' && input) usage = usageFromAnthropic({ ...input, output_tokens: event.usage.output_tokens });
    }
    return { text, id, usage, chunks, response: r.response };
  }
}

interface AnthropicUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

/** Anthropic's `input_tokens` excludes cached and cache-written tokens; core's `inputTokens` includes them. */
export function usageFromAnthropic(u: AnthropicUsage): TokenUsage {
  const read = u.cache_read_input_tokens ?? 0;
  const write = u.cache_creation_input_tokens ?? 0;
  return { inputTokens: u.input_tokens + read + write, outputTokens: u.output_tokens, cachedInputTokens: read, cacheWriteInputTokens: write };
}
