/** What `watchOutput` needs of a cache: event subscription and stats (a `MultiLayerCache`). */
export interface WatchedCache {
  on(event: never, listener: never): unknown;
  stats(): unknown;
}

const EVENTS = ['hit', 'miss', 'set', 'error', 'reject', 'invalidate', 'skipWrite'] as const;
const CONSOLE = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;

/**
 * Records everything a cache tells the outside world while a test runs: every cache event
 * and every console line (console output is captured, not printed, until `restore()`).
 * `dump()` is that record as one lower-cased string (errors with their message, stack and
 * cause), for "no secret in any log" checks.
 */
export function watchOutput(cache: WatchedCache) {
  const events: Array<{ name: string; payload: unknown }> = [];
  const on = cache.on.bind(cache) as unknown as (n: string, f: (p: unknown) => void) => unknown;
  for (const name of EVENTS) on(name, (payload) => events.push({ name, payload }));
  const logged: unknown[][] = [];
  const original = CONSOLE.map((m) => [m, console[m]] as const);
  for (const m of CONSOLE) console[m] = (...args: unknown[]) => void logged.push(args);
  const replacer = (_k: string, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message, stack: v.stack, cause: String(v.cause) } : v);
  return {
    events,
    logged,
    dump: () => JSON.stringify({ events, logged, stats: cache.stats() }, replacer).toLowerCase(),
    restore: () => {
      for (const [m, f] of original) console[m] = f;
    },
  };
}
