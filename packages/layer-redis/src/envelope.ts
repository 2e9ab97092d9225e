import { type CacheEntry, DecodeError } from '@strata-cache/core';
import { brotliCompress, brotliDecompressSync, deflate, inflateSync, constants as zc } from 'node:zlib';
import { promisify } from 'node:util';

/**
 * Stored value layout (all integers one byte):
 *
 *   [0] MAGIC 0x9e  — a value this layer did not write (plain JSON starts with '{') is rejected
 *   [1] FORMAT      — envelope version; readers treat unknown (newer) versions as misses
 *   [2] CODEC       — 0 = UTF-8 JSON, 1 = zlib (deflate + adler32), 2 = brotli
 *   [3..] payload   — JSON.stringify(entry), possibly compressed
 *
 * Bumping FORMAT is how a future layout change stays safe: old readers miss, new readers can
 * still decode version 1.
 */
export const MAGIC = 0x9e;
export const FORMAT = 1;
export const enum Codec {
  Json = 0,
  Zlib = 1,
  Brotli = 2,
}
export type Compression = 'deflate' | 'brotli' | 'none';

const deflateAsync = promisify(deflate);
const brotliAsync = promisify(brotliCompress);

/** Error for an envelope written by a newer layer version: a miss, but not corruption. */
export class NewerFormatError extends DecodeError {}

export async function encodeEntry(entry: CacheEntry, compression: Compression, threshold: number): Promise<Buffer> {
  const json = Buffer.from(JSON.stringify(entry), 'utf8');
  let codec = Codec.Json;
  let payload = json;
  if (compression !== 'none' && json.length >= threshold) {
    // Compress off the event loop (libuv thread pool): values above the threshold can be MBs.
    const packed =
      compression === 'brotli'
        ? await brotliAsync(json, { params: { [zc.BROTLI_PARAM_QUALITY]: 4, [zc.BROTLI_PARAM_SIZE_HINT]: json.length } })
        : await deflateAsync(json, { level: 6 });
    // Incompressible data is stored as is.
    if (packed.length < json.length) {
      codec = compression === 'brotli' ? Codec.Brotli : Codec.Zlib;
      payload = packed;
    }
  }
  const out = Buffer.allocUnsafe(3 + payload.length);
  out[0] = MAGIC;
  out[1] = FORMAT;
  out[2] = codec;
  payload.copy(out, 3);
  return out;
}

/** Decodes a stored value; throws DecodeError (a miss for core) on anything unexpected. */
export function decodeEntry(buf: Buffer, where: string): CacheEntry {
  if (buf.length < 3 || buf[0] !== MAGIC) {
    throw new DecodeError(`@strata-cache/layer-redis: value at ${where} is not a Strata envelope (bad magic byte); treated as a miss`);
  }
  if (buf[1] !== FORMAT) {
    throw new NewerFormatError(
      `@strata-cache/layer-redis: value at ${where} has envelope format ${buf[1]}, this version reads ${FORMAT}; treated as a miss`,
    );
  }
  let text: string;
  try {
    switch (buf[2]) {
      case Codec.Json:
        text = buf.toString('utf8', 3);
        break;
      case Codec.Zlib:
        text = inflateSync(buf.subarray(3)).toString('utf8');
        break;
      case Codec.Brotli:
        text = brotliDecompressSync(buf.subarray(3)).toString('utf8');
        break;
      default:
        throw new Error(`unknown codec ${buf[2]}`);
    }
  } catch (cause) {
    throw new DecodeError(`@strata-cache/layer-redis: value at ${where} could not be decompressed; treated as a miss`, { cause });
  }
  let entry: unknown;
  try {
    entry = JSON.parse(text);
  } catch (cause) {
    throw new DecodeError(`@strata-cache/layer-redis: value at ${where} is not valid JSON; treated as a miss`, { cause });
  }
  if (!isEntryShape(entry)) {
    throw new DecodeError(`@strata-cache/layer-redis: value at ${where} is not a cache entry; treated as a miss`);
  }
  return entry;
}

function isEntryShape(x: unknown): x is CacheEntry {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const e = x as Record<string, unknown>;
  return (
    'value' in e &&
    typeof e.createdAt === 'number' &&
    Array.isArray(e.tags) &&
    (e.ttlMs === undefined || typeof e.ttlMs === 'number')
  );
}
