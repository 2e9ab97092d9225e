// CPU and wall time per model call in the calling thread: node bench/loop.mjs [batchSize=1] [calls=300]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UseTokenizer, defaultModelDir } from '../dist/index.js';
import { loadRunner } from '../dist/runner.js';
const dir = defaultModelDir();
const tok = new UseTokenizer(JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8')));
const r = await loadRunner(dir, 'wasm');
const ids = [tok.encode('How do I reset my password?')];
const bs = Number(process.argv[2] ?? 1);
const batch = Array.from({ length: bs }, () => ids[0]);
for (let i = 0; i < 10; i++) await r.run(batch);
const n = Number(process.argv[3] ?? 300);
const s = performance.now();
const cpu0 = process.cpuUsage();
for (let i = 0; i < n; i++) await r.run(batch);
const cpu = process.cpuUsage(cpu0);
console.log(`bs ${bs}: wall ${((performance.now() - s) / n).toFixed(2)} ms/call, cpu ${((cpu.user + cpu.system) / 1000 / n).toFixed(2)} ms/call`);
