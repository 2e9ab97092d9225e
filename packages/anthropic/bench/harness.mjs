// Shared by the adapter benchmarks (kept identical in @strata-cache/openai and @strata-cache/anthropic).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';

const quantile = (xs, q) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))];

/** Runs every scenario `iterations` times, interleaved (round-robin) so noise hits all alike. */
export async function runScenarios(iterations, scenarios) {
  const names = Object.keys(scenarios);
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  for (let w = 0; w < 20; w++) for (const n of names) await scenarios[n]();
  for (let i = 0; i < iterations; i++) {
    for (const n of names) {
      const t0 = performance.now();
      await scenarios[n]();
      samples[n].push(performance.now() - t0);
    }
  }
  const out = {};
  for (const n of names) {
    const xs = samples[n].sort((a, b) => a - b);
    out[n] = {
      medianMs: round(quantile(xs, 0.5)),
      p95Ms: round(quantile(xs, 0.95)),
      meanMs: round(xs.reduce((s, x) => s + x, 0) / xs.length),
    };
  }
  for (const mode of ['json', 'stream']) {
    const bare = out[`${mode}.bare`]?.medianMs;
    if (!bare) continue;
    for (const kind of ['miss', 'hit']) {
      const r = out[`${mode}.${kind}`];
      if (!r) continue;
      r.vsBareMedian = round(r.medianMs / bare, 3);
      r.overheadMedianMs = round(r.medianMs - bare);
    }
  }
  return out;
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Writes this provider's section into <repo>/bench/results/adapters.json (other sections kept). */
export async function writeSection(name, section) {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = join(here, '..', '..', '..', 'bench', 'results', 'adapters.json');
  await mkdir(dirname(file), { recursive: true });
  let doc = {};
  try {
    doc = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    doc = {};
  }
  doc.description =
    'Adapter overhead against a local wire-format server (no model latency, so every microsecond of the adapter shows): ' +
    'bare SDK vs a cached miss (fingerprint + upstream call + store) vs a cached hit (L1 memory layer), JSON and fully consumed streams. ' +
    'Median/p95/mean per call in ms; vsBareMedian = median / bare median; overheadMedianMs = median - bare median. Scenarios interleaved in one run.';
  doc[name] = { ...section, node: process.version, cpus: os.cpus().length, measuredAt: new Date().toISOString() };
  await writeFile(file, JSON.stringify(doc, null, 2) + '\n');
  console.log(JSON.stringify({ [name]: section.results }, null, 2));
}
