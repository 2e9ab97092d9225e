// Adapter overhead against a local Anthropic wire-format server (see benchAdapter).
// STRATA_BENCH_ITERATIONS (default 300) sets the number of calls per scenario.
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { benchAdapter, startAnthropicServer } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { VERSION as version } from '@anthropic-ai/sdk/version';
import { withCache } from '../dist/index.js';

const server = await startAnthropicServer();
const bare = new Anthropic({ apiKey: 'bench', baseURL: server.baseURL, maxRetries: 0 });
const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 100_000 })], policy: 'always' });
const req = (text) => ({
  model: 'claude-sonnet-4-20250514',
  max_tokens: 256,
  temperature: 0,
  system: 'You are a benchmark.',
  messages: [{ role: 'user', content: text }],
});

await benchAdapter({
  name: 'anthropic',
  sdk: `@anthropic-ai/sdk@${version}`,
  endpoint: 'messages',
  iterations: Number(process.env.STRATA_BENCH_ITERATIONS ?? 300),
  bare,
  cached: withCache(bare, { cache }),
  flush: () => cache.flush(),
  json: (client, text) => client.messages.create(req(text)),
  stream: (client, text) => client.messages.create({ ...req(text), stream: true }),
});
await server.close();
