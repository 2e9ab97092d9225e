/**
 * Time limits that do not blame a layer for the event loop.
 *
 * Under a burst (hundreds of requests started in one synchronous stretch) the loop can be busy
 * for tens of ms after an operation was started, and again before its answer is read. Counting
 * that as the layer's time turns a healthy layer into timeouts (and a Redis layer's breaker
 * open). Two rules avoid it:
 *
 * 1. A limit starts when the operation has actually started running: at the `setImmediate`
 *    after it was started (a Redis command handed to ioredis is written in a `setImmediate`
 *    callback queued before it; a burst's synchronous part is over by then).
 * 2. When a limit expires, the verdict waits for one more turn of the loop (`setImmediate` runs
 *    after the poll phase): an answer that arrived while the loop was busy is read first, and
 *    the operation counts as answered.
 *
 * Core's per-layer budgets and the Redis layer's command limits both use these.
 */

interface Node {
  deadline: number;
  done: boolean;
  fire: () => void;
  next: Node | undefined;
}

/**
 * Time limits for many concurrent operations with ONE timer: operations with the same limit
 * expire in the order they started, so a FIFO list sorted by construction suffices. A hit on
 * the hot path then costs an array push and a flag, not a setTimeout/clearTimeout pair.
 */
export class DeadlineQueue {
  private head: Node | undefined;
  private tail: Node | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Added since the last start (their clock starts at the next setImmediate). */
  private starting: Node[] = [];
  private startQueued = false;
  private starts = 0;

  constructor(readonly ms: number) {}

  /**
   * Which start the next `add` joins: operations added while this number stays the same start
   * their clocks together, so they share one deadline and expire in the same turn.
   */
  get batch(): number {
    return this.starts;
  }

  /** Calls `fire` `ms` after the operation started running unless the returned handle is marked done first. */
  add(fire: () => void): { done: boolean } {
    const node: Node = { deadline: 0, done: false, fire, next: undefined };
    // Operations that settle in microtasks (a fast failure, a sync answer behind a promise) can
    // run for a long stretch without the loop reaching the next turn: drop the settled ones as
    // they pile up, so the list stays as long as what is really in flight.
    if (this.starting.length >= 1_024 && (this.starting.length & 1_023) === 0) this.starting = this.starting.filter((n) => !n.done);
    this.starting.push(node);
    if (!this.startQueued) {
      this.startQueued = true;
      setImmediate(this.start);
    }
    return node;
  }

  private readonly start = (): void => {
    this.startQueued = false;
    this.starts++;
    const now = Date.now();
    const batch = this.starting;
    this.starting = [];
    // Operations mostly finish in the order they started: drop finished ones from the head, so
    // the list holds only what is in flight.
    let h = this.head;
    while (h?.done) h = h.next;
    this.head = h;
    if (!h) this.tail = undefined;
    for (const node of batch) {
      if (node.done) continue;
      node.deadline = now + this.ms;
      if (this.tail) this.tail.next = node;
      else this.head = node;
      this.tail = node;
    }
    if (!this.timer && this.head) this.arm(this.head.deadline - now);
  };

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.tick(), Math.max(1, ms));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    const now = Date.now();
    const expired: Node[] = [];
    let n = this.head;
    while (n && (n.done || n.deadline <= now)) {
      if (!n.done) expired.push(n);
      n = n.next;
    }
    this.head = n;
    if (!n) this.tail = undefined;
    else this.arm(n.deadline - now);
    if (expired.length > 0) {
      setImmediate(() => {
        for (const e of expired) {
          if (e.done) continue;
          e.done = true;
          e.fire();
        }
      });
    }
  }
}

/**
 * Settles with `p`, or rejects with `onTimeout()` when `ms` pass first (counted from the next
 * setImmediate, with the verdict deferred by one loop turn: see the module comment).
 */
export function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const expire = () =>
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(onTimeout());
      });
    const start = setImmediate(() => {
      if (!settled) timer = setTimeout(expire, Math.max(1, ms));
    });
    p.then(
      (v) => {
        if (settled) return;
        settled = true;
        clearImmediate(start);
        if (timer) clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        if (settled) return;
        settled = true;
        clearImmediate(start);
        if (timer) clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/**
 * `p`'s value when it settles within `ms`, else undefined (it runs on). `p` never rejects.
 * `unref`: the wait alone does not keep the process alive.
 */
export async function settledWithin<T>(p: Promise<T>, ms: number, unref = false): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(resolve, ms, undefined);
    if (unref) timer.unref?.();
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
