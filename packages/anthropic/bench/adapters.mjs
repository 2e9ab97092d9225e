// Adapter overhead against a local Anthropic wire-format server: the bare SDK, a cached miss and
// a cached hit, JSON and streaming, measured interleaved in the same run.
// STRATA_BENCH_ITERATIONS (default 300) sets the number of calls per scenario.
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { startAnthropicServer } from '@strata-cache/provider-test-servers';
import { Anthropic } from '@anthropic-ai/sdk';
import { withCache } from '../dist/index.js';
import { runScenarios, writeSection } from './harness.mjs';

const iterations = Number(process.env.STRATA_BENCH_ITERATIONS ?? 300);
const server = await startAnthropicServer();
const bare = new Anthropic({ apiKey: 'bench', baseURL: server.baseURL, maxRetries: 0 });
const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 100_000 })], policy: 'always' });
const cached = withCache(bare, { cache });

const req = (text, stream = false) => ({
  model: 'claude-sonnet-4-20250514',
  max_tokens: 256,
  temperature: 0,
  system: 'You are a benchmark.',
  messages: [{ role: 'user', content: text }],
  ...(stream ? { stream: true } : {}),
});
const HOT = 'What is the capital of France? Answer in one short sentence please.';
await cached.messages.create(req(HOT));
for await (const _ of await cached.messages.create(req(HOT, true)));
await cache.flush();

let n = 0;
const drain = async (s) => {
  let k = 0;
  for await (const _ of s) k++;
  return k;
};
const results = await runScenarios(iterations, {
  'json.bare': () => bare.messages.create(req(HOT)),
  'json.miss': () => cached.messages.create(req(`${HOT} #${n++}`)),
  'json.hit': () => cached.messages.create(req(HOT)),
  'stream.bare': async () => drain(await bare.messages.create(req(HOT, true))),
  'stream.miss': async () => drain(await cached.messages.create(req(`${HOT} #${n++}`, true))),
  'stream.hit': async () => drain(await cached.messages.create(req(HOT, true))),
});
await server.close();
await writeSection('anthropic', { sdk: '@anthropic-ai/sdk@1.12.0', endpoint: 'messages', iterations, results });
