import { type AddressInfo, connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LayerTimeoutError, MultiLayerCache, type StrataError } from '../src/index.js';
import { TestLayer } from './helpers.js';

const req = (content: string) => ({ model: 'gpt-4o-mini', temperature: 0, messages: [{ role: 'user', content }] });

describe('layer budgets do not count the event loop', () => {
  it('a burst of 250 identical misses whose synchronous part outlasts the budget raises no LayerTimeoutError', async () => {
    // A remote layer whose answers come over a loopback socket (read in the loop's poll phase,
    // as Redis replies are), while the process spends 60 ms starting the burst (three budgets).
    const echo = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const socket = connect((echo.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const waiting = new Map<number, () => void>();
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const id = Number(buf.slice(0, i));
        buf = buf.slice(i + 1);
        waiting.get(id)?.();
        waiting.delete(id);
      }
    });
    let next = 0;
    const l2 = new TestLayer('l2', { shared: true });
    l2.get = () =>
      new Promise((resolve) => {
        const id = next++;
        waiting.set(id, () => resolve(undefined));
        socket.write(id + '\n');
      });
    try {
      const cache = new MultiLayerCache({ layers: [{ layer: l2, budgetMs: 20 }] });
      const errors: StrataError[] = [];
      cache.on('error', (e) => errors.push(e.error));
      let calls = 0;
      const burst = Array.from({ length: 250 }, () =>
        cache.getOrLoad(req('the burst question'), async () => {
          calls++;
          return 'answer';
        }),
      );
      const t0 = performance.now();
      while (performance.now() - t0 < 60) {
        // the burst's synchronous work (parsing requests, keys, ...)
      }
      const results = await Promise.all(burst);
      expect(results.every((r) => r.value === 'answer')).toBe(true);
      expect(calls).toBe(1);
      expect(errors.filter((e) => LayerTimeoutError.isInstance(e))).toEqual([]);
      expect(cache.stats().layers['l2']!.timeouts).toBe(0);
    } finally {
      socket.destroy();
      echo.close();
    }
  });

  it('a layer that does not answer still times out, counted from when its operation started', async () => {
    const l2 = new TestLayer('l2', { shared: true });
    l2.mode = 'hang';
    const cache = new MultiLayerCache({ layers: [{ layer: l2, budgetMs: 30 }] });
    const errors: StrataError[] = [];
    cache.on('error', (e) => errors.push(e.error));
    const t0 = performance.now();
    expect(await cache.lookup(req('q'))).toBeUndefined();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(29);
    expect(errors.some((e) => LayerTimeoutError.isInstance(e))).toBe(true);
  });
});
