import { getEventListeners } from 'node:events';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { untilAborted } from '../src/index.js';

describe('untilAborted', () => {
  it('settles with the work and leaves no listener on the signal, whether the work ends at once or after a while', async () => {
    const ac = new AbortController();
    await expect(untilAborted(Promise.resolve(7), ac.signal)).resolves.toBe(7);
    await expect(untilAborted(Promise.reject(new Error('boom')), ac.signal)).rejects.toThrow('boom');
    let finish!: (v: string) => void;
    const p = untilAborted(
      new Promise<string>((resolve) => {
        finish = resolve;
      }),
      ac.signal,
    );
    await turn();
    await turn();
    // Still pending a turn later: now it listens.
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    finish('late');
    await expect(p).resolves.toBe('late');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('rejects with the reason when the signal aborts while the work goes on, before or after it started listening', async () => {
    const early = new AbortController();
    const never = new Promise<never>(() => undefined);
    const a = untilAborted(never, early.signal);
    early.abort(new Error('gone early'));
    await expect(a).rejects.toThrow('gone early');

    const late = new AbortController();
    const b = untilAborted(never, late.signal);
    await turn();
    await turn();
    late.abort(new Error('gone late'));
    await expect(b).rejects.toThrow('gone late');
    expect(getEventListeners(late.signal, 'abort')).toHaveLength(0);

    const already = new AbortController();
    already.abort();
    await expect(untilAborted(never, already.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('many waits on one signal: those that end first never listen, the rest all reject on abort', async () => {
    const ac = new AbortController();
    let added = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...args: Parameters<AbortSignal['addEventListener']>) => {
      added++;
      add(...args);
    }) as AbortSignal['addEventListener'];
    const quick = Array.from({ length: 50 }, (_, i) => untilAborted(Promise.resolve(i), ac.signal));
    const slow = Array.from({ length: 5 }, () => untilAborted(new Promise<never>(() => undefined), ac.signal));
    expect(await Promise.all(quick)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await turn();
    await turn();
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(5);
    expect(added).toBe(5);
    ac.abort();
    for (const p of slow) await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });
});
