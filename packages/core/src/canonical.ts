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
 * Parts are collected in an array and joined once: building the string by `+=` makes a
 * deep rope that costs more to flatten (when hashed) than everything else together.
 */

const EMPTY_SET: ReadonlySet<string> = new Set();

/** Thrown by the fast encoder; the slow walker then finds the path and the real reason. */
const BAD = Symbol('bad');

/**
 * Deeper than this is treated as a cycle by the fast encoder (it keeps no ancestor list);
 * the slow walker then tells a real cycle from a merely deep value, which it accepts.
 */
const MAX_FAST_DEPTH = 64;

// `<length>"` prefixes for short strings, and whole `<length>"<key>` prefixes for object keys:
// both are the same few strings over and over, so make them once.
const LENGTH_PREFIX: string[] = Array.from({ length: 1024 }, (_, n) => n + '"');
const KEY_PREFIX = new Map<string, string>();
const KEY_PREFIX_LIMIT = 10_000;

function keyPrefix(k: string): string {
  let p = KEY_PREFIX.get(k);
  if (p === undefined) {
    p = k.length + '"' + k;
    if (KEY_PREFIX.size < KEY_PREFIX_LIMIT && k.length <= 64) KEY_PREFIX.set(k, p);
  }
  return p;
}

function encode(value: unknown, parts: string[], depth: number): void {
  switch (typeof value) {
    case 'string':
      parts.push(value.length < 1024 ? LENGTH_PREFIX[value.length]! : value.length + '"', value);
      return;
    case 'number':
      if (!Number.isFinite(value)) throw BAD;
      parts.push('n' + value + ';');
      return;
    case 'boolean':
      parts.push(value ? 'T' : 'F');
      return;
    case 'object':
      break;
    default:
      throw BAD;
  }
  if (value === null) {
    parts.push('N');
    return;
  }
  if (depth > MAX_FAST_DEPTH) throw BAD;
  if (Array.isArray(value)) {
    parts.push('[');
    for (let i = 0; i < value.length; i++) {
      const item = value[i];
      if (item === undefined) parts.push('u');
      else encode(item, parts, depth + 1);
    }
    parts.push(']');
    return;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    if (value instanceof Date) {
      const t = value.getTime();
      if (Number.isNaN(t)) throw BAD;
      parts.push('D' + t + ';');
      return;
    }
    if (ArrayBuffer.isView(value)) {
      parts.push('B' + Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') + ';');
      return;
    }
    throw BAD;
  }
  encodeObject(value as Record<string, unknown>, parts, depth, EMPTY_SET);
}

/** In-place code-unit order (as Array#sort); insertion sort beats the builtin's setup cost on the few keys requests have. */
function sortKeys(keys: string[]): void {
  const n = keys.length;
  if (n > 24) {
    keys.sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
}

function encodeObject(obj: Record<string, unknown>, parts: string[], depth: number, skip: ReadonlySet<string>): void {
  const keys = Object.keys(obj);
  sortKeys(keys);
  parts.push('{');
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = obj[k];
    if (v === undefined || (skip.size > 0 && skip.has(k))) continue;
    parts.push(keyPrefix(k));
    encode(v, parts, depth + 1);
  }
  parts.push('}');
}

/**
 * Canonical, injective text form of a JSON-like value: object keys sorted, `undefined`
 * properties omitted, anything without a faithful form (functions, symbols, BigInt, NaN,
 * class instances, cycles) rejected with an InvalidRequestError naming the path.
 * `skipTopLevel` drops top-level keys (fields that cannot change the answer) without a copy.
 */
export function canonicalize(value: unknown, skipTopLevel: ReadonlySet<string> = EMPTY_SET, prefix = ''): string {
  const parts: string[] = prefix ? [prefix] : [];
  try {
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype) {
      encodeObject(value as Record<string, unknown>, parts, 0, skipTopLevel);
    } else encode(value, parts, 0);
  } catch (error) {
    if (error !== BAD) throw error;
    describeProblem(value, skipTopLevel, '$', []);
    // Only depth made the fast encoder give up: a deep but acyclic value is fine.
    return canonicalizeDeep(value, skipTopLevel, prefix);
  }
  return parts.join('');
}

function canonicalizeDeep(value: unknown, skip: ReadonlySet<string>, prefix: string): string {
  const parts: string[] = prefix ? [prefix] : [];
  const walk = (v: unknown, top: boolean): void => {
    if (typeof v !== 'object' || v === null || v instanceof Date || ArrayBuffer.isView(v)) {
      encode(v, parts, 0);
      return;
    }
    if (Array.isArray(v)) {
      parts.push('[');
      for (const item of v) {
        if (item === undefined) parts.push('u');
        else walk(item, false);
      }
      parts.push(']');
      return;
    }
    const keys = Object.keys(v).sort();
    parts.push('{');
    for (const k of keys) {
      const x = (v as Record<string, unknown>)[k];
      if (x === undefined || (top && skip.has(k))) continue;
      parts.push(keyPrefix(k));
      walk(x, false);
    }
    parts.push('}');
  };
  walk(value, true);
  return parts.join('');
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
const SURROGATE = /[\ud800-\udfff]/;

/** SHA-256 of text, base64url: 43 chars, or 'u' + 43 for text containing UTF-16 surrogates. */
export function sha256(text: string): string {
  return SURROGATE.test(text)
    ? 'u' + oneShotHash('sha256', Buffer.from(text, 'utf16le'), 'base64url')
    : oneShotHash('sha256', text, 'base64url');
}
