/**
 * Embeddings of stored answers, kept per entry for calibration (which candidates hold the same
 * answer, which are rivals). Quantised to int8 with a per-vector scale: a quarter of the memory
 * of float32, and answer agreement (a cosine compared with 0.9) does not need more precision.
 */
const FORMAT = 'strata-answer-vectors';

interface Quantised {
  readonly q: Int8Array;
  readonly scale: number;
}

export class AnswerVectors {
  private readonly byId = new Map<string, Quantised>();

  constructor(readonly dimensions: number) {}

  get size(): number {
    return this.byId.size;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  set(id: string, v: Float32Array): void {
    if (v.length !== this.dimensions) return;
    let max = 0;
    for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i]!));
    const scale = max > 0 ? max / 127 : 1;
    const q = new Int8Array(v.length);
    for (let i = 0; i < v.length; i++) q[i] = Math.round(v[i]! / scale);
    this.byId.set(id, { q, scale });
  }

  /** The (dequantised, unit-length) vector, or undefined. */
  get(id: string): Float32Array | undefined {
    const e = this.byId.get(id);
    if (!e) return undefined;
    const out = new Float32Array(e.q.length);
    let n = 0;
    for (let i = 0; i < out.length; i++) {
      const x = e.q[i]! * e.scale;
      out[i] = x;
      n += x * x;
    }
    n = Math.sqrt(n) || 1;
    for (let i = 0; i < out.length; i++) out[i] = out[i]! / n;
    return out;
  }

  delete(id: string): void {
    this.byId.delete(id);
  }

  clear(): void {
    this.byId.clear();
  }

  /** Binary form for the snapshot: a JSON header line, then per entry its id, scale and int8 vector. */
  serialise(keep: (id: string) => boolean): Buffer {
    const ids: string[] = [];
    for (const id of this.byId.keys()) if (keep(id)) ids.push(id);
    const header = Buffer.from(JSON.stringify({ format: FORMAT, version: 1, dimensions: this.dimensions, ids }) + '\n', 'utf8');
    const body = Buffer.alloc(ids.length * (4 + this.dimensions));
    let at = 0;
    for (const id of ids) {
      const e = this.byId.get(id)!;
      body.writeFloatLE(e.scale, at);
      Buffer.from(e.q.buffer, e.q.byteOffset, e.q.byteLength).copy(body, at + 4);
      at += 4 + this.dimensions;
    }
    return Buffer.concat([header, body]);
  }

  /** Reads `serialise`'s output; throws (and changes nothing) when it is malformed or of another dimension. */
  load(buf: Buffer, exists: (id: string) => boolean): number {
    const nl = buf.indexOf(0x0a);
    if (nl < 0) throw new Error('answer vectors: no header');
    const header = JSON.parse(buf.subarray(0, nl).toString('utf8')) as { format?: unknown; version?: unknown; dimensions?: unknown; ids?: unknown };
    if (header.format !== FORMAT || header.version !== 1) throw new Error('answer vectors: unknown format');
    if (header.dimensions !== this.dimensions) throw new Error(`answer vectors: ${String(header.dimensions)}-d, the layer's embedder is ${this.dimensions}-d`);
    if (!Array.isArray(header.ids) || !header.ids.every((x) => typeof x === 'string')) throw new Error('answer vectors: bad id list');
    const ids = header.ids as string[];
    const stride = 4 + this.dimensions;
    if (buf.length - nl - 1 !== ids.length * stride) throw new Error('answer vectors: size does not match the header');
    const loaded = new Map<string, Quantised>();
    let at = nl + 1;
    for (const id of ids) {
      const scale = buf.readFloatLE(at);
      if (!Number.isFinite(scale) || scale <= 0) throw new Error('answer vectors: bad scale');
      const q = new Int8Array(this.dimensions);
      q.set(new Int8Array(buf.buffer, buf.byteOffset + at + 4, this.dimensions));
      if (exists(id)) loaded.set(id, { q, scale });
      at += stride;
    }
    for (const [id, e] of loaded) this.byId.set(id, e);
    return loaded.size;
  }
}
