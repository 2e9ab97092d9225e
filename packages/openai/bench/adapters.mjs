// Adapter overhead against a local OpenAI wire-format server (see benchAdapter).
// STRATA_BENCH_ITERATIONS (default 300) sets the number of calls per scenario. The SDK is
// openai 7 on Node >= 22 and openai 6 below (STRATA_OPENAI_SDK=6|7 picks one).
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { benchAdapter, sdkChoice, startOpenAIServer } from '@strata-cache/provider-test-servers';
import { withCache } from '../dist/index.js';

const { specifier } = sdkChoice().openai;
const { OpenAI } = await import(specifier);
const { VERSION: version } = await import(`${specifier}/version`);
const server = await startOpenAIServer();
const bare = new OpenAI({ apiKey: 'bench', baseURL: server.baseURL, maxRetries: 0 });
const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 100_000 })], policy: 'always' });
const req = (text) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [
    { role: 'system', content: 'You are a benchmark.' },
    { role: 'user', content: text },
  ],
});

await benchAdapter({
  name: 'openai',
  sdk: `openai@${version}`,
  endpoint: 'chat.completions',
  iterations: Number(process.env.STRATA_BENCH_ITERATIONS ?? 300),
  bare,
  cached: withCache(bare, { cache }),
  flush: () => cache.flush(),
  json: (client, text) => client.chat.completions.create(req(text)),
  stream: (client, text) => client.chat.completions.create({ ...req(text), stream: true, stream_options: { include_usage: true } }),
});
await server.close();
