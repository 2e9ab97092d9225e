/** Circuit breaker states: `closed` = calling Redis, `open` = failing fast, `half-open` = one probe in flight. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerSettings {
  failureThreshold: number;
  cooldownMs: number;
  probe: () => Promise<void>;
  onStateChange?: (state: BreakerState, cause?: unknown) => void;
}

/**
 * Consecutive availability failures (timeouts, connection errors) open the circuit; while open
 * every operation fails immediately (cost ~0). After `cooldownMs` a single background probe
 * runs (half-open); success closes the circuit, failure re-opens it for another cooldown.
 * Recovery therefore needs no traffic and no caller ever waits on the probe.
 */
export class CircuitBreaker {
  private current: BreakerState = 'closed';
  private consecutive = 0;
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  opens = 0;

  constructor(private readonly s: BreakerSettings) {}

  get state(): BreakerState {
    return this.current;
  }

  /** True when a call may go to Redis. */
  allow(): boolean {
    return this.current === 'closed';
  }

  success(): void {
    this.consecutive = 0;
  }

  failure(cause: unknown): void {
    if (this.current !== 'closed') return;
    this.consecutive++;
    if (this.consecutive >= this.s.failureThreshold) this.open(cause);
  }

  /** Open immediately (e.g. the connection is known to be down). */
  trip(cause: unknown): void {
    if (this.current === 'closed') this.open(cause);
  }

  /**
   * Probe now instead of at the end of the cooldown (the connection was just re-established):
   * the circuit closes as soon as Redis answers, not up to `cooldownMs` later.
   */
  probeSoon(): void {
    if (this.current !== 'open' || this.disposed) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    void this.probe();
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private open(cause: unknown): void {
    this.current = 'open';
    this.opens++;
    this.s.onStateChange?.('open', cause);
    this.schedule();
  }

  private schedule(): void {
    if (this.disposed) return;
    this.timer = setTimeout(() => void this.probe(), this.s.cooldownMs);
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    if (this.disposed) return;
    this.current = 'half-open';
    this.s.onStateChange?.('half-open');
    try {
      await this.s.probe();
    } catch (cause) {
      if (this.disposed) return;
      this.current = 'open';
      this.s.onStateChange?.('open', cause);
      this.schedule();
      return;
    }
    if (this.disposed) return;
    this.consecutive = 0;
    this.current = 'closed';
    this.s.onStateChange?.('closed');
  }
}
