interface Node {
  deadline: number;
  done: boolean;
  fire: () => void;
  next: Node | undefined;
}

/**
 * Time limits for many concurrent operations with ONE timer: operations with the same limit
 * expire in the order they started, so a FIFO list sorted by construction suffices. A hit on
 * the hot path then costs a list append and a flag, not a setTimeout/clearTimeout pair.
 */
export class DeadlineQueue {
  private head: Node | undefined;
  private tail: Node | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly ms: number) {}

  /** Calls `fire` after `ms` unless the returned handle is marked done first. */
  add(fire: () => void): { done: boolean } {
    // Operations mostly finish in the order they started: drop finished ones from the head now,
    // so the list holds only what is in flight (no garbage kept alive until the next tick).
    let h = this.head;
    while (h && h.done) h = h.next;
    this.head = h;
    if (!h) this.tail = undefined;
    const node: Node = { deadline: Date.now() + this.ms, done: false, fire, next: undefined };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    if (!this.timer) this.arm(this.ms);
    return node;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.tick(), Math.max(1, ms));
    this.timer.unref();
  }

  private tick(): void {
    this.timer = undefined;
    const now = Date.now();
    let n = this.head;
    while (n && (n.done || n.deadline <= now)) {
      if (!n.done) {
        n.done = true;
        n.fire();
      }
      n = n.next;
    }
    this.head = n;
    if (!n) this.tail = undefined;
    else this.arm(n.deadline - now);
  }
}
