import { performance } from 'node:perf_hooks';
import type { RequestRecord } from './runner.js';

/** A one-line progress bar on stderr (redrawn on a terminal, every 10% otherwise). */
export class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private readonly t0 = performance.now();
  private last = 0;
  private lastDecile = -1;
  private shown = false;

  constructor(
    private readonly total: number,
    private readonly enabled: boolean,
  ) {}

  update(done: number, records: readonly RequestRecord[]): void {
    if (!this.enabled) return;
    const now = performance.now();
    const decile = Math.floor((done / this.total) * 10);
    if (this.tty) {
      if (now - this.last < 80 && done < this.total) return;
    } else if (decile === this.lastDecile && done < this.total) return;
    this.last = now;
    this.lastDecile = decile;
    const counts = { L1: 0, L2: 0, L3: 0, upstream: 0 };
    for (const r of records) counts[r.path]++;
    const hits = done - counts.upstream;
    const width = 28;
    const filled = Math.round((done / this.total) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const line =
      `${bar} ${String(Math.floor((done / this.total) * 100)).padStart(3)}% ${done}/${this.total}` +
      ` · hit rate ${done ? ((hits / done) * 100).toFixed(1) : '0.0'}% (L1 ${counts.L1}, L2 ${counts.L2}, L3 ${counts.L3}) · upstream ${counts.upstream}` +
      ` · ${((now - this.t0) / 1000).toFixed(1)} s`;
    if (this.tty) process.stderr.write('\r\x1b[2K' + line);
    else process.stderr.write(line + '\n');
    this.shown = true;
  }

  done(): void {
    if (this.enabled && this.tty && this.shown) process.stderr.write('\n');
  }
}
