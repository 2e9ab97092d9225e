import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisServerHandle, startRedisServer } from '@strata-cache/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo } from '../src/demo.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-demo-fleet-'));
let redis: RedisServerHandle;
beforeAll(async () => {
  redis = await startRedisServer();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('--workers: the day across worker processes sharing one Redis', () => {
  it('runs on 2 workers beside the same day on 1, checks every answer, and reports both', async () => {
    const r = await runDemo({
      requests: 300,
      concurrency: 8,
      latencyScale: 0.05,
      provider: 'simulated',
      print: false,
      env: {},
      redisUrl: redis.url,
      workers: 2,
      out: join(dir, 'fleet.html'),
    });
    const s = r.summary;
    const f = s.fleet!;
    expect(f.workers).toBe(2);
    expect(s.requests).toBe(300);
    expect(s.errors).toBe(0);
    expect(s.checks.checked).toBe(300);
    for (const run of [f.run, f.single!]) {
      expect(run).toMatchObject({ requests: 300, errors: 0, stale: 0, crossTenant: 0 });
      expect(run.L1 + run.L2 + run.L3 + run.upstream).toBe(300);
    }
    expect(f.single!.workers).toBe(1);
    expect(f.run.L3).toBeGreaterThan(0);
    // Both workers served requests, and each one's L3 received the other's entries through the feed.
    expect(f.perWorker).toHaveLength(2);
    for (const w of f.perWorker) {
      expect(w.requests).toBeGreaterThan(0);
      expect(w.applied).toBeGreaterThan(0);
      expect(w.resyncs).toBe(0);
    }
    // Both reports exist; the fleet's shows the comparison.
    expect(readFileSync(f.single!.reportPath, 'utf8')).toContain('<svg');
    expect(readFileSync(r.htmlPath, 'utf8')).toContain('Fleet: 2 worker processes sharing one Redis');
    expect(r.text).toMatch(/L3 answers: \d+ with 2 worker processes vs \d+ with one/);
    // The pricing event reached the other worker, and later pricing answers are current.
    expect(s.invalidation.events[0]!.detail).toMatch(/reached worker 2 in \d+ ms/);
    expect(s.invalidation.after.stale).toBe(0);
    expect(s.exitCode).toBe(0);
  }, 300_000);
});
