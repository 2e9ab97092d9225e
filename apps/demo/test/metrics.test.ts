import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parseDemoArgs } from '../src/args.js';
import { runDemo } from '../src/demo.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-demo-metrics-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('--metrics serves the caches metrics in Prometheus format (via @strata-cache/otel), with the run figures', async () => {
  const parsed = parseDemoArgs(
    ['--metrics', '0', '--requests', '120', '--no-semantic', '--provider', 'simulated', '--latency-scale', '0', '--quiet', '--out', join(dir, 'r.html')],
    {},
  );
  if (!('options' in parsed)) throw new Error(JSON.stringify(parsed));
  expect(parsed.options.metricsPort).toBe(0);
  const run = await runDemo({ ...parsed.options, env: {} });
  try {
    expect(run.metrics?.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(run.metrics!.url)).text();
    const value = (name: string) => Number(new RegExp(`^${name}\\{[^}]*instance="1"[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('strata_cache_requests_total')).toBe(run.summary.requests);
    expect(value('strata_cache_hits_total')).toBe(run.summary.hits);
    expect(text).toMatch(/^strata_layer_hits_total\{[^}]*layer="memory"[^}]*\} \d+/m);
  } finally {
    await run.metrics?.close();
  }
}, 120_000);

it('--metrics needs a port number', () => {
  expect(parseDemoArgs(['--metrics', 'x'], {})).toEqual({ error: expect.stringMatching(/--metrics must be a number/) });
});
