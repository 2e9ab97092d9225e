import { hash as oneShotHash } from 'node:crypto';
import { InvalidRequestError } from './errors.js';

// Strings that need no JSON escaping can be quoted directly; this check is far cheaper
// than JSON.stringify for the common case. Lone surrogates go through JSON.stringify,
// which escapes them, so two different ill-formed strings never encode to the same UTF-8.
const NEEDS_ESCAPE = /["\\\u0000-\u001f\u007f\ud800-\udfff]/;

function quote(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : '"' + s + '"';
}

const EMPTY_SET: ReadonlySet<string> = new Set();

/**
 * Canonical, injective text form of a JSON-like value: object keys sorted, `undefined`
 * properties omitted (as JSON does), everything else rejected with an error naming the path.
 * Dates and byte arrays get their own prefixes, so they never collide with strings or objects.
 *
 * `skipTopLevel` drops top-level object keys (fields that cannot change the answer) without
 * building a filtered copy.
 */
export function canonicalize(value: unknown, skipTopLevel: ReadonlySet<string> = EMPTY_SET): string {
  const stack: object[] = [];
  return write(value, stack, skipTopLevel, '$');
}

function write(value: unknown, stack: object[], skip: ReadonlySet<string>, path: string): string {
  switch (typeof value) {
    case 'string':
      return quote(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new InvalidRequestError(`request field ${path} is ${value}, which has no JSON form; use a finite number`, { field: path });
      }
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      throw new InvalidRequestError(`request field ${path} is a ${typeof value}, which cannot be part of a cache key`, { field: path });
  }
  if (value === null) return 'null';
  if (stack.includes(value)) {
    throw new InvalidRequestError(`request field ${path} is a circular reference`, { field: path });
  }
  if (Array.isArray(value)) {
    stack.push(value);
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      const item = value[i];
      // JSON turns undefined array items into null; keep them distinct from a real null.
      out += item === undefined ? 'u' : write(item, stack, EMPTY_SET, path + '[' + i + ']');
    }
    stack.pop();
    return out + ']';
  }
  if (value instanceof Date) {
    const t = value.getTime();
    if (Number.isNaN(t)) throw new InvalidRequestError(`request field ${path} is an invalid Date`, { field: path });
    return 'D' + t;
  }
  if (ArrayBuffer.isView(value)) {
    const bytes = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return 'B"' + bytes.toString('base64') + '"';
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as object).constructor?.name ?? 'unknown';
    throw new InvalidRequestError(
      `request field ${path} is a ${name} instance; only plain objects, arrays, strings, finite numbers, booleans, null, Dates and byte arrays can be part of a cache key`,
      { field: path },
    );
  }
  stack.push(value);
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  if (keys.length > 1) keys.sort();
  let out = '{';
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    if (skip.has(k)) continue;
    const v = obj[k];
    if (v === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += quote(k) + ':' + write(v, stack, EMPTY_SET, path + '.' + k);
  }
  stack.pop();
  return out + '}';
}

/** SHA-256 of UTF-8 text, base64url (43 chars). One-shot API: no Hash object per call. */
export function sha256(text: string): string {
  return oneShotHash('sha256', text, 'base64url');
}
