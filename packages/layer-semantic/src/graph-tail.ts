import type { Candidate } from './partition.js';
import { scanRows } from './scan.js';

/** Rows a tail's buffer starts with; it doubles up to the tail's limit. */
const FIRST_ROWS = 16;

/**
 * Points added to a graph partition that wait for their graph insert: one contiguous buffer
 * (swap-removal keeps it packed), searched exactly. Its buffer is let go when the tail empties,
 * so a partition that is not being written holds none.
 */
export class GraphTail {
  private buf: Float32Array | undefined;
  private labels: number[] = [];
  private pos = new Map<number, number>();

  constructor(private readonly dims: number) {}

  get size(): number {
    return this.labels.length;
  }

  get bytes(): number {
    return (this.buf?.byteLength ?? 0) + this.labels.length * 24;
  }

  has(label: number): boolean {
    return this.pos.has(label);
  }

  add(vec: Float32Array, label: number): void {
    const d = this.dims;
    const row = this.labels.length;
    if (!this.buf || (row + 1) * d > this.buf.length) {
      const grown = new Float32Array(Math.max(FIRST_ROWS, row * 2) * d);
      if (this.buf) grown.set(this.buf.subarray(0, row * d));
      this.buf = grown;
    }
    this.buf.set(vec, row * d);
    this.labels.push(label);
    this.pos.set(label, row);
  }

  remove(label: number): boolean {
    const row = this.pos.get(label);
    if (row === undefined) return false;
    const d = this.dims;
    const last = this.labels.length - 1;
    if (row !== last) {
      this.buf!.copyWithin(row * d, last * d, last * d + d);
      const moved = this.labels[last]!;
      this.labels[row] = moved;
      this.pos.set(moved, row);
    }
    this.labels.pop();
    this.pos.delete(label);
    if (this.labels.length === 0) this.buf = undefined;
    return true;
  }

  /** The newest point's label, and its vector as a view valid until the next change. */
  newest(): { label: number; vector: Float32Array } | undefined {
    const row = this.labels.length - 1;
    if (row < 0) return undefined;
    return { label: this.labels[row]!, vector: this.buf!.subarray(row * this.dims, row * this.dims + this.dims) };
  }

  /** A copy of a waiting point's vector. */
  vector(label: number): Float32Array | undefined {
    const row = this.pos.get(label);
    if (row === undefined) return undefined;
    return this.buf!.slice(row * this.dims, row * this.dims + this.dims);
  }

  /** Best `k` waiting points, most similar first. */
  search(q: Float32Array, k: number): Candidate[] {
    const top: Candidate[] = [];
    if (this.buf) scanRows(this.buf, this.labels.length, this.dims, q, this.labels, 0, top, k);
    return top;
  }

  clear(): void {
    this.buf = undefined;
    this.labels = [];
    this.pos.clear();
  }
}
