import { hash as oneShotHash } from 'node:crypto';
import { InvalidRequestError } from './errors.js';

/*
 * Canonical form of a JSON-like value, used only as hash input (never parsed back).
 *
 * A prefix-free code, so it is injective without escaping anything:
 *   string  <utf16-length>"<raw chars>      number  n<String(n)>;      true/false/null  T F N
 *   array   [ items ]   (an undefined item is u)      object  { (<len>"<key> value)* } keys sorted
 *   Date    D<epoch ms>;                             bytes   B<base64>;
 * Object properties whose value is undefined are omitted, as JSON does.
 *
 * The encoder writes that form straight into one reused byte buffer as WTF-8 (UTF-8, with a lone
 * surrogate written as its own 3-byte sequence, which valid UTF-8 never contains), and the buffer
 * is hashed in one shot: no string of the whole request, no join, no per-part allocation. WTF-8
 * is injective over JS strings, and the length prefixes count UTF-16 units, so the code stays
 * prefix-free.
 */

const EMPTY_SET: ReadonlySet<string> = new Set();

/** Thrown by the fast encoder; the slow walker then finds the path and the real reason. */
const BAD = Symbol('bad');

/** Nesting deeper than this is refused with an InvalidRequestError (it is a cycle, or an attack). */
export const MAX_REQUEST_DEPTH = 1000;

const INITIAL_BYTES = 16 * 1024;
/** Beyond this the shared buffer is not kept after use (one huge request must not pin memory). */
const KEEP_BYTES = 1024 * 1024;

let shared = Buffer.allocUnsafe(INITIAL_BYTES);
let buf = shared;
let pos = 0;
/** A getter inside a request could fingerprint another request while this one is being encoded. */
let busy = false;
/** Whether the value just encoded held a lone surrogate (then it has no UTF-8 text form). */
let sawLoneSurrogate = false;

function grow(need: number): void {
  let size = buf.length * 2;
  while (size < need) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}

function writeAscii(s: string): void {
  const n = s.length;
  if (pos + n > buf.length) grow(pos + n);
  const b = buf;
  let p = pos;
  for (let i = 0; i < n; i++) b[p++] = s.charCodeAt(i);
  pos = p;
}

function writeByte(c: number): void {
  if (pos >= buf.length) grow(pos + 1);
  buf[pos++] = c;
}

/** Writes `n` in decimal (n is a non-negative integer below 1e21). */
function writeUint(n: number): void {
  if (n < 10) {
    writeByte(48 + n);
    return;
  }
  if (n < 10_000) {
    if (pos + 4 > buf.length) grow(pos + 4);
    const b = buf;
    if (n >= 1000) b[pos++] = 48 + ((n / 1000) | 0);
    if (n >= 100) b[pos++] = 48 + (((n / 100) | 0) % 10);
    b[pos++] = 48 + (((n / 10) | 0) % 10);
    b[pos++] = 48 + (n % 10);
    return;
  }
  writeAscii(String(n));
}

const SURROGATE = /[\ud800-\udfff]/;
/** Buffer's own UTF-8 writer (what `buf.write(s, offset, 'utf8')` dispatches to, without the argument parsing). */
type NativeWriters = Buffer & { utf8Write(s: string, offset: number): number };
/** ES2024 `String.prototype.isWellFormed` (Node >= 20). */
type WellFormed = string & { isWellFormed(): boolean };
/** Strings at least this long are written by the native UTF-8 writer when they hold no surrogate. */
const NATIVE_WRITE = 48;

/**
 * `<utf16-length>"<chars>`, with one capacity check and the position kept local. Short ASCII
 * text (keys, roles, names: most strings of a request) is copied here, in one loop; longer or
 * non-ASCII text goes to `writeChars`.
 */
function writeString(s: string): void {
  const n = s.length;
  if (pos + 8 + n * 3 > buf.length) grow(pos + 8 + n * 3);
  const b = buf;
  let p = pos;
  if (n < 10) b[p++] = 48 + n;
  else if (n < 100) {
    b[p++] = 48 + ((n / 10) | 0);
    b[p++] = 48 + (n % 10);
  } else if (n < 1000) {
    b[p++] = 48 + ((n / 100) | 0);
    b[p++] = 48 + (((n / 10) | 0) % 10);
    b[p++] = 48 + (n % 10);
  } else {
    pos = p;
    writeAscii(String(n));
    p = pos;
  }
  b[p++] = 34; // "
  if (n < NATIVE_WRITE) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[p++] = c;
    }
    pos = p;
    if (i < n) writeWtf8(s, i);
    return;
  }
  pos = p;
  writeChars(s);
}

/** The characters of `s` as WTF-8. */
function writeChars(s: string): void {
  const n = s.length;
  if (pos + n * 3 > buf.length) grow(pos + n * 3);
  // Well-formed text (no lone surrogate) has the same bytes in UTF-8 as in WTF-8: let the native
  // writer copy it. isWellFormed is O(1) for one-byte strings, which most request text is.
  if (n >= NATIVE_WRITE && (s as WellFormed).isWellFormed()) {
    pos += (buf as NativeWriters).utf8Write(s, pos);
    return;
  }
  writeWtf8(s, 0);
}

/** Characters `from`..end of `s` as WTF-8 (the caller made room for 3 bytes per character). */
function writeWtf8(s: string, from: number): void {
  const n = s.length;
  const b = buf;
  let p = pos;
  let i = from;
  // ASCII run first (nearly all short strings: keys, roles, names).
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    b[p++] = c;
  }
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) b[p++] = c;
    else if (c < 0x800) {
      b[p++] = 0xc0 | (c >> 6);
      b[p++] = 0x80 | (c & 63);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          const cp = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          b[p++] = 0xf0 | (cp >> 18);
          b[p++] = 0x80 | ((cp >> 12) & 63);
          b[p++] = 0x80 | ((cp >> 6) & 63);
          b[p++] = 0x80 | (cp & 63);
          i++;
          continue;
        }
        sawLoneSurrogate = true;
      }
      b[p++] = 0xe0 | (c >> 12);
      b[p++] = 0x80 | ((c >> 6) & 63);
      b[p++] = 0x80 | (c & 63);
    }
  }
  pos = p;
}

function encode(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      writeString(value);
      return;
    case 'number':
      if (!Number.isFinite(value)) throw BAD;
      writeByte(110); // n
      if (Number.isInteger(value) && value >= 0 && value < 1e21) writeUint(value);
      else writeAscii(String(value));
      writeByte(59); // ;
      return;
    case 'boolean':
      writeByte(value ? 84 : 70); // T F
      return;
    case 'object':
      break;
    default:
      throw BAD;
  }
  if (value === null) {
    writeByte(78); // N
    return;
  }
  if (depth >= MAX_REQUEST_DEPTH) throw BAD;
  if (Array.isArray(value)) {
    writeByte(91); // [
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (typeof item === 'string') writeString(item);
      else if (item === undefined)
        writeByte(117); // u
      else encode(item, depth + 1);
    }
    writeByte(93); // ]
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    if (value instanceof Date) {
      const t = value.getTime();
      if (Number.isNaN(t)) throw BAD;
      writeAscii('D' + t + ';');
      return;
    }
    if (ArrayBuffer.isView(value)) {
      writeAscii('B' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') + ';');
      return;
    }
    throw BAD;
  }
  encodeObject(value as Record<string, unknown>, depth, EMPTY_SET);
}

// Scratch arrays for one object's keys and values, one pair per nesting depth, reused: no
// allocation per object once warm. A nested encode (a getter fingerprinting another request)
// gets its own set.
let keysAt: string[][] = [];
let valuesAt: unknown[][] = [];

/** Set per encode: someone added an enumerable property to Object.prototype (for-in would see it). */
let prototypePolluted = false;
const PROBE: Record<string, unknown> = {};
function inheritsEnumerable(): boolean {
  for (const _ in PROBE) return true;
  return false;
}

function encodeObject(obj: Record<string, unknown>, depth: number, skip: ReadonlySet<string>): void {
  const keys = (keysAt[depth] ??= []);
  const values = (valuesAt[depth] ??= []);
  let n = 0;
  // for-in reads each value through the enum cache (fast), where obj[k] over Object.keys() is a
  // megamorphic keyed load. Plain objects inherit no enumerable keys — unless Object.prototype was
  // polluted, and then only own keys count (as JSON.stringify would).
  for (const k in obj) {
    if (prototypePolluted && !Object.hasOwn(obj, k)) continue;
    const v = obj[k];
    if (v === undefined || (skip.size > 0 && skip.has(k))) continue;
    keys[n] = k;
    values[n] = v;
    n++;
  }
  sortPairs(keys, values, n);
  writeByte(123); // {
  for (let i = 0; i < n; i++) {
    writeString(keys[i]!);
    const v = values[i];
    values[i] = undefined; // do not keep the request alive
    if (typeof v === 'string') writeString(v);
    else encode(v, depth + 1);
  }
  writeByte(125); // }
}

/** Sorts the first n keys by code unit (as Array#sort), moving their values along. */
function sortPairs(keys: string[], values: unknown[], n: number): void {
  if (n <= 24) {
    // Insertion sort: requests have few keys per object, often nearly sorted.
    for (let i = 1; i < n; i++) {
      const k = keys[i]!;
      const v = values[i];
      // Most keys differ in their first code unit: compare that inline, whole strings on a tie
      // (an empty key reads as 0 there, which ties and is then compared whole).
      const c = k.charCodeAt(0) | 0;
      let j = i - 1;
      while (j >= 0) {
        const kj = keys[j]!;
        const cj = kj.charCodeAt(0) | 0;
        if (cj < c || (cj === c && !(kj > k))) break;
        keys[j + 1] = keys[j]!;
        values[j + 1] = values[j];
        j--;
      }
      keys[j + 1] = k;
      values[j + 1] = v;
    }
    return;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  const k2 = order.map((i) => keys[i]!);
  const v2 = order.map((i) => values[i]);
  for (let i = 0; i < n; i++) {
    keys[i] = k2[i]!;
    values[i] = v2[i];
  }
}

/**
 * Encodes `prefix` + the canonical form of `value` into the shared buffer and hands the bytes to
 * `use` (they are only valid during the call). Rejections name the path of the bad field.
 */
function withCanonicalBytes<R>(value: unknown, skip: ReadonlySet<string>, prefix: string, use: (bytes: Buffer, loneSurrogate: boolean) => R): R {
  const nested = busy;
  const savedBuf = buf;
  const savedPos = pos;
  const savedFlag = sawLoneSurrogate;
  const savedKeys = keysAt;
  const savedValues = valuesAt;
  if (nested) {
    buf = Buffer.allocUnsafe(INITIAL_BYTES);
    keysAt = [];
    valuesAt = [];
  }
  busy = true;
  pos = 0;
  sawLoneSurrogate = false;
  prototypePolluted = inheritsEnumerable();
  try {
    writeChars(prefix);
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype) {
      encodeObject(value as Record<string, unknown>, 0, skip);
    } else encode(value, 0);
    return use(buf.subarray(0, pos), sawLoneSurrogate);
  } catch (error) {
    // An encode that failed half-way leaves values behind: let the request go.
    for (const vs of valuesAt) vs?.fill(undefined);
    if (error !== BAD) throw error;
    describeProblem(value, skip, '$', []);
    throw new InvalidRequestError('request cannot be part of a cache key', { field: '$' });
  } finally {
    if (nested) {
      buf = savedBuf;
      pos = savedPos;
      sawLoneSurrogate = savedFlag;
      keysAt = savedKeys;
      valuesAt = savedValues;
    } else {
      if (buf.length > KEEP_BYTES) buf = shared;
      else shared = buf;
      busy = false;
    }
  }
}

const toDigest = (bytes: Buffer): string => oneShotHash('sha256', bytes, 'base64url');

/**
 * SHA-256 (base64url, 43 characters) of `prefix` and the canonical form of `value`, hashed while
 * encoding: the fingerprint behind every cache key. Throws an InvalidRequestError naming the path
 * of a field without a faithful form.
 */
export function canonicalHash(value: unknown, skipTopLevel: ReadonlySet<string> = EMPTY_SET, prefix = ''): string {
  return withCanonicalBytes(value, skipTopLevel, prefix, toDigest);
}

/**
 * Canonical, injective text form of a JSON-like value: object keys sorted, `undefined`
 * properties omitted, anything without a faithful form (functions, symbols, BigInt, NaN,
 * class instances, cycles, nesting deeper than MAX_REQUEST_DEPTH) rejected with an
 * InvalidRequestError naming the path. `skipTopLevel` drops top-level keys without a copy.
 * (Keys hash the same form as bytes, without building this string: see `canonicalHash`.)
 */
export function canonicalize(value: unknown, skipTopLevel: ReadonlySet<string> = EMPTY_SET, prefix = ''): string {
  return withCanonicalBytes(value, skipTopLevel, prefix, (bytes, lone) => (lone ? decodeWtf8(bytes) : bytes.toString('utf8')));
}

/** Decodes WTF-8 (UTF-8 plus lone surrogates as 3-byte sequences) back to the JS string. */
function decodeWtf8(b: Buffer): string {
  let out = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    let cp: number;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if (c < 0xe0) {
      cp = ((c & 31) << 6) | (b[i + 1]! & 63);
      i += 2;
    } else if (c < 0xf0) {
      cp = ((c & 15) << 12) | ((b[i + 1]! & 63) << 6) | (b[i + 2]! & 63);
      i += 3;
    } else {
      cp = ((c & 7) << 18) | ((b[i + 1]! & 63) << 12) | ((b[i + 2]! & 63) << 6) | (b[i + 3]! & 63);
      i += 4;
    }
    out += String.fromCodePoint(cp);
  }
  return out;
}

/** Slow twin of `encode` that knows where it is; only runs to explain a rejection. */
function describeProblem(value: unknown, skip: ReadonlySet<string>, path: string, stack: object[]): void {
  const fail: (why: string) => never = (why) => {
    throw new InvalidRequestError(`request field ${path} ${why}`, { field: path });
  };
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) fail(`is ${value}, which has no JSON form; use a finite number`);
      return;
    case 'object':
      break;
    default:
      fail(`is a ${typeof value}, which cannot be part of a cache key`);
  }
  if (value === null) return;
  if (stack.includes(value)) fail('is a circular reference');
  if (stack.length >= MAX_REQUEST_DEPTH) fail(`is nested more than ${MAX_REQUEST_DEPTH} levels deep`);
  if (Array.isArray(value)) {
    stack.push(value);
    value.forEach((item, i) => item !== undefined && describeProblem(item, EMPTY_SET, `${path}[${i}]`, stack));
    stack.pop();
    return;
  }
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) fail('is an invalid Date');
    return;
  }
  if (ArrayBuffer.isView(value)) return;
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const name = (value as object).constructor?.name ?? 'unknown';
    fail(`is a ${name} instance; only plain objects, arrays, strings, finite numbers, booleans, null, Dates and byte arrays can be part of a cache key`);
  }
  stack.push(value);
  for (const k of Object.keys(value)) {
    if (skip.has(k)) continue;
    const v = (value as Record<string, unknown>)[k];
    if (v !== undefined) describeProblem(v, EMPTY_SET, `${path}.${k}`, stack);
  }
  stack.pop();
}

// Hashing text as UTF-8 would turn every lone surrogate into U+FFFD (a collision). Text with
// surrogates is hashed as UTF-16LE instead, and its digest gets a 'u' in front: 44 characters
// against 43, so a digest of one encoding can never equal a digest of the other.
/** SHA-256 of text, base64url: 43 chars, or 'u' + 43 for text containing UTF-16 surrogates. */
export function sha256(text: string): string {
  return SURROGATE.test(text) ? 'u' + oneShotHash('sha256', Buffer.from(text, 'utf16le'), 'base64url') : oneShotHash('sha256', text, 'base64url');
}
