// How much of the prompt the provider's own cache bills at its discount, with and without the
// adapters' prompt layout: the same support-bot requests — static rules and tools, a customer
// record and retrieved articles that change on every request, one- and two-turn conversations —
// sent twice through Strata to a fresh simulated provider: once as prompts are commonly templated
// (the request's context written into the top of the system prompt), once laid out by
// `layoutChatPrompt` / `layoutMessagesPrompt`.
import { type PriceTable, MultiLayerCache, costUsd, findPrice } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { Anthropic } from '@anthropic-ai/sdk';
import { ANTHROPIC_PRICES, layoutMessagesPrompt, withCache as withAnthropicCache } from '@strata-cache/anthropic';
import { OPENAI_PRICES, layoutChatPrompt, withCache } from '@strata-cache/openai';
import { OpenAI } from 'openai';
import { INTENTS, SYSTEM_PROMPT, TENANTS, projectOf } from './knowledge.js';
import { Rng } from './rng.js';
import { SimulatedProvider } from './simulated-provider.js';

export interface PromptLayoutOptions {
  /** Wire format and adapter. @default 'openai' */
  readonly api?: 'openai' | 'anthropic';
  /** Requests per pass. @default 300 */
  readonly requests?: number;
  /** Workload seed. @default 42 */
  readonly seed?: number;
}

export interface PassResult {
  readonly label: string;
  readonly upstreamCalls: number;
  readonly promptTokens: number;
  readonly cachedTokens: number;
  /** cachedTokens / promptTokens. */
  readonly cachedShare: number;
  /** What the prompt tokens cost at list prices, with the provider's cache discount. */
  readonly promptUsd: number;
}

export interface PromptLayoutReport {
  readonly api: 'openai' | 'anthropic';
  readonly model: string;
  readonly requests: number;
  readonly without: PassResult;
  readonly with: PassResult;
}

interface Turn {
  readonly tenant: string;
  readonly context: string[];
  readonly history: Array<{ role: 'user' | 'assistant'; content: string }>;
  readonly question: string;
}

const TOOLS = [
  {
    name: 'order_status',
    description: 'Look up the status of an order or invoice by its id.',
    parameters: { type: 'object', properties: { id: { type: 'string', description: 'Order or invoice id' } }, required: ['id'] },
  },
  {
    name: 'open_ticket',
    description: 'Open a support ticket for a human agent.',
    parameters: {
      type: 'object',
      properties: { summary: { type: 'string' }, priority: { type: 'string', enum: ['low', 'normal', 'high'] } },
      required: ['summary'],
    },
  },
  {
    name: 'change_plan',
    description: 'Move the workspace to another plan.',
    parameters: {
      type: 'object',
      properties: { plan: { type: 'string', enum: ['free', 'pro', 'team'] }, billing: { type: 'string', enum: ['monthly', 'yearly'] } },
      required: ['plan'],
    },
  },
];

/** Support-bot requests: every one with its own customer record and retrieved articles. */
function workload(n: number, seed: number): Turn[] {
  const rng = new Rng(seed);
  const names = ['Dana', 'Lee', 'Priya', 'Marco', 'Ana', 'Tomás', 'Yuki', 'Sam', 'Noor', 'Felix'];
  const plans = ['Free', 'Pro', 'Team'];
  const turns: Turn[] = [];
  while (turns.length < n) {
    const tenant = rng.pick(TENANTS).id;
    const customer = `Customer: ${rng.pick(names)} (#${1000 + rng.int(9000)}), plan ${rng.pick(plans)}, seats ${1 + rng.int(40)}, renews 2026-${String(1 + rng.int(12)).padStart(2, '0')}-${String(1 + rng.int(28)).padStart(2, '0')}, open tickets ${rng.int(4)}.`;
    const articles = Array.from({ length: 2 }, () => {
      const intent = rng.pick(INTENTS);
      return `Article "${intent.id}": ${intent.phrasings[0]} — see the help center entry ${intent.id} (updated ${1 + rng.int(28)} days ago).`;
    });
    const context = [customer, `Relevant articles:\n${articles.join('\n')}`];
    const first = rng.pick(INTENTS).phrasings[0]!;
    turns.push({ tenant, context, history: [], question: first });
    // A third of the conversations go on for one more turn (with a fresh retrieval).
    if (rng.chance(1 / 3) && turns.length < n) {
      const next = rng.pick(INTENTS).phrasings[0]!;
      turns.push({
        tenant,
        context: [customer, `Relevant articles:\n${articles.slice().reverse().join('\n')}`],
        history: [
          { role: 'user', content: first },
          { role: 'assistant', content: 'Here is what I found in the help center.' },
        ],
        question: next,
      });
    }
  }
  return turns;
}

/** The request's context written into the top of the system prompt: a common template. */
function templated(t: Turn): string {
  return `${t.context.join('\n')}\n\n${SYSTEM_PROMPT}`;
}

export async function measurePromptLayout(options: PromptLayoutOptions = {}): Promise<PromptLayoutReport> {
  const api = options.api ?? 'openai';
  const requests = options.requests ?? 300;
  const turns = workload(requests, options.seed ?? 42);
  const model = api === 'openai' ? 'gpt-4o' : 'claude-sonnet-4-20250514';
  const prices: PriceTable = api === 'openai' ? OPENAI_PRICES : ANTHROPIC_PRICES;
  const pass = async (label: string, laidOut: boolean): Promise<PassResult> => {
    const provider = new SimulatedProvider({ latencyScale: 0 });
    const url = await provider.start();
    const baseURL = api === 'anthropic' ? url.replace(/\/v1$/, '') : url;
    const cache = new MultiLayerCache({ layers: [new MemoryLayer()] });
    try {
      for (const t of turns) {
        if (api === 'openai') {
          const client = withCache(new OpenAI({ baseURL, apiKey: 'sk-simulated', project: projectOf(t.tenant), maxRetries: 0 }), { cache, scope: t.tenant });
          const tools = TOOLS.map((f) => ({ type: 'function' as const, function: f }));
          const body = laidOut
            ? layoutChatPrompt({ instructions: SYSTEM_PROMPT, tools, history: t.history, context: t.context, user: t.question })
            : { messages: [{ role: 'system' as const, content: templated(t) }, ...t.history, { role: 'user' as const, content: t.question }], tools };
          await client.chat.completions.create({ model, temperature: 0, ...body });
        } else {
          const client = withAnthropicCache(
            new Anthropic({ baseURL, apiKey: 'sk-simulated', defaultHeaders: { 'x-sim-project': projectOf(t.tenant) }, maxRetries: 0 }),
            { cache, scope: t.tenant },
          );
          const tools = TOOLS.map((f) => ({ name: f.name, description: f.description, input_schema: { ...f.parameters, type: 'object' as const } }));
          const layout = laidOut
            ? layoutMessagesPrompt({ instructions: SYSTEM_PROMPT, tools, history: t.history, context: t.context, user: t.question })
            : // A breakpoint on the system prompt, which starts with this request's context.
              {
                system: [{ type: 'text' as const, text: templated(t), cache_control: { type: 'ephemeral' as const } }],
                tools,
                messages: [...t.history, { role: 'user' as const, content: t.question }],
              };
          const body = { model, max_tokens: 512, temperature: 0, ...layout };
          await client.messages.create(body);
        }
      }
      await cache.flush();
      const { calls, promptTokens, cachedTokens } = provider.stats;
      const writes = provider.calls.reduce((n, c) => n + (c.cacheWriteTokens ?? 0), 0);
      return {
        label,
        upstreamCalls: calls,
        promptTokens,
        cachedTokens,
        cachedShare: promptTokens ? cachedTokens / promptTokens : 0,
        promptUsd: promptCost(model, prices, promptTokens, cachedTokens, writes),
      };
    } finally {
      await cache.close();
      await provider.close();
    }
  };
  const without = await pass('context written into the system prompt', false);
  const laid = await pass(api === 'openai' ? 'layoutChatPrompt' : 'layoutMessagesPrompt', true);
  return { api, model, requests, without, with: laid };
}

/** Prompt tokens at list price: cached ones at the cache-read price, written ones at the cache-write price. */
function promptCost(model: string, prices: PriceTable, prompt: number, cached: number, written: number): number {
  const price = findPrice(prices, model);
  if (!price) return 0;
  return costUsd({ inputTokens: prompt, outputTokens: 0, cachedInputTokens: cached, ...(written ? { cacheWriteInputTokens: written } : {}) }, price);
}

export function renderPromptLayout(r: PromptLayoutReport): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
  const row = (p: PassResult) =>
    `  ${p.label.padEnd(40)} ${String(p.upstreamCalls).padStart(5)} calls  ${String(p.promptTokens).padStart(9)} prompt tokens  ${String(p.cachedTokens).padStart(9)} cached  ${pct(p.cachedShare).padStart(7)}  $${p.promptUsd.toFixed(4)}`;
  return [
    `Prompt layout and the provider's prompt cache (${r.api}, ${r.model}, simulated provider, ${r.requests} requests per pass):`,
    row(r.without),
    row(r.with),
    `  provider-cached share of prompt tokens: ${pct(r.without.cachedShare)} → ${pct(r.with.cachedShare)}; prompt cost ${r.without.promptUsd ? pct(1 - r.with.promptUsd / r.without.promptUsd) : '—'} lower`,
  ].join('\n');
}
