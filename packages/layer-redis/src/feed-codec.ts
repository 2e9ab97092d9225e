import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { SemanticMutation } from '@strata-cache/layer-semantic';

/**
 * One mutation as stored in a stream entry's `m` field:
 *
 *   [0]        CODEC_VERSION (1)
 *   [1..4]     J — length of the JSON part, uint32 big-endian
 *   [5..5+J)   the mutation as JSON, without its vector
 *   [5+J..]    the vector of a put, float32 little-endian (absent otherwise)
 *
 * Vectors travel as raw floats — exact, so every process computes the same similarities, and
 * 4 bytes a dimension instead of ~10 as JSON text. The layer checks what it decodes (key bound
 * to its scope, entry shape, unit-length vector of its embedder) before applying it.
 */
export const CODEC_VERSION = 1;
const HEAD = 5;
const LITTLE = endianness() === 'LE';

export function encodeMutation(m: SemanticMutation): Buffer {
  let json: string;
  let vector: Float32Array | undefined;
  if (m.type === 'put') {
    const { vector: v, ...rest } = m;
    vector = v;
    json = JSON.stringify(rest);
  } else json = JSON.stringify(m);
  const j = Buffer.byteLength(json);
  const out = Buffer.allocUnsafe(HEAD + j + (vector ? vector.byteLength : 0));
  out[0] = CODEC_VERSION;
  out.writeUInt32BE(j, 1);
  out.write(json, HEAD, 'utf8');
  if (vector) {
    const floats = Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength);
    floats.copy(out, HEAD + j);
    if (!LITTLE) out.subarray(HEAD + j).swap32();
  }
  return out;
}

/** Decodes an `m` field; throws on anything that is not this codec's output. */
export function decodeMutation(buf: Buffer): SemanticMutation {
  if (buf.length < HEAD || buf[0] !== CODEC_VERSION) throw new Error(`not a semantic feed record of codec ${CODEC_VERSION}`);
  const j = buf.readUInt32BE(1);
  if (HEAD + j > buf.length) throw new Error('truncated semantic feed record');
  const m = JSON.parse(buf.toString('utf8', HEAD, HEAD + j)) as SemanticMutation & { vector?: unknown };
  if (typeof m !== 'object' || m === null) throw new Error('semantic feed record is not an object');
  const rest = buf.length - HEAD - j;
  if (rest > 0) {
    if (m.type !== 'put' || rest % 4 !== 0) throw new Error('semantic feed record has trailing bytes');
    // A copy: aligned, and owned by the index rather than by the reply buffer.
    const bytes = Buffer.from(buf.subarray(HEAD + j));
    if (!LITTLE) bytes.swap32();
    return { ...m, vector: new Float32Array(bytes.buffer, bytes.byteOffset, rest / 4) };
  }
  delete m.vector;
  return m;
}

/** A reader's place in one stream: the last entry id read and the sequence number it carried. */
export interface Position {
  readonly id: string;
  readonly seq: number;
}

export const START: Position = Object.freeze({ id: '0-0', seq: 0 });

/**
 * The feed's offset: every stream's position, plus what identifies the stream set (count and a
 * hash of the key prefix), so an offset taken under other settings is recognised and treated
 * as lost rather than misread.
 */
export function encodeOffset(config: string, positions: readonly Position[]): string {
  return `r1:${config}:${positions.map((p) => `${p.id}/${p.seq}`).join(',')}`;
}

/** Parses an offset written by `encodeOffset` under the same `config`; undefined otherwise. */
export function parseOffset(offset: string, config: string, streams: number): Position[] | undefined {
  const head = `r1:${config}:`;
  if (typeof offset !== 'string' || !offset.startsWith(head)) return undefined;
  const parts = offset.slice(head.length).split(',');
  if (parts.length !== streams) return undefined;
  const out: Position[] = [];
  for (const p of parts) {
    // seq -1: a position that was not known yet when the offset was taken.
    const m = /^(\d+-\d+)\/(-1|\d+)$/.exec(p);
    if (!m || !Number.isSafeInteger(Number(m[2]))) return undefined;
    out.push({ id: m[1]!, seq: Number(m[2]) });
  }
  return out;
}

/** The stream-set identity recorded in offsets. */
export function feedConfig(prefix: string, streams: number): string {
  return `${streams}.${createHash('sha256').update(prefix).digest('hex').slice(0, 8)}`;
}

/** Orders two stream ids (`<ms>-<seq>`). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  const x = BigInt(am!) - BigInt(bm!);
  if (x !== 0n) return x < 0n ? -1 : 1;
  const y = BigInt(as ?? '0') - BigInt(bs ?? '0');
  return y === 0n ? 0 : y < 0n ? -1 : 1;
}
