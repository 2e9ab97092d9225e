// Adapter overhead against a local OpenAI wire-format server: the bare SDK, a cached miss and a
// cached hit, JSON and streaming, measured interleaved in the same run.
// STRATA_BENCH_ITERATIONS (default 300) sets the number of calls per scenario.
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { startOpenAIServer } from '@strata-cache/provider-test-servers';
import { OpenAI } from 'openai';
import { withCache } from '../dist/index.js';
import { runScenarios, writeSection } from './harness.mjs';

const iterations = Number(process.env.STRATA_BENCH_ITERATIONS ?? 300);
const server = await startOpenAIServer();
const bare = new OpenAI({ apiKey: 'bench', baseURL: server.baseURL, maxRetries: 0 });
const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 100_000 })], policy: 'always' });
const cached = withCache(bare, { cache });

const req = (text, stream = false) => ({
  model: 'gpt-4o-mini',
  temperature: 0,
  messages: [{ role: 'system', content: 'You are a benchmark.' }, { role: 'user', content: text }],
  ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
});
const HOT = 'What is the capital of France? Answer in one short sentence please.';
await cached.chat.completions.create(req(HOT));
for await (const _ of await cached.chat.completions.create(req(HOT, true)));
await cache.flush();

let n = 0;
const drain = async (s) => {
  let k = 0;
  for await (const _ of s) k++;
  return k;
};
const results = await runScenarios(iterations, {
  'json.bare': () => bare.chat.completions.create(req(HOT)),
  'json.miss': () => cached.chat.completions.create(req(`${HOT} #${n++}`)),
  'json.hit': () => cached.chat.completions.create(req(HOT)),
  'stream.bare': async () => drain(await bare.chat.completions.create(req(HOT, true))),
  'stream.miss': async () => drain(await cached.chat.completions.create(req(`${HOT} #${n++}`, true))),
  'stream.hit': async () => drain(await cached.chat.completions.create(req(HOT, true))),
});
await server.close();
await writeSection('openai', { sdk: 'openai@6.30.1', endpoint: 'chat.completions', iterations, results });
