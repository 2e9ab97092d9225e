/**
 * Results and stream parts of the AI SDK carry a few values that JSON cannot hold (a response
 * `timestamp` Date, file bytes as Uint8Array, URLs). Entries must survive any layer (L2 stores
 * JSON), so they are stored in a tagged JSON form and rebuilt on the way out. Decoding always
 * builds new objects: the AI SDK may mutate what it is handed, and the memory layer's entries
 * are frozen.
 */

const DATE = '$strata:date';
const BYTES = '$strata:bytes';
const URL_TAG = '$strata:url';

/** A JSON-safe deep copy: Dates, byte arrays and URLs tagged, functions and undefined dropped. */
export function encode(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint' ? undefined : value;
  }
  if (value instanceof Date) return { [DATE]: value.toISOString() };
  if (ArrayBuffer.isView(value)) return { [BYTES]: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') };
  if (value instanceof ArrayBuffer) return { [BYTES]: Buffer.from(value).toString('base64') };
  if (value instanceof URL) return { [URL_TAG]: value.href };
  if (Array.isArray(value)) return value.map((v) => encode(v) ?? null);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const e = encode(v);
    if (e !== undefined) out[k] = e;
  }
  return out;
}

/** The inverse of `encode`, always into fresh (mutable) objects. */
export function decode(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(decode);
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length === 1) {
    const tag = keys[0]!;
    const v = obj[tag];
    if (typeof v === 'string') {
      if (tag === DATE) return new Date(v);
      if (tag === BYTES) return new Uint8Array(Buffer.from(v, 'base64'));
      if (tag === URL_TAG) return new URL(v);
    }
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = decode(obj[k]);
  return out;
}
