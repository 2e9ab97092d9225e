// Who is calling: the caller's key, hashed, looked up in the key table from the config. The
// tenant (and with pass-through credentials, the key's own hash) comes from here and from
// nowhere else — no request header can choose a tenant.
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Scope } from '@strata-cache/core';
import type { KeyConfig } from './config.js';

/** SHA-256 of a key in the config's form: `sha256:<hex>`. */
export function hashKey(key: string): string {
  return 'sha256:' + hash('sha256', key, 'hex');
}

/** A new random gateway key (`sgw_` + 32 bytes of base64url). */
export function generateKey(): string {
  return 'sgw_' + randomBytes(32).toString('base64url');
}

/** The credential a request carries: `Authorization: Bearer <key>` (OpenAI SDKs) or `x-api-key` (Anthropic SDKs). */
export interface PresentedKey {
  readonly key: string;
  /** Which header carried it. */
  readonly header: 'authorization' | 'x-api-key';
}

export function presentedKey(headers: Record<string, string | string[] | undefined>): PresentedKey | undefined {
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return { key: m[1]!, header: 'authorization' };
  }
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x.trim() !== '') return { key: x.trim(), header: 'x-api-key' };
  return undefined;
}

/** An authenticated caller. */
export interface Caller {
  /** The key's id from the config (safe to log). */
  readonly keyId: string;
  readonly tenant: string;
  readonly namespace: string;
  /** The key's SHA-256 hex digest (for pass-through scopes; never logged). */
  readonly keyHash: string;
}

export type AuthResult = { ok: true; caller: Caller; presented: PresentedKey } | { ok: false; reason: 'missing' | 'unknown' | 'revoked' };

/** What a connection last authenticated as: the credential headers it sent, exactly, and the answer. */
interface ConnectionAuth {
  readonly authorization: string | string[] | undefined;
  readonly apiKey: string | string[] | undefined;
  readonly result: AuthResult & { ok: true };
}

/** The key table: hash → key entry. Replaced whole on reload, so a revoked key stops working at once. */
export class KeyTable {
  /** Per key hash: its entry and its caller, made once (so per-caller memos — its caching fetch — last as long as the table). */
  private readonly byHash: Map<string, { readonly entry: KeyConfig; readonly caller: Caller }>;
  /**
   * Per connection (its socket), the last credential that authenticated on it. A client keeps its
   * connection and sends the same key on every request, so the key is hashed once per connection
   * and key, not per request. The entry goes with the connection, and with this table when the
   * keys are reloaded; a request with other credential headers is hashed and checked afresh.
   */
  private readonly byConnection = new WeakMap<object, ConnectionAuth>();

  constructor(readonly keys: readonly KeyConfig[]) {
    this.byHash = new Map(
      keys.map((k) => {
        const hex = k.hash.slice('sha256:'.length);
        const caller: Caller = Object.freeze({ keyId: k.id, tenant: k.tenant, namespace: k.namespace ?? 'default', keyHash: hex });
        return [hex, { entry: k, caller }];
      }),
    );
  }

  /**
   * Who sent these headers. `connection` (the request's socket, or any object that lives as long
   * as the connection) lets a connection that presents the credential it presented before skip
   * hashing it again: same header values, same answer.
   */
  authenticate(headers: Record<string, string | string[] | undefined>, connection?: object): AuthResult {
    const authorization = headers['authorization'];
    const apiKey = headers['x-api-key'];
    if (connection !== undefined) {
      const last = this.byConnection.get(connection);
      if (last !== undefined && last.authorization === authorization && last.apiKey === apiKey) return last.result;
    }
    const presented = presentedKey(headers);
    if (!presented) return { ok: false, reason: 'missing' };
    // One-shot hashing (no Hash object); the table holds hashes only.
    const hex = hash('sha256', presented.key, 'hex');
    const known = this.byHash.get(hex);
    if (!known) return { ok: false, reason: 'unknown' };
    if (known.entry.revoked) return { ok: false, reason: 'revoked' };
    const result = { ok: true as const, presented, caller: known.caller };
    if (connection !== undefined) this.byConnection.set(connection, { authorization, apiKey, result });
    return result;
  }

  /** The key entry with this id. */
  byId(id: string): KeyConfig | undefined {
    return this.keys.find((k) => k.id === id);
  }

  /** Tenants named in the table. */
  tenants(): string[] {
    return [...new Set(this.keys.map((k) => k.tenant))].sort();
  }
}

/**
 * The cache scope of a caller on an upstream. With pass-through credentials the caller's own key
 * is what the upstream authorises, so two keys of one tenant must not read each other's answers
 * (one may be revoked upstream, or entitled to other models): the key's hash joins the namespace.
 */
export function scopeOf(caller: Pick<Caller, 'tenant' | 'namespace' | 'keyHash'>, passthrough: boolean): Pick<Scope, 'tenant' | 'namespace'> {
  return { tenant: caller.tenant, namespace: passthrough ? `${caller.namespace}~key-${caller.keyHash.slice(0, 32)}` : caller.namespace };
}

/** Constant-time comparison of a presented admin token with the expected SHA-256. */
export function tokenMatches(presented: string | undefined, expectedHashHex: string): boolean {
  if (presented === undefined) return false;
  const a = hash('sha256', presented, 'buffer');
  const b = Buffer.from(expectedHashHex, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
