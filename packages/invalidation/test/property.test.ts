import { MultiLayerCache, loaded } from '@strata-cache/core';
import { MemoryLayer } from '@strata-cache/layer-memory';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createInvalidationEngine, tagWhen } from '../src/index.js';
import { chat, deferred } from './helpers.js';
import { DelayedBus, SlowSharedLayer, sleep } from './slow-layer.js';

const PROMPTS = ['q0', 'q1', 'q2', 'q3'];
const tagOf = (i: number) => `t${i % 2}`;

type Op =
  | { kind: 'load'; i: number }
  | { kind: 'release'; j: number }
  | { kind: 'purge'; t: number }
  | { kind: 'lookup'; i: number; slow: boolean }
  | { kind: 'dropL1' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('load' as const), i: fc.nat(3) }),
  fc.record({ kind: fc.constant('release' as const), j: fc.nat(5) }),
  fc.record({ kind: fc.constant('purge' as const), t: fc.nat(1) }),
  fc.record({ kind: fc.constant('lookup' as const), i: fc.nat(3), slow: fc.boolean() }),
  fc.constant({ kind: 'dropL1' as const }),
);

describe('property: after a purge resolves, nothing loaded before it is served', () => {
  it('holds for random interleavings of loads, slow L2 reads and tag purges (L1 + async L2)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        const l1 = new MemoryLayer({ freeze: false });
        const l2 = new SlowSharedLayer();
        const cache = new MultiLayerCache({ layers: [l1, { layer: l2, budgetMs: 5_000 }], defaultTtlMs: null });
        const engine = createInvalidationEngine({ cache, rules: [tagWhen({ prompt: /q[02]/ }, ['t0']), tagWhen({ prompt: /q[13]/ }, ['t1'])] });
        let clock = 0;
        /** value → logical time its load started */
        const loadStart = new Map<string, number>();
        /** tag → every purge of it: when it started and when it had resolved */
        const purges = new Map<string, Array<{ start: number; resolved: number }>>();
        const pending: Array<{ release: () => void; done: Promise<unknown> }> = [];
        const checks: Promise<void>[] = [];
        const violations: string[] = [];
        let seq = 0;

        const check = (i: number, startedAt: number, value: unknown) => {
          const loadedAt = loadStart.get(String(value));
          if (loadedAt === undefined) return;
          // Bound by the guarantee: a purge that started after the load read its source and had
          // resolved before this lookup began.
          const p = (purges.get(tagOf(i)) ?? []).find((x) => x.start > loadedAt && x.resolved < startedAt);
          if (p)
            violations.push(
              `lookup of ${PROMPTS[i]} at ${startedAt} served ${String(value)} (loader called at ${loadedAt}) after a purge of ${tagOf(i)} ran ${p.start}..${p.resolved}`,
            );
        };

        for (const o of ops) {
          switch (o.kind) {
            case 'load': {
              const gate = deferred();
              const value = `${PROMPTS[o.i]}@${seq++}`;
              const done = cache.getOrLoad(chat(PROMPTS[o.i]!), async () => {
                // The loader reads its source when it is called (the lookup before it may take a while).
                loadStart.set(value, clock++);
                await gate.promise;
                return loaded(value);
              });
              pending.push({ release: () => gate.resolve(), done });
              break;
            }
            case 'release': {
              // Not awaited: a load of the same prompt may have joined another's (coalescing),
              // and its result only arrives when that one is released.
              pending[o.j % Math.max(1, pending.length)]?.release();
              await new Promise((r) => setImmediate(r));
              break;
            }
            case 'purge': {
              const tag = `t${o.t}`;
              const start = clock++;
              await engine.purgeTag(tag);
              const list = purges.get(tag) ?? [];
              list.push({ start, resolved: clock++ });
              purges.set(tag, list);
              break;
            }
            case 'lookup': {
              const startedAt = clock++;
              l2.getDelayMs = o.slow ? 3 : 0;
              const p = cache.lookup(chat(PROMPTS[o.i]!)).then((hit) => {
                if (hit) check(o.i, startedAt, hit.entry.value);
              });
              if (o.slow) checks.push(p);
              else await p;
              break;
            }
            case 'dropL1':
              l1.clear();
              break;
          }
        }
        for (const p of pending) p.release();
        await Promise.all(pending.map((p) => p.done));
        await Promise.all(checks);
        await cache.flush();
        // Final sweep: every prompt, looked up now, must not return a value loaded before a purge of its tag.
        for (let i = 0; i < PROMPTS.length; i++) {
          const startedAt = clock++;
          const hit = await cache.lookup(chat(PROMPTS[i]!));
          if (hit) check(i, startedAt, hit.entry.value);
        }
        await engine.close();
        await cache.close();
        expect(violations).toEqual([]);
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 60) },
    );
  });

  it('holds across two processes sharing L2 once the bus has delivered (delayed bus, race repair)', async () => {
    type NodeOp = Op & { node: number };
    const nodeOp: fc.Arbitrary<NodeOp> = fc.tuple(op, fc.nat(1)).map(([o, node]) => ({ ...o, node }));
    await fc.assert(
      fc.asyncProperty(fc.array(nodeOp, { minLength: 5, maxLength: 30 }), fc.integer({ min: 0, max: 6 }), async (ops, delayMs) => {
        const l2 = new SlowSharedLayer();
        const bus = new DelayedBus(delayMs);
        const nodes = [0, 1].map(() => {
          const l1 = new MemoryLayer({ freeze: false });
          const cache = new MultiLayerCache({ layers: [l1, { layer: l2, budgetMs: 5_000 }], defaultTtlMs: null, bus });
          const engine = createInvalidationEngine({ cache, rules: [tagWhen({ prompt: /q[02]/ }, ['t0']), tagWhen({ prompt: /q[13]/ }, ['t1'])] });
          return { l1, cache, engine };
        });
        await Promise.all(nodes.map((n) => n.cache.ready()));
        let clock = 0;
        const loads = new Map<string, { at: number; node: number }>();
        const purges = new Map<string, Array<{ start: number; resolved: number; node: number }>>();
        const pending: Array<{ release: () => void; done: Promise<unknown> }> = [];
        const checks: Promise<void>[] = [];
        const violations: string[] = [];
        let seq = 0;
        /**
         * sameNodeOnly (mid-run): a process is bound by its own purges at once, whoever loaded the
         * value (answers carry when their request began); by other processes' purges only once
         * the bus has delivered (the final sweep).
         */
        const check = (node: number, i: number, startedAt: number, value: unknown, sameNodeOnly: boolean) => {
          const l = loads.get(String(value));
          if (!l) return;
          const p = (purges.get(tagOf(i)) ?? []).find((x) => x.start > l.at && x.resolved < startedAt && (!sameNodeOnly || x.node === node));
          if (p)
            violations.push(
              `node ${node} lookup of ${PROMPTS[i]} at ${startedAt} served ${String(value)} (loader on node ${l.node} at ${l.at}) after node ${p.node} purged ${tagOf(i)} ${p.start}..${p.resolved}`,
            );
        };
        for (const o of ops) {
          const n = nodes[o.node]!;
          switch (o.kind) {
            case 'load': {
              const gate = deferred();
              const value = `${PROMPTS[o.i]}@${seq++}`;
              const done = n.cache.getOrLoad(chat(PROMPTS[o.i]!), async () => {
                loads.set(value, { at: clock++, node: o.node });
                await gate.promise;
                return loaded(value);
              });
              pending.push({ release: () => gate.resolve(), done });
              break;
            }
            case 'release':
              pending[o.j % Math.max(1, pending.length)]?.release();
              await new Promise((r) => setImmediate(r));
              break;
            case 'purge': {
              const tag = `t${o.t}`;
              const start = clock++;
              await n.engine.purgeTag(tag);
              const list = purges.get(tag) ?? [];
              list.push({ start, resolved: clock++, node: o.node });
              purges.set(tag, list);
              break;
            }
            case 'lookup': {
              const startedAt = clock++;
              l2.getDelayMs = o.slow ? 3 : 0;
              const p = n.cache.lookup(chat(PROMPTS[o.i]!)).then((hit) => {
                if (hit) check(o.node, o.i, startedAt, hit.entry.value, true);
              });
              if (o.slow) checks.push(p);
              else await p;
              break;
            }
            case 'dropL1':
              n.l1.clear();
              break;
          }
        }
        for (const p of pending) p.release();
        await Promise.all(pending.map((p) => p.done));
        await Promise.all(checks);
        // Let the bus deliver and the repairs (and their own messages) run.
        for (let round = 0; round < 3; round++) {
          await Promise.all(nodes.map((n) => n.cache.flush()));
          await sleep(delayMs * 2 + 5);
          await Promise.all(nodes.map((n) => n.engine.settled()));
        }
        await Promise.all(nodes.map((n) => n.cache.flush()));
        for (const [node, n] of nodes.entries()) {
          for (let i = 0; i < PROMPTS.length; i++) {
            const startedAt = clock++;
            const hit = await n.cache.lookup(chat(PROMPTS[i]!));
            if (hit) check(node, i, startedAt, hit.entry.value, false);
          }
        }
        for (const n of nodes) {
          await n.engine.close();
          await n.cache.close();
        }
        expect(violations).toEqual([]);
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 40) },
    );
  });
});
