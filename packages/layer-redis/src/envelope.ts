import { type CacheEntry, DecodeError } from '@strata-cache/core';
import { promisify } from 'node:util';
import { brotliCompress, brotliDecompress, brotliDecompressSync, deflate, inflate, inflateSync, constants as zc } from 'node:zlib';
import { PKG } from './errors.js';

/**
 * Stored value layout:
 *
 *   [0]      MAGIC 0x9e  — a value this layer did not write (plain JSON starts with '{') is rejected
 *   [1]      FORMAT 3    — envelope version; other versions are misses (see below)
 *   [2]      CODEC       — 0 = UTF-8 JSON, 1 = zlib (deflate + adler32), 2 = brotli
 *   [3..6]   H           — header length, uint32 big-endian
 *   [7..7+H) header      — `<key id>\n` then `,<tag>,<tag>,` (encoded tags; empty without tags)
 *   [7+H..]  payload     — JSON.stringify(entry), possibly compressed
 *
 * The key id (`v<schema>:<tenant>/<namespace>/v<version>:<hash>`) binds the value to the key it
 * was written for: a value copied or restored onto another key (another tenant's, say) is
 * refused on read. The tags let a tag purge check, inside Redis, that an entry still carries
 * the tag (an entry re-written with other tags is not removed by its old tag).
 *
 * Format 1 (no header) was written by earlier versions: a valid one is a miss but left in
 * place (the next write replaces it), a corrupt one is treated as corrupt. Other formats are
 * misses left for the readers that know them.
 */
export const MAGIC = 0x9e;
export const FORMAT = 3;
const LEGACY_FORMAT = 1;
/** Bytes before the header. */
export const HEAD = 7;
export enum Codec {
  Json = 0,
  Zlib = 1,
  Brotli = 2,
}
export type Compression = 'deflate' | 'brotli' | 'none';

/**
 * Largest output inflated on the event loop. A bigger one is inflated again on the libuv
 * thread pool (bounded by maxValueBytes), so a decompression bomb costs the loop ~1 ms.
 */
const SYNC_INFLATE_MAX = 1 << 20;

const deflateAsync = promisify(deflate);
const brotliAsync = promisify(brotliCompress);
const inflateAsync = promisify(inflate) as (buf: Buffer, options: { maxOutputLength: number }) => Promise<Buffer>;
const brotliDecompressAsync = promisify(brotliDecompress) as (buf: Buffer, options: { maxOutputLength: number }) => Promise<Buffer>;

/** A value of a format this version does not read: a miss, left in place for those who do. */
export class UnreadableFormatError extends DecodeError {}

/** A valid value in the legacy format, which carries no key binding: a miss, replaced by the next write. */
export class UnboundValueError extends DecodeError {}

/** A value larger than maxValueBytes (stored, or once inflated). */
export class TooLargeError extends DecodeError {}

/** Thrown by encodeEntry for an entry larger than maxValueBytes. */
export class EntryTooLarge extends Error {
  constructor(
    readonly bytes: number,
    readonly max: number,
  ) {
    super(`entry is ${bytes} bytes of JSON, more than maxValueBytes (${max})`);
  }
}

export interface EnvelopeSettings {
  readonly compression: Compression;
  readonly compressThreshold: number;
  readonly maxValueBytes: number;
}

/** The header of an entry: its key id, then its encoded tags as `,a,b,`. */
export function entryHeader(keyId: string, encodedTags: readonly string[]): string {
  return encodedTags.length === 0 ? keyId + '\n' : keyId + '\n,' + encodedTags.join(',') + ',';
}

/**
 * Serialises the entry at once (a caller mutating it afterwards changes nothing stored), then
 * compresses it on the thread pool when it is large. Throws EntryTooLarge.
 */
export function encodeEntry(entry: CacheEntry, header: string, s: EnvelopeSettings): Buffer | Promise<Buffer> {
  const json = JSON.stringify(entry);
  const size = Buffer.byteLength(json);
  if (size > s.maxValueBytes) throw new EntryTooLarge(size, s.maxValueBytes);
  const h = Buffer.byteLength(header);
  if (s.compression === 'none' || size < s.compressThreshold) {
    const out = Buffer.allocUnsafe(HEAD + h + size);
    writeHead(out, Codec.Json, header, h);
    out.write(json, HEAD + h, 'utf8');
    return out;
  }
  const raw = Buffer.from(json, 'utf8');
  const brotli = s.compression === 'brotli';
  const packed = brotli
    ? brotliAsync(raw, { params: { [zc.BROTLI_PARAM_QUALITY]: 4, [zc.BROTLI_PARAM_SIZE_HINT]: raw.length } })
    : deflateAsync(raw, { level: 6 });
  return packed.then((p) => {
    // Incompressible data is stored as is.
    const payload = p.length < raw.length ? p : raw;
    const out = Buffer.allocUnsafe(HEAD + h + payload.length);
    writeHead(out, payload === raw ? Codec.Json : brotli ? Codec.Brotli : Codec.Zlib, header, h);
    payload.copy(out, HEAD + h);
    return out;
  });
}

function writeHead(out: Buffer, codec: Codec, header: string, h: number): void {
  out[0] = MAGIC;
  out[1] = FORMAT;
  out[2] = codec;
  out.writeUInt32BE(h, 3);
  out.write(header, HEAD, 'latin1');
}

/**
 * Checks a stored value and its binding to `keyId`, and returns the entry's JSON text — a
 * promise when a large value is inflated on the thread pool. Throws (or rejects with) a
 * DecodeError: corrupt, bound to another key, too large, or of another format.
 */
export function unpack(buf: Buffer, keyId: string, where: string, maxValueBytes: number): string | Promise<string> {
  if (buf.length < 3 || buf[0] !== MAGIC) {
    throw new DecodeError(`${PKG}: value at ${where} is not a Strata envelope (bad magic byte); treated as a miss`);
  }
  const format = buf[1];
  if (format === LEGACY_FORMAT) return legacy(buf, where, maxValueBytes);
  if (format !== FORMAT) {
    throw new UnreadableFormatError(
      `${PKG}: value at ${where} has envelope format ${format}, this version reads ${FORMAT} (and ${LEGACY_FORMAT}); treated as a miss`,
    );
  }
  if (buf.length < HEAD) throw new DecodeError(`${PKG}: value at ${where} is truncated; treated as a miss`);
  const h = buf.readUInt32BE(3);
  const start = HEAD + h;
  if (start > buf.length) throw new DecodeError(`${PKG}: value at ${where} has a header longer than the value; treated as a miss`);
  const idEnd = HEAD + keyId.length;
  if (idEnd >= start || buf[idEnd] !== 0x0a || !sameAscii(buf, HEAD, keyId)) {
    const nl = buf.indexOf(0x0a, HEAD);
    const found = buf.toString('latin1', HEAD, nl < 0 || nl > start ? Math.min(start, HEAD + 200) : nl);
    throw new DecodeError(
      `${PKG}: value at ${where} was written for key ${JSON.stringify(found)}, not for this key (copied or restored onto it?); treated as a miss`,
    );
  }
  return payloadText(buf[2]!, buf.subarray(start), where, maxValueBytes);
}

/** `buf` holds `text` (ASCII) at `at` — compared in place, without building a string per read. */
function sameAscii(buf: Buffer, at: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (buf[at + i] !== text.charCodeAt(i)) return false;
  return true;
}

function legacy(buf: Buffer, where: string, maxValueBytes: number): string | Promise<string> {
  const refuse = (text: string): never => {
    parseEntry(text, where); // a corrupt one fails here (and is deleted like any corrupt value)
    throw new UnboundValueError(
      `${PKG}: value at ${where} was written by an earlier version (envelope format ${LEGACY_FORMAT}, not bound to its key); treated as a miss until it is rewritten`,
    );
  };
  const text = payloadText(buf[2]!, buf.subarray(3), where, maxValueBytes);
  return typeof text === 'string' ? refuse(text) : text.then(refuse);
}

function payloadText(codec: number, payload: Buffer, where: string, max: number): string | Promise<string> {
  if (payload.length > max) throw tooLarge(where, max, payload.length);
  if (codec === Codec.Json) return payload.toString('utf8');
  if (codec !== Codec.Zlib && codec !== Codec.Brotli) throw new DecodeError(`${PKG}: value at ${where} has unknown codec ${codec}; treated as a miss`);
  const limit = Math.min(max, SYNC_INFLATE_MAX);
  try {
    return (codec === Codec.Zlib ? inflateSync : brotliDecompressSync)(payload, { maxOutputLength: limit }).toString('utf8');
  } catch (cause) {
    if ((cause as { code?: string }).code !== 'ERR_BUFFER_TOO_LARGE') throw inflateFailed(where, cause);
    if (limit >= max) throw tooLarge(where, max);
  }
  // Large: inflate again off the event loop, still bounded.
  return (codec === Codec.Zlib ? inflateAsync : brotliDecompressAsync)(payload, { maxOutputLength: max }).then(
    (out) => out.toString('utf8'),
    (cause: unknown) => {
      throw (cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? tooLarge(where, max) : inflateFailed(where, cause);
    },
  );
}

function tooLarge(where: string, max: number, bytes?: number): TooLargeError {
  const size = bytes === undefined ? 'inflates to more than' : `is ${bytes} bytes, more than`;
  return new TooLargeError(`${PKG}: value at ${where} ${size} maxValueBytes (${max}); treated as a miss`);
}

function inflateFailed(where: string, cause: unknown): DecodeError {
  return new DecodeError(`${PKG}: value at ${where} could not be decompressed; treated as a miss`, { cause });
}

/** JSON text → entry; throws DecodeError for anything that is not a well-formed entry. */
export function parseEntry(text: string, where: string): CacheEntry {
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch (cause) {
    throw new DecodeError(`${PKG}: value at ${where} is not valid JSON; treated as a miss`, { cause });
  }
  if (!isEntryShape(entry)) {
    throw new DecodeError(`${PKG}: value at ${where} is not a cache entry; treated as a miss`);
  }
  return entry;
}

function isEntryShape(x: unknown): x is CacheEntry {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const e = x as Record<string, unknown>;
  if (!('value' in e) || typeof e.createdAt !== 'number' || !Number.isFinite(e.createdAt)) return false;
  if (e.ttlMs !== undefined && !(typeof e.ttlMs === 'number' && e.ttlMs >= 0 && e.ttlMs <= Number.MAX_SAFE_INTEGER)) return false;
  if (!Array.isArray(e.tags)) return false;
  for (const t of e.tags) if (typeof t !== 'string') return false;
  return true;
}
