import { computeKey, resolveScope, chatProfile } from '@strata-cache/core';
import { readFileSync } from 'node:fs';
const convs = JSON.parse(readFileSync('/work/shared/data/datasets/sharegpt-first-turn/ShareGPT_V3_filtered_1000.json', 'utf8'));
const texts = []; for (const c of convs) for (const t of c.conversations ?? []) if (typeof t.value === 'string' && t.value.length > 400) texts.push(t.value);
let seed = 42; const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32); const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const slice = (len) => { let out = ''; while (out.length < len) { const t = pick(texts); const st = Math.floor(rand() * Math.max(1, t.length - (len - out.length))); out += (out ? ' ' : '') + t.slice(st, st + len - out.length); } return out; };
const TOOLS = [
  { type: 'function', function: { name: 'lookup_invoice', description: 'Fetch an invoice by id for the current account', parameters: { type: 'object', properties: { invoice_id: { type: 'string' } }, required: ['invoice_id'] } } },
  { type: 'function', function: { name: 'add_seats', description: 'Add seats to the current subscription immediately, prorated', parameters: { type: 'object', properties: { count: { type: 'integer', minimum: 1 }, role: { type: 'string', enum: ['member', 'admin'] } }, required: ['count'] } } },
  { type: 'function', function: { name: 'open_ticket', description: 'Open a support ticket for a human agent', parameters: { type: 'object', properties: { summary: { type: 'string' }, priority: { type: 'string', enum: ['low', 'normal', 'high'] } }, required: ['summary'] } } },
];
const bodies = Array.from({ length: 2000 }, (_, i) => { const messages = [{ role: 'system', content: 'You are Acme Support, a concise and friendly assistant for Acme Cloud customers. Answer only questions about Acme products, billing and accounts. If unsure, say so and offer to open a ticket.' }]; for (let t = 0; t < 1 + (i % 2); t++) { messages.push({ role: 'user', content: slice(100) }); messages.push({ role: 'assistant', content: slice(160) }); } messages.push({ role: 'user', content: `#${i} ` + slice(160) }); return JSON.stringify({ model: 'gpt-4o-mini', temperature: 0, max_tokens: 512, top_p: 1, user: 'u' + i, stream: false, messages, tools: TOOLS.slice(0, 2 + (i % 2)), tool_choice: 'auto' }); });
const scope = resolveScope('acme');
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const { MultiLayerCache } = await import("@strata-cache/core"); const { MemoryLayer } = await import("./dist/index.js"); const cache = new MultiLayerCache({ layers: [new MemoryLayer({ maxEntries: 5000 })], scope: "acme" }); const layer = new MemoryLayer({ maxEntries: 5000 }); for (const b of bodies) { const o = JSON.parse(b); await cache.getOrLoad(o, async () => ({ t: slice(2000) })); layer.set(computeKey(o, scope, chatProfile), { value: 1, createdAt: Date.now(), tags: [] }); }
for (const [name, fn] of [["key", (o) => computeKey(o, scope, chatProfile)], ["key+get", (o) => layer.get(computeKey(o, scope, chatProfile))], ["getOrLoad", (o) => cache.getOrLoad(o, async () => null)]]) {
let best = Infinity;
for (let round = 0; round < 6; round++) {
  let us = 0, ops = 0;
  for (let c = 0; c < 400; c++) {
    const objs = Array.from({ length: 100 }, (_, j) => JSON.parse(bodies[(c * 100 + j) % 2000]));
    const c0 = cpu();
    for (let j = 0; j < 100; j++) await fn(objs[j]);
    us += cpu() - c0; ops += 100;
  }
  best = Math.min(best, us / ops);
}
console.log(name, best.toFixed(3), 'us/op');
}
