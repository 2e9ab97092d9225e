import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MultiLayerCache } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import { redisUrlForTests, uniqueKeyPrefix } from '@strata-cache/test-utils';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM fixture shared with the benchmark (no type declarations)
import { createNode, inspect } from './fixtures/process.mjs';
import { createInvalidationEngine } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Child {
  proc: ChildProcess;
  semantic: boolean;
  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T>;
  invalidations: Array<{ at: number; message: { type: string } }>;
  close(): Promise<void>;
}

async function spawnChild(config: Record<string, unknown>): Promise<Child> {
  const proc = fork(join(here, 'fixtures/process.mjs'), [], {
    env: { ...process.env, STRATA_INVALIDATION_CHILD: '1', STRATA_INVALIDATION_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  const invalidations: Child['invalidations'] = [];
  let nextId = 1;
  const ready = new Promise<{ semantic: boolean }>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`child exited early with code ${code}`)));
    proc.on('message', (m: { type?: string; id?: number; result?: unknown; error?: string; semantic?: boolean; at?: number; message?: { type: string } }) => {
      if (m.type === 'ready') resolve({ semantic: Boolean(m.semantic) });
      else if (m.type === 'invalidated') invalidations.push({ at: m.at!, message: m.message! });
      else if (m.id !== undefined) {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.error) p?.reject(new Error(m.error));
        else p?.resolve(m.result);
      }
    });
  });
  const { semantic } = await ready;
  const call = <T>(op: string, args: Record<string, unknown> = {}) =>
    new Promise<T>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      proc.send({ id, op, ...args });
    });
  return {
    proc,
    semantic,
    call,
    invalidations,
    close: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.removeAllListeners('exit');
      await call('close').catch(() => undefined);
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    },
  };
}

/** Polls `check` until it holds or `ms` pass; returns the elapsed time. Bounded, not timed. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
  return Date.now() - t0;
}

describe('two processes sharing Redis', () => {
  let child: Child;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let parent: any;
  const prefix = uniqueKeyPrefix('invalidation');

  beforeAll(async () => {
    const redisUrl = await redisUrlForTests();
    parent = await createNode({ redisUrl, prefix });
    child = await spawnChild({ redisUrl, prefix });
  });

  afterAll(async () => {
    await child?.close();
    if (parent) {
      await parent.cache.clear(); // removes this test's keys (unique prefix) from Redis
      await parent.engine.close();
      await parent.cache.close();
    }
  });

  it('an event in one process purges L1 and L3 in the other', async () => {
    const text = 'Is product 42 waterproof?';
    expect(await child.call('load', { text, answer: 'yes (v1)', tags: ['product:42'] })).toEqual({ status: 'miss', value: 'yes (v1)' });
    const before = await child.call<Record<string, boolean>>('inspect', { text, paraphrase: 'is product 42 waterproof' });
    expect(child.semantic).toBe(true);
    expect(before).toEqual({ l1: true, l2: true, l3: true, l3search: true });

    const audit = await parent.engine.emit('product_updated', { id: 42 });
    expect(audit.layers.redis).toBeGreaterThanOrEqual(1); // the shared L2 copy, purged by the emitter

    // the other process stops serving it within a bounded delay (generous bound; the bench measures it)
    await within(5_000, async () => {
      const s = await child.call<Record<string, boolean>>('inspect', { text, paraphrase: 'is product 42 waterproof' });
      return !s.l1 && !s.l2 && !s.l3 && !s.l3search;
    });
    expect(await child.call('lookup', { text })).toBeNull();
    expect(child.invalidations.some((i) => i.message.type === 'tag')).toBe(true);
    // and the emitter's own layers hold nothing either
    const mine = await inspect(parent, text, 'is product 42 waterproof');
    expect(Object.values(mine).some(Boolean)).toBe(false);
  });

  it("a slow load in one process that finishes after another process's event is not stored anywhere", async () => {
    const text = 'product 5 stock level?';
    await child.call('loadSlow', { text, answer: '12 (old)', tags: ['product:5'] });
    const seen = child.invalidations.length;
    await parent.engine.emit('product_updated', { id: 5 });
    await within(5_000, async () => child.invalidations.slice(seen).some((i) => i.message.type === 'tag'));
    const r = await child.call<{ status: string; stored: boolean; value: string }>('release', { text });
    expect(r).toEqual({ status: 'miss', stored: false, value: '12 (old)' });
    expect(await child.call('inspect', { text })).toEqual({ l1: false, l2: false, l3: false });
    expect(
      await parent.cache.lookup({
        model: 'gpt-4o-mini',
        temperature: 0,
        messages: [
          { role: 'system', content: 'Shop assistant.' },
          { role: 'user', content: text },
        ],
      }),
    ).toBeUndefined();
  });

  it('a prompt purge in one process reaches entries the other process wrote (via the shared L2 scan)', async () => {
    const texts = ['How do refunds work for product 1?', 'refund window for product 2', 'product 3 colours'];
    for (const text of texts) await child.call('load', { text, answer: 'a', tags: [] });
    const report = await parent.engine.purgeByPrompt(/refund/i, { pageSize: 50 });
    expect(report.complete).toBe(true);
    expect(report.purged).toBe(2);
    expect(report.layers.redis).toBe(2);
    for (const text of texts.slice(0, 2)) {
      await within(5_000, async () => {
        const s = await child.call<Record<string, boolean>>('inspect', { text });
        return !s.l1 && !s.l2 && !s.l3;
      });
    }
    expect(await child.call<Record<string, boolean>>('inspect', { text: texts[2] })).toEqual({ l1: true, l2: true, l3: true });
  });

  it('a version bump from trackConfig reaches the other process', async () => {
    expect(await child.call('scopeVersion', { scope: 'acme' })).toBe(0);
    await parent.engine.trackConfig('acme', { systemPrompt: 'v1', model: 'gpt-4o' });
    const r = await parent.engine.trackConfig('acme', { systemPrompt: 'v2', model: 'gpt-4o' });
    expect(r).toMatchObject({ changed: true, version: 1 });
    await within(5_000, async () => (await child.call('scopeVersion', { scope: 'acme' })) === 1);
  });

  it('an event emitted in the child purges the parent too', async () => {
    const text = 'product 7 battery life';
    await parent.cache.getOrLoad(
      {
        model: 'gpt-4o-mini',
        temperature: 0,
        messages: [
          { role: 'system', content: 'Shop assistant.' },
          { role: 'user', content: text },
        ],
      },
      () => '10 h',
    );
    await parent.cache.flush();
    expect((await inspect(parent, text)).l1).toBe(true);
    await child.call('emit', { event: 'product_updated', data: { id: 7 } }); // topic:product covers it
    await within(5_000, async () => !(await inspect(parent, text)).l1);
    expect((await inspect(parent, text)).l2).toBe(false);
  });
});

describe('versionStore on Redis (an ioredis client)', () => {
  it('a restarted process with a changed config bumps past the stored version; an unchanged one adopts it', async () => {
    const client = new Redis(await redisUrlForTests());
    const versionStorePrefix = uniqueKeyPrefix('inv-version') + ':';
    try {
      const start = () => {
        const cache = new MultiLayerCache({ layers: [new MemoryLayer()] });
        return { cache, engine: createInvalidationEngine({ cache, versionStore: client, versionStorePrefix }) };
      };
      const p1 = start();
      expect(await p1.engine.trackConfig('acme', { systemPrompt: 'v1' })).toMatchObject({ changed: false, version: 0 });
      expect(await p1.engine.trackConfig('acme', { systemPrompt: 'v2' })).toMatchObject({ changed: true, version: 1 });
      const p2 = start(); // "restart" with a new deployment
      expect(await p2.engine.trackConfig('acme', { systemPrompt: 'v3' })).toMatchObject({ changed: true, version: 2, changedFields: ['systemPrompt'] });
      const p3 = start(); // another replica of the same deployment
      expect(await p3.engine.trackConfig('acme', { systemPrompt: 'v3' })).toMatchObject({ changed: false, version: 2 });
      expect(p3.cache.resolveScope('acme').version).toBe(2);
    } finally {
      await client.del(versionStorePrefix + 'acme/default');
      await client.quit();
    }
  });
});
