/** What an aborted signal rejects with: its own reason, or a DOMException named `AbortError`. */
export function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

/** True for the errors an aborted fetch or SDK call rejects with (`AbortError`, `TimeoutError`). */
export function isAbortError(error: unknown): boolean {
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  return name === 'AbortError' || name === 'TimeoutError';
}

/**
 * Settles with `promise`, or rejects once `signal` aborts: a caller waiting on work it shares
 * with others (a coalesced load, a stream another caller leads) must still be able to leave. The
 * work itself goes on; its outcome is then ignored.
 *
 * Most waits end within a few microtasks (a cache hit), so the abort listener is only added to
 * waits still pending at the next turn of the event loop, for all of them at once: a wait that
 * ends first never touches the signal's listeners. An abort before then rejects at that turn.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(abortReason(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const wait: Wait = { signal, reject, done: false, onAbort: undefined };
    promise.then(
      (v) => {
        settle(wait);
        resolve(v);
      },
      (e: unknown) => {
        settle(wait);
        reject(e);
      },
    );
    waiting.push(wait);
    if (waiting.length === 1) later(arm);
  });
}

interface Wait {
  readonly signal: AbortSignal;
  readonly reject: (reason: unknown) => void;
  done: boolean;
  onAbort: (() => void) | undefined;
}

let waiting: Wait[] = [];

const later: (fn: () => void) => void =
  typeof setImmediate === 'function'
    ? (fn) => {
        setImmediate(fn);
      }
    : (fn) => {
        setTimeout(fn, 0);
      };

function settle(wait: Wait): void {
  wait.done = true;
  if (wait.onAbort) wait.signal.removeEventListener('abort', wait.onAbort);
}

function arm(): void {
  const list = waiting;
  waiting = [];
  for (const wait of list) {
    if (wait.done) continue;
    const onAbort = () => {
      if (wait.done) return;
      wait.done = true;
      wait.reject(abortReason(wait.signal));
    };
    if (wait.signal.aborted) {
      onAbort();
      continue;
    }
    wait.onAbort = onAbort;
    wait.signal.addEventListener('abort', onAbort, { once: true });
  }
}
