// Placeholder demo: the real L1 stack end to end against a simulated upstream.
import { MultiLayerCache, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';

const questions = ['How do I reset my password?', 'What are your opening hours?', 'How do I cancel my order?'];
const cache = new MultiLayerCache({ layers: [new MemoryLayer()], policy: 'always' });
let upstream = 0;
const simulated = async (q: string) => {
  upstream++;
  await new Promise((r) => setTimeout(r, 200));
  return loaded({ answer: `(simulated) answer to: ${q}` }, { model: 'gpt-4o-mini', usage: { inputTokens: 40, outputTokens: 120 } });
};
for (let i = 0; i < 30; i++) {
  const q = questions[i % questions.length]!;
  const request = { model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content: q }] };
  await cache.getOrLoad(request, () => simulated(q));
}
const s = cache.stats();
console.log(`requests ${s.requests}, hits ${s.hits}, misses ${s.misses}, hit rate ${(s.hitRate * 100).toFixed(1)}%, upstream calls ${upstream} (simulated provider)`);
console.log(`USD saved ${s.usdSaved.toFixed(6)}, memory p50 ${s.layers['memory']?.p50Ms?.toFixed(4)} ms`);
await cache.close();
