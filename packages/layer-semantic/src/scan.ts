import type { Candidate } from './partition.js';

/** The inner product of `q` with the `d` values of `buf` from `off` (cosine for unit vectors). */
export function innerProduct(buf: Float32Array, off: number, q: Float32Array, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j + 3 < d; j += 4) {
    s0 += buf[off + j]! * q[j]!;
    s1 += buf[off + j + 1]! * q[j + 1]!;
    s2 += buf[off + j + 2]! * q[j + 2]!;
    s3 += buf[off + j + 3]! * q[j + 3]!;
  }
  for (; j < d; j++) s0 += buf[off + j]! * q[j]!;
  return s0 + s1 + s2 + s3;
}

/**
 * Exact inner products of `q` with `rows` packed vectors of `buf`, merged into `top` (most
 * similar first, at most `k`). Row i's label is `labels[firstLabel + i]`.
 */
export function scanRows(
  buf: Float32Array,
  rows: number,
  d: number,
  q: Float32Array,
  labels: readonly number[],
  firstLabel: number,
  top: Candidate[],
  k: number,
): void {
  let floor = top.length < k ? -Infinity : top[top.length - 1]!.similarity;
  for (let i = 0; i < rows; i++) {
    const s = innerProduct(buf, i * d, q, d);
    if (top.length < k || s > floor) {
      let at = top.length;
      while (at > 0 && top[at - 1]!.similarity < s) at--;
      top.splice(at, 0, { label: labels[firstLabel + i]!, similarity: s });
      if (top.length > k) top.pop();
      floor = top.length < k ? -Infinity : top[top.length - 1]!.similarity;
    }
  }
}
