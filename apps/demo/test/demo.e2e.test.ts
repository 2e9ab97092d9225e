import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisForTests } from '@strata-cache/test-utils';
import { afterAll, describe, expect, it } from 'vitest';
import { type DemoResult, runDemo } from '../src/demo.js';
import { checkReportRenders, findChromium } from '../src/render-check.js';

const chromium = findChromium();

const dir = mkdtempSync(join(tmpdir(), 'strata-demo-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { requests: 300, concurrency: 8, latencyScale: 0.05, provider: 'simulated' as const, print: false, env: {} };

describe('demo, end to end on the simulated provider', () => {
  let run: DemoResult;

  it('runs a short support-bot day and writes the report', async () => {
    run = await runDemo({ ...base, out: join(dir, 'report.html') });
    expect(existsSync(run.htmlPath)).toBe(true);
    expect(existsSync(run.jsonPath)).toBe(true);
    const html = readFileSync(run.htmlPath, 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('SIMULATED provider');
    expect(html).not.toMatch(/<script|https?:\/\/(?!127\.0\.0\.1)/);
    expect(run.text).toContain('SIMULATED');
  }, 180_000);

  // Skips where no Chromium is installed (apt-get install chromium, or CHROMIUM=/path/to/chrome).
  it.skipIf(!chromium)(
    'the report renders in headless Chromium: charts drawn, page not blank',
    () => {
      const r = checkReportRenders(chromium!, run.htmlPath);
      expect(r.problems).toEqual([]);
      // The same check fails on a page whose charts are missing.
      const bare = join(dir, 'bare.html');
      writeFileSync(
        bare,
        readFileSync(run.htmlPath, 'utf8')
          .replace(/<svg[\s\S]*?<\/svg>/g, '')
          .replace(/<i class="sw"[^>]*><\/i>|<i style="[^"]*"><\/i>/g, ''),
      );
      expect(checkReportRenders(chromium!, bare).problems.join('; ')).toMatch(/charts not rendered/);
    },
    120_000,
  );

  it('counts add up: hits + misses = requests, in the run and in the cache', () => {
    const s = run.summary;
    expect(s.requests).toBe(300);
    expect(s.errors).toBe(0);
    expect(s.hits + s.misses).toBe(s.requests);
    expect(s.cacheStats.hits + s.cacheStats.misses + s.cacheStats.bypassed).toBe(s.requests);
    expect(s.cacheStats.hits).toBe(s.hits);
    expect(s.byPath.L1.count + s.byPath.L2.count + s.byPath.L3.count + s.byPath.upstream.count).toBe(s.requests);
    const layerHits = Object.values(s.cacheStats.layers).reduce((n, l) => n + l.hits, 0);
    expect(layerHits).toBe(s.hits);
    // Every loader call reached the provider, and nothing else did.
    expect(s.upstream.providerCalls).toBe(s.upstream.calls);
    expect(s.upstream.avoided).toBe(s.requests - s.upstream.calls);
  });

  it('serves no stale and no cross-tenant answer, and the checks looked at every answer', () => {
    const c = run.summary.checks;
    expect(c.checked).toBe(run.summary.requests);
    expect(c.stale).toBe(0);
    expect(c.crossTenant).toBe(0);
    expect(c.labelMismatches).toBe(0);
    expect(run.summary.exitCode).toBe(0);
  });

  it('gets semantic hits', () => {
    expect(run.summary.byPath.L3.count).toBeGreaterThan(0);
    expect(run.summary.examples.semanticHits.length).toBeGreaterThan(0);
  });

  it('the L3 calibrates by default, and the report shows it at work', () => {
    const c = run.summary.calibration!;
    expect(c).toBeDefined();
    expect(c.budget).toEqual({ maxWrongRate: 0.005, shadowRate: 0.1 });
    expect(c.lookups).toBeGreaterThan(0);
    expect(c.nearMissesJudged).toBeGreaterThan(0);
    expect(c.boundariesLearned).toBeGreaterThan(0);
    // Never more shadow checks than the share allowed (the first one aside).
    expect(c.shadowChecks).toBeLessThanOrEqual(Math.ceil(0.1 * (c.served + c.shadowChecks)) + 1);
    expect(run.text).toMatch(/Calibration \(L3, budget 0\.5%/);
    expect(readFileSync(run.htmlPath, 'utf8')).toContain('Calibration (L3)');
    // Every L3 hit on trust is counted by the layer (the run counts L3 exact hits too).
    expect(c.served).toBeLessThanOrEqual(run.summary.byPath.L3.count);
  });

  it('the pricing event purged entries and later pricing answers quote the new prices', () => {
    const inv = run.summary.invalidation;
    expect(inv.events).toHaveLength(1);
    expect(inv.purgedTotal).toBeGreaterThan(0);
    expect(inv.after.pricingRequests).toBeGreaterThan(0);
    expect(inv.after.stale).toBe(0);
    expect(inv.after.current).toBe(inv.after.pricingRequests);
    expect(inv.after.fromUpstream).toBeGreaterThan(0);
  });

  it('USD saved equals what the avoided calls cost, and the projection follows the seed formula', () => {
    const s = run.summary;
    const json = JSON.parse(readFileSync(run.jsonPath, 'utf8')) as { records: Array<{ path: string; usd: number }> };
    const savedByRecords = json.records.filter((r) => r.path !== 'upstream').reduce((n, r) => n + r.usd, 0);
    expect(s.usd.saved).toBeGreaterThan(0);
    expect(savedByRecords).toBeCloseTo(s.usd.saved, 9);
    const m = s.usd.monthly;
    expect(m.usd).toBeCloseTo(m.dailyRequests * m.hitRate * (m.tokensPerRequest / 1e6) * m.pricePerMillion * 30, 6);
    expect(s.providerPromptCache.cachedTokens).toBeGreaterThan(0);
  });
});

describe('with L2 Redis and two app instances', () => {
  it('serves L2 hits across instances and the pricing purge reaches the other instance', async () => {
    const { url } = await redisForTests();
    const r = await runDemo({ ...base, redisUrl: url, out: join(dir, 'redis.html') });
    const s = r.summary;
    expect(s.errors).toBe(0);
    expect(s.hits + s.misses).toBe(s.requests);
    expect(s.cacheStats.hits).toBe(s.hits);
    expect(s.byPath.L2.count).toBeGreaterThan(0);
    expect(s.checks.stale).toBe(0);
    expect(s.checks.crossTenant).toBe(0);
    const e = s.invalidation.events[0]!;
    expect(Object.keys(e.purged).some((k) => k.includes('instance 2'))).toBe(true);
    expect(e.detail).toMatch(/reached instance 2 in/);
    expect(s.invalidation.after.current).toBe(s.invalidation.after.pricingRequests);
    expect(s.exitCode).toBe(0);
  }, 180_000);
});

describe('with the Anthropic adapter (--api anthropic)', () => {
  it('runs the day through @strata-cache/anthropic against the simulated Messages API', async () => {
    const r = await runDemo({ ...base, api: 'anthropic', semantic: false, out: join(dir, 'anthropic.html') });
    const s = r.summary;
    expect(s.provider.label).toMatch(/Anthropic Messages/);
    expect(s.components.join('\n')).toMatch(/@strata-cache\/anthropic/);
    expect(s.errors).toBe(0);
    expect(s.hits + s.misses).toBe(s.requests);
    expect(s.hits).toBeGreaterThan(0);
    expect(s.upstream.providerCalls).toBe(s.upstream.calls);
    expect(s.checks.checked).toBe(s.requests);
    expect(s.checks.stale).toBe(0);
    expect(s.checks.crossTenant).toBe(0);
    expect(s.invalidation.after.current).toBe(s.invalidation.after.pricingRequests);
    expect(s.providerPromptCache.cachedTokens).toBeGreaterThan(0);
    expect(s.exitCode).toBe(0);
  }, 120_000);
});

describe('the checks catch a broken stack', () => {
  it('without the purge, stale pricing answers are served and the exit code is 1', async () => {
    const r = await runDemo({ ...base, semantic: false, fault: 'no-invalidation', out: join(dir, 'stale.html') });
    expect(r.summary.checks.stale).toBeGreaterThan(0);
    expect(r.summary.exitCode).toBe(1);
  }, 120_000);

  it('with both tenants in one scope, cross-tenant answers are served and the exit code is 1', async () => {
    const r = await runDemo({ ...base, semantic: false, fault: 'shared-scope', out: join(dir, 'shared.html') });
    expect(r.summary.checks.crossTenant).toBeGreaterThan(0);
    expect(r.summary.exitCode).toBe(1);
  }, 120_000);
});

describe('--workload replays a JSONL file', () => {
  it('runs the lines in order, applies the event, and skips wrong-hit checks on unlabelled lines', async () => {
    const file = join(dir, 'w.jsonl');
    const q = (tenant: string, text: string, extra: Record<string, unknown> = {}) => JSON.stringify({ tenant, prompt: text, ...extra });
    writeFileSync(
      file,
      [
        q('acme', 'How much does the Pro plan cost per month?', { intent: 'pricing-pro-monthly' }),
        q('acme', 'How much does the Pro plan cost per month?', { intent: 'pricing-pro-monthly' }),
        q('globex', 'How much does the Pro plan cost per month?', { intent: 'pricing-pro-monthly', stream: true }),
        JSON.stringify({ event: 'pricing_changed', tenant: 'acme' }),
        q('acme', 'How much does the Pro plan cost per month?', { intent: 'pricing-pro-monthly' }),
        q('acme', 'Something nobody labelled'),
      ].join('\n'),
    );
    const r = await runDemo({ ...base, semantic: false, workload: file, concurrency: 1, out: join(dir, 'replay.html') });
    const s = r.summary;
    expect(s.requests).toBe(5);
    expect(s.workload.labelled).toBe(false);
    expect(s.hits).toBe(1); // the second line; globex is another tenant, the event purged acme's entry
    expect(s.checks.stale).toBe(0);
    expect(s.invalidation.after.pricingRequests).toBe(1);
    expect(s.invalidation.after.fromUpstream).toBe(1);
    expect(s.exitCode).toBe(0);
  }, 60_000);

  it('names the line of a bad file', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"prompt":"ok"}\n{not json}\n');
    await expect(runDemo({ ...base, workload: file })).rejects.toThrow(/bad\.jsonl:2/);
  });
});
