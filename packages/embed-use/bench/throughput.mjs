// Concurrent short queries through the pool: throughput vs workers / maxBatchSize.
//   node bench/throughput.mjs [workers=2] [maxBatchSize=32] [n=600]
import { loadavg } from 'node:os';
import { createUseEmbedder } from '../dist/index.js';

const workers = Number(process.argv[2] ?? 2);
const maxBatchSize = Number(process.argv[3] ?? 32);
const n = Number(process.argv[4] ?? 600);
const base = [
  'How do I reset my password?',
  'What is the capital of France?',
  'Which plan includes priority support?',
  'Is the museum open on Sundays?',
  'Why is my invoice higher this month?',
  'How can I track my order?',
  'Can I pay by card?',
  'What are your opening hours on public holidays?',
];
const e = await createUseEmbedder({ workers, maxBatchSize });
await e.embed(base);
for (let round = 0; round < 3; round++) {
  const qs = Array.from({ length: n }, (_, i) => `${base[i % base.length]} #${round}-${i}`);
  const cpu0 = process.cpuUsage();
  const s = performance.now();
  await Promise.all(qs.map((q) => e.embed([q])));
  const ms = performance.now() - s;
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `workers ${workers} maxBatch ${maxBatchSize}: ${(n / (ms / 1000)).toFixed(1)} q/s, process cpu ${((cpu.user + cpu.system) / 1000 / ms).toFixed(2)} cores, load ${loadavg()[0].toFixed(2)}`,
  );
}
const lat = [];
for (let i = 0; i < 60; i++) {
  const s = performance.now();
  await e.embed([`${base[i % base.length]} ${i}`]);
  lat.push(performance.now() - s);
}
lat.sort((a, b) => a - b);
console.log(`single query p50 ${lat[30].toFixed(2)} ms p90 ${lat[54].toFixed(2)}`);
await e.close();
