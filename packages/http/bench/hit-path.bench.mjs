// What the caching fetch adds to a cache hit, over core's own read-through. One process,
// interleaved rounds, process CPU time; an L1 (memory layer) cache populated first, so every call
// is a hit. The request is a ~0.9 KB chat completion sent as an SDK or the gateway sends it (a
// string body, ten headers as a plain record), one of 1,000 distinct questions per call, its text
// decoded afresh from the bytes for every call, as a server receives it (a string seen before
// would carry the engine's cached hash of it, which a request just received never has).
//   fetchAnswer  the caching fetch's plain answer (what the gateway calls), body already parsed
//   fetch        the caching fetch itself (what an SDK calls): parses the body, returns a Response
//   getOrLoad    core's getOrLoad hit of the same key request, freshly parsed (the baseline)
// Writes bench/results/http-hit.json and .md at the repo root.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MultiLayerCache, chatProfile } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { supportChatRequest } from '@strata-cache/provider-test-servers';
import { createProviderFetch, describeRequest, fetchAnswer } from '../dist/index.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 9);
const CALLS = Number(process.env.BENCH_CALLS ?? 20_000);
const DISTINCT = 1_000;
const URL_ = 'https://api.example.test/v1/chat/completions';

const chat = {
  path: '/chat/completions',
  profile: chatProfile,
  streams: true,
  usage: () => undefined,
  complete: (events) => events.at(-1)?.data === '[DONE]',
  fromEvents: () => ({ value: null }),
};
const SPEC = {
  packageName: '@strata-cache/bench',
  clientHint: 'new Client()',
  isClient: () => false,
  endpoints: () => [chat],
  keyHeaders: ['openai-beta', 'openai-organization', 'openai-project'],
  requestIdHeader: 'x-request-id',
};
const answer = (q) =>
  JSON.stringify({
    id: 'chatcmpl-bench',
    object: 'chat.completion',
    created: 1_760_000_000,
    model: 'gpt-4o-mini',
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: `About "${q}": ${'Yes, within 30 days of delivery, unworn and in the original box. '.repeat(8)}` },
        finish_reason: 'stop',
      },
    ],
    usage: { prompt_tokens: 310, completion_tokens: 120, total_tokens: 430 },
  });
let upstreamCalls = 0;
const upstream = async (_url, init) => {
  upstreamCalls++;
  const q = JSON.parse(init.body).messages.at(-1).content;
  return new Response(answer(q), { status: 200, headers: { 'content-type': 'application/json', 'x-request-id': 'req_1' } });
};
const bodies = Array.from({ length: DISTINCT }, (_, i) => JSON.stringify(supportChatRequest(`Can I return them if they do not fit? (order ${100_000 + i})`)));
const bodyBytes = bodies.map((text) => Buffer.from(text));
const utf8 = new TextDecoder();
const headers = () => ({
  'content-type': 'application/json',
  accept: 'application/json',
  'user-agent': 'OpenAI/JS 6.30.1',
  'x-stainless-lang': 'js',
  'x-stainless-os': 'Linux',
  'x-stainless-arch': 'x64',
  'x-stainless-runtime': 'node',
  'x-stainless-retry-count': '0',
  'openai-organization': 'org-bench',
  authorization: 'Bearer sk-bench-not-a-real-key',
});

const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 10_000 })], policy: 'always' });
const fetch = createProviderFetch({ cache, scope: { tenant: 'bench' } }, SPEC, upstream);
for (const text of bodies) await (await fetch(URL_, { method: 'POST', headers: headers(), body: text })).text();
await cache.flush();
// The baseline's key requests and options, exactly as the caching fetch builds them.
const described = await describeRequest(fetch, URL_, { method: 'POST', headers: headers(), body: bodies[0] });
const { strata_http } = described.keyRequest;
const options = described.options;
const neverLoads = () => {
  throw new Error('the bench expects hits only');
};

let seed = 7;
const order = Array.from({ length: CALLS }, () => (seed = (seed * 1_103_515_245 + 12_345) >>> 0) % DISTINCT);
const contenders = {
  fetchAnswer: {
    description: "the caching fetch's plain answer, body parsed by the caller (the gateway's call)",
    async call(text) {
      const a = await fetchAnswer(fetch, URL_, { method: 'POST', headers: headers(), body: text }, JSON.parse(text));
      if (!a.info?.hit) throw new Error('miss');
    },
  },
  fetch: {
    description: 'the caching fetch: parses the body, answers with a Response whose text is read (an SDK call)',
    async call(text) {
      const r = await fetch(URL_, { method: 'POST', headers: headers(), body: text });
      if (r.headers.get('x-strata-cache') !== 'hit') throw new Error('miss');
      // An SDK reads the body.
      await r.text();
    },
  },
  getOrLoad: {
    description: "core's getOrLoad hit of the same key request, freshly parsed (baseline)",
    async call(text) {
      const r = await cache.getOrLoad({ ...JSON.parse(text), strata_http }, neverLoads, options);
      if (r.status !== 'hit') throw new Error('miss');
    },
  },
};

const times = Object.fromEntries(Object.keys(contenders).map((n) => [n, []]));
const names = Object.keys(contenders);
for (const n of names) for (let i = 0; i < 2_000; i++) await contenders[n].call(utf8.decode(bodyBytes[order[i]])); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  // Interleaved, the order rotated each round.
  for (const n of names.slice(r % names.length).concat(names.slice(0, r % names.length))) {
    const { call } = contenders[n];
    const t = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) await call(utf8.decode(bodyBytes[order[i]]));
    const c = process.cpuUsage(t);
    times[n].push((c.user + c.system) / CALLS);
  }
}
if (upstreamCalls !== DISTINCT) throw new Error(`expected ${DISTINCT} upstream calls, saw ${upstreamCalls}`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const r2 = (x) => Math.round(x * 100) / 100;
const r3 = (x) => Math.round(x * 1000) / 1000;
const summary = Object.fromEntries(
  names.map((n) => [
    n,
    { description: contenders[n].description, usPerHit: r2(median(times[n])), usRange: [r2(Math.min(...times[n])), r2(Math.max(...times[n]))] },
  ]),
);
const perRound = (a, b) => times[a].map((t, i) => r3(times[b][i] / t));
const result = {
  bench: 'http-hit',
  date: new Date().toISOString(),
  node: process.version,
  rounds: ROUNDS,
  callsPerRound: CALLS,
  requestBytes: Math.round(bodies.reduce((n, b) => n + Buffer.byteLength(b), 0) / DISTINCT),
  clock: 'process CPU time (user + system) per call, median of interleaved rounds',
  contenders: summary,
  ratios: {
    getOrLoadVsFetchAnswer: r3(median(perRound('fetchAnswer', 'getOrLoad'))),
    getOrLoadVsFetchAnswerPerRound: perRound('fetchAnswer', 'getOrLoad'),
    getOrLoadVsFetch: r3(median(perRound('fetch', 'getOrLoad'))),
  },
  addedUs: { fetchAnswer: r2(summary.fetchAnswer.usPerHit - summary.getOrLoad.usPerHit), fetch: r2(summary.fetch.usPerHit - summary.getOrLoad.usPerHit) },
};

const md = `# Caching fetch hit path (\`packages/http/bench/hit-path.bench.mjs\`)

${result.date} · Node ${result.node} · ${ROUNDS} interleaved rounds × ${CALLS.toLocaleString('en')} calls per contender

What the caching fetch adds to a cache hit over core's own read-through: an L1 (memory layer) cache populated first, every call a hit on one of ${DISTINCT.toLocaleString('en')} distinct chat completions (${result.requestBytes} B: system prompt, history, question) sent as an SDK sends it (a string body, ten headers in a plain record), the body text decoded afresh from its bytes for every call of every contender, as a server receives it. Process CPU time per call, median of rounds.

| contender | what | µs per hit (median) | range |
| --- | --- | ---: | --- |
${names.map((n) => `| ${n} | ${summary[n].description} | ${summary[n].usPerHit} | ${summary[n].usRange.join('–')} |`).join('\n')}

- \`getOrLoad\` ÷ \`fetchAnswer\` (the share of a gateway hit that is core's): **${result.ratios.getOrLoadVsFetchAnswer}×** (per round: ${result.ratios.getOrLoadVsFetchAnswerPerRound.join(', ')}); the caching fetch adds ${result.addedUs.fetchAnswer} µs
- \`getOrLoad\` ÷ \`fetch\`: ${result.ratios.getOrLoadVsFetch}×; the caching fetch with its \`Response\` adds ${result.addedUs.fetch} µs

Run: \`pnpm --filter @strata-cache/http bench\` (env: \`BENCH_ROUNDS\`, \`BENCH_CALLS\`).
`;
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/http-hit.json'), JSON.stringify(result, null, 2) + '\n');
writeFileSync(join(root, 'bench/results/http-hit.md'), md);
console.log(md);
