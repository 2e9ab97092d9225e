// On-disk embedding cache for the quality benchmark: QQP has 137,551 distinct questions and
// USE-lite embeds ~50/s on this machine, so every vector is computed once and reused.
// Layout: bench/.cache/<embedder id>/shard-<n>.keys (one sha256 hex per line) + shard-<n>.f32
// (dimensions float32 per key, same order). Append-only; a torn tail is ignored on load.
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Dot product of two vectors (the cosine, for unit-length ones). */
export function dot(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export const textKey = (text) => createHash('sha256').update(text, 'utf8').digest('hex');

export class EmbeddingCache {
  constructor(root, embedderId, dimensions) {
    this.dir = join(root, embedderId.replace(/[^A-Za-z0-9._-]+/g, '_'));
    this.dimensions = dimensions;
    this.map = new Map();
    mkdirSync(this.dir, { recursive: true });
    this.reload();
  }

  reload() {
    this.map.clear();
    for (const f of readdirSync(this.dir)) {
      if (!f.endsWith('.keys')) continue;
      const base = f.slice(0, -5);
      const vecPath = join(this.dir, base + '.f32');
      if (!existsSync(vecPath)) continue;
      const keys = readFileSync(join(this.dir, f), 'utf8')
        .split('\n')
        .filter((k) => k.length === 64);
      const buf = readFileSync(vecPath);
      const n = Math.min(keys.length, Math.floor(buf.byteLength / (4 * this.dimensions)));
      const all = new Float32Array(buf.buffer, buf.byteOffset, n * this.dimensions);
      for (let i = 0; i < n; i++) this.map.set(keys[i], all.subarray(i * this.dimensions, (i + 1) * this.dimensions));
    }
    return this.map.size;
  }

  get(text) {
    return this.map.get(textKey(text));
  }

  has(text) {
    return this.map.has(textKey(text));
  }

  /** Appends vectors for texts to this process's shard (vectors first, so a torn write drops the key). */
  append(shard, texts, vectors) {
    const keys = texts.map(textKey);
    const f32 = new Float32Array(texts.length * this.dimensions);
    vectors.forEach((v, i) => f32.set(v, i * this.dimensions));
    const vecPath = join(this.dir, `shard-${shard}.f32`);
    const keyPath = join(this.dir, `shard-${shard}.keys`);
    // Keep keys and vectors aligned: truncate-by-count is handled on load via min().
    const have = existsSync(vecPath) ? statSync(vecPath).size / (4 * this.dimensions) : 0;
    const haveKeys = existsSync(keyPath)
      ? readFileSync(keyPath, 'utf8')
          .split('\n')
          .filter((k) => k.length === 64).length
      : 0;
    if (have !== haveKeys) throw new Error(`embedding cache shard ${shard} is misaligned (${have} vectors, ${haveKeys} keys)`);
    appendFileSync(vecPath, Buffer.from(f32.buffer));
    appendFileSync(keyPath, keys.join('\n') + '\n');
    keys.forEach((k, i) => this.map.set(k, f32.subarray(i * this.dimensions, (i + 1) * this.dimensions)));
  }
}
