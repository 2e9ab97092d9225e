// The adapter benchmark: the bare SDK, a cached miss and a cached hit, JSON and streaming,
// measured interleaved in one run, written to <repo>/bench/results/adapters.{json,md}.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ScenarioResult {
  medianMs: number;
  p95Ms: number;
  meanMs: number;
  /** median / the bare SDK's median (miss and hit rows). */
  vsBareMedian?: number;
  /** median - the bare SDK's median, ms. */
  overheadMedianMs?: number;
}

export interface AdapterBenchSetup<C> {
  /** Section name in the results: `openai`, `anthropic`. */
  readonly name: string;
  /** SDK and version measured, e.g. `openai@7.59.0`. */
  readonly sdk: string;
  readonly endpoint: string;
  readonly iterations: number;
  readonly bare: C;
  readonly cached: C;
  /** Flushes the cache's pending writes. */
  flush(): Promise<void>;
  /** One JSON call with this prompt. */
  json(client: C, text: string): Promise<unknown>;
  /** One streamed call with this prompt, returning the SDK's stream. */
  stream(client: C, text: string): Promise<AsyncIterable<unknown>>;
}

const HOT = 'What is the capital of France? Answer in one short sentence please.';
const quantile = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Runs every scenario `iterations` times, interleaved (round-robin) so noise hits all alike. */
export async function runScenarios(iterations: number, scenarios: Record<string, () => Promise<unknown>>): Promise<Record<string, ScenarioResult>> {
  const names = Object.keys(scenarios);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let w = 0; w < 20; w++) for (const n of names) await scenarios[n]!();
  for (let i = 0; i < iterations; i++) {
    for (const n of names) {
      const t0 = performance.now();
      await scenarios[n]!();
      samples[n]!.push(performance.now() - t0);
    }
  }
  const out: Record<string, ScenarioResult> = {};
  for (const n of names) {
    const xs = samples[n]!.sort((a, b) => a - b);
    out[n] = { medianMs: round(quantile(xs, 0.5)), p95Ms: round(quantile(xs, 0.95)), meanMs: round(xs.reduce((s, x) => s + x, 0) / xs.length) };
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

/** Measures one adapter (bare / miss / hit, JSON and stream) and writes its section of the results. */
export async function benchAdapter<C>(setup: AdapterBenchSetup<C>): Promise<Record<string, ScenarioResult>> {
  const { bare, cached } = setup;
  const drain = async (s: AsyncIterable<unknown>) => {
    let k = 0;
    for await (const _ of s) k++;
    return k;
  };
  await setup.json(cached, HOT);
  await drain(await setup.stream(cached, HOT));
  await setup.flush();
  let n = 0;
  const results = await runScenarios(setup.iterations, {
    'json.bare': () => setup.json(bare, HOT),
    'json.miss': () => setup.json(cached, `${HOT} #${n++}`),
    'json.hit': () => setup.json(cached, HOT),
    'stream.bare': async () => drain(await setup.stream(bare, HOT)),
    'stream.miss': async () => drain(await setup.stream(cached, `${HOT} #${n++}`)),
    'stream.hit': async () => drain(await setup.stream(cached, HOT)),
  });
  // The repo's Node (20) writes the provider's section; a run on a newer Node writes its own beside it.
  const node = Number(process.versions.node.split('.')[0]);
  await writeSection(node > 20 ? `${setup.name}@node${node}` : setup.name, { sdk: setup.sdk, endpoint: setup.endpoint, iterations: setup.iterations, results });
  return results;
}

const DESCRIPTION =
  'Adapter overhead against a local wire-format server (no model latency, so every microsecond of the adapter shows): ' +
  'bare SDK vs a cached miss (fingerprint + upstream call + store) vs a cached hit (L1 memory layer), JSON and fully consumed streams. ' +
  'Median/p95/mean per call in ms; vsBareMedian = median / bare median; overheadMedianMs = median - bare median. Scenarios interleaved in one run.';

/** Writes one section into <repo>/bench/results/adapters.json (other sections kept) and renders adapters.md. */
export async function writeSection(
  name: string,
  section: { sdk: string; endpoint: string; iterations: number; results: Record<string, ScenarioResult> },
): Promise<void> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bench', 'results');
  const file = join(dir, 'adapters.json');
  await mkdir(dir, { recursive: true });
  let doc: Record<string, unknown> = {};
  try {
    doc = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch {
    doc = {};
  }
  doc['description'] = DESCRIPTION;
  doc[name] = { ...section, node: process.version, cpus: os.cpus().length, measuredAt: new Date().toISOString() };
  await writeFile(file, JSON.stringify(doc, null, 2) + '\n');
  await writeFile(join(dir, 'adapters.md'), renderMarkdown(doc));
  console.log(JSON.stringify({ [name]: section.results }, null, 2));
}

/** The results as a readable page: one table per section. */
export function renderMarkdown(doc: Record<string, unknown>): string {
  const lines = [
    '# Adapter overhead',
    '',
    String(doc['description'] ?? ''),
    '',
    'Regenerate: `pnpm --filter @strata-cache/openai bench` and `pnpm --filter @strata-cache/anthropic bench`.',
    '',
  ];
  for (const [name, value] of Object.entries(doc)) {
    if (name === 'description' || typeof value !== 'object' || value === null) continue;
    const s = value as {
      sdk: string;
      endpoint: string;
      iterations: number;
      node: string;
      cpus: number;
      measuredAt: string;
      results: Record<string, ScenarioResult>;
    };
    lines.push(`## ${name}`, '', `${s.sdk}, \`${s.endpoint}\`, ${s.iterations} calls per scenario, Node ${s.node}, ${s.cpus} CPUs, ${s.measuredAt}.`, '');
    lines.push('| scenario | median ms | p95 ms | mean ms | × bare (median) | overhead ms (median) |', '| --- | ---: | ---: | ---: | ---: | ---: |');
    for (const [scenario, r] of Object.entries(s.results)) {
      lines.push(`| ${scenario} | ${r.medianMs} | ${r.p95Ms} | ${r.meanMs} | ${r.vsBareMedian ?? ''} | ${r.overheadMedianMs ?? ''} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
